//! The units' capabilities are enough, and each one is needed: the daemons run as uid 0 with
//! only the capabilities of `systemd/*.service` (`CapabilityBoundingSet=`, read from the unit
//! files here, so the test follows them), started through util-linux's `setpriv` the way
//! systemd starts them (bounding, inheritable and ambient sets):
//!
//! - lvsd (lvsd.service's set) with its nannies: forwards through the VIP, installs its
//!   nftables guard (so `nft`, which it runs, had what it needs too), logs no permission
//!   error, stops cleanly. Then, one capability of the set dropped at a time: lvsd does not
//!   forward, exits non-zero, and says why (a permission error naming the step).
//! - pulse (pulse.service's set) on both directors of a pair, each starting its own lvsd:
//!   the primary takes the VIP, requests through it succeed, neither pulse says it could not
//!   lock its memory or run under SCHED_RR, nothing logs a permission error; SIGTERM on the
//!   primary moves the VIP to the backup (addresses and gratuitous ARPs) and requests still
//!   succeed; with authenticated heartbeats, connection sync bound to `eth1` and the status
//!   page on port 81. Then pulse without each capability only it needs: without
//!   CAP_NET_BIND_SERVICE it cannot bind the heartbeat port and exits; without CAP_SYS_NICE or
//!   CAP_IPC_LOCK it warns that heartbeats are less isolated.
//!
//! Every unit capability name is also checked against `setpriv --list-caps` (systemd only
//! warns about an unknown name). Root only: the tests skip (and pass) elsewhere, or without
//! `setpriv`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tests::lab::{Lab, Mode, Proc, Role, privileged, wait_until};
use tests::lvsd::{Cf, GUARD, READY, READY_TIMEOUT, Virtual, socket_path, stop_clean, write_cf};

const C0: Role = Role::Client(0);
const D0: Role = Role::Director(0);
const D1: Role = Role::Director(1);
/// Bound for a takeover, lvsd's exit, a burst of requests to succeed.
const WITHIN: Duration = Duration::from_secs(20);

/// What a daemon logs when the kernel refused it something for want of a capability
/// (lower case; the log is compared in lower case).
const PERMISSION_ERRORS: &[&str] = &[
    "operation not permitted",
    "permission denied",
    "os error 1)",
    "os error 13)",
    "eperm",
    "eacces",
    "needs cap_",
    "cannot lock pulse's memory",
    "cannot run under sched_rr",
];

fn unit_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("systemd")
        .join(name)
}

/// The capabilities of `CapabilityBoundingSet=` lines of a unit (their union; `~` inverted
/// lists are not used by our units and are refused), as systemd names them (`CAP_NET_ADMIN`).
fn unit_caps(unit: &str) -> BTreeSet<String> {
    let path = unit_path(unit);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut caps = BTreeSet::new();
    for line in text.lines() {
        let Some(value) = line.trim().strip_prefix("CapabilityBoundingSet=") else {
            continue;
        };
        assert!(
            !value.trim_start().starts_with('~'),
            "{unit}: an inverted CapabilityBoundingSet is not what these tests expect"
        );
        caps.extend(value.split_whitespace().map(str::to_owned));
    }
    assert!(!caps.is_empty(), "{unit} has no CapabilityBoundingSet=");
    caps
}

/// Whether `setpriv` (util-linux) is here; prints a SKIP line when not.
fn have_setpriv(test: &str) -> bool {
    let ok = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP {test}: setpriv (util-linux) is missing");
    }
    ok
}

/// `setpriv` arguments that leave only `caps` (systemd names) in the bounding, inheritable
/// and ambient sets and keep uid 0: what systemd does with `CapabilityBoundingSet=` and
/// `AmbientCapabilities=`. Every program run from there on (lvsd, nft, nanny, scripts) gets
/// at most these.
fn setpriv(caps: &BTreeSet<String>) -> Vec<String> {
    let list: Vec<String> = caps
        .iter()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    let list = list.join(",");
    let sep = if list.is_empty() { "" } else { "," };
    vec![
        "setpriv".to_owned(),
        format!("--bounding-set=-all{sep}{list}"),
        format!("--inh-caps=-all{sep}{list}"),
        format!("--ambient-caps=-all{sep}{list}"),
    ]
}

fn without(caps: &BTreeSet<String>, cap: &str) -> BTreeSet<String> {
    caps.iter().filter(|c| *c != cap).cloned().collect()
}

/// The permission errors of `log` (lines holding one of [`PERMISSION_ERRORS`]).
fn permission_errors(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            let l = l.to_lowercase();
            PERMISSION_ERRORS.iter().any(|n| l.contains(n))
        })
        .map(str::to_owned)
        .collect()
}

/// What lvsd's log says (lower case) when `cap` is missing.
fn lvsd_failure(cap: &str) -> &'static [&'static str] {
    match cap {
        // Without CAP_IPC_LOCK the AF_XDP UMEM counts against RLIMIT_MEMLOCK (8 MiB by
        // default), which it exceeds: XDP_UMEM_REG fails with ENOBUFS.
        "CAP_IPC_LOCK" => &["no buffer space available"],
        _ => PERMISSION_ERRORS,
    }
}

/// Whether `n` requests through the VIP from the client all succeed, spread over both real
/// servers.
fn forwards(lab: &Lab, n: usize) -> bool {
    let vip = format!("{}:80", lab.vip());
    let n = n.to_string();
    let args = [
        "--to",
        vip.as_str(),
        "--requests",
        n.as_str(),
        "--deadline-s",
        "5",
    ];
    lab.http_client(C0, &args, Duration::from_secs(15))
        .is_ok_and(|t| t.failed == 0 && t.ok > 0 && t.servers.len() == 2)
}

fn nat_cf(lab: &Lab) -> String {
    Cf::new("nat")
        .virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1]))
        .render(lab)
}

/// Starts `setpriv ... lvsd -c <lab>/lvs.cf --nodaemon --socket <lab>/lvsd.sock` on director 0,
/// with its nannies.
fn spawn_lvsd<'l>(lab: &'l Lab, caps: &BTreeSet<String>) -> Proc<'l> {
    let cf = write_cf(lab, &nat_cf(lab)).expect("lvs.cf");
    let mut argv = setpriv(caps);
    argv.extend([
        tests::bin("lvsd").to_string_lossy().into_owned(),
        "-c".to_owned(),
        cf.to_string_lossy().into_owned(),
        "--nodaemon".to_owned(),
        "--socket".to_owned(),
        socket_path(lab).to_string_lossy().into_owned(),
    ]);
    lab.spawn(D0, &argv).expect("setpriv lvsd starts")
}

#[test]
fn unit_capability_names_are_known() {
    if !have_setpriv("unit_capability_names_are_known") {
        return;
    }
    let out = Command::new("setpriv")
        .arg("--list-caps")
        .output()
        .expect("setpriv --list-caps");
    let known: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| format!("CAP_{}", l.trim().to_uppercase()))
        .collect();
    for unit in ["pulse.service", "lvsd.service"] {
        let caps = unit_caps(unit);
        for cap in &caps {
            assert!(known.contains(cap), "{unit}: unknown capability {cap}");
        }
        // AmbientCapabilities= names the same set (a uid other than 0 in a drop-in keeps it).
        let text = std::fs::read_to_string(unit_path(unit)).expect("unit");
        let ambient: BTreeSet<String> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("AmbientCapabilities="))
            .flat_map(|v| v.split_whitespace().map(str::to_owned))
            .collect();
        assert_eq!(ambient, caps, "{unit}: AmbientCapabilities= differs");
    }
    // pulse runs lvsd: its set must hold lvsd's.
    let pulse = unit_caps("pulse.service");
    for cap in unit_caps("lvsd.service") {
        assert!(pulse.contains(&cap), "pulse.service lacks lvsd's {cap}");
    }
}

#[test]
fn lvsd_forwards_with_the_units_capabilities_and_not_with_one_less() {
    let test = "lvsd_forwards_with_the_units_capabilities_and_not_with_one_less";
    if !privileged(test) || !have_setpriv(test) {
        return;
    }
    let caps = unit_caps("lvsd.service");
    Lab::builder().real_servers(Mode::Nat, 2).run(|lab| {
        let _http = lab.start_http(80).expect("http servers");

        // With the unit's set: forwards (the nannies report the servers up), the guard is
        // installed (nft ran with lvsd's capabilities), no permission error, clean stop.
        let mut lvsd = spawn_lvsd(lab, &caps);
        if let Err(e) = lvsd.wait_for_log(READY, READY_TIMEOUT) {
            lab.dump_logs();
            panic!("lvsd with {caps:?} does not forward: {e}");
        }
        if !wait_until(WITHIN, Duration::from_millis(200), || forwards(lab, 10)) {
            lab.dump_logs();
            panic!("requests through the VIP fail with lvsd under {caps:?}");
        }
        let guard = wait_until(WITHIN, Duration::from_millis(200), || {
            lab.run(D0, ["nft", "list", "table", "inet", GUARD]).is_ok()
        });
        assert!(guard, "no nftables guard: {}", lvsd.log());
        let errors = permission_errors(&lvsd.log());
        assert!(
            errors.is_empty(),
            "lvsd logged permission errors under {caps:?}: {errors:#?}"
        );
        stop_clean(lab, &mut lvsd).expect("clean exit, XDP and guard removed");
        drop(lvsd);

        // One capability less: no forwarding, an exit with an error that says why.
        // CAP_NET_BIND_SERVICE is only for a status_address port below 1024: not tested here.
        let mut wrong = Vec::new();
        for cap in caps.iter().filter(|c| *c != "CAP_NET_BIND_SERVICE") {
            let less = without(&caps, cap);
            let mut lvsd = spawn_lvsd(lab, &less);
            let status = lvsd.wait(WITHIN);
            let log = lvsd.log();
            let says = lvsd_failure(cap);
            let said: Vec<&str> = log
                .lines()
                .filter(|l| says.iter().any(|n| l.to_lowercase().contains(n)))
                .collect();
            match status {
                Err(e) => wrong.push(format!("without {cap}: still running ({e})")),
                Ok(s) if s.success() => wrong.push(format!("without {cap}: exited 0:\n{log}")),
                Ok(_) if log.contains(READY) => {
                    wrong.push(format!("without {cap}: said it forwards:\n{log}"));
                }
                Ok(_) if said.is_empty() => {
                    wrong.push(format!("without {cap}: no {says:?} in its log:\n{log}"));
                }
                Ok(_) => {
                    // The error, and the log's last line (the verifier's verdict, for one).
                    eprintln!("lvsd without {cap}: {}", said[0].trim());
                    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
                    let last = &lines[lines.len().saturating_sub(3)..];
                    if !last.contains(&said[0]) {
                        eprintln!("    ... {}", last.join("\n    ... "));
                    }
                }
            }
            drop(lvsd);
            // Nothing left behind for the next round.
            let link = lab.ip(D0, ["-d", "link", "show"]).unwrap_or_default();
            if link.contains("prog/xdp") {
                wrong.push(format!(
                    "XDP left attached after lvsd without {cap}: {link}"
                ));
            }
        }
        if !wrong.is_empty() {
            lab.dump_logs();
            panic!("{}", wrong.join("\n"));
        }
    });
}

/// `cf` for a pair: director 1 an active backup, fast heartbeats.
fn pair_cf(lab: &Lab) -> String {
    tests::pair::with_pair(lab, &nat_cf(lab), tests::pair::FAST)
}

/// [`pair_cf`] with what else lvsd does with its capabilities under pulse: authenticated
/// heartbeats, connection sync bound to `eth1` (`SO_BINDTODEVICE`), and the status page on
/// port 81 (below 1024: `CAP_NET_BIND_SERVICE`) of every address.
fn full_pair_cf(lab: &Lab) -> String {
    let key = tests::pair::write_key(lab, "pair.key", b"capabilities-test-key-0123456789");
    let lines = format!(
        "{}heartbeat_key = {}\nsyncdaemon = 1\nsyncd_iface = eth1\nstatus_address = 0.0.0.0:81\n",
        tests::pair::FAST,
        key.display()
    );
    tests::pair::with_pair(lab, &nat_cf(lab), &lines)
}

/// Starts `setpriv ... pulse -c CF --nodaemon --lvsd <lvsd> --socket <socket>` on `director`.
fn spawn_pulse<'l>(lab: &'l Lab, director: Role, cf: &Path, caps: &BTreeSet<String>) -> Proc<'l> {
    let mut argv = setpriv(caps);
    argv.extend([
        tests::bin("pulse").to_string_lossy().into_owned(),
        "-c".to_owned(),
        cf.to_string_lossy().into_owned(),
        "--nodaemon".to_owned(),
        "--lvsd".to_owned(),
        tests::bin("lvsd").to_string_lossy().into_owned(),
        "--socket".to_owned(),
        tests::pair::socket(lab, director)
            .to_string_lossy()
            .into_owned(),
    ]);
    lab.spawn(director, &argv).expect("setpriv pulse starts")
}

/// The logs of every process of `lab` so far (pulse's own, and what its lvsd and nannies
/// wrote to the same file).
fn assert_no_permission_errors(lab: &Lab, procs: &[&Proc<'_>], caps: &BTreeSet<String>) {
    for p in procs {
        let errors = permission_errors(&p.log());
        if !errors.is_empty() {
            lab.dump_logs();
            panic!(
                "{} logged permission errors under {caps:?}: {errors:#?}",
                p.label()
            );
        }
    }
}

#[test]
fn pulse_pair_fails_over_with_the_units_capabilities() {
    let test = "pulse_pair_fails_over_with_the_units_capabilities";
    if !privileged(test) || !have_setpriv(test) {
        return;
    }
    let caps = unit_caps("pulse.service");
    Lab::builder()
        .directors(2)
        .floating_on(None)
        .real_servers(Mode::Nat, 2)
        .run(|lab| {
            let _http = lab.start_http(80).expect("http servers");
            let cf = lab
                .write_file("lvs.cf", &full_pair_cf(lab))
                .expect("lvs.cf");
            let mut p0 = spawn_pulse(lab, D0, &cf, &caps);
            let p1 = spawn_pulse(lab, D1, &cf, &caps);
            tests::pair::wait_for("director 0 alone holds the VIP", lab, WITHIN, || {
                tests::pair::only(lab, D0)
            });
            if !wait_until(WITHIN, Duration::from_millis(200), || forwards(lab, 10)) {
                lab.dump_logs();
                panic!("requests through the VIP fail with pulse under {caps:?}");
            }
            assert_no_permission_errors(lab, &[&p0, &p1], &caps);
            // The status page listens on port 81 (a refused bind is logged, not fatal).
            let status = wait_until(WITHIN, Duration::from_millis(200), || {
                p0.log().contains("status page on http://0.0.0.0:81/")
            });
            assert!(
                status,
                "no status page on port 81 in the log:\n{}",
                p0.log()
            );

            // SIGTERM: the backup takes the VIP (address, gratuitous ARP) and forwards.
            p0.signal("TERM").expect("SIGTERM pulse");
            let status = p0.wait(WITHIN).expect("pulse exits after SIGTERM");
            assert!(
                status.success(),
                "pulse exited with {status}:\n{}",
                p0.log()
            );
            tests::pair::wait_for("director 1 alone holds the VIP", lab, WITHIN, || {
                tests::pair::only(lab, D1)
            });
            if !wait_until(WITHIN, Duration::from_millis(200), || forwards(lab, 10)) {
                lab.dump_logs();
                panic!("requests through the VIP fail after the failover under {caps:?}");
            }
            assert_no_permission_errors(lab, &[&p0, &p1], &caps);
        });
}

#[test]
fn pulse_without_one_of_its_own_capabilities_says_so() {
    let test = "pulse_without_one_of_its_own_capabilities_says_so";
    if !privileged(test) || !have_setpriv(test) {
        return;
    }
    let caps = unit_caps("pulse.service");
    // What pulse itself (not its lvsd) needs each for, and what it says without it.
    let cases: [(&str, &str, bool); 3] = [
        // The heartbeat port, 539: no heartbeats, no pulse.
        ("CAP_NET_BIND_SERVICE", "permission denied", true),
        // SCHED_RR for the heartbeat loop: a warning, pulse runs on.
        ("CAP_SYS_NICE", "cannot run under sched_rr", false),
        // mlockall: a warning, pulse runs on.
        ("CAP_IPC_LOCK", "cannot lock pulse's memory", false),
    ];
    Lab::builder()
        .directors(2)
        .floating_on(None)
        .real_servers(Mode::Nat, 2)
        .run(|lab| {
            let cf = lab.write_file("lvs.cf", &pair_cf(lab)).expect("lvs.cf");
            for (cap, says, fatal) in cases {
                assert!(caps.contains(cap), "pulse.service lacks {cap}");
                let less = without(&caps, cap);
                let mut p = spawn_pulse(lab, D0, &cf, &less);
                let said = wait_until(WITHIN, Duration::from_millis(100), || {
                    p.log().to_lowercase().contains(says)
                });
                if !said {
                    lab.dump_logs();
                    panic!("pulse without {cap} does not say {says:?}:\n{}", p.log());
                }
                if fatal {
                    let status = p.wait(WITHIN).expect("pulse exits");
                    assert!(!status.success(), "pulse without {cap} exited 0");
                } else {
                    assert!(
                        p.exited().is_none(),
                        "pulse without {cap} exited:\n{}",
                        p.log()
                    );
                    p.signal("TERM").expect("SIGTERM pulse");
                    let _ = p.wait(WITHIN);
                }
                eprintln!("pulse without {cap}: says {says:?}");
            }
        });
}
