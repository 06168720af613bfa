//! The systemd protocol as a `Type=notify` unit with `WatchdogSec=` sees it, with the test
//! standing in for systemd: a datagram socket as `NOTIFY_SOCKET` and `WATCHDOG_USEC` in the
//! environment. lvsd alone (lvsd.service) and pulse (pulse.service, which runs lvsd and lvsd
//! its nannies) each say `READY=1` once they serve, feed the watchdog while they run, say
//! `STOPPING=1` on SIGTERM, and no child speaks for the unit: exactly one `READY=1`.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use tests::lab::{Lab, Mode, Role, privileged};
use tests::lvsd::{Cf, Virtual, write_cf};

const D0: Role = Role::Director(0);

/// Every message systemd would have received within `within`, until `until` matches.
fn collect(
    sock: &UnixDatagram,
    within: Duration,
    until: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !until(&got) {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

fn count(msgs: &[String], what: &str) -> usize {
    msgs.iter().filter(|m| m.lines().any(|l| l == what)).count()
}

/// Runs `argv` on director 0 as systemd would run a unit's main process with
/// `WatchdogSec=1` (pings expected every 0.5 s) and checks the conversation.
fn converse(lab: &Lab, argv: &[String], ready_status: &str) {
    let path = lab.dir().join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut full = vec![
        "env".to_owned(),
        format!("NOTIFY_SOCKET={}", path.display()),
        "WATCHDOG_USEC=1000000".to_owned(),
    ];
    full.extend_from_slice(argv);
    let mut p = lab.spawn(D0, &full).expect("spawn");
    let start = collect(&sock, Duration::from_secs(30), |m| count(m, "READY=1") > 0);
    assert_eq!(count(&start, "READY=1"), 1, "{start:?}\n{}", p.log());
    assert!(
        start
            .iter()
            .any(|m| m.contains("STATUS=") && m.contains(ready_status)),
        "{start:?}"
    );
    // Two seconds of running: about four pings, and no second READY (from a child).
    let running = collect(&sock, Duration::from_secs(2), |_| false);
    let pings = count(&running, "WATCHDOG=1");
    assert!(
        (2..=8).contains(&pings),
        "{pings} pings in 2 s: {running:?}"
    );
    assert_eq!(
        count(&running, "READY=1"),
        0,
        "a child spoke for the unit: {running:?}"
    );
    p.signal("TERM").expect("SIGTERM");
    let end = collect(&sock, Duration::from_secs(10), |m| {
        count(m, "STOPPING=1") > 0
    });
    assert_eq!(count(&end, "STOPPING=1"), 1, "{end:?}");
    let status = p.wait(Duration::from_secs(20)).expect("exits");
    assert!(status.success(), "{status:?}\n{}", p.log());
}

#[test]
fn lvsd_alone_notifies_ready_feeds_the_watchdog_and_says_stopping() {
    if !privileged("lvsd_alone_notifies_ready_feeds_the_watchdog_and_says_stopping") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 2).run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = Cf::new("nat")
            .virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1]))
            .render(lab);
        let path = write_cf(lab, &cf).expect("lvs.cf");
        // With nannies, as lvsd.service runs it: they must stay quiet towards systemd.
        let argv = vec![
            tests::bin("lvsd").to_string_lossy().into_owned(),
            "-c".to_owned(),
            path.to_string_lossy().into_owned(),
            "--nodaemon".to_owned(),
            "--socket".to_owned(),
            lab.dir().join("lvsd.sock").to_string_lossy().into_owned(),
        ];
        converse(lab, &argv, "active: 1 virtual services");
    });
}

#[test]
fn pulse_notifies_for_the_unit_and_lvsd_does_not() {
    if !privileged("pulse_notifies_for_the_unit_and_lvsd_does_not") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 1).run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        // No backup: pulse is active at once, without heartbeats.
        let cf = Cf::new("nat")
            .virtual_(Virtual::http(lab, "rr").servers(lab, &[1]))
            .render(lab);
        let path = write_cf(lab, &cf).expect("lvs.cf");
        let argv = vec![
            tests::bin("pulse").to_string_lossy().into_owned(),
            "-c".to_owned(),
            path.to_string_lossy().into_owned(),
            "--nodaemon".to_owned(),
            "--lvsd".to_owned(),
            tests::bin("lvsd").to_string_lossy().into_owned(),
            "--socket".to_owned(),
            tests::pair::socket(lab, D0).to_string_lossy().into_owned(),
        ];
        // Standby or active at once, depending on the machine's start: the line says which.
        converse(lab, &argv, "; heartbeats running, lvsd ready");
    });
}
