//! The table printed at the end.

use std::fmt::Write as _;

use crate::load::Load;
use crate::probe::Sample;
use crate::{DEADTIME, Failover, KEEPALIVE, Opts, PROBE_CONNECT, PROBE_EVERY, PROBERS};

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

pub(crate) fn report(
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
