//! The forwarding daemon: `lvsd -c FILE`.
//!
//! Start-up: parse `lvs.cf` (an error stops here, naming `FILE:LINE`), build the desired
//! table, program an [`Ipvs`] with it (`program::diff` from the empty table), read the host's
//! interfaces, wrap everything in an [`Engine`], resolve the real servers' MACs (at most
//! [`START_RESOLVE`]), attach the XDP/AF_XDP [`Datapath`] to the
//! interfaces (a second lvsd on the same interfaces is refused there), steer the services'
//! VIP:ports and the NAT real servers' replies to it, and log `lvsd: forwarding on …`.
//!
//! The loop: one worker thread (this one) owns the engine and the sockets. It blocks in
//! `poll(2)` until frames arrive or the engine's next deadline, bounded by [`MAX_SLEEP`]
//! so that signals and neighbour retries are noticed: an idle lvsd wakes a few times a second
//! and uses no measurable CPU. Signals only set flags: SIGTERM/SIGINT stop the loop, SIGHUP
//! reloads the file (a bad file is logged and the running table stays as it is).
//!
//! Shutdown: dropping the [`Datapath`] closes the bpf links, so no XDP program stays on any
//! interface, even if lvsd is killed with SIGKILL (the kernel closes the link with the
//! process).
//!
//! lvsd never forks: run it under systemd (`systemd/lvsd.service`) or pulse.

mod host;
mod neigh;
mod report;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ipvs_core::conn::{ConnTableConfig, TimeoutUpdate};
use ipvs_core::engine::{Engine, EngineConfig, EngineConfigError, FwmarkRule, Ipv4Cidr};
use ipvs_core::io::{Datapath, DatapathConfig, FrameBuf, Ingress, IoError, Steering};
use ipvs_core::ipvs::{Ipvs, IpvsConfig, IpvsError};
use ipvs_core::time::Instant;
use ipvs_core::types::{ForwardMethod, Protocol};
use tracing::{error, info, warn};

use crate::desired::{DesiredTable, ServiceKey, desired_table};
use crate::lvscf::{self, Config, LvsCfError, SystemLookup};
use crate::program::{self, ApplyError};

pub use host::HostError;

/// Longest the worker sleeps without looking at signals and pending neighbours.
pub const MAX_SLEEP: Duration = Duration::from_millis(200);

/// Longest start-up waits for the real servers' ARP answers before forwarding anyway.
pub const START_RESOLVE: Duration = Duration::from_secs(1);

/// How long the worker keeps looking for frames without sleeping after the last one
/// (adaptive busy polling: only while traffic flows; an idle lvsd sleeps in `poll(2)`).
pub const SPIN: Duration = Duration::from_micros(50);

/// Connections (plus persistence templates) the table holds at most.
pub const MAX_CONNS: usize = 1 << 20;

/// How lvsd was asked to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration file.
    pub config: PathBuf,
    /// Interfaces to attach to; empty = every interface with an IPv4 address except `lo`.
    pub interfaces: Vec<String>,
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
    #[error("no interface with an IPv4 address to attach to (use --interface)")]
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
}

/// Runs lvsd until SIGTERM or SIGINT.
pub fn run(opts: &Options) -> Result<(), DaemonError> {
    let file = opts.config.display().to_string();
    let lookup = SystemLookup::default();
    let cfg = lvscf::load(&opts.config, &lookup)?;
    let mut current = desired_table(&file, &cfg);
    for w in cfg.warnings.iter().chain(&current.warnings) {
        warn!("{w}");
    }

    let host_ifs = host::interfaces()?;
    let names: Vec<String> = if opts.interfaces.is_empty() {
        host_ifs.keys().cloned().collect()
    } else {
        opts.interfaces.clone()
    };
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
    program::apply(
        &mut ipvs,
        &program::diff(&DesiredTable::default(), &current),
    )?;
    let mut engine = Engine::new(
        EngineConfig {
            interfaces,
            fwmark_rules: fwmark_rules(&cfg),
            ..EngineConfig::default()
        },
        ipvs,
    )?;

    let epoch = std::time::Instant::now();
    let clock =
        || Instant::from_millis(u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX));
    let mut reporter = report::Reporter::new(&engine, clock());
    let mut last_frames: Option<std::time::Instant> = None;
    // Resolve the real servers before forwarding starts, so that no first packet waits for
    // ARP (a lost first UDP datagram, a TCP SYN retransmitted a second later).
    let mut resolver = neigh::Resolver::new(ifindex_by_name);
    for s in &current.services {
        for d in &s.dests {
            resolver.want(d.addr);
        }
    }
    let unresolved = resolver.settle(&mut engine, clock, START_RESOLVE);
    if unresolved > 0 {
        warn!(
            unresolved,
            "real servers without an ARP answer yet; still trying"
        );
    }

    let mut dp = Datapath::new(&DatapathConfig::new(names.iter().cloned()))?;
    steer(dp.steering(), &current, true);

    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(DaemonError::Signals)?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .map_err(DaemonError::Signals)?;

    let modes: Vec<String> = dp
        .modes()
        .into_iter()
        .map(|(n, m)| format!("{n} ({m:?})"))
        .collect();
    info!(
        services = current.services.len(),
        "lvsd: forwarding on {}",
        modes.join(", ")
    );

    while !stop.load(Ordering::Relaxed) {
        if reload.swap(false, Ordering::Relaxed) {
            current = reload_config(opts, &file, &mut engine, dp.steering(), current);
            // Real servers added by the reload: resolve them before their first packet.
            for s in &current.services {
                for d in &s.dests {
                    resolver.want(d.addr);
                }
            }
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
        let timeout = if spinning { Duration::ZERO } else { sleep };
        match dp.poll(Some(timeout), &mut handler) {
            Ok(0) => {}
            Ok(_) => last_frames = Some(std::time::Instant::now()),
            Err(e) => return Err(e.into()),
        }
        // Frames the engine originated (fragments, reassembled datagrams).
        if engine.outbox_len() > 0 {
            engine.drain_outbox(|ifindex, frame| {
                dp.send(ifindex, frame);
            });
            dp.flush()?;
        }
        let now = clock();
        if engine.poll_timeout().is_some_and(|t| t <= now) {
            engine.handle_timeout(now);
        }
        resolver.tick(&mut engine, now);
        reporter.tick(&engine, now);
    }
    info!(
        "lvsd: shutting down (signal); detaching from {}",
        names.join(", ")
    );
    drop(dp);
    Ok(())
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

/// Adds (or removes) the BPF steering entries of `table`: each service's VIP:port, a
/// whole-address catch-all for fwmark services, and each NAT real server's address:port.
fn steer(steering: &Steering, table: &DesiredTable, add: bool) {
    for s in &table.services {
        let entries: Vec<(std::net::Ipv4Addr, u16, Protocol)> = match s.key {
            ServiceKey::Inet {
                protocol,
                addr,
                port,
            } => vec![(addr, port, protocol)],
            ServiceKey::Fwmark(_) => vec![(s.vip, 0, Protocol::Tcp), (s.vip, 0, Protocol::Udp)],
        };
        for (vip, port, proto) in entries {
            let r = if add {
                steering.add_service(vip, port, proto)
            } else {
                steering.remove_service(vip, port, proto)
            };
            if let Err(e) = r {
                error!(%vip, port, "cannot update the XDP service map: {e}");
            }
        }
        for d in s.dests.iter().filter(|d| d.method == ForwardMethod::Masq) {
            let protos: &[Protocol] = match s.key {
                ServiceKey::Inet { protocol, .. } => &[protocol][..],
                ServiceKey::Fwmark(_) => &[Protocol::Tcp, Protocol::Udp],
            };
            for &proto in protos {
                let r = if add {
                    steering.add_reply(d.addr, d.port, proto)
                } else {
                    steering.remove_reply(d.addr, d.port, proto).map(drop)
                };
                if let Err(e) = r {
                    error!(rip = %d.addr, port = d.port, "cannot update the XDP reply map: {e}");
                }
            }
        }
    }
}

/// SIGHUP: re-reads the file; applies the difference, or keeps everything as it is when the
/// file is invalid or a change is refused. Returns the table now in force.
fn reload_config(
    opts: &Options,
    file: &str,
    engine: &mut Engine,
    steering: &Steering,
    current: DesiredTable,
) -> DesiredTable {
    let cfg = match lvscf::load(&opts.config, &SystemLookup::default()) {
        Ok(cfg) => cfg,
        Err(e) => {
            error!("reload refused, the running table is unchanged: {e}");
            return current;
        }
    };
    let desired = desired_table(file, &cfg);
    let changes = program::diff(&current, &desired);
    if let Err(e) = set_timeouts(engine.ipvs_mut(), &cfg) {
        error!("reload: timeouts not changed: {e}");
    }
    match program::apply(engine.ipvs_mut(), &changes) {
        Ok(()) => {
            steer(steering, &current, false);
            steer(steering, &desired, true);
            info!(changes = changes.len(), "reloaded {file}");
            desired
        }
        Err(e) => {
            // Changes before the failing one are applied; steer what the engine now has.
            error!("reload stopped at a refused change: {e}");
            steer(steering, &desired, true);
            current
        }
    }
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
