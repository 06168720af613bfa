//! Zero-copy packet views and validated representations, one file per protocol, in the
//! style of smoltcp's `wire` module.
//!
//! | module | what |
//! |---|---|
//! | [`checksum`] | RFC 1071 sums, RFC 1624 incremental updates, pseudo-header sums |
//! | [`ethernet`] | Ethernet II frames with at most one 802.1Q tag |
//! | [`arp`] | ARP over Ethernet/IPv4 |
//! | [`ipv4`] | IPv4 headers (options allowed, fragments flagged) |
//! | [`tcp`] | TCP segments |
//! | [`udp`] | UDP datagrams |
//! | [`icmp`] | ICMPv4: echo, destination unreachable (incl. frag-needed), time exceeded |
//! | [`ipip`] | IP-in-IP (protocol 4) encapsulation helpers |
//!
//! # Contract
//!
//! * Each protocol has a view `Packet<T: AsRef<[u8]>>` (Ethernet: `Frame`) over a buffer.
//!   Getters need only `AsRef<[u8]>`; setters need `AsMut<[u8]>`. Field offsets live in a
//!   private `field` table per file.
//! * `new_unchecked` wraps any buffer; accessors on it may panic if the buffer is too short.
//!   `new_checked` validates the lengths (and the length fields) once; **after it succeeds
//!   no accessor or setter of that view can panic**. Untrusted bytes only go through
//!   `new_checked`.
//! * Each `Repr` is a validated, owned (or borrowing) description: `parse` checks what a
//!   receiver must check (checksums where the protocol has one in its own header), `emit`
//!   writes a correct header (checksums included) into a buffer of at least
//!   `buffer_len()` bytes (emit panics if the buffer is shorter: callers size it with
//!   `buffer_len`/`header_len`).
//! * Unknown protocol numbers and types survive as `Unknown(n)`.
//! * No allocation, no I/O, no `unsafe`.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipip;
pub mod ipv4;
pub mod tcp;
pub mod udp;

pub use ethernet::{EtherType, EthernetAddress};
pub use ipv4::IpProtocol;

/// Why bytes were refused by a `new_checked` or a `Repr::parse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than a header or a length field says.
    #[error("truncated packet")]
    Truncated,
    /// A field holds a value the protocol forbids (version, header length, length field).
    #[error("malformed packet")]
    Malformed,
    /// A checksum does not verify.
    #[error("bad checksum")]
    Checksum,
    /// The packet is well formed but of a kind the `Repr` does not describe (e.g. an IPv4
    /// fragment, an ARP packet for another hardware type).
    #[error("unsupported packet")]
    Unsupported,
}

/// Reads a big-endian u16 at `at` (callers guarantee the bounds).
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads a big-endian u32 at `at` (callers guarantee the bounds).
#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes a big-endian u16 at `at` (callers guarantee the bounds).
#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Writes a big-endian u32 at `at` (callers guarantee the bounds).
#[inline]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Hand-written captures shared by the unit tests of several protocols.
#[cfg(test)]
pub(crate) mod captures;
