//! The `send-arp` binary's exit status without a network: `--version` and `--help` succeed,
//! malformed command lines exit 2 with clap's message, a missing interface exits 1 naming it.

use std::process::{Command, Output};

fn send_arp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_send-arp"))
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn version_and_help_succeed() {
    for flag in ["--version", "--help"] {
        let out = send_arp(&[flag]);
        assert!(out.status.success(), "send-arp {flag}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("send-arp"));
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["198.18.0.10", "0200C6120002"],
        &["198.18.0.10", "0200C612000", "198.18.0.255", "ffffffffffff"],
        &[
            "198.18.0.10",
            "0200C6120002",
            "198.18.0.255",
            "ffffffffffff",
            "--count",
            "5",
        ],
        &["-i", "eth0", "not-an-ip"],
        &["198.18.0.10", "--count", "0"],
        &["198.18.0.10", "--interval", "soon"],
    ] {
        let out = send_arp(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn missing_interface_exits_1_naming_it() {
    for args in [
        &["-i", "nosuch0:1", "198.18.0.10"][..],
        &[
            "-i",
            "nosuch0",
            "198.18.0.10",
            "0200C6120002",
            "198.18.0.255",
            "ffffffffffff",
        ],
    ] {
        let out = send_arp(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("interface nosuch0"), "{stderr}");
    }
}
