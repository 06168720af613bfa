//! `lvsd --check` end to end: the real binary on every `etc/*.cf` sample (golden stdout),
//! invalid files, warnings, flags; and `lvsadm`'s refusal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn etc(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../etc")
        .join(name)
}

fn lvsd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvsd"))
        .args(args)
        .output()
        .expect("lvsd runs")
}

fn check(path: &Path) -> Output {
    lvsd(&["--check", "-c", path.to_str().expect("utf-8 path")])
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).expect("utf-8 output")
}

/// A scratch file under Cargo's per-test temporary directory.
fn scratch(name: &str, contents: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, contents).expect("write scratch file");
    path
}

const GOLDEN: &[(&str, &str)] = &[
    (
        "nat.cf",
        "-A -t 198.18.0.10:80 -s wlc\n\
         -a -t 198.18.0.10:80 -r 198.19.0.11:8080 -m -w 2\n\
         -a -t 198.18.0.10:80 -r 198.19.0.12:8081 -m -w 1\n",
    ),
    (
        "demo.cf",
        "-A -t 198.18.0.10:80 -s rr\n\
         -a -t 198.18.0.10:80 -r 198.19.0.11:80 -m -w 1\n\
         -a -t 198.18.0.10:80 -r 198.19.0.12:80 -m -w 1\n\
         -a -t 198.18.0.10:80 -r 198.19.0.13:80 -m -w 1\n",
    ),
    (
        "direct-routing.cf",
        "-A -t 198.18.0.20:80 -s wrr\n\
         -a -t 198.18.0.20:80 -r 198.18.1.21:80 -g -w 3\n\
         -a -t 198.18.0.20:80 -r 198.18.1.22:80 -g -w 1\n\
         -A -t 198.18.0.20:443 -s lc\n\
         -a -t 198.18.0.20:443 -r 198.18.1.21:443 -g -w 1\n\
         -a -t 198.18.0.20:443 -r 198.18.1.22:443 -g -w 1\n",
    ),
    (
        "tunnel.cf",
        "-A -t 198.18.0.30:25 -s sed\n\
         -a -t 198.18.0.30:25 -r 198.19.10.1:25 -i -w 10\n\
         -a -t 198.18.0.30:25 -r 198.19.20.1:25 -i -w 5\n",
    ),
    (
        "persistent-fwmark.cf",
        "-A -f 80 -s rr -p 600 -M 255.255.255.0\n\
         -a -f 80 -r 198.18.2.1:80 -g -w 1\n\
         -a -f 80 -r 198.18.2.2:80 -g -w 1\n",
    ),
    (
        "udp.cf",
        "-A -u 198.18.0.53:53 -s rr\n\
         -a -u 198.18.0.53:53 -r 198.19.53.1:53 -m -w 1\n\
         -a -u 198.18.0.53:53 -r 198.19.53.2:53 -m -w 1\n",
    ),
    (
        "sorry-server.cf",
        "-A -t 198.18.0.60:80 -s wlc\n\
         -a -t 198.18.0.60:80 -r 198.19.0.61:80 -m -w 1\n\
         -a -t 198.18.0.60:80 -r 198.19.0.62:80 -m -w 1\n",
    ),
    (
        "piranha-gui.cf",
        "-A -t 198.18.0.100:80 -s wlc\n\
         -a -t 198.18.0.100:80 -r 198.19.122.224:80 -g -w 1\n",
    ),
    (
        "source-hash.cf",
        "-A -t 198.18.0.143:143 -s sh -b sh-fallback,sh-port\n\
         -a -t 198.18.0.143:143 -r 198.18.3.1:143 -g -w 1\n\
         -a -t 198.18.0.143:143 -r 198.18.3.2:143 -g -w 1\n",
    ),
];

#[test]
fn every_sample_has_a_golden_output() {
    let mut samples: Vec<String> = std::fs::read_dir(etc(""))
        .expect("etc/ exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".cf"))
        .collect();
    samples.sort();
    let mut golden: Vec<String> = GOLDEN.iter().map(|(n, _)| (*n).to_owned()).collect();
    golden.sort();
    assert_eq!(samples, golden);
}

#[test]
fn samples_check_clean_with_the_golden_table() {
    for (name, expected) in GOLDEN {
        let out = check(&etc(name));
        assert_eq!(text(&out.stdout), *expected, "{name}");
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "", "{name}: no warnings expected");
    }
}

#[test]
fn invalid_file_fails_with_file_and_line_on_stderr_only() {
    let path = scratch(
        "bad-weight.cf",
        "network = nat\nvirtual v {\n    address = 198.18.0.10 eth0:1\n    active = 1\n    server s {\n        address = 198.19.0.1\n        weight = abc\n    }\n}\n",
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        format!(
            "lvsd: {}:7: expected an integer for \"weight\", found \"abc\"\n",
            path.display()
        )
    );
}

#[test]
fn unreadable_file_fails() {
    let out = lvsd(&["--check", "-c", "/nonexistent/lvs.cf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).starts_with("lvsd: /nonexistent/lvs.cf: cannot read the configuration: ")
    );
}

#[test]
fn default_config_path_is_piranhas() {
    if Path::new(lvsd::DEFAULT_CONFIG).exists() {
        return; // a real installation: nothing to assert about its contents
    }
    let out = lvsd(&["--check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("lvsd: /etc/sysconfig/ha/lvs.cf: cannot read"));
}

#[test]
fn long_option_spelling_works() {
    let arg = format!("--configfile={}", etc("nat.cf").display());
    let out = lvsd(&["--check", &arg]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), GOLDEN[0].1);
}

#[test]
fn direct_routing_port_mismatch_warns_and_forces_the_virtual_port() {
    let path = scratch(
        "dr-port.cf",
        "network = direct\nvirtual v {\n    active = 1\n    address = 198.18.0.10 eth0:1\n    server s {\n        address = 198.18.1.1\n        active = 1\n        port = 8080\n    }\n}\n",
    );
    let out = check(&path);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        "-A -t 198.18.0.10:80 -s wlc\n-a -t 198.18.0.10:80 -r 198.18.1.1:80 -g -w 1\n"
    );
    assert_eq!(
        text(&out.stderr),
        format!(
            "lvsd: warning: {}:8: real server \"s\" port 8080 is ignored: direct routing uses the virtual port 80\n",
            path.display()
        )
    );
}

#[test]
fn inactive_services_and_servers_failover_and_sorry_server_are_not_printed() {
    let path = scratch(
        "mixed.cf",
        "virtual off {\n    address = 198.18.0.9 eth0:1\n}\nvirtual on {\n    active = 1\n    address = 198.18.0.10 eth0:1\n    protocol = udp\n    port = 53\n    sorry_server = 198.19.0.99\n    server a {\n        address = 198.19.0.1\n        active = 0\n    }\n    server b {\n        address = 198.19.0.2\n        active = 1\n        weight = 0\n    }\n}\nfailover f {\n    active = 1\n    address = 198.18.0.11 eth0:2\n}\n",
    );
    let out = check(&path);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "-A -u 198.18.0.10:53 -s wlc\n-a -u 198.18.0.10:53 -r 198.19.0.2:53 -m -w 0\n"
    );
}

#[test]
fn pmask_rules() {
    let svc = |extra: &str| {
        let path = scratch(
            "pmask.cf",
            &format!(
                "virtual v {{\n    active = 1\n    address = 198.18.0.10 eth0:1\n{extra}\n}}\n"
            ),
        );
        text(&check(&path).stdout)
    };
    assert_eq!(
        svc("    pmask = 255.255.255.0"),
        "-A -t 198.18.0.10:80 -s wlc\n",
        "no -M without -p"
    );
    assert_eq!(
        svc("    persistent = 60\n    pmask = 255.255.255.255"),
        "-A -t 198.18.0.10:80 -s wlc -p 60\n"
    );
    assert_eq!(
        svc("    persistent = 60\n    pmask = 0.0.0.0"),
        "-A -t 198.18.0.10:80 -s wlc -p 60\n"
    );
    assert_eq!(
        svc("    persistent = 60\n    pmask = 255.255.0.0"),
        "-A -t 198.18.0.10:80 -s wlc -p 60 -M 255.255.0.0\n"
    );
}

#[test]
fn fos_mode_programs_no_ipvs_service() {
    let path = scratch(
        "fos.cf",
        "service = fos\nvirtual v {\n    active = 1\n    address = 198.18.0.10 eth0:1\n}\n",
    );
    let out = check(&path);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn daemon_mode_stops_on_a_bad_file() {
    // A missing file stops the daemon before it touches any interface.
    let out = lvsd(&["-n", "--nofork", "-v", "-c", "/nonexistent/lvs.cf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("/nonexistent/lvs.cf"),
        "{}",
        text(&out.stderr)
    );
    let out = lvsd(&["--nodaemon", "--test-start", "-c", "/x.cf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/x.cf"), "{}", text(&out.stderr));
}

#[test]
fn test_start_prints_interfaces_table_and_nanny_lines_and_touches_nothing() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/nat.cf");
    let out = lvsd(&[
        "--test-start",
        "-c",
        &path.to_string_lossy(),
        "--socket",
        "/nonexistent/dir/lvsd.sock",
        "--nanny",
        "/usr/sbin/nanny",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.starts_with("# would attach to: eth0 eth1\n"),
        "{stdout}"
    );
    assert!(stdout.contains("\n-A -t "), "the table: {stdout}");
    let nannies: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("/usr/sbin/nanny "))
        .collect();
    assert!(!nannies.is_empty(), "{stdout}");
    assert!(
        nannies
            .iter()
            .all(|l| l.starts_with("/usr/sbin/nanny -c -h ") && l.ends_with(" --lvs")),
        "Piranha's order: {nannies:?}"
    );
    assert!(
        !std::path::Path::new("/nonexistent/dir").exists(),
        "nothing was created"
    );
}
