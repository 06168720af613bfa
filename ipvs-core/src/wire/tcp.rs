//! TCP segments (RFC 9293): ports, sequence numbers, flags, options, checksum.

use core::net::Ipv4Addr;

use super::checksum;
use super::{WireError, be16, be32, put16, put32};

/// FIN.
pub const FLAG_FIN: u8 = 0x01;
/// SYN.
pub const FLAG_SYN: u8 = 0x02;
/// RST.
pub const FLAG_RST: u8 = 0x04;
/// PSH.
pub const FLAG_PSH: u8 = 0x08;
/// ACK.
pub const FLAG_ACK: u8 = 0x10;
/// URG.
pub const FLAG_URG: u8 = 0x20;

pub(crate) mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

/// Offset of the checksum field (for callers rewriting a quoted header).
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;
/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// A view of a TCP segment.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking `20 <= header_len <= buffer`.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Packet::new_unchecked(buffer);
        let b = p.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if p.header_len() < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if p.header_len() > b.len() {
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
    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ)
    }
    /// Acknowledgement number.
    pub fn ack_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK)
    }
    /// Header length in bytes (data offset x 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::OFF] >> 4) * 4
    }
    /// The flag byte (`FLAG_*`).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }
    /// Window.
    pub fn window_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WINDOW)
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        be16(self.buffer.as_ref(), field::URGENT)
    }
    /// Options bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// Payload.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
    /// Whether the checksum verifies for this pseudo-header (the whole buffer is the
    /// segment).
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let b = self.buffer.as_ref();
        let Ok(len) = u16::try_from(b.len()) else {
            return false;
        };
        let s = checksum::pseudo_header(src, dst, 6, len) + checksum::sum(b);
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
    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::SEQ, v);
    }
    /// Sets the acknowledgement number.
    pub fn set_ack_number(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::ACK, v);
    }
    /// Sets the flag byte.
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v;
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
    /// Recomputes the checksum over the whole buffer for this pseudo-header (a segment
    /// longer than 65535 bytes gets 0).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let c = match u16::try_from(b.len()) {
            Ok(len) => {
                checksum::finish(checksum::pseudo_header(src, dst, 6, len) + checksum::sum(b))
            }
            Err(_) => 0,
        };
        self.set_checksum(c);
    }
    /// Payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
}

/// A parsed TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgement number (meaningful with ACK).
    pub ack_number: u32,
    /// Flag byte.
    pub flags: u8,
    /// Window.
    pub window_len: u16,
    /// Urgent pointer.
    pub urgent_at: u16,
    /// Options, a multiple of 4 bytes, at most 40.
    pub options: &'a [u8],
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses a checked segment, verifying the checksum against the pseudo-header.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        p: &'a Packet<&'a T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<Repr<'a>, WireError> {
        if !p.verify_checksum(src, dst) {
            return Err(WireError::Checksum);
        }
        let b: &'a [u8] = p.buffer.as_ref();
        let hl = p.header_len();
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq_number: p.seq_number(),
            ack_number: p.ack_number(),
            flags: p.flags(),
            window_len: p.window_len(),
            urgent_at: p.urgent_at(),
            options: &b[HEADER_LEN..hl],
            payload: &b[hl..],
        })
    }

    /// Header length (20 + options).
    pub const fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    /// Header plus payload.
    pub const fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes the segment into the first [`Repr::buffer_len`] bytes of `buf`, checksum
    /// filled for the pseudo-header `src`, `dst`. Options are truncated to 40 bytes and
    /// padded to a multiple of 4 with zeros (end of option list).
    pub fn emit(&self, buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
        let opt_len = self.options.len().min(40).div_ceil(4) * 4;
        let hl = HEADER_LEN + opt_len;
        let len = hl + self.payload.len();
        let buf = &mut buf[..len];
        put16(buf, field::SRC_PORT, self.src_port);
        put16(buf, field::DST_PORT, self.dst_port);
        put32(buf, field::SEQ, self.seq_number);
        put32(buf, field::ACK, self.ack_number);
        buf[field::OFF] = ((hl / 4) as u8) << 4;
        buf[field::FLAGS] = self.flags;
        put16(buf, field::WINDOW, self.window_len);
        put16(buf, field::URGENT, self.urgent_at);
        let n = self.options.len().min(40);
        buf[HEADER_LEN..HEADER_LEN + n].copy_from_slice(&self.options[..n]);
        buf[HEADER_LEN + n..hl].fill(0);
        buf[hl..].copy_from_slice(self.payload);
        let mut p = Packet::new_unchecked(buf);
        p.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::captures::SYN_FRAME;

    const C: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
    const V: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);

    #[test]
    fn parse_and_emit_syn() {
        let seg = &SYN_FRAME[34..];
        let p = Packet::new_checked(seg).expect("valid");
        assert_eq!(p.src_port(), 51000);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.flags(), FLAG_SYN);
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.options()[..4], [2, 4, 5, 0xb4]);
        assert!(p.verify_checksum(C, V));
        assert!(!p.verify_checksum(C, Ipv4Addr::new(203, 0, 113, 11)));
        let r = Repr::parse(&p, C, V).expect("valid");
        assert_eq!(r.seq_number, 0x3a1b_2c3d);
        assert_eq!(r.window_len, 64240);
        assert!(r.payload.is_empty());
        let mut out = [0u8; 40];
        r.emit(&mut out, C, V);
        assert_eq!(out[..], seg[..]);
    }

    #[test]
    fn rejects() {
        let seg = &SYN_FRAME[34..];
        assert_eq!(
            Packet::new_checked(&seg[..19]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            Packet::new_checked(&seg[..39]).err(),
            Some(WireError::Truncated)
        );
        let mut b = seg.to_vec();
        b[12] = 0x40;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
        let mut b = seg.to_vec();
        b[20] ^= 0xff;
        let p = Packet::new_checked(&b[..]).expect("lengths fine");
        assert_eq!(Repr::parse(&p, C, V), Err(WireError::Checksum));
    }

    #[test]
    fn emit_with_payload_round_trips() {
        let r = Repr {
            src_port: 80,
            dst_port: 51000,
            seq_number: 7,
            ack_number: 9,
            flags: FLAG_ACK | FLAG_PSH,
            window_len: 502,
            urgent_at: 0,
            options: &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
            payload: b"HTTP/1.1 200 OK\r\n",
        };
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, V, C);
        let p = Packet::new_checked(&out[..]).expect("valid");
        assert_eq!(Repr::parse(&p, V, C), Ok(r));
    }
}
