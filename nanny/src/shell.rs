//! The I/O shell around the health core: the event loop, signals, the probe, the load
//! monitor and the reports to lvsd.
//!
//! One thread does it all for TCP and UDP probes: it sleeps in `ppoll(2)` on signal-hook's
//! self-pipe and, while a probe runs, on the probe's socket ([`stream::Attempt`]), so a probe
//! cycle costs one or two wake-ups and no hand-off between threads. Probes that can block
//! without a pollable descriptor (`send_program`, HTTP(S) through reqwest) and the load monitor
//! run on a worker thread, started only when nanny has one of them; it reports through a
//! channel and wakes the loop through a socket pair. Either way the loop never blocks on a
//! probe, so a signal is handled at once even while a check program hangs: SIGTERM/SIGINT kill
//! the running program's process group and end nanny with status 0 **without** removing the
//! server (lvsd owns the table and decides; Piranha's nanny ran `ipvsadm -d` here).
//!
//! Reports that lvsd does not take (socket missing, 503, 404 while it reloads) are kept,
//! merged with newer ones and retried after every probe (or every interval while probing
//! is suspended); failures are logged at the first one and then once per ten.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, TryRecvError};
use std::task::Poll;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::time::TimeSpec;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::backend::SignalDelivery;
use signal_hook::iterator::exfiltrator::SignalOnly;
use tracing::{debug, error, info, warn};

use crate::director::{Director, Patch, ServerState};
use crate::health::{Action, Health, Outcome};
use crate::load::LoadMonitor;
use crate::probe::stream::{Attempt, StreamProbe};
use crate::probe::{ChildSlot, Probe, ProbeError};

/// Log one line per this many consecutive failures (besides the first).
const LOG_EVERY: u64 = 10;

/// How late the kernel may wake nanny (`PR_SET_TIMERSLACK`; Linux's default is 50 µs). With
/// many nannies on one machine a wider slack lets one timer interrupt wake several of them in
/// a row instead of each on its own; a probe may start this much late (and the next one is
/// due an interval after that). Measured in `docs/BENCHMARKS.md`.
const TIMER_SLACK: Duration = Duration::from_millis(5);

/// The signals nanny acts on.
const SIGNALS: [i32; 5] = [SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP];

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
    /// Waiting for events failed (a bug).
    #[error("cannot wait for events: {0}")]
    Poll(std::io::Error),
}

enum Job {
    Probe(u64),
    Load,
}

enum Event {
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

/// A TCP or UDP probe run by the loop itself, and the attempt in progress.
struct Inline {
    probe: StreamProbe,
    running: Option<Running>,
}

struct Running {
    seq: u64,
    started: Instant,
    attempt: Attempt,
}

/// A probe's end, from either kind of probe.
struct Finished {
    seq: u64,
    result: Result<(), ProbeError>,
    took: Duration,
}

/// The worker thread, for what cannot be polled.
struct Worker {
    jobs: mpsc::Sender<Job>,
    events: mpsc::Receiver<Event>,
    /// Readable when `events` holds something.
    wake: UnixStream,
}

impl Worker {
    fn spawn(
        mut probe: Option<Probe>,
        load: Option<LoadMonitor>,
        timeout: Duration,
        slot: ChildSlot,
    ) -> Result<Self, ShellError> {
        let thread_error = |source| ShellError::Thread {
            what: "probe",
            source,
        };
        let (wake, mut wake_tx) = UnixStream::pair().map_err(thread_error)?;
        wake.set_nonblocking(true).map_err(thread_error)?;
        let (ev_tx, events) = mpsc::channel::<Event>();
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let span = tracing::Span::current();
        std::thread::Builder::new()
            .name("probe".into())
            .stack_size(512 * 1024)
            .spawn(move || {
                let _entered = span.enter();
                for job in job_rx {
                    let event = match job {
                        Job::Probe(seq) => {
                            let Some(probe) = probe.as_mut() else {
                                continue;
                            };
                            let start = Instant::now();
                            let result = probe.run(timeout, &slot);
                            let took = start.elapsed();
                            Event::Probe { seq, result, took }
                        }
                        Job::Load => Event::Load(query_load(load.as_ref(), timeout, &slot)),
                    };
                    if ev_tx.send(event).is_err() || wake_tx.write_all(&[1]).is_err() {
                        break;
                    }
                }
            })
            .map_err(thread_error)?;
        Ok(Self { jobs, events, wake })
    }

    fn send(&self, job: Job) -> Result<(), ShellError> {
        self.jobs.send(job).map_err(|_| ShellError::WorkerGone)
    }

    /// Empties the wake-up socket, then takes the next event, if any.
    fn try_next(&mut self) -> Result<Option<Event>, ShellError> {
        let mut buf = [0u8; 64];
        while matches!((&self.wake).read(&mut buf), Ok(n) if n > 0) {}
        match self.events.try_recv() {
            Ok(event) => Ok(Some(event)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(ShellError::WorkerGone),
        }
    }
}

/// The 1-minute load, or `None` (logged) when the query failed.
fn query_load(load: Option<&LoadMonitor>, timeout: Duration, slot: &ChildSlot) -> Option<f64> {
    load?.query(timeout, slot).map_err(|e| warn!("{e}")).ok()
}

/// Which of the polled descriptors were ready.
#[derive(Debug, Default)]
struct Ready {
    signals: bool,
    worker: bool,
    /// The inline probe whose socket was ready, by sequence number: a signal handled after
    /// the wait may have replaced it by a new one.
    probe: Option<u64>,
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
        probe,
        load,
    } = parts;
    let interval = health.config().interval;
    set_timer_slack();
    let slot = ChildSlot::default();
    let (sig_read, sig_write) = UnixStream::pair().map_err(ShellError::Signals)?;
    let mut signals = SignalDelivery::with_pipe(sig_read, sig_write, SignalOnly, SIGNALS)
        .map_err(ShellError::Signals)?;

    let (inline, offloaded) = match probe {
        Probe::Stream(probe) => (
            Some(Inline {
                probe,
                running: None,
            }),
            None,
        ),
        other => (None, Some(other)),
    };
    let worker = if offloaded.is_some() || load.is_some() {
        Some(Worker::spawn(offloaded, load, timeout, slot.clone())?)
    } else {
        None
    };

    let mut shell = Shell {
        server,
        director,
        timeout,
        inline,
        finished: None,
        worker,
        pending: None,
        stats: Stats::default(),
        report_failures_in_row: 0,
        last_failure: String::new(),
    };
    loop {
        let now = Instant::now();
        let actions = health.handle_timeout(now);
        shell.perform(actions, now)?;
        if let Some(done) = shell.finished.take() {
            shell.take_probe(&mut health, done)?;
            continue;
        }

        let mut deadline = health.poll_timeout();
        if shell.pending.is_some() {
            let retry = now + interval;
            deadline = Some(deadline.map_or(retry, |d| d.min(retry)));
        }
        if let Some(probe_deadline) = shell.probe_deadline() {
            deadline = Some(deadline.map_or(probe_deadline, |d| d.min(probe_deadline)));
        }
        let ready = shell.wait(&signals, deadline)?;
        let now = Instant::now();

        if ready.signals {
            for sig in signals.pending() {
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
                shell.perform(actions, now)?;
            }
        }
        if ready.worker {
            while let Some(event) = shell.worker.as_mut().map_or(Ok(None), Worker::try_next)? {
                match event {
                    Event::Probe { seq, result, took } => {
                        shell.take_probe(&mut health, Finished { seq, result, took })?;
                    }
                    Event::Load(load) => {
                        if load.is_none() {
                            shell.stats.load_errors += 1;
                        }
                        let actions = health.handle_load(now, load);
                        shell.perform(actions, now)?;
                    }
                }
            }
        }
        let probe_ready = ready.probe.is_some() && ready.probe == shell.running().map(|r| r.seq);
        let probe_due = shell.probe_deadline().is_some_and(|d| now >= d);
        if let Some(done) = (probe_ready || probe_due)
            .then(|| shell.advance_probe(probe_ready, now))
            .flatten()
        {
            shell.take_probe(&mut health, done)?;
        } else if !(ready.signals || ready.worker || ready.probe.is_some())
            && health.poll_timeout().is_none()
        {
            shell.flush();
        }
    }
}

/// Widens the timer slack to [`TIMER_SLACK`] for this thread (threads started later inherit
/// it). Failure only costs some CPU, so it is logged and ignored.
fn set_timer_slack() {
    let ns = u64::try_from(TIMER_SLACK.as_nanos()).unwrap_or(u64::MAX);
    if let Err(e) = nix::sys::prctl::set_timerslack(ns) {
        debug!("cannot set the timer slack: {e}");
    }
}

struct Shell<'d> {
    server: String,
    director: &'d mut dyn Director,
    timeout: Duration,
    inline: Option<Inline>,
    /// An inline probe that ended as it started, for the loop to take before it waits.
    finished: Option<Finished>,
    worker: Option<Worker>,
    pending: Option<Patch>,
    stats: Stats,
    report_failures_in_row: u64,
    last_failure: String,
}

impl Shell<'_> {
    /// Sleeps until a signal, a worker event, the inline probe's socket, or `deadline`.
    fn wait(
        &self,
        signals: &SignalDelivery<UnixStream, SignalOnly>,
        deadline: Option<Instant>,
    ) -> Result<Ready, ShellError> {
        let readable = PollFlags::POLLIN;
        let signal_fd = PollFd::new(signals.get_read().as_fd(), readable);
        // At most three descriptors: signals, worker, probe; unused slots are left out.
        let mut fds = [signal_fd.clone(), signal_fd.clone(), signal_fd];
        let mut used = 1;
        if let Some(worker) = &self.worker {
            fds[used] = PollFd::new(worker.wake.as_fd(), readable);
            used += 1;
        }
        let running = self.running();
        let attempt = running.and_then(|r| r.attempt.waiting_on());
        if let Some((fd, interest)) = attempt {
            fds[used] = PollFd::new(fd, interest.poll_flags());
            used += 1;
        }
        let fds = &mut fds[..used];
        let timeout =
            deadline.map(|d| TimeSpec::from_duration(d.saturating_duration_since(Instant::now())));
        match ppoll(fds, timeout, None) {
            Ok(_) => {}
            // A signal arrived during the wait: its byte is in the pipe for the next round.
            Err(Errno::EINTR) => return Ok(Ready::default()),
            Err(e) => return Err(ShellError::Poll(e.into())),
        }
        // In the order pushed above.
        let mut ready = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()));
        let signals = ready.next().unwrap_or(false);
        let worker = self.worker.is_some() && ready.next().unwrap_or(false);
        let probe = attempt.is_some() && ready.next().unwrap_or(false);
        Ok(Ready {
            signals,
            worker,
            probe: running.filter(|_| probe).map(|r| r.seq),
        })
    }

    fn running(&self) -> Option<&Running> {
        self.inline.as_ref().and_then(|i| i.running.as_ref())
    }

    /// When the inline probe in progress times out.
    fn probe_deadline(&self) -> Option<Instant> {
        self.running().map(|r| r.attempt.deadline())
    }

    /// Starts probe `seq` inline; a probe that ends without waiting (refused at once,
    /// connected without an expect string) is left in `finished`.
    fn start_probe(&mut self, seq: u64, now: Instant) {
        let Some(inline) = self.inline.as_mut() else {
            return;
        };
        // A probe still running was superseded by a signal: it is dropped.
        inline.running = Some(Running {
            seq,
            started: now,
            attempt: inline.probe.start(now, self.timeout),
        });
        self.finished = self.advance_probe(false, now);
    }

    /// Moves the inline probe on (`ready`: its socket was reported ready); what it came to
    /// once it has finished.
    fn advance_probe(&mut self, ready: bool, now: Instant) -> Option<Finished> {
        let inline = self.inline.as_mut()?;
        let running = inline.running.as_mut()?;
        let Poll::Ready(result) = running.attempt.advance(&inline.probe, ready, now) else {
            return None;
        };
        let done = Finished {
            seq: running.seq,
            result,
            took: now.saturating_duration_since(running.started),
        };
        inline.running = None;
        Some(done)
    }

    /// Hands a finished probe to the core and performs what it decides.
    fn take_probe(&mut self, health: &mut Health, done: Finished) -> Result<(), ShellError> {
        let Finished { seq, result, took } = done;
        let now = Instant::now();
        let before = health.consecutive_failures();
        let outcome = self.count_probe(health, result, took);
        let actions = health.handle_probe(now, seq, outcome);
        if health.consecutive_failures() > before {
            self.log_failure(health);
        }
        self.perform(actions, now)?;
        self.flush();
        Ok(())
    }

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

    fn perform(&mut self, actions: Vec<Action>, now: Instant) -> Result<(), ShellError> {
        for action in actions {
            match action {
                Action::Probe { seq } => match (&self.inline, &self.worker) {
                    (Some(_), _) => self.start_probe(seq, now),
                    (None, Some(worker)) => worker.send(Job::Probe(seq))?,
                    (None, None) => return Err(ShellError::WorkerGone),
                },
                Action::QueryLoad => self
                    .worker
                    .as_ref()
                    .ok_or(ShellError::WorkerGone)?
                    .send(Job::Load)?,
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
