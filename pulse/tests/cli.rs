//! The `pulse` binary answers `--version` and `--help` like any operator tool.

use std::process::Command;

#[test]
fn version_and_help_succeed() {
    for flag in ["--version", "--help"] {
        let out = Command::new(env!("CARGO_BIN_EXE_pulse"))
            .arg(flag)
            .output()
            .expect("runs");
        assert!(out.status.success(), "pulse {flag}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("pulse"));
    }
}
