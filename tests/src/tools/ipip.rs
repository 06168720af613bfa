//! IPv4, UDP and IP-in-IP packets for `lab-decap`: building a test datagram, and finding the
//! inner packet of an IP-in-IP packet. Safe code; the sockets live in the binary.

use std::net::{Ipv4Addr, SocketAddrV4};

/// IP protocol number of IP-in-IP.
pub const PROTO_IPIP: u8 = 4;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The fold above leaves at most 16 bits.
    !(sum as u16)
}

/// A 20-byte IPv4 header (no options, DF set, TTL 64) followed by `payload`, with a valid
/// header checksum. `None` if the packet would not fit 65535 bytes.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, id: u16, payload: &[u8]) -> Option<Vec<u8>> {
    let total = u16::try_from(20 + payload.len()).ok()?;
    let mut p = Vec::with_capacity(usize::from(total));
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let sum = checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    Some(p)
}

/// A complete IPv4/UDP datagram from `src` to `dst` carrying `data`, checksums filled in.
pub fn udp_datagram(src: SocketAddrV4, dst: SocketAddrV4, id: u16, data: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(8 + data.len()).ok()?;
    let mut udp = Vec::with_capacity(usize::from(len));
    udp.extend_from_slice(&src.port().to_be_bytes());
    udp.extend_from_slice(&dst.port().to_be_bytes());
    udp.extend_from_slice(&len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(data);
    let mut pseudo = Vec::with_capacity(12 + udp.len());
    pseudo.extend_from_slice(&src.ip().octets());
    pseudo.extend_from_slice(&dst.ip().octets());
    pseudo.extend_from_slice(&[0, PROTO_UDP]);
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(&udp);
    let sum = match checksum(&pseudo) {
        0 => 0xffff, // 0 means "no checksum" in UDP
        s => s,
    };
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    ipv4(*src.ip(), *dst.ip(), PROTO_UDP, id, &udp)
}

/// The inner IPv4 packet of an IP-in-IP packet (outer header included in `outer`, as a raw
/// socket delivers it). `None` unless the outer packet is IPv4 protocol 4 and the inner one
/// is a well-formed IPv4 packet whose length fits.
pub fn inner_packet(outer: &[u8]) -> Option<&[u8]> {
    let (&vihl, _) = outer.split_first()?;
    if vihl >> 4 != 4 || *outer.get(9)? != PROTO_IPIP {
        return None;
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    let outer_len = usize::from(u16::from_be_bytes([*outer.get(2)?, *outer.get(3)?]));
    if ihl < 20 || outer_len < ihl || outer_len > outer.len() {
        return None;
    }
    let inner = &outer[ihl..outer_len];
    let (&ivihl, _) = inner.split_first()?;
    let inner_ihl = usize::from(ivihl & 0x0f) * 4;
    let inner_len = usize::from(u16::from_be_bytes([*inner.get(2)?, *inner.get(3)?]));
    if ivihl >> 4 != 4 || inner_ihl < 20 || inner_len < inner_ihl || inner_len > inner.len() {
        return None;
    }
    Some(&inner[..inner_len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_header() {
        // RFC 1071 style example: a header whose checksum field is already right sums to 0.
        let h = ipv4(
            Ipv4Addr::new(198, 18, 0, 11),
            Ipv4Addr::new(198, 18, 0, 51),
            PROTO_IPIP,
            1,
            &[],
        )
        .unwrap();
        assert_eq!(checksum(&h), 0);
        assert_eq!(checksum(&[0x00, 0x01, 0xf2]), !(0x0001u16 + 0xf200));
    }

    #[test]
    fn udp_checksum_verifies() {
        let src = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 100), 5555);
        let dst = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 10), 7);
        let p = udp_datagram(src, dst, 9, b"hello").unwrap();
        assert_eq!(p.len(), 20 + 8 + 5);
        assert_eq!(checksum(&p[..20]), 0);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&p[12..20]);
        pseudo.extend_from_slice(&[0, PROTO_UDP, 0, 13]);
        pseudo.extend_from_slice(&p[20..]);
        assert_eq!(checksum(&pseudo), 0);
    }

    #[test]
    fn inner_packet_is_found_and_garbage_refused() {
        let src = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 100), 5555);
        let dst = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 10), 7);
        let inner = udp_datagram(src, dst, 9, b"hello").unwrap();
        let outer = ipv4(
            Ipv4Addr::new(198, 18, 0, 11),
            Ipv4Addr::new(198, 18, 0, 51),
            PROTO_IPIP,
            1,
            &inner,
        )
        .unwrap();
        assert_eq!(inner_packet(&outer), Some(&inner[..]));
        let mut padded = outer.clone();
        padded.extend_from_slice(&[0; 6]); // Ethernet padding beyond total length
        assert_eq!(inner_packet(&padded), Some(&inner[..]));
        for cut in 0..outer.len() {
            assert_eq!(inner_packet(&outer[..cut]), None, "cut at {cut}");
        }
        let mut not_ipip = outer.clone();
        not_ipip[9] = PROTO_UDP;
        assert_eq!(inner_packet(&not_ipip), None);
    }
}
