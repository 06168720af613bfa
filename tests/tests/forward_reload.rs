//! SIGHUP reloads `lvs.cf` in a running lvsd: a real server added and weights changed take
//! effect for the next connections (the split follows the new weights exactly), and a broken
//! file is refused (logged) while forwarding carries on with the table in force.

use std::time::Duration;

use tests::lab::{Lab, Mode, Role, privileged, wait_until};
use tests::lvsd::{Cf, Virtual, assert_split, http, start, write_cf};

const C0: Role = Role::Client(0);

/// Sends SIGHUP and waits until the log holds `needle` one more time than before.
fn hup_and_wait(lvsd: &tests::lab::Proc<'_>, needle: &str) {
    let before = lvsd.log().matches(needle).count();
    lvsd.signal("HUP").expect("SIGHUP");
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            lvsd.log().matches(needle).count() > before
        }),
        "no {needle:?} after SIGHUP; log:\n{}",
        lvsd.log()
    );
}

#[test]
fn sighup_applies_new_servers_and_weights_and_refuses_a_broken_file() {
    if !privileged("sighup_reload") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 3).run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let vip = format!("{}:80", lab.vip());

        // rs0 and rs1 only, equal weights.
        let mut v = Virtual::http(lab, "wrr").servers(lab, &[1, 1]);
        v.servers.truncate(2);
        let lvsd = start(lab, &Cf::new("nat").virtual_(v).render(lab)).expect("lvsd");
        let t = http(lab, C0, &["--to", &vip, "--requests", "60"]).expect("lab-client");
        assert_split(&t, &[30, 30, 0]);

        // rs2 added, weights 3:2:1.
        let cf = Cf::new("nat").virtual_(Virtual::http(lab, "wrr").servers(lab, &[3, 2, 1]));
        write_cf(lab, &cf.render(lab)).expect("rewrite lvs.cf");
        hup_and_wait(&lvsd, "reloaded");
        let t = http(lab, C0, &["--to", &vip, "--requests", "600"]).expect("lab-client");
        assert_split(&t, &[300, 200, 100]);

        // A broken file: refused, the 3:2:1 table stays in force.
        write_cf(
            lab,
            "network = nat\nvirtual web {\n    active = 1\n    port = notaport\n}\n",
        )
        .expect("break lvs.cf");
        hup_and_wait(&lvsd, "reload refused");
        let log = lvsd.log();
        assert!(
            log.contains("lvs.cf:4:"),
            "the refusal names FILE:LINE: {log}"
        );
        let t = http(lab, C0, &["--to", &vip, "--requests", "600"]).expect("lab-client");
        assert_split(&t, &[300, 200, 100]);
    });
}
