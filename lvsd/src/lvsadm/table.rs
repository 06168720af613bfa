//! Plain data describing a director's table as lvsadm shows it, independent of lvsd's API.
//!
//! These types mirror what ipvsadm receives from the kernel (`ipvs_service_entry_t`,
//! `ipvs_dest_entry_t`, `/proc/net/ip_vs_conn`, `ipvs_timeout_t`, `ipvs_daemon_t`), so that
//! [`super::format`] can print them byte for byte as ipvsadm 1.31 does. The binary fills them
//! from lvsd's HTTP API. [`Table::apply`] mutates a table the way the kernel answers ipvsadm's
//! requests; it is used by the `-S | -R` round-trip tests and is pure (no I/O, no clock).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::cli::{Command, DestSpec, ServiceSpec};
use super::error::OpError;

/// Transport protocol of an address:port virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// `-t`, listed as `TCP`.
    Tcp,
    /// `-u`, listed as `UDP`.
    Udp,
    /// `--sctp-service`, listed as `SCTP`.
    Sctp,
}

impl Protocol {
    /// The IP protocol number (the sort key ipvsadm uses).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// The name in listings (`protocol_name` in ipvsadm.c).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// The option in `-S` output (`option_from_protocol`).
    pub fn option(self) -> &'static str {
        match self {
            Protocol::Tcp => "-t",
            Protocol::Udp => "-u",
            Protocol::Sctp => "--sctp-service",
        }
    }
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceKey {
    /// `-t|-u|--sctp-service addr[:port]`.
    Inet {
        /// Transport protocol.
        proto: Protocol,
        /// Virtual address.
        addr: IpAddr,
        /// Virtual port (0 only for persistent services).
        port: u16,
    },
    /// `-f mark [-6]`.
    Fwmark {
        /// Firewall mark, > 0.
        mark: u32,
        /// `-6`: an IPv6 fwmark service.
        ipv6: bool,
    },
}

impl ServiceKey {
    /// True for IPv6 services (address family `AF_INET6`).
    pub fn is_ipv6(&self) -> bool {
        match self {
            ServiceKey::Inet { addr, .. } => addr.is_ipv6(),
            ServiceKey::Fwmark { ipv6, .. } => *ipv6,
        }
    }

    /// The fwmark, 0 for address services.
    pub fn fwmark(&self) -> u32 {
        match self {
            ServiceKey::Inet { .. } => 0,
            ServiceKey::Fwmark { mark, .. } => *mark,
        }
    }

    /// The service port, 0 for fwmark services.
    pub fn port(&self) -> u16 {
        match self {
            ServiceKey::Inet { port, .. } => *port,
            ServiceKey::Fwmark { .. } => 0,
        }
    }
}

/// Persistence granularity (`-M`): an IPv4 mask or an IPv6 prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Netmask {
    /// IPv4 services: a dotted mask, default 255.255.255.255 (no contiguity check).
    V4(Ipv4Addr),
    /// IPv6 services: a prefix length 1..=128, default 128.
    V6(u8),
}

impl Netmask {
    /// The default for a service of this family (/32 or /128).
    pub fn full(ipv6: bool) -> Netmask {
        if ipv6 {
            Netmask::V6(128)
        } else {
            Netmask::V4(Ipv4Addr::BROADCAST)
        }
    }
}

/// Scheduler flag bits `IP_VS_SVC_F_SCHED1..3` (bit 0 = SCHED1); named by scheduler on output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedFlags(pub u8);

impl SchedFlags {
    /// `sh-fallback`, `mh-fallback` or `flag-1`.
    pub const SCHED1: u8 = 1;
    /// `sh-port`, `mh-port` or `flag-2`.
    pub const SCHED2: u8 = 2;
    /// `flag-3`.
    pub const SCHED3: u8 = 4;

    /// True when no bit is set.
    pub fn is_empty(self) -> bool {
        self.0 & 7 == 0
    }
}

/// A virtual service and its real servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Protocol, address and port, or fwmark.
    pub key: ServiceKey,
    /// Scheduler name (`wlc`, `rr`, ...), at most 15 characters.
    pub scheduler: String,
    /// `-b` bits.
    pub sched_flags: SchedFlags,
    /// `-p`: persistence timeout in seconds, `None` when not persistent.
    pub persistent: Option<u32>,
    /// `-M`: persistence granularity (printed only for persistent services).
    pub netmask: Netmask,
    /// `--pe`: persistence engine name.
    pub pe_name: Option<String>,
    /// `-o`: one-packet scheduling.
    pub ops: bool,
    /// Real servers, in the director's own order (listings sort them).
    pub dests: Vec<Dest>,
    /// Counters since creation or the last `-Z`.
    pub stats: Stats,
    /// Estimated rates ([`RateEstimator`]).
    pub rates: Rates,
}

impl Service {
    /// A service with ipvsadm's defaults: `wlc`, not persistent, full mask.
    pub fn new(key: ServiceKey) -> Service {
        Service {
            key,
            scheduler: "wlc".to_string(),
            sched_flags: SchedFlags::default(),
            persistent: None,
            netmask: Netmask::full(key.is_ipv6()),
            pe_name: None,
            ops: false,
            dests: Vec::new(),
            stats: Stats::default(),
            rates: Rates::default(),
        }
    }
}

/// Forwarding method of a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// `-m`, NAT.
    Masq,
    /// `-g`, direct routing (ipvsadm's default).
    Route,
    /// `-i`, IP-in-IP (or GUE/GRE) tunnelling.
    Tunnel,
    /// Chosen by the kernel for a local address; saved as `-g`.
    Local,
}

impl Method {
    /// The name in listings (`fwd_name`).
    pub fn name(self) -> &'static str {
        match self {
            Method::Masq => "Masq",
            Method::Route => "Route",
            Method::Tunnel => "Tunnel",
            Method::Local => "Local",
        }
    }

    /// The option in `-S` output (`fwd_switch`).
    pub fn switch(self) -> &'static str {
        match self {
            Method::Masq => "-m",
            Method::Tunnel => "-i",
            Method::Route | Method::Local => "-g",
        }
    }
}

/// Tunnel encapsulation checksum mode (`--tun-nocsum|--tun-csum|--tun-remcsum`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TunCsum {
    /// No checksum (the default).
    #[default]
    NoCsum,
    /// With checksum.
    Csum,
    /// Remote checksum offload (GUE only).
    RemCsum,
}

impl TunCsum {
    /// The option in `-S` output.
    pub fn option(self) -> &'static str {
        match self {
            TunCsum::NoCsum => "--tun-nocsum",
            TunCsum::Csum => "--tun-csum",
            TunCsum::RemCsum => "--tun-remcsum",
        }
    }
}

/// Tunnel type of a `-i` real server (ipvsadm 1.31 `--tun-type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tunnel {
    /// IP-in-IP (the default).
    #[default]
    Ipip,
    /// Generic UDP encapsulation to `port`.
    Gue {
        /// Destination UDP port.
        port: u16,
        /// Checksum mode.
        csum: TunCsum,
    },
    /// GRE.
    Gre {
        /// Checksum mode (no remcsum).
        csum: TunCsum,
    },
}

/// A real server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dest {
    /// Address.
    pub addr: IpAddr,
    /// Port (for Route/Tunnel of an address service, the service port).
    pub port: u16,
    /// Forwarding method.
    pub method: Method,
    /// Tunnel type; meaningful only for [`Method::Tunnel`].
    pub tunnel: Tunnel,
    /// Weight, 0..=65535 (0 = quiesced).
    pub weight: i32,
    /// Upper connection threshold (`-x`), 0 = none.
    pub upper: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    pub lower: u32,
    /// Active connections.
    pub active: u32,
    /// Inactive connections.
    pub inactive: u32,
    /// Persistence templates pointing at this server.
    pub persistent: u32,
    /// Counters.
    pub stats: Stats,
    /// Estimated rates.
    pub rates: Rates,
}

impl Dest {
    /// A real server with ipvsadm's defaults: Route, weight 1, no thresholds, zero counters.
    pub fn new(addr: IpAddr, port: u16) -> Dest {
        Dest {
            addr,
            port,
            method: Method::Route,
            tunnel: Tunnel::Ipip,
            weight: 1,
            upper: 0,
            lower: 0,
            active: 0,
            inactive: 0,
            persistent: 0,
            stats: Stats::default(),
            rates: Rates::default(),
        }
    }
}

/// Counters of a service or real server (`stats64`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client → server.
    pub inpkts: u64,
    /// Packets server → client.
    pub outpkts: u64,
    /// Bytes client → server.
    pub inbytes: u64,
    /// Bytes server → client.
    pub outbytes: u64,
}

/// Rates per second, as the kernel's estimator reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Incoming packets per second.
    pub inpps: u64,
    /// Outgoing packets per second.
    pub outpps: u64,
    /// Incoming bytes per second.
    pub inbps: u64,
    /// Outgoing bytes per second.
    pub outbps: u64,
}

/// The whole table as `ipvsadm -L` sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// IPVS version, shown as `IP Virtual Server version 1.2.1`.
    pub version: (u32, u32, u32),
    /// Connection hash table size, shown as `(size=4096)`.
    pub conn_table_size: u32,
    /// Services in the director's own order (listings sort them).
    pub services: Vec<Service>,
}

impl Default for Table {
    fn default() -> Table {
        Table {
            version: (1, 2, 1),
            conn_table_size: 4096,
            services: Vec::new(),
        }
    }
}

/// Protocol column of a connection entry, as the kernel names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnProto {
    /// `TCP`.
    Tcp,
    /// `UDP`.
    Udp,
    /// `SCTP`.
    Sctp,
    /// `IP`: fwmark persistence templates.
    Ip,
}

impl ConnProto {
    /// The kernel's name (`ip_vs_proto_name`).
    pub fn name(self) -> &'static str {
        match self {
            ConnProto::Tcp => "TCP",
            ConnProto::Udp => "UDP",
            ConnProto::Sctp => "SCTP",
            ConnProto::Ip => "IP",
        }
    }
}

/// Persistence-engine data of a connection (`--persistent-conn` with `-c`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnPe {
    /// Engine name (`sip`).
    pub name: String,
    /// Engine data (the Call-ID).
    pub data: String,
}

/// One connection entry (`/proc/net/ip_vs_conn`), including persistence templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conn {
    /// Protocol.
    pub proto: ConnProto,
    /// Client address and port (templates: the masked client, port 0).
    pub client: SocketAddr,
    /// Virtual address and port (fwmark templates: the mark as an address, port 0).
    pub vaddr: SocketAddr,
    /// Real server address and port.
    pub daddr: SocketAddr,
    /// State name as the kernel prints it (`ESTABLISHED`, `FIN_WAIT`, `UDP`, `NONE`, ...).
    pub state: String,
    /// Time until expiry in milliseconds (shown as mm:ss, truncated to whole seconds).
    pub expires_ms: u64,
    /// Persistence-engine data, if any.
    pub pe: Option<ConnPe>,
}

/// Connection timeouts in seconds (`--set tcp tcpfin udp`, `-L --timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// TCP ESTABLISHED.
    pub tcp: u32,
    /// TCP FIN_WAIT.
    pub tcpfin: u32,
    /// UDP.
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            tcp: 900,
            tcpfin: 120,
            udp: 300,
        }
    }
}

/// Role of a connection-sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DaemonState {
    /// Sends connection updates.
    Master,
    /// Receives them.
    Backup,
}

impl DaemonState {
    /// `master` or `backup`.
    pub fn name(self) -> &'static str {
        match self {
            DaemonState::Master => "master",
            DaemonState::Backup => "backup",
        }
    }
}

/// A running sync daemon (`-L --daemon`); zero/`None` fields are not printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// Master or backup.
    pub state: DaemonState,
    /// Multicast interface.
    pub mcast_ifn: String,
    /// Sync id 0..=255.
    pub syncid: u8,
    /// Maximum message length, 0 = not reported.
    pub sync_maxlen: u32,
    /// Multicast group, if reported.
    pub mcast_group: Option<IpAddr>,
    /// Multicast port, 0 = not reported.
    pub mcast_port: u16,
    /// Multicast TTL, 0 = not reported.
    pub mcast_ttl: u8,
}

/// Schedulers the kernel knows (ipvsadm itself never checks the name).
pub const SCHEDULERS: [&str; 14] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

impl Table {
    /// The service with this key.
    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.services.iter().find(|s| s.key == *key)
    }

    fn service_mut(&mut self, key: &ServiceKey) -> Option<&mut Service> {
        self.services.iter_mut().find(|s| s.key == *key)
    }

    /// Applies a state-changing command as the kernel would, with the kernel's refusals.
    ///
    /// Listing, save, restore, help, version, timeouts and daemon commands do not touch the
    /// service table and return `Ok(())` unchanged. New real servers go to the head of the
    /// list, as `list_add_rcu` does in the kernel.
    pub fn apply(&mut self, cmd: &Command) -> Result<(), OpError> {
        match cmd {
            Command::AddService(spec) => {
                if self.service(&spec.key).is_some() {
                    return Err(OpError::ServiceExists);
                }
                check_scheduler(spec)?;
                let mut svc = Service::new(spec.key);
                set_service(&mut svc, spec);
                self.services.push(svc);
            }
            Command::EditService(spec) => {
                check_scheduler(spec)?;
                let svc = self.service_mut(&spec.key).ok_or(OpError::NoSuchService)?;
                set_service(svc, spec);
            }
            Command::DeleteService(key) => {
                let before = self.services.len();
                self.services.retain(|s| s.key != *key);
                if self.services.len() == before {
                    return Err(OpError::NoSuchService);
                }
            }
            Command::Clear => self.services.clear(),
            Command::Zero(key) => {
                let zero = |s: &mut Service| {
                    s.stats = Stats::default();
                    s.rates = Rates::default();
                    for d in &mut s.dests {
                        d.stats = Stats::default();
                        d.rates = Rates::default();
                    }
                };
                match key {
                    None => self.services.iter_mut().for_each(zero),
                    Some(k) => zero(self.service_mut(k).ok_or(OpError::NoSuchService)?),
                }
            }
            Command::AddDest { service, dest } => {
                let svc = self
                    .service_mut(service)
                    .ok_or(OpError::ServiceNotDefined)?;
                check_thresholds(dest)?;
                if find_dest(svc, dest.addr, dest.port).is_some() {
                    return Err(OpError::DestExists);
                }
                let mut d = Dest::new(dest.addr, dest.port);
                set_dest(&mut d, dest);
                svc.dests.insert(0, d);
            }
            Command::EditDest { service, dest } => {
                let svc = self
                    .service_mut(service)
                    .ok_or(OpError::ServiceNotDefined)?;
                check_thresholds(dest)?;
                let i = find_dest(svc, dest.addr, dest.port).ok_or(OpError::NoSuchDest)?;
                set_dest(&mut svc.dests[i], dest);
            }
            Command::DeleteDest {
                service,
                addr,
                port,
            } => {
                let svc = self
                    .service_mut(service)
                    .ok_or(OpError::ServiceNotDefined)?;
                let i = find_dest(svc, *addr, *port).ok_or(OpError::NoSuchDest)?;
                svc.dests.remove(i);
            }
            _ => {}
        }
        Ok(())
    }
}

fn check_scheduler(spec: &ServiceSpec) -> Result<(), OpError> {
    if SCHEDULERS.contains(&spec.scheduler.as_str()) {
        Ok(())
    } else {
        Err(OpError::SchedulerNotFound)
    }
}

/// The kernel refuses `l > u` with ERANGE (`ip_vs_add_dest`, `ip_vs_edit_dest`).
fn check_thresholds(dest: &DestSpec) -> Result<(), OpError> {
    if dest.lower > dest.upper {
        Err(OpError::Other("Numerical result out of range".to_string()))
    } else {
        Ok(())
    }
}

fn find_dest(svc: &Service, addr: IpAddr, port: u16) -> Option<usize> {
    svc.dests
        .iter()
        .position(|d| d.addr == addr && d.port == port)
}

/// `-A`/`-E` send a complete service: omitted options revert to their defaults.
fn set_service(svc: &mut Service, spec: &ServiceSpec) {
    svc.scheduler.clone_from(&spec.scheduler);
    svc.sched_flags = spec.sched_flags;
    svc.persistent = spec.persistent;
    svc.netmask = spec.netmask;
    svc.pe_name.clone_from(&spec.pe_name);
    svc.ops = spec.ops;
}

/// `-a`/`-e` send a complete destination: omitted options revert to their defaults.
fn set_dest(d: &mut Dest, spec: &DestSpec) {
    d.method = spec.method;
    d.tunnel = spec.tunnel;
    d.weight = i32::from(spec.weight);
    d.upper = spec.upper;
    d.lower = spec.lower;
}
