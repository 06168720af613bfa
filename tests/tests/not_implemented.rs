//! A binary refuses loudly where it cannot serve: pulse on a host that is neither director
//! exits non-zero with a clear message. (Every binary is built now; `lvsadm`'s refusals are
//! tested in lvsd/tests/lvsadm_cli.rs.)

use std::process::Command;

/// `pulse --test-start` on a host that is neither director of the sample file: it says so,
/// names the addresses, and exits 1 without touching anything.
#[test]
fn pulse_test_start_refuses_a_host_that_is_not_a_director() {
    let cf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/nat.cf");
    let out = Command::new(tests::bin("pulse"))
        .arg("-c")
        .arg(&cf)
        .arg("--test-start")
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "pulse --test-start: {stderr}");
    assert!(stderr.contains("neither primary"), "pulse: {stderr}");
    assert!(out.stdout.is_empty(), "pulse printed on stdout");
}
