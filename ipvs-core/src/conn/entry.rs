//! The packed 24-byte connection entry, the public key types, and the hash.
//!
//! # Layout (24 bytes, alignment 4)
//!
//! | field | bytes | content |
//! |---|---|---|
//! | `caddr` | 4 | client IPv4 address |
//! | `vaddr` | 4 | virtual IPv4 address |
//! | `cport`, `vport` | 2 + 2 | client and virtual ports |
//! | `dest` | 4 | [`DestId`] of the real server |
//! | `expires` | 4 | deadline in 10 ms ticks (wrapping, see [`super::timeouts`]) |
//! | `meta` | 4 | bits 0..24 template slot + 1 (0 = none); 24..28 TCP state; 28 UDP; 29..31 forwarding method; 31 "no output seen yet" |
//!
//! The real server's address is *not* stored: the NAT reply lookup resolves the entry's
//! [`DestId`] through a caller-supplied function (see `ConnTable::lookup_out`). Protocols
//! other than TCP and UDP, IPv6 and per-connection fwmarks do not fit this layout; the
//! fwmark of a connection is recoverable from its destination's service.
//!
//! # Hash
//!
//! Like the kernel, an entry is hashed on (protocol, client address, client port) only, so
//! one probe sequence serves both the inbound lookup (compare vaddr:vport) and the NAT
//! reply lookup (compare the destination). The mixer is a 64x64->128 folded multiply with a
//! caller-chosen seed (see `ConnTableConfig::hash_seed` for the denial-of-service notes).

use core::net::Ipv4Addr;

use super::tcp::TcpState;
use crate::types::{DestId, ForwardMethod, Protocol};

/// Identifies a connection as its first (client to virtual service) packet sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnKey {
    /// TCP or UDP.
    pub proto: Protocol,
    /// Client address.
    pub caddr: Ipv4Addr,
    /// Client port.
    pub cport: u16,
    /// Virtual address (the packet's destination; for fwmark services the VIP it was sent to).
    pub vaddr: Ipv4Addr,
    /// Virtual port (the packet's destination port).
    pub vport: u16,
}

/// Identifies a connection as a NAT reply (real server to client) sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplyKey {
    /// TCP or UDP.
    pub proto: Protocol,
    /// Source address of the reply: the real server.
    pub daddr: Ipv4Addr,
    /// Source port of the reply.
    pub dport: u16,
    /// Destination address of the reply: the client.
    pub caddr: Ipv4Addr,
    /// Destination port of the reply.
    pub cport: u16,
}

/// The protocol-level state of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// A TCP connection in one of the IPVS TCP states.
    Tcp(TcpState),
    /// UDP has a single state.
    Udp,
}

impl ConnState {
    /// The name `ipvsadm -L -c` prints (`UDP` for UDP).
    pub const fn name(self) -> &'static str {
        match self {
            ConnState::Tcp(s) => s.name(),
            ConnState::Udp => "UDP",
        }
    }

    /// Active (TCP ESTABLISHED or a SYN state, see [`TcpState::is_active`]) or inactive.
    pub const fn class(self) -> ConnClass {
        match self {
            ConnState::Tcp(s) if s.is_active() => ConnClass::Active,
            _ => ConnClass::Inactive,
        }
    }
}

pub use crate::types::ConnClass;

/// One change to a destination's connection counters, for the service layer to apply:
/// decrement `from` (if any), increment `to` (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Accounting {
    /// The destination whose counters change.
    pub dest: DestId,
    /// The class the entry leaves; `None` when it is created.
    pub from: Option<ConnClass>,
    /// The class the entry joins; `None` when it is removed.
    pub to: Option<ConnClass>,
}

impl Accounting {
    /// Adds this event to a `[active, inactive, template]` tally.
    pub fn apply_to(self, counts: &mut [i64; 3]) {
        if let Some(f) = self.from {
            counts[f.index()] -= 1;
        }
        if let Some(t) = self.to {
            counts[t.index()] += 1;
        }
    }
}

const SLOT_BITS: u32 = 24;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
const STATE_SHIFT: u32 = 24;
const STATE_MASK: u32 = 0xF << STATE_SHIFT;
const UDP_BIT: u32 = 1 << 28;
const FWD_SHIFT: u32 = 29;
const FWD_MASK: u32 = 0x3 << FWD_SHIFT;
const NO_OUTPUT_BIT: u32 = 1 << 31;

/// Largest template slot an entry can reference (slot + 1 must fit in 24 bits).
pub(crate) const MAX_TEMPLATE_SLOTS: u32 = SLOT_MASK;

/// A connection as stored in the table. Private layout; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) caddr: u32,
    pub(crate) vaddr: u32,
    pub(crate) cport: u16,
    pub(crate) vport: u16,
    pub(crate) dest: u32,
    pub(crate) expires: u32,
    meta: u32,
}

/// The designed size of [`Entry`]; a compile-time assertion and a test keep it there.
pub(crate) const ENTRY_SIZE: usize = 24;
const _: () = assert!(core::mem::size_of::<Entry>() == ENTRY_SIZE);

impl Entry {
    pub(crate) fn new(
        key: &ConnKey,
        dest: DestId,
        fwd: ForwardMethod,
        template_slot: Option<u32>,
        expires: u32,
    ) -> Entry {
        let mut e = Entry {
            caddr: u32::from(key.caddr),
            vaddr: u32::from(key.vaddr),
            cport: key.cport,
            vport: key.vport,
            dest: dest.0,
            expires,
            meta: 0,
        };
        if key.proto == Protocol::Udp {
            e.meta |= UDP_BIT;
        }
        let fwd_bits = match fwd {
            ForwardMethod::Masq => 0,
            ForwardMethod::Route => 1,
            ForwardMethod::Tunnel => 2,
        };
        e.meta |= fwd_bits << FWD_SHIFT;
        // As the kernel's IP_VS_CONN_F_NOOUTPUT: set for every method but NAT, cleared when
        // the first reply is seen.
        if fwd != ForwardMethod::Masq {
            e.meta |= NO_OUTPUT_BIT;
        }
        if let Some(slot) = template_slot {
            debug_assert!(slot < MAX_TEMPLATE_SLOTS);
            e.meta |= (slot + 1) & SLOT_MASK;
        }
        e
    }

    pub(crate) fn proto(&self) -> Protocol {
        if self.meta & UDP_BIT != 0 {
            Protocol::Udp
        } else {
            Protocol::Tcp
        }
    }

    pub(crate) fn key(&self) -> ConnKey {
        ConnKey {
            proto: self.proto(),
            caddr: Ipv4Addr::from(self.caddr),
            cport: self.cport,
            vaddr: Ipv4Addr::from(self.vaddr),
            vport: self.vport,
        }
    }

    pub(crate) fn dest(&self) -> DestId {
        DestId(self.dest)
    }

    pub(crate) fn fwd(&self) -> ForwardMethod {
        match (self.meta & FWD_MASK) >> FWD_SHIFT {
            0 => ForwardMethod::Masq,
            1 => ForwardMethod::Route,
            // 3 is never written.
            _ => ForwardMethod::Tunnel,
        }
    }

    pub(crate) fn template_slot(&self) -> Option<u32> {
        match self.meta & SLOT_MASK {
            0 => None,
            n => Some(n - 1),
        }
    }

    pub(crate) fn tcp_state(&self) -> TcpState {
        let i = ((self.meta & STATE_MASK) >> STATE_SHIFT) as usize;
        // Only valid indices are ever written (set_tcp_state takes a TcpState).
        TcpState::from_index(i).unwrap_or(TcpState::Close)
    }

    pub(crate) fn raw_state_index(&self) -> u32 {
        (self.meta & STATE_MASK) >> STATE_SHIFT
    }

    pub(crate) fn set_tcp_state(&mut self, s: TcpState) {
        self.meta = (self.meta & !STATE_MASK) | ((s as u32) << STATE_SHIFT);
    }

    pub(crate) fn state(&self) -> ConnState {
        match self.proto() {
            Protocol::Tcp => ConnState::Tcp(self.tcp_state()),
            Protocol::Udp => ConnState::Udp,
        }
    }

    pub(crate) fn class(&self) -> ConnClass {
        self.state().class()
    }

    pub(crate) fn no_output(&self) -> bool {
        self.meta & NO_OUTPUT_BIT != 0
    }

    pub(crate) fn clear_no_output(&mut self) {
        self.meta &= !NO_OUTPUT_BIT;
    }

    #[inline]
    pub(crate) fn matches_in(&self, k: &ConnKey) -> bool {
        self.caddr == u32::from(k.caddr)
            && self.cport == k.cport
            && self.vaddr == u32::from(k.vaddr)
            && self.vport == k.vport
            && self.proto() == k.proto
    }
}

/// The table's hasher: a seeded folded multiply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hasher {
    s0: u64,
    s1: u64,
}

const K0: u64 = 0x243f_6a88_85a3_08d3; // digits of pi, as "nothing up my sleeve" constants
const K1: u64 = 0x1319_8a2e_0370_7344;

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

impl Hasher {
    pub(crate) fn new(seed: u64) -> Hasher {
        Hasher {
            s0: seed ^ K0,
            s1: fold_mul(seed ^ K1, K0) | 1,
        }
    }

    #[inline]
    fn word(&self, w: u64) -> u64 {
        fold_mul(w ^ self.s0, self.s1 ^ K1)
    }

    /// Hash of the client side of a connection: what both lookup directions share.
    #[inline]
    pub(crate) fn client(&self, proto: Protocol, caddr: u32, cport: u16) -> u64 {
        let w = (u64::from(caddr) << 32) | (u64::from(cport) << 8) | u64::from(proto.number());
        self.word(w)
    }

    #[inline]
    pub(crate) fn entry(&self, e: &Entry) -> u64 {
        self.client(e.proto(), e.caddr, e.cport)
    }

    /// Hash of two words (template keys).
    #[inline]
    pub(crate) fn pair(&self, a: u64, b: u64) -> u64 {
        fold_mul(self.word(a) ^ b, self.s1 ^ K0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_24_bytes() {
        assert_eq!(core::mem::size_of::<Entry>(), ENTRY_SIZE);
        assert_eq!(core::mem::align_of::<Entry>(), 4);
    }

    #[test]
    fn packing_round_trips() {
        let key = ConnKey {
            proto: Protocol::Udp,
            caddr: Ipv4Addr::new(192, 168, 0, 10),
            cport: 51234,
            vaddr: Ipv4Addr::new(10, 0, 0, 1),
            vport: 53,
        };
        for fwd in [
            ForwardMethod::Masq,
            ForwardMethod::Route,
            ForwardMethod::Tunnel,
        ] {
            for slot in [None, Some(0), Some(MAX_TEMPLATE_SLOTS - 1)] {
                let mut e = Entry::new(&key, DestId(u32::MAX), fwd, slot, 77);
                assert_eq!(e.key(), key);
                assert_eq!(e.fwd(), fwd);
                assert_eq!(e.template_slot(), slot);
                assert_eq!(e.dest(), DestId(u32::MAX));
                assert_eq!(e.no_output(), fwd != ForwardMethod::Masq);
                assert_eq!(e.state(), ConnState::Udp);
                e.set_tcp_state(TcpState::SynAck);
                assert_eq!(e.tcp_state(), TcpState::SynAck);
                assert_eq!(e.template_slot(), slot);
                e.clear_no_output();
                assert!(!e.no_output());
                assert_eq!(e.fwd(), fwd);
                assert!(e.matches_in(&key));
            }
        }
    }

    #[test]
    fn hash_depends_on_seed_and_fields() {
        let h = Hasher::new(1);
        let a = h.client(Protocol::Tcp, 0x0a00_0001, 80);
        assert_ne!(a, h.client(Protocol::Udp, 0x0a00_0001, 80));
        assert_ne!(a, h.client(Protocol::Tcp, 0x0a00_0002, 80));
        assert_ne!(a, h.client(Protocol::Tcp, 0x0a00_0001, 81));
        assert_ne!(a, Hasher::new(2).client(Protocol::Tcp, 0x0a00_0001, 80));
    }
}
