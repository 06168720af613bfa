//! `lab-demo`: the project's demo, `sudo ./demo` at the top of the repository (the script
//! builds the workspace if needed and runs this binary).
//!
//! ```text
//! lab-demo [--quick] [--cf etc/demo.cf]
//! ```
//!
//! A director pair fails over while traffic flows, in a throwaway lab of network namespaces
//! (a client, two directors, the real servers of the file; addresses from 198.18.0.0/15,
//! nothing configured outside the lab, the kernel's default veth offloads):
//!
//! 1. `lvsd --check -c etc/demo.cf`: the table both directors program. The lab's address
//!    plan is the file's (checked); the demo copies the file into the lab with a fresh
//!    `heartbeat_key` path and starts the real `pulse` on both directors with it (each starts
//!    its own `lvsd`, which starts its nannies). Director 0 takes the VIP, director 1 stands
//!    by, connection sync runs from 0 to 1.
//! 2. The client sends about 50 requests a second through the VIP, each on a new connection,
//!    and a slow download (`lab-conns stream`) runs on one long-lived connection. One line,
//!    refreshed in place, counts the answers per real server, the failures and the
//!    download's bytes.
//! 3. Director 0 dies: its `pulse` and `lvsd` are SIGKILLed (no goodbye heartbeat; the VIP
//!    stays configured on the dead host, as after a crash). Director 1 takes over after
//!    `deadtime`; the demo shows when it held the VIP, when requests were answered again,
//!    and that the download went on, every byte checked, no reset.
//! 4. The story the daemons' logs tell (role changes with reasons, addresses, gratuitous
//!    ARPs, sync), then a summary. The lab is torn down at the end, on any failure, and on
//!    SIGINT, SIGTERM or SIGHUP (Ctrl-C): every loop checks a flag that a signal thread sets.
//!
//! `--quick` shortens the traffic phases (the test `tests/tests/demo.rs` runs it). Exit 0
//! when the takeover happened, requests were answered after it and the download survived;
//! 1 otherwise (or when interrupted); 2 for bad arguments.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lvsd::control::api::EventsView;
use lvsd::lvscf::{Config, SystemLookup};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use tests::lab::{Lab, Mode, NAT_ROUTER, Proc, Role, ns_exists};
use tests::pair::{D0, D1, holds, only, requests_succeed, start_pulse, status, sync, write_key};
use tests::tools::conns::Stream;
use tests::tools::http::parse_hello;

const C0: Role = Role::Client(0);
const USAGE: &str = "usage: lab-demo [--quick] [--cf FILE]   (run as root; see ./demo)";
/// Bound for the pair's start (both lvsd attached, sync running).
const START_LIMIT: Duration = Duration::from_secs(40);
/// Bound for the takeover (not a performance target: deadtime is 1 s in etc/demo.cf).
const TAKEOVER_LIMIT: Duration = Duration::from_secs(15);
/// One request through the VIP every this often.
const REQUEST_EVERY: Duration = Duration::from_millis(20);
/// The download's pace.
const STREAM_KIBPS: u64 = 1024;
/// How often the progress line is redrawn.
const TICK: Duration = Duration::from_millis(200);
/// How often the demo looks at the lab (who holds the VIP, the download).
const POLL: Duration = Duration::from_millis(50);

/// Set by the signal thread; every loop of the demo checks it.
static STOP: AtomicBool = AtomicBool::new(false);

fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and so in every thread spawned after
/// it) and starts a thread that waits for them and sets [`STOP`]. Children do not inherit
/// the mask (std resets it when it spawns a process). Call before any other thread starts.
fn catch_signals() -> Result<(), String> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            if STOP.swap(true, Ordering::Relaxed) {
                eprintln!("\n{sig} again: still tearing the lab down, a few seconds");
            } else {
                eprintln!("\n{sig}: stopping; tearing the lab down");
            }
        }
    });
    Ok(())
}

#[derive(Debug)]
struct Opts {
    quick: bool,
    cf: PathBuf,
}

impl Opts {
    fn parse() -> Result<Opts, String> {
        let mut o = Opts {
            quick: false,
            cf: Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/demo.cf"),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => o.quick = true,
                "--cf" => o.cf = args.next().ok_or("--cf needs a file")?.into(),
                "-h" | "--help" => return Err(String::new()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(o)
    }

    /// Traffic before the kill, and after requests are answered again.
    fn phases(&self) -> (Duration, Duration) {
        if self.quick {
            (Duration::from_secs(3), Duration::from_secs(3))
        } else {
            (Duration::from_secs(6), Duration::from_secs(6))
        }
    }

    /// Bytes of the download: it lasts the whole show and a little more.
    fn stream_bytes(&self) -> u64 {
        let (before, after) = self.phases();
        let secs = before.as_secs() + after.as_secs() + 4;
        secs * STREAM_KIBPS * 1024
    }
}

/// Seconds since the demo started, for the left margin.
#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
    /// The start as Unix seconds (to place the daemons' log lines).
    epoch: f64,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            start: Instant::now(),
            epoch: now_unix(),
        }
    }

    fn stamp(self) -> String {
        format!("[{:5.1}s]", self.start.elapsed().as_secs_f64())
    }

    fn say(self, text: &str) {
        println!("{} {text}", self.stamp());
    }
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn main() -> ExitCode {
    let opts = match Opts::parse() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("lab-demo: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !tests::lab::privileged("lab-demo") {
        eprintln!("lab-demo builds network namespaces: run it as root (sudo ./demo)");
        return ExitCode::FAILURE;
    }
    if let Err(e) = catch_signals() {
        eprintln!("lab-demo: {e}");
        return ExitCode::FAILURE;
    }
    let clock = Clock::new();
    let cfg = match check_cf(&opts.cf, clock) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lab-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let servers = cfg
        .active_virtuals()
        .next()
        .map_or(0, |v| v.active_servers().count());
    if stopped() {
        eprintln!("lab-demo: interrupted");
        return ExitCode::FAILURE;
    }
    println!();
    clock.say("building the lab: network namespaces for a client, two directors, the real servers, a switch");
    let lab = match Lab::builder()
        .clients(1)
        .directors(2)
        .floating_on(None)
        .real_servers(Mode::Nat, servers)
        .build()
    {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("lab-demo: cannot build the lab: {e}");
            return ExitCode::FAILURE;
        }
    };
    let namespaces: Vec<String> = lab.hosts().iter().map(|h| h.ns.clone()).collect();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        demo(&lab, &cfg, &opts, clock)
    }));
    let result = match result {
        Ok(r) => r,
        Err(_) => Err("the demo panicked (the logs are above)".to_owned()),
    };
    if result.is_err() && !stopped() {
        lab.dump_logs();
    }
    let id = lab.id().to_owned();
    drop(lab);
    let left: Vec<&String> = namespaces.iter().filter(|n| ns_exists(n)).collect();
    println!();
    if left.is_empty() {
        clock.say(&format!(
            "lab {id} torn down: its {} namespaces and every process in them are gone",
            namespaces.len()
        ));
    } else {
        clock.say(&format!("lab {id}: namespaces left behind: {left:?}"));
    }
    match result {
        Ok(true) if left.is_empty() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("lab-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `lvsd --check -c FILE` (printed), then the file parsed.
fn check_cf(cf: &Path, clock: Clock) -> Result<Config, String> {
    let lvsd = tests::bin("lvsd");
    let shown = cf
        .strip_prefix(std::env::current_dir().unwrap_or_default())
        .unwrap_or(cf);
    clock.say(&format!(
        "lvsd --check -c {}: the IPVS table both directors will program",
        shown.display()
    ));
    let out = Command::new(&lvsd)
        .arg("--check")
        .arg("-c")
        .arg(cf)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", lvsd.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim_end().to_owned());
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("          {line}");
    }
    lvsd::lvscf::load(cf, &SystemLookup::default()).map_err(|e| e.to_string())
}

/// The file's addresses checked against the lab's plan; the real servers' names and ports.
#[derive(Debug)]
struct Plan {
    vip: SocketAddrV4,
    servers: Vec<(String, Role, u16)>,
}

fn plan(lab: &Lab, cfg: &Config) -> Result<Plan, String> {
    let g = &cfg.global;
    let v = cfg
        .active_virtuals()
        .next()
        .ok_or("the file has no active virtual service")?;
    let vip = v
        .address
        .as_ref()
        .ok_or("the virtual service has no address")?
        .addr;
    let want = [
        ("primary", g.primary, lab.addr(D0)),
        ("backup", g.backup, lab.addr(D1)),
        ("the virtual service's address", vip, lab.vip()),
        (
            "nat_router",
            g.nat_router
                .as_ref()
                .map_or(Ipv4Addr::UNSPECIFIED, |a| a.addr),
            NAT_ROUTER,
        ),
    ];
    for (what, file, lab_addr) in want {
        if file != lab_addr {
            return Err(format!(
                "{what} is {file} in the file, but the demo's lab puts it at {lab_addr} \
                 (the lab's address plan is etc/demo.cf's)"
            ));
        }
    }
    let mut servers = Vec::new();
    for (s, rs) in v.active_servers().zip(lab.real_servers()) {
        if s.address != lab.addr(rs) {
            return Err(format!(
                "real server {} is {} in the file, but the lab's next NAT real server is {}",
                s.name,
                s.address,
                lab.addr(rs)
            ));
        }
        let port = if s.port == 0 { v.port } else { s.port };
        servers.push((s.name.clone(), rs, port));
    }
    Ok(Plan {
        vip: SocketAddrV4::new(vip, v.port),
        servers,
    })
}

/// The file with the heartbeat key's path replaced by a fresh key in the lab's directory.
fn lab_cf(lab: &Lab, cf: &Path) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(cf).map_err(|e| format!("{}: {e}", cf.display()))?;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    let key = write_key(lab, "pulse.key", &key);
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("heartbeat_key") {
            out.push_str(&format!("heartbeat_key = {}\n", key.display()));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    lab.write_file("lvs.cf", &out).map_err(|e| e.to_string())
}

/// Waits for `cond` (every 50 ms) at most `within`; `Err` when it does not come or when a
/// signal stops the demo.
fn wait(what: &str, within: Duration, mut cond: impl FnMut() -> bool) -> Result<(), String> {
    let end = Instant::now() + within;
    loop {
        if stopped() {
            return Err("interrupted".to_owned());
        }
        if cond() {
            return Ok(());
        }
        if Instant::now() >= end {
            return Err(format!("{what}: not within {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The demo proper; `Ok(true)` when everything it shows went as it should.
fn demo(lab: &Lab, cfg: &Config, opts: &Opts, clock: Clock) -> Result<bool, String> {
    let plan = plan(lab, cfg)?;
    let g = &cfg.global;
    println!(
        "          client     c0  {}\n          director 0 d0  {} (primary; {} on the private side)\n          \
         director 1 d1  {} (backup;  {} on the private side)",
        lab.addr(C0),
        lab.addr(D0),
        lab.host(D0).ifaces[1].addr,
        lab.addr(D1),
        lab.host(D1).ifaces[1].addr,
    );
    for (name, rs, port) in &plan.servers {
        println!("          real server {name:<5}  {}:{port}", lab.addr(*rs));
    }
    println!(
        "          VIP {} (pulse puts it on eth0:1), gateway {NAT_ROUTER} (eth1:1); \
         heartbeat every {} s, deadtime {} s",
        plan.vip,
        g.keepalive.as_secs_f64(),
        g.deadtime.as_secs_f64()
    );

    let _http = start_servers(lab, &plan)?;
    let cf = lab_cf(lab, &opts.cf)?;
    clock.say("starting pulse on both directors (each starts its own lvsd, which starts a nanny per real server)");
    // One after the other, as an operator would: director 0 finds no partner and takes
    // the addresses after `deadtime`; director 1 then hears it active and stands by.
    let p0 = start_pulse(lab, D0, &cf, &[]);
    wait("director 0 holds the VIP", START_LIMIT, || holds(lab, D0))?;
    let _p1 = start_pulse(lab, D1, &cf, &[]);
    wait(
        "director 1 answers its API, standing by",
        START_LIMIT,
        || status(lab, D1).is_some() && only(lab, D0),
    )?;
    wait("requests through the VIP succeed", START_LIMIT, || {
        requests_succeed(lab, C0)
    })?;
    wait(
        "sync runs: director 0 streams, director 1 listens",
        START_LIMIT,
        || {
            sync(lab, D0).is_some_and(|v| v.enabled && v.streaming)
                && sync(lab, D1).is_some_and(|v| v.enabled && !v.streaming)
        },
    )?;
    let s0 = sync(lab, D0).unwrap_or_default();
    clock.say(&format!(
        "director 0 is ACTIVE (holds {} on eth0:1 and {NAT_ROUTER} on eth1:1); director 1 stands by; \
         connection sync {} → {}",
        plan.vip.ip(),
        s0.local.map_or("?".to_owned(), |a| a.to_string()),
        s0.peer.map_or("?".to_owned(), |a| a.to_string()),
    ));

    // Traffic and the long-lived connection.
    let traffic = Traffic::start(lab, &plan);
    let stream = start_stream(lab, &plan, opts.stream_bytes())?;
    println!();
    clock.say(&format!(
        "traffic: a new connection to {} every {} ms, and one slow download ({} MiB at {} KiB/s) on one long-lived connection",
        plan.vip,
        REQUEST_EVERY.as_millis(),
        opts.stream_bytes() >> 20,
        STREAM_KIBPS
    ));
    let (before, after) = opts.phases();
    let mut progress = Progress::new(clock, &traffic, &stream, opts.stream_bytes());
    let mut held: Option<String> = None;
    let end = Instant::now() + before;
    while Instant::now() < end || held.is_none() {
        if stopped() {
            progress.finish();
            return Err("interrupted".to_owned());
        }
        if held.is_none() {
            held = synced_download(lab, &plan);
            if let Some(h) = &held {
                progress.note(h);
            }
            if held.is_none() && Instant::now() > end + Duration::from_secs(10) {
                progress.finish();
                return Err("director 1 never showed the download's connection".to_owned());
            }
        }
        progress.draw("d0 active");
        std::thread::sleep(POLL);
    }

    // The kill, of the director that alone holds the VIP (a false takeover under load
    // would have been resolved by now: the primary wins).
    wait("director 0 alone holds the VIP", TAKEOVER_LIMIT, || {
        only(lab, D0)
    })?;
    let lvsd = children(p0.pid())
        .into_iter()
        .find(|c| comm(*c).as_deref() == Some("lvsd"))
        .ok_or("director 0's pulse has no lvsd child")?;
    kill(lvsd)?;
    p0.signal("KILL").map_err(|e| e.to_string())?;
    let killed = Instant::now();
    let killed_unix = now_unix();
    let stream_at_kill = stream.bytes();
    progress.note(&format!(
        "KILL: SIGKILL to director 0's pulse (pid {}) and lvsd (pid {lvsd}): no goodbye, the VIP stays on the dead host",
        p0.pid()
    ));
    let mut took: Option<Duration> = None;
    let mut answered: Option<Duration> = None;
    let mut after_end: Option<Instant> = None;
    loop {
        if stopped() {
            progress.finish();
            return Err("interrupted".to_owned());
        }
        if took.is_none() && holds(lab, D1) {
            let t = killed.elapsed();
            took = Some(t);
            progress.note(&format!(
                "TAKEOVER: director 1 holds the VIP {:.2} s after the kill",
                t.as_secs_f64()
            ));
        }
        if answered.is_none()
            && let Some(t) = traffic.first_ok_after(killed)
        {
            let d = t - killed;
            answered = Some(d);
            after_end = Some(Instant::now() + after);
            progress.note(&format!(
                "requests answered again {:.2} s after the kill",
                d.as_secs_f64()
            ));
        }
        let state = match took {
            Some(_) => "d1 ACTIVE",
            None => "d0 DEAD",
        };
        progress.draw(state);
        if took.is_some() && after_end.is_some_and(|e| Instant::now() >= e) {
            break;
        }
        if took.is_none() && killed.elapsed() > TAKEOVER_LIMIT {
            progress.finish();
            return Err(format!(
                "director 1 did not take the VIP within {TAKEOVER_LIMIT:?}"
            ));
        }
        std::thread::sleep(POLL);
    }
    let stream_at_end = stream.bytes();
    let totals = traffic.stop();
    progress.finish();

    // The download's end.
    clock.say("letting the download finish");
    let report = stream.finish(Duration::from_secs(60))?;
    let role1 = status(lab, D1).map(|s| s.role.to_string());
    let streams1 = sync(lab, D1).is_some_and(|v| v.streaming);
    let why = tests::pair::client(lab, D1)
        .call::<(), EventsView>("GET", "/v1/events", None)
        .ok()
        .and_then(|e| e.last_takeover)
        .map_or(String::new(), |t| {
            format!("; its last takeover (GET /v1/events): {:?}", t.text)
        });
    clock.say(&format!(
        "director 1's lvsd: role {}, {} sync{why}",
        role1.as_deref().unwrap_or("?"),
        if streams1 {
            "streams"
        } else {
            "does not stream"
        }
    ));

    println!();
    clock.say(
        "the story in the daemons' logs (d0, d1: the directors' pulse and the lvsd it runs; \
         times on the demo's clock):",
    );
    story(lab, clock, killed_unix);

    let took = took.unwrap_or_default();
    let survived = report.complete() && stream_at_end > stream_at_kill;
    let per_server: Vec<String> = plan
        .servers
        .iter()
        .zip(&totals.per_server)
        .map(|((n, _, _), c)| format!("{n} {c}"))
        .collect();
    println!();
    println!("== Summary");
    println!(
        "   takeover    director 1 active {:.2} s after director 0 died (deadtime {} s from the last heartbeat heard); requests answered again after {:.2} s",
        took.as_secs_f64(),
        g.deadtime.as_secs_f64(),
        answered.unwrap_or_default().as_secs_f64()
    );
    if survived {
        println!(
            "   connection  the download survived: {:.1} MiB from {} on one TCP connection, every byte checked, no reset; longest pause {:.2} s",
            mib(report.bytes),
            report.server,
            ms_to_s(report.max_stall_ms)
        );
    } else {
        println!(
            "   connection  the download BROKE: {} of {} bytes from {}, error {:?}, corrupt at {:?}",
            report.bytes, report.want, report.server, report.error, report.corrupt_at
        );
    }
    // A request that started in the gap may give up up to 1.25 s after the answers resumed.
    let resumed = killed + answered.unwrap_or_default() + Duration::from_millis(1300);
    let (before_kill, during, after_resume) = traffic.failures(killed, resumed);
    let failures = if totals.failed == 0 {
        "none failed".to_owned()
    } else if before_kill + after_resume == 0 {
        format!("{} failed, all in the takeover's gap", totals.failed)
    } else {
        format!(
            "{} failed: {before_kill} before the kill, {during} in the takeover's gap, {after_resume} after it",
            totals.failed
        )
    };
    println!(
        "   traffic     {} requests answered ({}); {failures}",
        totals.per_server.iter().sum::<u64>(),
        per_server.join(", "),
    );
    Ok(survived && answered.is_some())
}

#[allow(clippy::cast_precision_loss)]
fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

#[allow(clippy::cast_precision_loss)]
fn ms_to_s(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// `lab-http` on every real server of the plan, on the file's port.
fn start_servers<'l>(lab: &'l Lab, plan: &Plan) -> Result<Vec<Proc<'l>>, String> {
    let http = tests::bin("lab-http").to_string_lossy().into_owned();
    let mut procs = Vec::new();
    for (name, rs, port) in &plan.servers {
        let listen = format!("0.0.0.0:{port}");
        let mut p = lab
            .spawn(
                *rs,
                [
                    http.as_str(),
                    "--name",
                    name,
                    "--listen",
                    &listen,
                    "--max-conns",
                    "3000",
                ],
            )
            .map_err(|e| e.to_string())?;
        p.wait_for_log("ready", Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        procs.push(p);
    }
    Ok(procs)
}

/// The download through the VIP, `lab-conns stream`.
struct Download<'l> {
    proc: Mutex<Proc<'l>>,
    log: PathBuf,
}

fn start_stream<'l>(lab: &'l Lab, plan: &Plan, bytes: u64) -> Result<Download<'l>, String> {
    let conns = tests::bin("lab-conns").to_string_lossy().into_owned();
    let to = plan.vip.to_string();
    let (n, rate) = (bytes.to_string(), STREAM_KIBPS.to_string());
    let mut p = lab
        .spawn(
            C0,
            [
                conns.as_str(),
                "stream",
                "--to",
                &to,
                "--bytes",
                &n,
                "--rate-kbps",
                &rate,
            ],
        )
        .map_err(|e| e.to_string())?;
    p.wait_for_log("started", Duration::from_secs(20))
        .map_err(|e| e.to_string())?;
    let log = p.log_path().to_path_buf();
    Ok(Download {
        proc: Mutex::new(p),
        log,
    })
}

impl Download<'_> {
    fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Bytes received so far (its last `progress` line).
    fn bytes(&self) -> u64 {
        let log = self.log();
        if let Some(s) = Stream::parse(&log) {
            return s.bytes;
        }
        log.lines()
            .rev()
            .find_map(|l| l.strip_prefix("progress ")?.trim().parse().ok())
            .unwrap_or(0)
    }

    fn finish(&self, within: Duration) -> Result<Stream, String> {
        let mut p = self.proc.lock().map_err(|_| "download lock")?;
        wait("the download ends", within, || p.exited().is_some())?;
        Stream::parse(&p.log()).ok_or_else(|| format!("no download report:\n{}", p.log()))
    }
}

/// Whether director 1 holds the download's connection (synced from director 0): a line
/// saying so, or `None` yet.
fn synced_download(lab: &Lab, plan: &Plan) -> Option<String> {
    // The client's side of the connection, from `ss` in the client's namespace.
    let dport = format!("dport = :{}", plan.vip.port());
    let ss = lab
        .run(C0, ["ss", "-tnpH", "state", "established", &dport])
        .ok()?;
    let local: SocketAddrV4 = ss
        .lines()
        .filter(|l| l.contains("\"lab-conns\""))
        .find_map(|l| l.split_whitespace().find_map(|w| w.parse().ok()))?;
    let conn = tests::pair::connections(lab, D1)?
        .into_iter()
        .find(|c| c.client == local && c.state == "ESTABLISHED")?;
    let name = plan
        .servers
        .iter()
        .find(|(_, rs, _)| lab.addr(*rs) == *conn.server.ip())
        .map_or("?", |(n, _, _)| n.as_str());
    Some(format!(
        "SYNCED: director 1 (standby) holds the download's connection {} → {} → {name} {}, {}",
        conn.client, conn.vaddr, conn.server, conn.state
    ))
}

/// Requests through the VIP from a thread in the client's namespace.
struct Traffic {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Shared {
    names: Vec<String>,
    per_server: Vec<AtomicU64>,
    failed: AtomicU64,
    /// When each failed request gave up.
    fails: Mutex<Vec<Instant>>,
    /// Start and end of every answered request.
    oks: Mutex<Vec<(Instant, Instant)>>,
    stop: AtomicBool,
}

#[derive(Debug)]
struct Totals {
    per_server: Vec<u64>,
    failed: u64,
}

impl Traffic {
    fn start(lab: &Lab, plan: &Plan) -> Traffic {
        let shared = Arc::new(Shared {
            names: plan.servers.iter().map(|(n, _, _)| n.clone()).collect(),
            per_server: plan.servers.iter().map(|_| AtomicU64::new(0)).collect(),
            ..Shared::default()
        });
        let s = Arc::clone(&shared);
        let ns = lab.ns_path(C0);
        let to = SocketAddr::V4(plan.vip);
        let thread = std::thread::spawn(move || {
            let entered = std::fs::File::open(&ns)
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    nix::sched::setns(&f, CloneFlags::CLONE_NEWNET).map_err(|e| e.to_string())
                });
            if let Err(e) = entered {
                eprintln!("lab-demo: cannot enter the client's namespace: {e}");
                return;
            }
            // Bounded: the demo stops it, and it stops itself after 5 minutes.
            let end = Instant::now() + Duration::from_secs(300);
            while !s.stop.load(Ordering::Relaxed) && !stopped() && Instant::now() < end {
                let start = Instant::now();
                match request(to) {
                    Ok(server) => {
                        if let Some(i) = s.names.iter().position(|n| *n == server) {
                            s.per_server[i].fetch_add(1, Ordering::Relaxed);
                        }
                        s.oks
                            .lock()
                            .map(|mut v| v.push((start, Instant::now())))
                            .ok();
                    }
                    Err(_) => {
                        s.failed.fetch_add(1, Ordering::Relaxed);
                        s.fails.lock().map(|mut v| v.push(Instant::now())).ok();
                    }
                }
                if let Some(rest) = (start + REQUEST_EVERY).checked_duration_since(Instant::now()) {
                    std::thread::sleep(rest);
                }
            }
        });
        Traffic {
            shared,
            thread: Mutex::new(Some(thread)),
        }
    }

    fn totals(&self) -> Totals {
        Totals {
            per_server: self
                .shared
                .per_server
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            failed: self.shared.failed.load(Ordering::Relaxed),
        }
    }

    /// End of the first request answered that started after `t`.
    fn first_ok_after(&self, t: Instant) -> Option<Instant> {
        let oks = self.shared.oks.lock().ok()?;
        oks.iter().find(|(s, _)| *s >= t).map(|(_, e)| *e)
    }

    /// Failed requests that gave up before `t`, up to `u`, and after `u`.
    fn failures(&self, t: Instant, u: Instant) -> (usize, usize, usize) {
        let Ok(fails) = self.shared.fails.lock() else {
            return (0, 0, 0);
        };
        let before = fails.iter().filter(|f| **f < t).count();
        let during = fails.iter().filter(|f| (t..=u).contains(*f)).count();
        (before, during, fails.len() - before - during)
    }

    fn stop(&self) -> Totals {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
        self.totals()
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One request on a new connection; the name of the real server that answered.
fn request(to: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_millis(250))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.set_write_timeout(Some(Duration::from_secs(1)))?;
    s.set_nodelay(true)?;
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    s.take(64 * 1024).read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no complete answer"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other("not 200"));
    }
    parse_hello(body)
        .map(|(server, _)| server)
        .ok_or_else(|| std::io::Error::other("not lab-http's answer"))
}

/// The terminal's width (`stty size` on /dev/tty), 80 when unknown.
fn columns() -> usize {
    std::fs::File::open("/dev/tty")
        .ok()
        .and_then(|tty| Command::new("stty").arg("size").stdin(tty).output().ok())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .filter(|&c| c > 20)
        .unwrap_or(80)
}

/// The progress line: refreshed in place on a terminal, a line every 2 s otherwise.
struct Progress<'a> {
    clock: Clock,
    traffic: &'a Traffic,
    stream: &'a Download<'a>,
    want: u64,
    tty: bool,
    drawn: bool,
    /// The terminal's width.
    cols: usize,
    last_draw: Option<Instant>,
    last_plain: Option<Instant>,
}

impl<'a> Progress<'a> {
    fn new(clock: Clock, traffic: &'a Traffic, stream: &'a Download<'a>, want: u64) -> Self {
        Self {
            clock,
            traffic,
            stream,
            want,
            tty: std::io::stdout().is_terminal(),
            drawn: false,
            cols: columns(),
            last_draw: None,
            last_plain: None,
        }
    }

    fn line(&self, state: &str) -> String {
        let t = self.traffic.totals();
        let servers: Vec<String> = self
            .traffic
            .shared
            .names
            .iter()
            .zip(&t.per_server)
            .map(|(n, c)| format!("{n} {c:>3}"))
            .collect();
        format!(
            "{} {state:<9}  {}  failed {}  download {:.1}/{:.0} MiB",
            self.clock.stamp(),
            servers.join(" "),
            t.failed,
            mib(self.stream.bytes()),
            mib(self.want),
        )
    }

    fn draw(&mut self, state: &str) {
        if self.last_draw.is_some_and(|t| t.elapsed() < TICK) {
            return;
        }
        self.last_draw = Some(Instant::now());
        let line = self.line(state);
        if self.tty {
            // Cut to the terminal's width: a wrapped line would not redraw in place.
            let line: String = line.chars().take(self.cols.saturating_sub(1)).collect();
            print!("\r\x1b[K{line}");
            self.drawn = true;
        } else if self
            .last_plain
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
        {
            println!("{line}");
            self.last_plain = Some(Instant::now());
        }
        let _ = std::io::stdout().flush();
    }

    /// A line of its own above the progress line.
    fn note(&mut self, text: &str) {
        if self.tty && self.drawn {
            print!("\r\x1b[K");
        }
        self.clock.say(text);
        self.drawn = false;
    }

    fn finish(&mut self) {
        if self.tty && self.drawn {
            println!();
        }
        self.drawn = false;
    }
}

/// Pids of the children of `pid`, from `/proc/*/stat`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

fn kill(pid: u32) -> Result<(), String> {
    let p = nix::unistd::Pid::from_raw(i32::try_from(pid).map_err(|e| e.to_string())?);
    nix::sys::signal::kill(p, Signal::SIGKILL).map_err(|e| format!("SIGKILL {pid}: {e}"))
}

/// The lines of both pulses' logs (their lvsds' included: pulse passes its stderr on) that
/// tell the story, merged in time order, on the demo's clock; `killed` marks the kill.
fn story(lab: &Lab, clock: Clock, killed: f64) {
    let mut lines: Vec<(f64, String)> = Vec::new();
    for d in [D0, D1] {
        let log = lab.log_of(d, "pulse").unwrap_or_default();
        let mut last = String::new();
        for line in log.lines() {
            let Some((t, text)) = entry(line) else {
                continue;
            };
            let (who, text) = match text.split_once(": ") {
                Some((target, rest)) if target.starts_with("pulse::") => ("pulse", rest),
                _ => ("lvsd ", text),
            };
            if !interesting(text) || text == last {
                continue;
            }
            last = text.to_owned();
            lines.push((
                t - clock.epoch,
                format!(
                    "d{} {who}  {}",
                    d.short().trim_start_matches('d'),
                    terse(text)
                ),
            ));
        }
    }
    lines.push((
        killed - clock.epoch,
        "---- the demo SIGKILLs director 0's pulse and lvsd ----".to_owned(),
    ));
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (t, text) in lines {
        println!("   [{t:5.2}s] {text}");
    }
}

/// `(Unix seconds, text after the level)` of a log line
/// `2026-12-06T20:37:00.575729Z  INFO pulse::daemon: text`; the level is kept unless INFO.
fn entry(line: &str) -> Option<(f64, &str)> {
    let (stamp, rest) = line.split_once(' ')?;
    let t = unix_seconds(stamp)?;
    let rest = rest.trim_start();
    let text = rest.strip_prefix("INFO ").map_or(rest, str::trim_start);
    Some((t, text))
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` as Unix seconds.
fn unix_seconds(stamp: &str) -> Option<f64> {
    let stamp = stamp.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':');
    let (h, mi) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    // Whole seconds since 1970 fit an f64 exactly.
    #[allow(clippy::cast_precision_loss)]
    let whole = (days * 86_400 + h * 3600 + mi * 60) as f64;
    Some(whole + sec)
}

/// Drops the structured fields an operator does not need in the story.
fn terse(text: &str) -> String {
    const NOISE: &[&str] = &[
        "session=",
        "transport=",
        "local=",
        "peer=",
        "from=",
        "socket=",
        "services=",
        "prefix_len=",
        "syncd_id=",
        "ms=",
        "pid=",
        "service=",
        "rs=",
        "weight=",
        "role=",
        "table=",
    ];
    text.split(' ')
        .filter(|w| !NOISE.iter().any(|n| w.starts_with(n)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a log line belongs in the story.
fn interesting(text: &str) -> bool {
    const WORDS: &[&str] = &[
        "STARTING",
        "activating",
        "stepping down",
        "partner",
        "floating address",
        "gratuitous",
        "lvsd is now",
        "connection sync",
        "forwarding",
        "real server",
        "kernel-side guard",
        "WARN",
        "ERROR",
    ];
    // The resync's conversation (its result stays), and the API's complaints about
    // clients that hang up early.
    const CHATTER: &[&str] = &[
        "asking the partner for its table",
        "the partner asks for our table",
        "answered the partner's resync request",
        "control API:",
    ];
    WORDS.iter().any(|w| text.contains(w)) && !CHATTER.iter().any(|w| text.contains(w))
}
