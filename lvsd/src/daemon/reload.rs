//! Reloads (SIGHUP, `POST /v1/reload`) with the costly part off the worker thread.
//!
//! The worker owns the engine and must not stop forwarding for long (issue 9's target: a
//! reload of a 1000-service, 10 000-server lvs.cf stalls it for at most 1 ms). Reading,
//! parsing and validating such a file, building its model (the desired table, the sorry
//! servers) and the nanny list take tens of milliseconds (`examples/reload_bench.rs`), so a
//! thread of its own (`lvsd-reload`) does them and hands the worker a [`Prepared`] reload
//! through a channel, waking it through the data path's eventfd. The worker then does only
//! what touches the engine and the maps: timeouts, fwmark rules, the model swap
//! ([`crate::model::Command::ReloadPrepared`]: health and role carry over), the diff applied to the engine
//! and the steering maps (`State::command`). The change lines (one per change, in ipvsadm's
//! words), the `reloaded FILE` line and the API's answer go back to the reload thread, which
//! formats, logs and answers there, and frees the old table there too.
//!
//! One reload is prepared at a time. Reloads asked for while one is being prepared are
//! merged into one more, prepared from the file as it is once the first is applied; every
//! API caller is answered by the reload that followed its request. A file that does not
//! parse is logged by the reload thread (`reload refused, …` with `FILE:LINE`) and nothing
//! running changes.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use ipvs_core::engine::{Engine, FwmarkRule};
use ipvs_core::io::{Steering, Waker};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use super::state::{NannySettings, State, Steer, steer_set};
use crate::control::api::ReloadView;
use crate::control::server::{OpError, Reply};
use crate::desired::DesiredTable;
use crate::lvscf::{self, SystemLookup};
use crate::model::{Director, Event};
use crate::program::Change;
use crate::supervise::NannyList;

/// Where an API caller's answer goes.
pub(super) type ReplyTx = oneshot::Sender<Result<Reply, OpError>>;

/// A reload prepared off the worker.
pub(super) struct Prepared {
    /// The model of the new file (every server unchecked; the worker keeps the health).
    director: Director,
    /// The engine's firewall-mark rules for the new file.
    rules: Vec<FwmarkRule>,
    /// The floating addresses of the new file.
    floating: BTreeSet<Ipv4Addr>,
    /// The steering entries of the new file's table: the kernel-side guard's set, but for
    /// what only the engine holds (sorry servers), which the worker adds.
    guard: BTreeSet<Steer>,
}

enum Job {
    Prepare,
    /// Something big the worker no longer needs (an old nanny list), freed here.
    Free(Box<dyn Send>),
    Report {
        changes: Vec<Change>,
        before: DesiredTable,
        old: Box<Director>,
        sync_changed: Vec<&'static str>,
        rules_line: Option<String>,
        replies: Vec<ReplyTx>,
    },
}

/// What the reload thread hands the worker.
enum Ready {
    /// A reload to apply, or the reason the file was refused.
    Reload(Result<Box<Prepared>, String>),
    /// The nannies the file just applied wants. After a reload the model's configured table
    /// is the file's (run-time changes are undone), so this is what `State::nannies` would
    /// say; it is built after the reload was handed over, so that the engine does not wait
    /// for it.
    Nannies(NannyList),
}

/// What [`Reloader::poll`] found.
#[derive(Default)]
pub(super) struct Polled {
    /// A reload was applied: the services changed.
    pub applied: bool,
    /// The nanny list of the last reload applied, to publish (none after a run-time change
    /// made it stale, see [`Reloader::nannies_stale`]).
    pub nannies: Option<NannyList>,
    /// The steering entries of the file applied (see [`Prepared::guard`]).
    pub guard: Option<BTreeSet<Steer>>,
}

/// The worker's handle on the reload thread.
pub(super) struct Reloader {
    jobs: Option<mpsc::Sender<Job>>,
    results: mpsc::Receiver<Ready>,
    /// Reloads applied whose nanny list has not come yet.
    awaiting_nannies: usize,
    /// A run-time change since: those lists are stale.
    stale_nannies: bool,
    /// `--no-nannies`: no lists come.
    no_nannies: bool,
    in_flight: Option<Vec<ReplyTx>>,
    queued: Option<Vec<ReplyTx>>,
    thread: Option<JoinHandle<()>>,
}

/// What the reload thread needs to know.
pub(super) struct Settings {
    /// The file.
    pub path: PathBuf,
    /// Its name in messages.
    pub file: String,
    /// Nanny settings of the process.
    pub nanny: NannySettings,
    /// `--no-nannies`.
    pub no_nannies: bool,
}

impl Reloader {
    /// Starts the reload thread; it wakes the worker through `waker` when a reload is ready.
    pub fn start(settings: Settings, waker: Waker) -> std::io::Result<Reloader> {
        let no_nannies = settings.no_nannies;
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (results_tx, results_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("lvsd-reload".into())
            .spawn(move || run(&settings, &jobs_rx, &results_tx, &waker))?;
        Ok(Reloader {
            jobs: Some(jobs_tx),
            results: results_rx,
            awaiting_nannies: 0,
            stale_nannies: false,
            no_nannies,
            in_flight: None,
            queued: None,
            thread: Some(thread),
        })
    }

    fn send(&self, job: Job) {
        if let Some(tx) = &self.jobs
            && tx.send(job).is_err()
        {
            error!("the reload thread is gone; reloads are off");
        }
    }

    /// A reload is asked for: by a signal (`None`) or by an API caller.
    pub fn ask(&mut self, reply: Option<ReplyTx>) {
        match &mut self.in_flight {
            None => {
                self.in_flight = Some(reply.into_iter().collect());
                self.send(Job::Prepare);
            }
            Some(_) => self.queued.get_or_insert_with(Vec::new).extend(reply),
        }
    }

    /// The table changed otherwise (a run-time change) after a reload: the nanny lists of
    /// the reloads applied so far are stale; the worker publishes its own.
    pub fn nannies_stale(&mut self) {
        if self.awaiting_nannies > 0 {
            self.stale_nannies = true;
        }
    }

    /// Applies the reloads the thread has prepared and collects their nanny lists.
    pub fn poll(
        &mut self,
        state: &mut State,
        engine: &mut Engine,
        steering: &Steering,
        locals: &mut BTreeSet<Ipv4Addr>,
    ) -> Polled {
        let mut out = Polled::default();
        while let Ok(ready) = self.results.try_recv() {
            match ready {
                Ready::Reload(r) => {
                    if let Some(guard) = self.applied(r, state, engine, steering, locals) {
                        out.applied = true;
                        if let Some(old) = out.guard.replace(guard) {
                            self.free(Box::new(old));
                        }
                    }
                }
                Ready::Nannies(list) => {
                    self.awaiting_nannies = self.awaiting_nannies.saturating_sub(1);
                    let stale = self.stale_nannies;
                    if self.awaiting_nannies == 0 {
                        self.stale_nannies = false;
                    }
                    if stale {
                        self.free(Box::new(list));
                    } else if let Some(old) = out.nannies.replace(list) {
                        self.free(Box::new(old));
                    }
                }
            }
        }
        out
    }

    /// One prepared reload: applied (its guard set returned), or refused.
    fn applied(
        &mut self,
        result: Result<Box<Prepared>, String>,
        state: &mut State,
        engine: &mut Engine,
        steering: &Steering,
        locals: &mut BTreeSet<Ipv4Addr>,
    ) -> Option<BTreeSet<Steer>> {
        let replies = self.in_flight.take().unwrap_or_default();
        if let Some(next) = self.queued.take() {
            self.in_flight = Some(next);
            self.send(Job::Prepare);
        }
        let prepared = match result {
            Ok(p) => p,
            Err(message) => {
                for r in replies {
                    let _ = r.send(Err(OpError::BadRequest(message.clone())));
                }
                return None;
            }
        };
        // Its nanny list follows (the thread sends it before it prepares the next reload,
        // so at most one is awaited).
        if !self.no_nannies {
            self.awaiting_nannies += 1;
        }
        let mut prepared = *prepared;
        let guard = std::mem::take(&mut prepared.guard);
        match apply(prepared, state, engine, steering, locals) {
            Ok(report) => {
                let Report {
                    changes,
                    before,
                    old,
                    sync_changed,
                    rules_line,
                } = report;
                self.send(Job::Report {
                    changes,
                    before,
                    old,
                    sync_changed,
                    rules_line,
                    replies,
                });
                Some(guard)
            }
            Err(message) => {
                error!("{message}");
                for r in replies {
                    let _ = r.send(Err(OpError::BadRequest(message.clone())));
                }
                // Not applied: its nanny list is not to be published.
                self.nannies_stale();
                self.free(Box::new(guard));
                None
            }
        }
    }

    /// Hands `garbage` to the reload thread to free (a big table freed on the worker costs
    /// milliseconds of forwarding).
    pub fn free(&self, garbage: Box<dyn Send>) {
        self.send(Job::Free(garbage));
    }

    /// Answers the callers still waiting (lvsd is stopping) and waits for the thread.
    pub fn shutdown(&mut self) {
        for r in self
            .in_flight
            .take()
            .into_iter()
            .chain(self.queued.take())
            .flatten()
        {
            let _ = r.send(Err(OpError::ShuttingDown));
        }
        self.jobs = None;
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            error!("the reload thread panicked");
        }
    }
}

struct Report {
    changes: Vec<Change>,
    before: DesiredTable,
    old: Box<Director>,
    sync_changed: Vec<&'static str>,
    rules_line: Option<String>,
}

/// The worker's part: everything that touches the engine and the steering maps.
fn apply(
    p: Prepared,
    state: &mut State,
    engine: &mut Engine,
    steering: &Steering,
    locals: &mut BTreeSet<Ipv4Addr>,
) -> Result<Report, String> {
    let cfg = p.director.config();
    if let Err(e) = super::set_timeouts(engine.ipvs_mut(), cfg) {
        error!("reload: timeouts not changed: {e}");
    }
    let sync_changed = super::sync::changed_keywords(&state.director.config().global, &cfg.global);
    // fwmark services are marked by the engine from their address (`fwmark_rules`): the
    // rules follow the file, in the same worker turn as the services (no frame is handled
    // in between), so a service added by this reload is marked from its first packet and
    // a removed one's address is no longer taken for a VIP.
    let old_rules = engine.config().fwmark_rules.clone();
    let rules_changed = p.rules != old_rules;
    if rules_changed && let Err(e) = engine.set_fwmark_rules(p.rules.clone()) {
        return Err(format!(
            "reload refused, the running table is unchanged: firewall-mark rules: {e}"
        ));
    }
    // New floating addresses (a new VIP) are the director's own too: its own connections
    // to a NAT real server from them stay with the kernel, as for those known at start.
    for addr in p.floating.difference(locals) {
        if let Err(e) = steering.add_local(*addr) {
            error!(%addr, "cannot mark a local address in the XDP maps: {e}");
        }
    }
    locals.extend(&p.floating);
    // `State::command(Command::ReloadPrepared)`, keeping the replaced configuration to free
    // it off the worker.
    let (events, old) = state.director.reload_prepared(p.director);
    for ev in events {
        if let Event::RuntimeUndone(n) = ev {
            warn!(
                runtime_changes = n,
                "reload: lvs.cf wins over the {n} run-time change(s) made since it was \
                 loaded; the changes below put its table back"
            );
            state.note(
                "reload",
                format!("reload: lvs.cf wins over {n} run-time change(s)"),
            );
        }
    }
    // The changes come back from the sync (no second diff, no copy of the old table on the
    // worker), and the steering updates are spread over the next turns.
    let (changes, before) = state.sync_spread(engine, steering);
    state.note(
        "reload",
        format!(
            "reloaded {}: {} change(s) to the table",
            state.director.file(),
            changes.len()
        ),
    );
    let rules_line = rules_changed.then(|| {
        format!(
            "reload: firewall-mark rules {} (were {})",
            show_rules(&p.rules),
            show_rules(&old_rules)
        )
    });
    Ok(Report {
        changes,
        before,
        old: Box::new(old),
        sync_changed,
        rules_line,
    })
}

fn show_rules(rules: &[FwmarkRule]) -> String {
    if rules.is_empty() {
        return "none".to_owned();
    }
    let v: Vec<String> = rules
        .iter()
        .map(|r| format!("{}/{} -> mark {}", r.addr.addr, r.addr.prefix_len, r.mark))
        .collect();
    v.join(", ")
}

/// The reload thread: prepares reloads and reports applied ones, until the worker drops
/// its end of the channel.
fn run(s: &Settings, jobs: &mpsc::Receiver<Job>, results: &mpsc::Sender<Ready>, waker: &Waker) {
    for job in jobs {
        match job {
            Job::Prepare => {
                let r = prepare(s);
                // The nanny list is built from a copy of the new model, after the worker
                // has the reload.
                let copy = match &r {
                    Ok(p) if !s.no_nannies => Some(p.director.clone()),
                    _ => None,
                };
                if results.send(Ready::Reload(r)).is_err() {
                    return;
                }
                waker.wake();
                if let Some(director) = copy {
                    let list = State::new(director, s.nanny.clone()).nannies();
                    if results.send(Ready::Nannies(list)).is_err() {
                        return;
                    }
                    waker.wake();
                }
            }
            Job::Free(garbage) => drop(garbage),
            Job::Report {
                changes,
                before,
                old,
                sync_changed,
                rules_line,
                replies,
            } => {
                let changes: Vec<String> = changes.iter().map(ToString::to_string).collect();
                for c in &changes {
                    info!(change = %c, "reload: {c}");
                }
                if let Some(line) = rules_line {
                    info!("{line}");
                }
                info!(changes = changes.len(), "reloaded {}", s.file);
                if !sync_changed.is_empty() {
                    warn!(
                        keywords = %sync_changed.join(","),
                        "reload: connection sync keeps its settings from lvsd's start; the \
                         change to {} takes effect when lvsd (pulse) restarts",
                        sync_changed.join(", ")
                    );
                }
                let view = ReloadView { changes };
                for r in replies {
                    let _ = r.send(Ok(Reply::Reload(view.clone())));
                }
                // The old table and configuration are freed here, not on the worker.
                drop(before);
                drop(old);
            }
        }
    }
}

fn prepare(s: &Settings) -> Result<Box<Prepared>, String> {
    info!("rereading configuration file {}", s.file);
    let cfg = match lvscf::load(&s.path, &SystemLookup::default()) {
        Ok(cfg) => cfg,
        Err(e) => {
            error!("reload refused, the running table is unchanged: {e}");
            return Err(format!(
                "reload refused, the running table is unchanged: {e}"
            ));
        }
    };
    let rules = super::fwmark_rules(&cfg);
    let floating = super::floating_addresses(&cfg);
    let director = Director::new(&s.file, cfg);
    let guard = steer_set(director.configured());
    Ok(Box::new(Prepared {
        director,
        guard,
        rules,
        floating,
    }))
}
