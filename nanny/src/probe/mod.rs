//! The probes: thin I/O that answers "is this real server healthy right now?".
//!
//! | probe | module | when |
//! |---|---|---|
//! | TCP connect, send/expect | [`stream`] | default; `-s`/`-x`, or Piranha's built-in HTTP test on virtual port 80 |
//! | UDP send/expect | [`stream`] | `-u` |
//! | external program | [`program`] | `-e` (`send_program`) |
//! | HTTP/HTTPS GET (extension) | [`http`] | `--http-get PATH` |
//!
//! Every probe finishes within its timeout (connect, write and read share one deadline; a
//! program is SIGKILLed at it) and returns `Ok(())` or a [`ProbeError`] whose text is the log
//! line (Piranha's wording where Piranha had one). TCP and UDP probes also run without
//! blocking ([`stream::Attempt`]), which is how nanny's main loop runs them; the others run
//! on nanny's worker thread, and the only state they share with the rest of nanny is the
//! [`ChildSlot`] through which a terminating nanny kills a running program.

pub mod http;
pub mod program;
pub mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// The process group of the program a probe or the load monitor is running (0 = none), so
/// that SIGTERM handling can kill it.
#[derive(Debug, Clone, Default)]
pub struct ChildSlot(Arc<AtomicI32>);

impl ChildSlot {
    /// Records a running child's process group.
    pub fn set(&self, pgid: i32) {
        self.0.store(pgid, Ordering::SeqCst);
    }

    /// Forgets it (the child has been reaped).
    pub fn clear(&self) {
        self.0.store(0, Ordering::SeqCst);
    }

    /// SIGKILLs the running child's process group, if any. Returns its id.
    pub fn kill(&self) -> Option<i32> {
        let pgid = self.0.swap(0, Ordering::SeqCst);
        if pgid <= 0 {
            return None;
        }
        // Failure means it has already gone; nothing else to do.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
        Some(pgid)
    }
}

/// Why a probe failed. The text is what nanny logs and sends to lvsd as the reason.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The connection was not established within the timeout.
    #[error("CONNECT to {addr} timed out")]
    ConnectTimeout {
        /// Real server.
        addr: SocketAddr,
    },
    /// The connection was refused or failed otherwise.
    #[error("CONNECT to {addr} failed: {source}")]
    Connect {
        /// Real server.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Writing the send string failed.
    #[error("WRITE operation for {addr} returned error: {source}")]
    Write {
        /// Real server.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// No (complete) reply within the timeout.
    #[error("READ to {addr} timed out after {got} bytes")]
    ReadTimeout {
        /// Real server.
        addr: SocketAddr,
        /// Bytes received before the timeout.
        got: usize,
    },
    /// Reading failed (including a UDP port unreachable).
    #[error("READ from {addr} returned error: {source}")]
    Read {
        /// Real server.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server closed the connection before sending enough to compare.
    #[error("READ {addr} was too short: {got:?}")]
    TooShort {
        /// Real server.
        addr: SocketAddr,
        /// What came (lossy UTF-8).
        got: String,
    },
    /// The reply does not match the expect string.
    #[error("Trouble. Received results are not what we expected from {addr}: {got:?}")]
    Mismatch {
        /// Real server.
        addr: SocketAddr,
        /// What came (lossy UTF-8, at most the window).
        got: String,
    },
    /// The check program could not be started (missing, not executable).
    #[error("send_program {program:?} cannot be run: {source}")]
    ProgramSpawn {
        /// The program (first word of the command).
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// The check program did not finish within the timeout and was killed.
    #[error("timeout running the following: {command} (killed after {timeout:?})")]
    ProgramTimeout {
        /// The command line after `%h`/`%p` substitution.
        command: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The check program exited non-zero or died by a signal.
    #[error("The following exited abnormally: {command} ({status})")]
    ProgramStatus {
        /// The command line.
        command: String,
        /// Exit status as text.
        status: String,
    },
    /// The program's output differs from the expect string.
    #[error(
        "Trouble. Received results are not what we expected: {command} printed {got:?}, expected {expected:?}"
    )]
    ProgramOutput {
        /// The command line.
        command: String,
        /// Its output (one trailing newline removed).
        got: String,
        /// The expect string.
        expected: String,
    },
    /// No expect string, but the program printed something.
    #[error(
        "Expect string is NULL, but the external sending program returned a non-NULL result: {command} printed {got:?}"
    )]
    ProgramUnexpectedOutput {
        /// The command line.
        command: String,
        /// Its output.
        got: String,
    },
    /// The HTTP(S) request failed (connect, TLS, timeout, protocol).
    #[error("GET {url} failed: {detail}")]
    Http {
        /// The URL.
        url: String,
        /// The error and its causes, e.g. a certificate that does not verify.
        detail: String,
    },
    /// The HTTP status is not in the accepted list.
    #[error("GET {url} returned status {status}, expected {expected}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status received.
        status: u16,
        /// The accepted list.
        expected: String,
    },
    /// The HTTP body does not match the expect string.
    #[error("GET {url}: the body does not match {expect:?}")]
    HttpBody {
        /// The URL.
        url: String,
        /// The expect string or regex.
        expect: String,
    },
}

/// A configured probe, ready to run again and again.
#[derive(Debug)]
pub enum Probe {
    /// TCP or UDP.
    Stream(stream::StreamProbe),
    /// `send_program`.
    Program(program::ProgramProbe),
    /// HTTP(S) GET.
    Http(Box<http::HttpProbe>),
}

impl Probe {
    /// Runs the probe once; it returns within `timeout` (plus scheduling slack).
    pub fn run(&mut self, timeout: Duration, slot: &ChildSlot) -> Result<(), ProbeError> {
        match self {
            Probe::Stream(p) => p.run(timeout),
            Probe::Program(p) => p.run(timeout, slot),
            Probe::Http(p) => p.run(timeout),
        }
    }
}

/// Renders an error with its chain of causes (`a: b: c`), for errors such as reqwest's whose
/// top line alone ("error sending request") says little.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}
