//! Hand-run benchmark of lvsd's reload against the targets of issue 9; the figures are
//! recorded in `docs/BENCHMARKS.md`. Not a test: it asserts nothing, it prints.
//!
//! ```text
//! cargo run --release -p lvsd --example reload_bench -- --services 1000 --servers 10
//! ```
//!
//! Targets: a reload of a 1000-service, 10 000-server lvs.cf under load is applied within
//! 100 ms and never stalls the forwarding worker for more than 1 ms; `GET /v1/services` (what
//! `lvsadm -L -n` reads) on that table answers within 50 ms.
//!
//! Two files, A and B, of `--services` NAT services with `--servers` real servers each
//! (VIPs in 198.18.0.0/16, real servers in 198.19.0.0/16). B differs from A as an operator's
//! big edit would: every other service has another scheduler (wlc → wrr), half of the
//! services have new weights on half of their servers, and 1 % of the services are gone and
//! 1 % new ones added. The bench alternates A → B → A … `--reloads` times.
//!
//! It runs lvsd's worker-side reload path on one thread, with the real types: `lvscf::load`
//! of the file, `State::command(Command::Reload)` (the model, the desired table, the diff,
//! the engine changes, and the XDP steering maps as a set difference: real BPF hash maps when
//! run as root, none otherwise), the change lines logged (`reload: …`, to a file as lvsd's
//! stderr in a unit file goes to the journal), and what lvsd's loop does after every change
//! of the services: the guard's steering set, the nanny list (compared with the previous
//! one), the real servers to resolve. Between reloads the thread forwards "load": batches of
//! 64 packets through the engine's `Ipvs` (ACKs on 100 000 established connections spread
//! over the services, and 4 new connections per batch), one batch every 50 µs, so the table
//! the reload changes is live. Measured:
//! - each reload's total and its parts (median and worst);
//! - the worst gap between two batches while no reload runs, and the worst gap across a
//!   reload (that is the forwarding stall: lvsd's worker handles no frame while it reloads);
//! - `GET /v1/services`: the worker's `State::answer(Op::Services)` (the API's control thread
//!   only waits for it), its JSON encoding (control thread) and decoding (the client).

#[path = "common/machine.rs"]
mod machine;
use machine::print_machine;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant as StdInstant};

use clap::Parser;
use ipvs_core::conn::{ConnKey, ConnTableConfig, TcpFlags};
use ipvs_core::engine::{Engine, EngineConfig, Interface, Ipv4Cidr};
use ipvs_core::io::Steering;
use ipvs_core::ipvs::{Ipvs, IpvsConfig, NewFlow};
use ipvs_core::time::Instant;
use ipvs_core::types::Protocol;
use ipvs_core::wire::EthernetAddress;
use lvsd::control::api::ServicesView;
use lvsd::control::server::{Op, Reply};
use lvsd::daemon::guard_set_from;
use lvsd::daemon::state::{NannySettings, State, StatusExtra, steer_set};
use lvsd::lvscf::{self, SystemLookup};
use lvsd::model::{Command, Director};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Parser)]
#[command(about = "Reload benchmark (issue 9): apply time, worker stall, GET /v1/services")]
struct Args {
    /// Virtual services per file.
    #[arg(long, default_value_t = 1000)]
    services: usize,
    /// Real servers per service.
    #[arg(long, default_value_t = 10)]
    servers: usize,
    /// Reloads (alternating B, A, B, ...).
    #[arg(long, default_value_t = 20)]
    reloads: usize,
    /// Established connections in the table before the first reload.
    #[arg(long, default_value_t = 100_000)]
    conns: usize,
    /// Milliseconds of load between two reloads.
    #[arg(long, default_value_t = 200)]
    gap_ms: u64,
    /// Run without BPF maps even as root.
    #[arg(long)]
    no_maps: bool,
    /// The whole reload on the worker, as lvsd did before issue 9's fix (parse, model,
    /// nanny list and change lines included), instead of prepared by a thread of its own.
    #[arg(long)]
    inline: bool,
}

const BATCH: usize = 64;
const NEW_PER_BATCH: usize = 4;
const BATCH_EVERY: Duration = Duration::from_micros(50);

fn vip(i: usize) -> Ipv4Addr {
    let i = u32::try_from(i).expect("few services");
    Ipv4Addr::from(0xc612_0000 + ((1 + i / 250) << 8) + 1 + i % 250)
}

fn rip(i: usize, j: usize, servers: usize) -> Ipv4Addr {
    let host = u32::try_from(i * servers + j).expect("few servers");
    assert!(host / 250 < 255, "too many real servers for 198.19.0.0/16");
    Ipv4Addr::from(0xc613_0000 + ((host / 250) << 8) + 1 + host % 250)
}

/// The text of file A (`b = false`) or B.
fn file(services: usize, servers: usize, b: bool) -> String {
    let mut s = String::from(
        "service = lvs\nprimary = 198.18.0.2\nnetwork = nat\nnat_router = 198.19.255.254 eth1:1\n",
    );
    let gone = services / 100;
    let ids: Vec<usize> = if b {
        (gone..services + gone).collect()
    } else {
        (0..services).collect()
    };
    for i in ids {
        let sched = if b && i % 2 == 0 { "wrr" } else { "wlc" };
        let _ = write!(
            s,
            "virtual v{i} {{\n    active = 1\n    address = {} eth0:1\n    port = 80\n    \
             protocol = tcp\n    scheduler = {sched}\n",
            vip(i)
        );
        for j in 0..servers {
            let w = if b && i % 4 < 2 && j < servers / 2 {
                2
            } else {
                1
            };
            let _ = write!(
                s,
                "    server s{i}_{j} {{\n        address = {}\n        active = 1\n        \
                 weight = {w}\n    }}\n",
                rip(i, j, servers)
            );
        }
        s.push_str("}\n");
    }
    s
}

fn engine(cfg: &lvscf::Config) -> Result<Engine> {
    let mut ipvs = Ipvs::new(IpvsConfig {
        conn_table: ConnTableConfig {
            max_entries: 1 << 20,
            initial_capacity: 1 << 16,
            ..ConnTableConfig::default()
        },
        ..IpvsConfig::default()
    });
    ipvs.set_timeouts(ipvs_core::conn::TimeoutUpdate {
        tcp: cfg.global.tcp_timeout,
        tcpfin: cfg.global.tcpfin_timeout,
        udp: cfg.global.udp_timeout,
    })?;
    let iface = Interface {
        ifindex: 2,
        vlan: None,
        mac: EthernetAddress([2, 0, 0, 0, 0, 1]),
        addrs: vec![Ipv4Cidr::new(Ipv4Addr::new(198, 18, 0, 2), 15)],
        mtu: 1500,
        gateway: None,
    };
    Ok(Engine::new(
        EngineConfig {
            interfaces: vec![iface],
            ..EngineConfig::default()
        },
        ipvs,
    )?)
}

/// Load: established connections to every service, ACKs on them, new connections.
struct Load {
    conns: Vec<ConnKey>,
    next_ack: usize,
    next_new: u32,
    services: usize,
    refused: u64,
}

impl Load {
    /// Connection `n`: to one of the services A and B share (so that it lives through
    /// every reload), 16 384 ports per client address in 198.18.128.0/17.
    fn key(n: u32, services: usize) -> ConnKey {
        let gone = services / 100;
        let s = gone + n as usize % (services - 2 * gone);
        ConnKey {
            proto: Protocol::Tcp,
            caddr: Ipv4Addr::from(0xc612_8000 + (n >> 14)),
            cport: 1024 + (n & 0x3fff) as u16,
            vaddr: vip(s),
            vport: 80,
        }
    }

    fn open(&mut self, ipvs: &mut Ipvs, now: Instant) -> Option<ConnKey> {
        let k = Self::key(self.next_new, self.services);
        self.next_new += 1;
        let flow = NewFlow {
            key: k,
            fwmark: 0,
            tcp_flags: TcpFlags::SYN,
        };
        if ipvs.new_connection(now, &flow).is_err() {
            self.refused += 1;
            return None;
        }
        ipvs.in_packet(now, &k, TcpFlags::ACK);
        Some(k)
    }

    fn batch(&mut self, ipvs: &mut Ipvs, now: Instant) {
        for _ in 0..BATCH - NEW_PER_BATCH {
            let k = self.conns[self.next_ack % self.conns.len()];
            self.next_ack += 1;
            ipvs.in_packet(now, &k, TcpFlags::ACK);
        }
        for _ in 0..NEW_PER_BATCH {
            self.open(ipvs, now);
        }
    }
}

#[derive(Default)]
struct Parts {
    total: Vec<Duration>,
    parse: Vec<Duration>,
    command: Vec<Duration>,
    log: Vec<Duration>,
    after: Vec<Duration>,
    guard: Vec<Duration>,
    nannies: Vec<Duration>,
    gap: Vec<Duration>,
    prepare: Vec<Duration>,
    applied: Vec<Duration>,
    busy_gap: Duration,
    nanny_build: Vec<Duration>,
    w_swap: Vec<Duration>,
    w_sync: Vec<Duration>,
    changes: Vec<usize>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn stat(name: &str, v: &[Duration]) {
    let mut v = v.to_vec();
    v.sort();
    if v.is_empty() {
        return;
    }
    println!(
        "  {name:<44} median {:8.2} ms   worst {:8.2} ms",
        ms(v[v.len() / 2]),
        ms(v[v.len() - 1])
    );
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    // The change lines go where lvsd's stderr goes; a file here.
    let log = std::fs::File::create(dir.path().join("lvsd.log"))?;
    tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(log))
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    print_machine();
    let path_a = dir.path().join("a.cf");
    let path_b = dir.path().join("b.cf");
    std::fs::write(&path_a, file(args.services, args.servers, false))?;
    std::fs::write(&path_b, file(args.services, args.servers, true))?;
    let size = std::fs::metadata(&path_a)?.len();
    let lookup = SystemLookup::default();
    let cfg = lvscf::load(&path_a, &lookup)?;
    let mut engine = engine(&cfg)?;
    let nanny = NannySettings {
        program: Some("/usr/sbin/nanny".into()),
        verbose: false,
        nodaemon: false,
        socket: "/run/lvsd/lvsd.sock".into(),
    };
    let mut state = State::new(
        Director::new(&path_a.display().to_string(), cfg),
        nanny.clone(),
    );
    let t = StdInstant::now();
    state.start(&mut engine)?;
    let start_apply = t.elapsed();
    let steering = if args.no_maps {
        None
    } else {
        match Steering::new(65_536) {
            Ok(s) => Some(s),
            Err(e) => {
                println!("no BPF maps ({e}): steering not measured");
                None
            }
        }
    };
    let t = StdInstant::now();
    state.sync(&mut engine, steering.as_ref());
    let start_steer = t.elapsed();
    let servers: usize = state.actual().services.iter().map(|s| s.dests.len()).sum();
    println!(
        "table: {} services, {servers} real servers, lvs.cf {} KiB; start-up: engine {:.1} ms, \
         steering {:.1} ms ({} BPF maps)",
        state.actual().services.len(),
        size / 1024,
        ms(start_apply),
        ms(start_steer),
        if steering.is_some() { "real" } else { "no" }
    );

    let epoch = StdInstant::now();
    let clock = || Instant::from_millis(u64::try_from(epoch.elapsed().as_millis()).unwrap_or(0));
    let mut load = Load {
        conns: Vec::with_capacity(args.conns),
        next_ack: 0,
        next_new: 0,
        services: args.services,
        refused: 0,
    };
    for _ in 0..args.conns {
        if let Some(k) = load.open(engine.ipvs_mut(), clock()) {
            load.conns.push(k);
        }
    }
    println!(
        "load: {} established connections, then {BATCH} packets every {} µs ({NEW_PER_BATCH} \
         new connections each)",
        load.conns.len(),
        BATCH_EVERY.as_micros()
    );

    let mut nannies = state.nannies();
    let mut last_guard = steer_set(state.director.configured());
    last_guard.extend(steer_set(state.actual()));
    // The reload thread's other half: change lines logged, old tables freed.
    type Garbage = Box<dyn Send + Sync>;
    let (log_tx, log_rx) = std::sync::mpsc::channel::<(
        Vec<lvsd::program::Change>,
        lvsd::desired::DesiredTable,
        Garbage,
    )>();
    let logger = std::thread::spawn(move || {
        for (changes, before, garbage) in log_rx {
            drop(garbage);
            if changes.is_empty() {
                continue;
            }
            let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
            for c in &lines {
                tracing::info!(change = %c, "reload: {c}");
            }
            tracing::info!(changes = lines.len(), "reloaded");
            drop(before);
        }
    });
    let mut parts = Parts::default();
    let mut idle_gap = Duration::ZERO;
    let mut batches = 0u64;
    for r in 0..=args.reloads {
        // Load until the next reload.
        let until = StdInstant::now() + Duration::from_millis(args.gap_ms);
        let mut last = StdInstant::now();
        let mut next = last;
        while StdInstant::now() < until {
            while StdInstant::now() < next {
                std::hint::spin_loop();
            }
            next += BATCH_EVERY;
            if let Some(st) = steering.as_ref() {
                state.steer_tick(st);
            }
            load.batch(engine.ipvs_mut(), clock());
            batches += 1;
            let now = StdInstant::now();
            idle_gap = idle_gap.max(now - last);
            last = now;
        }
        if r == args.reloads {
            break;
        }
        let path = if r % 2 == 0 { &path_b } else { &path_a };
        if args.inline {
            reload_inline(
                path,
                &lookup,
                &mut state,
                &mut engine,
                steering.as_ref(),
                &mut nannies,
                &mut parts,
            )?;
            if let Some(st) = steering.as_ref() {
                state.steer_tick(st);
            }
            load.batch(engine.ipvs_mut(), clock());
            parts.gap.push(last.elapsed());
            continue;
        }
        // As lvsd runs it now (`daemon::reload`): the reload thread reads the file and
        // builds the model and the nanny list while the worker forwards; the worker applies.
        let t0 = StdInstant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let path = path.clone();
            let settings = nanny.clone();
            std::thread::spawn(move || {
                let t = StdInstant::now();
                let r = lvscf::load(&path, &SystemLookup::default()).map(|cfg| {
                    let d = Director::new(&path.display().to_string(), cfg);
                    let guard = steer_set(d.configured());
                    (d, guard)
                });
                let copy = r.as_ref().ok().map(|(d, _)| d.clone());
                let _ = tx.send(Ok((r, t.elapsed())));
                // Then the nanny list, from a copy, after the worker has the reload.
                if let Some(d) = copy {
                    let t = StdInstant::now();
                    let list = State::new(d, settings).nannies();
                    let _ = tx.send(Err((list, t.elapsed())));
                }
            });
        }
        let (prepared, prep_time) = loop {
            while StdInstant::now() < next {
                std::hint::spin_loop();
            }
            next += BATCH_EVERY;
            if let Some(st) = steering.as_ref() {
                state.steer_tick(st);
            }
            load.batch(engine.ipvs_mut(), clock());
            batches += 1;
            let now = StdInstant::now();
            parts.busy_gap = parts.busy_gap.max(now - last);
            last = now;
            if let Ok(Ok(r)) = rx.try_recv() {
                break r;
            }
        };
        let (director, guard_base) = prepared?;
        // As `daemon::reload::apply`: no copy of the old table, the changes come back from
        // the sync and the steering updates are spread over the next turns.
        let t1 = StdInstant::now();
        let (_events, old) = state.director.reload_prepared(director);
        let c2 = StdInstant::now();
        let (changes, before) = match steering.as_ref() {
            Some(st) => state.sync_spread(&mut engine, st),
            None => {
                let before = state.actual().clone();
                state.sync(&mut engine, None);
                (lvsd::program::diff(&before, state.actual()), before)
            }
        };
        let t2 = StdInstant::now();
        parts.w_swap.push(c2 - t1);
        parts.w_sync.push(t2 - c2);
        // `daemon::guard_set_from`: the file's set from the reload thread, plus what only
        // the engine holds; then `Guard::want`'s comparison, the old set freed elsewhere.
        let guard = guard_set_from(guard_base, &state);
        let old_guard = if last_guard != guard {
            Some(std::mem::replace(&mut last_guard, guard))
        } else {
            None
        };
        let t3 = StdInstant::now();
        let t4 = StdInstant::now();
        let resolve: BTreeSet<Ipv4Addr> = state
            .director
            .configured()
            .services
            .iter()
            .flat_map(|s| s.dests.iter().map(|d| d.addr))
            .collect();
        std::hint::black_box(&resolve);
        parts.changes.push(changes.len());
        // The change lines, the `reloaded` line and the old table's memory: the reload
        // thread's business.
        log_tx.send((changes, before, Box::new((old, old_guard))))?;
        let t5 = StdInstant::now();
        load.batch(engine.ipvs_mut(), clock());
        let t6 = StdInstant::now();
        parts.gap.push(t6 - last);
        last = t6;
        // Forwarding goes on until the nanny list comes; published as it is (the
        // supervisor diffs), the old one freed off the worker.
        let (list, list_time) = loop {
            while StdInstant::now() < next {
                std::hint::spin_loop();
            }
            next += BATCH_EVERY;
            if let Some(st) = steering.as_ref() {
                state.steer_tick(st);
            }
            load.batch(engine.ipvs_mut(), clock());
            batches += 1;
            let now = StdInstant::now();
            parts.busy_gap = parts.busy_gap.max(now - last);
            last = now;
            if let Ok(Err(r)) = rx.try_recv() {
                break r;
            }
        };
        let old_list = std::mem::replace(&mut nannies, list);
        log_tx.send((Vec::new(), Default::default(), Box::new(old_list)))?;
        parts.nanny_build.push(list_time);
        parts.prepare.push(prep_time);
        parts.command.push(t2 - t1);
        parts.guard.push(t3 - t2);
        parts.nannies.push(t4 - t3);
        parts.after.push(t5 - t2);
        parts.total.push(t5 - t1);
        parts.applied.push(t2 - t0);
    }
    println!(
        "{} reloads, {} and {} changes (B and A); {batches} batches of load, {} new connections \
         refused",
        args.reloads,
        parts.changes.first().copied().unwrap_or(0),
        parts.changes.get(1).copied().unwrap_or(0),
        load.refused
    );
    if args.inline {
        println!("the whole reload on the worker (lvsd before issue 9's fix):");
        stat("reload, total on the worker", &parts.total);
        stat("  lvscf::load (read, parse, validate)", &parts.parse);
        stat(
            "  State::command(Reload): model, diff, engine, maps",
            &parts.command,
        );
        stat("  change lines formatted and logged", &parts.log);
        stat("  guard set, nanny list, resolver list", &parts.after);
        stat("    guard set (steer_set twice)", &parts.guard);
        stat("    State::nannies() and compare", &parts.nannies);
    } else {
        println!("prepared by a reload thread, applied by the worker (daemon::reload):");
        stat("reload thread: load, model", &parts.prepare);
        stat("reload thread, then: nanny list", &parts.nanny_build);
        stat("asked -> applied to engine and maps", &parts.applied);
        stat("worker, total", &parts.total);
        stat("  model swap and State::sync_spread", &parts.command);
        stat("    Director::reload_prepared (model swap)", &parts.w_swap);
        stat(
            "    State::sync_spread (desired, diff, engine; maps queued)",
            &parts.w_sync,
        );
        stat("  guard set, resolver list", &parts.after);
        stat(
            "    guard set (prepared + sorry entries, compare)",
            &parts.guard,
        );
    }
    stat("worst gap between batches across the apply", &parts.gap);
    println!(
        "  worst gap between batches without a reload     {:8.3} ms",
        ms(idle_gap)
    );
    if !args.inline {
        println!(
            "  worst gap while the reload thread prepares     {:8.3} ms",
            ms(parts.busy_gap)
        );
    }
    drop(log_tx);
    let _ = logger.join();
    breakdown(&args, &path_a, &path_b, &lookup)?;
    services_view(&mut state, &mut engine, steering.as_ref())?;
    Ok(())
}

/// The reload as lvsd's worker ran it before issue 9's fix: everything on the worker.
fn reload_inline(
    path: &Path,
    lookup: &SystemLookup,
    state: &mut State,
    engine: &mut Engine,
    steering: Option<&Steering>,
    nannies: &mut lvsd::supervise::NannyList,
    parts: &mut Parts,
) -> Result<()> {
    let t0 = StdInstant::now();
    let cfg = lvscf::load(path, lookup)?;
    let t1 = StdInstant::now();
    let before = state.actual().clone();
    state.command(Command::Reload(Box::new(cfg)), engine, steering)?;
    let t2 = StdInstant::now();
    let changes: Vec<String> = lvsd::program::diff(&before, state.actual())
        .iter()
        .map(ToString::to_string)
        .collect();
    for c in &changes {
        tracing::info!(change = %c, "reload: {c}");
    }
    tracing::info!(changes = changes.len(), "reloaded {}", path.display());
    drop(before);
    let t3 = StdInstant::now();
    let mut guard = steer_set(state.director.configured());
    guard.extend(steer_set(state.actual()));
    let t3a = StdInstant::now();
    let list = state.nannies();
    if list != *nannies {
        *nannies = list;
    }
    let t3b = StdInstant::now();
    let resolve: BTreeSet<Ipv4Addr> = state
        .director
        .configured()
        .services
        .iter()
        .flat_map(|s| s.dests.iter().map(|d| d.addr))
        .collect();
    std::hint::black_box((&guard, &resolve));
    let t4 = StdInstant::now();
    parts.parse.push(t1 - t0);
    parts.command.push(t2 - t1);
    parts.log.push(t3 - t2);
    parts.after.push(t4 - t3);
    parts.guard.push(t3a - t3);
    parts.nannies.push(t3b - t3a);
    parts.total.push(t4 - t0);
    parts.changes.push(changes.len());
    Ok(())
}

/// `State::command(Reload)` in its parts, replayed on a copy of the model and a second
/// engine (no maps): the model's reload, `desired()`, `program::diff`, `program::apply`.
fn breakdown(args: &Args, a: &Path, b: &Path, lookup: &SystemLookup) -> Result<()> {
    let cfg_a = lvscf::load(a, lookup)?;
    let cfg_b = lvscf::load(b, lookup)?;
    let mut engine = engine(&cfg_a)?;
    let mut director = Director::new("a", cfg_a.clone());
    let mut actual = director.desired();
    lvsd::program::apply(
        engine.ipvs_mut(),
        &lvsd::program::diff(&Default::default(), &actual),
    )?;
    let (mut m, mut d, mut f, mut p) = (vec![], vec![], vec![], vec![]);
    for r in 0..args.reloads {
        let cfg = if r % 2 == 0 {
            cfg_b.clone()
        } else {
            cfg_a.clone()
        };
        let t0 = StdInstant::now();
        director.apply(Command::Reload(Box::new(cfg)))?;
        let t1 = StdInstant::now();
        let desired = director.desired();
        let t2 = StdInstant::now();
        let changes = lvsd::program::diff(&actual, &desired);
        let t3 = StdInstant::now();
        lvsd::program::apply(engine.ipvs_mut(), &changes)?;
        let t4 = StdInstant::now();
        actual = desired;
        m.push(t1 - t0);
        d.push(t2 - t1);
        f.push(t3 - t2);
        p.push(t4 - t3);
    }
    println!("State::command(Reload) in parts (a second engine, no maps):");
    stat("  Director::apply(Reload) (model)", &m);
    stat("  Director::desired()", &d);
    stat("  program::diff", &f);
    stat("  program::apply (engine)", &p);
    Ok(())
}

/// `GET /v1/services` on the big table: the worker's answer, the JSON both ways.
fn services_view(
    state: &mut State,
    engine: &mut Engine,
    steering: Option<&Steering>,
) -> Result<()> {
    let (mut w, mut e, mut c, mut bytes) = (vec![], vec![], vec![], 0);
    for _ in 0..10 {
        let t0 = StdInstant::now();
        let reply = state
            .answer(Op::Services, engine, steering, &StatusExtra::default())
            .map_err(|e| format!("{e:?}"))?;
        let t1 = StdInstant::now();
        let Reply::Services(view) = reply else {
            return Err("not a services view".into());
        };
        let json = serde_json::to_vec(&view)?;
        let t2 = StdInstant::now();
        let back: ServicesView = serde_json::from_slice(&json)?;
        let t3 = StdInstant::now();
        std::hint::black_box(&back);
        bytes = json.len();
        w.push(t1 - t0);
        e.push(t2 - t1);
        c.push(t3 - t2);
    }
    let total: Vec<Duration> = w
        .iter()
        .zip(&e)
        .zip(&c)
        .map(|((a, b), c)| *a + *b + *c)
        .collect();
    println!("GET /v1/services ({} KiB of JSON):", bytes / 1024);
    stat("  worker: State::answer(Op::Services)", &w);
    stat("  control thread: JSON encoding", &e);
    stat("  client: JSON decoding", &c);
    stat("  sum", &total);
    let _ = std::io::stdout().flush();
    Ok(())
}
