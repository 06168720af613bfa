//! Between ipvsadm's words and lvsd's API, both ways, without I/O: command specs become API
//! bodies, API views become the [`Table`] the renderers print, and lvsd's refusals (HTTP
//! status and message) become ipvsadm's error texts.
//!
//! lvsd holds IPv4 TCP/UDP and fwmark services forwarded by NAT, direct routing or IP-in-IP;
//! what ipvsadm could ask beyond that (IPv6, SCTP, GUE/GRE tunnels, one-packet scheduling,
//! persistence engines) is refused here with a message that says so, before anything is
//! sent.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use ipvs_core::service::ServiceKey as CoreKey;
use ipvs_core::types::Protocol as CoreProto;

use super::cli::{DestSpec, ServiceSpec};
use super::error::OpError;
use super::table::{
    Conn, ConnProto, DaemonInfo, DaemonState, Dest, Method, Netmask, Protocol, Rates, SchedFlags,
    Service, ServiceKey, Stats, Table, Timeouts, Tunnel,
};
use crate::control::api;

/// What lvsd says when a service is not there (`CommandError::UnknownService`): the
/// message that tells "service not defined" from "no such destination" on a 404.
pub const UNKNOWN_SERVICE_PREFIX: &str = "no virtual service";

/// The request a refusal answered, which decides ipvsadm's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `-A`.
    AddService,
    /// `-E`.
    EditService,
    /// `-D`.
    DeleteService,
    /// `-C`.
    Clear,
    /// `-a`.
    AddDest,
    /// `-e`.
    EditDest,
    /// `-d`.
    DeleteDest,
    /// `-Z`.
    Zero,
    /// `--set`.
    SetTimeouts,
    /// `-L`, `-S`.
    List,
}

/// ipvsadm's words for lvsd's refusal of `verb` with HTTP `status` and `message`.
pub fn refusal(verb: Verb, status: u16, message: &str) -> OpError {
    let unknown_service = message.starts_with(UNKNOWN_SERVICE_PREFIX);
    match (status, verb) {
        (404, Verb::AddDest) => OpError::ServiceNotDefined,
        (404, Verb::EditDest | Verb::DeleteDest) if unknown_service => OpError::ServiceNotDefined,
        (404, Verb::EditDest | Verb::DeleteDest) => OpError::NoSuchDest,
        (404, Verb::EditService | Verb::DeleteService | Verb::Zero | Verb::List) => {
            OpError::NoSuchService
        }
        (409, Verb::AddService) => OpError::ServiceExists,
        (409, Verb::AddDest) => OpError::DestExists,
        (422, Verb::AddService | Verb::EditService) if message.contains("scheduler") => {
            OpError::SchedulerNotFound
        }
        _ => OpError::Other(format!("lvsd refused the request: {message}")),
    }
}

/// The API's id of an ipvsadm service key; IPv6 and SCTP services are refused.
pub fn service_id(key: &ServiceKey) -> Result<api::ServiceId, OpError> {
    match *key {
        ServiceKey::Inet {
            proto,
            addr: IpAddr::V4(addr),
            port,
        } => {
            let protocol = match proto {
                Protocol::Tcp => CoreProto::Tcp,
                Protocol::Udp => CoreProto::Udp,
                Protocol::Sctp => return Err(OpError::ProtocolNotAvailable),
            };
            Ok(api::ServiceId(CoreKey::Inet {
                protocol,
                addr,
                port,
            }))
        }
        ServiceKey::Fwmark { mark, ipv6: false } => Ok(api::ServiceId(CoreKey::Fwmark(mark))),
        ServiceKey::Inet { .. } | ServiceKey::Fwmark { ipv6: true, .. } => {
            Err(OpError::FamilyNotSupported)
        }
    }
}

/// The ipvsadm key of an API id.
pub fn key_of(id: &api::ServiceId) -> ServiceKey {
    match id.0 {
        CoreKey::Inet {
            protocol,
            addr,
            port,
        } => ServiceKey::Inet {
            proto: match protocol {
                CoreProto::Tcp => Protocol::Tcp,
                CoreProto::Udp => Protocol::Udp,
            },
            addr: IpAddr::V4(addr),
            port,
        },
        CoreKey::Fwmark(mark) => ServiceKey::Fwmark { mark, ipv6: false },
    }
}

/// Scheduler flag bits named as lvsd (and ipvsadm's `-b`) names them for `scheduler`.
pub fn flag_names(scheduler: &str, flags: SchedFlags) -> Vec<String> {
    let names: [&str; 3] = match scheduler {
        "sh" => ["sh-fallback", "sh-port", "flag-3"],
        "mh" => ["mh-fallback", "mh-port", "flag-3"],
        _ => ["flag-1", "flag-2", "flag-3"],
    };
    names
        .iter()
        .enumerate()
        .filter(|(i, _)| flags.0 & (1 << i) != 0)
        .map(|(_, n)| (*n).to_owned())
        .collect()
}

/// Flag bits of lvsd's flag names (unknown names are ignored).
pub fn flag_bits(names: &[String]) -> SchedFlags {
    let mut bits = 0;
    for n in names {
        bits |= match n.as_str() {
            "sh-fallback" | "mh-fallback" | "flag-1" => SchedFlags::SCHED1,
            "sh-port" | "mh-port" | "flag-2" => SchedFlags::SCHED2,
            "flag-3" => SchedFlags::SCHED3,
            _ => 0,
        };
    }
    SchedFlags(bits)
}

/// The body of `-A`/`-E`.
pub fn service_spec(spec: &ServiceSpec) -> Result<api::ServiceSpec, OpError> {
    let id = service_id(&spec.key)?;
    if spec.ops {
        return Err(OpError::Other(
            "lvsd has no one-packet scheduling (-o); UDP services are scheduled per connection"
                .into(),
        ));
    }
    if let Some(pe) = &spec.pe_name {
        return Err(OpError::Other(format!(
            "lvsd has no persistence engine {pe:?} (--pe)"
        )));
    }
    let netmask = match spec.netmask {
        Netmask::V4(m) if m != Ipv4Addr::BROADCAST && spec.persistent.is_some() => Some(m),
        _ => None,
    };
    Ok(api::ServiceSpec {
        id,
        scheduler: spec.scheduler.clone(),
        flags: flag_names(&spec.scheduler, spec.sched_flags),
        persistent: spec.persistent,
        netmask,
    })
}

/// The body of `-a`/`-e` (every field given: `-e` replaces the whole server, as ipvsadm).
pub fn server_spec(dest: &DestSpec) -> Result<api::ServerSpec, OpError> {
    let IpAddr::V4(addr) = dest.addr else {
        return Err(OpError::FamilyNotSupported);
    };
    let method = match (dest.method, dest.tunnel) {
        (Method::Masq, _) => "masq",
        (Method::Route | Method::Local, _) => "route",
        (Method::Tunnel, Tunnel::Ipip) => "tunnel",
        (Method::Tunnel, _) => {
            return Err(OpError::Other(
                "lvsd tunnels with IP-in-IP only (--tun-type ipip)".into(),
            ));
        }
    };
    Ok(api::ServerSpec {
        address: SocketAddrV4::new(addr, dest.port),
        method: Some(method.to_owned()),
        weight: Some(u32::from(dest.weight)),
        upper: Some(dest.upper),
        lower: Some(dest.lower),
    })
}

fn stats(s: &api::StatsView) -> Stats {
    Stats {
        conns: s.conns,
        inpkts: s.in_pkts,
        outpkts: s.out_pkts,
        inbytes: s.in_bytes,
        outbytes: s.out_bytes,
    }
}

fn rates(r: &api::RatesView) -> Rates {
    Rates {
        cps: r.cps,
        inpps: r.in_pps,
        outpps: r.out_pps,
        inbps: r.in_bps,
        outbps: r.out_bps,
    }
}

fn method(name: &str) -> Method {
    match name {
        "masq" => Method::Masq,
        "tunnel" => Method::Tunnel,
        _ => Method::Route,
    }
}

/// The table of `GET /v1/table` (what the engine holds: servers taken out are absent,
/// quiesced ones have weight 0, as the kernel's table under Piranha's nanny).
pub fn table(v: &api::TableView) -> Table {
    let services = v
        .services
        .iter()
        .map(|v| {
            let mut s = Service::new(key_of(&v.id));
            s.scheduler = v.scheduler.clone();
            s.sched_flags = flag_bits(&v.flags);
            s.persistent = v.persistent;
            s.netmask = Netmask::V4(v.netmask.unwrap_or(Ipv4Addr::BROADCAST));
            s.stats = v.stats.as_ref().map(stats).unwrap_or_default();
            s.rates = v.rates.as_ref().map(rates).unwrap_or_default();
            s.dests = v
                .servers
                .iter()
                .map(|d| {
                    let mut e = Dest::new(IpAddr::V4(*d.address.ip()), d.address.port());
                    e.method = method(&d.method);
                    e.weight = i32::try_from(d.weight).unwrap_or(i32::MAX);
                    e.upper = d.upper;
                    e.lower = d.lower;
                    e.active = d.active;
                    e.inactive = d.inactive;
                    e.persistent = d.persistent;
                    e.stats = d.stats.as_ref().map(stats).unwrap_or_default();
                    e.rates = d.rates.as_ref().map(rates).unwrap_or_default();
                    e
                })
                .collect();
            s
        })
        .collect();
    Table {
        conn_table_size: u32::try_from(v.conn_capacity).unwrap_or(u32::MAX),
        services,
        ..Table::default()
    }
}

/// `-L -c` entries of `GET /v1/connections`.
pub fn conns(v: &[api::ConnView]) -> Vec<Conn> {
    v.iter()
        .map(|c| Conn {
            proto: match c.proto.as_str() {
                "udp" => ConnProto::Udp,
                "ip" => ConnProto::Ip,
                _ => ConnProto::Tcp,
            },
            client: SocketAddr::V4(c.client),
            vaddr: SocketAddr::V4(c.vaddr),
            daddr: SocketAddr::V4(c.server),
            state: c.state.clone(),
            expires_ms: c.expires_ms,
            pe: None,
        })
        .collect()
}

/// `-L --timeout` of `GET /v1/timeouts`.
pub fn timeouts(v: &api::TimeoutsView) -> Timeouts {
    Timeouts {
        tcp: v.tcp,
        tcpfin: v.tcpfin,
        udp: v.udp,
    }
}

/// `-L --daemon` of `GET /v1/sync`: lvsd's one sync link, shown as the master daemon while
/// it streams (active) and as the backup daemon otherwise; nothing when sync is off.
pub fn daemons(v: &api::SyncView) -> Vec<DaemonInfo> {
    if !v.enabled {
        return Vec::new();
    }
    let multicast = v.transport.as_deref() == Some("multicast");
    vec![DaemonInfo {
        state: if v.streaming {
            DaemonState::Master
        } else {
            DaemonState::Backup
        },
        mcast_ifn: v.iface.clone().unwrap_or_default(),
        syncid: v.syncd_id,
        sync_maxlen: 0,
        mcast_group: v.peer.filter(|_| multicast).map(|p| IpAddr::V4(*p.ip())),
        mcast_port: v.peer.map_or(0, |p| p.port()),
        mcast_ttl: u8::from(multicast),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CommandError;

    #[test]
    fn unknown_service_prefix_matches_lvsd_message() {
        let id: api::ServiceId = "tcp:198.18.0.10:80".parse().expect("id");
        assert!(
            CommandError::UnknownService(id)
                .to_string()
                .starts_with(UNKNOWN_SERVICE_PREFIX)
        );
    }

    #[test]
    fn refusals_read_as_ipvsadm() {
        assert_eq!(
            refusal(Verb::AddService, 409, "x").to_string(),
            "Service already exists"
        );
        assert_eq!(
            refusal(Verb::AddDest, 404, "no virtual service tcp:1.2.3.4:80").to_string(),
            "Service not defined"
        );
        assert_eq!(
            refusal(
                Verb::DeleteDest,
                404,
                "virtual service x has no real server y"
            )
            .to_string(),
            "No such destination"
        );
        assert_eq!(
            refusal(Verb::EditDest, 404, "no virtual service x").to_string(),
            "Service not defined"
        );
        assert_eq!(
            refusal(Verb::DeleteService, 404, "no virtual service x").to_string(),
            "No such service"
        );
        assert_eq!(
            refusal(Verb::AddService, 422, "unknown scheduler \"xx\"").to_string(),
            "Scheduler or persistence engine not found"
        );
        assert_eq!(
            refusal(Verb::AddDest, 409, "x").to_string(),
            "Destination already exists"
        );
    }

    #[test]
    fn keys_round_trip_and_ipv6_is_refused() {
        let k = ServiceKey::Inet {
            proto: Protocol::Udp,
            addr: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 10)),
            port: 53,
        };
        assert_eq!(key_of(&service_id(&k).expect("v4")), k);
        let f = ServiceKey::Fwmark {
            mark: 7,
            ipv6: false,
        };
        assert_eq!(key_of(&service_id(&f).expect("fwmark")), f);
        let v6 = ServiceKey::Inet {
            proto: Protocol::Tcp,
            addr: "2001:db8::1".parse().expect("v6"),
            port: 80,
        };
        assert_eq!(service_id(&v6), Err(OpError::FamilyNotSupported));
    }

    #[test]
    fn flags_round_trip_per_scheduler() {
        for (sched, bits) in [("sh", 3), ("mh", 1), ("rr", 7)] {
            let names = flag_names(sched, SchedFlags(bits));
            assert_eq!(flag_bits(&names), SchedFlags(bits), "{sched}");
        }
        assert_eq!(flag_names("sh", SchedFlags(1)), vec!["sh-fallback"]);
    }
}
