//! Stage 2 output: the typed, validated configuration.
//!
//! Every field holds Piranha's default when its keyword is absent (documented per field and
//! in `docs/lvs-cf.md`). Values are range-checked; cross-field rules (duplicate services,
//! address required when active, port 0) hold for every `Config` the parser returns.
//! `send`/`expect`/`send_program`/`start_cmd`/`stop_cmd` keep backslash escapes verbatim
//! (nanny translates them); one pair of surrounding quotes is removed from every quoted value.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use ipvs_core::types::{ForwardMethod, Protocol, SchedFlag, SchedulerKind};

use super::error::LvsCfWarning;

/// `sync_transport = unicast | multicast` (extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SyncTransport {
    /// UDP to the partner (default).
    Unicast,
    /// UDP to `sync_group`, as the kernel's sync daemon.
    Multicast,
}

impl std::fmt::Display for SyncTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SyncTransport::Unicast => "unicast",
            SyncTransport::Multicast => "multicast",
        })
    }
}

/// `service = lvs | fos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceMode {
    /// Virtual servers (IPVS), the default.
    Lvs,
    /// Failover services (legacy FOS mode).
    Fos,
}

/// `reservation_conflict_action = nothing | preempt` (FOS shared SCSI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReservationConflictAction {
    /// Leave the reservation alone.
    Nothing,
    /// Take the disk over.
    Preempt,
}

/// An `IP DEVICE` pair (`address` of a virtual/failover section, `nat_router`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AddressOnDevice {
    /// The address (resolved if a host name was written).
    pub addr: Ipv4Addr,
    /// The interface, normally an alias such as `eth0:1`.
    pub device: String,
}

/// The whole file, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Global keywords.
    pub global: Global,
    /// `virtual` sections, in file order (inactive ones included).
    pub virtuals: Vec<VirtualService>,
    /// `failover` sections, in file order (Piranha's `lvsRelocateFS`).
    pub failovers: Vec<VirtualService>,
    /// Things accepted but worth reporting (e.g. `backup_private` overwritten).
    pub warnings: Vec<LvsCfWarning>,
}

impl Config {
    /// Active virtual services, in file order.
    pub fn active_virtuals(&self) -> impl Iterator<Item = &VirtualService> {
        self.virtuals.iter().filter(|v| v.active)
    }
}

/// Global keywords.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// `serial_no` (GUI revision counter), default 0.
    pub serial_no: u64,
    /// `service`, default [`ServiceMode::Lvs`].
    pub service: ServiceMode,
    /// `primary`, default 0.0.0.0.
    pub primary: Ipv4Addr,
    /// `primary_private`; after post-processing equals `primary` when `primary` was given
    /// and `primary_private` was not. Default 0.0.0.0.
    pub primary_private: Ipv4Addr,
    /// `primary_shared` (FOS shared-SCSI device), default none.
    pub primary_shared: Option<String>,
    /// `backup_active`, default false.
    pub backup_active: bool,
    /// `backup`, default 0.0.0.0.
    pub backup: Ipv4Addr,
    /// `backup_private`; overwritten with `backup` when `primary` was given and
    /// `primary_private` was not (Piranha behaviour, with a warning). Default 0.0.0.0.
    pub backup_private: Ipv4Addr,
    /// `backup_shared`, default none.
    pub backup_shared: Option<String>,
    /// `heartbeat` (read by no Piranha daemon), default false.
    pub heartbeat: bool,
    /// `heartbeat_port` (UDP), default 539.
    pub heartbeat_port: u16,
    /// `keepalive`, default 2 s; sub-second values allowed.
    pub keepalive: Duration,
    /// `deadtime`, default 5 s; sub-second values allowed.
    pub deadtime: Duration,
    /// `network`: nat → Masq (default), direct → Route, tunnel → Tunnel.
    pub network: ForwardMethod,
    /// `nat_router = IP DEVICE`, default none.
    pub nat_router: Option<AddressOnDevice>,
    /// `nat_nmask`, default 0.0.0.0 (no netmask given to the interface).
    pub nat_nmask: Ipv4Addr,
    /// `debug_level` (unused), default `NONE`.
    pub debug_level: String,
    /// `rsh_command`, default `rsh`.
    pub rsh_command: String,
    /// `monitor_links` (any integer; non-zero = on), default false.
    pub monitor_links: bool,
    /// `syncdaemon`, default false.
    pub syncdaemon: bool,
    /// `syncd_iface`, default `eth0`.
    pub syncd_iface: String,
    /// `syncd_id` 0..=255, default 0.
    pub syncd_id: u8,
    /// `tcp_timeout` seconds, 0 = leave unchanged (default).
    pub tcp_timeout: u32,
    /// `tcpfin_timeout` seconds, 0 = leave unchanged (default).
    pub tcpfin_timeout: u32,
    /// `udp_timeout` seconds, 0 = leave unchanged (default).
    pub udp_timeout: u32,
    /// `active_cmd`, default none.
    pub active_cmd: Option<String>,
    /// `inactive_cmd`, default none.
    pub inactive_cmd: Option<String>,
    /// `hard_shutdown`, default true.
    pub hard_shutdown: bool,
    /// `ipvsadm` path, default `/sbin/ipvsadm`.
    pub ipvsadm: PathBuf,
    /// `reservation_conflict_action`, default none.
    pub reservation_conflict_action: Option<ReservationConflictAction>,
    /// `sync` (legacy, unused), default false.
    pub sync: bool,
    /// `heartbeat_key` (extension): an absolute path to the file holding the shared key of the
    /// authenticated heartbeat. Default none (Piranha's unauthenticated format). pulse reads
    /// and checks the file itself (mode, length); the parser checks only the path's form.
    pub heartbeat_key: Option<PathBuf>,
    /// `cluster_id` (extension) 0..=4294967295, default 0: carried in authenticated
    /// heartbeats so that two pairs sharing a network never take each other's.
    pub cluster_id: u32,
    /// `arp_count` (extension) 1..=100, default 5: gratuitous ARPs per floating address after
    /// a takeover, the first at once (Piranha sent five).
    pub arp_count: u32,
    /// `arp_interval` (extension), default 1 s: the pause between two of those ARPs.
    pub arp_interval: Duration,
    /// `sync_peer` (extension): where connection sync datagrams go with unicast. Default
    /// none: the partner's private address, else its public one.
    pub sync_peer: Option<Ipv4Addr>,
    /// `sync_port` (extension) 1..=65535, default 8848 (the kernel's sync port).
    pub sync_port: u16,
    /// `sync_transport` (extension), default unicast.
    pub sync_transport: SyncTransport,
    /// `sync_group` (extension): the multicast group, default 224.0.0.81 (the kernel's).
    pub sync_group: Ipv4Addr,
    /// `status_address` (extension): `IP:PORT` where lvsd serves its read-only status page
    /// and Prometheus `/metrics`. Default none: not served.
    pub status_address: Option<SocketAddrV4>,
    /// Line of every global keyword present, for messages about them.
    pub lines: BTreeMap<String, usize>,
}

impl Default for Global {
    fn default() -> Self {
        Self {
            serial_no: 0,
            service: ServiceMode::Lvs,
            primary: Ipv4Addr::UNSPECIFIED,
            primary_private: Ipv4Addr::UNSPECIFIED,
            primary_shared: None,
            backup_active: false,
            backup: Ipv4Addr::UNSPECIFIED,
            backup_private: Ipv4Addr::UNSPECIFIED,
            backup_shared: None,
            heartbeat: false,
            heartbeat_port: 539,
            keepalive: Duration::from_secs(2),
            deadtime: Duration::from_secs(5),
            network: ForwardMethod::Masq,
            nat_router: None,
            nat_nmask: Ipv4Addr::UNSPECIFIED,
            debug_level: "NONE".to_owned(),
            rsh_command: "rsh".to_owned(),
            monitor_links: false,
            syncdaemon: false,
            syncd_iface: "eth0".to_owned(),
            syncd_id: 0,
            tcp_timeout: 0,
            tcpfin_timeout: 0,
            udp_timeout: 0,
            active_cmd: None,
            inactive_cmd: None,
            hard_shutdown: true,
            ipvsadm: PathBuf::from("/sbin/ipvsadm"),
            reservation_conflict_action: None,
            sync: false,
            heartbeat_key: None,
            cluster_id: 0,
            arp_count: 5,
            arp_interval: Duration::from_secs(1),
            sync_peer: None,
            sync_port: 8848,
            sync_transport: SyncTransport::Unicast,
            sync_group: Ipv4Addr::new(224, 0, 0, 81),
            status_address: None,
            lines: BTreeMap::new(),
        }
    }
}

/// A `virtual` (or `failover`) section.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualService {
    /// Section name.
    pub name: String,
    /// Line of `virtual NAME {`.
    pub line: usize,
    /// `active`, default false (inactive sections are ignored by the daemons).
    pub active: bool,
    /// `address = IP DEVICE`; always `Some` when `active`.
    pub address: Option<AddressOnDevice>,
    /// `vip_nmask`, default 0.0.0.0.
    pub vip_nmask: Ipv4Addr,
    /// `port`, default 80 (number or tcp service name).
    pub port: u16,
    /// `protocol`, default tcp.
    pub protocol: Protocol,
    /// `fwmark` (> 0 when given), default none.
    pub fwmark: Option<u32>,
    /// `scheduler`, default wlc; all fourteen kernel schedulers are accepted.
    pub scheduler: SchedulerKind,
    /// `sched_flags` (extension), as written, each accepted by `scheduler`.
    pub sched_flags: Vec<SchedFlag>,
    /// `persistent` seconds, 0 (default) = not persistent.
    pub persistent: u32,
    /// `pmask` as written, default 0.0.0.0 (see `desired.rs` for how it is applied).
    pub pmask: Ipv4Addr,
    /// `send`, unquoted, escapes verbatim; `Some("")` means connect only.
    pub send: Option<String>,
    /// `expect`, unquoted, escapes verbatim.
    pub expect: Option<String>,
    /// `use_regex`, default false.
    pub use_regex: bool,
    /// `send_program`, unquoted (`%h`/`%p` untouched).
    pub send_program: Option<String>,
    /// `load_monitor` (any word), default none.
    pub load_monitor: Option<String>,
    /// `timeout` (probe interval and timeout), default 10 s.
    pub timeout: Duration,
    /// `reentry`, default 180 s.
    pub reentry: Duration,
    /// `quiesce_server`, default false.
    pub quiesce_server: bool,
    /// `sorry_server` (dotted quad; 0.0.0.0 = none), default none.
    pub sorry_server: Option<Ipv4Addr>,
    /// `client_monitor`, default `/usr/sbin/nanny`.
    pub client_monitor: PathBuf,
    /// `start_cmd` (FOS), unquoted.
    pub start_cmd: Option<String>,
    /// `stop_cmd` (FOS), unquoted.
    pub stop_cmd: Option<String>,
    /// `master` (legacy, unused), resolved.
    pub master: Option<Ipv4Addr>,
    /// `dirs = [ ... ]` (legacy, unused), default empty.
    pub dirs: Vec<String>,
    /// Health-check extensions passed to nanny (`rise`, `fall`, `probe_timeout`, `http_*`,
    /// `https`, `tls_*`).
    pub health: HealthExtensions,
    /// `server` sections, in file order (inactive ones included).
    pub servers: Vec<RealServer>,
    /// Line of every keyword present in this section.
    pub lines: BTreeMap<String, usize>,
}

/// This project's health-check keywords of a `virtual` section (not in Piranha). Each maps to
/// one nanny option (`lvsd::nanny_args`); absent keywords keep Piranha's behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthExtensions {
    /// `rise`: good probes that re-admit a failed server (nanny `--rise`); default
    /// `max(1, reentry / timeout)`.
    pub rise: Option<u32>,
    /// `fall`: failed probes that take a server out (nanny `--fall`); default 1.
    pub fall: Option<u32>,
    /// `probe_timeout`: seconds one probe may take (nanny `--probe-timeout`); default
    /// `timeout`.
    pub probe_timeout: Option<Duration>,
    /// `http_path`: HTTP(S) GET probe of this path (nanny `--http-get`), starts with `/`.
    pub http_path: Option<String>,
    /// `https = 1`: the GET uses TLS (nanny `--https`). Default 0.
    pub https: bool,
    /// `http_host`: `Host` header of the GET (nanny `--http-host`).
    pub http_host: Option<String>,
    /// `http_status`: accepted statuses such as `200,204,300-399` (nanny `--http-status`).
    pub http_status: Option<String>,
    /// `tls_ca`: PEM bundle of CAs trusted for `https` (nanny `--tls-ca`).
    pub tls_ca: Option<PathBuf>,
    /// `tls_verify = 0`: do not verify the certificate (nanny `--tls-no-verify`). Default 1.
    pub tls_verify: bool,
}

impl Default for HealthExtensions {
    fn default() -> Self {
        Self {
            rise: None,
            fall: None,
            probe_timeout: None,
            http_path: None,
            https: false,
            http_host: None,
            http_status: None,
            tls_ca: None,
            tls_verify: true,
        }
    }
}

impl VirtualService {
    /// A section with every default, as Piranha's `lvsInitVirtualServer` sets them.
    pub fn new(name: &str, line: usize) -> Self {
        Self {
            name: name.to_owned(),
            line,
            active: false,
            address: None,
            vip_nmask: Ipv4Addr::UNSPECIFIED,
            port: 80,
            protocol: Protocol::Tcp,
            fwmark: None,
            scheduler: SchedulerKind::Wlc,
            sched_flags: Vec::new(),
            persistent: 0,
            pmask: Ipv4Addr::UNSPECIFIED,
            send: None,
            expect: None,
            use_regex: false,
            send_program: None,
            load_monitor: None,
            timeout: Duration::from_secs(10),
            reentry: Duration::from_secs(180),
            quiesce_server: false,
            sorry_server: None,
            client_monitor: PathBuf::from("/usr/sbin/nanny"),
            start_cmd: None,
            stop_cmd: None,
            master: None,
            dirs: Vec::new(),
            health: HealthExtensions::default(),
            servers: Vec::new(),
            lines: BTreeMap::new(),
        }
    }

    /// Active real servers, in file order.
    pub fn active_servers(&self) -> impl Iterator<Item = &RealServer> {
        self.servers.iter().filter(|s| s.active)
    }
}

/// A `server` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    /// Section name.
    pub name: String,
    /// Line of `server NAME {`.
    pub line: usize,
    /// `address`, default 0.0.0.0 (an active server must set it).
    pub address: Ipv4Addr,
    /// `active`, default false.
    pub active: bool,
    /// `weight` 0..=65535, default 1.
    pub weight: u32,
    /// `port` (numbers only); default: the virtual `port` as read when `server` opened.
    pub port: u16,
    /// Line of every keyword present in this section.
    pub lines: BTreeMap<String, usize>,
}
