//! One test per row of Piranha's LVS-mode table (reference §1.4), then the additions.
//! Fake clock: plain `Instant`s in milliseconds.

use super::*;

const KEEPALIVE: Duration = Duration::from_millis(100);
const DEADTIME: Duration = Duration::from_millis(300);

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn settings(role: Role) -> Settings {
    Settings {
        role,
        keepalive: KEEPALIVE,
        deadtime: DEADTIME,
        send_heartbeats: true,
        monitor_links: true,
        force_active: false,
    }
}

fn standby(role: Role) -> Machine {
    let (m, out) = Machine::new(settings(role), t(0)).expect("valid settings");
    assert_eq!(out, vec![Action::SendHeartbeat(PeerState::Standby)]);
    m
}

fn active(role: Role) -> Machine {
    let mut m = standby(role);
    let out = m.handle_heartbeat(t(10), PeerState::Standby);
    assert!(matches!(out[0], Action::Activate { .. }));
    assert!(m.is_active());
    m
}

fn activate_reason(out: &[Action]) -> Option<&str> {
    out.iter().find_map(|a| match a {
        Action::Activate { reason } => Some(reason.as_str()),
        _ => None,
    })
}

// Row: heartbeat "running" from partner, always: clear CHILDFAIL.
#[test]
fn running_clears_childfail() {
    let mut m = standby(Role::Backup);
    m.handle_lvsd_died(t(5));
    assert!(m.is_latched());
    assert_eq!(m.handle_heartbeat(t(10), PeerState::Active), vec![]);
    assert!(!m.is_latched());
}

// Row: "running", I am active and backup: send a heartbeat immediately, then deactivate.
#[test]
fn running_to_active_backup_sends_then_steps_down() {
    let mut m = active(Role::Backup);
    let out = m.handle_heartbeat(t(20), PeerState::Active);
    assert_eq!(
        out,
        vec![
            Action::SendHeartbeat(PeerState::Active),
            Action::Deactivate {
                reason: "partner active: stepping down (primary wins)".into()
            }
        ]
    );
    assert!(!m.is_active());
    assert_eq!(
        m.handle_timeout(t(200)),
        vec![Action::SendHeartbeat(PeerState::Standby)]
    );
}

// Row: "running", I am active and master: run active_cmd again and re-send ARPs.
#[test]
fn running_to_active_primary_reannounces() {
    let mut m = active(Role::Primary);
    let out = m.handle_heartbeat(t(20), PeerState::Active);
    assert_eq!(
        out,
        vec![Action::Reannounce {
            reason: "partner active: resending arps".into()
        }]
    );
    assert!(m.is_active());
}

// Row: "running", I am inactive: nothing (no fail-back for a returning primary).
#[test]
fn running_to_inactive_does_nothing() {
    for role in [Role::Primary, Role::Backup] {
        let mut m = standby(role);
        assert_eq!(m.handle_heartbeat(t(50), PeerState::Active), vec![]);
        assert!(!m.is_active());
    }
}

// Row: "stopped", I am inactive, no latches: activate at once, reason by role.
#[test]
fn stopped_to_inactive_activates() {
    for (role, text) in [
        (Role::Primary, "backup inactive: activating"),
        (Role::Backup, "primary inactive: activating"),
    ] {
        let mut m = standby(role);
        let out = m.handle_heartbeat(t(50), PeerState::Standby);
        assert_eq!(
            out,
            vec![
                Action::Activate {
                    reason: text.into()
                },
                Action::SendHeartbeat(PeerState::Active)
            ]
        );
    }
}

// Row: "stopped", inactive but LINKFAIL or CHILDFAIL: nothing.
#[test]
fn stopped_with_a_latch_does_nothing() {
    let mut m = standby(Role::Primary);
    m.handle_link(t(1), false);
    assert_eq!(m.handle_heartbeat(t(50), PeerState::Standby), vec![]);
    let mut m = standby(Role::Primary);
    m.handle_lvsd_died(t(1));
    assert_eq!(m.handle_heartbeat(t(50), PeerState::Standby), vec![]);
    assert!(!m.is_active());
}

// Row: "stopped", I am active: nothing.
#[test]
fn stopped_to_active_does_nothing() {
    let mut m = active(Role::Backup);
    assert_eq!(m.handle_heartbeat(t(50), PeerState::Standby), vec![]);
    assert!(m.is_active());
}

// Row: send timer: heartbeat with own state, re-armed now + keepalive.
#[test]
fn send_timer_sends_own_state_and_rearms() {
    let mut m = standby(Role::Primary);
    assert_eq!(m.poll_timeout(), Some(t(100)));
    assert_eq!(m.handle_timeout(t(99)), vec![]);
    assert_eq!(
        m.handle_timeout(t(100)),
        vec![Action::SendHeartbeat(PeerState::Standby)]
    );
    assert_eq!(m.poll_timeout(), Some(t(200)));
    let mut m = active(Role::Primary); // its activation heartbeat went out at 10
    assert_eq!(m.poll_timeout(), Some(t(110)));
    assert_eq!(
        m.handle_timeout(t(110)),
        vec![Action::SendHeartbeat(PeerState::Active)]
    );
}

// Row: dead timer, inactive, no latch: activate, re-arm now + deadtime.
#[test]
fn dead_timer_activates_with_the_silence_in_the_reason() {
    let mut m = standby(Role::Backup);
    m.handle_heartbeat(t(50), PeerState::Active);
    m.handle_timeout(t(100));
    m.handle_timeout(t(200));
    m.handle_timeout(t(300));
    assert_eq!(m.poll_timeout(), Some(t(350)));
    let out = m.handle_timeout(t(350));
    assert_eq!(
        out,
        vec![
            Action::Activate {
                reason: "partner dead after 0.3 s: activating".into()
            },
            Action::SendHeartbeat(PeerState::Active)
        ]
    );
    // Re-armed: the next dead-timer expiry is 350 + 300.
    m.handle_timeout(t(450));
    m.handle_timeout(t(550));
    assert_eq!(m.poll_timeout(), Some(t(650)));
}

// Row: dead timer with a latch or while active: nothing but the re-arm.
#[test]
fn dead_timer_blocked_by_latches_and_idle_when_active() {
    let mut m = standby(Role::Primary);
    m.handle_lvsd_died(t(1));
    let out = m.handle_timeout(t(300));
    assert_eq!(activate_reason(&out), None);
    assert_eq!(
        m.poll_timeout(),
        Some(t(400)),
        "send timer at 400, dead at 600"
    );
    let mut m = standby(Role::Primary);
    m.handle_link(t(1), false);
    assert_eq!(activate_reason(&m.handle_timeout(t(300))), None);
    let mut m = active(Role::Primary);
    let out = m.handle_timeout(t(400));
    assert_eq!(out, vec![Action::SendHeartbeat(PeerState::Active)]);
}

// Any valid heartbeat resets need_by = now + deadtime.
#[test]
fn any_heartbeat_rearms_the_dead_timer() {
    let mut m = standby(Role::Backup);
    m.handle_heartbeat(t(250), PeerState::Active);
    assert_eq!(activate_reason(&m.handle_timeout(t(300))), None);
    assert_eq!(m.poll_timeout(), Some(t(400)));
    m.handle_timeout(t(400));
    m.handle_timeout(t(500));
    assert!(activate_reason(&m.handle_timeout(t(550))).is_some());
}

#[test]
fn force_active_activates_at_start_and_the_backup_yields() {
    let s = Settings {
        force_active: true,
        ..settings(Role::Primary)
    };
    let (mut primary, out) = Machine::new(s, t(0)).expect("valid");
    assert_eq!(
        activate_reason(&out),
        Some("forced active on start-up: activating")
    );
    assert_eq!(out[1], Action::SendHeartbeat(PeerState::Active));
    let mut backup = active(Role::Backup);
    let out = backup.handle_heartbeat(t(20), PeerState::Active);
    assert!(!backup.is_active());
    assert_eq!(out[0], Action::SendHeartbeat(PeerState::Active));
    assert!(matches!(
        primary.handle_heartbeat(t(21), PeerState::Active)[0],
        Action::Reannounce { .. }
    ));
}

#[test]
fn no_fail_back_for_a_returning_primary() {
    let mut backup = active(Role::Backup);
    let (mut primary, out) = Machine::new(settings(Role::Primary), t(1000)).expect("valid");
    assert_eq!(out, vec![Action::SendHeartbeat(PeerState::Standby)]);
    assert_eq!(backup.handle_heartbeat(t(1001), PeerState::Standby), vec![]);
    assert_eq!(primary.handle_heartbeat(t(1002), PeerState::Active), vec![]);
    assert!(backup.is_active() && !primary.is_active());
}

#[test]
fn lvsd_death_deactivates_and_tells_the_partner_restart_unlatches() {
    let mut m = active(Role::Primary);
    let out = m.handle_lvsd_died(t(20));
    assert_eq!(
        out,
        vec![
            Action::Deactivate {
                reason: "lvsd died: deactivating".into()
            },
            Action::SendHeartbeat(PeerState::Standby)
        ]
    );
    assert_eq!(m.handle_heartbeat(t(30), PeerState::Standby), vec![]);
    m.handle_lvsd_restarted(t(40));
    assert!(activate_reason(&m.handle_heartbeat(t(50), PeerState::Standby)).is_some());
}

/// A restart that took longer than deadtime does not let a stale dead timer activate the
/// node at once: the partner gets a full deadtime from the restart to be heard.
#[test]
fn lvsd_restart_starts_the_dead_timer_over() {
    let mut m = active(Role::Primary);
    m.handle_lvsd_died(t(20));
    // Nothing heard for a long time (say, the loop was busy restarting lvsd).
    let later = t(20) + m.settings().deadtime * 10;
    m.handle_lvsd_restarted(later);
    assert!(activate_reason(&m.handle_timeout(later)).is_none());
    assert!(!m.is_active());
    // The partner is heard: active, so this node stays standby.
    assert_eq!(
        m.handle_heartbeat(later + m.settings().keepalive, PeerState::Active),
        vec![]
    );
    // Silence for a whole deadtime after that: now it activates.
    let dead = later + m.settings().keepalive + m.settings().deadtime;
    assert!(activate_reason(&m.handle_timeout(dead)).is_some());
}

#[test]
fn link_down_deactivates_link_up_unlatches_and_heartbeats_continue() {
    let mut m = active(Role::Backup);
    let out = m.handle_link(t(20), false);
    assert_eq!(
        out,
        vec![
            Action::Deactivate {
                reason: "local link failure: deactivating".into()
            },
            Action::SendHeartbeat(PeerState::Standby)
        ]
    );
    assert_eq!(
        m.handle_timeout(t(120)),
        vec![Action::SendHeartbeat(PeerState::Standby)]
    );
    assert_eq!(m.handle_link(t(130), true), vec![]);
    assert!(activate_reason(&m.handle_heartbeat(t(140), PeerState::Standby)).is_some());

    let s = Settings {
        monitor_links: false,
        ..settings(Role::Backup)
    };
    let (mut m, _) = Machine::new(s, t(0)).expect("valid");
    assert_eq!(m.handle_link(t(1), false), vec![]);
    assert!(!m.is_latched());
}

#[test]
fn shutdown_sends_a_last_standby_heartbeat_and_goes_inert() {
    let mut m = active(Role::Primary);
    let out = m.handle_shutdown(t(20));
    assert_eq!(
        out,
        vec![
            Action::Deactivate {
                reason: "shutting down: deactivating".into()
            },
            Action::SendHeartbeat(PeerState::Standby)
        ]
    );
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(m.handle_timeout(t(10_000)), vec![]);
    assert_eq!(m.handle_heartbeat(t(10_001), PeerState::Standby), vec![]);
    assert_eq!(m.handle_shutdown(t(10_002)), vec![]);
    let mut m = standby(Role::Backup);
    assert_eq!(
        m.handle_shutdown(t(5)),
        vec![Action::SendHeartbeat(PeerState::Standby)]
    );
}

#[test]
fn reload_applies_timings_and_refuses_bad_settings() {
    let mut m = standby(Role::Backup);
    m.handle_heartbeat(t(50), PeerState::Active);
    let faster = Settings {
        keepalive: Duration::from_millis(20),
        deadtime: Duration::from_millis(60),
        ..settings(Role::Backup)
    };
    assert_eq!(m.handle_reload(t(60), faster), Ok(vec![Action::ReloadLvsd]));
    assert_eq!(m.poll_timeout(), Some(t(80)));
    m.handle_timeout(t(80));
    assert_eq!(
        m.poll_timeout(),
        Some(t(100)),
        "dead timer now 50 + 60 = 110"
    );
    m.handle_timeout(t(100));
    assert_eq!(
        activate_reason(&m.handle_timeout(t(110))),
        Some("partner dead after 0.06 s: activating")
    );
    let bad = Settings {
        deadtime: Duration::from_millis(20),
        ..m.settings().clone()
    };
    assert!(matches!(
        m.handle_reload(t(120), bad),
        Err(SettingsError::DeadtimeTooShort { .. })
    ));
    assert_eq!(m.settings().deadtime, Duration::from_millis(60));
}

#[test]
fn lone_primary_sends_nothing_and_activates_after_deadtime() {
    let s = Settings {
        send_heartbeats: false,
        ..settings(Role::Primary)
    };
    let (mut m, out) = Machine::new(s, t(0)).expect("valid");
    assert_eq!(out, vec![]);
    assert_eq!(m.poll_timeout(), Some(t(300)));
    assert_eq!(
        m.handle_timeout(t(300)),
        vec![Action::Activate {
            reason: "no partner configured: activating".into()
        }]
    );
}

#[test]
fn a_partner_never_heard_is_not_called_dead() {
    let (mut m, _) = Machine::new(settings(Role::Backup), t(0)).expect("valid");
    for ms in [100, 200] {
        m.handle_timeout(t(ms));
    }
    assert_eq!(
        activate_reason(&m.handle_timeout(t(300))),
        Some("no heartbeat from the partner in 0.3 s since start: activating")
    );
}

#[test]
fn settings_are_validated() {
    let zero = Settings {
        keepalive: Duration::ZERO,
        ..settings(Role::Primary)
    };
    assert_eq!(
        Machine::new(zero, t(0)).err(),
        Some(SettingsError::ZeroKeepalive)
    );
    let equal = Settings {
        deadtime: KEEPALIVE,
        ..settings(Role::Primary)
    };
    assert!(Machine::new(equal, t(0)).is_err());
}

#[test]
fn split_brain_after_a_partition_primary_wins_within_one_round() {
    // Both active after a partition; the first heartbeats to cross decide.
    let mut p = active(Role::Primary);
    let mut b = active(Role::Backup);
    let from_p = p.handle_timeout(t(110));
    assert_eq!(from_p, vec![Action::SendHeartbeat(PeerState::Active)]);
    let out = b.handle_heartbeat(t(111), PeerState::Active);
    assert!(!b.is_active());
    assert_eq!(out[0], Action::SendHeartbeat(PeerState::Active));
    assert!(matches!(
        p.handle_heartbeat(t(112), PeerState::Active)[0],
        Action::Reannounce { .. }
    ));
    assert!(p.is_active());
    // The backup's next heartbeat says standby; nothing more happens on either side.
    let out = b.handle_timeout(t(211));
    assert_eq!(out, vec![Action::SendHeartbeat(PeerState::Standby)]);
    assert_eq!(p.handle_heartbeat(t(212), PeerState::Standby), vec![]);
}

#[test]
fn journal_seconds() {
    assert_eq!(secs(Duration::from_millis(150)), "0.15");
    assert_eq!(secs(Duration::from_secs(5)), "5");
    assert_eq!(secs(Duration::from_millis(2500)), "2.5");
}

#[derive(Clone, Debug)]
enum Input {
    Heartbeat(bool),
    Timeout,
    LvsdDied,
    LvsdRestarted,
    Link(bool),
    Shutdown,
    Reload(u64),
}

fn input() -> impl proptest::strategy::Strategy<Value = Input> {
    use proptest::prelude::*;
    prop_oneof![
        4 => any::<bool>().prop_map(Input::Heartbeat),
        6 => Just(Input::Timeout),
        1 => Just(Input::LvsdDied),
        1 => Just(Input::LvsdRestarted),
        1 => any::<bool>().prop_map(Input::Link),
        1 => Just(Input::Shutdown),
        1 => (1u64..200).prop_map(Input::Reload),
    ]
}

proptest::proptest! {
    /// Whatever the inputs: activations and deactivations alternate and match `is_active`;
    /// never active while latched or shut down; after `handle_timeout(now)` the next deadline
    /// lies in the future (no busy loop in the shell).
    #[test]
    fn actions_stay_consistent(
        primary in proptest::bool::ANY,
        steps in proptest::collection::vec((0u64..400, input()), 1..200),
    ) {
        let role = if primary { Role::Primary } else { Role::Backup };
        let (mut m, out) = Machine::new(settings(role), t(0)).expect("valid");
        let mut shadow = false;
        let mut now = 0;
        let follow = |shadow: &mut bool, out: &[Action]| -> Result<(), String> {
            for a in out {
                match a {
                    Action::Activate { .. } if *shadow => return Err("activated twice".into()),
                    Action::Deactivate { .. } if !*shadow => return Err("deactivated twice".into()),
                    Action::Activate { .. } => *shadow = true,
                    Action::Deactivate { .. } => *shadow = false,
                    _ => {}
                }
            }
            Ok(())
        };
        follow(&mut shadow, &out).map_err(proptest::test_runner::TestCaseError::fail)?;
        for (dt, input) in steps {
            now += dt;
            let at = t(now);
            let out = match input {
                Input::Heartbeat(active) => m.handle_heartbeat(
                    at,
                    if active { PeerState::Active } else { PeerState::Standby },
                ),
                Input::Timeout => m.handle_timeout(at),
                Input::LvsdDied => m.handle_lvsd_died(at),
                Input::LvsdRestarted => m.handle_lvsd_restarted(at),
                Input::Link(up) => m.handle_link(at, up),
                Input::Shutdown => m.handle_shutdown(at),
                Input::Reload(k) => {
                    let s = Settings {
                        keepalive: Duration::from_millis(k),
                        deadtime: Duration::from_millis(3 * k),
                        ..settings(role)
                    };
                    m.handle_reload(at, s).expect("valid")
                }
            };
            follow(&mut shadow, &out).map_err(proptest::test_runner::TestCaseError::fail)?;
            proptest::prop_assert_eq!(shadow, m.is_active());
            proptest::prop_assert!(!(m.is_active() && m.is_latched()));
            if matches!(input, Input::Timeout) {
                proptest::prop_assert!(m.poll_timeout().is_none_or(|d| d > at));
            }
        }
    }
}
