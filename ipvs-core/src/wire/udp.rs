//! UDP datagrams (RFC 768). A checksum of 0 means "none" (IPv4); a computed 0 is sent as
//! 0xffff.

use core::net::Ipv4Addr;

use super::checksum;
use super::{WireError, be16, put16};

pub(crate) mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// Offset of the checksum field (for callers rewriting a quoted header).
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;
/// Header length.
pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking `8 <= length field <= buffer`.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Packet::new_unchecked(buffer);
        let b = p.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = usize::from(p.len());
        if len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if len > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }
    /// Length field (header + payload).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }
    /// Checksum field (0 = none).
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Payload, up to the length field.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.len()).clamp(HEADER_LEN, b.len());
        &b[HEADER_LEN..end]
    }
    /// Whether the checksum verifies (true when it is 0, "none").
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let b = self.buffer.as_ref();
        let end = usize::from(self.len()).clamp(HEADER_LEN, b.len());
        let s = checksum::pseudo_header(src, dst, 17, self.len()) + checksum::sum(&b[..end]);
        checksum::fold(s) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, v);
    }
    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, v);
    }
    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, v);
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
    /// Recomputes the checksum (never 0).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let end = usize::from(self.len()).clamp(HEADER_LEN, b.len());
        let s = checksum::pseudo_header(src, dst, 17, self.len()) + checksum::sum(&b[..end]);
        let c = match checksum::finish(s) {
            0 => 0xffff,
            c => c,
        };
        self.set_checksum(c);
    }
}

/// A parsed UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses a checked datagram, verifying a non-zero checksum.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        p: &'a Packet<&'a T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<Repr<'a>, WireError> {
        if !p.verify_checksum(src, dst) {
            return Err(WireError::Checksum);
        }
        let b: &'a [u8] = p.buffer.as_ref();
        let end = usize::from(p.len()).clamp(HEADER_LEN, b.len());
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload: &b[HEADER_LEN..end],
        })
    }

    /// Header plus payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes the datagram into `buf` with a checksum. The payload must keep the length
    /// within 65535 bytes (longer payloads are truncated).
    pub fn emit(&self, buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
        let n = self.payload.len().min(usize::from(u16::MAX) - HEADER_LEN);
        let buf = &mut buf[..HEADER_LEN + n];
        put16(buf, field::SRC_PORT, self.src_port);
        put16(buf, field::DST_PORT, self.dst_port);
        put16(buf, field::LENGTH, (HEADER_LEN + n) as u16);
        buf[HEADER_LEN..].copy_from_slice(&self.payload[..n]);
        Packet::new_unchecked(buf).fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::captures::DNS_FRAME;

    const C: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
    const V: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 53);

    #[test]
    fn parse_and_emit_dns_query() {
        let d = &DNS_FRAME[34..];
        let p = Packet::new_checked(d).expect("valid");
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(usize::from(p.len()), d.len());
        assert!(p.verify_checksum(C, V));
        let r = Repr::parse(&p, C, V).expect("valid");
        assert_eq!(r.payload.len(), 29);
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, C, V);
        assert_eq!(out[..], d[..]);
    }

    #[test]
    fn zero_checksum_and_rejects() {
        let mut b = DNS_FRAME[34..].to_vec();
        b[6] = 0;
        b[7] = 0;
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert!(p.verify_checksum(C, V));
        b[7] = 1;
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(Repr::parse(&p, C, V), Err(WireError::Checksum));
        assert_eq!(
            Packet::new_checked(&b[..7]).err(),
            Some(WireError::Truncated)
        );
        b[5] = 7;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
        b[4] = 1;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Truncated)
        );
    }
}
