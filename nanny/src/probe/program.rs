//! `send_program`: run an external check and judge its exit status and output.
//!
//! The command line is split on spaces as Piranha did (runs of spaces are one separator, no
//! quoting, tabs are not separators); tokens exactly `%h` and `%p` become the real server's
//! address and port. The program is executed directly (no shell) in its own process group,
//! with stdin and stderr on /dev/null and stdout captured (first 4095 bytes kept). At the
//! timeout the whole group is SIGKILLed (Piranha's alarm did not interrupt `waitpid`, so a
//! hung program hung nanny).
//!
//! Verdict (differences from Piranha in `docs/nanny.md`):
//!
//! | outcome | expect set | result |
//! |---|---|---|
//! | cannot start (missing, not executable) | any | failed |
//! | killed at the timeout, or non-zero exit, or signal | any | failed (Piranha: **OK** when an expect string was set) |
//! | exit 0, output (one trailing newline removed) equals expect | yes | OK |
//! | exit 0, output differs | yes | failed |
//! | exit 0, no output | no | OK (Piranha: failed, so a program without expect never passed) |
//! | exit 0, some output | no | failed (as Piranha) |

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{ChildSlot, ProbeError};

/// Bytes of output kept (Piranha's 4096-byte buffer less the terminator).
pub const OUTPUT_LIMIT: usize = 4095;

/// A `send_program` probe.
#[derive(Debug)]
pub struct ProgramProbe {
    /// The argument vector after splitting and `%h`/`%p` substitution.
    pub argv: Vec<String>,
    /// Expected output (escapes translated), compared exactly.
    pub expect: Option<String>,
}

impl ProgramProbe {
    /// Splits `command` like Piranha and substitutes `%h` and `%p`.
    pub fn new(command: &str, rip: &str, rport: u16, expect: Option<String>) -> Self {
        Self {
            argv: split_command(command, rip, rport),
            expect,
        }
    }

    /// The command line as run, for messages.
    pub fn command(&self) -> String {
        self.argv.join(" ")
    }

    /// Runs once within `timeout`.
    pub fn run(&self, timeout: Duration, slot: &ChildSlot) -> Result<(), ProbeError> {
        let command = self.command();
        let out = run_captured(&self.argv, timeout, slot).map_err(|e| match e {
            RunError::Spawn(source) => ProbeError::ProgramSpawn {
                program: self.argv.first().cloned().unwrap_or_default(),
                source,
            },
            RunError::Timeout => ProbeError::ProgramTimeout {
                command: command.clone(),
                timeout,
            },
        })?;
        if !out.status.success() {
            return Err(ProbeError::ProgramStatus {
                command,
                status: describe_status(out.status),
            });
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let got = text.strip_suffix('\n').unwrap_or(&text);
        match &self.expect {
            Some(expected) if got == expected => Ok(()),
            Some(expected) => Err(ProbeError::ProgramOutput {
                command,
                got: got.to_owned(),
                expected: expected.clone(),
            }),
            None if got.is_empty() => Ok(()),
            None => Err(ProbeError::ProgramUnexpectedOutput {
                command,
                got: got.to_owned(),
            }),
        }
    }
}

/// Piranha's split: on single spaces, empty tokens dropped; `%h` → `rip`, `%p` → `rport`.
pub fn split_command(command: &str, rip: &str, rport: u16) -> Vec<String> {
    command
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(|t| match t {
            "%h" => rip.to_owned(),
            "%p" => rport.to_string(),
            other => other.to_owned(),
        })
        .collect()
}

/// "exit status 3" or "killed by signal 9".
pub fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => status.to_string(),
    }
}

/// What a finished program left.
#[derive(Debug)]
pub struct RunOutput {
    /// How it ended.
    pub status: ExitStatus,
    /// The first [`OUTPUT_LIMIT`] bytes of its stdout.
    pub stdout: Vec<u8>,
}

/// Why a program gave no [`RunOutput`].
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// It could not be started.
    #[error("cannot start: {0}")]
    Spawn(std::io::Error),
    /// It was killed at the timeout.
    #[error("timed out")]
    Timeout,
}

/// Runs `argv` (no shell) with stdout captured, SIGKILLing its process group at `timeout`.
/// Used by `send_program` and by the load monitor. The child's group is recorded in `slot`
/// while it runs.
pub fn run_captured(
    argv: &[String],
    timeout: Duration,
    slot: &ChildSlot,
) -> Result<RunOutput, RunError> {
    let deadline = Instant::now() + timeout;
    let Some((program, args)) = argv.split_first() else {
        return Err(RunError::Spawn(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty command",
        )));
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(RunError::Spawn)?;
    let pgid = i32::try_from(child.id()).unwrap_or(0);
    slot.set(pgid);
    // Read stdout on a helper thread so the deadline holds even if the program never closes
    // it; killing the group closes the pipe and ends the thread.
    let (tx, rx) = mpsc::channel();
    if let Some(mut stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                match stdout.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                        kept.extend_from_slice(&chunk[..n.min(room)]);
                    }
                }
            }
            let _ = tx.send(kept);
        });
    }
    let stdout = rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .ok();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if stdout.is_some() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None) | Err(_) => break None,
        }
    };
    match (status, stdout) {
        (Some(status), Some(stdout)) => {
            slot.clear();
            Ok(RunOutput { status, stdout })
        }
        _ => {
            slot.kill();
            let _ = child.kill();
            let _ = child.wait();
            Err(RunError::Timeout)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_piranha() {
        assert_eq!(
            split_command("/bin/check  -h %h -p %p %hx", "10.0.0.1", 8080),
            ["/bin/check", "-h", "10.0.0.1", "-p", "8080", "%hx"]
        );
        assert!(split_command("   ", "a", 1).is_empty());
    }
}
