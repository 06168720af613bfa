//! The forwarding daemon: `lvsd -c FILE`.
//!
//! Start-up: parse `lvs.cf` (an error stops here, naming `FILE:LINE`), build the model
//! ([`Director`]), program an [`Ipvs`] with its desired table, read the host's interfaces
//! (by default the base interfaces of the VIPs' and `nat_router`'s devices in lvs.cf:
//! `eth0:1` → `eth0`), wrap everything in an [`Engine`], resolve the real servers' MACs (at
//! most [`START_RESOLVE`]), attach the XDP/AF_XDP [`Datapath`] (a second lvsd on the same
//! interfaces is refused there), steer the services to it, open the control socket, start
//! the control thread (API server and nanny supervision) and log `lvsd: forwarding on …`.
//!
//! Threads:
//! - **the worker** (this thread) owns the engine, the model and the sockets. It blocks in
//!   `poll(2)` until frames arrive, the engine's next deadline, a command (the control
//!   thread wakes it through the data path's eventfd, [`ipvs_core::io::Waker`]) or
//!   [`MAX_SLEEP`] (signals, neighbour retries). Between batches of frames it drains
//!   commands: API requests, nanny verdicts, prepared reloads. Each command changes the
//!   model; the difference between the model's desired table and the engine is applied at
//!   once (`state::State::sync`), except a reload's steering-map updates, which are spread
//!   over the next turns (`State::sync_spread`, `State::steer_tick`).
//! - **the control thread** runs a single-threaded tokio runtime: the hyper API server on
//!   the Unix socket (`control::server`) and the nanny supervisor (`supervise`). It never
//!   touches the engine.
//! - **the reload thread** (`lvsd-reload`, `daemon::reload`) reads, parses and models
//!   lvs.cf on SIGHUP and `POST /v1/reload`, so that the worker only applies the result; it
//!   also logs the change lines and answers the API. It never touches the engine.
//!
//! Signals only set flags: SIGTERM/SIGINT stop (nannies are stopped, the socket removed,
//! the XDP programs detached), SIGHUP reloads the file (a bad file is logged and nothing
//! running changes).
//!
//! lvsd never forks: run it under systemd (`systemd/lvsd.service`) or pulse.

mod events;
mod guard;
mod host;
mod neigh;
mod rates;
mod reload;
mod report;
pub mod state;
pub mod sync;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use ipvs_core::conn::{ConnTableConfig, TimeoutUpdate};
use ipvs_core::engine::{Engine, EngineConfig, EngineConfigError, FwmarkRule, Ipv4Cidr};
use ipvs_core::io::{Datapath, DatapathConfig, FrameBuf, Ingress, IoError};
use ipvs_core::ipvs::{Ipvs, IpvsConfig, IpvsError};
use ipvs_core::time::Instant;
use tracing::{error, info, warn};

use crate::control::api::Role;
use crate::control::server::{self, ApiCounters, OpError, WorkerHandle, WorkerRequest};
use crate::lvscf::{self, Config, LvsCfError, SystemLookup};
use crate::model::{Command, Director};
use crate::program::ApplyError;
use crate::supervise::{self, NannyList, Verdict};
use state::{NannySettings, State, StatusExtra};

pub use host::{HostError, base_device};

/// Longest the worker sleeps without looking at signals and pending neighbours.
pub const MAX_SLEEP: Duration = Duration::from_millis(200);

/// Longest start-up waits for the real servers' ARP answers before forwarding anyway.
pub const START_RESOLVE: Duration = Duration::from_secs(1);

/// How long the worker keeps looking for frames without sleeping after the last one
/// (adaptive busy polling: only while traffic flows; an idle lvsd sleeps in `poll(2)`).
pub const SPIN: Duration = Duration::from_micros(50);

/// Connections (plus persistence templates) the table holds at most.
pub const MAX_CONNS: usize = 1 << 20;

/// Piranha's compile-time nanny path, lvs.cf's `client_monitor` default.
pub const DEFAULT_NANNY: &str = "/usr/sbin/nanny";

/// How lvsd was asked to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration file.
    pub config: PathBuf,
    /// Interfaces to attach to; empty = the base interfaces of the devices in lvs.cf.
    pub interfaces: Vec<String>,
    /// The control socket.
    pub socket: PathBuf,
    /// The nanny program, overriding lvs.cf's `client_monitor`.
    pub nanny: Option<PathBuf>,
    /// Run no nannies (every active real server counts as healthy).
    pub no_nannies: bool,
    /// Pass `-v` to nannies.
    pub verbose: bool,
    /// Pass `--nodaemon` to nannies.
    pub nodaemon: bool,
    /// Start as standby (pulse switches it to active through the API).
    pub standby: bool,
}

/// Why lvsd stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration file is invalid.
    #[error(transparent)]
    Config(#[from] LvsCfError),
    /// The host could not be read.
    #[error(transparent)]
    Host(#[from] HostError),
    /// No interface to attach to.
    #[error(
        "no interface to attach to: lvs.cf names no device (address = VIP eth0:1) and \
         --interface was not given"
    )]
    NoInterfaces,
    /// The desired table could not be programmed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The engine refused its configuration.
    #[error("engine configuration: {0}")]
    Engine(#[from] EngineConfigError),
    /// The IPVS timeouts could not be set.
    #[error("timeouts: {0}")]
    Timeouts(#[from] IpvsError),
    /// The data path could not be set up or failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// The control socket could not be opened.
    #[error("control socket {path}: {source}")]
    Socket {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another lvsd answers on the control socket.
    #[error("control socket {0} is in use: another lvsd is running (or use --socket)")]
    SocketInUse(PathBuf),
    /// The control thread could not be started.
    #[error("cannot start the control thread: {0}")]
    Thread(#[source] std::io::Error),
    /// A nanny kept dying and `hard_shutdown = 1`.
    #[error("giving up: {0} (hard_shutdown = 1)")]
    NannyGaveUp(String),
}

/// The interfaces lvs.cf names: the base devices of the active services' `address` lines
/// and of `nat_router`, in file order.
pub fn config_interfaces(cfg: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let devices = cfg
        .active_virtuals()
        .filter_map(|v| v.address.as_ref())
        .chain(cfg.global.nat_router.as_ref());
    for a in devices {
        let base = base_device(&a.device).to_owned();
        if !base.is_empty() && !out.contains(&base) {
            out.push(base);
        }
    }
    out
}

/// The interfaces to attach to: `--interface` (labels mean their interface); else those
/// lvs.cf names (`address`, `nat_router`) and those whose subnets hold a real server (a NAT
/// director without `nat_router` still reaches, and hears the replies of, its real servers);
/// each once, in that order.
fn interface_names(
    opts: &Options,
    cfg: &Config,
    host_ifs: &BTreeMap<String, ipvs_core::engine::Interface>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    };
    if !opts.interfaces.is_empty() {
        for n in &opts.interfaces {
            add(base_device(n));
        }
        return out;
    }
    for n in config_interfaces(cfg) {
        add(&n);
    }
    let servers = cfg.active_virtuals().flat_map(|v| {
        v.active_servers()
            .map(|rs| rs.address)
            .chain(v.sorry_server)
    });
    for addr in servers {
        if let Some((name, _)) = host_ifs
            .iter()
            .find(|(_, i)| i.addrs.iter().any(|c| c.contains(addr)))
        {
            add(name);
        }
    }
    out
}

/// Addresses that float between directors: the VIPs and the NAT router address.
fn floating_addresses(cfg: &Config) -> BTreeSet<Ipv4Addr> {
    cfg.active_virtuals()
        .chain(&cfg.virtuals)
        .filter_map(|v| v.address.as_ref().map(|a| a.addr))
        .chain(cfg.global.nat_router.as_ref().map(|a| a.addr))
        .collect()
}

/// The nanny program: `--nanny`, else `client_monitor`; when that is Piranha's default path
/// and missing, the `nanny` installed beside this lvsd (a build tree, a non-/usr prefix).
fn nanny_program(opts: &Options, cfg: &Config) -> Option<PathBuf> {
    if let Some(p) = &opts.nanny {
        return Some(p.clone());
    }
    let configured = cfg
        .active_virtuals()
        .map(|v| v.client_monitor.clone())
        .next()?;
    if configured != Path::new(DEFAULT_NANNY) || configured.exists() {
        return None; // use each service's client_monitor
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("nanny")))
        .filter(|p| p.exists())
}

/// Binds the control socket with mode 0600, creating its directory (0755) if needed and
/// replacing a stale socket file. Refuses when another lvsd answers on it.
fn bind_socket(path: &Path) -> Result<std::os::unix::net::UnixListener, DaemonError> {
    let err = |source| DaemonError::Socket {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DaemonError::SocketInUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    // The socket file is created with the umask's permissions; no other thread runs yet,
    // so narrowing the process umask around bind(2) leaves no window where it is open.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    Ok(listener)
}

/// Piranha's `--test-start`: what lvsd would do, without doing it. Reads the file, then
/// returns the interfaces it would attach to, the IPVS table (`ipvsadm -S -n` format) and
/// the nanny command lines it would start, one per line. Touches no interface, socket or
/// process.
pub fn test_start(opts: &Options) -> Result<String, DaemonError> {
    let file = opts.config.display().to_string();
    let cfg = lvscf::load(&opts.config, &SystemLookup::default())?;
    let host_ifs = host::interfaces(&floating_addresses(&cfg))?;
    let names = interface_names(opts, &cfg, &host_ifs);
    let nanny = NannySettings {
        program: nanny_program(opts, &cfg),
        verbose: opts.verbose,
        nodaemon: opts.nodaemon,
        socket: opts.socket.clone(),
    };
    let state = State::new(Director::new(&file, cfg), nanny);
    let mut out = format!("# would attach to: {}\n", names.join(" "));
    out.push_str(&format!("# would listen on: {}\n", opts.socket.display()));
    out.push_str("# would program:\n");
    out.push_str(&crate::check::render_ipvsadm_save(
        &state.director.desired(),
    ));
    if opts.no_nannies {
        out.push_str("# would start no nannies (--no-nannies)\n");
    } else {
        out.push_str("# would start:\n");
        for spec in state.nannies().nannies.values() {
            out.push_str(&spec.program.display().to_string());
            for a in &spec.args {
                if a.is_empty() || a.contains([' ', '"', '\\', '\'']) {
                    out.push_str(&format!(" '{}'", a.replace('\'', "'\\''")));
                } else {
                    out.push(' ');
                    out.push_str(a);
                }
            }
            out.push('\n');
        }
    }
    Ok(out)
}

/// Runs lvsd until SIGTERM or SIGINT.
pub fn run(opts: &Options) -> Result<(), DaemonError> {
    let file = opts.config.display().to_string();
    let lookup = SystemLookup::default();
    let cfg = lvscf::load(&opts.config, &lookup)?;
    let director = Director::new(&file, cfg.clone());
    for w in cfg.warnings.iter().chain(&director.configured().warnings) {
        warn!("{w}");
    }

    let host_ifs = host::interfaces(&floating_addresses(&cfg))?;
    let names = interface_names(opts, &cfg, &host_ifs);
    if names.is_empty() {
        return Err(DaemonError::NoInterfaces);
    }
    let mut interfaces = Vec::new();
    for n in &names {
        let i = host_ifs
            .get(n)
            .ok_or_else(|| HostError::NoSuchInterface(n.clone()))?;
        interfaces.push(i.clone());
    }
    let ifindex_by_name: BTreeMap<String, u32> = names
        .iter()
        .zip(&interfaces)
        .map(|(n, i)| (n.clone(), i.ifindex))
        .collect();

    let mut ipvs = Ipvs::new(IpvsConfig {
        conn_table: ConnTableConfig {
            max_entries: MAX_CONNS,
            initial_capacity: 1 << 16,
            hash_seed: random_u64(),
            ..ConnTableConfig::default()
        },
        sched_seed: random_u64(),
        ..IpvsConfig::default()
    });
    set_timeouts(&mut ipvs, &cfg)?;
    let mut engine = Engine::new(
        EngineConfig {
            interfaces,
            fwmark_rules: fwmark_rules(&cfg),
            ..EngineConfig::default()
        },
        ipvs,
    )?;
    let nanny = NannySettings {
        program: nanny_program(opts, &cfg),
        verbose: opts.verbose,
        nodaemon: opts.nodaemon,
        socket: opts.socket.clone(),
    };
    let mut state = State::new(director, nanny.clone());
    if opts.standby {
        // Programmed and probed, not steered, until pulse says active (PUT /v1/role).
        let _ = state.director.apply(Command::SetRole(Role::Standby));
    }
    state.start(&mut engine)?;

    let epoch = std::time::Instant::now();
    let clock =
        || Instant::from_millis(u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX));
    let mut reporter = report::Reporter::new(&engine, clock());
    let mut last_frames: Option<std::time::Instant> = None;
    let mut sync_busy = false;
    // Resolve the real servers before forwarding starts, so that no first packet waits for
    // ARP (a lost first UDP datagram, a TCP SYN retransmitted a second later).
    let mut resolver = neigh::Resolver::new(ifindex_by_name);
    want_all(&mut resolver, &state);
    let unresolved = resolver.settle(&mut engine, clock, START_RESOLVE);
    if unresolved > 0 {
        warn!(
            unresolved,
            "real servers without an ARP answer yet; still trying"
        );
    }

    let mut dp = Datapath::new(&DatapathConfig::new(names.iter().cloned()))?;
    let steering = dp.steering().clone();
    // The director's own addresses: answers to its own connections to a NAT real server's
    // service port (nanny's probes) stay with the kernel instead of being taken for replies.
    let mut locals: BTreeSet<Ipv4Addr> = engine
        .config()
        .interfaces
        .iter()
        .flat_map(|i| i.addrs.iter().map(|c| c.addr))
        .chain(floating_addresses(&cfg))
        .collect();
    for addr in &locals {
        if let Err(e) = steering.add_local(*addr) {
            error!(%addr, "cannot mark a local address in the XDP maps: {e}");
        }
    }
    state.sync(&mut engine, Some(&steering));
    let mut guard = guard::Guard::start();
    guard.want(guard_set(&state));

    // Connection sync: started once the services are programmed, so that the partner's
    // records (the bulk resync the thread asks for at once) find them.
    let host_view = match host::addresses() {
        Ok(addrs) => sync::HostView {
            addrs: addrs.iter().map(|(_, a)| *a).collect(),
            interface_addrs: addrs,
        },
        Err(e) => {
            error!("cannot read the host's addresses for connection sync: {e}");
            sync::HostView::default()
        }
    };
    let mut sync_link = sync::SyncLink::start(&cfg.global, &host_view, dp.waker());
    let mut role = state.director.role();
    sync_link.set_role(engine.ipvs_mut(), role);

    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(DaemonError::Signals)?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .map_err(DaemonError::Signals)?;

    // Reloads are read and prepared by a thread of their own; the worker applies them.
    let mut reloader = reload::Reloader::start(
        reload::Settings {
            path: opts.config.clone(),
            file: file.clone(),
            nanny: nanny.clone(),
            no_nannies: opts.no_nannies,
        },
        dp.waker(),
    )
    .map_err(DaemonError::Thread)?;

    let listener = bind_socket(&opts.socket)?;
    let (req_tx, req_rx) = mpsc::sync_channel::<WorkerRequest>(server::QUEUE);
    let (verdict_tx, verdict_rx) = mpsc::channel::<Verdict>();
    let initial_nannies = if opts.no_nannies {
        NannyList::default()
    } else {
        state.nannies()
    };
    let (nanny_tx, nanny_rx) = tokio::sync::watch::channel(initial_nannies);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let counters = Arc::new(ApiCounters::default());
    let nannies_running = Arc::new(AtomicUsize::new(0));
    let status_address = state.director.config().global.status_address;
    let control = {
        let handle = WorkerHandle::new(req_tx, dp.waker());
        let counters = Arc::clone(&counters);
        let running = Arc::clone(&nannies_running);
        let waker = dp.waker();
        std::thread::Builder::new()
            .name("lvsd-control".into())
            .spawn(move || {
                control_thread(
                    listener,
                    handle,
                    counters,
                    nanny_rx,
                    stop_rx,
                    verdict_tx,
                    waker,
                    running,
                    status_address,
                );
            })
            .map_err(DaemonError::Thread)?
    };

    let modes: Vec<String> = dp
        .modes()
        .into_iter()
        .map(|(n, m)| format!("{n} ({m:?})"))
        .collect();
    info!(
        services = state.actual().services.len(),
        socket = %opts.socket.display(),
        role = %state.director.role(),
        "lvsd: forwarding on {} ({})",
        modes.join(", "),
        state.director.role()
    );
    // systemd (lvsd.service, standalone): ready now; the worker loop feeds the watchdog.
    let mut notifier = crate::systemd::Notifier::from_env();
    notifier.ready(&format!(
        "{}: {} virtual services",
        state.director.role(),
        state.actual().services.len()
    ));

    let mut outcome = Ok(());
    while !stop.load(Ordering::Relaxed) {
        notifier.ping();
        // A reload or a run-time change may change the services: the guard, the nannies
        // and the neighbours to resolve follow.
        let mut changed = false;
        // A run-time change: the worker builds the nanny list itself.
        let mut nannies_here = false;
        if reload.swap(false, Ordering::Relaxed) {
            reloader.ask(None);
        }
        let polled = reloader.poll(&mut state, &mut engine, &steering, &mut locals);
        changed |= polled.applied;
        // The nanny list of a reload applied, and its file's guard set, built off the worker.
        let mut prepared_nannies = polled.nannies;
        let mut prepared_guard = polled.guard;
        // Commands from the control thread, between two batches of frames.
        while let Ok(req) = req_rx.try_recv() {
            if matches!(req.op, server::Op::Reload) {
                // Answered by the reload thread once the reload is applied (or refused).
                reloader.ask(Some(req.reply));
                continue;
            }
            let answer = match req.op {
                server::Op::Sync => {
                    Ok(server::Reply::Sync(Box::new(sync_link.view(engine.ipvs()))))
                }
                server::Op::Connections => Ok(server::Reply::Connections(Box::new(
                    state.connections(&engine, clock()),
                ))),
                op => {
                    if op.changes_services() {
                        // The table moved on from the reload's: its nanny list is stale.
                        changed = true;
                        nannies_here = true;
                        if let Some(stale) = prepared_nannies.take() {
                            reloader.free(Box::new(stale));
                        }
                        if let Some(stale) = prepared_guard.take() {
                            reloader.free(Box::new(stale));
                        }
                        reloader.nannies_stale();
                    }
                    let extra = StatusExtra {
                        nannies_running: nannies_running.load(Ordering::Relaxed),
                        api_errors: counters.errors.load(Ordering::Relaxed),
                    };
                    state.answer(op, &mut engine, Some(&steering), &extra)
                }
            };
            let _ = req.reply.send(answer);
        }
        if state.director.role() != role {
            role = state.director.role();
            sync_link.set_role(engine.ipvs_mut(), role);
        }
        if let Some(list) = prepared_nannies.take() {
            // A reload's list, built off the worker: published without comparing (the
            // supervisor diffs it against the running nannies anyway), the old one freed by
            // the reload thread.
            reloader.free(Box::new(nanny_tx.send_replace(list)));
        }
        if changed {
            guard.want(match prepared_guard.take() {
                Some(base) => guard_set_from(base, &state),
                None => guard_set(&state),
            });
            if nannies_here && !opts.no_nannies {
                let list = state.nannies();
                nanny_tx.send_if_modified(|now| {
                    let differs = *now != list;
                    if differs {
                        *now = list;
                    }
                    differs
                });
            }
            // Real servers added: resolve them before their first packet.
            want_all(&mut resolver, &state);
        }
        if let Ok(Verdict::GiveUp(why)) = verdict_rx.try_recv() {
            outcome = Err(DaemonError::NannyGaveUp(why));
            break;
        }
        let now = clock();
        let sleep = engine
            .poll_timeout()
            .map_or(MAX_SLEEP, |t| t.saturating_duration_since(now))
            .min(MAX_SLEEP);
        let mut handler = |ingress: Ingress, frame: &mut FrameBuf<'_>| {
            engine.handle_frame(clock(), ingress.ifindex, frame)
        };
        // Right after traffic, look again without sleeping for a short while: under
        // request/response load the next frame usually comes within microseconds, and a
        // poll(2) sleep + wake-up per small batch costs more than the engine's work.
        let spinning = last_frames.is_some_and(|t| t.elapsed() < SPIN);
        let timeout = if spinning || sync_busy || state.steer_pending() {
            Duration::ZERO
        } else {
            sleep
        };
        match dp.poll(Some(timeout), &mut handler) {
            Ok(0) => {}
            Ok(_) => last_frames = Some(std::time::Instant::now()),
            Err(e) => {
                outcome = Err(e.into());
                break;
            }
        }
        // Frames the engine originated (fragments, reassembled datagrams).
        if engine.outbox_len() > 0 {
            engine.drain_outbox(|ifindex, frame| {
                dp.send(ifindex, frame);
            });
            if let Err(e) = dp.flush() {
                outcome = Err(e.into());
                break;
            }
        }
        let now = clock();
        // Connection sync between batches: the feed out, the partner's records in.
        sync_busy = sync_link.tick(engine.ipvs_mut(), now);
        if engine.poll_timeout().is_some_and(|t| t <= now) {
            engine.handle_timeout(now);
        }
        resolver.tick(&mut engine, now);
        reporter.tick(&engine, now);
        state.tick_rates(&engine, now);
        // A big reload's steering updates, a few per turn.
        state.steer_tick(&steering);
    }
    notifier.stopping();
    match &outcome {
        Ok(()) => info!("lvsd: shutting down (signal); stopping nannies"),
        Err(e) => error!("lvsd: shutting down: {e}; stopping nannies"),
    }
    // Refuse what is still queued, stop the control thread (it stops the nannies).
    reloader.shutdown();
    let _ = stop_tx.send(true);
    drop(nanny_tx);
    while let Ok(req) = req_rx.try_recv() {
        let _ = req.reply.send(Err(OpError::ShuttingDown));
    }
    drop(req_rx);
    if control.join().is_err() {
        error!("the control thread panicked");
    }
    let _ = std::fs::remove_file(&opts.socket);
    sync_link.shutdown();
    // A clean exit leaves nothing behind (pulse has released the VIPs and made lvsd standby
    // before it stops it); only a death without this line leaves the guard in place.
    guard.shutdown(false);
    info!("lvsd: detaching from {}", names.join(", "));
    drop(dp);
    outcome
}

/// What the kernel-side guard covers: the steering entries of every configured service and
/// of what the engine holds now (a sorry server, a server added at run time).
fn guard_set(state: &State) -> BTreeSet<state::Steer> {
    let mut set = state::steer_set(state.director.configured());
    set.extend(state::steer_set(state.actual()));
    set
}

/// [`guard_set`] right after a reload: `base` is the steering set of the file's table (the
/// configured table now, built by the reload thread); added are the entries of what only
/// the engine holds (a sorry server), found without rebuilding the whole set.
pub fn guard_set_from(mut base: BTreeSet<state::Steer>, state: &State) -> BTreeSet<state::Steer> {
    let configured = state.director.configured().by_key();
    let extra: Vec<crate::desired::DesiredService> = state
        .actual()
        .services
        .iter()
        .filter(|s| {
            configured.get(&s.key).is_none_or(|c| {
                s.dests
                    .iter()
                    .any(|d| !c.dests.iter().any(|x| x.addr == d.addr && x.port == d.port))
            })
        })
        .cloned()
        .collect();
    if !extra.is_empty() {
        base.extend(state::steer_set(&crate::desired::DesiredTable {
            services: extra,
            warnings: Vec::new(),
        }));
    }
    base
}

fn want_all(resolver: &mut neigh::Resolver, state: &State) {
    for s in &state.director.configured().services {
        for d in &s.dests {
            resolver.want(d.addr);
        }
        if let Some(sorry) = state.director.sorry_dest(s) {
            resolver.want(sorry.addr);
        }
    }
}

/// The control thread: a current-thread tokio runtime with the API server and the nanny
/// supervisor. Returns once the supervisor has stopped every nanny.
#[allow(clippy::too_many_arguments)]
fn control_thread(
    listener: std::os::unix::net::UnixListener,
    handle: WorkerHandle,
    counters: Arc<ApiCounters>,
    nannies: tokio::sync::watch::Receiver<NannyList>,
    stop: tokio::sync::watch::Receiver<bool>,
    verdicts: mpsc::Sender<Verdict>,
    waker: ipvs_core::io::Waker,
    running: Arc<AtomicUsize>,
    status_address: Option<std::net::SocketAddrV4>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the control runtime: {e}; no API, no nannies");
            return;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::UnixListener::from_std(listener) {
            Ok(l) => Some(l),
            Err(e) => {
                error!("control socket: {e}; the API is off");
                None
            }
        };
        let web = match status_address {
            Some(a) => match crate::control::web::bind(a.into()).await {
                Ok(l) => Some(tokio::spawn(crate::control::web::serve(l, handle.clone()))),
                Err(e) => {
                    error!("{e}");
                    None
                }
            },
            None => None,
        };
        let api = listener.map(|l| tokio::spawn(server::serve(l, handle, counters)));
        supervise::run(nannies, stop, verdicts, waker, running).await;
        for task in [api, web].into_iter().flatten() {
            task.abort();
        }
    });
}

fn set_timeouts(ipvs: &mut Ipvs, cfg: &Config) -> Result<(), IpvsError> {
    ipvs.set_timeouts(TimeoutUpdate {
        tcp: cfg.global.tcp_timeout,
        tcpfin: cfg.global.tcpfin_timeout,
        udp: cfg.global.udp_timeout,
    })
}

/// Firewall-mark services: no kernel mark reaches userspace, so a `fwmark` service covers
/// every TCP and UDP port of its virtual `address` (see `docs/lvs-cf.md`).
fn fwmark_rules(cfg: &Config) -> Vec<FwmarkRule> {
    cfg.active_virtuals()
        .filter_map(|v| {
            let (mark, addr) = (v.fwmark?, v.address.as_ref()?.addr);
            Some(FwmarkRule {
                mark,
                protocol: None,
                addr: Ipv4Cidr::new(addr, 32),
                port_lo: 0,
                port_hi: u16::MAX,
            })
        })
        .collect()
}

/// A secret seed for the connection hash and the random schedulers.
fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)) {
        Ok(()) => u64::from_ne_bytes(b),
        // No urandom: fall back to time and pid (still differs per run).
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            t ^ (u64::from(std::process::id()) << 32)
        }
    }
}
