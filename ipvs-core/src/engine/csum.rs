//! Partial L4 checksums: recognising and completing them.
//!
//! A local sender with transmit checksum offload (`tx-checksumming on`, the default on veth,
//! bridges and most container set-ups) hands its segments down as `CHECKSUM_PARTIAL`: the
//! TCP/UDP checksum field holds only the *folded pseudo-header sum* (not complemented: the
//! kernel writes `~csum_tcpudp_magic(..)`, see `__tcp_v4_send_check` and `udp4_hwcsum`), and
//! `csum_start`/`csum_offset` tell the device to finish it. Across a veth the skb keeps that
//! metadata; an XDP redirect into an AF_XDP socket copies only the bytes, so the engine
//! receives the unfinished field. With an XDP program on a veth the kernel turns off
//! GSO/TSO on its peer (`veth_fix_features`), so segments arrive MSS-sized, but the partial
//! checksum stays.
//!
//! Forwarded as is, such a packet is dropped by the receiver: a frame sent from AF_XDP is
//! `CHECKSUM_NONE`, so the real server (or the client) verifies it in software and counts
//! `TcpInCsumErrors`/`UdpInCsumErrors`. Incremental NAT updates keep a wrong value wrong.
//! This holds for DR (MAC rewrite) and TUN (the inner packet is checked after
//! decapsulation) as much as for NAT.
//!
//! Captured in the lab (AF_PACKET with `PACKET_AUXDATA` on the switch port facing the
//! director, default offloads, lvsd NAT with a 200 KB transfer): every TCP segment toward
//! the director, from the client and from the real server, had `TP_STATUS_CSUMNOTREADY` and
//! a checksum field equal to the folded pseudo-header sum; the bulk segments were 1500-byte
//! frames (the port showed `tcp-segmentation-offload: off`, `tx-checksumming: on`); the
//! frames the director sent from AF_XDP carried complete checksums.
//!
//! So before forwarding, the engine checks whether the field equals the folded
//! pseudo-header sum ([`is_partial`]: a handful of additions, no pass over the payload) and,
//! only then, sums the segment and writes the complete checksum ([`complete`]). A complete
//! checksum that happens to equal the pseudo-header sum (1 in 65 536) is recognised by
//! verifying it before overwriting it.

use core::net::Ipv4Addr;

use crate::types::Protocol;
use crate::wire::{be16, checksum, put16, tcp, udp};

/// Outcome of [`complete_if_partial`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum L4Sum {
    /// The checksum field was complete (or UDP "no checksum"); nothing written.
    Complete,
    /// The field held only the pseudo-header sum; the complete checksum was written.
    Completed,
}

/// The pseudo-header sum of a segment `l4_len` bytes long (the UDP length field for UDP).
fn pseudo(src: Ipv4Addr, dst: Ipv4Addr, proto: Protocol, l4_len: u16) -> u64 {
    checksum::pseudo_header(src, dst, proto.number(), l4_len)
}

/// Where the checksum field of `proto` sits in its header.
fn field(proto: Protocol) -> usize {
    match proto {
        Protocol::Tcp => tcp::CHECKSUM_OFFSET,
        Protocol::Udp => udp::CHECKSUM_OFFSET,
    }
}

/// The length the pseudo-header covers: the whole segment for TCP, the UDP length field for
/// UDP (bounded by the segment). `None` when the segment is too short for its header.
fn covered_len(l4: &[u8], proto: Protocol) -> Option<usize> {
    match proto {
        Protocol::Tcp if l4.len() >= tcp::HEADER_LEN => Some(l4.len()),
        Protocol::Udp if l4.len() >= udp::HEADER_LEN => {
            let n = usize::from(be16(l4, 4));
            (udp::HEADER_LEN..=l4.len()).contains(&n).then_some(n)
        }
        _ => None,
    }
}

/// Whether the checksum field of the segment `l4` holds just the folded pseudo-header sum,
/// as a sender with checksum offload leaves it.
pub(crate) fn is_partial(l4: &[u8], proto: Protocol, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
    let Some(n) = covered_len(l4, proto) else {
        return false;
    };
    let Ok(n16) = u16::try_from(n) else {
        return false;
    };
    let stored = be16(l4, field(proto));
    stored != 0 && stored == checksum::fold(pseudo(src, dst, proto, n16))
}

/// Completes a partial checksum of the segment `l4` (TCP segment or UDP datagram, its header
/// first) in place; see the [module docs](self).
pub(crate) fn complete_if_partial(
    l4: &mut [u8],
    proto: Protocol,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> L4Sum {
    if !is_partial(l4, proto, src, dst) {
        return L4Sum::Complete;
    }
    let Some(n) = covered_len(l4, proto) else {
        return L4Sum::Complete;
    };
    let seg = &mut l4[..n];
    // `is_partial` checked that `n` fits 16 bits.
    let ph = pseudo(src, dst, proto, n as u16);
    if checksum::fold(ph + checksum::sum(seg)) == 0xffff {
        // A complete checksum that happens to equal the pseudo-header sum.
        return L4Sum::Complete;
    }
    let at = field(proto);
    put16(seg, at, 0);
    let mut c = checksum::finish(ph + checksum::sum(seg));
    if proto == Protocol::Udp && c == 0 {
        c = 0xffff;
    }
    put16(seg, at, c);
    L4Sum::Completed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::captures::{DNS_FRAME, SYN_FRAME};

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 200);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

    /// Writes the partial form (folded pseudo-header sum) into a segment's checksum field,
    /// as `__tcp_v4_send_check` does.
    fn make_partial(l4: &mut [u8], proto: Protocol) {
        let n = covered_len(l4, proto).expect("header") as u16;
        put16(l4, field(proto), checksum::fold(pseudo(SRC, DST, proto, n)));
    }

    #[test]
    fn completes_partial_tcp_and_udp() {
        for (frame, proto) in [
            (&SYN_FRAME[..], Protocol::Tcp),
            (&DNS_FRAME[..], Protocol::Udp),
        ] {
            let mut l4 = frame[34..].to_vec();
            make_partial(&mut l4, proto);
            assert!(is_partial(&l4, proto, SRC, DST));
            assert_eq!(
                complete_if_partial(&mut l4, proto, SRC, DST),
                L4Sum::Completed
            );
            let ok = match proto {
                Protocol::Tcp => tcp::Packet::new_unchecked(&l4[..]).verify_checksum(SRC, DST),
                Protocol::Udp => udp::Packet::new_unchecked(&l4[..]).verify_checksum(SRC, DST),
            };
            assert!(ok, "{proto:?}");
            // Now complete: left alone.
            let before = l4.clone();
            assert_eq!(
                complete_if_partial(&mut l4, proto, SRC, DST),
                L4Sum::Complete
            );
            assert_eq!(l4, before);
        }
    }

    #[test]
    fn leaves_complete_zero_and_short_segments() {
        // The captures carry complete checksums (for their own addresses).
        let mut l4 = SYN_FRAME[34..].to_vec();
        let src = Ipv4Addr::from(crate::wire::be32(&SYN_FRAME, 26));
        let dst = Ipv4Addr::from(crate::wire::be32(&SYN_FRAME, 30));
        let before = l4.clone();
        assert_eq!(
            complete_if_partial(&mut l4, Protocol::Tcp, src, dst),
            L4Sum::Complete
        );
        assert_eq!(l4, before);
        // UDP without checksum.
        let mut l4 = DNS_FRAME[34..].to_vec();
        put16(&mut l4, 6, 0);
        assert_eq!(
            complete_if_partial(&mut l4, Protocol::Udp, SRC, DST),
            L4Sum::Complete
        );
        // Too short, or a UDP length past the segment: never partial, never a panic.
        assert!(!is_partial(&l4[..7], Protocol::Udp, SRC, DST));
        assert!(!is_partial(&[0u8; 19], Protocol::Tcp, SRC, DST));
        let mut bad = DNS_FRAME[34..].to_vec();
        put16(&mut bad, 4, 9999);
        assert_eq!(
            complete_if_partial(&mut bad, Protocol::Udp, SRC, DST),
            L4Sum::Complete
        );
    }
}
