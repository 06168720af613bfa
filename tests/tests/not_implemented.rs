//! Binaries whose work comes in a later issue refuse loudly: non-zero exit, a clear message;
//! so does pulse on a host it cannot serve.

use std::process::Command;

#[test]
fn later_binaries_say_not_implemented_and_fail() {
    let name = "lvsadm";
    let out = Command::new(tests::bin(name))
        .args(["-c", "/etc/sysconfig/ha/lvs.cf"])
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{name} must exit non-zero");
    assert!(stderr.contains("not implemented yet"), "{name}: {stderr}");
    assert!(out.stdout.is_empty(), "{name} printed on stdout");
}

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
