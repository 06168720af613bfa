//! Nanny supervision when a nanny cannot stay up: lvsd restarts it with backoff (1, 2, 4, 8,
//! 16 s) and gives up after five restarts within five minutes. Then `hard_shutdown = 1`
//! (Piranha's default) stops lvsd with an error, so that pulse fails over to the partner;
//! `hard_shutdown = 0` logs `manual action needed` and keeps forwarding.
//!
//! The failing "nanny" is `/bin/false` given with `--nanny`: each test takes about 35 s,
//! the length of the backoff.

use std::time::Duration;

use tests::lab::{Lab, Mode, Role, privileged};
use tests::lvsd::{Cf, READY, READY_TIMEOUT, Virtual, assert_split, http, spawn};

fn lab() -> tests::lab::LabBuilder {
    Lab::builder().real_servers(Mode::Nat, 1)
}

#[test]
fn restarts_exhausted_with_hard_shutdown_stop_lvsd() {
    if !privileged("restarts_exhausted_with_hard_shutdown_stop_lvsd") {
        return;
    }
    lab().run(|lab| {
        let cf = Cf::new("nat").virtual_(Virtual::http(lab, "rr").servers(lab, &[1]));
        let mut lvsd = spawn(lab, &cf.render(lab), &["--nanny", "/bin/false"]).expect("spawn lvsd");
        lvsd.wait_for_log(READY, READY_TIMEOUT)
            .expect("lvsd forwards");
        let status = lvsd.wait(Duration::from_secs(60)).expect("lvsd gives up");
        let log = lvsd.log();
        assert_eq!(status.code(), Some(1), "{log}");
        assert_eq!(log.matches("restarting in").count(), 5, "{log}");
        assert!(
            log.contains("hard_shutdown = 1: shutting down lvs"),
            "{log}"
        );
        assert!(log.contains("giving up"), "{log}");
        // It cleaned up on the way out.
        let link = lab
            .ip(Role::Director(0), ["-d", "link", "show"])
            .expect("ip");
        assert!(!link.contains("prog/xdp"), "{link}");
    });
}

#[test]
fn restarts_exhausted_without_hard_shutdown_keep_forwarding() {
    if !privileged("restarts_exhausted_without_hard_shutdown_keep_forwarding") {
        return;
    }
    lab().run(|lab| {
        let _http = lab.start_http(80).expect("http server");
        let cf = format!(
            "hard_shutdown = 0\n{}",
            Cf::new("nat")
                .virtual_(Virtual::http(lab, "rr").servers(lab, &[1]))
                .render(lab)
        );
        let mut lvsd = spawn(lab, &cf, &["--nanny", "/bin/false"]).expect("spawn lvsd");
        lvsd.wait_for_log(READY, READY_TIMEOUT)
            .expect("lvsd forwards");
        lvsd.wait_for_log("manual action needed", Duration::from_secs(60))
            .expect("lvsd gives up on the nanny");
        assert!(lvsd.exited().is_none(), "lvsd still runs: {}", lvsd.log());
        let vip = format!("{}:80", lab.vip());
        let t = http(lab, Role::Client(0), &["--to", &vip, "--requests", "5"]).expect("client");
        assert_split(&t, &[5]);
    });
}

#[test]
fn a_reload_restarts_only_the_nannies_whose_settings_changed() {
    if !privileged("a_reload_restarts_only_the_nannies_whose_settings_changed") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 2).run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = |w1: u32| {
            Cf::new("nat")
                .virtual_(Virtual::http(lab, "rr").servers(lab, &[1, w1]))
                .render(lab)
        };
        let mut lvsd = tests::lvsd::start_with_health(lab, &cf(1)).expect("lvsd forwards");
        // rs1's weight changes: its nanny gets another -w; rs0's arguments are the same.
        tests::lvsd::write_cf(lab, &cf(2)).expect("new file");
        lvsd.signal("HUP").expect("SIGHUP");
        lvsd.wait_for_log("stopping nanny for web/rs1", Duration::from_secs(10))
            .expect("rs1's nanny replaced");
        let t0 = std::time::Instant::now();
        while lvsd.log().matches("create_monitor for web/rs1").count() < 2 {
            assert!(t0.elapsed() < Duration::from_secs(10), "{}", lvsd.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = lvsd.log();
        assert_eq!(
            log.matches("create_monitor for web/rs0").count(),
            1,
            "{log}"
        );
        assert!(!log.contains("stopping nanny for web/rs0"), "{log}");
    });
}
