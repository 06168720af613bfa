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
//! - **connection**: `t0` → the end of the first probe that got its HTTP 200 through the VIP
//!   and started once the old active could no longer serve (its daemons dead; after SIGTERM,
//!   once it had released the VIP): so through the backup's lvsd, with the client's and the
//!   real servers' ARP entries moved by the gratuitous ARPs.
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
//!   (default `0.1,1`); on the master keepalived's parent is stopped (SIGSTOP: it would
//!   respawn its VRRP child), then the VRRP child, the parent and lvsd are SIGKILLed, then
//!   everything left in its namespace. keepalived's GARPs: its defaults.
//! - `load`: the pulse pair (0.05 / 0.15) with the client saturating the VIP through the
//!   active director (`wrk -t2 -c50`, keep-alive) for `--load-s` seconds (default 60; the
//!   issue's target is 600), after an idle window of `--idle-s` seconds (default 30). An
//!   AF_PACKET capture in the backup's namespace takes the kernel's timestamp of every
//!   heartbeat received from the active and of every one the backup sends (which shows
//!   whether the backup's pulse itself ran on time), and the gaps are reported (median,
//!   p99, max, count over `deadtime`, and each gap over twice the keepalive with its time)
//!   for the idle and the loaded window, with the CPUs' busy and stolen time; role changes
//!   are counted from both pulses' logs (`activating`, `deactivating`, `stepping down`) and
//!   from a VIP watcher in the backup's namespace. Expected: none.
//!
//! Modules: `daemons` (the lvs.cf, starting and ending pulse, lvsd and keepalived), `probe`
//! (threads in the lab's namespaces: probes and VIP watchers; one failover run), `load` (the
//! load run: heartbeat capture and gaps), `report` (the table).
//!
//! Usage (as root): `bench/failover-bench.sh [ARGS]`, which installs keepalived and wrk and
//! builds in release mode, or `target/release/lab-failover-bench [--runs 10] [--only
//! kill,term,keepalived,load] [--adverts 0.1,1] [--load-s 60] [--idle-s 30]`.
//! It prints every run and a table (min / median / max). Every wait is bounded (a takeover
//! that does not happen within 10 s is a failed run, reported as such) and every lab is torn
//! down, also on failure.

mod daemons;
mod load;
mod probe;
mod report;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tests::lab::{Lab, Mode, Role};
use tests::tools::args::Args;

use crate::load::load_run;
use crate::probe::failover_run;
use crate::report::report;

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
