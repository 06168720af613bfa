//! Nanny supervision: one `nanny` process per active real server of each active service,
//! kept equal to the list the worker publishes (start-up and every reload), restarted with
//! backoff when it dies.
//!
//! The list is diffed like services: a nanny whose (service, server) is gone or whose
//! argument list changed is stopped (SIGTERM, SIGKILL after [`STOP_GRACE`]); a new one is
//! started; an unchanged one keeps running (its probe state survives a reload).
//!
//! A nanny that exits is restarted after 1, 2, 4, … seconds (at most [`MAX_BACKOFF`]);
//! after [`MAX_RESTARTS`] restarts within [`RESTART_WINDOW`] lvsd gives up on it. Then
//! `hard_shutdown = 1` (Piranha's default) makes lvsd stop, so that pulse fails over to the
//! partner, Piranha's meaning of the keyword; `hard_shutdown = 0` logs
//! `manual action needed` and leaves the server in the state last reported. (Piranha gave
//! up at the first death and never restarted a nanny.)
//!
//! The [`Plan`] (what to start, stop, restart, when) is sans-IO and tested with a fake
//! clock; [`run`] is the tokio shell around it.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::Duration;

use ipvs_core::service::ServiceKey;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{error, info, warn};

/// How long a stopped nanny gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
/// Longest wait before a restart.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Restarts allowed within [`RESTART_WINDOW`] before lvsd gives up on a nanny.
pub const MAX_RESTARTS: usize = 5;
/// The window [`MAX_RESTARTS`] counts in.
pub const RESTART_WINDOW: Duration = Duration::from_secs(300);
/// How often exits are looked for when SIGCHLD cannot be watched.
pub const TICK: Duration = Duration::from_millis(200);
/// How often exits are looked for anyway while SIGCHLD is watched (a lost signal).
pub const SAFETY_TICK: Duration = Duration::from_secs(5);

/// Which nanny: one per (service, real server).
pub type NannyKey = (ServiceKey, SocketAddrV4);

/// One nanny to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NannySpec {
    /// `VS/RS` names for the log.
    pub label: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments (Piranha's order; see `nanny_args`).
    pub args: Vec<String>,
    /// Extra environment (`LVSD_SOCKET`).
    pub env: Vec<(String, String)>,
}

/// What the worker publishes: the nannies that should run, and the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NannyList {
    /// By key.
    pub nannies: BTreeMap<NannyKey, NannySpec>,
    /// `hard_shutdown`.
    pub hard_shutdown: bool,
}

/// What the supervisor tells the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Restarts exhausted with `hard_shutdown = 1`: lvsd must stop.
    GiveUp(String),
}

/// Restart bookkeeping of one nanny (sans-IO).
#[derive(Debug, Clone, Default)]
pub struct Restarts {
    times: VecDeque<Instant>,
}

impl Restarts {
    /// A nanny died at `now`: when to restart it, or `None` when restarts are exhausted.
    pub fn on_exit(&mut self, now: Instant) -> Option<Instant> {
        while self
            .times
            .front()
            .is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW)
        {
            self.times.pop_front();
        }
        if self.times.len() >= MAX_RESTARTS {
            return None;
        }
        let n = u32::try_from(self.times.len()).unwrap_or(u32::MAX);
        self.times.push_back(now);
        let delay = Duration::from_secs(1u64 << n.min(5)).min(MAX_BACKOFF);
        Some(now + delay)
    }
}

struct Running {
    spec: NannySpec,
    child: Option<Child>,
    restart_at: Option<Instant>,
    restarts: Restarts,
    gave_up: bool,
}

/// Runs nannies as `list` says until `stop` turns true; then stops them all. Sends a
/// [`Verdict`] on `verdicts` when lvsd must give up. Reports the number running in
/// `running`.
pub async fn run(
    mut list: watch::Receiver<NannyList>,
    mut stop: watch::Receiver<bool>,
    verdicts: std::sync::mpsc::Sender<Verdict>,
    wake: ipvs_core::io::Waker,
    running_count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut running: BTreeMap<NannyKey, Running> = BTreeMap::new();
    // Exits are looked for when SIGCHLD says a child changed state (with a slow tick as a
    // safety net), not by asking every child several times a second: with a thousand
    // nannies that polling alone cost 0.5 % of a core.
    let mut sigchld = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()) {
        Ok(s) => Some(s),
        Err(e) => {
            warn!("cannot watch SIGCHLD ({e}); looking for nanny exits every {TICK:?}");
            None
        }
    };
    let safety = if sigchld.is_some() { SAFETY_TICK } else { TICK };
    let mut tick = tokio::time::interval(safety);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut current = list.borrow_and_update().clone();
    reconcile(&mut running, &current).await;
    loop {
        let next_restart = running.values().filter_map(|r| r.restart_at).min();
        tokio::select! {
            r = list.changed() => {
                if r.is_err() { break; }
                current = list.borrow_and_update().clone();
                reconcile(&mut running, &current).await;
            }
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() { break; }
            }
            Some(()) = async { sigchld.as_mut()?.recv().await } => {
                check_all(&mut running, current.hard_shutdown, &verdicts, &wake);
            }
            () = tokio::time::sleep_until(next_restart.unwrap_or_else(far_future)),
                if next_restart.is_some() => {
                check_all(&mut running, current.hard_shutdown, &verdicts, &wake);
            }
            _ = tick.tick() => {
                check_all(&mut running, current.hard_shutdown, &verdicts, &wake);
            }
        }
        let n = running.values().filter(|r| r.child.is_some()).count();
        running_count.store(n, std::sync::atomic::Ordering::Relaxed);
    }
    let all: Vec<Running> = std::mem::take(&mut running).into_values().collect();
    stop_all(all).await;
    running_count.store(0, std::sync::atomic::Ordering::Relaxed);
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

fn check_all(
    running: &mut BTreeMap<NannyKey, Running>,
    hard_shutdown: bool,
    verdicts: &std::sync::mpsc::Sender<Verdict>,
    wake: &ipvs_core::io::Waker,
) {
    let now = Instant::now();
    for r in running.values_mut() {
        check(r, now, hard_shutdown, verdicts, wake);
    }
}

fn check(
    r: &mut Running,
    now: Instant,
    hard_shutdown: bool,
    verdicts: &std::sync::mpsc::Sender<Verdict>,
    wake: &ipvs_core::io::Waker,
) {
    if let Some(child) = &mut r.child {
        match child.try_wait() {
            Ok(None) => return,
            Ok(Some(status)) => {
                r.child = None;
                died(
                    r,
                    now,
                    hard_shutdown,
                    verdicts,
                    wake,
                    &format!("died ({status})"),
                );
            }
            Err(e) => warn!(nanny = %r.spec.label, "cannot check nanny: {e}"),
        }
    }
    if r.child.is_none() && !r.gave_up && r.restart_at.is_some_and(|t| t <= now) {
        r.restart_at = None;
        r.child = spawn(&r.spec);
        if r.child.is_none() {
            died(
                r,
                now,
                hard_shutdown,
                verdicts,
                wake,
                "could not be started",
            );
        }
    }
}

/// A nanny is gone: schedule its restart, or give up.
fn died(
    r: &mut Running,
    now: Instant,
    hard_shutdown: bool,
    verdicts: &std::sync::mpsc::Sender<Verdict>,
    wake: &ipvs_core::io::Waker,
    what: &str,
) {
    let label = &r.spec.label;
    match r.restarts.on_exit(now) {
        Some(at) => {
            warn!(nanny = %label, "nanny for {label} {what}; restarting in {:?}", at - now);
            r.restart_at = Some(at);
        }
        None if hard_shutdown => {
            error!(nanny = %label,
                "nanny for child {label} {what}, {MAX_RESTARTS} restarts in {RESTART_WINDOW:?}! \
                 hard_shutdown = 1: shutting down lvs");
            r.gave_up = true;
            let _ = verdicts.send(Verdict::GiveUp(format!("nanny for {label} kept dying")));
            wake.wake();
        }
        None => {
            error!(nanny = %label,
                "nanny for child {label} {what}, {MAX_RESTARTS} restarts in {RESTART_WINDOW:?}! \
                 manual action needed!");
            r.gave_up = true;
        }
    }
}

async fn reconcile(running: &mut BTreeMap<NannyKey, Running>, list: &NannyList) {
    let stale: Vec<NannyKey> = running
        .iter()
        .filter(|(k, r)| list.nannies.get(*k) != Some(&r.spec))
        .map(|(k, _)| *k)
        .collect();
    let mut stopping = Vec::new();
    for k in stale {
        if let Some(r) = running.remove(&k) {
            info!(nanny = %r.spec.label, "stopping nanny for {}", r.spec.label);
            stopping.push(r);
        }
    }
    stop_all(stopping).await;
    for (k, spec) in &list.nannies {
        if running.contains_key(k) {
            continue;
        }
        let child = spawn(spec);
        let mut restarts = Restarts::default();
        let restart_at = if child.is_none() {
            restarts.on_exit(Instant::now())
        } else {
            None
        };
        running.insert(
            *k,
            Running {
                spec: spec.clone(),
                child,
                restart_at,
                restarts,
                gave_up: false,
            },
        );
    }
}

fn spawn(spec: &NannySpec) -> Option<Child> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args).kill_on_drop(true);
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    // lvsd may be a unit's main process: a nanny must not notify systemd for it.
    for v in crate::systemd::NOTIFY_VARS {
        cmd.env_remove(v);
    }
    match cmd.spawn() {
        Ok(child) => {
            info!(nanny = %spec.label, pid = child.id().unwrap_or(0),
                "create_monitor for {} running as pid {}", spec.label, child.id().unwrap_or(0));
            Some(child)
        }
        Err(e) => {
            error!(nanny = %spec.label, program = %spec.program.display(),
                "cannot start nanny for {}: {}: {e}", spec.label, spec.program.display());
            None
        }
    }
}

async fn stop_all(list: Vec<Running>) {
    let mut children: Vec<Child> = list.into_iter().filter_map(|r| r.child).collect();
    for c in &children {
        if let Some(pid) = c.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    for c in &mut children {
        if tokio::time::timeout_at(deadline, c.wait()).await.is_err() {
            let _ = c.kill().await;
        }
    }
}

/// Ties the calling process to the supervisor whose pid is in the environment variable
/// `env` (set by the supervisor when it starts the child): the child gets SIGTERM when the
/// supervisor dies (`PR_SET_PDEATHSIG`). Nothing happens when `env` is unset (started by
/// hand or by its own unit). Used by nanny (`LVSD_SUPERVISOR_PID`, set by lvsd) and lvsd
/// (`PULSE_SUPERVISOR_PID`, set by pulse). `supervisor` names it in messages.
pub fn die_with_supervisor(env: &str, supervisor: &str) -> Result<(), String> {
    let Some(pid) = std::env::var(env).ok().and_then(|p| p.parse::<i32>().ok()) else {
        return Ok(());
    };
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
        .map_err(|e| format!("cannot tie this process to {supervisor} (prctl): {e}"))?;
    // The supervisor may have died between fork and prctl: then the signal never comes.
    if nix::unistd::getppid().as_raw() != pid {
        return Err(format!("{supervisor} (pid {pid}) is gone; not starting"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_and_give_up_within_the_window() {
        let t0 = Instant::now();
        let mut r = Restarts::default();
        let delays: Vec<Duration> = (0..MAX_RESTARTS)
            .map(|i| {
                let now = t0 + Duration::from_secs(i as u64);
                r.on_exit(now).expect("still allowed") - now
            })
            .collect();
        assert_eq!(
            delays,
            [1, 2, 4, 8, 16].map(Duration::from_secs),
            "exponential backoff"
        );
        assert_eq!(r.on_exit(t0 + Duration::from_secs(10)), None, "exhausted");
        // Outside the window the count starts again.
        let later = t0 + RESTART_WINDOW + Duration::from_secs(60);
        assert_eq!(r.on_exit(later), Some(later + Duration::from_secs(1)));
    }
}
