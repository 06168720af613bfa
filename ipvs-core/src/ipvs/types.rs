//! The vocabulary of [`Ipvs`](super::Ipvs): configuration, verdicts, refusals, counters.

use std::net::Ipv4Addr;

use crate::conn::{
    ConnError, ConnKey, ConnState, ConnTableConfig, InvariantViolation, TcpFlags, TemplateId,
};
use crate::service::{ServiceError, ServiceKey};
use crate::time::Instant;
use crate::types::{DestId, ForwardMethod, Protocol};

/// Construction parameters and the two sysctls of an [`Ipvs`](super::Ipvs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsConfig {
    /// Connection table size bound, hash seed, sweep interval.
    pub conn_table: ConnTableConfig,
    /// Seed for the schedulers that draw random numbers (`twos`); each service gets a seed
    /// derived from it and the order services were added in.
    pub sched_seed: u64,
    /// Sysctl `expire_nodest_conn` (default off): remove a connection whose destination was
    /// removed when its next inbound packet arrives.
    pub expire_nodest_conn: bool,
    /// Sysctl `expire_quiescent_template` (default off): do not honour a persistence
    /// template whose destination has weight 0.
    pub expire_quiescent_template: bool,
    /// Sysctl `sloppy_tcp` (default off): create TCP connections from any non-RST segment,
    /// not only SYNs.
    pub sloppy_tcp: bool,
}

impl Default for IpvsConfig {
    fn default() -> Self {
        IpvsConfig {
            conn_table: ConnTableConfig::default(),
            sched_seed: 0x1b5_5eed,
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            sloppy_tcp: false,
        }
    }
}

/// Errors of the administrative methods.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpvsError {
    /// A service or destination operation failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A connection-table setting was refused (timeouts out of range).
    #[error(transparent)]
    Conn(#[from] ConnError),
}

/// Why no connection was created for a new flow. Each variant has a counter in
/// [`RefusalCounts`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A TCP segment that may not open a connection (not a SYN, or a RST) and `sloppy_tcp`
    /// is off. Not IPVS traffic: the kernel passes it to the local stack.
    #[error("TCP segment without SYN (or with RST) cannot open a connection")]
    NotSyn,
    /// No virtual service matches the packet.
    #[error("no virtual service for {proto} {vaddr}:{vport} (mark {fwmark})")]
    NoService {
        /// Packet protocol.
        proto: Protocol,
        /// Packet destination address.
        vaddr: Ipv4Addr,
        /// Packet destination port.
        vport: u16,
        /// Packet mark.
        fwmark: u32,
    },
    /// Only a port-0 service matched and it is not persistent.
    #[error("service {0}: port zero is only supported in persistent services")]
    PortZeroNotPersistent(ServiceKey),
    /// The scheduler found no eligible destination (all weight 0, overloaded, or none). The
    /// kernel drops the packet (and may answer ICMP); the engine decides.
    #[error("service {0}: no destination available")]
    NoDestination(ServiceKey),
    /// The connection table is full (connections plus templates).
    #[error("connection table full ({max} entries)")]
    TableFull {
        /// The bound.
        max: usize,
    },
    /// A live connection with this key exists: the packet belongs on [`super::Ipvs::in_packet`].
    #[error("connection {0:?} already exists")]
    ConnExists(ConnKey),
    /// 2^24 - 1 persistence templates exist.
    #[error("too many persistence templates")]
    TemplateSlotsExhausted,
    /// The connection table refused in a way this module never provokes; a bug.
    #[error("unexpected connection table error: {0}")]
    Unexpected(ConnError),
}

/// One counter per [`Refusal`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefusalCounts {
    /// [`Refusal::NotSyn`].
    pub not_syn: u64,
    /// [`Refusal::NoService`].
    pub no_service: u64,
    /// [`Refusal::PortZeroNotPersistent`].
    pub port_zero_not_persistent: u64,
    /// [`Refusal::NoDestination`].
    pub no_destination: u64,
    /// [`Refusal::TableFull`].
    pub table_full: u64,
    /// [`Refusal::ConnExists`].
    pub conn_exists: u64,
    /// [`Refusal::TemplateSlotsExhausted`].
    pub template_slots_exhausted: u64,
    /// [`Refusal::Unexpected`].
    pub unexpected: u64,
}

impl RefusalCounts {
    pub(crate) fn count(&mut self, r: &Refusal) {
        let c = match r {
            Refusal::NotSyn => &mut self.not_syn,
            Refusal::NoService { .. } => &mut self.no_service,
            Refusal::PortZeroNotPersistent(_) => &mut self.port_zero_not_persistent,
            Refusal::NoDestination(_) => &mut self.no_destination,
            Refusal::TableFull { .. } => &mut self.table_full,
            Refusal::ConnExists(_) => &mut self.conn_exists,
            Refusal::TemplateSlotsExhausted => &mut self.template_slots_exhausted,
            Refusal::Unexpected(_) => &mut self.unexpected,
        };
        *c += 1;
    }
}

/// Counters of the glue itself (the connection table has its own, [`crate::conn::ConnTable::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpvsStats {
    /// Connections created by [`super::Ipvs::new_connection`].
    pub conns_created: u64,
    /// Persistence templates created.
    pub templates_created: u64,
    /// New connections that followed an existing template.
    pub template_hits: u64,
    /// Templates not honoured (destination removed, or quiesced with
    /// `expire_quiescent_template`) and invalidated.
    pub templates_invalidated: u64,
    /// Inbound packets dropped because their connection's destination was removed.
    pub nodest_dropped: u64,
    /// Of those, connections removed at once (`expire_nodest_conn`).
    pub nodest_expired: u64,
    /// Entries in TIME_WAIT or CLOSE expired by a new SYN with the same addresses and
    /// ports, which was then scheduled anew (`conn_reuse_mode`).
    pub reused: u64,
}

/// A new flow: the first inbound packet of a connection the table does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewFlow {
    /// Protocol, client and virtual address and port, as the packet has them.
    pub key: ConnKey,
    /// The packet's firewall mark, 0 for none.
    pub fwmark: u32,
    /// The TCP flags (ignored for UDP).
    pub tcp_flags: TcpFlags,
}

/// What the engine needs to forward a packet of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// The connection.
    pub conn: ConnKey,
    /// The destination (a revived destination keeps its id).
    pub dest: DestId,
    /// Real server address.
    pub daddr: Ipv4Addr,
    /// Real server port (never 0: a destination port of 0 means the virtual port).
    pub dport: u16,
    /// Forwarding method, fixed when the connection was created.
    pub method: ForwardMethod,
    /// State after this packet.
    pub state: ConnState,
    /// State before this packet (equal to `state` on no transition; `NONE` for a new TCP
    /// connection, `UDP` for UDP).
    pub old_state: ConnState,
    /// When the connection expires unless another packet arrives.
    pub expires: Instant,
    /// Controlling persistence template.
    pub template: Option<TemplateId>,
}

/// How [`super::Ipvs::new_connection`] chose the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Non-persistent service: the scheduler picked.
    Scheduled,
    /// Persistent service, live template followed.
    Template(TemplateId),
    /// Persistent service, the scheduler picked and a new template was made.
    NewTemplate(TemplateId),
}

/// Result of [`super::Ipvs::new_connection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    /// The service that took the flow.
    pub service: ServiceKey,
    /// Where its packets go.
    pub forward: Forward,
    /// How the destination was chosen.
    pub placement: Placement,
}

/// Verdict of [`super::Ipvs::in_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Forward the packet.
    Forward(Forward),
    /// No live connection with this key (candidate for [`super::Ipvs::new_connection`]).
    NoConn,
    /// The connection's destination was removed: drop the packet silently. `expired` says
    /// whether the entry was removed too (`expire_nodest_conn`); if not, it was left
    /// untouched (no state change, no refresh).
    DestGone {
        /// The stored destination id.
        dest: DestId,
        /// Whether the entry was removed.
        expired: bool,
    },
}

/// Verdict of [`super::Ipvs::inbound`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Packet of a known connection.
    Existing(Delivery),
    /// A new connection was created.
    New(Scheduled),
    /// No connection, and none could be created.
    Refused(Refusal),
}

/// A broken invariant: a bug in `ipvs-core`, never a caller error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpvsInvariantViolation {
    /// The connection table's own invariants.
    #[error(transparent)]
    Conn(#[from] InvariantViolation),
    /// Destination counters disagree with the connection table.
    #[error("accounting invariant: {0}")]
    Accounting(String),
}
