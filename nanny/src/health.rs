//! The sans-IO health core: re-entry (rise), fall, slow start, load-based weights and the
//! forced states, as one state machine.
//!
//! Contract: this module reads no clock, opens no socket, runs no program and draws no random
//! number. The shell ([`crate::shell`]) passes `now` and every input in, performs the returned
//! [`Action`]s and sleeps until [`Health::poll_timeout`]. Nothing here panics.
//!
//! Inputs and what they do (Piranha 0.8.6 `nanny.c` `run`/`adjustWeight`/`checkState`, with
//! the fixes listed in `docs/nanny.md`):
//!
//! | input | method | effect |
//! |---|---|---|
//! | probe deadline | [`Health::handle_timeout`] | [`Action::Probe`]; the next one is due `interval` after this start |
//! | probe result | [`Health::handle_probe`] | success/failure counting, admission, removal, weight steps |
//! | load figure | [`Health::handle_load`] | Piranha's cube-root weight formula ([`load_adjusted_weight`]) |
//! | SIGUSR1 | [`Health::force_down`] | remove now, suspend probing |
//! | SIGUSR2 | [`Health::force_up`] | admit at the configured weight now, suspend probing |
//! | SIGHUP | [`Health::resume`] | probing again, re-entry satisfied, probe at once |
//!
//! Probes are scheduled every `interval` from the **start** of the previous one (Piranha slept
//! `interval` after each probe, so its period was probe time + interval). A probe that takes
//! longer than the interval is followed by the next one at once; two never overlap.

use std::time::{Duration, Instant};

/// Piranha's weight-adjustment cadence: about every 20 seconds.
const ADJUST_SECONDS: u64 = 20;

/// What the core is told about one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered as expected.
    Ok,
    /// It did not; the text says why (for the log and for lvsd).
    Failed(String),
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start probe number `seq` now; report its result with [`Health::handle_probe`].
    Probe {
        /// Identifies the probe; results of superseded probes are ignored.
        seq: u64,
    },
    /// Run the load monitor once; report the figure with [`Health::handle_load`].
    QueryLoad,
    /// Put the server (back) in service with this weight (Piranha `ipvsadm -a`, or `-e` after
    /// a quiesce). `forced` = SIGUSR2.
    Admit {
        /// Weight to give it.
        weight: u32,
        /// Caused by SIGUSR2 rather than probes.
        forced: bool,
    },
    /// Take the server out: weight 0 when `quiesce` (existing connections keep flowing), else
    /// removed. `forced` = SIGUSR1.
    Remove {
        /// Weight 0 instead of removal.
        quiesce: bool,
        /// Caused by SIGUSR1 rather than probes.
        forced: bool,
        /// Why, for the log and for lvsd.
        reason: String,
    },
    /// Change the weight of a server in service (slow start or load monitor).
    SetWeight(u32),
}

/// Settings of the core, all fixed at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// Time between the starts of two probes (`-t`).
    pub interval: Duration,
    /// Configured weight (`-w`).
    pub weight: u32,
    /// Load-based weights never exceed `weight × scale` (`-S`, default 10).
    pub scale: u32,
    /// Weight 0 instead of removal on failure (`-q`).
    pub quiesce: bool,
    /// Consecutive good probes that re-admit a failed server (`--rise`).
    pub rise: u32,
    /// Consecutive failed probes that take a server in service out (`--fall`).
    pub fall: u32,
    /// Whether a load monitor is configured (`-U` other than `none`).
    pub load_monitor: bool,
}

impl HealthConfig {
    /// Piranha's re-entry count: `reentry / interval` good probes, at least one.
    pub fn default_rise(interval: Duration, reentry: Duration) -> u32 {
        let interval = interval.as_secs().max(1);
        u32::try_from(reentry.as_secs() / interval)
            .unwrap_or(u32::MAX)
            .max(1)
    }

    /// Good probes between two weight adjustments: Piranha adjusts when `interval > 20` (every
    /// probe) or when the success count is a multiple of `20 / interval` (about 20 s).
    pub fn adjust_every(&self) -> u32 {
        let secs = self.interval.as_secs().max(1);
        if secs > ADJUST_SECONDS {
            1
        } else {
            u32::try_from(ADJUST_SECONDS / secs).unwrap_or(1).max(1)
        }
    }

    /// Weight given at admission by probes: `weight >> 5`, at least 1, never above `weight`
    /// (so a configured 0 stays 0; Piranha admitted it at 1 for ever).
    pub fn initial_weight(&self) -> u32 {
        (self.weight >> 5).max(1).min(self.weight)
    }
}

/// What nanny believes lvsd has for this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Nothing reported yet (start-up).
    Unknown,
    /// In service with this weight.
    Up(u32),
    /// Removed.
    Down,
    /// Present with weight 0.
    Quiesced,
}

/// Probing, or suspended by a signal until SIGHUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Normal operation.
    Probing,
    /// SIGUSR2 ("rose-colored glasses"): up, no probes.
    ForcedUp,
    /// SIGUSR1 ("opaque glasses"): down, no probes.
    ForcedDown,
}

/// The state machine. See the module documentation.
#[derive(Debug, Clone)]
pub struct Health {
    cfg: HealthConfig,
    state: ServerState,
    mode: Mode,
    successes: u32,
    failures: u32,
    since_adjust: u32,
    next_probe: Instant,
    in_flight: Option<u64>,
    seq: u64,
    load_pending: bool,
}

impl Health {
    /// A core whose first probe is due at `now`. As in Piranha, the success count starts
    /// satisfied, so a server that passes its first probe is admitted at once.
    pub fn new(cfg: HealthConfig, now: Instant) -> Self {
        let cfg = HealthConfig {
            rise: cfg.rise.max(1),
            fall: cfg.fall.max(1),
            scale: cfg.scale.max(1),
            ..cfg
        };
        Self {
            successes: cfg.rise,
            cfg,
            state: ServerState::Unknown,
            mode: Mode::Probing,
            failures: 0,
            since_adjust: 0,
            next_probe: now,
            in_flight: None,
            seq: 0,
            load_pending: false,
        }
    }

    /// The settings in force (rise, fall and scale are at least 1).
    pub fn config(&self) -> &HealthConfig {
        &self.cfg
    }

    /// What nanny believes lvsd has.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// Probing or forced.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Consecutive failed probes so far (0 after a success).
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// When [`Health::handle_timeout`] next has something to do: `None` while a probe is
    /// running (its result comes first) or while probing is suspended.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.mode, self.in_flight) {
            (Mode::Probing, None) => Some(self.next_probe),
            _ => None,
        }
    }

    /// Starts a probe if one is due.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        if self.mode != Mode::Probing || self.in_flight.is_some() || now < self.next_probe {
            return Vec::new();
        }
        self.seq += 1;
        self.in_flight = Some(self.seq);
        self.next_probe = now + self.cfg.interval;
        vec![Action::Probe { seq: self.seq }]
    }

    /// Takes the result of probe `seq`. Results of probes superseded by a signal are ignored.
    pub fn handle_probe(&mut self, _now: Instant, seq: u64, outcome: Outcome) -> Vec<Action> {
        if self.mode != Mode::Probing || self.in_flight != Some(seq) {
            return Vec::new();
        }
        self.in_flight = None;
        let mut out = Vec::new();
        match outcome {
            Outcome::Ok => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                match self.state {
                    ServerState::Up(weight) => self.adjust(weight, &mut out),
                    _ if self.successes >= self.cfg.rise => {
                        let weight = self.cfg.initial_weight();
                        self.state = ServerState::Up(weight);
                        self.since_adjust = 0;
                        out.push(Action::Admit {
                            weight,
                            forced: false,
                        });
                    }
                    _ => {}
                }
            }
            Outcome::Failed(reason) => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                let remove = match self.state {
                    ServerState::Up(_) => self.failures >= self.cfg.fall,
                    // lvsd has heard nothing yet: tell it at once where the server stands.
                    ServerState::Unknown => true,
                    ServerState::Down | ServerState::Quiesced => false,
                };
                if remove {
                    self.state = if self.cfg.quiesce {
                        ServerState::Quiesced
                    } else {
                        ServerState::Down
                    };
                    self.load_pending = false;
                    out.push(Action::Remove {
                        quiesce: self.cfg.quiesce,
                        forced: false,
                        reason,
                    });
                }
            }
        }
        self.check_invariants();
        out
    }

    /// One weight step every [`HealthConfig::adjust_every`] good probes while in service:
    /// slow start first, then the load monitor.
    fn adjust(&mut self, weight: u32, out: &mut Vec<Action>) {
        self.since_adjust += 1;
        if self.since_adjust < self.cfg.adjust_every() {
            return;
        }
        self.since_adjust = 0;
        if weight < self.cfg.weight {
            let next = weight.saturating_mul(2).max(1).min(self.cfg.weight);
            self.state = ServerState::Up(next);
            out.push(Action::SetWeight(next));
        } else if self.cfg.load_monitor && !self.load_pending {
            self.load_pending = true;
            out.push(Action::QueryLoad);
        }
    }

    /// Takes the 1-minute load figure, or `None` when the monitor failed (weight unchanged).
    pub fn handle_load(&mut self, _now: Instant, load: Option<f64>) -> Vec<Action> {
        if !std::mem::take(&mut self.load_pending) || self.mode != Mode::Probing {
            return Vec::new();
        }
        let (ServerState::Up(last), Some(load)) = (self.state, load) else {
            return Vec::new();
        };
        match load_adjusted_weight(self.cfg.weight, self.cfg.scale, last, load) {
            Some(next) => {
                self.state = ServerState::Up(next);
                vec![Action::SetWeight(next)]
            }
            None => Vec::new(),
        }
    }

    /// SIGUSR1: out of service now (removed, even with quiesce, as Piranha), probing
    /// suspended until [`Health::resume`].
    pub fn force_down(&mut self, _now: Instant) -> Vec<Action> {
        self.mode = Mode::ForcedDown;
        self.in_flight = None;
        self.load_pending = false;
        if self.state == ServerState::Down {
            return Vec::new();
        }
        self.state = ServerState::Down;
        vec![Action::Remove {
            quiesce: false,
            forced: true,
            reason: "forced down by SIGUSR1".to_owned(),
        }]
    }

    /// SIGUSR2: in service now at the configured weight (no slow start), probing suspended
    /// until [`Health::resume`].
    pub fn force_up(&mut self, _now: Instant) -> Vec<Action> {
        self.mode = Mode::ForcedUp;
        self.in_flight = None;
        self.load_pending = false;
        if matches!(self.state, ServerState::Up(_)) {
            return Vec::new();
        }
        self.state = ServerState::Up(self.cfg.weight);
        self.since_adjust = 0;
        vec![Action::Admit {
            weight: self.cfg.weight,
            forced: true,
        }]
    }

    /// SIGHUP: probing again; the re-entry count is satisfied and a probe is due at once.
    pub fn resume(&mut self, now: Instant) -> Vec<Action> {
        self.mode = Mode::Probing;
        self.in_flight = None;
        self.successes = self.cfg.rise;
        self.failures = 0;
        self.next_probe = now;
        Vec::new()
    }

    fn check_invariants(&self) {
        debug_assert!(self.cfg.rise >= 1 && self.cfg.fall >= 1);
        if let ServerState::Up(w) = self.state {
            let cap = self.cfg.weight.saturating_mul(self.cfg.scale);
            debug_assert!(w <= cap.max(self.cfg.weight), "weight {w} above cap {cap}");
        }
        debug_assert!(self.successes == 0 || self.failures == 0);
    }
}

/// Piranha's load formula (`adjustWeight`): for a 1-minute load `load` ≠ 1 and the current
/// weight `last`, `step = (weight / 2) × cbrt(|1 − load|)` (integer `weight / 2`); below 1 the
/// weight grows by `step` up to `weight × scale`, above 1 it shrinks by `step` but never below
/// `weight`. The result is truncated and applied only when it differs from `last` by at least
/// `weight / 4`. Returns the new weight, or `None` for no change.
pub fn load_adjusted_weight(weight: u32, scale: u32, last: u32, load: f64) -> Option<u32> {
    if !load.is_finite() || load < 0.0 || load == 1.0 {
        return None;
    }
    let step = f64::from(weight / 2) * (1.0 - load).abs().cbrt();
    let next = if load < 1.0 {
        let cap = f64::from(weight) * f64::from(scale.max(1));
        (f64::from(last) + step).min(cap)
    } else {
        (f64::from(last) - step).max(f64::from(weight))
    };
    // Truncation as in C; the value is within 0..=u32::MAX by the clamps above.
    let next = next.min(f64::from(u32::MAX)) as u32;
    (next != last && next.abs_diff(last) >= weight / 4).then_some(next)
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
