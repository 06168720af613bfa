//! External commands with a deadline: every command the lab runs goes through [`run`], which
//! kills the command when its time is up and never waits on a pipe that a stray grandchild
//! keeps open.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::LabError;

/// How often a running command is polled for its exit.
const POLL: Duration = Duration::from_millis(2);
/// After the command exits, how long its output pipes may stay open (a grandchild holding
/// them) before the output is given up on.
const PIPE_GRACE: Duration = Duration::from_millis(500);

/// A command line as text, for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` with stdin closed and stdout/stderr captured; kills it after `timeout`.
/// The exit status is not checked: see [`check`].
pub(crate) fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, LabError> {
    let text = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| LabError::Spawn {
            cmd: text.clone(),
            source,
        })?;
    let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
    let pipes: [(bool, Option<Box<dyn Read + Send>>); 2] = [
        (
            true,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            false,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ];
    for (is_out, pipe) in pipes {
        let tx = tx.clone();
        if let Some(mut pipe) = pipe {
            thread::spawn(move || {
                let mut buf = Vec::new();
                // A read error only shortens the captured output.
                let _ = pipe.read_to_end(&mut buf);
                let _ = tx.send((is_out, buf));
            });
        }
    }
    drop(tx);

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(LabError::Timeout {
                    cmd: text,
                    after: timeout,
                });
            }
            Ok(None) => thread::sleep(POLL),
            Err(source) => {
                let _ = child.kill();
                return Err(LabError::Spawn { cmd: text, source });
            }
        }
    };

    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let grace = Instant::now() + PIPE_GRACE;
    for _ in 0..2 {
        let left = grace.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((true, b)) => stdout = b,
            Ok((false, b)) => stderr = b,
            Err(_) => break,
        }
    }
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Turns a non-zero exit into [`LabError::Failed`] with the command's stderr.
pub(crate) fn check(cmd_text: String, out: Output) -> Result<Output, LabError> {
    if out.status.success() {
        Ok(out)
    } else {
        Err(LabError::Failed {
            cmd: cmd_text,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// [`run`] then [`check`].
pub(crate) fn run_ok(cmd: &mut Command, timeout: Duration) -> Result<Output, LabError> {
    let text = describe(cmd);
    let out = run(cmd, timeout)?;
    check(text, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_status() {
        let out = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn kills_a_command_that_overruns() {
        let t0 = Instant::now();
        let err = run(Command::new("sleep").arg("10"), Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, LabError::Timeout { .. }), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn does_not_wait_for_a_grandchild_holding_the_pipe() {
        let t0 = Instant::now();
        let out = run(
            Command::new("sh").args(["-c", "sleep 3 & echo done"]),
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(out.status.success());
        assert!(t0.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn failed_status_carries_stderr() {
        let err = run_ok(
            Command::new("sh").args(["-c", "echo nope >&2; exit 1"]),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
