//! [`Verdict`], [`DropReason`] and the engine's counters.

use core::net::Ipv4Addr;

/// What the io layer does with a frame after [`super::Engine::handle_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (rewritten) frame out of `ifindex`.
    Tx {
        /// Output interface.
        ifindex: u32,
    },
    /// The frame was replaced by an ICMP error for its sender (frag-needed, port
    /// unreachable); send it out of `ifindex` (the ingress interface).
    Reply {
        /// Output interface.
        ifindex: u32,
    },
    /// Drop the frame; the reason is counted.
    Drop(DropReason),
    /// The engine took what it needed from the frame: a fragment held until its datagram
    /// is complete, or a packet whose output (its fragments, a reassembled datagram) waits
    /// in the outbox ([`super::Engine::drain_outbox`]). Free the frame; nothing is lost.
    Stolen,
    /// Not virtual-service traffic (ARP, ping to the VIP, the director's own traffic,
    /// other ports): hand the frame, unchanged, to the kernel.
    NotMine,
}

impl Verdict {
    /// Whether the engine's `send` delivered the packet: in the frame (`Tx`) or through the
    /// outbox (`Stolen`).
    pub(crate) fn sent(&self) -> bool {
        matches!(self, Verdict::Tx { .. } | Verdict::Stolen)
    }
}

/// Why a frame was dropped. Each variant has a counter ([`DropCounts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A header (or a length field) runs past the frame.
    Truncated,
    /// A header field the protocol forbids (version, header length, length field).
    Malformed,
    /// IPv4 header checksum wrong.
    BadIpChecksum,
    /// An IPv4 fragment for a virtual service or from a NAT real server that reassembly
    /// refused (bad, overlapping, duplicate, over the memory limit; the detail is in
    /// [`super::FragCounters`]).
    Fragment,
    /// Source address impossible (martian, one of the director's or a VIP, equal to the
    /// destination) on traffic for a virtual service.
    Martian,
    /// TTL would reach 0.
    TtlExceeded,
    /// Larger than the output MTU with DF set and not answered with frag-needed (the ICMP
    /// rate limit, an ICMP error), or too big to fragment.
    TooBig,
    /// The connection's destination was removed (`expire_nodest_conn` semantics).
    DestGone,
    /// The service has no available destination (port unreachable not sent: rate limit).
    NoDestination,
    /// A new connection was refused for another reason (table full, template slots, port 0).
    Refused,
    /// No interface route to the next hop.
    NoRoute,
    /// The next hop's MAC is unknown; queued for resolution
    /// ([`super::Engine::take_unresolved`]).
    NoNeighbour {
        /// Interface the next hop is on.
        ifindex: u32,
        /// The next hop.
        ip: Ipv4Addr,
    },
    /// Not enough headroom or tailroom in the buffer for the rewrite.
    NoRoom,
}

impl DropReason {
    /// Number of variants.
    pub const COUNT: usize = 13;

    /// Counter index, `0..COUNT`.
    pub const fn index(self) -> usize {
        match self {
            DropReason::Truncated => 0,
            DropReason::Malformed => 1,
            DropReason::BadIpChecksum => 2,
            DropReason::Fragment => 3,
            DropReason::Martian => 4,
            DropReason::TtlExceeded => 5,
            DropReason::TooBig => 6,
            DropReason::DestGone => 7,
            DropReason::NoDestination => 8,
            DropReason::Refused => 9,
            DropReason::NoRoute => 10,
            DropReason::NoNeighbour { .. } => 11,
            DropReason::NoRoom => 12,
        }
    }

    /// A short name for logs and metrics, by counter index.
    pub const NAMES: [&'static str; Self::COUNT] = [
        "truncated",
        "malformed",
        "bad_ip_checksum",
        "fragment",
        "martian",
        "ttl_exceeded",
        "too_big",
        "dest_gone",
        "no_destination",
        "refused",
        "no_route",
        "no_neighbour",
        "no_room",
    ];
}

/// One counter per [`DropReason`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DropCounts(pub [u64; DropReason::COUNT]);

impl DropCounts {
    /// The counter of `reason`'s variant.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason.index()]
    }

    /// `(name, count)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DropReason::NAMES
            .iter()
            .copied()
            .zip(self.0.iter().copied())
    }

    pub(crate) fn count(&mut self, reason: DropReason) {
        self.0[reason.index()] += 1;
    }
}

/// Frame counters by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineCounters {
    /// Frames handed to [`super::Engine::handle_frame`].
    pub frames: u64,
    /// Client-to-real-server packets sent (ICMP errors following them included).
    pub tx_in: u64,
    /// NAT replies sent to clients (ICMP errors following them included).
    pub tx_out: u64,
    /// ICMP errors that followed a connection.
    pub icmp_followed: u64,
    /// Generated ICMP errors ([`Verdict::Reply`]).
    pub replies: u64,
    /// Frames handed back to the kernel.
    pub not_mine: u64,
    /// Frames the engine kept ([`Verdict::Stolen`]: fragments held, datagrams sent from
    /// the outbox).
    pub stolen: u64,
    /// Frames dropped (sum of [`DropCounts`]).
    pub dropped: u64,
    /// Forwarded TCP/UDP packets whose partial checksum (pseudo-header sum only, from a
    /// sender with checksum offload) the engine completed.
    pub csum_completed: u64,
}

/// `ipvsadm --stats` counters of a service or destination. Bytes are IP packet lengths
/// (before tunnel encapsulation), as the kernel counts `skb->len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrafficStats {
    /// Connections created.
    pub conns: u64,
    /// Packets client to real server.
    pub in_pkts: u64,
    /// Packets real server to client (NAT only).
    pub out_pkts: u64,
    /// Bytes client to real server.
    pub in_bytes: u64,
    /// Bytes real server to client.
    pub out_bytes: u64,
}

impl TrafficStats {
    /// Field-wise sum.
    pub fn add(&mut self, o: &TrafficStats) {
        self.conns += o.conns;
        self.in_pkts += o.in_pkts;
        self.out_pkts += o.out_pkts;
        self.in_bytes += o.in_bytes;
        self.out_bytes += o.out_bytes;
    }
}
