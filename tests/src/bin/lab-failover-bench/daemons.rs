//! The pair under test: lvs.cf, starting pulse, lvsd and keepalived, and ending them.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tests::lab::{Lab, LabError, Proc, Role, wait_until};
use tests::lvsd::{Cf, Virtual};

use crate::{C0, D1, DEADTIME, KEEPALIVE, secs_text};

/// The NAT service with both directors and the pulse settings under test.
pub(crate) fn lvs_cf(lab: &Lab) -> String {
    let cf = Cf::new("nat")
        .virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1]))
        .render(lab);
    let pair = format!(
        "backup = {}\nbackup_active = 1\nkeepalive = {KEEPALIVE}\ndeadtime = {DEADTIME}\n",
        lab.addr(D1)
    );
    cf.replacen("network = nat\n", &format!("network = nat\n{pair}"), 1)
}

pub(crate) fn socket_of(lab: &Lab, director: Role) -> PathBuf {
    lab.dir().join(format!("lvsd-{}.sock", director.short()))
}

pub(crate) fn start_pulse<'l>(
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
pub(crate) fn start_lvsd<'l>(
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
pub(crate) fn start_keepalived<'l>(
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
pub(crate) fn holds(lab: &Lab, director: Role, label: &str, addr: Ipv4Addr) -> bool {
    lab.ip(director, ["-4", "-o", "addr", "show"])
        .map(|out| {
            out.lines()
                .any(|l| l.contains(&format!("inet {addr}/")) && l.trim_end().contains(label))
        })
        .unwrap_or(false)
}

/// Whether a short burst of requests through the VIP all succeed.
pub(crate) fn requests_succeed(lab: &Lab) -> bool {
    let vip = format!("{}:80", lab.vip());
    let args = ["--to", vip.as_str(), "--requests", "6", "--deadline-s", "3"];
    lab.http_client(C0, &args, Duration::from_secs(10))
        .is_ok_and(|t| t.failed == 0 && t.ok == 6)
}

pub(crate) fn wait_for(
    what: &str,
    limit: Duration,
    cond: impl FnMut() -> bool,
) -> Result<(), String> {
    if wait_until(limit, Duration::from_millis(20), cond) {
        Ok(())
    } else {
        Err(format!("{what}: not within {limit:?}"))
    }
}

/// Children of `pid` (`/proc/PID/task/*/children`).
pub(crate) fn children(pid: u32) -> Vec<u32> {
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
pub(crate) fn signal_steps(steps: &[(u32, Signal)]) -> Result<(), String> {
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

/// `lab-http` on every real server (as [`Lab::start_http`] on port 80) with a lifetime of
/// `lifetime_s` seconds: the tool's default (600 s) would end a ten-minute load run early.
pub(crate) fn start_http_for(lab: &Lab, lifetime_s: u64) -> Result<Vec<Proc<'_>>, LabError> {
    let http = tests::bin("lab-http").to_string_lossy().into_owned();
    let lifetime = lifetime_s.to_string();
    lab.real_servers()
        .into_iter()
        .map(|rs| {
            let name = rs.short();
            let argv = [
                http.as_str(),
                "--name",
                &name,
                "--listen",
                "0.0.0.0:80",
                "--lifetime-s",
                &lifetime,
            ];
            let mut p = lab.spawn(rs, argv)?;
            p.wait_for_log("ready", Duration::from_secs(10))?;
            Ok(p)
        })
        .collect()
}
