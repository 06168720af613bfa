//! No false failover under load: the heartbeat capture, its gaps, CPU use, role changes.

use std::io::IoSliceMut;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockProtocol, SockType, recvmsg,
    setsockopt, socket, sockopt,
};
use nix::sys::time::{TimeSpec, TimeVal};
use tests::lab::{Lab, LabError};

use crate::daemons::{holds, lvs_cf, requests_succeed, start_http_for, start_pulse, wait_for};
use crate::probe::{in_netns, join, local};
use crate::{C0, D0, D1, DEADTIME_S, HEARTBEAT_PORT, START_LIMIT};

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
pub(crate) struct Gaps {
    pub(crate) heartbeats: usize,
    pub(crate) median_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) over_deadtime: usize,
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
pub(crate) struct Load {
    /// Heartbeats the backup received from the active, idle and under load.
    pub(crate) idle: Gaps,
    pub(crate) loaded: Gaps,
    /// Heartbeats the backup sent, idle and under load.
    pub(crate) sent_idle: Gaps,
    pub(crate) sent_loaded: Gaps,
    /// Gaps over twice the keepalive, either stream, when they began.
    pub(crate) long_gaps: Vec<String>,
    pub(crate) idle_s: f64,
    pub(crate) load_s: f64,
    pub(crate) req_s: Option<f64>,
    /// CPU busy and steal, % of all CPUs, idle and loaded window.
    pub(crate) cpu_idle: (f64, f64),
    pub(crate) cpu_loaded: (f64, f64),
    pub(crate) role_changes: usize,
    pub(crate) backup_held_vip: usize,
    pub(crate) wrk: String,
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

pub(crate) fn load_run(lab: &Lab, idle_s: u64, load_s: u64) -> Result<Load, String> {
    let e = |x: LabError| x.to_string();
    let _http = start_http_for(lab, idle_s + load_s + 300).map_err(e)?;
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
