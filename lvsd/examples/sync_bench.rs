//! Hand-run benchmark of connection sync against the targets of issue 8; the figures are
//! recorded in `docs/BENCHMARKS.md`. Not a test: it asserts nothing, it prints.
//!
//! ```text
//! cargo run --release -p lvsd --example sync_bench -- --rate 20000 --secs 10
//! cargo run --release -p lvsd --example sync_bench -- --resync 1000000
//! ```
//!
//! One process, two engines (`ipvs_core::ipvs::Ipvs`): A, the active director, and B, the
//! standby, each owned by its own worker thread that drives the real
//! [`lvsd::daemon::sync::SyncLink`] (so each side has its real `lvsd-sync` thread, UDP
//! socket, HMAC and channels) exactly as lvsd's worker does: `tick` after each batch of
//! work, then `poll(2)` on the worker's [`Waker`]. A is bound to 127.0.0.1, B to
//! 127.0.0.2 (lvs.cf `primary` and `backup`), over loopback. Both engines have the same
//! service (TCP VIP:80, wlc, four NAT real servers).
//!
//! **Stream mode** (`--rate R --secs S`): A's worker creates R connections per second
//! (paced in 1 ms batches: `Ipvs::new_connection` with a SYN, then the client's ACK through
//! `Ipvs::in_packet`), and closes each `--hold-ms` later (a FIN, then a RST), so that every
//! connection makes four change-feed records (new, established, closing, closed), as the
//! cost estimate in `docs/sync.md` assumes. Measured:
//! - CPU of each side's sync work, as a share of one core, in the steady state (from the
//!   first closes to the last opens) and over the whole run: the `lvsd-sync`
//!   thread (from `/proc/self/task/<tid>/schedstat`) and the time the worker spends inside
//!   `SyncLink::tick` (a clock around each call); on A that is draining the feed and
//!   handing records over, on B importing. Also the worker threads' whole CPU, which
//!   includes the traffic generator on A and the lag probe on B.
//! - Lag: for every connection, the time from its creation on A to its presence in B's
//!   table, seen by B's worker after each tick (p50, p99, p99.9, max), and how many never
//!   arrived.
//!
//! **Resync mode** (`--resync N`): A is filled with N established connections (no sync
//! running), A's `SyncLink` is started and set active, then B's is started (the sync
//! thread asks the partner for its table at start). Measured: from B's `SyncLink::start`
//! to B holding all N connections and to the resync counted complete; the CPU of both
//! sync threads and of both sides' `tick` meanwhile; B's table memory.
//!
//! Both modes print the sync counters of both sides and the namespace's UDP receive-buffer
//! overflows (`/proc/net/snmp`), where lost datagrams show.
//!
//! Needs 127.0.0.2 on `lo` (Linux has 127/8 there) and a free UDP `--port` on both
//! addresses. Run it on an otherwise quiet machine: the figures are wall-clock and CPU.

#[path = "common/machine.rs"]
mod machine;
use machine::print_machine;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::AsFd as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant as StdInstant};

use clap::Parser;
use ipvs_core::conn::{ConnKey, ConnTableConfig, TcpFlags};
use ipvs_core::io::Waker;
use ipvs_core::ipvs::{Ipvs, IpvsConfig, NewFlow};
use ipvs_core::service::{DestConfig, ServiceKey};
use ipvs_core::time::Instant;
use ipvs_core::types::{ForwardMethod, Protocol, SchedulerKind};
use lvsd::control::api::{Role, SyncView};
use lvsd::daemon::sync::{HostView, SyncLink};
use lvsd::lvscf::{Global, StaticLookup};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Binaries may use `anyhow`; lvsd does not depend on it, so a boxed error does here.
type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

macro_rules! bail {
    ($($t:tt)*) => {
        return Err(format!($($t)*).into())
    };
}

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
const A_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const B_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// As lvsd's `MAX_CONNS`.
const MAX_CONNS: usize = 1 << 20;

#[derive(Debug, Parser)]
#[command(about = "Connection sync benchmark (issue 8): CPU, lag, bulk resync")]
struct Args {
    /// New connections per second through A (stream mode).
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    /// Seconds of traffic (stream mode).
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Milliseconds from a connection's creation to its FIN and RST (stream mode).
    #[arg(long, default_value_t = 1_000)]
    hold_ms: u64,
    /// Bulk resync of this many connections instead of the stream.
    #[arg(long)]
    resync: Option<usize>,
    /// UDP sync port (on 127.0.0.1 and 127.0.0.2).
    #[arg(long, default_value_t = 18_848)]
    port: u16,
}

fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .init();
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("sync.key");
    let mut f = std::fs::File::create(&key)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(b"sync-bench-key-0123456789abcdef\n")?;
    drop(f);
    let global = global(&key, args.port)?;
    print_machine();
    match args.resync {
        Some(n) => resync(&global, n),
        None => stream(&global, &args),
    }
}

fn global(key: &Path, port: u16) -> Result<Global> {
    let text = format!(
        "primary = {A_ADDR}\nbackup = {B_ADDR}\nbackup_active = 1\nsyncdaemon = 1\n\
         heartbeat_key = {}\nsync_port = {port}\n",
        key.display()
    );
    Ok(lvsd::lvscf::parse_str("sync_bench.cf", &text, &StaticLookup::default())?.global)
}

/// The same engine on both sides, sized as lvsd sizes it.
fn engine() -> Result<Ipvs> {
    let mut ipvs = Ipvs::new(IpvsConfig {
        conn_table: ConnTableConfig {
            max_entries: MAX_CONNS,
            initial_capacity: 1 << 16,
            ..ConnTableConfig::default()
        },
        ..IpvsConfig::default()
    });
    let sk = ServiceKey::tcp(VIP, 80);
    ipvs.add_service(sk, SchedulerKind::Wlc, &[], None)?;
    for i in 1..=4 {
        let rs = Ipv4Addr::new(10, 0, 0, i);
        ipvs.add_dest(&sk, DestConfig::new(rs, 80, ForwardMethod::Masq))?;
    }
    Ok(ipvs)
}

/// Connection `i`'s key: 16 384 ports per client address.
fn key(i: usize) -> ConnKey {
    let i = u32::try_from(i).expect("fewer than 2^32 connections");
    ConnKey {
        proto: Protocol::Tcp,
        caddr: Ipv4Addr::from(0x0a80_0000 + (i >> 14)),
        cport: 1024 + (i & 0x3fff) as u16,
        vaddr: VIP,
        vport: 80,
    }
}

/// Opens connection `i` as a client would: SYN, then the ACK of the handshake.
fn open(ipvs: &mut Ipvs, now: Instant, i: usize) -> Result<()> {
    let k = key(i);
    let flow = NewFlow {
        key: k,
        fwmark: 0,
        tcp_flags: TcpFlags::SYN,
    };
    if let Err(e) = ipvs.new_connection(now, &flow) {
        bail!("connection {i} refused: {e:?}");
    }
    ipvs.in_packet(now, &k, TcpFlags::ACK);
    Ok(())
}

/// The engine's clock, shared by both sides.
#[derive(Clone, Copy)]
struct Clock(StdInstant);

impl Clock {
    fn now(self) -> Instant {
        Instant::from_millis(u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
    fn ns(self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// One director: its engine, its sync link and its worker's waker, with the time spent
/// in `SyncLink::tick`.
struct Side {
    ipvs: Ipvs,
    link: SyncLink,
    waker: Waker,
    sync_tid: u32,
    /// Nanoseconds spent in `SyncLink::tick`, readable from the main thread.
    tick_ns: Arc<AtomicU64>,
    ticks: u64,
}

impl Side {
    fn start(g: &Global, addr: Ipv4Addr, ipvs: Ipvs) -> Result<Side> {
        let waker = Waker::new()?;
        let before = sync_threads();
        let host = HostView {
            addrs: vec![addr],
            interface_addrs: vec![("lo".to_owned(), addr)],
        };
        let link = SyncLink::start(g, &host, waker.clone());
        // The new thread names itself once running.
        let mut sync_tid = None;
        for _ in 0..1000 {
            sync_tid = sync_threads().into_iter().find(|t| !before.contains(t));
            if sync_tid.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let Some(sync_tid) = sync_tid else {
            bail!("no new lvsd-sync thread: sync did not start (see the log)");
        };
        Ok(Side {
            ipvs,
            link,
            waker,
            sync_tid,
            tick_ns: Arc::new(AtomicU64::new(0)),
            ticks: 0,
        })
    }

    /// One `SyncLink::tick`, timed.
    fn tick(&mut self, now: Instant) -> bool {
        let t = StdInstant::now();
        let more = self.link.tick(&mut self.ipvs, now);
        let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.tick_ns.fetch_add(ns, Ordering::Relaxed);
        self.ticks += 1;
        more
    }

    /// Waits until the sync thread wakes the worker, or `timeout`.
    fn wait(&self, timeout: Duration) {
        let mut fds = [PollFd::new(self.waker.as_fd(), PollFlags::POLLIN)];
        let t = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let _ = poll(&mut fds, t); // EINTR: go round
        self.waker.drain();
    }

    fn view(&self) -> SyncView {
        self.link.view(&self.ipvs)
    }
}

/// Thread ids of the `lvsd-sync` threads of this process.
fn sync_threads() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == "lvsd-sync")
            .then(|| e.file_name().to_str()?.parse().ok())
            .flatten()
    })
    .collect()
}

/// CPU time of a thread in ns: `schedstat`'s run time, else `stat`'s utime + stime (in
/// USER_HZ = 100 ticks).
fn thread_cpu_ns(task: &str) -> u64 {
    let base = format!("/proc/{task}");
    if let Some(ns) = std::fs::read_to_string(format!("{base}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
    {
        return ns;
    }
    std::fs::read_to_string(format!("{base}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let u: u64 = f.get(11)?.parse().ok()?;
            let s: u64 = f.get(12)?.parse().ok()?;
            Some((u + s) * 10_000_000)
        })
        .unwrap_or(0)
}

fn sync_cpu_ns(tid: u32) -> u64 {
    thread_cpu_ns(&format!("self/task/{tid}"))
}

fn tick_ns(side: &Side) -> u64 {
    side.tick_ns.load(Ordering::Relaxed)
}

/// `Udp: RcvbufErrors` of `/proc/net/snmp`: datagrams dropped because a socket's receive
/// buffer was full (the whole network namespace, so other UDP traffic counts too).
fn udp_rcvbuf_errors() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/net/snmp") else {
        return 0;
    };
    let mut udp = s.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn pct(ns: u64, wall: Duration) -> f64 {
    ns as f64 * 100.0 / wall.as_nanos() as f64
}

/// Ticks both sides from this thread until each has completed its start-up resync.
fn settle(a: &mut Side, b: &mut Side, clock: Clock) -> Result<()> {
    let deadline = StdInstant::now() + Duration::from_secs(10);
    while a.view().resync.completed == 0 || b.view().resync.completed == 0 {
        if StdInstant::now() > deadline {
            bail!("the start-up resyncs did not complete within 10 s");
        }
        a.tick(clock.now());
        b.tick(clock.now());
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

// ----- stream mode -----

/// What B's worker reports.
struct BReport {
    side: Side,
    lags: Vec<u64>,
}

/// Counters of the stream run, sampled by the main thread.
#[derive(Clone, Copy, Default)]
struct Sample {
    at: Duration,
    sync_a: u64,
    sync_b: u64,
    tick_a: u64,
    tick_b: u64,
    worker_a: u64,
    worker_b: u64,
    traffic_a: u64,
}

/// Clones of what [`Sample`] reads.
struct Probe {
    t0: StdInstant,
    sync_a: u32,
    sync_b: u32,
    tick_a: Arc<AtomicU64>,
    tick_b: Arc<AtomicU64>,
    worker_a: Arc<AtomicU64>,
    worker_b: Arc<AtomicU64>,
    traffic_a: Arc<AtomicU64>,
}

impl Probe {
    fn sample(&self) -> Sample {
        let worker = |tid: &AtomicU64| match tid.load(Ordering::Relaxed) {
            0 => 0,
            t => thread_cpu_ns(&format!("self/task/{t}")),
        };
        Sample {
            at: self.t0.elapsed(),
            sync_a: sync_cpu_ns(self.sync_a),
            sync_b: sync_cpu_ns(self.sync_b),
            tick_a: self.tick_a.load(Ordering::Relaxed),
            tick_b: self.tick_b.load(Ordering::Relaxed),
            worker_a: worker(&self.worker_a),
            worker_b: worker(&self.worker_b),
            traffic_a: self.traffic_a.load(Ordering::Relaxed),
        }
    }
}

/// This thread's id, from `/proc/thread-self`.
fn own_tid() -> u64 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

fn stream(g: &Global, args: &Args) -> Result<()> {
    let total = usize::try_from(args.rate * args.secs)?;
    if total > MAX_CONNS {
        bail!("rate x secs = {total} connections: more than the table holds ({MAX_CONNS})");
    }
    let clock = Clock(StdInstant::now());
    let mut a = Side::start(g, A_ADDR, engine()?)?;
    let mut b = Side::start(g, B_ADDR, engine()?)?;
    a.link.set_role(&mut a.ipvs, Role::Active);
    b.link.set_role(&mut b.ipvs, Role::Standby);
    settle(&mut a, &mut b, clock)?;

    let created_at: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let created = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let probe = Probe {
        t0: StdInstant::now(),
        sync_a: a.sync_tid,
        sync_b: b.sync_tid,
        tick_a: a.tick_ns.clone(),
        tick_b: b.tick_ns.clone(),
        worker_a: Arc::new(AtomicU64::new(0)),
        worker_b: Arc::new(AtomicU64::new(0)),
        traffic_a: Arc::new(AtomicU64::new(0)),
    };
    let s0 = probe.sample();
    let rcvbuf0 = udp_rcvbuf_errors();

    let worker_a = {
        let (created_at, created, stop) = (created_at.clone(), created.clone(), stop.clone());
        let (tid, traffic) = (probe.worker_a.clone(), probe.traffic_a.clone());
        let (rate, hold) = (args.rate, Duration::from_millis(args.hold_ms));
        std::thread::Builder::new()
            .name("worker-a".into())
            .spawn(move || -> Result<Side> {
                tid.store(own_tid(), Ordering::Relaxed);
                let mut closed = 0;
                let start = clock.ns();
                while !stop.load(Ordering::Relaxed) {
                    let now = clock.now();
                    let t = StdInstant::now();
                    // Paced: the connections due by now (1 ms batches when idle).
                    let elapsed = u128::from(clock.ns() - start);
                    let due =
                        usize::try_from(elapsed * u128::from(rate) / 1_000_000_000)?.min(total);
                    for i in created.load(Ordering::Relaxed)..due {
                        open(&mut a.ipvs, now, i)?;
                        created_at[i].store(clock.ns(), Ordering::Relaxed);
                    }
                    created.store(due, Ordering::Release);
                    let close_before = clock.ns().saturating_sub(u64::try_from(hold.as_nanos())?);
                    while closed < due && created_at[closed].load(Ordering::Relaxed) <= close_before
                    {
                        let k = key(closed);
                        a.ipvs.in_packet(now, &k, TcpFlags::FIN);
                        a.ipvs.in_packet(now, &k, TcpFlags::RST);
                        closed += 1;
                    }
                    traffic.fetch_add(u64::try_from(t.elapsed().as_nanos())?, Ordering::Relaxed);
                    if !a.tick(now) {
                        a.wait(Duration::from_millis(1));
                    }
                }
                Ok(a)
            })?
    };
    let worker_b = {
        let (created_at, created, stop) = (created_at.clone(), created.clone(), stop.clone());
        let tid = probe.worker_b.clone();
        std::thread::Builder::new()
            .name("worker-b".into())
            .spawn(move || -> Result<BReport> {
                tid.store(own_tid(), Ordering::Relaxed);
                let mut seen = vec![false; total];
                let mut lags = Vec::with_capacity(total);
                let mut next = 0;
                while !stop.load(Ordering::Relaxed) {
                    let now = clock.now();
                    let more = b.tick(now);
                    // The lag probe: every connection A created that B did not show yet.
                    let t = clock.ns();
                    let upto = created.load(Ordering::Acquire);
                    for i in next..upto {
                        if !seen[i] && b.ipvs.conns().lookup_in(now, &key(i)).is_some() {
                            seen[i] = true;
                            lags.push(t.saturating_sub(created_at[i].load(Ordering::Relaxed)));
                        }
                    }
                    while next < upto && seen[next] {
                        next += 1;
                    }
                    if !more {
                        b.wait(Duration::from_millis(1));
                    }
                }
                Ok(BReport { side: b, lags })
            })?
    };

    // Steady state: from the first closes (`hold`) to the end of the new connections, both
    // run at the full rate. Then the last closes and a second to settle.
    let hold = Duration::from_millis(args.hold_ms);
    let secs = Duration::from_secs(args.secs);
    let (w1, w2) = if secs > hold + Duration::from_secs(1) {
        (hold, secs)
    } else {
        (Duration::ZERO, secs)
    };
    let sleep_until = |d: Duration| std::thread::sleep(d.saturating_sub(probe.t0.elapsed()));
    sleep_until(w1);
    let s1 = probe.sample();
    sleep_until(w2);
    let s2 = probe.sample();
    sleep_until(secs + hold + Duration::from_secs(1));
    let s3 = probe.sample();
    let rcvbuf = udp_rcvbuf_errors() - rcvbuf0;
    stop.store(true, Ordering::Relaxed);
    let a = worker_a.join().expect("worker A panicked")?;
    let mut rb = worker_b.join().expect("worker B panicked")?;

    let (va, vb) = (a.view(), rb.side.view());
    println!(
        "stream: {} connections/s for {} s ({total} connections, each closed {} ms after \
         creation: 4 records each)",
        args.rate, args.secs, args.hold_ms,
    );
    println!(
        "A sent: {} records in {} datagrams; feed pushed {}, dropped {}; send dropped {} \
         datagrams, {} send errors",
        va.sent.entries,
        va.sent.datagrams,
        va.feed.pushed,
        va.feed.dropped,
        va.sent.dropped_datagrams,
        va.sent.send_errors
    );
    let refused = vb.imported.unknown_service
        + vb.imported.unknown_dest
        + vb.imported.state_cannot_follow
        + vb.imported.table_full
        + vb.imported.conn_error;
    println!(
        "B received: {} datagrams, {} records; imported created {}, updated {}, replaced {}, \
         refused {refused}; dropped: bad_mac {}, stale {}, reordered {}, replayed {}; \
         UDP receive buffer overflows {rcvbuf}",
        vb.received.accepted,
        vb.received.entries,
        vb.imported.created,
        vb.imported.updated,
        vb.imported.replaced,
        vb.received.bad_mac,
        vb.received.stale,
        vb.received.reordered,
        vb.received.replayed
    );
    println!(
        "CPU, % of one core: steady state ({:.1} s to {:.1} s, opens and closes at the full \
         rate) | whole run ({:.1} s)",
        s1.at.as_secs_f64(),
        s2.at.as_secs_f64(),
        (s3.at - s0.at).as_secs_f64()
    );
    type Column = fn(&Sample) -> u64;
    let rows: [(&str, Column); 9] = [
        ("A lvsd-sync thread (encode, sign, send)", |s| s.sync_a),
        ("A SyncLink::tick (drain feed, hand over)", |s| s.tick_a),
        ("A sync total", |s| s.sync_a + s.tick_a),
        ("B lvsd-sync thread (receive, verify)", |s| s.sync_b),
        ("B SyncLink::tick (import)", |s| s.tick_b),
        ("B sync total", |s| s.sync_b + s.tick_b),
        ("A worker thread, all (incl. traffic)", |s| s.worker_a),
        ("A traffic (new_connection, ACK, FIN, RST)", |s| s.traffic_a),
        ("B worker thread, all (incl. lag probe)", |s| s.worker_b),
    ];
    for (name, f) in rows {
        println!(
            "  {name:<44} {:6.2} % | {:6.2} %",
            pct(f(&s2) - f(&s1), s2.at - s1.at),
            pct(f(&s3) - f(&s0), s3.at - s0.at)
        );
    }
    println!(
        "  ticks: A {} ({:.0} ns each), B {} ({:.0} ns each)",
        a.ticks,
        tick_ns(&a) as f64 / a.ticks.max(1) as f64,
        rb.side.ticks,
        tick_ns(&rb.side) as f64 / rb.side.ticks.max(1) as f64
    );
    let lags = &mut rb.lags;
    lags.sort_unstable();
    let q = |p: f64| {
        let i = ((lags.len() as f64 * p).ceil() as usize).clamp(1, lags.len().max(1)) - 1;
        lags.get(i).map_or(f64::NAN, |&ns| ns as f64 / 1e6)
    };
    println!(
        "lag A created -> in B's table, ms: p50 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2} \
         ({} of {total} seen, {} missing)",
        q(0.50),
        q(0.99),
        q(0.999),
        lags.last().map_or(f64::NAN, |&ns| ns as f64 / 1e6),
        lags.len(),
        total - lags.len()
    );
    println!(
        "B table: {} connections (A: {})",
        rb.side.ipvs.conns().stats().conns,
        a.ipvs.conns().stats().conns
    );
    Ok(())
}

// ----- resync mode -----

fn resync(g: &Global, n: usize) -> Result<()> {
    if n > MAX_CONNS {
        bail!("{n} connections: more than the table holds ({MAX_CONNS})");
    }
    let clock = Clock(StdInstant::now());
    let mut ipvs = engine()?;
    let t = StdInstant::now();
    let now = clock.now();
    for i in 0..n {
        open(&mut ipvs, now, i)?;
    }
    println!(
        "resync: A filled with {} connections in {:.2} s",
        ipvs.conns().stats().conns,
        t.elapsed().as_secs_f64()
    );
    let mut a = Side::start(g, A_ADDR, ipvs)?;
    a.link.set_role(&mut a.ipvs, Role::Active);
    let (sa, a_tick) = (a.sync_tid, a.tick_ns.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let worker_a = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("worker-a".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if !a.tick(clock.now()) {
                        a.wait(Duration::from_millis(1));
                    }
                }
                a
            })?
    };
    // A's own start-up request goes unanswered until B is up; B answers it with its empty
    // table, a few datagrams.
    std::thread::sleep(Duration::from_millis(200));

    let t0 = StdInstant::now();
    let mut b = Side::start(g, B_ADDR, engine()?)?;
    b.link.set_role(&mut b.ipvs, Role::Standby);
    let (sa0, sb0) = (sync_cpu_ns(sa), sync_cpu_ns(b.sync_tid));
    let ta0 = a_tick.load(Ordering::Relaxed);
    let rcvbuf0 = udp_rcvbuf_errors();
    let mut all_at = None;
    let deadline = t0 + Duration::from_secs(60);
    let done = loop {
        let now = clock.now();
        let more = b.tick(now);
        if all_at.is_none() && b.ipvs.conns().stats().conns >= n {
            all_at = Some(t0.elapsed());
        }
        let v = b.view();
        if v.resync.completed > 0 && all_at.is_some() {
            break Some((t0.elapsed(), v));
        }
        if StdInstant::now() > deadline {
            break None;
        }
        if !more {
            b.wait(Duration::from_millis(1));
        }
    };
    let wall = t0.elapsed();
    let (sa1, sb1) = (sync_cpu_ns(sa), sync_cpu_ns(b.sync_tid));
    let ta1 = a_tick.load(Ordering::Relaxed);
    let rcvbuf = udp_rcvbuf_errors() - rcvbuf0;
    stop.store(true, Ordering::Relaxed);
    let a = worker_a.join().expect("worker A panicked");
    let va = a.view();
    let Some((complete, vb)) = done else {
        let v = b.view();
        bail!(
            "resync not done after 60 s: B holds {} connections; resync {:?}; received {:?}; \
             imported {:?}",
            b.ipvs.conns().stats().conns,
            v.resync,
            v.received,
            v.imported
        );
    };
    let all = all_at.expect("set before completion");
    println!(
        "B holds all {n} connections {:.3} s after its SyncLink::start; resync complete at \
         {:.3} s (the sync thread's own count: {} ms, {} entries)",
        all.as_secs_f64(),
        complete.as_secs_f64(),
        vb.resync.last_ms,
        vb.resync.last_entries
    );
    println!(
        "A sent {} datagrams, {} entries (dropped {}); B accepted {} datagrams, {} entries; \
         imported created {}, updated {}, refused {}; incomplete sessions {}; UDP receive \
         buffer overflows {rcvbuf}",
        va.sent.datagrams,
        va.sent.entries,
        va.sent.dropped_datagrams,
        vb.received.accepted,
        vb.received.entries,
        vb.imported.created,
        vb.imported.updated,
        vb.imported.unknown_service + vb.imported.unknown_dest + vb.imported.table_full,
        vb.resync.incomplete
    );
    println!(
        "CPU during the resync, % of one core over {:.3} s:",
        wall.as_secs_f64()
    );
    for (name, ns) in [
        ("A lvsd-sync thread (encode, sign, send)", sa1 - sa0),
        ("A SyncLink::tick (export)", ta1 - ta0),
        ("B lvsd-sync thread (receive, verify)", sb1 - sb0),
        ("B SyncLink::tick (import)", tick_ns(&b)),
    ] {
        println!("  {name:<44} {:6.1} %", pct(ns, wall));
    }
    let c = b.ipvs.conns();
    println!(
        "B table memory: {:.1} MiB for {} connections ({:.0} bytes each, capacity-based)",
        c.memory_bytes() as f64 / (1 << 20) as f64,
        c.stats().conns,
        c.memory_bytes() as f64 / c.stats().conns.max(1) as f64
    );
    Ok(())
}
