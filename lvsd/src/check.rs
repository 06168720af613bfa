//! `lvsd --check`: validate a file and render its desired table as `ipvsadm -S -n` would.
//!
//! Output format (ipvsadm 1.29–1.31 `-S -n`): per service
//! `-A <svc> -s SCHED[ -p T][ -M MASK][ -b FLAGS]`, then per real server
//! `-a <svc> -r ADDR:PORT -m|-g|-i -w W`; `<svc>` is `-t VIP:PORT`, `-u VIP:PORT` or `-f MARK`.
//! Unlike ipvsadm, services stay in file order (ipvsadm sorts), because this is the order lvsd
//! programs them. Scheduler flags are printed the way ipvsadm prints the kernel's bits:
//! `sh-fallback,sh-port` for sh, `mh-…` for mh, `flag-N` otherwise, in bit order.

use std::fmt::Write as _;
use std::path::Path;

use ipvs_core::types::{SchedFlag, SchedulerKind};

use crate::desired::{DesiredTable, ServiceKey, desired_table};
use crate::lvscf::{self, Lookup, LvsCfError, LvsCfWarning};

/// The outcome of a successful check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The table in `ipvsadm -S -n` format (for stdout).
    pub table: String,
    /// Warnings, each `FILE:LINE: text` (for stderr).
    pub warnings: Vec<LvsCfWarning>,
}

/// Parses `path`, builds the desired table and renders it.
pub fn check_file(path: &Path, lookup: &dyn Lookup) -> Result<CheckReport, LvsCfError> {
    let cfg = lvscf::load(path, lookup)?;
    let file = path.display().to_string();
    let desired = desired_table(&file, &cfg);
    let mut warnings = cfg.warnings.clone();
    warnings.extend(desired.warnings.iter().cloned());
    Ok(CheckReport {
        table: render_ipvsadm_save(&desired),
        warnings,
    })
}

fn service_arg(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Fwmark(mark) => format!("-f {mark}"),
        ServiceKey::Inet {
            protocol,
            addr,
            port,
        } => {
            let flag = match protocol {
                ipvs_core::types::Protocol::Tcp => "-t",
                ipvs_core::types::Protocol::Udp => "-u",
            };
            format!("{flag} {addr}:{port}")
        }
    }
}

/// The `-b` argument as ipvsadm prints it for `scheduler`, or `None` without flags.
pub fn sched_flags_arg(scheduler: SchedulerKind, flags: &[SchedFlag]) -> Option<String> {
    let mut bits: Vec<u8> = flags.iter().map(|f| f.bit()).collect();
    bits.sort_unstable();
    bits.dedup();
    let names: Vec<&str> = bits
        .into_iter()
        .map(|bit| match (scheduler, bit) {
            (SchedulerKind::Sh, 1) => "sh-fallback",
            (SchedulerKind::Sh, 2) => "sh-port",
            (SchedulerKind::Mh, 1) => "mh-fallback",
            (SchedulerKind::Mh, 2) => "mh-port",
            (_, 1) => "flag-1",
            (_, 2) => "flag-2",
            _ => "flag-3",
        })
        .collect();
    (!names.is_empty()).then(|| names.join(","))
}

/// Renders a desired table in `ipvsadm -S -n` format, services in table order.
pub fn render_ipvsadm_save(table: &DesiredTable) -> String {
    let mut out = String::new();
    for svc in &table.services {
        let key = service_arg(&svc.key);
        let _ = write!(out, "-A {key} -s {}", svc.scheduler.name());
        if let Some(p) = svc.persistent {
            let _ = write!(out, " -p {p}");
        }
        if let Some(m) = svc.pmask {
            let _ = write!(out, " -M {m}");
        }
        if let Some(flags) = sched_flags_arg(svc.scheduler, &svc.sched_flags) {
            let _ = write!(out, " -b {flags}");
        }
        out.push('\n');
        for d in &svc.dests {
            let _ = writeln!(
                out,
                "-a {key} -r {}:{} {} -w {}",
                d.addr,
                d.port,
                d.method.ipvsadm_flag(),
                d.weight
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sched_flags_print_like_ipvsadm() {
        use SchedFlag::*;
        let sh = SchedulerKind::Sh;
        assert_eq!(sched_flags_arg(sh, &[]), None);
        assert_eq!(
            sched_flags_arg(sh, &[ShPort, ShFallback, ShPort]).as_deref(),
            Some("sh-fallback,sh-port")
        );
        // Same kernel bits, ipvsadm's names for the scheduler.
        assert_eq!(
            sched_flags_arg(sh, &[Flag1, Flag3]).as_deref(),
            Some("sh-fallback,flag-3")
        );
        assert_eq!(
            sched_flags_arg(SchedulerKind::Mh, &[Flag2]).as_deref(),
            Some("mh-port")
        );
        assert_eq!(
            sched_flags_arg(SchedulerKind::Rr, &[Flag2, Flag1]).as_deref(),
            Some("flag-1,flag-2")
        );
    }

    #[test]
    fn desired_table_by_key_and_rendering() {
        let text = "network = tunnel\nvirtual a {\n active = 1\n address = 198.18.0.1 eth0:1\n fwmark = 9\n port = 0\n server s {\n  address = 198.19.0.1\n  active = 1\n  port = 8080\n }\n}\nvirtual b {\n active = 1\n address = 198.18.0.1 eth0:1\n protocol = udp\n port = 53\n}\n";
        let cfg = lvscf::parse_str("t.cf", text, &lvscf::StaticLookup::new()).unwrap();
        let table = desired_table("t.cf", &cfg);
        assert!(
            table.warnings.is_empty(),
            "fwmark services keep the RS port"
        );
        let by_key = table.by_key();
        assert_eq!(by_key.len(), 2);
        assert_eq!(by_key[&ServiceKey::Fwmark(9)].name, "a");
        assert_eq!(
            render_ipvsadm_save(&table),
            "-A -f 9 -s wlc\n-a -f 9 -r 198.19.0.1:8080 -i -w 1\n-A -u 198.18.0.1:53 -s wlc\n"
        );
    }
}
