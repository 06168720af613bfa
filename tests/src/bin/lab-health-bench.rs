//! `lab-health-bench`: what health checking costs, run by hand (never in CI).
//!
//! Builds a lab with one director and one real-server namespace that holds N addresses
//! (198.19.4.2 onwards, on-link through an extra /22 on the director's `eth1`), each one a
//! real server answering HTTP on port 80 (one `lab-http` on 0.0.0.0). lvsd runs an lvs.cf
//! with N real servers (services of 100 servers each, on ports 80, 81, …, `timeout = 1`,
//! so each nanny connects once a second), and so starts N nannies. Once every nanny has
//! reported, it measures over SECS seconds:
//!
//! - CPU: lvsd plus all nannies (every thread), from `/proc/PID/task/*/schedstat`, as % of
//!   one core;
//! - memory: PSS (shared pages split between the processes that map them) of lvsd plus all
//!   nannies, from `/proc/PID/smaps_rollup`; and a nanny's own (private) memory.
//!
//! Then it stops one real server's address (removes it) and measures how long lvsd takes to
//! take that server out (one probe interval plus its timeout is the target).
//!
//! Usage: `cargo build --release --workspace --bins && target/release/lab-health-bench [N] [SECS]`
//! (as root; defaults 1000 and 30).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use lvsd::control::api::ServerState;
use lvsd::control::client::Client;
use tests::lab::{Lab, Mode, Role};

const D0: Role = Role::Director(0);
const RS0: Role = Role::Real(0);
const PER_SERVICE: usize = 100;

fn rip(i: usize) -> std::net::Ipv4Addr {
    let n = u32::from(std::net::Ipv4Addr::new(198, 19, 4, 2)) + u32::try_from(i).unwrap_or(0);
    std::net::Ipv4Addr::from(n)
}

fn cf(lab: &Lab, n: usize) -> String {
    let mut cf = format!(
        "service = lvs\nprimary = {}\nnetwork = nat\nnat_router = {} eth1:1\n",
        lab.addr(D0),
        tests::lab::NAT_ROUTER
    );
    for (k, chunk) in (0..n).collect::<Vec<_>>().chunks(PER_SERVICE).enumerate() {
        cf.push_str(&format!(
            "virtual web{k} {{\n active = 1\n address = {} eth0:1\n port = {}\n \
             scheduler = wlc\n timeout = 1\n reentry = 1\n protocol = tcp\n",
            lab.vip(),
            80 + k
        ));
        for &i in chunk {
            cf.push_str(&format!(
                " server rs{i} {{\n  address = {}\n  port = 80\n  active = 1\n  weight = 1\n }}\n",
                rip(i)
            ));
        }
        cf.push_str("}\n");
    }
    cf
}

/// Nanoseconds on a CPU of every thread of `pid` (`/proc/PID/task/*/schedstat`, exact,
/// unlike the tick-sampled utime/stime, which a process that runs 50 µs a second rarely
/// gets charged for).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// `(Pss, Private_Clean + Private_Dirty)` in kB of `pid`.
fn memory_kb(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (
        field("Pss:"),
        field("Private_Clean:") + field("Private_Dirty:"),
    )
}

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

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
        .clamp(1, 1000);
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(30);
    if !tests::lab::privileged("lab-health-bench") {
        return ExitCode::FAILURE;
    }
    let result = Lab::builder().real_servers(Mode::Nat, 1).run(|lab| -> Result<(), String> {
        let e = |x: tests::lab::LabError| x.to_string();
        lab.ip(D0, ["addr", "add", "198.19.4.1/22", "dev", "eth1"]).map_err(e)?;
        let batch: String = (0..n)
            .map(|i| format!("addr add {}/22 dev eth0\n", rip(i)))
            .collect();
        let path = lab.write_file("addrs.batch", &batch).map_err(e)?;
        lab.ip(RS0, ["-batch", &path.to_string_lossy()]).map_err(e)?;
        let _http = lab.start_http(80).map_err(e)?;
        let mut lvsd = tests::lvsd::start_with_health(lab, &cf(lab, n)).map_err(e)?;
        let api = Client::new(tests::lvsd::socket_path(lab));
        let t0 = Instant::now();
        loop {
            let services = api.services().map_err(|x| x.to_string())?;
            let waiting = services
                .iter()
                .flat_map(|s| &s.servers)
                .filter(|s| s.reason == "not checked yet")
                .count();
            if waiting == 0 {
                break;
            }
            if t0.elapsed() > Duration::from_secs(120) {
                return Err(format!("{waiting} servers never reported"));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        println!("{n} nannies reported after {:?}", t0.elapsed());
        let lvsd_pid = lvsd.pid();
        let pids = || {
            let mut p = vec![lvsd_pid];
            p.extend(children(lvsd_pid));
            p
        };
        let ticks = |ps: &[u32]| ps.iter().map(|p| cpu_ns(*p)).sum::<u64>();
        let before = pids();
        let c0 = ticks(&before);
        let w0 = Instant::now();
        std::thread::sleep(Duration::from_secs(secs));
        let c1 = ticks(&before);
        let wall = w0.elapsed().as_secs_f64();
        let cpu = (c1.saturating_sub(c0)) as f64 / 1e9 / wall * 100.0;
        let procs = pids();
        let nannies: Vec<u32> = procs[1..].to_vec();
        let (lvsd_pss, lvsd_own) = memory_kb(lvsd_pid);
        let nanny_mem: Vec<(u64, u64)> = nannies.iter().map(|p| memory_kb(*p)).collect();
        let pss_total = lvsd_pss + nanny_mem.iter().map(|m| m.0).sum::<u64>();
        let own_avg = nanny_mem.iter().map(|m| m.1).sum::<u64>() as f64 / nanny_mem.len().max(1) as f64;
        println!(
            "CPU (lvsd + {} nannies, 1 s probes) over {wall:.1} s: {cpu:.2} % of one core",
            nannies.len()
        );
        println!(
            "PSS lvsd + nannies: {:.1} MiB (lvsd {:.1} MiB PSS, {:.1} MiB own); a nanny's own: {:.0} kB on average",
            pss_total as f64 / 1024.0,
            lvsd_pss as f64 / 1024.0,
            lvsd_own as f64 / 1024.0,
            own_avg
        );
        // Take one real server's address away: how long until lvsd takes it out?
        let victim = rip(n / 2);
        lab.ip(RS0, ["addr", "del", &format!("{victim}/22"), "dev", "eth0"]).map_err(e)?;
        let t0 = Instant::now();
        let service: lvsd::control::api::ServiceId =
            format!("tcp:{}:{}", lab.vip(), 80 + (n / 2) / PER_SERVICE).parse().map_err(|x: lvsd::control::api::BadServiceId| x.to_string())?;
        loop {
            let v = api.service(&service).map_err(|x| x.to_string())?;
            let gone = v.servers.iter().any(|s| *s.address.ip() == victim && s.state == ServerState::Down && !s.in_table);
            if gone {
                break;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                return Err("the dead server was never taken out".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        println!("a dead real server was out of the table after {:?} (interval 1 s + timeout 1 s)", t0.elapsed());
        let _ = lvsd.stop(Duration::from_secs(10));
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab-health-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
