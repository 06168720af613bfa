//! Tests of the health core with a fake clock: one per row of the Piranha reference tables
//! (§3.5 monitoring loop, §3.6 weights, §3.7 signals) and a seeded simulation.

use super::*;

const S: Duration = Duration::from_secs(1);

fn cfg(interval: u64, reentry: u64, weight: u32) -> HealthConfig {
    let interval = Duration::from_secs(interval);
    HealthConfig {
        interval,
        weight,
        scale: 10,
        quiesce: false,
        rise: HealthConfig::default_rise(interval, Duration::from_secs(reentry)),
        fall: 1,
        load_monitor: false,
    }
}

/// Drives the core like the shell does: wait for the deadline, probe, feed the result.
struct Driver {
    h: Health,
    now: Instant,
}

impl Driver {
    fn new(c: HealthConfig) -> Self {
        let now = Instant::now();
        Self {
            h: Health::new(c, now),
            now,
        }
    }

    /// Runs one probe with `ok` (advancing the clock to its deadline) and returns the actions
    /// other than the probe itself.
    fn probe(&mut self, ok: bool) -> Vec<Action> {
        let due = self.h.poll_timeout().expect("a probe is due");
        self.now = self.now.max(due);
        let started = self.h.handle_timeout(self.now);
        let [Action::Probe { seq }] = started.as_slice() else {
            panic!("expected one probe, got {started:?}");
        };
        let outcome = if ok {
            Outcome::Ok
        } else {
            Outcome::Failed("connection refused".into())
        };
        self.h.handle_probe(self.now, *seq, outcome)
    }
}

fn admit(weight: u32) -> Action {
    Action::Admit {
        weight,
        forced: false,
    }
}

fn remove(quiesce: bool) -> Action {
    Action::Remove {
        quiesce,
        forced: false,
        reason: "connection refused".into(),
    }
}

#[test]
fn first_good_probe_admits_at_once_with_weight_over_32() {
    let mut d = Driver::new(cfg(6, 15, 100));
    assert_eq!(d.probe(true), vec![admit(3)]);
    assert_eq!(d.h.state(), ServerState::Up(3));
}

#[test]
fn initial_weight_is_at_least_one_but_zero_stays_zero() {
    assert_eq!(cfg(6, 15, 1).initial_weight(), 1);
    assert_eq!(cfg(6, 15, 31).initial_weight(), 1);
    assert_eq!(cfg(6, 15, 64).initial_weight(), 2);
    assert_eq!(cfg(6, 15, 0).initial_weight(), 0);
}

#[test]
fn one_failure_removes_a_server_in_service() {
    let mut d = Driver::new(cfg(6, 15, 1));
    d.probe(true);
    assert_eq!(d.probe(false), vec![remove(false)]);
    assert_eq!(d.h.state(), ServerState::Down);
}

#[test]
fn quiesce_sets_weight_zero_instead_of_removing() {
    let mut d = Driver::new(HealthConfig {
        quiesce: true,
        ..cfg(6, 15, 1)
    });
    d.probe(true);
    assert_eq!(d.probe(false), vec![remove(true)]);
    assert_eq!(d.h.state(), ServerState::Quiesced);
}

#[test]
fn first_probe_failing_reports_down_once() {
    let mut d = Driver::new(cfg(6, 15, 1));
    assert_eq!(d.probe(false), vec![remove(false)]);
    assert_eq!(d.probe(false), vec![]);
}

#[test]
fn reentry_needs_reentry_over_interval_good_probes() {
    // reentry 15 / timeout 6 = 2 good probes.
    let mut d = Driver::new(cfg(6, 15, 1));
    d.probe(true);
    d.probe(false);
    assert_eq!(d.probe(true), vec![]);
    assert_eq!(d.probe(true), vec![admit(1)]);
}

#[test]
fn a_failure_restarts_the_reentry_count() {
    let mut d = Driver::new(cfg(5, 15, 1)); // 3 good probes
    d.probe(false);
    d.probe(true);
    d.probe(true);
    d.probe(false);
    assert_eq!(d.probe(true), vec![]);
    assert_eq!(d.probe(true), vec![]);
    assert_eq!(d.probe(true), vec![admit(1)]);
}

#[test]
fn reentry_below_interval_readmits_on_the_first_good_probe() {
    assert_eq!(
        HealthConfig::default_rise(Duration::from_secs(10), Duration::from_secs(5)),
        1
    );
    assert_eq!(
        HealthConfig::default_rise(Duration::from_secs(10), Duration::ZERO),
        1
    );
    let mut d = Driver::new(cfg(10, 5, 1));
    d.probe(false);
    assert_eq!(d.probe(true), vec![admit(1)]);
}

#[test]
fn fall_counts_consecutive_failures() {
    let mut d = Driver::new(HealthConfig {
        fall: 3,
        ..cfg(6, 15, 1)
    });
    d.probe(true);
    assert_eq!(d.probe(false), vec![]);
    assert_eq!(d.probe(false), vec![]);
    assert_eq!(d.probe(true), vec![]); // resets
    assert_eq!(d.probe(false), vec![]);
    assert_eq!(d.probe(false), vec![]);
    assert_eq!(d.probe(false), vec![remove(false)]);
}

#[test]
fn probes_start_every_interval_from_the_previous_start() {
    let c = cfg(6, 15, 1);
    let t0 = Instant::now();
    let mut h = Health::new(c, t0);
    assert_eq!(h.poll_timeout(), Some(t0));
    assert_eq!(h.handle_timeout(t0), vec![Action::Probe { seq: 1 }]);
    assert_eq!(h.poll_timeout(), None, "nothing while the probe runs");
    // The probe takes 4 s: the next one is still due 6 s after the first started.
    h.handle_probe(t0 + 4 * S, 1, Outcome::Ok);
    assert_eq!(h.poll_timeout(), Some(t0 + 6 * S));
    assert_eq!(h.handle_timeout(t0 + 5 * S), vec![], "not yet due");
    // A probe that overruns the interval is followed by the next one at once.
    h.handle_timeout(t0 + 6 * S);
    h.handle_probe(t0 + 13 * S, 2, Outcome::Ok);
    assert_eq!(h.poll_timeout(), Some(t0 + 12 * S));
    assert_eq!(
        h.handle_timeout(t0 + 13 * S),
        vec![Action::Probe { seq: 3 }]
    );
}

#[test]
fn a_dead_server_is_out_within_one_interval_plus_timeout() {
    // Dies just after a probe started at t0; the next starts at t0 + interval and fails by
    // its timeout (= interval): removal before t0 + 2 × interval.
    let c = cfg(6, 15, 1);
    let t0 = Instant::now();
    let mut h = Health::new(c, t0);
    h.handle_timeout(t0);
    h.handle_probe(t0, 1, Outcome::Ok);
    let next = h.poll_timeout().expect("due");
    assert_eq!(next, t0 + 6 * S);
    h.handle_timeout(next);
    let out = h.handle_probe(next + 6 * S, 2, Outcome::Failed("timed out".into()));
    assert!(matches!(out.as_slice(), [Action::Remove { .. }]));
}

#[test]
fn slow_start_doubles_about_every_20_seconds_up_to_the_weight() {
    // interval 10 → every 2 good probes; weight 100: 3, 6, 12, 24, 48, 96, 100.
    let mut d = Driver::new(cfg(10, 15, 100));
    assert_eq!(d.probe(true), vec![admit(3)]);
    let mut seen = Vec::new();
    for _ in 0..20 {
        for a in d.probe(true) {
            if let Action::SetWeight(w) = a {
                seen.push(w);
            }
        }
    }
    assert_eq!(seen, vec![6, 12, 24, 48, 96, 100]);
    assert_eq!(d.h.state(), ServerState::Up(100));
}

#[test]
fn adjust_cadence_follows_piranha() {
    assert_eq!(cfg(6, 0, 1).adjust_every(), 3);
    assert_eq!(cfg(10, 0, 1).adjust_every(), 2);
    assert_eq!(cfg(20, 0, 1).adjust_every(), 1);
    assert_eq!(cfg(30, 0, 1).adjust_every(), 1);
    assert_eq!(cfg(1, 0, 1).adjust_every(), 20);
}

#[test]
fn load_monitor_runs_after_slow_start_and_moves_the_weight() {
    let mut d = Driver::new(HealthConfig {
        load_monitor: true,
        ..cfg(30, 15, 8)
    });
    assert_eq!(d.probe(true), vec![admit(1)]);
    assert_eq!(d.probe(true), vec![Action::SetWeight(2)]);
    assert_eq!(d.probe(true), vec![Action::SetWeight(4)]);
    assert_eq!(d.probe(true), vec![Action::SetWeight(8)]);
    assert_eq!(d.probe(true), vec![Action::QueryLoad]);
    // Only one query at a time.
    assert_eq!(d.probe(true), vec![]);
    // Load 0: step = 4 × 1 = 4 → 12.
    let now = d.now;
    assert_eq!(d.h.handle_load(now, Some(0.0)), vec![Action::SetWeight(12)]);
    assert_eq!(d.probe(true), vec![Action::QueryLoad]);
    // A failed load query leaves the weight alone.
    assert_eq!(d.h.handle_load(now, None), vec![]);
    assert_eq!(d.h.state(), ServerState::Up(12));
}

#[test]
fn load_formula_rows() {
    // load 1.0: no change.
    assert_eq!(load_adjusted_weight(100, 10, 100, 1.0), None);
    // light load grows by (w/2)·cbrt(1−L): 50·cbrt(0.875)=47.8 → 147.
    assert_eq!(load_adjusted_weight(100, 10, 100, 0.125), Some(147));
    // capped at scale × weight.
    assert_eq!(load_adjusted_weight(100, 10, 960, 0.0), Some(1000));
    assert_eq!(load_adjusted_weight(100, 10, 1000, 0.0), None);
    // capped, and the last step (990 → 1000) is under weight/4: not applied.
    assert_eq!(load_adjusted_weight(100, 10, 990, 0.0), None);
    // heavy load shrinks, floored at the configured weight.
    assert_eq!(load_adjusted_weight(100, 10, 200, 9.0), Some(100));
    assert_eq!(load_adjusted_weight(100, 10, 100, 9.0), None);
    // changes under weight/4 are not applied: 50·cbrt(0.001)=5 < 25.
    assert_eq!(load_adjusted_weight(100, 10, 100, 0.999), None);
    // weight 1 never changes (1/2 = 0).
    assert_eq!(load_adjusted_weight(1, 10, 1, 0.0), None);
    // nonsense figures are ignored.
    assert_eq!(load_adjusted_weight(100, 10, 100, f64::NAN), None);
    assert_eq!(load_adjusted_weight(100, 10, 100, -1.0), None);
}

#[test]
fn sigusr1_forces_down_and_suspends_probing_until_sighup() {
    let mut d = Driver::new(HealthConfig {
        quiesce: true,
        ..cfg(6, 60, 1)
    });
    d.probe(true);
    let now = d.now;
    assert_eq!(
        d.h.force_down(now),
        vec![Action::Remove {
            quiesce: false,
            forced: true,
            reason: "forced down by SIGUSR1".into()
        }]
    );
    assert_eq!(d.h.poll_timeout(), None);
    assert_eq!(d.h.handle_timeout(now + 100 * S), vec![]);
    // SIGHUP: probe at once, re-entry satisfied (rise 10 is not waited for).
    d.h.resume(now + 100 * S);
    assert_eq!(d.h.poll_timeout(), Some(now + 100 * S));
    assert_eq!(d.probe(true), vec![admit(1)]);
}

#[test]
fn sigusr2_forces_up_at_the_configured_weight() {
    let mut d = Driver::new(cfg(6, 15, 100));
    d.probe(false);
    let now = d.now;
    assert_eq!(
        d.h.force_up(now),
        vec![Action::Admit {
            weight: 100,
            forced: true
        }]
    );
    assert_eq!(d.h.poll_timeout(), None);
    assert_eq!(d.h.force_up(now), vec![], "already up");
    d.h.resume(now);
    // Back to probing: a failure takes it out.
    assert_eq!(d.probe(false), vec![remove(false)]);
}

#[test]
fn results_of_probes_overtaken_by_a_signal_are_ignored() {
    let t0 = Instant::now();
    let mut h = Health::new(cfg(6, 15, 1), t0);
    h.handle_timeout(t0);
    h.force_down(t0);
    h.resume(t0);
    assert_eq!(h.handle_probe(t0, 1, Outcome::Ok), vec![]);
    assert_eq!(h.handle_timeout(t0), vec![Action::Probe { seq: 2 }]);
    assert_eq!(h.handle_probe(t0, 2, Outcome::Ok), vec![admit(1)]);
}

#[test]
fn forced_down_then_readmission_is_a_plain_up() {
    // Piranha kept a stale quiesce record after SIGUSR1 and then ran `ipvsadm -e` on a
    // deleted entry, which killed nanny. Here the state is Down and the next admission is Up.
    let mut d = Driver::new(HealthConfig {
        quiesce: true,
        ..cfg(6, 6, 1)
    });
    d.probe(true);
    d.probe(false);
    assert_eq!(d.h.state(), ServerState::Quiesced);
    let now = d.now;
    d.h.force_down(now);
    assert_eq!(d.h.state(), ServerState::Down);
    d.h.resume(now);
    assert_eq!(d.probe(true), vec![admit(1)]);
}

/// xorshift64*: deterministic, seeded, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random health, signals and load figures against a model of the rules: admission only
/// after `rise` consecutive successes (or at start / after SIGHUP), removal only after `fall`
/// consecutive failures, weights within bounds, no probe while suspended.
/// Replay with `NANNY_SIM_SEED=<seed> cargo test -p nanny simulation`.
#[test]
fn simulation() {
    let seeds: Vec<u64> = match std::env::var("NANNY_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("NANNY_SIM_SEED is a u64")],
        Err(_) => (1..=200).collect(),
    };
    for seed in seeds {
        let result = std::panic::catch_unwind(|| simulate(seed));
        if let Err(e) = result {
            eprintln!("simulation failed with NANNY_SIM_SEED={seed}");
            std::panic::resume_unwind(e);
        }
    }
}

fn simulate(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let weight = u32::try_from(rng.below(200)).expect("small");
    let c = HealthConfig {
        interval: Duration::from_secs(1 + rng.below(30)),
        weight,
        scale: 1 + u32::try_from(rng.below(10)).expect("small"),
        quiesce: rng.below(2) == 0,
        rise: 1 + u32::try_from(rng.below(5)).expect("small"),
        fall: 1 + u32::try_from(rng.below(4)).expect("small"),
        load_monitor: rng.below(2) == 0,
    };
    let mut now = Instant::now();
    let mut h = Health::new(c.clone(), now);
    let (mut ok_run, mut fail_run) = (c.rise, 0u32);
    let mut up = false;
    let mut pending: Option<u64> = None;
    for _ in 0..2000 {
        match rng.below(100) {
            0 => {
                let out = h.force_down(now);
                assert!(out.len() <= 1);
                up = false;
                pending = None;
            }
            1 => {
                h.force_up(now);
                up = true;
                pending = None;
            }
            2..=4 => {
                h.resume(now);
                ok_run = c.rise;
                fail_run = 0;
                pending = None;
            }
            5..=8 => {
                let load = rng.below(400) as f64 / 100.0;
                for a in h.handle_load(now, Some(load)) {
                    let Action::SetWeight(w) = a else {
                        panic!("load gave {a:?}");
                    };
                    assert!(w >= c.weight && w <= c.weight * c.scale, "weight {w}");
                }
            }
            _ => {
                if let Some(seq) = pending.take() {
                    let ok = rng.below(3) != 0;
                    if ok {
                        ok_run += 1;
                        fail_run = 0;
                    } else {
                        fail_run += 1;
                        ok_run = 0;
                    }
                    let outcome = if ok {
                        Outcome::Ok
                    } else {
                        Outcome::Failed("x".into())
                    };
                    for a in h.handle_probe(now, seq, outcome) {
                        match a {
                            Action::Admit { forced, .. } => {
                                assert!(!forced && !up && ok_run >= c.rise);
                                up = true;
                            }
                            Action::Remove { forced, .. } => {
                                assert!(!forced && !ok);
                                assert!(!up || fail_run >= c.fall);
                                up = false;
                            }
                            Action::SetWeight(w) => {
                                assert!(up);
                                assert!(w <= c.weight, "slow start passes the weight");
                            }
                            Action::QueryLoad => assert!(up && c.load_monitor),
                            Action::Probe { .. } => panic!("probe from a result"),
                        }
                    }
                } else if let Some(due) = h.poll_timeout() {
                    assert_eq!(h.mode(), Mode::Probing);
                    now = now.max(due);
                    for a in h.handle_timeout(now) {
                        let Action::Probe { seq } = a else {
                            panic!("timeout gave {a:?}");
                        };
                        pending = Some(seq);
                    }
                } else {
                    assert_ne!(h.mode(), Mode::Probing, "stalled while probing");
                }
            }
        }
        now += Duration::from_millis(rng.below(3000));
        assert_eq!(matches!(h.state(), ServerState::Up(_)), up);
    }
}
