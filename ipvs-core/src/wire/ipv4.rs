//! IPv4 headers (RFC 791): options allowed (carried, not interpreted), fragments flagged.
//!
//! [`Packet::new_checked`] validates version, header length and total length against the
//! buffer (Ethernet padding after `total_len` is allowed and ignored by
//! [`Packet::payload`]). [`Packet::new_checked_prefix`] accepts a header whose packet was cut
//! short — the original datagram quoted inside an ICMP error — and clamps the payload to
//! the bytes present. The header checksum is verified by [`Packet::verify_checksum`] and by
//! [`Repr::parse`], not by `new_checked`.

use core::net::Ipv4Addr;

use super::checksum;
use super::{WireError, be16, be32, put16, put32};

/// An IP protocol number; unknown values survive as `Unknown(n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// 1.
    Icmp,
    /// 4 (IP-in-IP).
    IpIp,
    /// 6.
    Tcp,
    /// 17.
    Udp,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            1 => IpProtocol::Icmp,
            4 => IpProtocol::IpIp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            n => IpProtocol::Unknown(n),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::Icmp => 1,
            IpProtocol::IpIp => 4,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Unknown(n) => n,
        }
    }
}

pub(crate) mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
    pub const SRC_DST: Range<usize> = 12..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Don't-fragment flag in the flags/offset word.
pub const FLAG_DF: u16 = 0x4000;
/// More-fragments flag in the flags/offset word.
pub const FLAG_MF: u16 = 0x2000;

/// A view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking version 4, `20 <= header_len <= total_len <= buffer`.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Packet::new_unchecked(buffer);
        p.check_header()?;
        let b = p.buffer.as_ref();
        let total = usize::from(be16(b, field::LENGTH));
        if total < p.header_len() {
            return Err(WireError::Malformed);
        }
        if total > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    /// Like [`Packet::new_checked`] but the packet may extend past the buffer (a quoted
    /// datagram in an ICMP error): only the header must fit. [`Packet::payload`] returns
    /// the bytes present.
    pub fn new_checked_prefix(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Packet::new_unchecked(buffer);
        p.check_header()?;
        if usize::from(p.total_len()) < p.header_len() {
            return Err(WireError::Malformed);
        }
        Ok(p)
    }

    fn check_header(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 || self.header_len() < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if self.header_len() > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL x 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }
    /// DSCP and ECN byte (the old TOS).
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }
    /// Total length field.
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }
    /// Identification.
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }
    /// The flags/fragment-offset word.
    pub fn flags_frag_word(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLG_OFF)
    }
    /// DF.
    pub fn dont_frag(&self) -> bool {
        self.flags_frag_word() & FLAG_DF != 0
    }
    /// MF.
    pub fn more_frags(&self) -> bool {
        self.flags_frag_word() & FLAG_MF != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag_word() & 0x1fff) << 3
    }
    /// Whether this is a fragment: MF set or offset non-zero.
    pub fn is_fragment(&self) -> bool {
        self.flags_frag_word() & 0x3fff != 0
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    /// Protocol of the payload.
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }
    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.buffer.as_ref(), field::SRC))
    }
    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.buffer.as_ref(), field::DST))
    }
    /// Options bytes (empty without options).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// Whether the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verifies(&self.buffer.as_ref()[..self.header_len()])
    }
    /// The payload: from the end of the header to `total_len`, clamped to the buffer.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let hl = self.header_len();
        let end = usize::from(self.total_len()).min(b.len()).max(hl);
        &b[hl..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the DSCP/ECN byte.
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }
    /// Sets the total length.
    pub fn set_total_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, v);
    }
    /// Sets the identification.
    pub fn set_ident(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::IDENT, v);
    }
    /// Sets the flags/fragment-offset word.
    pub fn set_flags_frag_word(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::FLG_OFF, v);
    }
    /// Sets the TTL.
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }
    /// Sets the protocol.
    pub fn set_next_header(&mut self, p: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = p.into();
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        put32(self.buffer.as_mut(), field::SRC, a.into());
    }
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        put32(self.buffer.as_mut(), field::DST, a.into());
    }
    /// Recomputes the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }
    /// Rewrites the source address and updates the header checksum incrementally.
    pub fn rewrite_src_addr(&mut self, a: Ipv4Addr) {
        let old = be32(self.buffer.as_ref(), field::SRC);
        let c = checksum::update32(self.checksum(), old, a.into());
        self.set_src_addr(a);
        self.set_checksum(c);
    }
    /// Rewrites the destination address and updates the header checksum incrementally.
    pub fn rewrite_dst_addr(&mut self, a: Ipv4Addr) {
        let old = be32(self.buffer.as_ref(), field::DST);
        let c = checksum::update32(self.checksum(), old, a.into());
        self.set_dst_addr(a);
        self.set_checksum(c);
    }
    /// Decrements the TTL (callers check it is > 1 first) and updates the checksum.
    pub fn decrement_ttl(&mut self) {
        let b = self.buffer.as_ref();
        let old = be16(b, field::TTL);
        let new = old.wrapping_sub(0x0100);
        let c = checksum::update16(self.checksum(), old, new);
        put16(self.buffer.as_mut(), field::TTL, new);
        self.set_checksum(c);
    }
    /// Both addresses, raw (for pseudo-header sums after a rewrite).
    pub fn addrs_raw(&self) -> [u8; 8] {
        let mut a = [0; 8];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC_DST]);
        a
    }
    /// The payload, mutable (see [`Packet::payload`]).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let len = self.buffer.as_ref().len();
        let end = usize::from(self.total_len()).min(len).max(hl);
        &mut self.buffer.as_mut()[hl..end]
    }
}

/// A parsed IPv4 header (options are not represented; [`Repr::emit`] writes none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub next_header: IpProtocol,
    /// Payload length in bytes.
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP/ECN byte.
    pub dscp_ecn: u8,
    /// Identification.
    pub ident: u16,
    /// DF flag.
    pub dont_frag: bool,
}

impl Repr {
    /// Parses a checked packet: verifies the header checksum and refuses fragments
    /// ([`WireError::Unsupported`]).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, WireError> {
        if !p.verify_checksum() {
            return Err(WireError::Checksum);
        }
        if p.is_fragment() {
            return Err(WireError::Unsupported);
        }
        Ok(Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: usize::from(p.total_len()) - p.header_len(),
            ttl: p.ttl(),
            dscp_ecn: p.dscp_ecn(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
        })
    }

    /// 20.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Header plus payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes a 20-byte header (checksum filled) at the start of `buf`. The total length
    /// saturates at 65535.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[field::VER_IHL] = 0x45;
        buf[field::DSCP_ECN] = self.dscp_ecn;
        let total = u16::try_from(HEADER_LEN + self.payload_len).unwrap_or(u16::MAX);
        put16(buf, field::LENGTH, total);
        put16(buf, field::IDENT, self.ident);
        put16(
            buf,
            field::FLG_OFF,
            if self.dont_frag { FLAG_DF } else { 0 },
        );
        buf[field::TTL] = self.ttl;
        buf[field::PROTOCOL] = self.next_header.into();
        put16(buf, field::CHECKSUM, 0);
        put32(buf, field::SRC, self.src_addr.into());
        put32(buf, field::DST, self.dst_addr.into());
        let c = checksum::checksum(&buf[..HEADER_LEN]);
        put16(buf, field::CHECKSUM, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::captures::{DNS_FRAME, OPTS_IP, PING_IP, SYN_FRAME};

    #[test]
    fn parse_and_emit_syn() {
        let ip = &SYN_FRAME[14..];
        let p = Packet::new_checked(ip).expect("valid");
        assert!(p.verify_checksum());
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 60);
        assert_eq!(p.ttl(), 64);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert_eq!(p.next_header(), IpProtocol::Tcp);
        assert_eq!(p.src_addr(), Ipv4Addr::new(198, 51, 100, 10));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(203, 0, 113, 10));
        assert_eq!(p.payload().len(), 40);
        let r = Repr::parse(&p).expect("valid");
        assert_eq!(r.payload_len, 40);
        let mut out = [0u8; 20];
        r.emit(&mut out);
        assert_eq!(out[..], ip[..20]);
    }

    #[test]
    fn parse_and_emit_dns_and_ping() {
        let p = Packet::new_checked(&DNS_FRAME[14..]).expect("valid");
        let r = Repr::parse(&p).expect("valid");
        assert!(!r.dont_frag);
        assert_eq!(r.next_header, IpProtocol::Udp);
        let mut out = [0u8; 20];
        r.emit(&mut out);
        assert_eq!(out[..], DNS_FRAME[14..34]);
        let p = Packet::new_checked(&PING_IP[..]).expect("valid");
        assert_eq!(p.next_header(), IpProtocol::Icmp);
        let r = Repr::parse(&p).expect("valid");
        r.emit(&mut out);
        assert_eq!(out[..], PING_IP[..20]);
    }

    #[test]
    fn options_are_carried() {
        let p = Packet::new_checked(&OPTS_IP[..]).expect("valid");
        assert!(p.verify_checksum());
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0, 0]);
        assert_eq!(p.next_header(), IpProtocol::Unknown(2));
        assert_eq!(p.payload().len(), 8);
    }

    #[test]
    fn rejects_and_flags() {
        let ip = &SYN_FRAME[14..];
        assert_eq!(
            Packet::new_checked(&ip[..19]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            Packet::new_checked(&ip[..59]).err(),
            Some(WireError::Truncated)
        );
        let mut b = ip.to_vec();
        b[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
        b[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
        b[0] = 0x4f; // 60-byte header in a 60-byte packet: fits
        assert!(Packet::new_checked(&b[..]).is_ok());
        let mut b = ip.to_vec();
        b[3] = 10; // total length below the header
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
        let mut b = ip.to_vec();
        b[10] ^= 1;
        let p = Packet::new_checked(&b[..]).expect("lengths fine");
        assert_eq!(Repr::parse(&p), Err(WireError::Checksum));
        // Fragments: MF, or a non-zero offset.
        let mut b = ip.to_vec();
        let mut p = Packet::new_checked(&mut b[..]).expect("valid");
        p.set_flags_frag_word(FLAG_MF);
        assert!(p.is_fragment() && p.more_frags());
        p.set_flags_frag_word(185);
        assert!(p.is_fragment());
        assert_eq!(p.frag_offset(), 1480);
        p.fill_checksum();
        assert_eq!(Repr::parse(&p), Err(WireError::Unsupported));
        // A quoted prefix: only the header needs to fit.
        let p = Packet::new_checked_prefix(&ip[..28]).expect("header fits");
        assert_eq!(p.payload().len(), 8);
        assert!(Packet::new_checked(&ip[..28]).is_err());
    }

    #[test]
    fn incremental_rewrites_keep_checksum() {
        let mut b = SYN_FRAME[14..].to_vec();
        let mut p = Packet::new_checked(&mut b[..]).expect("valid");
        p.rewrite_dst_addr(Ipv4Addr::new(10, 0, 1, 20));
        p.rewrite_src_addr(Ipv4Addr::new(192, 0, 2, 99));
        p.decrement_ttl();
        assert_eq!(p.ttl(), 63);
        assert!(p.verify_checksum());
        let c = p.checksum();
        p.fill_checksum();
        assert_eq!(p.checksum(), c);
    }
}
