//! The `lvsadm` binary without a director: command lines ipvsadm refuses get ipvsadm's
//! message and status, `-h`/`-v` succeed, and an lvsd that is not running is reported as
//! such with a non-zero status instead of an empty table.

use std::process::{Command, Output};

fn lvsadm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvsadm"))
        .args(args)
        .env("LVSD_SOCKET", "/nonexistent/lvsd-test.sock")
        .output()
        .expect("lvsadm runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn lvsd_not_running_is_said_and_fails() {
    for args in [&["-L", "-n"][..], &["-A", "-t", "198.18.0.10:80"], &["-S"]] {
        let o = lvsadm(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.starts_with(
                "Can't initialize ipvs: cannot reach lvsd at /nonexistent/lvsd-test.sock"
            ),
            "{e}"
        );
        assert!(e.contains("(is lvsd running?)\npulse starts lvsd"), "{e}");
        assert!(o.stdout.is_empty(), "nothing listed");
    }
}

#[test]
fn refused_command_lines_read_as_ipvsadm() {
    let cases: [(&[&str], i32, &str); 4] = [
        (
            &[
                "-a",
                "-t",
                "198.18.0.10:80",
                "-r",
                "198.18.1.1",
                "-w",
                "70000",
            ],
            2,
            "illegal weight specified\n",
        ),
        (
            &["-n"],
            255,
            "Try `ARGV0 -h' or 'ARGV0 --help' for more information.\n",
        ),
        (&["-L", "--bogus"], 255, "--bogus: unknown option\n"),
        (
            &["-A", "-t", "198.18.0.10:80", "-r", "198.18.1.1"],
            2,
            "Illegal 'real-server' option with the 'add-service' command\n",
        ),
    ];
    let argv0 = env!("CARGO_BIN_EXE_lvsadm");
    for (args, code, msg) in cases {
        let o = lvsadm(args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), msg.replace("ARGV0", argv0), "{args:?}");
    }
}

#[test]
fn the_daemon_commands_say_why_they_are_not_run_time() {
    let o = lvsadm(&["--start-daemon", "master"]);
    assert_eq!(o.status.code(), Some(255));
    assert!(stderr(&o).contains("set in lvs.cf"), "{}", stderr(&o));
}

#[test]
fn help_and_version_succeed() {
    let h = lvsadm(&["-h"]);
    assert!(h.status.success());
    assert!(String::from_utf8_lossy(&h.stdout).contains("--add-service     -A"));
    let v = lvsadm(&["-v"]);
    assert!(v.status.success());
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("lvsadm "));
}
