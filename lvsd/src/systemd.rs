//! Living under systemd: the journal, readiness and the watchdog, shared by pulse, lvsd and
//! nanny.
//!
//! - [`init_logging`]: when systemd connected stderr to the journal (`JOURNAL_STREAM`), log
//!   through the journal's native protocol (`tracing-journald`), so every structured field
//!   (`ROLE`, `VIP`, `PEER`, `SERVICE`, `RS`, …) is a journal field operators can filter on
//!   (`journalctl -u pulse ROLE=active`); otherwise, or when the journal's socket is not
//!   there, readable lines on stderr.
//! - [`Notifier`]: `READY=1` once the daemon serves, `WATCHDOG=1` from the loop that must
//!   keep running (at half the unit's `WatchdogSec`), `STOPPING=1` on the way out, a
//!   `STATUS=` line for `systemctl status`. Without `NOTIFY_SOCKET` it does nothing.
//! - [`scrub_child_env`]: the notification variables are for the main process only: a
//!   child (lvsd under pulse, nanny under lvsd) must not report readiness for the unit.

use std::process::Command;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

/// The variables [`scrub_child_env`] removes.
pub const NOTIFY_VARS: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// Whether systemd connected stderr to the journal (`JOURNAL_STREAM` names stderr's
/// device and inode, `systemd.exec(5)`).
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    match nix::sys::stat::fstat(std::io::stderr()) {
        Ok(st) => {
            dev.parse::<u64>().ok() == Some(st.st_dev) && ino.parse::<u64>().ok() == Some(st.st_ino)
        }
        Err(_) => false,
    }
}

/// Installs the global subscriber: the journal when stderr goes there and the journal's
/// socket answers, stderr lines otherwise. `filter` is used when `env_var` (`RUST_LOG`,
/// `NANNY_LOG`) is unset or invalid. `with_target` prefixes stderr lines with the module
/// (`pulse::daemon:`), which tells pulse's lines from those of the lvsd it runs when both
/// share one stderr.
pub fn init_logging(ident: &str, env_var: &str, filter: &str, with_target: bool) {
    let filter = EnvFilter::try_from_env(env_var).unwrap_or_else(|_| EnvFilter::new(filter));
    let journal = if stderr_is_journal() {
        match tracing_journald::layer() {
            Ok(l) => Some(
                l.with_syslog_identifier(ident.to_owned())
                    .with_field_prefix(None),
            ),
            Err(e) => {
                eprintln!("{ident}: the journal's socket is not there ({e}); logging to stderr");
                None
            }
        }
    } else {
        None
    };
    match journal {
        Some(layer) => tracing_subscriber::registry()
            .with(filter)
            .with(layer)
            .init(),
        None => tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_target(with_target),
            )
            .init(),
    }
}

/// Removes the notification variables from a child's environment.
pub fn scrub_child_env(cmd: &mut Command) {
    for v in NOTIFY_VARS {
        cmd.env_remove(v);
    }
}

/// Readiness and watchdog notifications to systemd. See the module docs.
#[derive(Debug)]
pub struct Notifier {
    enabled: bool,
    watchdog: Option<Duration>,
    last_ping: Option<Instant>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC`/`WATCHDOG_PID` (this process's only).
    pub fn from_env() -> Notifier {
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog: sd_notify::watchdog_enabled(),
            last_ping: None,
        }
    }

    /// Whether systemd listens.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The unit's watchdog interval, if it has one.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if self.enabled
            && let Err(e) = sd_notify::notify(states)
        {
            tracing::warn!("cannot notify systemd: {e}");
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A `STATUS=` line for `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// `WATCHDOG=1`, at most once per half watchdog interval; call it from the loop whose
    /// stall should get the daemon restarted.
    pub fn ping(&mut self) {
        let Some(every) = self.watchdog else {
            return;
        };
        if self.last_ping.is_some_and(|t| t.elapsed() < every / 2) {
            return;
        }
        self.last_ping = Some(Instant::now());
        self.send(&[NotifyState::Watchdog]);
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }
}
