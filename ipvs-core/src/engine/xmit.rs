//! Rewrites on the way out: NAT endpoint rewrites with incremental checksums, TTL,
//! IP-in-IP encapsulation, the Ethernet header (with the output interface's VLAN tag), and
//! the in-place generation of ICMP errors.
//!
//! Every function here works on bytes the caller validated (IPv4 header, and the L4 header
//! for the rewrites); each also re-checks with `get`/`get_mut` so that a caller bug is a
//! [`DropReason`], never a panic.

use core::net::Ipv4Addr;

use super::config::Interface;
use super::verdict::DropReason;
use crate::frame::FrameBuf;
use crate::types::Protocol;
use crate::wire::checksum;
use crate::wire::ethernet;
use crate::wire::icmp::{self, Message};
use crate::wire::ipv4::{self, IpProtocol};
use crate::wire::{EtherType, EthernetAddress, be16, be32, put16, put32, tcp, udp};

/// Which endpoint of a packet a NAT rewrite changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Src,
    Dst,
}

/// Rewrites the source or destination address and port of the TCP/UDP packet `ip` (IPv4
/// header of `hl` bytes, then at least the L4 header; or, with `quoted`, at least 8 L4
/// bytes), updating the IP header checksum and — when present in the buffer — the L4
/// checksum incrementally (RFC 1624). A UDP checksum of 0 stays 0.
pub(crate) fn rewrite_endpoint(
    ip: &mut [u8],
    hl: usize,
    proto: Protocol,
    end: End,
    addr: Ipv4Addr,
    port: u16,
) -> Result<(), DropReason> {
    if ip.len() < hl + 8 || hl < ipv4::HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    let (a_at, p_at) = match end {
        End::Src => (12, hl),
        End::Dst => (16, hl + 2),
    };
    let old_addr = be32(ip, a_at);
    let new_addr = u32::from(addr);
    let old_port = be16(ip, p_at);
    let ipc = checksum::update32(be16(ip, 10), old_addr, new_addr);
    put16(ip, 10, ipc);
    put32(ip, a_at, new_addr);
    put16(ip, p_at, port);
    let (c_at, udp_rules) = match proto {
        Protocol::Tcp => (hl + tcp::CHECKSUM_OFFSET, false),
        Protocol::Udp => (hl + udp::CHECKSUM_OFFSET, true),
    };
    if ip.len() >= c_at + 2 {
        let c = be16(ip, c_at);
        let c = if udp_rules {
            checksum::update16_udp(
                checksum::update32_udp(c, old_addr, new_addr),
                old_port,
                port,
            )
        } else {
            checksum::update16(checksum::update32(c, old_addr, new_addr), old_port, port)
        };
        put16(ip, c_at, c);
    }
    Ok(())
}

/// Rewrites only an address of the IPv4 header at the start of `ip` (incremental header
/// checksum).
pub(crate) fn rewrite_addr(ip: &mut [u8], end: End, addr: Ipv4Addr) -> Result<(), DropReason> {
    if ip.len() < ipv4::HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    let mut p = ipv4::Packet::new_unchecked(ip);
    match end {
        End::Src => p.rewrite_src_addr(addr),
        End::Dst => p.rewrite_dst_addr(addr),
    }
    Ok(())
}

/// Recomputes the ICMP checksum over `msg` (the whole ICMP message).
pub(crate) fn refill_icmp_checksum(msg: &mut [u8]) {
    if msg.len() >= icmp::HEADER_LEN {
        icmp::Packet::new_unchecked(msg).fill_checksum();
    }
}

/// Decrements the TTL of the IPv4 header at the start of `ip` (checksum updated).
pub(crate) fn decrement_ttl(ip: &mut [u8]) {
    if ip.len() >= ipv4::HEADER_LEN {
        ipv4::Packet::new_unchecked(ip).decrement_ttl();
    }
}

/// Writes the Ethernet header for `out` in front of the IP packet at absolute offset
/// `ip_at` (length `ip_len`) and makes that the frame.
pub(crate) fn emit_l2(
    fb: &mut FrameBuf<'_>,
    ip_at: usize,
    ip_len: usize,
    out: &Interface,
    dst_mac: EthernetAddress,
) -> Result<(), DropReason> {
    let repr = ethernet::Repr {
        src_addr: out.mac,
        dst_addr: dst_mac,
        vlan_tci: out.vlan,
        ethertype: EtherType::Ipv4,
    };
    let hl = repr.header_len();
    let start = ip_at.checked_sub(hl).ok_or(DropReason::NoRoom)?;
    if ip_at + ip_len > fb.capacity() {
        return Err(DropReason::NoRoom);
    }
    let buf = fb
        .raw_mut()
        .get_mut(start..ip_at)
        .ok_or(DropReason::NoRoom)?;
    repr.emit(buf);
    fb.set_window(start, hl + ip_len);
    Ok(())
}

/// Wraps the IP packet at absolute `ip_at` (length `ip_len`) in an outer IPv4 header
/// written in the 20 bytes in front of it. Returns the outer packet's absolute offset and
/// length.
pub(crate) fn encapsulate(
    fb: &mut FrameBuf<'_>,
    ip_at: usize,
    ip_len: usize,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> Result<(usize, usize), DropReason> {
    let outer_at = ip_at
        .checked_sub(crate::wire::ipip::OUTER_HEADER_LEN)
        .ok_or(DropReason::NoRoom)?;
    let buf = fb
        .raw_mut()
        .get_mut(outer_at..ip_at + ip_len)
        .ok_or(DropReason::NoRoom)?;
    let n = crate::wire::ipip::encapsulate(buf, src, dst, 64).map_err(|_| DropReason::TooBig)?;
    Ok((outer_at, n))
}

/// What a generated ICMP error says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IcmpError {
    pub(crate) msg: Message,
    pub(crate) code: u8,
    /// Next-hop MTU for frag-needed, else 0.
    pub(crate) mtu: u16,
}

/// Most bytes of the offending datagram a generated error quotes (576-byte total, as the
/// kernel's `icmp_send`).
const MAX_QUOTE: usize = 576 - ipv4::HEADER_LEN - icmp::HEADER_LEN;

/// Turns the frame (an IPv4 packet at absolute `ip_at`, `ip_len` bytes, header `hl`) into
/// an ICMP error from `src` to the packet's source, sent back to `prev_hop` through
/// `ingress`. The quote is moved 28 bytes further into the buffer (using tailroom for short
/// packets).
#[allow(clippy::too_many_arguments)]
pub(crate) fn icmp_error_in_place(
    fb: &mut FrameBuf<'_>,
    ip_at: usize,
    ip_len: usize,
    hl: usize,
    src: Ipv4Addr,
    ingress: &Interface,
    prev_hop: EthernetAddress,
    err: IcmpError,
) -> Result<(), DropReason> {
    const HDRS: usize = ipv4::HEADER_LEN + icmp::HEADER_LEN;
    let cap = fb.capacity();
    let room = cap.checked_sub(ip_at + HDRS).ok_or(DropReason::NoRoom)?;
    let quote = ip_len.min(MAX_QUOTE).min(room);
    if quote < hl + 8 {
        return Err(DropReason::NoRoom);
    }
    let buf = fb.raw_mut();
    let to = buf
        .get(ip_at..ip_at + ipv4::HEADER_LEN)
        .map(|h| Ipv4Addr::from(be32(h, 12)))
        .ok_or(DropReason::NoRoom)?;
    buf.copy_within(ip_at..ip_at + quote, ip_at + HDRS);
    let msg = buf
        .get_mut(ip_at + ipv4::HEADER_LEN..ip_at + HDRS + quote)
        .ok_or(DropReason::NoRoom)?;
    msg[0] = err.msg.into();
    msg[1] = err.code;
    put16(msg, 2, 0);
    put16(msg, 4, 0);
    put16(msg, 6, err.mtu);
    refill_icmp_checksum(msg);
    let repr = ipv4::Repr {
        src_addr: src,
        dst_addr: to,
        next_header: IpProtocol::Icmp,
        payload_len: icmp::HEADER_LEN + quote,
        ttl: 64,
        // Linux: the offending TOS bits with precedence "internetwork control".
        dscp_ecn: 0xc0,
        ident: 0,
        dont_frag: false,
    };
    let hdr = buf
        .get_mut(ip_at..ip_at + ipv4::HEADER_LEN)
        .ok_or(DropReason::NoRoom)?;
    repr.emit(hdr);
    emit_l2(fb, ip_at, HDRS + quote, ingress, prev_hop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::captures::{DNS_FRAME, SYN_FRAME};

    #[test]
    fn nat_rewrite_keeps_checksums_valid() {
        let mut ip = SYN_FRAME[14..].to_vec();
        let rip = Ipv4Addr::new(10, 0, 1, 20);
        rewrite_endpoint(&mut ip, 20, Protocol::Tcp, End::Dst, rip, 8080).expect("fits");
        let p = ipv4::Packet::new_checked(&ip[..]).expect("valid");
        assert!(p.verify_checksum());
        assert_eq!(p.dst_addr(), rip);
        let t = tcp::Packet::new_checked(p.payload()).expect("valid");
        assert_eq!(t.dst_port(), 8080);
        assert!(t.verify_checksum(p.src_addr(), rip));

        let mut ip = DNS_FRAME[14..].to_vec();
        rewrite_endpoint(&mut ip, 20, Protocol::Udp, End::Src, rip, 5353).expect("fits");
        let p = ipv4::Packet::new_checked(&ip[..]).expect("valid");
        let u = udp::Packet::new_checked(p.payload()).expect("valid");
        assert_eq!(u.src_port(), 5353);
        assert!(u.verify_checksum(rip, p.dst_addr()));
        // Checksum 0 stays 0.
        let mut ip = DNS_FRAME[14..].to_vec();
        ip[26] = 0;
        ip[27] = 0;
        rewrite_endpoint(&mut ip, 20, Protocol::Udp, End::Dst, rip, 53).expect("fits");
        assert_eq!(be16(&ip, 26), 0);
        assert_eq!(
            rewrite_endpoint(&mut ip[..27], 20, Protocol::Udp, End::Dst, rip, 53),
            Err(DropReason::Truncated)
        );
    }
}
