//! Processes running inside a lab namespace: their output goes to a log file in the lab's
//! directory, and they are killed when their guard drops (and, as a backstop, when the lab
//! tears down: every process left in a lab namespace is killed then).

use std::fs::File;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{Lab, LabError, cmd};

/// A spawned process and its log; killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) label: String,
    pub(crate) log: PathBuf,
}

impl Spawned {
    pub(crate) fn start(
        mut command: Command,
        label: String,
        log: PathBuf,
    ) -> Result<Self, LabError> {
        let text = cmd::describe(&command);
        let io = |what: &str, source| LabError::Io {
            what: format!("{what} {}", log.display()),
            source,
        };
        let out = File::create(&log).map_err(|e| io("create log", e))?;
        let err = out.try_clone().map_err(|e| io("clone log handle", e))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| LabError::Spawn { cmd: text, source })?;
        Ok(Self { child, label, log })
    }

    /// What the process has written so far (stdout and stderr interleaved).
    pub(crate) fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// `Some(status)` once the process has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until the log contains `needle` (typically a tool's "ready" line). Fails early if
    /// the process exits first, and after `timeout`; the error carries the log.
    pub(crate) fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<(), LabError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                // It may have printed the needle just before exiting.
                if self.log().contains(needle) {
                    return Ok(());
                }
                return Err(LabError::ProcExited {
                    label: self.label.clone(),
                    status: status.to_string(),
                    log: self.log(),
                });
            }
            if Instant::now() >= deadline {
                return Err(LabError::NotReady {
                    label: self.label.clone(),
                    needle: needle.to_owned(),
                    after: timeout,
                    log: self.log(),
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        // After SIGKILL the wait is short; it only reaps the zombie.
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A process started with [`Lab::spawn`]. It cannot outlive its lab (it borrows it), and it
/// is killed when dropped. Its stdout and stderr go to [`Proc::log_path`].
#[derive(Debug)]
pub struct Proc<'lab> {
    inner: Spawned,
    _lab: PhantomData<&'lab Lab>,
}

impl Proc<'_> {
    pub(crate) fn new(inner: Spawned) -> Self {
        Self {
            inner,
            _lab: PhantomData,
        }
    }

    /// Process id (the command itself: `ip netns exec` replaces itself with it).
    pub fn pid(&self) -> u32 {
        self.inner.child.id()
    }

    /// Label given at spawn time (role and program), for messages.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// File holding the process's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.inner.log
    }

    /// What the process has written so far (stdout and stderr interleaved).
    pub fn log(&self) -> String {
        self.inner.log()
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.inner.exited()
    }

    /// Waits until the log contains `needle` (typically a tool's "ready" line). Fails early if
    /// the process exits first, and after `timeout`; the error carries the log.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<(), LabError> {
        self.inner.wait_for_log(needle, timeout)
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, LabError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(LabError::NotReady {
                    label: self.inner.label.clone(),
                    needle: "exit".to_owned(),
                    after: timeout,
                    log: self.log(),
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal by name (`"TERM"`, `"HUP"`, `"USR1"`, ...), through the shell's `kill`.
    pub fn signal(&self, signal: &str) -> Result<(), LabError> {
        let pid = self.pid().to_string();
        cmd::run_ok(
            Command::new("sh").args(["-c", "kill -s \"$1\" \"$2\"", "sh", signal, &pid]),
            Duration::from_secs(5),
        )
        .map(drop)
    }

    /// SIGTERM, then SIGKILL if the process is still there after `grace`. Returns the exit
    /// status.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            return Some(status);
        }
        if self.signal("TERM").is_ok()
            && let Ok(status) = self.wait(grace)
        {
            return Some(status);
        }
        self.inner.kill();
        self.exited()
    }
}
