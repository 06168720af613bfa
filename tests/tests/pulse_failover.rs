//! Two directors, each running the real `pulse` (which starts its own `lvsd`), share one
//! lvs.cf. The primary takes the floating addresses (the VIP on `eth0:1`, the NAT router on
//! `eth1:1`) and forwards; when it dies (pulse and lvsd SIGKILLed) the backup takes them
//! over and, through its gratuitous ARPs, the client's requests reach it.

use std::path::Path;
use std::time::Duration;

use tests::lab::{Lab, Mode, Role, privileged, wait_until};
use tests::lvsd::{Cf, Virtual};

const C0: Role = Role::Client(0);
const D0: Role = Role::Director(0);
const D1: Role = Role::Director(1);
/// Bound for a takeover (not a performance assertion: deadtime is 0.5 s).
const TAKEOVER: Duration = Duration::from_secs(10);

/// The NAT service of the lab, with both directors, fast heartbeats and an active backup.
fn lvs_cf(lab: &Lab) -> String {
    let cf = Cf::new("nat")
        .virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1]))
        .render(lab);
    let pair = format!(
        "backup = {}\nbackup_active = 1\nkeepalive = 0.1\ndeadtime = 0.5\n",
        lab.addr(D1)
    );
    cf.replacen("network = nat\n", &format!("network = nat\n{pair}"), 1)
}

fn start_pulse<'l>(lab: &'l Lab, director: Role, cf: &Path) -> tests::lab::Proc<'l> {
    let socket = lab.dir().join(format!("lvsd-{}.sock", director.short()));
    let argv = [
        tests::bin("pulse").to_string_lossy().into_owned(),
        "-c".to_owned(),
        cf.to_string_lossy().into_owned(),
        "--nodaemon".to_owned(),
        "--lvsd".to_owned(),
        tests::bin("lvsd").to_string_lossy().into_owned(),
        "--socket".to_owned(),
        socket.to_string_lossy().into_owned(),
    ];
    lab.spawn(director, &argv).expect("pulse starts")
}

/// Whether `director` holds `addr` on the label `label`.
fn holds(lab: &Lab, director: Role, label: &str, addr: std::net::Ipv4Addr) -> bool {
    lab.ip(director, ["-4", "-o", "addr", "show"])
        .map(|out| {
            out.lines()
                .any(|l| l.contains(&format!("inet {addr}/")) && l.trim_end().contains(label))
        })
        .unwrap_or(false)
}

/// Whether a short burst of requests through the VIP all succeed.
fn requests_succeed(lab: &Lab) -> bool {
    let vip = format!("{}:80", lab.vip());
    let args = ["--to", vip.as_str(), "--requests", "6", "--deadline-s", "3"];
    lab.http_client(C0, &args, Duration::from_secs(10))
        .is_ok_and(|t| t.failed == 0 && t.ok == 6)
}

fn wait_for(what: &str, lab: &Lab, cond: impl FnMut() -> bool) {
    if !wait_until(TAKEOVER, Duration::from_millis(100), cond) {
        lab.dump_logs();
        panic!("{what} within {TAKEOVER:?}");
    }
}

#[test]
fn backup_takes_over_when_the_primary_dies() {
    if !privileged("pulse_backup_takes_over_when_the_primary_dies") {
        return;
    }
    Lab::builder()
        .directors(2)
        .floating_on(None)
        .real_servers(Mode::Nat, 2)
        .run(|lab| {
            let _http = lab.start_http(80).expect("http servers");
            let cf = lab.write_file("lvs.cf", &lvs_cf(lab)).expect("lvs.cf");
            let vip = lab.vip();
            let p0 = start_pulse(lab, D0, &cf);
            let _p1 = start_pulse(lab, D1, &cf);

            wait_for("director 0 holds the VIP on eth0:1", lab, || {
                holds(lab, D0, "eth0:1", vip)
            });
            wait_for("requests through the VIP succeed", lab, || {
                requests_succeed(lab)
            });
            assert!(
                !holds(lab, D1, "eth0:1", vip),
                "director 1 holds the VIP too"
            );

            // Director 0 dies: pulse first, then everything else in its namespace (lvsd).
            p0.signal("KILL").expect("SIGKILL pulse");
            lab.kill_all(D0);

            wait_for("director 1 holds the VIP on eth0:1", lab, || {
                holds(lab, D1, "eth0:1", vip)
            });
            wait_for(
                "requests through the VIP succeed after the takeover",
                lab,
                || requests_succeed(lab),
            );
        });
}

/// SIGTERM: the active pulse sends its last "stopped" heartbeat, releases the addresses,
/// stops its lvsd and exits 0; the partner takes over at once. The primary, started again,
/// stays backup (no fail-back).
#[test]
fn sigterm_hands_over_and_the_primary_does_not_fail_back() {
    if !privileged("pulse_sigterm_hands_over_and_the_primary_does_not_fail_back") {
        return;
    }
    Lab::builder()
        .directors(2)
        .floating_on(None)
        .real_servers(Mode::Nat, 2)
        .run(|lab| {
            let _http = lab.start_http(80).expect("http servers");
            let cf = lab.write_file("lvs.cf", &lvs_cf(lab)).expect("lvs.cf");
            let vip = lab.vip();
            let mut p0 = start_pulse(lab, D0, &cf);
            let _p1 = start_pulse(lab, D1, &cf);
            wait_for("director 0 holds the VIP on eth0:1", lab, || {
                holds(lab, D0, "eth0:1", vip)
            });
            wait_for("director 1 stands by", lab, || {
                !holds(lab, D1, "eth0:1", vip)
            });

            p0.signal("TERM").expect("SIGTERM pulse");
            let status = p0.wait(TAKEOVER).expect("pulse exits after SIGTERM");
            assert!(
                status.success(),
                "pulse exited with {status}:\n{}",
                p0.log()
            );
            assert!(!holds(lab, D0, "eth0:1", vip), "director 0 kept the VIP");
            wait_for("director 1 holds the VIP on eth0:1", lab, || {
                holds(lab, D1, "eth0:1", vip)
            });
            wait_for(
                "requests through the VIP succeed after the hand-over",
                lab,
                || requests_succeed(lab),
            );

            // The primary returns: it sees an active partner and stays backup.
            let _p0 = start_pulse(lab, D0, &cf);
            std::thread::sleep(Duration::from_secs(2));
            assert!(!holds(lab, D0, "eth0:1", vip), "the primary failed back");
            assert!(holds(lab, D1, "eth0:1", vip), "director 1 lost the VIP");
            assert!(
                requests_succeed(lab),
                "requests fail with director 1 active"
            );
        });
}

/// `pulse --test-start` on each director prints its role, the heartbeat path, the addresses
/// it would take over with their labels and lvsd's command line, exits 0, and changes
/// nothing (no address added, no lvsd started).
#[test]
fn test_start_prints_the_plan_and_changes_nothing() {
    if !privileged("pulse_test_start_prints_the_plan_and_changes_nothing") {
        return;
    }
    Lab::builder()
        .directors(2)
        .floating_on(None)
        .real_servers(Mode::Nat, 2)
        .run(|lab| {
            let cf = lab.write_file("lvs.cf", &lvs_cf(lab)).expect("lvs.cf");
            let vip = lab.vip();
            for (director, role) in [(D0, "role: primary"), (D1, "role: backup")] {
                let pulse = tests::bin("pulse");
                let out = lab
                    .exec(
                        director,
                        [
                            pulse.as_os_str(),
                            "-c".as_ref(),
                            cf.as_os_str(),
                            "--test-start".as_ref(),
                        ],
                    )
                    .expect("pulse runs");
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "pulse --test-start: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(stdout.contains(role), "{stdout}");
                assert!(
                    stdout.contains(&format!("takeover: add {vip}/")),
                    "{stdout}"
                );
                assert!(stdout.contains("on eth0:1"), "{stdout}");
                assert!(stdout.contains("--standby --socket"), "{stdout}");
                assert!(
                    !holds(lab, director, "eth0:1", vip),
                    "--test-start added the VIP"
                );
            }
        });
}
