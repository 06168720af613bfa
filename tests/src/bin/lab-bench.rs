//! `lab-bench`: the forwarding benchmark, run by hand (never in CI).
//!
//! Builds a lab (one client, one director, three real servers), then measures through the
//! VIP, in one run and on the same machine:
//!
//! - HTTP requests/s with keep-alive (`wrk`),
//! - new connections/s (`wrk` with `Connection: close`),
//! - single-stream TCP throughput (`iperf3`, to one real server),
//!
//! for each candidate: the plain routed path with no balancing (the ceiling: the client talks
//! to a real server through the director acting as a router), nftables DNAT in the kernel
//! (the same round robin), HAProxy in TCP mode, and this project's engine (`lvsd`) in NAT and
//! in direct-routing mode. It prints a table and the ratios. A candidate that cannot run
//! (a tool missing, `lvsd` refusing) is reported as skipped with the reason, never as zero.
//!
//! Usage: `bench/lab-bench.sh` (installs wrk, iperf3, haproxy and nftables, builds in
//! release mode and runs this), or `cargo run --release -p tests --bin lab-bench -- [SECS]`.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;

use tests::lab::{Lab, LabError, Mode, Proc, Role};

/// Port of the HTTP service behind the VIP.
const HTTP: u16 = 80;
/// Port of the iperf3 service behind the VIP (one real server only).
const IPERF: u16 = 5201;
/// What lvsd prints once it forwards (see `lvsd`'s start-up log).
const LVSD_READY: &str = "lvsd: forwarding";
/// wrk connections and threads.
const CONNS: &str = "50";

/// What is measured through the VIP.
#[derive(Debug, Clone, Copy)]
enum Candidate {
    /// No balancing: straight to one real server through the director as a router.
    Routed,
    /// nftables DNAT with numgen round robin.
    Nft,
    /// HAProxy in TCP mode.
    Haproxy,
    /// lvsd with this `network`.
    Lvsd(&'static str),
}

#[derive(Debug, Default, Clone)]
struct Figures {
    req_s: Option<f64>,
    conn_s: Option<f64>,
    gbit_s: Option<f64>,
    note: String,
}

fn main() -> ExitCode {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    if !tests::lab::privileged("lab-bench") {
        return ExitCode::FAILURE;
    }
    for tool in ["wrk", "iperf3", "haproxy", "nft"] {
        if which(tool).is_none() {
            eprintln!("lab-bench: `{tool}` not found; run bench/lab-bench.sh, which installs it");
            return ExitCode::FAILURE;
        }
    }
    // Every candidate gets a fresh lab, so that none inherits another's sockets in
    // TIME_WAIT, conntrack entries or warmed caches. LAB_BENCH_ONLY=lvsd measures only lvsd
    // (quick experiments on the engine).
    let only_lvsd = std::env::var("LAB_BENCH_ONLY").is_ok_and(|v| v == "lvsd");
    let mut rows: Vec<(&str, Figures)> = Vec::new();
    let candidates: [(&str, Mode, Candidate); 5] = [
        ("routed (ceiling)", Mode::Nat, Candidate::Routed),
        ("nftables DNAT", Mode::Nat, Candidate::Nft),
        ("HAProxy (tcp mode)", Mode::Nat, Candidate::Haproxy),
        ("lvsd NAT", Mode::Nat, Candidate::Lvsd("nat")),
        ("lvsd DR", Mode::Dr, Candidate::Lvsd("direct")),
    ];
    for (name, mode, candidate) in candidates {
        if only_lvsd && !matches!(candidate, Candidate::Lvsd(_)) {
            continue;
        }
        let figures = Lab::builder()
            .directors(1)
            .real_servers(mode, 3)
            .offloads(false)
            .run(|lab| -> Result<Figures, LabError> {
                let _http = lab.start_http(HTTP)?;
                let _iperf = lab.spawn(Role::Real(0), ["iperf3", "-s", "-p", "5201"])?;
                std::thread::sleep(Duration::from_millis(300));
                Ok(match candidate {
                    Candidate::Routed => {
                        // The client reaches a real server through the director as a router.
                        let via = lab.addr(Role::Director(0)).to_string();
                        let private = format!("{}/24", tests::lab::PRIVATE_NET);
                        lab.ip(Role::Client(0), ["route", "replace", &private, "via", &via])?;
                        measure(lab, lab.addr(Role::Real(0)), secs)
                    }
                    Candidate::Nft => with_nft(lab, secs),
                    Candidate::Haproxy => with_haproxy(lab, secs),
                    Candidate::Lvsd(network) => with_lvsd(lab, network, secs),
                })
            });
        match figures {
            Ok(f) => rows.push((name, f)),
            Err(e) => rows.push((name, skipped(format!("lab failed: {e}")))),
        }
    }
    print!("{}", report(&rows, secs));
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

/// Runs the three measurements against `target` (the VIP, or a real server for the ceiling).
fn measure(lab: &Lab, target: Ipv4Addr, secs: u64) -> Figures {
    let url = format!("http://{target}:{HTTP}/");
    let d = format!("{secs}s");
    let keepalive = wrk(lab, &["-t2", "-c", CONNS, "-d", &d, &url]);
    let close = wrk(
        lab,
        &[
            "-t2",
            "-c",
            CONNS,
            "-d",
            &d,
            "-H",
            "Connection: close",
            &url,
        ],
    );
    let gbit = iperf(lab, target, secs);
    let mut note = String::new();
    for (what, r) in [("keep-alive", &keepalive), ("close", &close)] {
        if let Err(e) = r {
            let _ = write!(note, "{what}: {e}; ");
        }
    }
    if let Err(e) = &gbit {
        let _ = write!(note, "iperf3: {e}");
    }
    Figures {
        req_s: keepalive.ok(),
        conn_s: close.ok(),
        gbit_s: gbit.ok(),
        note,
    }
}

fn wrk(lab: &Lab, args: &[&str]) -> Result<f64, String> {
    let mut argv = vec!["wrk"];
    argv.extend_from_slice(args);
    let out = lab
        .exec_timeout(Role::Client(0), &argv, Duration::from_secs(120))
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("no rate in wrk output: {}", text.trim()))?;
    // wrk counts socket errors separately; a run that mostly failed is not a figure.
    if let Some(errs) = text.lines().find(|l| l.contains("Socket errors")) {
        eprintln!("lab-bench: wrk {args:?}: {}", errs.trim());
    }
    Ok(rate)
}

fn iperf(lab: &Lab, target: Ipv4Addr, secs: u64) -> Result<f64, String> {
    let t = secs.to_string();
    let host = target.to_string();
    let out = lab
        .exec_timeout(
            Role::Client(0),
            ["iperf3", "-c", &host, "-p", "5201", "-t", &t, "-J"],
            Duration::from_secs(secs + 30),
        )
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "bits_per_second" of the receiver summary: the last occurrence in iperf3's JSON.
    let bps = text
        .rsplit("\"bits_per_second\":")
        .next()
        .and_then(|rest| rest.split([',', '}', '\n']).next())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|_| out.status.success())
        .ok_or_else(|| "iperf3 failed".to_owned())?;
    Ok(bps / 1e9)
}

fn rs_list(lab: &Lab) -> Vec<Ipv4Addr> {
    lab.real_servers()
        .into_iter()
        .map(|r| lab.addr(r))
        .collect()
}

fn with_nft(lab: &Lab, secs: u64) -> Figures {
    let d = Role::Director(0);
    let rs = rs_list(lab);
    let map: Vec<String> = rs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{i} : {a}"))
        .collect();
    let rules = format!(
        "table ip lvsbench {{\n chain pre {{\n  type nat hook prerouting priority dstnat;\n  \
         ip daddr {vip} tcp dport {HTTP} dnat to numgen inc mod {n} map {{ {map} }}\n  \
         ip daddr {vip} tcp dport {IPERF} dnat to {rs0}\n }}\n}}\n",
        vip = lab.vip(),
        n = rs.len(),
        map = map.join(", "),
        rs0 = rs[0],
    );
    let file = match lab.write_file("nft.rules", &rules) {
        Ok(f) => f,
        Err(e) => return skipped(e.to_string()),
    };
    if let Err(e) = lab.run(d, ["nft", "-f", &file.to_string_lossy()]) {
        return skipped(e.to_string());
    }
    let f = measure(lab, lab.vip(), secs);
    let _ = lab.run(d, ["nft", "delete", "table", "ip", "lvsbench"]);
    f
}

fn with_haproxy(lab: &Lab, secs: u64) -> Figures {
    let rs = rs_list(lab);
    let vip = lab.vip();
    let mut cfg = format!(
        "global\n  maxconn 4000\n  nbthread 1\ndefaults\n  mode tcp\n  timeout connect 5s\n  \
         timeout client 60s\n  timeout server 60s\nfrontend web\n  bind {vip}:{HTTP}\n  \
         default_backend web\nbackend web\n  balance roundrobin\n"
    );
    for (i, a) in rs.iter().enumerate() {
        let _ = writeln!(cfg, "  server rs{i} {a}:{HTTP}");
    }
    let _ = write!(
        cfg,
        "frontend bulk\n  bind {vip}:{IPERF}\n  default_backend bulk\nbackend bulk\n  server rs0 {}:{IPERF}\n",
        rs[0]
    );
    let file = match lab.write_file("haproxy.cfg", &cfg) {
        Ok(f) => f,
        Err(e) => return skipped(e.to_string()),
    };
    let proc = lab.spawn(
        Role::Director(0),
        ["haproxy", "-db", "-f", &file.to_string_lossy()],
    );
    let Ok(mut proc) = proc else {
        return skipped("haproxy did not start".into());
    };
    std::thread::sleep(Duration::from_millis(500));
    if proc.exited().is_some() {
        return skipped(format!("haproxy exited: {}", proc.log()));
    }
    let f = measure(lab, vip, secs);
    proc.stop(Duration::from_secs(2));
    f
}

fn with_lvsd(lab: &Lab, network: &str, secs: u64) -> Figures {
    let vip = lab.vip();
    let mut cf = format!(
        "network = {network}\nvirtual web {{\n  active = 1\n  address = {vip} eth0:1\n  \
         port = {HTTP}\n  scheduler = rr\n"
    );
    for (i, a) in rs_list(lab).iter().enumerate() {
        let _ = write!(
            cf,
            "  server rs{i} {{\n    address = {a}\n    active = 1\n  }}\n"
        );
    }
    let _ = write!(
        cf,
        "}}\nvirtual bulk {{\n  active = 1\n  address = {vip} eth0:1\n  port = {IPERF}\n  \
         scheduler = rr\n  server rs0 {{\n    address = {}\n    active = 1\n  }}\n}}\n",
        rs_list(lab)[0]
    );
    let file = match lab.write_file("lvs.cf", &cf) {
        Ok(f) => f,
        Err(e) => return skipped(e.to_string()),
    };
    let lvsd = tests::bin("lvsd");
    let mut proc: Proc<'_> = match lab.spawn(
        Role::Director(0),
        [
            lvsd.as_os_str(),
            "-c".as_ref(),
            file.as_os_str(),
            "--nodaemon".as_ref(),
        ],
    ) {
        Ok(p) => p,
        Err(e) => return skipped(e.to_string()),
    };
    if let Err(e) = proc.wait_for_log(LVSD_READY, Duration::from_secs(10)) {
        return skipped(format!("lvsd is not forwarding: {e}"));
    }
    let idle = idle_cpu(proc.pid(), Duration::from_secs(5));
    let mut f = measure(lab, vip, secs);
    if let Some(ms) = idle {
        let _ = write!(f.note, "idle: {ms} ms CPU in 5 s");
    }
    proc.stop(Duration::from_secs(5));
    // lvsd reports dropped frames and refused connections (rate-limited): show them, they
    // explain a low figure.
    for line in proc
        .log()
        .lines()
        .filter(|l| l.contains("dropped") || l.contains("refused"))
    {
        eprintln!("lab-bench: lvsd {network}: {line}");
    }
    f
}

/// CPU time (user + system, ms) `pid` uses over `window` while no traffic flows.
fn idle_cpu(pid: u32, window: Duration) -> Option<u64> {
    let ticks = || -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    };
    let before = ticks()?;
    std::thread::sleep(window);
    // USER_HZ is 100 on Linux: one tick is 10 ms.
    Some((ticks()? - before) * 10)
}

fn skipped(why: String) -> Figures {
    Figures {
        note: format!("skipped: {why}"),
        ..Figures::default()
    }
}

fn report(rows: &[(&str, Figures)], secs: u64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nlab-bench: {secs} s per measurement, wrk -t2 -c{CONNS}, iperf3 single stream\n"
    );
    let _ = writeln!(
        s,
        "| candidate | req/s (keep-alive) | conn/s | Gbit/s | note |\n|---|---:|---:|---:|---|"
    );
    let fmt = |v: Option<f64>, prec: usize| v.map_or("—".to_owned(), |v| format!("{v:.prec$}"));
    for (name, f) in rows {
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} |",
            fmt(f.req_s, 0),
            fmt(f.conn_s, 0),
            fmt(f.gbit_s, 2),
            f.note.trim().replace('\n', " ")
        );
    }
    let find = |n: &str| rows.iter().find(|(name, _)| *name == n).map(|(_, f)| f);
    if let Some(engine) = find("lvsd NAT") {
        let _ = writeln!(s, "\nratios of lvsd NAT to:");
        for other in [
            "routed (ceiling)",
            "nftables DNAT",
            "HAProxy (tcp mode)",
            "lvsd DR",
        ] {
            let Some(o) = find(other) else { continue };
            let r = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "—".to_owned(),
            };
            let _ = writeln!(
                s,
                "  {other:<20} req/s {}  conn/s {}  Gbit/s {}",
                r(engine.req_s, o.req_s),
                r(engine.conn_s, o.conn_s),
                r(engine.gbit_s, o.gbit_s)
            );
        }
    }
    s
}
