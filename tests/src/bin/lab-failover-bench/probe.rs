//! Threads inside the lab's namespaces (the client's probes, the VIP watchers) and one
//! failover run.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use tests::lab::{Lab, LabError, Proc, Role};

use crate::daemons::{
    children, holds, lvs_cf, requests_succeed, signal_steps, socket_of, start_keepalived,
    start_lvsd, start_pulse, wait_for,
};
use crate::{
    C0, D0, D1, Failover, PROBE_CONNECT, PROBE_EVERY, PROBE_IO, PROBERS, START_LIMIT,
    TAKEOVER_LIMIT, VIP_EVERY, ms,
};

/// Runs `f` on a new thread that has entered `role`'s network namespace (only that thread
/// moves: `setns(2)` acts on the calling thread).
pub(crate) fn in_netns<T: Send + 'static>(
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

pub(crate) fn join<T>(h: JoinHandle<Result<T, String>>) -> Result<T, String> {
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
pub(crate) fn local(vip: Ipv4Addr) -> bool {
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
pub(crate) struct Sample {
    pub(crate) vip: Option<Duration>,
    pub(crate) conn: Option<Duration>,
    pub(crate) note: String,
}

pub(crate) fn failover_run(lab: &Lab, f: Failover) -> Result<Sample, String> {
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
