//! Binaries whose work comes in a later issue refuse loudly: non-zero exit, a clear message.

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

#[test]
fn pulse_test_start_says_not_implemented_and_fails() {
    let out = Command::new(tests::bin("pulse"))
        .args(["-c", "/etc/sysconfig/ha/lvs.cf", "--test-start"])
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "pulse --test-start must exit non-zero"
    );
    assert!(stderr.contains("not implemented yet"), "pulse: {stderr}");
    assert!(out.stdout.is_empty(), "pulse printed on stdout");
}
