//! The keyword tables: which keywords each section accepts and the shape of their values.
//!
//! This is the single list the raw stage checks names against; the validator
//! (`validate.rs`) has one arm per entry. Piranha's unparsed keywords (`mode`,
//! `heartbeat_dev`, `log_file`, server `nmask`, `expect_program`) are deliberately absent.

use super::error::SectionKind;

/// How the values after `keyword =` are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Exactly one value.
    One,
    /// Exactly two values (`IP DEVICE`).
    Pair,
    /// `[ a b ... ]`.
    List,
}

/// Global keywords.
pub const GLOBAL: &[(&str, Shape)] = &[
    ("serial_no", Shape::One),
    ("service", Shape::One),
    ("primary", Shape::One),
    ("primary_private", Shape::One),
    ("primary_shared", Shape::One),
    ("backup_active", Shape::One),
    ("backup", Shape::One),
    ("backup_private", Shape::One),
    ("backup_shared", Shape::One),
    ("heartbeat", Shape::One),
    ("heartbeat_port", Shape::One),
    ("keepalive", Shape::One),
    ("deadtime", Shape::One),
    ("network", Shape::One),
    ("nat_router", Shape::Pair),
    ("nat_nmask", Shape::One),
    ("debug_level", Shape::One),
    ("rsh_command", Shape::One),
    ("monitor_links", Shape::One),
    ("syncdaemon", Shape::One),
    ("syncd_iface", Shape::One),
    ("syncd_id", Shape::One),
    ("tcp_timeout", Shape::One),
    ("tcpfin_timeout", Shape::One),
    ("udp_timeout", Shape::One),
    ("active_cmd", Shape::One),
    ("inactive_cmd", Shape::One),
    ("hard_shutdown", Shape::One),
    ("ipvsadm", Shape::One),
    ("reservation_conflict_action", Shape::One),
    ("sync", Shape::One),
    ("heartbeat_key", Shape::One),
    ("cluster_id", Shape::One),
    ("arp_count", Shape::One),
    ("arp_interval", Shape::One),
    ("sync_peer", Shape::One),
    ("sync_port", Shape::One),
    ("sync_transport", Shape::One),
    ("sync_group", Shape::One),
    ("status_address", Shape::One),
];

/// `virtual` and `failover` keywords (Piranha parses both with the same code).
pub const VIRTUAL: &[(&str, Shape)] = &[
    ("active", Shape::One),
    ("address", Shape::Pair),
    ("vip_nmask", Shape::One),
    ("port", Shape::One),
    ("protocol", Shape::One),
    ("fwmark", Shape::One),
    ("scheduler", Shape::One),
    ("sched_flags", Shape::One),
    ("persistent", Shape::One),
    ("pmask", Shape::One),
    ("send", Shape::One),
    ("expect", Shape::One),
    ("use_regex", Shape::One),
    ("send_program", Shape::One),
    ("load_monitor", Shape::One),
    ("timeout", Shape::One),
    ("reentry", Shape::One),
    ("quiesce_server", Shape::One),
    ("sorry_server", Shape::One),
    ("client_monitor", Shape::One),
    ("start_cmd", Shape::One),
    ("stop_cmd", Shape::One),
    ("master", Shape::One),
    ("dirs", Shape::List),
    // Extensions for nanny (docs/lvs-cf.md, docs/nanny.md).
    ("rise", Shape::One),
    ("fall", Shape::One),
    ("probe_timeout", Shape::One),
    ("http_path", Shape::One),
    ("https", Shape::One),
    ("http_host", Shape::One),
    ("http_status", Shape::One),
    ("tls_ca", Shape::One),
    ("tls_verify", Shape::One),
];

/// `server` keywords.
pub const SERVER: &[(&str, Shape)] = &[
    ("address", Shape::One),
    ("active", Shape::One),
    ("weight", Shape::One),
    ("port", Shape::One),
];

/// The table of a section kind.
pub fn table(kind: SectionKind) -> &'static [(&'static str, Shape)] {
    match kind {
        SectionKind::Global => GLOBAL,
        SectionKind::Virtual | SectionKind::Failover => VIRTUAL,
        SectionKind::Server => SERVER,
    }
}

/// The shape of `keyword` in `kind`, if it belongs there.
pub fn shape(kind: SectionKind, keyword: &str) -> Option<Shape> {
    table(kind)
        .iter()
        .find(|(k, _)| *k == keyword)
        .map(|&(_, s)| s)
}

/// A hint for a keyword that is unknown in `kind` (empty if there is nothing to add).
pub fn hint(kind: SectionKind, keyword: &str) -> String {
    let nested = matches!(keyword, "virtual" | "failover" | "server");
    if nested && kind != SectionKind::Global {
        return " (sections do not nest here: is a \"}\" missing?)".to_owned();
    }
    if keyword == "server" {
        return " (server sections go inside a virtual section)".to_owned();
    }
    let home = [
        (SectionKind::Global, "it is a global keyword"),
        (SectionKind::Virtual, "it belongs in a virtual section"),
        (SectionKind::Server, "it belongs in a server section"),
    ]
    .into_iter()
    .find(|&(k, _)| k != kind && shape(k, keyword).is_some());
    match home {
        Some((_, text)) => format!(" ({text})"),
        None => String::new(),
    }
}
