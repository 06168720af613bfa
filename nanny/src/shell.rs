//! The I/O shell around the health core: threads, signals, the probe, the load monitor and
//! the reports to lvsd.
//!
//! Three threads: the main loop (this module), a worker that runs one probe or load query at
//! a time, and signal-hook's signal thread. The main loop never blocks on a probe, so a
//! signal is handled at once even while a check program hangs: SIGTERM/SIGINT kill the
//! running program's process group and end nanny with status 0 **without** removing the
//! server (lvsd owns the table and decides; Piranha's nanny ran `ipvsadm -d` here).
//!
//! Reports that lvsd does not take (socket missing, 503, 404 while it reloads) are kept,
//! merged with newer ones and retried after every probe (or every interval while probing
//! is suspended); failures are logged at the first one and then once per ten.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use tracing::{debug, error, info, warn};

use crate::director::{Director, Patch, ServerState};
use crate::health::{Action, Health, Outcome};
use crate::load::LoadMonitor;
use crate::probe::{ChildSlot, Probe, ProbeError};

/// Log one line per this many consecutive failures (besides the first).
const LOG_EVERY: u64 = 10;

/// What can stop nanny with status 1.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// A thread could not be started.
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The worker thread died (a bug).
    #[error("the probe thread stopped unexpectedly")]
    WorkerGone,
}

enum Job {
    Probe(u64),
    Load,
}

enum Event {
    Signal(i32),
    Probe {
        seq: u64,
        result: Result<(), ProbeError>,
        took: Duration,
    },
    Load(Option<f64>),
}

/// Counters, shown in log lines.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Probes finished.
    pub probes: u64,
    /// Probes failed.
    pub failed: u64,
    /// Reports lvsd did not take.
    pub report_errors: u64,
    /// Load queries that gave no figure.
    pub load_errors: u64,
}

/// What the shell needs besides the core.
#[derive(Debug)]
pub struct ShellParts {
    /// `RIP:RPORT`, for log lines.
    pub server: String,
    /// Probe timeout.
    pub timeout: Duration,
    /// The probe.
    pub probe: Probe,
    /// The load monitor, if usable.
    pub load: Option<LoadMonitor>,
}

/// Runs until SIGTERM/SIGINT. `health` decides, `director` receives the reports.
pub fn run(
    mut health: Health,
    parts: ShellParts,
    director: &mut dyn Director,
) -> Result<(), ShellError> {
    let ShellParts {
        server,
        timeout,
        mut probe,
        load,
    } = parts;
    let interval = health.config().interval;
    let slot = ChildSlot::default();
    let (ev_tx, ev_rx) = mpsc::channel::<Event>();
    let (job_tx, job_rx) = mpsc::channel::<Job>();

    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP])
            .map_err(ShellError::Signals)?;
    let sig_tx = ev_tx.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .stack_size(128 * 1024)
        .spawn(move || {
            for sig in signals.forever() {
                if sig_tx.send(Event::Signal(sig)).is_err() {
                    break;
                }
            }
        })
        .map_err(|source| ShellError::Thread {
            what: "signal",
            source,
        })?;

    let worker_slot = slot.clone();
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name("probe".into())
        .stack_size(512 * 1024)
        .spawn(move || {
            let _entered = span.enter();
            for job in job_rx {
                let event = match job {
                    Job::Probe(seq) => {
                        let start = Instant::now();
                        let result = probe.run(timeout, &worker_slot);
                        Event::Probe {
                            seq,
                            result,
                            took: start.elapsed(),
                        }
                    }
                    Job::Load => Event::Load(load.as_ref().and_then(|m| {
                        m.query(timeout, &worker_slot)
                            .map_err(|e| warn!("{e}"))
                            .ok()
                    })),
                };
                if ev_tx.send(event).is_err() {
                    break;
                }
            }
        })
        .map_err(|source| ShellError::Thread {
            what: "probe",
            source,
        })?;

    let mut shell = Shell {
        server,
        director,
        jobs: job_tx,
        pending: None,
        stats: Stats::default(),
        report_failures_in_row: 0,
        last_failure: String::new(),
    };
    loop {
        let actions = health.handle_timeout(Instant::now());
        shell.perform(actions)?;
        let mut wait = health
            .poll_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()));
        if shell.pending.is_some() {
            wait = Some(wait.map_or(interval, |w| w.min(interval)));
        }
        let event = match wait {
            Some(w) => match ev_rx.recv_timeout(w) {
                Ok(e) => Some(e),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Err(ShellError::WorkerGone),
            },
            None => Some(ev_rx.recv().map_err(|_| ShellError::WorkerGone)?),
        };
        let now = Instant::now();
        match event {
            None => {
                if health.poll_timeout().is_none() {
                    shell.flush();
                }
            }
            Some(Event::Signal(sig)) => {
                let actions = match sig {
                    SIGTERM | SIGINT => {
                        info!(signal = sig, "Terminating due to signal {sig}");
                        if let Some(pgid) = slot.kill() {
                            info!(pid = pgid, "Killing child {pgid}");
                        }
                        info!(
                            probes = shell.stats.probes,
                            failed = shell.stats.failed,
                            report_errors = shell.stats.report_errors,
                            "stopping; the server stays as lvsd has it"
                        );
                        return Ok(());
                    }
                    SIGUSR1 => {
                        info!("opaque glasses on");
                        health.force_down(now)
                    }
                    SIGUSR2 => {
                        info!("rose-colored glasses on");
                        health.force_up(now)
                    }
                    SIGHUP => {
                        info!("DEBUG -- removing glasses");
                        health.resume(now)
                    }
                    _ => Vec::new(),
                };
                shell.perform(actions)?;
            }
            Some(Event::Probe { seq, result, took }) => {
                let before = health.consecutive_failures();
                let outcome = shell.count_probe(&health, result, took);
                let actions = health.handle_probe(now, seq, outcome);
                if health.consecutive_failures() > before {
                    shell.log_failure(&health);
                }
                shell.perform(actions)?;
                shell.flush();
            }
            Some(Event::Load(load)) => {
                if load.is_none() {
                    shell.stats.load_errors += 1;
                }
                let actions = health.handle_load(now, load);
                shell.perform(actions)?;
            }
        }
    }
}

struct Shell<'d> {
    server: String,
    director: &'d mut dyn Director,
    jobs: mpsc::Sender<Job>,
    pending: Option<Patch>,
    stats: Stats,
    report_failures_in_row: u64,
    last_failure: String,
}

impl Shell<'_> {
    fn count_probe(
        &mut self,
        health: &Health,
        result: Result<(), ProbeError>,
        took: Duration,
    ) -> Outcome {
        self.stats.probes += 1;
        match result {
            Ok(()) => {
                let failures = health.consecutive_failures();
                if failures > 0 {
                    info!(
                        failures,
                        "probe of {} succeeded again after {failures} failure(s)", self.server
                    );
                }
                debug!(took_ms = took.as_millis(), "probe ok");
                Outcome::Ok
            }
            Err(e) => {
                self.stats.failed += 1;
                self.last_failure = e.to_string();
                Outcome::Failed(self.last_failure.clone())
            }
        }
    }

    /// After the core counted a failed probe: log it if it is the first of a run or every
    /// [`LOG_EVERY`]th.
    fn log_failure(&self, health: &Health) {
        let run = u64::from(health.consecutive_failures());
        if run == 1 || run.is_multiple_of(LOG_EVERY) {
            warn!(
                consecutive = run,
                failed_total = self.stats.failed,
                "{}",
                self.last_failure
            );
        }
    }

    fn perform(&mut self, actions: Vec<Action>) -> Result<(), ShellError> {
        for action in actions {
            match action {
                Action::Probe { seq } => self
                    .jobs
                    .send(Job::Probe(seq))
                    .map_err(|_| ShellError::WorkerGone)?,
                Action::QueryLoad => self
                    .jobs
                    .send(Job::Load)
                    .map_err(|_| ShellError::WorkerGone)?,
                Action::Admit { weight, forced } => {
                    if forced {
                        info!(weight, "making {} available (forced)", self.server);
                    } else {
                        info!(weight, "[ active ] making {} available", self.server);
                    }
                    let reason = if forced {
                        "forced up by SIGUSR2"
                    } else {
                        "probe ok"
                    };
                    self.report(Patch {
                        state: Some(ServerState::Up),
                        weight: Some(weight),
                        reason: Some(reason.to_owned()),
                    });
                }
                Action::Remove {
                    quiesce,
                    forced,
                    reason,
                } => {
                    if forced {
                        info!("taking {} out of service (forced)", self.server);
                    } else {
                        info!(
                            quiesce,
                            reason = %reason,
                            "[inactive] shutting down {} due to connection failure",
                            self.server
                        );
                    }
                    let state = if quiesce {
                        ServerState::Quiesced
                    } else {
                        ServerState::Down
                    };
                    self.report(Patch {
                        state: Some(state),
                        weight: None,
                        reason: Some(reason),
                    });
                }
                Action::SetWeight(weight) => {
                    debug!(weight, "weight of {} set to {weight}", self.server);
                    self.report(Patch {
                        weight: Some(weight),
                        ..Patch::default()
                    });
                }
            }
        }
        Ok(())
    }

    fn report(&mut self, patch: Patch) {
        self.pending = Some(match self.pending.take() {
            Some(older) => older.merge(patch),
            None => patch,
        });
        self.flush();
    }

    /// Sends the pending report, if any.
    fn flush(&mut self) {
        let Some(patch) = self.pending.take() else {
            return;
        };
        match self.director.set_server(&patch) {
            Ok(()) => {
                if self.report_failures_in_row > 0 {
                    info!(
                        attempts = self.report_failures_in_row + 1,
                        "lvsd took the report for {} after retrying", self.server
                    );
                }
                self.report_failures_in_row = 0;
            }
            Err(e) if !e.retry() => {
                self.stats.report_errors += 1;
                error!(body = %patch.to_json(), "{e}; report dropped");
            }
            Err(e) => {
                self.stats.report_errors += 1;
                self.report_failures_in_row += 1;
                let n = self.report_failures_in_row;
                if n == 1 || n.is_multiple_of(LOG_EVERY) {
                    warn!(attempts = n, "{e}; will retry");
                }
                self.pending = Some(patch);
            }
        }
    }
}
