//! From a validated [`Config`] to the IPVS table lvsd wants once every active real server is
//! healthy: the *desired state* that [`crate::program::diff`] turns into engine changes.
//!
//! Rules (Piranha's lvsd plus ipvsadm semantics):
//! - only `active` virtual sections, in file order; `failover` sections are not IPVS
//!   services; nothing at all in `service = fos` mode;
//! - fwmark services are keyed by the mark alone (no protocol, no address);
//! - persistence `-p` when `persistent > 0`; `-M` only then, and only when `pmask` is neither
//!   0.0.0.0 nor 255.255.255.255 (Piranha turns the latter into 0);
//! - every active real server, in file order, with the global forwarding method and its
//!   configured weight (the weight reached after nanny's slow start);
//! - with direct routing or tunnelling on a non-fwmark service the real-server port is forced
//!   to the virtual port, as ipvsadm does, with a warning when the configured port differs;
//! - the `sorry_server` is not part of it (it is added only when no real server is healthy).
//!
//! Pure: no I/O, never panics.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipvs_core::types::{ForwardMethod, SchedFlag, SchedulerKind};

use crate::lvscf::validate::effective_port;
use crate::lvscf::{Config, Location, LvsCfWarning, ServiceMode};

/// What identifies an IPVS virtual service: the engine's own key, so that the desired table
/// and the running engine are diffed without translation.
pub use ipvs_core::service::ServiceKey;

/// One virtual service to program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredService {
    /// Kernel key.
    pub key: ServiceKey,
    /// The virtual IP of the `address` line (for fwmark services too: the engine steers
    /// every port of it to the service).
    pub vip: Ipv4Addr,
    /// The `virtual` section name.
    pub name: String,
    /// Line of the `virtual` section.
    pub line: usize,
    /// Scheduler.
    pub scheduler: SchedulerKind,
    /// Scheduler flags as configured.
    pub sched_flags: Vec<SchedFlag>,
    /// Persistence timeout in seconds, when persistent.
    pub persistent: Option<u32>,
    /// Persistence netmask, when persistent and not /0 or /32.
    pub pmask: Option<Ipv4Addr>,
    /// Real servers, in file order.
    pub dests: Vec<DesiredDest>,
}

/// One real server of a [`DesiredService`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredDest {
    /// Real-server address.
    pub addr: Ipv4Addr,
    /// Port as IPVS will hold it.
    pub port: u16,
    /// Forwarding method (global `network`).
    pub method: ForwardMethod,
    /// Weight.
    pub weight: u32,
    /// Upper connection threshold (`-x`; 0 = none). lvs.cf has no keyword: set at run time.
    pub upper: u32,
    /// Lower connection threshold (`-y`; 0 = none).
    pub lower: u32,
    /// The `server` section name.
    pub name: String,
    /// Line of the `server` section.
    pub line: usize,
}

/// The desired table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DesiredTable {
    /// Services in file order.
    pub services: Vec<DesiredService>,
    /// Notes for the operator (real-server ports forced to the virtual port).
    pub warnings: Vec<LvsCfWarning>,
}

impl DesiredTable {
    /// The services by kernel key, for diffing against a running table.
    pub fn by_key(&self) -> BTreeMap<ServiceKey, &DesiredService> {
        self.services.iter().map(|s| (s.key, s)).collect()
    }
}

/// Builds the desired table. `file` names the configuration in warnings.
pub fn desired_table(file: &str, cfg: &Config) -> DesiredTable {
    let mut table = DesiredTable::default();
    if cfg.global.service == ServiceMode::Fos {
        return table;
    }
    let method = cfg.global.network;
    for v in cfg.active_virtuals() {
        // Validation guarantees an address for active services; skip defensively.
        let Some(vip) = v.address.as_ref().map(|a| a.addr) else {
            continue;
        };
        let key = match v.fwmark {
            Some(mark) => ServiceKey::Fwmark(mark),
            None => ServiceKey::Inet {
                protocol: v.protocol,
                addr: vip,
                port: v.port,
            },
        };
        let persistent = (v.persistent > 0).then_some(v.persistent);
        let pmask = persistent
            .and(Some(v.pmask))
            .filter(|m| !m.is_unspecified() && *m != Ipv4Addr::BROADCAST);
        let mut dests = Vec::new();
        for rs in v.active_servers() {
            let port = effective_port(v, rs, method);
            if port != rs.port {
                table.warnings.push(LvsCfWarning {
                    at: Location {
                        file: file.to_owned(),
                        line: rs.lines.get("port").copied().unwrap_or(rs.line),
                    },
                    message: format!(
                        "real server {:?} port {} is ignored: {} uses the virtual port {}",
                        rs.name,
                        rs.port,
                        if method == ForwardMethod::Tunnel {
                            "tunnelling"
                        } else {
                            "direct routing"
                        },
                        port
                    ),
                });
            }
            dests.push(DesiredDest {
                addr: rs.address,
                port,
                method,
                weight: rs.weight,
                upper: 0,
                lower: 0,
                name: rs.name.clone(),
                line: rs.line,
            });
        }
        table.services.push(DesiredService {
            key,
            vip,
            name: v.name.clone(),
            line: v.line,
            scheduler: v.scheduler,
            sched_flags: v.sched_flags.clone(),
            persistent,
            pmask,
            dests,
        });
    }
    table
}
