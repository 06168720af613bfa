//! `lab-failover-bench`: how fast the director pair fails over, `pulse` against keepalived,
//! run by hand (never in CI).
//!
//! Every failover run builds a fresh lab: one client, two directors, two NAT real servers
//! answering HTTP (`lab-http`), the VIP on `eth0:1` and the NAT router on `eth1:1` moved by
//! the daemon under test (`floating_on(None)`), default veth offloads. The client probes the
//! VIP all the time (four threads, each a new connection and one `GET` every 10 ms with a
//! 25 ms connect timeout), and a thread inside the backup's namespace checks every
//! millisecond whether the VIP is local there (a `bind(2)` to it succeeds only then). At `t0`
//! (after 0.5 s of probes and a pause of 0–1 s taken from the clock, so that it falls at any
//! point of the heartbeat or advert period) the bench signals the active director's daemons
//! and reports, per run:
//!
//! - **VIP**: `t0` → the backup holds the VIP;
//! - **connection**: `t0` → the end of the first probe started after `t0` that got its HTTP
//!   200 through the VIP (so through the backup's lvsd, with the client's and the real
//!   servers' ARP entries moved by the gratuitous ARPs).
//!
//! Scenarios (`--only` picks some, comma-separated):
//!
//! - `kill`: pulse pair, `keepalive = 0.05`, `deadtime = 0.15`; SIGKILL of the active's
//!   pulse, then of its lvsd (pulse first, so that it cannot announce anything), then of
//!   everything left in its namespace. The addresses stay on the dead director, as after a
//!   crash of the daemons.
//! - `term`: the same pair; SIGTERM of the active's pulse (a planned switchover: the last
//!   "stopped" heartbeat, the addresses released, lvsd stopped).
//! - `keepalived`: keepalived (Debian's, VRRPv3, `--vrrp` only: this kernel has no `ip_vs`)
//!   moves the same two addresses, with the same labels, between the same namespaces, while
//!   lvsd forwards on both directors (started alone, not in standby: the keepalived +
//!   IPVS model, where the table is loaded on both and only the addresses move). Master
//!   priority 150, backup 100 (keepalived's default), `advert_int` from `--adverts`
//!   (default `0.1,1`); SIGKILL of keepalived's VRRP child and parent and of lvsd on the
//!   master, then of everything left in its namespace. keepalived's GARPs: its defaults.
//! - `load`: the pulse pair (0.05 / 0.15) with the client saturating the VIP through the
//!   active director (`wrk -t2 -c50`, keep-alive) for `--load-s` seconds (default 60; the
//!   issue's target is 600), after an idle window of `--idle-s` seconds (default 30). An
//!   AF_PACKET capture in the backup's namespace takes the kernel's receive timestamp of
//!   every heartbeat from the active, and the gaps between them are reported (median, p99,
//!   max, count over `deadtime`) for the idle and the loaded window; role changes are
//!   counted from both pulses' logs (`activating`, `deactivating`, `stepping down`) and from
//!   the VIP watcher on the backup. Expected: none.
//!
//! Usage (as root): `bench/failover-bench.sh [ARGS]`, which installs keepalived and wrk and
//! builds in release mode, or `target/release/lab-failover-bench [--runs 10] [--only
//! kill,term,keepalived,load] [--adverts 0.1,1] [--load-s 60] [--idle-s 30]`.
//! It prints every run and a table (min / median / max). Every wait is bounded (a takeover
//! that does not happen within 10 s is a failed run, reported as such) and every lab is torn
//! down, also on failure.

use std::fmt::Write as _;
use std::io::{IoSliceMut, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockProtocol, SockType, recvmsg,
    setsockopt, socket, sockopt,
};
use nix::sys::time::{TimeSpec, TimeVal};
use nix::unistd::Pid;
use tests::lab::{Lab, LabError, Mode, Proc, Role, wait_until};
use tests::lvsd::{Cf, Virtual};
use tests::tools::args::Args;

const USAGE: &str = "usage: lab-failover-bench [--runs N] [--only kill,term,keepalived,load] \
                     [--adverts 0.1,1] [--load-s S] [--idle-s S]";

const C0: Role = Role::Client(0);
const D0: Role = Role::Director(0);
const D1: Role = Role::Director(1);
/// pulse's settings under test (the issue's).
const KEEPALIVE: &str = "0.05";
const DEADTIME: &str = "0.15";
const DEADTIME_S: f64 = 0.15;
/// lvs.cf's default `heartbeat_port`.
const HEARTBEAT_PORT: u16 = 539;
/// Bound of a takeover; beyond it the run is reported as failed.
const TAKEOVER_LIMIT: Duration = Duration::from_secs(10);
/// Bound of a daemon's start (keepalived with `advert_int 1` waits ~3.5 s to be master).
const START_LIMIT: Duration = Duration::from_secs(20);
/// The client's probes: threads, period per thread, connect and I/O timeouts.
const PROBERS: u32 = 4;
const PROBE_EVERY: Duration = Duration::from_millis(10);
const PROBE_CONNECT: Duration = Duration::from_millis(25);
const PROBE_IO: Duration = Duration::from_millis(100);
/// How often the backup's namespace is asked whether it holds the VIP.
const VIP_EVERY: Duration = Duration::from_millis(1);
/// Upper bounds of the options (every loop stays bounded).
const MAX_RUNS: usize = 1000;
const MAX_WINDOW_S: u64 = 3600;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Failover {
    PulseKill,
    PulseTerm,
    /// keepalived with this `advert_int`, in centiseconds.
    Keepalived(u32),
}

impl Failover {
    fn name(self) -> String {
        match self {
            Self::PulseKill => format!("pulse {KEEPALIVE}/{DEADTIME}, SIGKILL"),
            Self::PulseTerm => format!("pulse {KEEPALIVE}/{DEADTIME}, SIGTERM"),
            Self::Keepalived(cs) => format!("keepalived VRRPv3 advert {}, SIGKILL", secs_text(cs)),
        }
    }

    fn target(self) -> &'static str {
        match self {
            Self::PulseKill => "≤ 0.2 s",
            Self::PulseTerm => "≤ 0.1 s",
            Self::Keepalived(_) => "anchor",
        }
    }
}

fn secs_text(cs: u32) -> String {
    format!("{}.{:02}", cs / 100, cs % 100)
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_owned()
}

#[derive(Debug)]
struct Opts {
    runs: usize,
    only: Vec<String>,
    adverts_cs: Vec<u32>,
    load_s: u64,
    idle_s: u64,
}

fn parse() -> Result<Opts, String> {
    let mut a = Args::from_env();
    let e = |x: tests::tools::args::ArgError| x.to_string();
    let runs: usize = a.or("--runs", 10).map_err(e)?;
    let only: String = a
        .or("--only", "kill,term,keepalived,load".to_owned())
        .map_err(e)?;
    let adverts: String = a.or("--adverts", "0.1,1".to_owned()).map_err(e)?;
    let load_s: u64 = a.or("--load-s", 60).map_err(e)?;
    let idle_s: u64 = a.or("--idle-s", 30).map_err(e)?;
    a.finish().map_err(e)?;
    let only: Vec<String> = only.split(',').map(|s| s.trim().to_owned()).collect();
    if let Some(bad) = only
        .iter()
        .find(|s| !["kill", "term", "keepalived", "load"].contains(&s.as_str()))
    {
        return Err(format!("--only: unknown scenario {bad:?}"));
    }
    let adverts_cs = adverts
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| (0.01..=25.5).contains(v))
                // Bounded to 1..=2550 just above: the cast cannot truncate.
                .map(|v| (v * 100.0).round() as u32)
                .ok_or_else(|| format!("--adverts: {s:?} is not 0.01..=25.5 seconds"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if runs == 0 || runs > MAX_RUNS {
        return Err(format!("--runs: 1..={MAX_RUNS}"));
    }
    if load_s > MAX_WINDOW_S || idle_s > MAX_WINDOW_S {
        return Err(format!("--load-s/--idle-s: at most {MAX_WINDOW_S}"));
    }
    Ok(Opts {
        runs,
        only,
        adverts_cs,
        load_s,
        idle_s,
    })
}

fn main() -> ExitCode {
    let opts = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("lab-failover-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !tests::lab::privileged("lab-failover-bench") {
        return ExitCode::FAILURE;
    }
    let wants = |s: &str| opts.only.iter().any(|o| o == s);
    for (scenario, tool) in [("keepalived", "keepalived"), ("load", "wrk")] {
        if wants(scenario) && which(tool).is_none() {
            eprintln!(
                "lab-failover-bench: `{tool}` not found; run bench/failover-bench.sh, which installs it"
            );
            return ExitCode::FAILURE;
        }
    }
    let mut plan = Vec::new();
    if wants("kill") {
        plan.push(Failover::PulseKill);
    }
    if wants("term") {
        plan.push(Failover::PulseTerm);
    }
    if wants("keepalived") {
        plan.extend(opts.adverts_cs.iter().map(|&cs| Failover::Keepalived(cs)));
    }
    let started = Instant::now();
    let mut rows = Vec::new();
    for f in plan {
        let mut samples = Vec::new();
        for run in 1..=opts.runs {
            let s = Lab::builder()
                .directors(2)
                .floating_on(None)
                .real_servers(Mode::Nat, 2)
                .run(|lab| failover_run(lab, f));
            match &s {
                Ok(s) => println!(
                    "{} run {run}: VIP {} · connection {}{}",
                    f.name(),
                    ms(s.vip),
                    ms(s.conn),
                    if s.note.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", s.note)
                    }
                ),
                Err(e) => println!("{} run {run}: failed: {e}", f.name()),
            }
            samples.push(s);
        }
        rows.push((f, samples));
    }
    let load = wants("load").then(|| {
        let r = Lab::builder()
            .directors(2)
            .floating_on(None)
            .real_servers(Mode::Nat, 2)
            .run(|lab| load_run(lab, opts.idle_s, opts.load_s));
        if let Err(e) = &r {
            println!("load: failed: {e}");
        }
        r
    });
    print!("{}", report(&opts, &rows, load.as_ref()));
    println!("(all of it took {:.0} s)", started.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}

fn which(tool: &str) -> Option<String> {
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "none".to_owned(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1e3),
    )
}

// ---------------------------------------------------------------------------------------
// The pair under test

/// The NAT service with both directors and the pulse settings under test.
fn lvs_cf(lab: &Lab) -> String {
    let cf = Cf::new("nat")
        .virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1]))
        .render(lab);
    let pair = format!(
        "backup = {}\nbackup_active = 1\nkeepalive = {KEEPALIVE}\ndeadtime = {DEADTIME}\n",
        lab.addr(D1)
    );
    cf.replacen("network = nat\n", &format!("network = nat\n{pair}"), 1)
}

fn socket_of(lab: &Lab, director: Role) -> PathBuf {
    lab.dir().join(format!("lvsd-{}.sock", director.short()))
}

fn start_pulse<'l>(
    lab: &'l Lab,
    director: Role,
    cf: &std::path::Path,
) -> Result<Proc<'l>, LabError> {
    let argv = [
        tests::bin("pulse").to_string_lossy().into_owned(),
        "-c".to_owned(),
        cf.to_string_lossy().into_owned(),
        "--nodaemon".to_owned(),
        "--lvsd".to_owned(),
        tests::bin("lvsd").to_string_lossy().into_owned(),
        "--socket".to_owned(),
        socket_of(lab, director).to_string_lossy().into_owned(),
    ];
    lab.spawn(director, &argv)
}

/// lvsd alone (not in standby), with its nannies, for the keepalived runs.
fn start_lvsd<'l>(
    lab: &'l Lab,
    director: Role,
    cf: &std::path::Path,
) -> Result<Proc<'l>, LabError> {
    let argv = [
        tests::bin("lvsd").to_string_lossy().into_owned(),
        "-c".to_owned(),
        cf.to_string_lossy().into_owned(),
        "--nodaemon".to_owned(),
        "--socket".to_owned(),
        socket_of(lab, director).to_string_lossy().into_owned(),
    ];
    let mut p = lab.spawn(director, &argv)?;
    p.wait_for_log(tests::lvsd::READY, tests::lvsd::READY_TIMEOUT)?;
    Ok(p)
}

/// keepalived, VRRP only, in `director`'s namespace, its files in the lab's directory.
fn start_keepalived<'l>(
    lab: &'l Lab,
    director: Role,
    advert_cs: u32,
    master: bool,
) -> Result<Proc<'l>, LabError> {
    let name = director.short();
    let (state, priority) = if master {
        ("MASTER", 150)
    } else {
        ("BACKUP", 100)
    };
    let conf = format!(
        "global_defs {{\n  router_id lab-{name}\n  vrrp_version 3\n}}\n\
         vrrp_instance lab {{\n  state {state}\n  interface eth0\n  virtual_router_id 51\n  \
         priority {priority}\n  advert_int {advert}\n  virtual_ipaddress {{\n    \
         {vip}/24 dev eth0 label eth0:1\n    {nat}/24 dev eth1 label eth1:1\n  }}\n}}\n",
        advert = secs_text(advert_cs),
        vip = lab.vip(),
        nat = tests::lab::NAT_ROUTER,
    );
    let path = lab.write_file(&format!("keepalived-{name}.conf"), &conf)?;
    let file = |what: &str| {
        lab.dir()
            .join(format!("keepalived-{name}.{what}"))
            .to_string_lossy()
            .into_owned()
    };
    let argv = [
        "keepalived".to_owned(),
        "--dont-fork".to_owned(),
        "--log-console".to_owned(),
        "--log-detail".to_owned(),
        "--no-syslog".to_owned(),
        "--vrrp".to_owned(),
        "--use-file".to_owned(),
        path.to_string_lossy().into_owned(),
        "--pid".to_owned(),
        file("pid"),
        "--vrrp_pid".to_owned(),
        file("vrrp.pid"),
    ];
    lab.spawn(director, &argv)
}

/// Whether `director` holds `addr` on the label `label` (`ip addr`, for the set-up waits).
fn holds(lab: &Lab, director: Role, label: &str, addr: Ipv4Addr) -> bool {
    lab.ip(director, ["-4", "-o", "addr", "show"])
        .map(|out| {
            out.lines()
                .any(|l| l.contains(&format!("inet {addr}/")) && l.trim_end().contains(label))
        })
        .unwrap_or(false)
}

/// Whether a short burst of requests through the VIP all succeed.
fn requests_succeed(lab: &Lab) -> bool {
    let vip = format!("{}:80", lab.vip());
    let args = ["--to", vip.as_str(), "--requests", "6", "--deadline-s", "3"];
    lab.http_client(C0, &args, Duration::from_secs(10))
        .is_ok_and(|t| t.failed == 0 && t.ok == 6)
}

fn wait_for(what: &str, limit: Duration, cond: impl FnMut() -> bool) -> Result<(), String> {
    if wait_until(limit, Duration::from_millis(20), cond) {
        Ok(())
    } else {
        Err(format!("{what}: not within {limit:?}"))
    }
}

/// Children of `pid` (`/proc/PID/task/*/children`).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let text = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out
}

/// Whether `pid` is gone or a zombie.
fn dead(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_none_or(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X')))
        })
        .unwrap_or(true)
}

fn signal(pid: u32, sig: Signal) -> Result<(), String> {
    let raw = i32::try_from(pid).map_err(|_| format!("pid {pid} out of range"))?;
    kill(Pid::from_raw(raw), sig).map_err(|e| format!("kill {pid} {sig}: {e}"))
}

/// Sends each signal in turn; after a SIGKILL waits (at most 100 ms) until that process is
/// dead (a zombie) before the next step, so that a pulse never sees its lvsd die and a
/// stopped keepalived parent never respawns its VRRP child.
fn signal_steps(steps: &[(u32, Signal)]) -> Result<(), String> {
    for &(pid, sig) in steps {
        signal(pid, sig)?;
        if sig == Signal::SIGKILL {
            let t = Instant::now();
            while !dead(pid) && t.elapsed() < Duration::from_millis(100) {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Threads inside the lab's namespaces

/// Runs `f` on a new thread that has entered `role`'s network namespace (only that thread
/// moves: `setns(2)` acts on the calling thread).
fn in_netns<T: Send + 'static>(
    lab: &Lab,
    role: Role,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<Result<T, String>> {
    let path = lab.ns_path(role);
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns {}: {e}", path.display()))?;
        Ok(f())
    })
}

fn join<T>(h: JoinHandle<Result<T, String>>) -> Result<T, String> {
    h.join()
        .map_err(|_| "a measuring thread panicked".to_owned())?
}

/// The client's probes: every success as (start, end).
#[derive(Debug, Default)]
struct Probes {
    ok: Mutex<Vec<(Instant, Instant)>>,
    attempts: AtomicU64,
    stop: AtomicBool,
}

impl Probes {
    /// End of the first success that started at or after `t0`.
    fn first_after(&self, t0: Instant) -> Option<Instant> {
        let ok = self.ok.lock().expect("no prober panics holding the lock");
        ok.iter().filter(|(s, _)| *s >= t0).map(|(_, e)| *e).min()
    }

    fn successes_since(&self, t: Instant) -> usize {
        let ok = self.ok.lock().expect("no prober panics holding the lock");
        ok.iter().filter(|(s, _)| *s >= t).count()
    }
}

/// One probe: a new connection, `GET /`, an HTTP 200 head back.
fn probe_once(to: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&to, PROBE_CONNECT)?;
    s.set_read_timeout(Some(PROBE_IO))?;
    s.set_write_timeout(Some(PROBE_IO))?;
    s.set_nodelay(true)?;
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = [0u8; 1024];
    let mut got = 0;
    // At most a few reads: the head of lab-http's answer is ~100 bytes.
    for _ in 0..16 {
        let n = s.read(&mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
        if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") || got == buf.len() {
            break;
        }
    }
    if buf[..got].starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(std::io::Error::other("no HTTP 200"))
    }
}

/// Starts the probers in the client's namespace; they stop on `probes.stop` or after
/// `lifetime`.
fn start_probers(
    lab: &Lab,
    probes: &Arc<Probes>,
    lifetime: Duration,
) -> Vec<JoinHandle<Result<(), String>>> {
    let to = SocketAddr::from((lab.vip(), 80));
    (0..PROBERS)
        .map(|i| {
            let p = Arc::clone(probes);
            in_netns(lab, C0, move || {
                let end = Instant::now() + lifetime;
                std::thread::sleep(PROBE_EVERY * i / PROBERS);
                while !p.stop.load(Ordering::Relaxed) && Instant::now() < end {
                    let start = Instant::now();
                    p.attempts.fetch_add(1, Ordering::Relaxed);
                    if probe_once(to).is_ok() {
                        p.ok.lock()
                            .expect("no prober panics holding the lock")
                            .push((start, Instant::now()));
                    }
                    if let Some(rest) = (start + PROBE_EVERY).checked_duration_since(Instant::now())
                    {
                        std::thread::sleep(rest);
                    }
                }
            })
        })
        .collect()
}

/// Whether `vip` is a local address of the calling thread's namespace.
fn local(vip: Ipv4Addr) -> bool {
    UdpSocket::bind((vip, 0)).is_ok()
}

/// In `role`'s namespace: the first instant at which holding `vip` is `want`, checked every
/// [`VIP_EVERY`] until then, `stop` or `limit`; published in the returned cell.
fn watch_vip(
    lab: &Lab,
    role: Role,
    want: bool,
    stop: &Arc<AtomicBool>,
    limit: Duration,
) -> (Arc<OnceLock<Instant>>, JoinHandle<Result<(), String>>) {
    let (vip, stop) = (lab.vip(), Arc::clone(stop));
    let cell = Arc::new(OnceLock::new());
    let out = Arc::clone(&cell);
    let h = in_netns(lab, role, move || {
        let end = Instant::now() + limit;
        while !stop.load(Ordering::Relaxed) && Instant::now() < end {
            if local(vip) == want {
                let _ = out.set(Instant::now());
                return;
            }
            std::thread::sleep(VIP_EVERY);
        }
    });
    (cell, h)
}

// ---------------------------------------------------------------------------------------
// One failover run

#[derive(Debug, Default)]
struct Sample {
    vip: Option<Duration>,
    conn: Option<Duration>,
    note: String,
}

fn failover_run(lab: &Lab, f: Failover) -> Result<Sample, String> {
    let e = |x: LabError| x.to_string();
    let _http = lab.start_http(80).map_err(e)?;
    let cf = lab.write_file("lvs.cf", &lvs_cf(lab)).map_err(e)?;
    let vip = lab.vip();
    let mut procs: Vec<Proc<'_>> = Vec::new();
    match f {
        Failover::PulseKill | Failover::PulseTerm => {
            // The primary alone first: it activates after deadtime; the backup, started
            // next, hears an active partner and stands by (no start-up race).
            procs.push(start_pulse(lab, D0, &cf).map_err(e)?);
            wait_for("director 0 holds the VIP", START_LIMIT, || {
                holds(lab, D0, "eth0:1", vip)
            })?;
            procs.push(start_pulse(lab, D1, &cf).map_err(e)?);
            wait_for("director 1's lvsd answers", START_LIMIT, || {
                socket_of(lab, D1).exists() && procs[1].log().contains("STARTING PULSE")
            })?;
        }
        Failover::Keepalived(cs) => {
            procs.push(start_lvsd(lab, D0, &cf).map_err(e)?);
            procs.push(start_lvsd(lab, D1, &cf).map_err(e)?);
            procs.push(start_keepalived(lab, D0, cs, true).map_err(e)?);
            wait_for(
                "keepalived on director 0 holds the VIP",
                START_LIMIT,
                || holds(lab, D0, "eth0:1", vip),
            )?;
            procs.push(start_keepalived(lab, D1, cs, false).map_err(e)?);
        }
    }
    wait_for("requests through the VIP succeed", START_LIMIT, || {
        requests_succeed(lab)
    })?;
    // Let the backup settle (its lvsd up, heartbeats or adverts exchanged), then check it
    // is not holding the VIP.
    std::thread::sleep(Duration::from_millis(1500));
    if holds(lab, D1, "eth0:1", vip) {
        return Err("director 1 holds the VIP before the failover".into());
    }
    // The steps that end the active director's service, in order.
    let steps: Vec<(u32, Signal)> = match f {
        Failover::PulseKill => {
            let pulse = procs[0].pid();
            let mut v = vec![(pulse, Signal::SIGKILL)];
            v.extend(children(pulse).into_iter().map(|c| (c, Signal::SIGKILL))); // lvsd
            v
        }
        Failover::PulseTerm => vec![(procs[0].pid(), Signal::SIGTERM)],
        Failover::Keepalived(_) => {
            // The parent stopped first (it would respawn its VRRP child), the child killed
            // (it cannot send a priority-0 advert), then the parent and lvsd.
            let parent = procs[2].pid();
            let mut v = vec![(parent, Signal::SIGSTOP)];
            v.extend(children(parent).into_iter().map(|c| (c, Signal::SIGKILL)));
            v.push((parent, Signal::SIGKILL));
            v.push((procs[0].pid(), Signal::SIGKILL)); // lvsd
            v
        }
    };
    let probes = Arc::new(Probes::default());
    let stop = Arc::new(AtomicBool::new(false));
    let lifetime = TAKEOVER_LIMIT + Duration::from_secs(5);
    let probers = start_probers(lab, &probes, lifetime);
    let (taken, w1) = watch_vip(lab, D1, true, &stop, lifetime);
    let (released, w0) = watch_vip(lab, D0, false, &stop, lifetime);
    // 0.5 s of probes, then a pause of 0–1 s from the clock's microseconds, so that the
    // signal falls at any point of the heartbeat or advert period (without it the lab's
    // fixed start-up sequence kills at nearly the same phase every run).
    std::thread::sleep(Duration::from_millis(500));
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_micros());
    std::thread::sleep(Duration::from_micros(u64::from(micros)));
    let steady = probes.successes_since(Instant::now() - Duration::from_millis(300));
    let result = (|| {
        if steady == 0 {
            return Err("no probe succeeded before the failover".to_owned());
        }
        if taken.get().is_some() || released.get().is_some() {
            return Err("the VIP moved before the failover".to_owned());
        }
        let t0 = Instant::now();
        signal_steps(&steps)?;
        // From `gate` on the old active cannot serve: its daemons are dead, or (SIGTERM) it
        // has released the VIP, after setting its lvsd to standby. Only probes started
        // after it count.
        let killed = Instant::now();
        if f != Failover::PulseTerm {
            lab.kill_all(D0); // nannies and anything else left
        }
        let deadline = t0 + TAKEOVER_LIMIT;
        let gate = || match f {
            Failover::PulseTerm => released.get().copied(),
            _ => Some(killed),
        };
        let conn = || gate().and_then(|g| probes.first_after(g));
        while (taken.get().is_none() || conn().is_none()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok((t0, conn().map(|t| t - t0), gate().map(|g| g - t0)))
    })();
    stop.store(true, Ordering::Relaxed);
    probes.stop.store(true, Ordering::Relaxed);
    join(w0)?;
    join(w1)?;
    for p in probers {
        join(p)?;
    }
    let (t0, conn, gate) = result?;
    let held = taken.get().copied();
    let mut note = format!(
        "{steady} probes in the 300 ms before; old active out of service after {}",
        ms(gate)
    );
    if f == Failover::PulseTerm {
        let status = procs[0].wait(Duration::from_secs(10)).map_err(e)?;
        let _ = write!(note, ", pulse exited {status}");
    }
    if held.is_none() || conn.is_none() {
        lab.dump_logs();
    }
    Ok(Sample {
        vip: held.map(|t| t.saturating_duration_since(t0)),
        conn,
        note,
    })
}

// ---------------------------------------------------------------------------------------
// No false failover under load; heartbeat gaps

/// Kernel timestamps (Unix seconds) of the heartbeats seen in the calling thread's namespace
/// (UDP from and to [`HEARTBEAT_PORT`]), captured with an AF_PACKET socket until `stop` or
/// `limit`: those received from `active`, and those `backup` sends (outgoing frames are
/// stamped when they leave), which show whether the backup's pulse itself ran on time.
fn capture_heartbeats(
    active: Ipv4Addr,
    backup: Ipv4Addr,
    stop: &AtomicBool,
    limit: Duration,
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let fd = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::EthAll,
    )
    .map_err(|e| format!("AF_PACKET socket: {e}"))?;
    setsockopt(&fd, sockopt::ReceiveTimestampns, &true)
        .map_err(|e| format!("SO_TIMESTAMPNS: {e}"))?;
    setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(0, 100_000))
        .map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
    let end = Instant::now() + limit;
    let (mut received, mut sent) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 2048];
    // Bounded by `limit`, and by the count: 20 heartbeats/s for MAX_WINDOW_S × 3 is far less.
    while !stop.load(Ordering::Relaxed)
        && Instant::now() < end
        && received.len() + sent.len() < 10_000_000
    {
        let mut cmsg = nix::cmsg_space!(TimeSpec);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let (n, ts) =
            match recvmsg::<()>(fd.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty()) {
                Ok(msg) => {
                    let ts = msg.cmsgs().ok().and_then(|mut c| {
                        c.find_map(|m| match m {
                            ControlMessageOwned::ScmTimestampns(t) => Some(t),
                            _ => None,
                        })
                    });
                    (msg.bytes, ts)
                }
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(e) => return Err(format!("recvmsg: {e}")),
            };
        let frame = &buf[..n.min(buf.len())];
        let (Some(ts), Some(src)) = (ts, heartbeat_source(frame)) else {
            continue;
        };
        // Seconds since 1970 fit an f64 to well under a microsecond.
        #[allow(clippy::cast_precision_loss)]
        let t = ts.tv_sec() as f64 + ts.tv_nsec() as f64 * 1e-9;
        if src == active {
            received.push(t);
        } else if src == backup {
            sent.push(t);
        }
    }
    Ok((received, sent))
}

/// The source address of an Ethernet frame carrying IPv4/UDP from and to
/// [`HEARTBEAT_PORT`].
fn heartbeat_source(frame: &[u8]) -> Option<Ipv4Addr> {
    let ip = frame.get(14..)?;
    if frame[12..14] != [0x08, 0x00] || ip.len() < 20 || ip[9] != 17 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let udp = ip.get(ihl..ihl + 4)?;
    let port = |i: usize| u16::from_be_bytes([udp[i], udp[i + 1]]);
    (port(0) == HEARTBEAT_PORT && port(2) == HEARTBEAT_PORT)
        .then(|| Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]))
}

#[derive(Debug, Default)]
struct Gaps {
    heartbeats: usize,
    median_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    over_deadtime: usize,
}

/// Gaps between the timestamps in `[from, to]`.
fn gaps(ts: &[f64], from: f64, to: f64) -> Gaps {
    let inside: Vec<f64> = ts
        .iter()
        .copied()
        .filter(|t| (from..=to).contains(t))
        .collect();
    let mut g: Vec<f64> = inside.windows(2).map(|w| (w[1] - w[0]) * 1e3).collect();
    g.sort_by(f64::total_cmp);
    let at = |q: f64| {
        // An index into a non-empty vector: rounding a fraction of its length.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let i = ((g.len() - 1) as f64 * q).round() as usize;
        g[i]
    };
    if g.is_empty() {
        return Gaps {
            heartbeats: inside.len(),
            ..Gaps::default()
        };
    }
    Gaps {
        heartbeats: inside.len(),
        median_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: g[g.len() - 1],
        over_deadtime: g.iter().filter(|&&x| x > DEADTIME_S * 1e3).count(),
    }
}

#[derive(Debug, Default)]
struct Load {
    /// Heartbeats the backup received from the active, idle and under load.
    idle: Gaps,
    loaded: Gaps,
    /// Heartbeats the backup sent, idle and under load.
    sent_idle: Gaps,
    sent_loaded: Gaps,
    /// Gaps over twice the keepalive, either stream, when they began.
    long_gaps: Vec<String>,
    idle_s: f64,
    load_s: f64,
    req_s: Option<f64>,
    /// CPU busy and steal, % of all CPUs, idle and loaded window.
    cpu_idle: (f64, f64),
    cpu_loaded: (f64, f64),
    role_changes: usize,
    backup_held_vip: usize,
    wrk: String,
}

/// (busy, steal, total) jiffies of all CPUs from `/proc/stat`.
fn cpu_jiffies() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    // idle and iowait are fields 4 and 5.
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    // steal is field 8 (time the hypervisor ran something else).
    (total - idle, v.get(7).copied().unwrap_or(0), total)
}

/// CPU busy and steal between two [`cpu_jiffies`] readings, % of all CPUs.
fn cpu_pct(a: (u64, u64, u64), b: (u64, u64, u64)) -> (f64, f64) {
    let total = b.2.saturating_sub(a.2).max(1);
    // Jiffy counts of an hour fit an f64 exactly.
    #[allow(clippy::cast_precision_loss)]
    let pct = |x: u64| x as f64 / total as f64 * 100.0;
    (pct(b.0.saturating_sub(a.0)), pct(b.1.saturating_sub(a.1)))
}

/// Gaps over `over_ms` in `ts` within `[from, to]`, as "HH:MM:SS.mmm UTC +N ms".
fn long_gaps(what: &str, ts: &[f64], from: f64, to: f64, over_ms: f64) -> Vec<String> {
    let inside: Vec<f64> = ts
        .iter()
        .copied()
        .filter(|t| (from..=to).contains(t))
        .collect();
    inside
        .windows(2)
        .filter(|w| (w[1] - w[0]) * 1e3 > over_ms)
        .map(|w| {
            // Seconds of a day, positive and below 86400: the casts cannot truncate.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let ms_of_day = ((w[0] % 86_400.0) * 1e3) as u64;
            format!(
                "{what} {:02}:{:02}:{:02}.{:03} UTC: {:.1} ms",
                ms_of_day / 3_600_000,
                ms_of_day / 60_000 % 60,
                ms_of_day / 1000 % 60,
                ms_of_day % 1000,
                (w[1] - w[0]) * 1e3
            )
        })
        .collect()
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Lines of a pulse log that are role changes.
fn role_changes(log: &str) -> usize {
    log.lines()
        .filter(|l| {
            l.contains(": activating")
                || l.contains(": deactivating")
                || l.contains("stepping down")
        })
        .count()
}

fn load_run(lab: &Lab, idle_s: u64, load_s: u64) -> Result<Load, String> {
    let e = |x: LabError| x.to_string();
    let _http = lab.start_http(80).map_err(e)?;
    let cf = lab.write_file("lvs.cf", &lvs_cf(lab)).map_err(e)?;
    let vip = lab.vip();
    let p0 = start_pulse(lab, D0, &cf).map_err(e)?;
    wait_for("director 0 holds the VIP", START_LIMIT, || {
        holds(lab, D0, "eth0:1", vip)
    })?;
    let p1 = start_pulse(lab, D1, &cf).map_err(e)?;
    wait_for("requests through the VIP succeed", START_LIMIT, || {
        requests_succeed(lab)
    })?;
    std::thread::sleep(Duration::from_millis(1500));
    if holds(lab, D1, "eth0:1", vip) {
        return Err("director 1 holds the VIP before the load".into());
    }
    let before = role_changes(&p0.log()) + role_changes(&p1.log());
    let stop = Arc::new(AtomicBool::new(false));
    let limit = Duration::from_secs(idle_s + load_s + 120);
    let (active, backup) = (lab.addr(D0), lab.addr(D1));
    let capture = {
        let stop = Arc::clone(&stop);
        in_netns(lab, D1, move || {
            capture_heartbeats(active, backup, &stop, limit)
        })
    };
    // Every instant at which the backup held the VIP (checked every 5 ms).
    let watcher = {
        let stop = Arc::clone(&stop);
        in_netns(lab, D1, move || {
            let end = Instant::now() + limit;
            let mut held = 0usize;
            while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                if local(vip) {
                    held += 1;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            held
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let c0 = cpu_jiffies();
    let idle_from = now_unix();
    std::thread::sleep(Duration::from_secs(idle_s));
    let idle_to = now_unix();
    let c1 = cpu_jiffies();
    let url = format!("http://{vip}/");
    let d = format!("{load_s}s");
    let c2 = cpu_jiffies();
    let load_from = now_unix();
    let out = lab
        .exec_timeout(
            C0,
            ["wrk", "-t2", "-c50", "-d", &d, &url],
            Duration::from_secs(load_s + 60),
        )
        .map_err(e);
    let load_to = now_unix();
    let c3 = cpu_jiffies();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (ts, sent) = join(capture)??;
    let held = join(watcher)?;
    let out = out?;
    let wrk = String::from_utf8_lossy(&out.stdout).into_owned();
    let after = role_changes(&p0.log()) + role_changes(&p1.log());
    let over = 2.0 * DEADTIME_S * 1e3 / 3.0; // twice the keepalive
    let mut long = long_gaps("received", &ts, idle_from, load_to, over);
    long.extend(long_gaps("sent", &sent, idle_from, load_to, over));
    long.truncate(40);
    Ok(Load {
        idle: gaps(&ts, idle_from, idle_to),
        loaded: gaps(&ts, load_from, load_to),
        sent_idle: gaps(&sent, idle_from, idle_to),
        sent_loaded: gaps(&sent, load_from, load_to),
        long_gaps: long,
        cpu_idle: cpu_pct(c0, c1),
        cpu_loaded: cpu_pct(c2, c3),
        idle_s: idle_to - idle_from,
        load_s: load_to - load_from,
        req_s: wrk
            .lines()
            .find_map(|l| l.strip_prefix("Requests/sec:"))
            .and_then(|v| v.trim().parse().ok()),
        role_changes: after - before,
        backup_held_vip: held,
        wrk: wrk
            .lines()
            .filter(|l| l.contains("Socket errors") || l.contains("requests in"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("; "),
    })
}

// ---------------------------------------------------------------------------------------
// Report

fn stats(v: &mut [f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    };
    Some((v[0], median, v[n - 1]))
}

fn report(
    opts: &Opts,
    rows: &[(Failover, Vec<Result<Sample, String>>)],
    load: Option<&Result<Load, String>>,
) -> String {
    let mut s = String::new();
    if !rows.is_empty() {
        let _ = writeln!(
            s,
            "\nlab-failover-bench: {} runs per scenario; client probes: {PROBERS} threads, a new \
             connection every {PROBE_EVERY:?} each, connect timeout {PROBE_CONNECT:?}\n",
            opts.runs
        );
        let _ = writeln!(
            s,
            "| scenario | runs ok | backup holds the VIP, ms (min / median / max) | first new connection, ms (min / median / max) | target |\n|---|---:|---|---|---|"
        );
        let fmt = |st: Option<(f64, f64, f64)>| {
            st.map_or_else(
                || "—".to_owned(),
                |(a, b, c)| format!("{a:.1} / **{b:.1}** / {c:.1}"),
            )
        };
        for (f, samples) in rows {
            let ok: Vec<&Sample> = samples.iter().filter_map(|r| r.as_ref().ok()).collect();
            let mut vip: Vec<f64> = ok
                .iter()
                .filter_map(|s| s.vip)
                .map(|d| d.as_secs_f64() * 1e3)
                .collect();
            let mut conn: Vec<f64> = ok
                .iter()
                .filter_map(|s| s.conn)
                .map(|d| d.as_secs_f64() * 1e3)
                .collect();
            let complete = ok
                .iter()
                .filter(|s| s.vip.is_some() && s.conn.is_some())
                .count();
            let _ = writeln!(
                s,
                "| {} | {complete}/{} | {} | {} | {} |",
                f.name(),
                samples.len(),
                fmt(stats(&mut vip)),
                fmt(stats(&mut conn)),
                f.target()
            );
        }
    }
    if let Some(load) = load {
        match load {
            Ok(l) => {
                let _ = writeln!(
                    s,
                    "\nno false failover under load (pulse {KEEPALIVE}/{DEADTIME}): idle {:.0} s (CPUs \
                     {:.0} % busy, {:.1} % stolen), then wrk -t2 -c50 for {:.0} s ({} req/s, CPUs \
                     {:.0} % busy, {:.1} % stolen; {})\n  role changes logged by either pulse: {}; \
                     backup seen holding the VIP: {} times (5 ms checks)\n",
                    l.idle_s,
                    l.cpu_idle.0,
                    l.cpu_idle.1,
                    l.load_s,
                    l.req_s.map_or("—".to_owned(), |r| format!("{r:.0}")),
                    l.cpu_loaded.0,
                    l.cpu_loaded.1,
                    l.wrk,
                    l.role_changes,
                    l.backup_held_vip
                );
                let _ = writeln!(
                    s,
                    "| heartbeats, captured in the backup's namespace | count | median gap, ms | p99 gap, ms | max gap, ms | gaps > deadtime |\n|---|---:|---:|---:|---:|---:|"
                );
                for (what, g) in [
                    ("received from the active, idle", &l.idle),
                    ("received from the active, under load", &l.loaded),
                    ("sent by the backup, idle", &l.sent_idle),
                    ("sent by the backup, under load", &l.sent_loaded),
                ] {
                    let _ = writeln!(
                        s,
                        "| {what} | {} | {:.1} | {:.1} | {:.1} | {} |",
                        g.heartbeats, g.median_ms, g.p99_ms, g.max_ms, g.over_deadtime
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(s, "\nload: failed: {e}");
                return s;
            }
        }
        if let Ok(l) = load
            && !l.long_gaps.is_empty()
        {
            let _ = writeln!(s, "\ngaps over twice the keepalive (when they began):");
            for g in &l.long_gaps {
                let _ = writeln!(s, "  {g}");
            }
        }
    }
    s
}
