//! The failover state machine of one director, sans-IO.
//!
//! The machine never reads a clock, opens a socket, sends a signal or runs a command: the I/O
//! shell passes the current [`Instant`] and each input (a validated partner heartbeat, a timer
//! expiry, lvsd's death, a link change, SIGTERM, SIGHUP) to a `handle_*` method, carries out
//! the returned [`Action`]s in order, and calls [`Machine::handle_timeout`] no later than
//! [`Machine::poll_timeout`]. No method panics.
//!
//! It follows Piranha's LVS-mode table (reference `piranha-daemons.md` §1.4); each row is a
//! unit test below. State: a fixed [`Role`], an `active` flag and two latches, LINKFAIL and
//! CHILDFAIL, which block activation.
//!
//! | Input | Condition | Actions |
//! |---|---|---|
//! | partner says active | always | clear CHILDFAIL |
//! | | active, backup | `SendHeartbeat(Active)` (so the primary re-ARPs), `Deactivate` |
//! | | active, primary | `Reannounce` (run `active_cmd` again, re-send gratuitous ARPs) |
//! | | inactive | nothing |
//! | partner says standby | inactive, no latch | `Activate`, `SendHeartbeat(Active)` |
//! | | otherwise | nothing |
//! | send timer | heartbeats enabled | `SendHeartbeat(own state)`; re-arm `now + keepalive` |
//! | dead timer (no heartbeat for `deadtime`) | inactive, no latch | `Activate`, `SendHeartbeat(Active)`; re-arm `now + deadtime` |
//! | lvsd died | — | set CHILDFAIL; if active `Deactivate`, `SendHeartbeat(Standby)` |
//! | lvsd restarted | — | clear CHILDFAIL (Piranha keeps it until the partner says active) |
//! | link down (`monitor_links`) | — | set LINKFAIL; if active `Deactivate`, `SendHeartbeat(Standby)` |
//! | link up | — | clear LINKFAIL |
//! | SIGTERM | — | if active `Deactivate`; `SendHeartbeat(Standby)`; then inert |
//! | SIGHUP | — | new keepalive/deadtime/role/`monitor_links`; `ReloadLvsd` |
//!
//! Any heartbeat from the partner re-arms the dead timer to `now + deadtime`.
//!
//! **Split brain.** When a partition heals with both nodes active, the primary wins: the
//! backup steps down on the first "active" heartbeat it hears from the primary (sending one
//! last "active" heartbeat so that the primary re-ARPs after the backup has let go), and the
//! primary re-announces on every "active" heartbeat from the backup. Both happen on the first
//! heartbeat that crosses, so the conflict lasts at most one keepalive plus network delay.
//!
//! Differences from Piranha, all deliberate: a heartbeat is sent at once on start-up and on
//! every change of our own state (Piranha waits for the next keepalive); SIGTERM sends a last
//! "standby" heartbeat so the partner takes over at once instead of after `deadtime`; lvsd's
//! death also sends one; CHILDFAIL also clears when the shell reports lvsd restarted; SIGHUP
//! applies new settings instead of only forwarding the signal to lvsd.

use std::fmt::Write as _;
use std::time::Duration;

use crate::time::Instant;
pub use crate::wire::{PeerState, Role};

/// The settings pulse takes from `lvs.cf` and its command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Primary or backup, from the configured addresses.
    pub role: Role,
    /// Heartbeat interval (`keepalive`); sub-second values allowed.
    pub keepalive: Duration,
    /// Silence after which the partner is declared dead (`deadtime`).
    pub deadtime: Duration,
    /// Send heartbeats at all (`backup_active`); a lone primary does not.
    pub send_heartbeats: bool,
    /// Act on link changes (`monitor_links`).
    pub monitor_links: bool,
    /// Activate at start-up without waiting (`--forceactive`).
    pub force_active: bool,
}

/// Settings the machine cannot run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// `keepalive` is zero.
    #[error("keepalive must be greater than zero")]
    ZeroKeepalive,
    /// `deadtime` is not longer than `keepalive`: every lost heartbeat would be a failover.
    #[error("deadtime ({deadtime:?}) must be longer than keepalive ({keepalive:?})")]
    DeadtimeTooShort {
        /// Configured keepalive.
        keepalive: Duration,
        /// Configured deadtime.
        deadtime: Duration,
    },
}

impl Settings {
    /// Checks the timing constraints.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.keepalive.is_zero() {
            return Err(SettingsError::ZeroKeepalive);
        }
        if self.deadtime <= self.keepalive {
            return Err(SettingsError::DeadtimeTooShort {
                keepalive: self.keepalive,
                deadtime: self.deadtime,
            });
        }
        Ok(())
    }
}

/// What the shell must do, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send one heartbeat announcing this state (on every configured socket).
    SendHeartbeat(PeerState),
    /// Take over: run `active_cmd`, put lvsd in charge, sync daemon to master, VIPs up,
    /// gratuitous ARPs.
    Activate {
        /// Journal text.
        reason: String,
    },
    /// Give up: run `inactive_cmd`, lvsd standby, sync daemon to backup, VIPs down,
    /// cancel pending gratuitous ARPs.
    Deactivate {
        /// Journal text.
        reason: String,
    },
    /// Still active while the partner claims to be: run `active_cmd` again and re-send the
    /// gratuitous ARPs.
    Reannounce {
        /// Journal text.
        reason: String,
    },
    /// Tell lvsd to re-read its configuration (SIGHUP).
    ReloadLvsd,
}

/// One director's failover state.
#[derive(Clone, Debug)]
pub struct Machine {
    settings: Settings,
    active: bool,
    link_fail: bool,
    child_fail: bool,
    shut_down: bool,
    /// When the dead timer started counting (last partner heartbeat, or start-up).
    quiet_since: Instant,
    /// Whether a heartbeat of the partner was ever accepted (the journal says "dead" only
    /// of a partner that was heard).
    heard: bool,
    next_send: Instant,
    need_by: Instant,
}

/// Seconds for the journal: "0.15", "5", "2.5".
fn secs(d: Duration) -> String {
    let mut s = String::new();
    let _ = write!(s, "{:.3}", d.as_secs_f64());
    let trimmed = s.trim_end_matches('0').trim_end_matches('.');
    trimmed.to_owned()
}

impl Machine {
    /// A machine starting at `now`, and the actions of its start-up: a first heartbeat, and
    /// with `force_active` an activation.
    pub fn new(settings: Settings, now: Instant) -> Result<(Machine, Vec<Action>), SettingsError> {
        settings.validate()?;
        let mut m = Machine {
            active: false,
            link_fail: false,
            child_fail: false,
            shut_down: false,
            quiet_since: now,
            heard: false,
            next_send: now + settings.keepalive,
            need_by: now + settings.deadtime,
            settings,
        };
        let mut out = Vec::new();
        if m.settings.force_active {
            m.activate(now, "forced active on start-up: activating", &mut out);
        } else {
            m.send(now, &mut out);
        }
        m.check_invariants();
        Ok((m, out))
    }

    /// Whether this node owns the VIPs.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The configured role.
    pub fn role(&self) -> Role {
        self.settings.role
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether activation is blocked by a failed link or a dead lvsd.
    pub fn is_latched(&self) -> bool {
        self.link_fail || self.child_fail
    }

    /// The latest instant by which [`Machine::handle_timeout`] must be called; `None` after
    /// shutdown.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.shut_down {
            return None;
        }
        if self.settings.send_heartbeats {
            Some(self.next_send.min(self.need_by))
        } else {
            Some(self.need_by)
        }
    }

    /// A validated heartbeat from the partner announcing `state`.
    pub fn handle_heartbeat(&mut self, now: Instant, state: PeerState) -> Vec<Action> {
        let mut out = Vec::new();
        if self.shut_down {
            return out;
        }
        self.quiet_since = now;
        self.heard = true;
        self.need_by = now + self.settings.deadtime;
        match state {
            PeerState::Active => {
                self.child_fail = false;
                if self.active {
                    match self.settings.role {
                        Role::Backup => {
                            out.push(Action::SendHeartbeat(PeerState::Active));
                            self.active = false;
                            out.push(Action::Deactivate {
                                reason: "partner active: stepping down (primary wins)".into(),
                            });
                        }
                        Role::Primary => out.push(Action::Reannounce {
                            reason: "partner active: resending arps".into(),
                        }),
                    }
                }
            }
            PeerState::Standby => {
                if !self.active && !self.is_latched() {
                    let reason = match self.settings.role {
                        Role::Primary => "backup inactive: activating",
                        Role::Backup => "primary inactive: activating",
                    };
                    self.activate(now, reason, &mut out);
                }
            }
        }
        self.check_invariants();
        out
    }

    /// Timers: call at or after [`Machine::poll_timeout`]; early calls do nothing harmful.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.shut_down {
            return out;
        }
        if self.settings.send_heartbeats && now >= self.next_send {
            self.send(now, &mut out);
        }
        if now >= self.need_by {
            self.need_by = now + self.settings.deadtime;
            if !self.active && !self.is_latched() {
                let silence = secs(now - self.quiet_since);
                let reason = if self.heard {
                    format!("partner dead after {silence} s: activating")
                } else if self.settings.send_heartbeats {
                    format!("no heartbeat from the partner in {silence} s since start: activating")
                } else {
                    "no partner configured: activating".to_owned()
                };
                self.activate(now, &reason, &mut out);
            }
        }
        self.check_invariants();
        out
    }

    /// lvsd exited or was killed: this node cannot serve until it is back.
    pub fn handle_lvsd_died(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.shut_down {
            return out;
        }
        self.child_fail = true;
        self.deactivate(now, "lvsd died: deactivating", &mut out);
        self.check_invariants();
        out
    }

    /// lvsd runs again: activation is allowed again (by a "standby" heartbeat or the dead
    /// timer). The dead timer starts over from `now`: while lvsd was away the partner may
    /// have taken over, and only its silence from now on says it is dead.
    pub fn handle_lvsd_restarted(&mut self, now: Instant) -> Vec<Action> {
        if self.shut_down {
            return Vec::new();
        }
        self.child_fail = false;
        self.need_by = self.need_by.max(now + self.settings.deadtime);
        self.check_invariants();
        Vec::new()
    }

    /// The link of the public or private interface went down (`up == false`) or came back.
    /// Ignored unless `monitor_links` is set.
    pub fn handle_link(&mut self, now: Instant, up: bool) -> Vec<Action> {
        let mut out = Vec::new();
        if self.shut_down || !self.settings.monitor_links {
            return out;
        }
        if up {
            self.link_fail = false;
        } else {
            self.link_fail = true;
            self.deactivate(now, "local link failure: deactivating", &mut out);
        }
        self.check_invariants();
        out
    }

    /// SIGTERM/SIGINT: give up the VIPs and tell the partner, so that it takes over at once.
    /// The machine is inert afterwards.
    pub fn handle_shutdown(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.shut_down {
            return out;
        }
        if self.active {
            self.deactivate(now, "shutting down: deactivating", &mut out);
        } else {
            self.send(now, &mut out);
        }
        self.shut_down = true;
        self.check_invariants();
        out
    }

    /// SIGHUP with freshly read settings. Invalid settings are refused and the old ones kept.
    /// `force_active` only matters at start-up and is ignored here.
    pub fn handle_reload(
        &mut self,
        now: Instant,
        settings: Settings,
    ) -> Result<Vec<Action>, SettingsError> {
        settings.validate()?;
        if self.shut_down {
            return Ok(Vec::new());
        }
        self.next_send = self.next_send.min(now + settings.keepalive);
        self.need_by = self.quiet_since + settings.deadtime;
        if !settings.monitor_links {
            self.link_fail = false;
        }
        self.settings = settings;
        self.check_invariants();
        Ok(vec![Action::ReloadLvsd])
    }

    fn send(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.settings.send_heartbeats {
            out.push(Action::SendHeartbeat(self.own_state()));
            self.next_send = now + self.settings.keepalive;
        }
    }

    fn activate(&mut self, now: Instant, reason: &str, out: &mut Vec<Action>) {
        self.active = true;
        out.push(Action::Activate {
            reason: reason.to_owned(),
        });
        self.send(now, out);
    }

    fn deactivate(&mut self, now: Instant, reason: &str, out: &mut Vec<Action>) {
        if self.active {
            self.active = false;
            out.push(Action::Deactivate {
                reason: reason.to_owned(),
            });
            self.send(now, out);
        }
    }

    fn own_state(&self) -> PeerState {
        if self.active {
            PeerState::Active
        } else {
            PeerState::Standby
        }
    }

    fn check_invariants(&self) {
        debug_assert!(!(self.active && self.shut_down), "active after shutdown");
        debug_assert!(
            !(self.active && self.link_fail),
            "active with a failed link"
        );
        debug_assert!(!(self.active && self.child_fail), "active without lvsd");
        debug_assert!(!self.settings.keepalive.is_zero());
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
