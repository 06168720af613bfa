//! IP-in-IP encapsulation (RFC 2003, IP protocol 4), as IPVS tunnelling (`-i`) uses it.
//!
//! The outer header is a plain 20-byte IPv4 header: source = the director's address on the
//! way to the real server, destination = the real server, protocol 4, TTL chosen by the
//! caller, DSCP/ECN and DF copied from the inner header (RFC 2003 §3.1), identification
//! copied from the inner header. The inner packet is not modified.

use core::net::Ipv4Addr;

use super::WireError;
use super::ipv4::{self, IpProtocol};

/// Bytes the encapsulation adds.
pub const OUTER_HEADER_LEN: usize = ipv4::HEADER_LEN;

/// The outer header for tunnelling `inner` from `src` to `dst`. Fails with
/// [`WireError::Malformed`] if the result would exceed 65535 bytes.
pub fn outer_repr<T: AsRef<[u8]>>(
    inner: &ipv4::Packet<T>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
) -> Result<ipv4::Repr, WireError> {
    let inner_len = usize::from(inner.total_len());
    if inner_len + OUTER_HEADER_LEN > usize::from(u16::MAX) {
        return Err(WireError::Malformed);
    }
    Ok(ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::IpIp,
        payload_len: inner_len,
        ttl,
        dscp_ecn: inner.dscp_ecn(),
        ident: inner.ident(),
        dont_frag: inner.dont_frag(),
    })
}

/// Encapsulates in place: `buf[20..]` holds the inner packet (its `total_len` bytes are the
/// payload); writes the outer header into `buf[..20]`. Returns the outer packet's length.
pub fn encapsulate(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
) -> Result<usize, WireError> {
    let inner_buf = buf.get(OUTER_HEADER_LEN..).ok_or(WireError::Truncated)?;
    let inner = ipv4::Packet::new_checked(inner_buf)?;
    let repr = outer_repr(&inner, src, dst, ttl)?;
    repr.emit(buf);
    Ok(repr.buffer_len())
}

/// The inner packet of an IP-in-IP packet.
pub fn decapsulate<'a, T: AsRef<[u8]> + ?Sized>(
    outer: &'a ipv4::Packet<&'a T>,
) -> Result<ipv4::Packet<&'a [u8]>, WireError> {
    if outer.next_header() != IpProtocol::IpIp {
        return Err(WireError::Unsupported);
    }
    ipv4::Packet::new_checked(outer.payload())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::captures::{IPIP_IP, SYN_FRAME};

    #[test]
    fn parse_capture_and_decapsulate() {
        let outer = ipv4::Packet::new_checked(&IPIP_IP[..]).expect("valid");
        assert!(outer.verify_checksum());
        assert_eq!(outer.next_header(), IpProtocol::IpIp);
        assert_eq!(outer.dst_addr(), Ipv4Addr::new(10, 0, 1, 20));
        let inner = decapsulate(&outer).expect("inner");
        assert_eq!(inner.dst_addr(), Ipv4Addr::new(203, 0, 113, 10));
        assert_eq!(inner.into_inner(), &SYN_FRAME[14..]);
    }

    #[test]
    fn encapsulate_matches_capture() {
        let mut b = vec![0u8; IPIP_IP.len()];
        b[20..].copy_from_slice(&SYN_FRAME[14..]);
        let n = encapsulate(
            &mut b,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 1, 20),
            64,
        )
        .expect("fits");
        assert_eq!(n, IPIP_IP.len());
        assert_eq!(b[..], IPIP_IP[..]);
        let outer = ipv4::Packet::new_checked(&IPIP_IP[..]).expect("valid");
        let r = outer_repr(
            &decapsulate(&outer).expect("inner"),
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 1, 20),
            64,
        )
        .expect("fits");
        assert_eq!(ipv4::Repr::parse(&outer), Ok(r));
        assert_eq!(
            encapsulate(&mut [0u8; 10], r.src_addr, r.dst_addr, 1),
            Err(WireError::Truncated)
        );
        let plain = ipv4::Packet::new_checked(&SYN_FRAME[14..]).expect("valid");
        assert_eq!(decapsulate(&plain).err(), Some(WireError::Unsupported));
    }
}
