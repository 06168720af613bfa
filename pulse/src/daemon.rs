//! The pulse daemon: the shell around [`Machine`] (sockets, signals, lvsd, addresses, ARPs).
//!
//! One thread runs a loop bounded by [`TICK`]: poll(2) on the heartbeat sockets until the
//! machine's next deadline (or the tick), then signals, lvsd's exit, heartbeats, timeouts.
//! Gratuitous ARPs go out from threads of their own so that the loop never waits for them.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use lvsd::control::api::Role as LvsdRole;
use lvsd::control::client::Client;
use lvsd::lvscf::{self, Config, SystemLookup};
use lvsd::systemd::Notifier;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::addresses::Addresses;
use crate::config::PulseConfig;
use crate::floating::{FloatingAddr, floating_addrs};
use crate::links::{LinkChange, LinkNotifier, LinkState, LinkWatch, watched_interfaces};
use crate::machine::{Action, Machine};
use crate::time::Instant;
use crate::transport::{Codec, Paths, Transport};
use crate::wire::Role;

/// Longest wait of one loop turn: signals and lvsd's exit are noticed within it.
const TICK: Duration = Duration::from_millis(100);
/// How long lvsd gets to answer on its control socket after start.
const LVSD_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for lvsd's answer when the loop checks whether a restarted lvsd is ready:
/// well under a keepalive, since the loop sends heartbeats.
const LVSD_READY_PROBE: Duration = Duration::from_millis(20);
/// Longest pause between two starts of an lvsd that keeps dying (doubling from
/// [`LVSD_RESTART_PAUSE`]).
const LVSD_RESTART_MAX_PAUSE: Duration = Duration::from_secs(30);
/// How long lvsd gets to exit after SIGTERM before SIGKILL.
const LVSD_STOP_GRACE: Duration = Duration::from_secs(5);
/// Longest time between two looks at the watched links when no notification came.
const LINK_CHECK_PERIOD: Duration = Duration::from_secs(1);
/// How long `active_cmd`/`inactive_cmd` may run before pulse kills it.
const CMD_TIMEOUT: Duration = Duration::from_secs(60);
/// Shortest pause between two restarts of a dying lvsd.
const LVSD_RESTART_PAUSE: Duration = Duration::from_secs(1);

/// What the command line asks for.
#[derive(Clone, Debug)]
pub struct Options {
    /// lvs.cf.
    pub config: PathBuf,
    /// `--forceactive`.
    pub force_active: bool,
    /// The lvsd binary.
    pub lvsd: PathBuf,
    /// lvsd's control socket (passed to lvsd with `--socket`).
    pub socket: PathBuf,
    /// `SCHED_RR` priority of the heartbeat loop; `None` leaves the normal policy.
    pub realtime: Option<i32>,
}

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// lvs.cf could not be read or parsed.
    #[error("{0}")]
    LvsCf(#[from] Box<lvscf::LvsCfError>),
    /// lvs.cf does not describe a director pair this host belongs to.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// The host's addresses could not be listed.
    #[error("cannot list the local addresses: {0}")]
    LocalAddrs(#[source] nix::Error),
    /// No virtual service is active.
    #[error("pulse: no active lvs services defined in {0}")]
    NoActiveService(PathBuf),
    /// The heartbeat sockets.
    #[error("cannot create heartbeat socket. running as root? ({0})")]
    Transport(#[from] crate::transport::TransportError),
    /// The rtnetlink socket.
    #[error("{0}")]
    Addresses(#[from] Box<crate::addresses::AddressError>),
    /// Signal handlers.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// lvsd could not be started or did not answer.
    #[error("lvsd: {0}")]
    Lvsd(String),
    /// The link notification socket (`monitor_links`).
    #[error("cannot watch link state (monitor_links): {0}")]
    LinkMonitor(#[source] std::io::Error),
}

/// Runs pulse until SIGTERM or SIGINT.
pub fn run(opts: &Options) -> Result<(), DaemonError> {
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&term)).map_err(DaemonError::Signals)?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
        .map_err(DaemonError::Signals)?;

    let (lvs, cfg) = load(opts)?;
    for w in cfg.startup_warnings() {
        tracing::warn!("{w}");
    }
    tracing::info!(
        "STARTING PULSE AS {}",
        if cfg.role == Role::Primary {
            "MASTER"
        } else {
            "BACKUP"
        }
    );
    let clock = Clock::new();
    let transport = match Paths::from_config(&cfg) {
        Some(paths) => Some(Transport::bind(
            &paths,
            Codec::new(cfg.auth.as_ref(), cfg.role, boot_id()),
        )?),
        None => None,
    };
    let mut addresses = Addresses::new().map_err(Box::new)?;
    let floating = floating_addrs(&lvs);
    let _ = release_leftovers(&mut addresses, &floating);
    isolate_heartbeats(opts.realtime);
    let links = Links::new(&cfg)?;
    let lvsd = Lvsd::start(opts)?;
    let (machine, actions) = Machine::new(cfg.settings.clone(), clock.now())
        .map_err(crate::config::ConfigError::from)?;
    let mut d = Daemon {
        opts: opts.clone(),
        clock,
        machine,
        transport,
        addresses,
        floating,
        links,
        arp: arp_plan(&lvs),
        active_cmd: lvs.global.active_cmd.clone(),
        inactive_cmd: lvs.global.inactive_cmd.clone(),
        lvsd: LvsdSlot::Ready(lvsd),
        arp_generation: Arc::new(AtomicU64::new(0)),
        notifier: Notifier::from_env(),
    };
    d.carry_out(actions);
    d.check_links(true);
    let role = if d.machine.is_active() {
        "active"
    } else {
        "standby"
    };
    d.notifier
        .ready(&format!("{role}; heartbeats running, lvsd ready"));
    d.run_loop(&term, &hup);
    Ok(())
}

/// `--test-start`: what pulse would do on this host with this lvs.cf, without doing any of
/// it (no socket bound, no address touched, no lvsd started). Errors are the ones
/// [`run`] would stop with.
pub fn test_start(opts: &Options) -> Result<String, DaemonError> {
    use std::fmt::Write as _;
    let (lvs, cfg) = load(opts)?;
    let mut out = String::new();
    let s = &cfg.settings;
    let role = match cfg.role {
        Role::Primary => "primary (MASTER)",
        Role::Backup => "backup (BACKUP)",
    };
    let _ = writeln!(out, "config: {}", opts.config.display());
    let _ = writeln!(out, "role: {role} at {}", cfg.local.public);
    match Paths::from_config(&cfg) {
        None => {
            let _ = writeln!(
                out,
                "partner: none (backup = 0.0.0.0): active at start, no heartbeats"
            );
        }
        Some(paths) => {
            let _ = writeln!(
                out,
                "heartbeats: udp {} -> {} (public)",
                paths.public.local, paths.public.partner
            );
            if let Some(p) = paths.private {
                let _ = writeln!(
                    out,
                    "heartbeats: udp {} -> {} (private)",
                    p.local, p.partner
                );
            }
            match &cfg.auth {
                Some(k) => {
                    let _ = writeln!(
                        out,
                        "format: authenticated (HMAC-SHA256, key {}, cluster id {})",
                        k.file.display(),
                        k.cluster_id
                    );
                }
                None => {
                    let _ = writeln!(out, "format: Piranha 4-byte, unauthenticated");
                }
            }
            let _ = writeln!(
                out,
                "timing: keepalive {:?}, deadtime {:?}",
                s.keepalive, s.deadtime
            );
        }
    }
    for w in cfg.startup_warnings() {
        let _ = writeln!(out, "warning: {w}");
    }
    let start = if s.force_active {
        "active at once (--forceactive)"
    } else {
        "standby; active when the partner is silent for deadtime or stops"
    };
    let _ = writeln!(out, "start: {start}");
    let plan = arp_plan(&lvs);
    for a in floating_addrs(&lvs) {
        let _ = writeln!(
            out,
            "takeover: add {a}, then gratuitous ARPs ({} x {:?}) on {}",
            plan.count, plan.interval, a.ifname
        );
    }
    if s.monitor_links {
        let mut addrs = vec![("Primary NIC", cfg.local.public)];
        addrs.extend(cfg.local.private.map(|p| ("Private NIC", p)));
        for w in watched_interfaces(&addrs, &local_ipv4_named()?) {
            let _ = writeln!(out, "monitor_links: {} ({})", w.ifname, w.what);
        }
    }
    for (what, cmd) in [
        ("active_cmd", &lvs.global.active_cmd),
        ("inactive_cmd", &lvs.global.inactive_cmd),
    ] {
        if let Some(cmd) = cmd {
            let _ = writeln!(out, "{what}: {cmd}");
        }
    }
    let _ = writeln!(
        out,
        "lvsd: {} -c {} --nodaemon --standby --socket {}",
        opts.lvsd.display(),
        opts.config.display(),
        opts.socket.display()
    );
    Ok(out)
}

/// lvs.cf and its mapping for this host.
fn load(opts: &Options) -> Result<(Config, PulseConfig), DaemonError> {
    let lvs = lvscf::load(&opts.config, &SystemLookup::default()).map_err(Box::new)?;
    if !lvs.virtuals.iter().any(|v| v.active) {
        return Err(DaemonError::NoActiveService(opts.config.clone()));
    }
    let cfg = PulseConfig::new(&lvs, &local_ipv4()?, opts.force_active)?;
    Ok((lvs, cfg))
}

/// Every IPv4 address on the host's interfaces.
fn local_ipv4() -> Result<Vec<Ipv4Addr>, DaemonError> {
    Ok(local_ipv4_named()?.into_iter().map(|(_, a)| a).collect())
}

/// Every IPv4 address on the host's interfaces, with the interface (or label) holding it.
fn local_ipv4_named() -> Result<Vec<(String, Ipv4Addr)>, DaemonError> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(DaemonError::LocalAddrs)?;
    Ok(addrs
        .filter_map(|a| {
            let ip = a.address?.as_sockaddr_in()?.ip();
            Some((a.interface_name, ip))
        })
        .collect())
}

/// A pulse that starts is not active yet: floating addresses left on this host by a previous
/// run (pulse killed outright, the host's network restarted with them configured) are
/// removed, so that two directors never answer ARP for a VIP because of a restart.
fn release_leftovers(addresses: &mut Addresses, floating: &[FloatingAddr]) -> usize {
    let mut released = 0;
    for a in floating {
        match addresses.remove(a) {
            Ok(crate::addresses::RemoveOutcome::Removed) => {
                released += 1;
                tracing::warn!(
                    vip = %a.addr, label = %a.label,
                    "removed a floating address left from a previous run; it comes back on takeover"
                );
            }
            Ok(crate::addresses::RemoveOutcome::NotHeld) => {}
            Err(e) => {
                tracing::error!(vip = %a.addr, label = %a.label, "cannot remove floating address: {e}")
            }
        }
    }
    released
}

/// `--release-addresses`: removes the floating addresses of the file from the interfaces
/// (what a pulse that crashed on the active director left) and returns how many it
/// removed. Touches nothing else.
pub fn release_addresses(opts: &Options) -> Result<usize, DaemonError> {
    let lvs = lvscf::load(&opts.config, &SystemLookup::default()).map_err(Box::new)?;
    let mut addresses = Addresses::new().map_err(Box::new)?;
    Ok(release_leftovers(&mut addresses, &floating_addrs(&lvs)))
}

/// Keeps heartbeats on time whatever lvsd does: pulse is a process of its own, its memory is
/// locked (no page faults in the loop) and, when `realtime` is set, its loop runs under
/// `SCHED_RR`, so a forwarding worker busy on every core cannot delay a heartbeat. lvsd and
/// the commands pulse starts keep the normal policy. Failures are logged, not fatal: the
/// heartbeats still work, only less isolated.
fn isolate_heartbeats(realtime: Option<i32>) {
    use nix::sys::mman::{MlockAllFlags, mlockall};
    if let Err(e) = mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
        tracing::warn!(
            "cannot lock pulse's memory (mlockall): {e}; heartbeats may be delayed by paging"
        );
    }
    if let Some(priority) = realtime {
        match ipvs_core::io::set_realtime(priority) {
            Ok(()) => tracing::debug!(priority, "heartbeat loop runs under SCHED_RR"),
            Err(e) => tracing::warn!(
                priority,
                "cannot run under SCHED_RR: {e}; heartbeats may be delayed when the host is busy"
            ),
        }
    }
}

/// `monitor_links`: the watched links and the notification socket.
#[derive(Debug)]
struct Links {
    watch: LinkWatch,
    notifier: LinkNotifier,
    /// The next periodic look, in case a notification was lost.
    next_check: std::time::Instant,
}

impl Links {
    /// `None` unless `monitor_links` is set.
    fn new(cfg: &PulseConfig) -> Result<Option<Links>, DaemonError> {
        if !cfg.settings.monitor_links {
            return Ok(None);
        }
        let mut addrs = vec![("Primary NIC", cfg.local.public)];
        if let Some(private) = cfg.local.private {
            addrs.push(("Private NIC", private));
        }
        let watched = watched_interfaces(&addrs, &local_ipv4_named()?);
        for w in &watched {
            tracing::info!(ifname = %w.ifname, "monitoring the link of the {}", w.what);
        }
        Ok(Some(Links {
            watch: LinkWatch::new(watched),
            notifier: LinkNotifier::new().map_err(DaemonError::LinkMonitor)?,
            next_check: std::time::Instant::now(),
        }))
    }
}

/// Distinguishes this run's heartbeats from a previous one's: wall-clock microseconds.
fn boot_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The monotonic clock the machine runs on.
#[derive(Debug)]
struct Clock(std::time::Instant);

impl Clock {
    fn new() -> Clock {
        Clock(std::time::Instant::now())
    }

    fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX))
    }
}

/// The supervised lvsd child.
#[derive(Debug)]
struct Lvsd {
    child: Child,
    /// For role changes.
    client: Client,
    /// For the readiness check, with a short timeout.
    probe: Client,
    started: std::time::Instant,
}

/// Where the supervised lvsd is.
#[derive(Debug)]
enum LvsdSlot {
    /// Answering on its socket.
    Ready(Lvsd),
    /// Started again after a death, not answering yet; `failures` starts in a row so far.
    Starting { lvsd: Lvsd, failures: u32 },
    /// Dead; the next start at `retry_at`.
    Down {
        retry_at: std::time::Instant,
        failures: u32,
    },
}

impl Lvsd {
    /// Starts `lvsd -c FILE --nodaemon --standby --socket S` and waits for its socket
    /// (pulse's start-up: nothing else to do meanwhile).
    fn start(opts: &Options) -> Result<Lvsd, DaemonError> {
        let mut lvsd = Lvsd::spawn(opts)?;
        loop {
            if lvsd.is_ready() {
                return Ok(lvsd);
            }
            if let Ok(Some(status)) = lvsd.child.try_wait() {
                return Err(DaemonError::Lvsd(format!(
                    "exited before answering: {status}"
                )));
            }
            if lvsd.started.elapsed() > LVSD_READY_TIMEOUT {
                let _ = lvsd.child.kill();
                let _ = lvsd.child.wait();
                return Err(DaemonError::Lvsd(format!(
                    "no answer on {} within {LVSD_READY_TIMEOUT:?}",
                    opts.socket.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether lvsd answers on its socket. Bounded by [`LVSD_READY_PROBE`], so that the
    /// loop can ask once per turn while lvsd starts.
    fn is_ready(&self) -> bool {
        self.probe.status().is_ok()
    }

    /// Starts `lvsd -c FILE --nodaemon --standby --socket S`; does not wait.
    fn spawn(opts: &Options) -> Result<Lvsd, DaemonError> {
        let mut cmd = Command::new(&opts.lvsd);
        cmd.arg("-c")
            .arg(&opts.config)
            .args(["--nodaemon", "--standby", "--socket"])
            .arg(&opts.socket)
            // lvsd stops when pulse dies (see lvsd's main).
            .env("PULSE_SUPERVISOR_PID", std::process::id().to_string());
        // pulse is the unit's main process: lvsd must not notify systemd for it.
        lvsd::systemd::scrub_child_env(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| DaemonError::Lvsd(format!("cannot start {}: {e}", opts.lvsd.display())))?;
        tracing::info!(pid = child.id(), "lvsd started");
        Ok(Lvsd {
            child,
            client: Client::new(&opts.socket).timeout(Duration::from_secs(2)),
            probe: Client::new(&opts.socket).timeout(LVSD_READY_PROBE),
            started: std::time::Instant::now(),
        })
    }

    fn set_role(&self, role: LvsdRole, reason: Option<&str>) {
        match self.client.set_role_because(role, reason) {
            Ok(now) => tracing::info!(role = %now, "lvsd role set"),
            Err(e) => tracing::error!(role = %role, "cannot set lvsd's role: {e}"),
        }
    }

    fn signal(&self, sig: Signal) {
        if let Ok(pid) = i32::try_from(self.child.id())
            && let Err(e) = kill(Pid::from_raw(pid), sig)
        {
            tracing::warn!("cannot send {sig} to lvsd: {e}");
        }
    }

    /// SIGTERM, then SIGKILL after [`LVSD_STOP_GRACE`].
    fn stop(&mut self) {
        self.signal(Signal::SIGTERM);
        let deadline = std::time::Instant::now() + LVSD_STOP_GRACE;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                tracing::info!("lvsd exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::warn!("lvsd did not exit after SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Daemon {
    opts: Options,
    clock: Clock,
    machine: Machine,
    transport: Option<Transport>,
    addresses: Addresses,
    floating: Vec<FloatingAddr>,
    links: Option<Links>,
    /// Gratuitous ARPs after a takeover (`arp_count`, `arp_interval`).
    arp: send_arp::Announce,
    active_cmd: Option<String>,
    inactive_cmd: Option<String>,
    lvsd: LvsdSlot,
    /// Bumped on every takeover and release; an ARP thread stops when it changes.
    arp_generation: Arc<AtomicU64>,
    /// systemd: readiness, the watchdog (pinged by the heartbeat loop), status lines.
    notifier: Notifier,
}

impl Daemon {
    fn run_loop(&mut self, term: &AtomicBool, hup: &AtomicBool) {
        loop {
            // The unit's watchdog restarts a pulse whose heartbeat loop stalls.
            self.notifier.ping();
            if term.load(Ordering::Relaxed) {
                tracing::info!("Terminating due to signal");
                self.shutdown();
                return;
            }
            if hup.swap(false, Ordering::Relaxed) {
                self.reload();
            }
            self.supervise_lvsd();
            self.check_links(false);
            // Heartbeats before timers: one that waited in the socket (a slow turn) must
            // count before the dead timer is looked at.
            let now = self.clock.now();
            let received = match &mut self.transport {
                Some(t) => t.recv_all(now),
                None => Vec::new(),
            };
            for r in received {
                let actions = self.machine.handle_heartbeat(now, r.state);
                self.carry_out(actions);
            }
            let now = self.clock.now();
            if self.machine.poll_timeout().is_some_and(|t| t <= now) {
                let actions = self.machine.handle_timeout(now);
                self.carry_out(actions);
            }
            self.wait_for_heartbeats();
        }
    }

    /// Blocks until a heartbeat socket is readable, the machine's deadline, or [`TICK`].
    fn wait_for_heartbeats(&self) {
        let now = self.clock.now();
        let wait = self
            .machine
            .poll_timeout()
            .map_or(TICK, |t| t.saturating_since(now).min(TICK));
        let millis = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let mut fds: Vec<PollFd<'_>> = self
            .transport
            .iter()
            .flat_map(|t| t.fds().map(|(_, fd)| fd))
            .chain(self.links.iter().map(|l| l.notifier.fd()))
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
            .collect();
        if fds.is_empty() {
            std::thread::sleep(wait);
        } else {
            // EINTR (a signal) just ends this turn early.
            let _ = poll(&mut fds, PollTimeout::from(millis));
        }
    }

    /// `monitor_links`: looks at the watched links when one changed (or every
    /// [`LINK_CHECK_PERIOD`], or when `force`d) and tells the machine about a failure or a
    /// recovery.
    fn check_links(&mut self, force: bool) {
        let Some(links) = &mut self.links else { return };
        let notified = links.notifier.drain();
        let due = std::time::Instant::now() >= links.next_check;
        if !(force || notified || due) {
            return;
        }
        links.next_check = std::time::Instant::now() + LINK_CHECK_PERIOD;
        let addresses = &mut self.addresses;
        let change = links
            .watch
            .update(|ifname| match addresses.link_up(ifname) {
                Ok(Some(true)) => LinkState::Up,
                Ok(Some(false)) => LinkState::Down,
                Ok(None) => LinkState::Missing,
                Err(e) => {
                    tracing::warn!(ifname, "cannot read the link state: {e}");
                    LinkState::Unknown
                }
            });
        let up = match change {
            None => return,
            Some(LinkChange::Failed(down)) => {
                for (w, state) in &down {
                    tracing::error!(ifname = %w.ifname, state = ?state, "{}: link down", w.what);
                }
                tracing::error!("Local NIC link failure: Pulse disabled");
                false
            }
            Some(LinkChange::Restored) => {
                tracing::info!("Local NIC link(s) restored: Pulse enabled");
                true
            }
        };
        let actions = self.machine.handle_link(self.clock.now(), up);
        self.carry_out(actions);
    }

    /// lvsd's exit (the machine is told once), its restart (with a growing pause while it
    /// keeps dying), and its readiness (the machine may activate again). Never blocks for
    /// longer than [`LVSD_READY_PROBE`]: heartbeats keep flowing while lvsd restarts.
    fn supervise_lvsd(&mut self) {
        let now = std::time::Instant::now();
        let slot = std::mem::replace(
            &mut self.lvsd,
            LvsdSlot::Down {
                retry_at: now,
                failures: 0,
            },
        );
        self.lvsd = match slot {
            LvsdSlot::Ready(mut lvsd) => match lvsd.child.try_wait() {
                Ok(Some(status)) => {
                    tracing::error!("Child process {} exited with {status}", lvsd.child.id());
                    // The slot is Down before the machine acts: release skips lvsd.
                    self.lvsd = LvsdSlot::Down {
                        retry_at: lvsd.started + LVSD_RESTART_PAUSE,
                        failures: 0,
                    };
                    let actions = self.machine.handle_lvsd_died(self.clock.now());
                    self.carry_out(actions);
                    return;
                }
                Ok(None) => LvsdSlot::Ready(lvsd),
                Err(e) => {
                    tracing::warn!("cannot check on lvsd: {e}");
                    LvsdSlot::Ready(lvsd)
                }
            },
            LvsdSlot::Starting { mut lvsd, failures } => match lvsd.child.try_wait() {
                Ok(Some(status)) => {
                    let failures = failures + 1;
                    let pause = restart_pause(failures);
                    tracing::error!(
                        "lvsd (pid {}) exited with {status} before answering; next start in {pause:?}",
                        lvsd.child.id()
                    );
                    LvsdSlot::Down {
                        retry_at: now + pause,
                        failures,
                    }
                }
                Ok(None) if lvsd.is_ready() => {
                    tracing::info!(pid = lvsd.child.id(), "lvsd answers again");
                    self.lvsd = LvsdSlot::Ready(lvsd);
                    let actions = self.machine.handle_lvsd_restarted(self.clock.now());
                    self.carry_out(actions);
                    if self.machine.is_active()
                        && let LvsdSlot::Ready(lvsd) = &self.lvsd
                    {
                        lvsd.set_role(LvsdRole::Active, Some("lvsd restarted while active"));
                    }
                    return;
                }
                Ok(None) if lvsd.started.elapsed() > LVSD_READY_TIMEOUT => {
                    let failures = failures + 1;
                    tracing::error!(
                        "lvsd (pid {}) did not answer within {LVSD_READY_TIMEOUT:?}; killing it",
                        lvsd.child.id()
                    );
                    let _ = lvsd.child.kill();
                    let _ = lvsd.child.wait();
                    LvsdSlot::Down {
                        retry_at: now + restart_pause(failures),
                        failures,
                    }
                }
                Ok(None) | Err(_) => LvsdSlot::Starting { lvsd, failures },
            },
            LvsdSlot::Down { retry_at, failures } if now >= retry_at => {
                match Lvsd::spawn(&self.opts) {
                    Ok(lvsd) => LvsdSlot::Starting { lvsd, failures },
                    Err(e) => {
                        let failures = failures + 1;
                        let pause = restart_pause(failures);
                        tracing::error!("cannot restart lvsd: {e}; next try in {pause:?}");
                        LvsdSlot::Down {
                            retry_at: now + pause,
                            failures,
                        }
                    }
                }
            }
            down @ LvsdSlot::Down { .. } => down,
        };
    }

    /// lvsd when it answers: role changes and signals go to it only then.
    fn ready_lvsd(&self) -> Option<&Lvsd> {
        match &self.lvsd {
            LvsdSlot::Ready(lvsd) => Some(lvsd),
            LvsdSlot::Starting { .. } | LvsdSlot::Down { .. } => None,
        }
    }

    fn carry_out(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::SendHeartbeat(state) => {
                    if let Some(t) = &mut self.transport {
                        t.send(self.clock.now(), state);
                    }
                }
                Action::Activate { reason } => {
                    tracing::info!(role = "active", "{reason}");
                    self.take_over(&reason);
                    self.notifier.status(&format!("active: {reason}"));
                }
                Action::Deactivate { reason } => {
                    tracing::info!(role = "standby", "{reason}");
                    self.release(&reason);
                    self.notifier.status(&format!("standby: {reason}"));
                }
                Action::Reannounce { reason } => {
                    tracing::info!(role = "active", "{reason}");
                    run_cmd("active_cmd", self.active_cmd.as_deref());
                    self.send_arps();
                }
                Action::ReloadLvsd => match &self.lvsd {
                    LvsdSlot::Ready(lvsd) | LvsdSlot::Starting { lvsd, .. } => {
                        lvsd.signal(Signal::SIGHUP);
                    }
                    // A new lvsd reads the file anyway.
                    LvsdSlot::Down { .. } => {}
                },
            }
        }
    }

    fn take_over(&mut self, reason: &str) {
        let floating = std::mem::take(&mut self.floating);
        self.add_all(&floating);
        self.floating = floating;
        self.send_arps();
        match self.ready_lvsd() {
            Some(lvsd) => lvsd.set_role(LvsdRole::Active, Some(reason)),
            // The machine does not activate while lvsd is away (CHILDFAIL).
            None => tracing::error!("taking over while lvsd is not running"),
        }
        run_cmd("active_cmd", self.active_cmd.as_deref());
    }

    fn release(&mut self, reason: &str) {
        self.arp_generation.fetch_add(1, Ordering::Relaxed);
        if let Some(lvsd) = self.ready_lvsd() {
            lvsd.set_role(LvsdRole::Standby, Some(reason));
        }
        let floating = std::mem::take(&mut self.floating);
        self.remove_all(&floating);
        self.floating = floating;
        run_cmd("inactive_cmd", self.inactive_cmd.as_deref());
    }

    fn add_all(&mut self, addrs: &[FloatingAddr]) {
        for a in addrs {
            if let Err(e) = self.addresses.add(a) {
                tracing::error!(vip = %a.addr, label = %a.label, "cannot add floating address: {e}");
            }
        }
    }

    fn remove_all(&mut self, addrs: &[FloatingAddr]) {
        for a in addrs {
            if let Err(e) = self.addresses.remove(a) {
                tracing::error!(vip = %a.addr, label = %a.label, "cannot remove floating address: {e}");
            }
        }
    }

    /// The gratuitous ARPs (`arp_count` × `arp_interval`, the first at once; Piranha's 5 × 1 s
    /// by default) for every floating address,
    /// from one thread each; a later takeover or release stops them.
    fn send_arps(&self) {
        let generation = self.arp_generation.fetch_add(1, Ordering::Relaxed) + 1;
        for a in &self.floating {
            let current = Arc::clone(&self.arp_generation);
            let (ifname, ip, plan) = (a.ifname.clone(), a.addr, self.arp);
            std::thread::spawn(move || announce(&ifname, ip, plan, generation, &current));
        }
    }

    fn shutdown(&mut self) {
        self.notifier.stopping();
        let actions = self.machine.handle_shutdown(self.clock.now());
        self.carry_out(actions);
        if self.machine.is_active() {
            self.release("pulse is shutting down");
        }
        match &mut self.lvsd {
            LvsdSlot::Ready(lvsd) | LvsdSlot::Starting { lvsd, .. } => lvsd.stop(),
            LvsdSlot::Down { .. } => {}
        }
        tracing::info!("pulse stopped");
    }

    /// SIGHUP: new settings for the machine, the new floating addresses, SIGHUP to lvsd.
    fn reload(&mut self) {
        tracing::info!("reloading {}", self.opts.config.display());
        let (lvs, cfg) = match load(&self.opts) {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!("reload refused, keeping the running configuration: {e}");
                return;
            }
        };
        let links = Links::new(&cfg);
        let actions = match self.machine.handle_reload(self.clock.now(), cfg.settings) {
            Ok(actions) => actions,
            Err(e) => {
                tracing::error!("reload refused, keeping the running configuration: {e}");
                return;
            }
        };
        match links {
            Ok(links) => {
                let was_failed = self.links.as_ref().is_some_and(|l| l.watch.is_failed());
                self.links = links;
                if was_failed {
                    // The new watch starts from "all up": tell the machine, then look again.
                    let actions = self.machine.handle_link(self.clock.now(), true);
                    self.carry_out(actions);
                }
                self.check_links(true);
            }
            Err(e) => tracing::error!("monitor_links: {e}; keeping the links watched so far"),
        }
        let floating = floating_addrs(&lvs);
        let old = std::mem::replace(&mut self.floating, floating);
        self.active_cmd = lvs.global.active_cmd.clone();
        self.inactive_cmd = lvs.global.inactive_cmd.clone();
        self.arp = arp_plan(&lvs);
        if self.machine.is_active() {
            // Only the addresses that changed: active_cmd and lvsd's role stay as they are.
            let gone: Vec<FloatingAddr> = old
                .iter()
                .filter(|a| !self.floating.contains(a))
                .cloned()
                .collect();
            self.remove_all(&gone);
            let new: Vec<FloatingAddr> = self
                .floating
                .iter()
                .filter(|a| !old.contains(a))
                .cloned()
                .collect();
            if !new.is_empty() {
                self.add_all(&new);
                self.send_arps();
            }
        }
        self.carry_out(actions);
    }
}

/// The pause before the next start of an lvsd that died `failures` times in a row before
/// answering: 1 s, doubling, at most [`LVSD_RESTART_MAX_PAUSE`].
fn restart_pause(failures: u32) -> Duration {
    LVSD_RESTART_PAUSE
        .saturating_mul(1 << failures.min(5))
        .min(LVSD_RESTART_MAX_PAUSE)
}

/// The gratuitous ARPs of a takeover: Piranha's frame, `arp_count` of them `arp_interval`
/// apart (default 5 × 1 s, as Piranha).
fn arp_plan(lvs: &Config) -> send_arp::Announce {
    send_arp::Announce {
        count: lvs.global.arp_count,
        interval: lvs.global.arp_interval,
        ..send_arp::Announce::PULSE
    }
}

/// Sends `plan`'s frames one by one, stopping when `current` moves on.
fn announce(
    ifname: &str,
    ip: Ipv4Addr,
    plan: send_arp::Announce,
    generation: u64,
    current: &AtomicU64,
) {
    let once = send_arp::Announce { count: 1, ..plan };
    tracing::info!(%ip, ifname, count = plan.count,
        "sending gratuitous ARPs for {ip} on {ifname}: {}, {:?} apart", plan.count, plan.interval);
    for n in 0..plan.count {
        if n > 0 {
            std::thread::sleep(plan.interval);
        }
        if current.load(Ordering::Relaxed) != generation {
            return;
        }
        if let Err(e) = send_arp::announce(ifname, ip, &once) {
            tracing::error!(%ip, ifname, "gratuitous arp failed: {e}");
            return;
        }
    }
    tracing::info!(%ip, ifname, "gratuitous lvs arps finished");
}

/// Runs `active_cmd`/`inactive_cmd` without a shell (split on white space, as Piranha did)
/// and reaps it from a thread of its own, so that the loop never waits for it.
fn run_cmd(what: &'static str, cmd: Option<&str>) {
    let Some(cmd) = cmd else { return };
    let mut words = cmd.split_whitespace();
    let Some(program) = words.next() else { return };
    let mut c = Command::new(program);
    c.args(words).stdin(std::process::Stdio::null());
    lvsd::systemd::scrub_child_env(&mut c);
    match c.spawn() {
        Ok(child) => {
            tracing::info!(pid = child.id(), "running {what}: {cmd}");
            std::thread::spawn(move || reap_cmd(what, child, CMD_TIMEOUT));
        }
        Err(e) => tracing::error!("cannot run {what} ({cmd}): {e}"),
    }
}

/// How a command pulse started ended.
#[derive(Debug, PartialEq, Eq)]
enum CmdEnd {
    /// Exit status 0.
    Success,
    /// Another exit status or a signal.
    Failed(std::process::ExitStatus),
    /// Still running after its time: killed.
    Killed,
    /// waitpid failed.
    Lost,
}

/// Waits (polling, bounded by `timeout`) for `child`; kills a command that hangs. Logs the
/// outcome once.
fn reap_cmd(what: &str, mut child: Child, timeout: Duration) -> CmdEnd {
    let deadline = std::time::Instant::now() + timeout;
    let end = loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break CmdEnd::Success,
            Ok(Some(status)) => break CmdEnd::Failed(status),
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break CmdEnd::Killed;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                tracing::warn!("{what}: {e}");
                break CmdEnd::Lost;
            }
        }
    };
    match &end {
        CmdEnd::Failed(status) => tracing::warn!("{what} exited with {status}"),
        CmdEnd::Killed => tracing::warn!("{what} still running after {timeout:?}: killed"),
        CmdEnd::Success | CmdEnd::Lost => {}
    }
    end
}

/// The default lvsd: the one beside this binary, else `/usr/sbin/lvsd`.
pub fn default_lvsd() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("lvsd")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| Path::new("/usr/sbin/lvsd").to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn(argv: &[&str]) -> Child {
        Command::new(argv[0])
            .args(&argv[1..])
            .spawn()
            .expect("spawns")
    }

    #[test]
    fn commands_are_reaped_with_their_outcome() {
        let long = Duration::from_secs(10);
        assert_eq!(reap_cmd("t", spawn(&["true"]), long), CmdEnd::Success);
        assert!(matches!(
            reap_cmd("t", spawn(&["false"]), long),
            CmdEnd::Failed(_)
        ));
    }

    #[test]
    fn a_command_that_hangs_is_killed() {
        let started = std::time::Instant::now();
        let end = reap_cmd("t", spawn(&["sleep", "30"]), Duration::from_millis(100));
        assert_eq!(end, CmdEnd::Killed);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_missing_command_is_logged_not_fatal() {
        // Nothing to assert but that it returns: the error is logged.
        run_cmd("active_cmd", Some("/nonexistent/lvs-rs-active-cmd --flag"));
        run_cmd("active_cmd", Some("   "));
        run_cmd("active_cmd", None);
    }
}
