//! The control API's vocabulary: paths, service ids and the JSON bodies, shared by the
//! server (inside lvsd) and its clients (nanny, lvsadm, pulse). Documented for operators in
//! `docs/api.md`; this file is the source of truth.
//!
//! Versioned paths, all under `/v1`:
//!
//! | method | path | body → answer |
//! |---|---|---|
//! | GET | `/v1/status` | → [`StatusView`] |
//! | GET | `/v1/services` | → [`ServicesView`] |
//! | GET | `/v1/services/{service}` | → [`ServiceView`] |
//! | GET | `/v1/services/{service}/servers/{rip}:{rport}` | → [`ServerView`] |
//! | PATCH | `/v1/services/{service}/servers/{rip}:{rport}` | [`ServerPatch`] → [`ServerView`] |
//! | GET | `/v1/role` | → [`RoleView`] |
//! | PUT | `/v1/role` | [`RoleView`] → [`RoleView`] |
//! | GET | `/v1/sync` | → [`SyncView`] |
//! | POST | `/v1/services` | [`ServiceSpec`] → [`ServiceView`] (`-A`) |
//! | PUT | `/v1/services/{service}` | [`ServiceSpec`] → [`ServiceView`] (`-E`) |
//! | DELETE | `/v1/services/{service}` | → `{}` (`-D`) |
//! | DELETE | `/v1/services` | → `{}` (`-C`) |
//! | POST | `/v1/services/{service}/servers` | [`ServerSpec`] → [`ServerView`] (`-a`) |
//! | PUT | `/v1/services/{service}/servers/{rip}:{rport}` | [`ServerSpec`] → [`ServerView`] (`-e`) |
//! | DELETE | `/v1/services/{service}/servers/{rip}:{rport}` | → `{}` (`-d`) |
//! | POST | `/v1/zero` | [`ZeroRequest`] → `{}` (`-Z`) |
//! | GET | `/v1/timeouts` | → [`TimeoutsView`] |
//! | PUT | `/v1/timeouts` | [`TimeoutsView`] → [`TimeoutsView`] (`--set`) |
//! | GET | `/v1/connections` | → [`ConnectionsView`] (`-L -c`) |
//! | POST | `/v1/reload` | → [`ReloadView`] (as SIGHUP; 400 with the file's error) |
//!
//! `{service}` is a [`ServiceId`]: `tcp:VIP:PORT`, `udp:VIP:PORT` or `fwmark:MARK`. Errors
//! answer with a status (400 malformed, 404 unknown, 405 method, 408 request too slow, 409
//! already exists, 413 body too large, 422 a value out of range, 503 shutting down) and an
//! [`ErrorBody`].
//!
//! Pure data: no I/O, never panics.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::str::FromStr;

use ipvs_core::service::ServiceKey;
use ipvs_core::types::Protocol;
use serde::{Deserialize, Serialize};

/// The API version, the first path segment.
pub const VERSION: &str = "v1";

/// Where lvsd listens unless told otherwise (`lvsd --socket`, `LVSD_SOCKET`).
pub const DEFAULT_SOCKET: &str = "/run/lvsd/lvsd.sock";

/// Environment variable naming the socket for lvsd's clients (nanny inherits it).
pub const SOCKET_ENV: &str = "LVSD_SOCKET";

/// Largest request body the server reads.
pub const MAX_BODY: usize = 64 * 1024;

/// A virtual service as it appears in paths: `tcp:VIP:PORT`, `udp:VIP:PORT`, `fwmark:MARK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(pub ServiceKey);

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ServiceKey::Inet {
                protocol,
                addr,
                port,
            } => {
                let p = match protocol {
                    Protocol::Tcp => "tcp",
                    Protocol::Udp => "udp",
                };
                write!(f, "{p}:{addr}:{port}")
            }
            ServiceKey::Fwmark(m) => write!(f, "fwmark:{m}"),
        }
    }
}

/// Why a service id did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad service id {0:?}: expected tcp:VIP:PORT, udp:VIP:PORT or fwmark:MARK")]
pub struct BadServiceId(pub String);

impl FromStr for ServiceId {
    type Err = BadServiceId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadServiceId(s.to_owned());
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        let protocol = match kind {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "fwmark" => {
                let mark = rest.parse::<u32>().map_err(|_| bad())?;
                return if mark == 0 {
                    Err(bad())
                } else {
                    Ok(ServiceId(ServiceKey::Fwmark(mark)))
                };
            }
            _ => return Err(bad()),
        };
        let sa = rest.parse::<SocketAddrV4>().map_err(|_| bad())?;
        Ok(ServiceId(ServiceKey::Inet {
            protocol,
            addr: *sa.ip(),
            port: sa.port(),
        }))
    }
}

impl Serialize for ServiceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ServiceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The path of one real server of a service.
pub fn server_path(service: &ServiceId, server: SocketAddrV4) -> String {
    format!("/{VERSION}/services/{service}/servers/{server}")
}

/// What a health checker or an operator says about a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerState {
    /// In the table with its weight.
    Up,
    /// Out of the table (removed; its connections follow `expire_nodest_conn`).
    Down,
    /// In the table with weight 0: no new connections, existing ones go on.
    Quiesced,
}

impl fmt::Display for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerState::Up => "up",
            ServerState::Down => "down",
            ServerState::Quiesced => "quiesced",
        })
    }
}

/// `PATCH …/servers/{rip}:{rport}`: every field optional; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerPatch {
    /// New state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ServerState>,
    /// New weight (0..=65535; the kernel's limit is i32 but ipvsadm takes 0..65535).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Why (a probe's message); shown in the status and the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Largest weight the API accepts (ipvsadm's range).
pub const MAX_WEIGHT: u32 = 65535;

/// `POST /v1/services` (ipvsadm `-A`) and `PUT /v1/services/{service}` (`-E`): a virtual
/// service as ipvsadm describes it. A run-time change: the next reload puts lvs.cf's table
/// back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// The service (`tcp:VIP:PORT`, `udp:VIP:PORT`, `fwmark:MARK`).
    pub id: ServiceId,
    /// Scheduler name (`rr`, `wlc`, …).
    pub scheduler: String,
    /// Scheduler flags (`sh-fallback`, `flag-1`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Persistence timeout in seconds (`-p`), none when not persistent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent: Option<u32>,
    /// Persistence netmask (`-M`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netmask: Option<Ipv4Addr>,
}

/// `POST /v1/services/{service}/servers` (ipvsadm `-a`) and `PUT
/// /v1/services/{service}/servers/{rip}:{rport}` (`-e`): a real server as ipvsadm describes
/// it. Absent fields: defaults on `-a` (route, weight 1, no thresholds), unchanged on `-e`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// `RIP:RPORT` (port 0: the service's port, as ipvsadm).
    pub address: SocketAddrV4,
    /// `masq`, `route` or `tunnel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Weight 0..=65535.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Upper connection threshold (`-x`), 0 = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<u32>,
    /// Lower connection threshold (`-y`), 0 = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<u32>,
}

/// `GET`/`PUT /v1/timeouts` (ipvsadm `--timeout`, `--set`): seconds; 0 in a `PUT` leaves
/// that timeout unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsView {
    /// Established TCP.
    pub tcp: u32,
    /// TCP after a FIN.
    pub tcpfin: u32,
    /// UDP.
    pub udp: u32,
}

/// `POST /v1/zero` (ipvsadm `-Z`): one service's counters, or every one's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroRequest {
    /// The service; none for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceId>,
}

/// One entry of `GET /v1/connections` (ipvsadm `-L -c`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnView {
    /// `tcp` or `udp`.
    pub proto: String,
    /// Client address.
    pub client: SocketAddrV4,
    /// Virtual address.
    #[serde(rename = "virtual")]
    pub vaddr: SocketAddrV4,
    /// Real server.
    pub server: SocketAddrV4,
    /// State as ipvsadm prints it (`ESTABLISHED`, `FIN_WAIT`, `UDP`, `NONE` for templates).
    pub state: String,
    /// Milliseconds until it expires.
    pub expires_ms: u64,
}

/// `GET /v1/connections`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionsView {
    /// Templates first, then connections.
    pub connections: Vec<ConnView>,
}

/// `POST /v1/reload`: what the reload changed, one line per change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadView {
    /// The changes applied, in the order applied.
    pub changes: Vec<String>,
}

/// The director's role in the pair (set by pulse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Forwarding: the virtual services are steered to the engine.
    Active,
    /// Ready but not forwarding: the table is programmed and the nannies probe, so that a
    /// takeover starts with a healthy table, but no packet is steered to the engine.
    Standby,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Active => "active",
            Role::Standby => "standby",
        })
    }
}

/// `GET`/`PUT /v1/role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleView {
    /// The role.
    pub role: Role,
    /// Why (pulse's reason: "partner dead after 0.15 s"); shown on the status page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Traffic counters (`ipvsadm --stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsView {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client → real server.
    pub in_pkts: u64,
    /// Packets real server → client (NAT only).
    pub out_pkts: u64,
    /// Bytes client → real server.
    pub in_bytes: u64,
    /// Bytes real server → client (NAT only).
    pub out_bytes: u64,
}

/// Rates from the kernel's two-second estimator (`ipvsadm --rate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatesView {
    /// Connections per second.
    pub cps: u64,
    /// Packets per second, client → real server.
    pub in_pps: u64,
    /// Packets per second, real server → client.
    pub out_pps: u64,
    /// Bytes per second, client → real server.
    pub in_bps: u64,
    /// Bytes per second, real server → client.
    pub out_bps: u64,
}

/// One real server of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerView {
    /// `RIP:RPORT`.
    pub address: SocketAddrV4,
    /// The `server` section's name (empty for the sorry server).
    pub name: String,
    /// `masq`, `route` or `tunnel`.
    pub method: String,
    /// Weight in lvs.cf.
    pub config_weight: u32,
    /// Weight asked for at run time (a health checker's slow start or load monitor).
    pub weight: u32,
    /// State asked for (by the health checker or an operator).
    pub state: ServerState,
    /// Why the state is what it is.
    pub reason: String,
    /// Whether this is the service's sorry server.
    pub sorry: bool,
    /// Whether the engine holds it now, and with which weight.
    pub in_table: bool,
    /// Weight in the engine (0 when quiesced; absent when not in the table).
    pub table_weight: Option<u32>,
    /// Active connections (`ActiveConn`).
    pub active_conns: u32,
    /// Inactive connections (`InActConn`).
    pub inactive_conns: u32,
    /// Persistence templates pointing at it.
    pub persistent_conns: u32,
    /// Upper connection threshold (`-x`), 0 = none.
    #[serde(default)]
    pub upper: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    #[serde(default)]
    pub lower: u32,
    /// Traffic.
    pub stats: StatsView,
    /// Rates.
    #[serde(default)]
    pub rates: RatesView,
}

/// One virtual service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    /// Path id.
    pub id: ServiceId,
    /// The `virtual` section's name.
    pub name: String,
    /// The virtual address.
    pub vip: Ipv4Addr,
    /// Scheduler name (`wlc`, …).
    pub scheduler: String,
    /// Scheduler flags (`sh-fallback`, `flag-1`, …).
    #[serde(default)]
    pub flags: Vec<String>,
    /// Persistence timeout in seconds.
    pub persistent: Option<u32>,
    /// Persistence netmask (`-M`), none for a single client address.
    #[serde(default)]
    pub netmask: Option<Ipv4Addr>,
    /// Whether the sorry server is in the table now.
    pub sorry_active: bool,
    /// Real servers (configured, then the sorry server if any).
    pub servers: Vec<ServerView>,
    /// Traffic.
    pub stats: StatsView,
    /// Rates.
    #[serde(default)]
    pub rates: RatesView,
}

/// `GET /v1/table[?counters=1]`: the table the engine holds now, as `ipvsadm -L` shows the
/// kernel's: only servers in the table (not those taken out), with the engine's weight (0
/// when quiesced), the sorry server while it stands in. Lean on purpose (no names, health
/// or reasons): `lvsadm -L` reads it on tables of ten thousand servers. Counters and rates
/// only with `?counters=1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableView {
    /// Most entries the connection table holds (`size=`).
    pub conn_capacity: usize,
    /// Services in lvs.cf order, then those added at run time.
    pub services: Vec<TableServiceView>,
}

/// One service of [`TableView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableServiceView {
    /// Path id.
    pub id: ServiceId,
    /// Scheduler name.
    pub scheduler: String,
    /// Scheduler flags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Persistence timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent: Option<u32>,
    /// Persistence netmask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netmask: Option<Ipv4Addr>,
    /// Traffic (with `?counters=1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<StatsView>,
    /// Rates (with `?counters=1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rates: Option<RatesView>,
    /// Real servers in the table.
    pub servers: Vec<TableServerView>,
}

/// One real server of [`TableServiceView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableServerView {
    /// `RIP:RPORT`.
    pub address: SocketAddrV4,
    /// `masq`, `route` or `tunnel`.
    pub method: String,
    /// Weight in the engine.
    pub weight: u32,
    /// Upper connection threshold, 0 = none.
    #[serde(default)]
    pub upper: u32,
    /// Lower connection threshold, 0 = none.
    #[serde(default)]
    pub lower: u32,
    /// `ActiveConn`.
    pub active: u32,
    /// `InActConn`.
    pub inactive: u32,
    /// Persistence templates.
    pub persistent: u32,
    /// Traffic (with `?counters=1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<StatsView>,
    /// Rates (with `?counters=1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rates: Option<RatesView>,
}

/// `GET /v1/services`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicesView {
    /// In lvs.cf order.
    pub services: Vec<ServiceView>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    /// lvsd's version.
    pub version: String,
    /// The configuration file.
    pub config: String,
    /// Number of services.
    pub services: usize,
    /// Connections (and templates) in the table.
    pub connections: usize,
    /// Supervised nannies running now.
    pub nannies_running: usize,
    /// API requests refused (malformed, unknown, too slow).
    pub api_errors: u64,
    /// Active or standby.
    pub role: Role,
    /// Most connections (and templates) the table holds.
    #[serde(default)]
    pub conn_capacity: usize,
}

/// `GET /v1/sync`: connection sync between the two directors (`docs/sync.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncView {
    /// Sync runs (`syncdaemon = 1`, a key, a peer).
    pub enabled: bool,
    /// Why it does not run, when it does not.
    pub off_reason: Option<String>,
    /// `unicast` or `multicast`.
    pub transport: Option<String>,
    /// The address and port the sync socket is bound to.
    pub local: Option<SocketAddrV4>,
    /// Where datagrams go (the partner, or the multicast group).
    pub peer: Option<SocketAddrV4>,
    /// `syncd_id`.
    pub syncd_id: u8,
    /// The interface sync is bound to or joins the group on, if any.
    #[serde(default)]
    pub iface: Option<String>,
    /// This director streams its changes (it is active).
    pub streaming: bool,
    /// Datagrams and entries sent.
    pub sent: SyncSentView,
    /// Datagrams received: accepted, and dropped by reason.
    pub received: SyncReceivedView,
    /// Records applied to the connection table, and refused by reason.
    pub imported: SyncImportedView,
    /// The engine's change feed.
    pub feed: SyncFeedView,
    /// Bulk resync, both as the side that asks and as the side that answers.
    pub resync: SyncResyncView,
}

/// Sending counters of [`SyncView`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSentView {
    /// Datagrams handed to the socket.
    pub datagrams: u64,
    /// Entries in them.
    pub entries: u64,
    /// Sealed datagrams dropped because the send queue was full.
    pub dropped_datagrams: u64,
    /// Entries in those.
    pub dropped_entries: u64,
    /// Resync requests sent (first tries and retries).
    pub resync_requests: u64,
    /// sendto(2) failures other than a full socket buffer.
    pub send_errors: u64,
}

/// Receiving counters of [`SyncView`]: one per drop reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReceivedView {
    /// Datagrams accepted.
    pub accepted: u64,
    /// Entries in them.
    pub entries: u64,
    /// From an address that is not the partner's.
    pub wrong_source: u64,
    /// Shorter than their header or kind says.
    pub truncated: u64,
    /// Not `LVSS`.
    pub bad_magic: u64,
    /// Another wire version.
    pub bad_version: u64,
    /// Larger than allowed.
    pub oversized: u64,
    /// Unknown kind.
    pub bad_kind: u64,
    /// Length not what kind and count say.
    pub length_mismatch: u64,
    /// Another `syncd_id`.
    pub wrong_id: u64,
    /// The HMAC does not verify (spoofed, or another key).
    pub bad_mac: u64,
    /// Reserved fields set.
    pub reserved: u64,
    /// An invalid entry.
    pub bad_entry: u64,
    /// An old boot id, or too far behind the window.
    pub stale: u64,
    /// Older than one already accepted.
    pub reordered: u64,
    /// Seen before.
    pub replayed: u64,
    /// Updates not imported because this director is active.
    pub ignored_while_active: u64,
}

/// Import counters of [`SyncView`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncImportedView {
    /// New entries inserted.
    pub created: u64,
    /// Entries updated in place.
    pub updated: u64,
    /// Entries replaced (another real server for the same addresses).
    pub replaced: u64,
    /// Refused: no such service here.
    pub unknown_service: u64,
    /// Refused: no such real server in the service.
    pub unknown_dest: u64,
    /// Refused: a template for a service that is not persistent here.
    pub not_persistent: u64,
    /// Refused: a state that cannot follow the stored one.
    pub state_cannot_follow: u64,
    /// Refused: the connection table is full.
    pub table_full: u64,
    /// Refused by the connection table for another reason.
    pub conn_error: u64,
}

/// Change-feed counters of [`SyncView`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncFeedView {
    /// Keys waiting to be sent.
    pub queued: u64,
    /// Keys queued since the feed was turned on.
    pub pushed: u64,
    /// Keys dropped because the feed was full.
    pub dropped: u64,
}

/// Bulk-resync counters of [`SyncView`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResyncView {
    /// Sessions this director started (at start and on stepping down).
    pub requested: u64,
    /// Sessions that ended with every entry received.
    pub completed: u64,
    /// Sessions that ended with entries missing (asked again).
    pub incomplete: u64,
    /// A session is open (asked, not complete).
    pub in_progress: bool,
    /// Entries of the last completed session.
    pub last_entries: u64,
    /// Milliseconds from request to the end of the last completed session.
    pub last_ms: u64,
    /// Requests of the partner answered.
    pub answered: u64,
    /// Entries sent in answers.
    pub answered_entries: u64,
}

/// One thing that happened, for the status page and `GET /v1/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// `role`, `server`, `sorry`, `reload`, `runtime`, `start`.
    pub kind: String,
    /// What happened, as the journal says it.
    pub text: String,
}

/// `GET /v1/events`: the most recent events, newest first, and the last time this director
/// became active.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsView {
    /// Newest first; at most a few dozen.
    pub events: Vec<EventView>,
    /// The last change to `active`, with pulse's reason.
    pub last_takeover: Option<EventView>,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What was wrong, for a human.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ids_round_trip_and_refuse_junk() {
        for s in ["tcp:198.18.0.10:80", "udp:198.18.0.10:53", "fwmark:7"] {
            let id: ServiceId = s.parse().expect("valid id");
            assert_eq!(id.to_string(), s);
        }
        for s in [
            "",
            "tcp",
            "tcp:198.18.0.10",
            "sctp:198.18.0.10:80",
            "tcp:198.18.0.300:80",
            "tcp:198.18.0.10:70000",
            "fwmark:0",
            "fwmark:x",
        ] {
            assert!(s.parse::<ServiceId>().is_err(), "{s} must not parse");
        }
    }

    #[test]
    fn patch_refuses_unknown_fields_and_bad_states() {
        let p: ServerPatch =
            serde_json::from_str(r#"{"state":"quiesced","reason":"probe"}"#).expect("valid");
        assert_eq!(p.state, Some(ServerState::Quiesced));
        assert_eq!(p.weight, None);
        assert!(serde_json::from_str::<ServerPatch>(r#"{"state":"sideways"}"#).is_err());
        assert!(serde_json::from_str::<ServerPatch>(r#"{"wieght":3}"#).is_err());
        assert!(serde_json::from_str::<ServerPatch>(r#"{"weight":-1}"#).is_err());
    }

    #[test]
    fn server_paths() {
        let id: ServiceId = "tcp:198.18.0.10:80".parse().expect("valid");
        let rs = SocketAddrV4::new(Ipv4Addr::new(198, 18, 1, 2), 8080);
        assert_eq!(
            server_path(&id, rs),
            "/v1/services/tcp:198.18.0.10:80/servers/198.18.1.2:8080"
        );
    }
}
