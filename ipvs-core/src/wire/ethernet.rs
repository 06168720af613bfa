//! Ethernet II frames with at most one 802.1Q VLAN tag.
//!
//! The view exposes the outer ethertype, the VLAN tag if the outer type is 802.1Q, the
//! *inner* ethertype (the protocol of the payload) and the payload offset (14 or 18).
//! A second tag (QinQ) is not unwrapped: [`Frame::ethertype`] is then
//! [`EtherType::Vlan`] and the payload starts after the first tag.

use core::fmt;

use super::{WireError, be16, put16};

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// Whether the group bit is clear (neither multicast nor broadcast).
    pub const fn is_unicast(&self) -> bool {
        self.0[0] & 0x01 == 0
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// An ethertype; unknown values survive as `Unknown(n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// 0x0800.
    Ipv4,
    /// 0x0806.
    Arp,
    /// 0x8100 (802.1Q tag).
    Vlan,
    /// 0x86dd.
    Ipv6,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x8100 => EtherType::Vlan,
            0x86dd => EtherType::Ipv6,
            n => EtherType::Unknown(n),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Vlan => 0x8100,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Unknown(n) => n,
        }
    }
}

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const TCI: usize = 14;
    pub const INNER_ETHERTYPE: usize = 16;
}

/// Length of an untagged header.
pub const HEADER_LEN: usize = 14;
/// Length of a header with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = 18;

/// A view of an Ethernet frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps a buffer after checking that the header (and the tag, if any) fits.
    pub fn new_checked(buffer: T) -> Result<Frame<T>, WireError> {
        let f = Frame::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks that the header fits.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if be16(b, field::ETHERTYPE) == 0x8100 && b.len() < VLAN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC.
    pub fn dst_addr(&self) -> EthernetAddress {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        EthernetAddress(a)
    }

    /// Source MAC.
    pub fn src_addr(&self) -> EthernetAddress {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        EthernetAddress(a)
    }

    /// The ethertype right after the MACs (0x8100 for a tagged frame).
    pub fn outer_ethertype(&self) -> EtherType {
        EtherType::from(be16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// The 802.1Q tag control information (PCP, DEI, VID) if the frame is tagged.
    pub fn vlan_tci(&self) -> Option<u16> {
        (self.outer_ethertype() == EtherType::Vlan).then(|| be16(self.buffer.as_ref(), field::TCI))
    }

    /// The VLAN id (low 12 bits of the tag) if the frame is tagged.
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan_tci().map(|t| t & 0x0fff)
    }

    /// The payload's protocol: the inner ethertype of a tagged frame.
    pub fn ethertype(&self) -> EtherType {
        match self.outer_ethertype() {
            EtherType::Vlan => EtherType::from(be16(self.buffer.as_ref(), field::INNER_ETHERTYPE)),
            t => t,
        }
    }

    /// 14, or 18 for a tagged frame: where the payload starts.
    pub fn header_len(&self) -> usize {
        if self.outer_ethertype() == EtherType::Vlan {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// The payload (everything after the header, padding included).
    pub fn payload(&self) -> &[u8] {
        let hl = self.header_len();
        &self.buffer.as_ref()[hl..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC.
    pub fn set_dst_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.0);
    }

    /// Sets the source MAC.
    pub fn set_src_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.0);
    }

    /// Sets the payload's ethertype (the inner one on a tagged frame).
    pub fn set_ethertype(&mut self, t: EtherType) {
        let at = if self.outer_ethertype() == EtherType::Vlan {
            field::INNER_ETHERTYPE
        } else {
            field::ETHERTYPE
        };
        put16(self.buffer.as_mut(), at, t.into());
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
}

/// A parsed Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source MAC.
    pub src_addr: EthernetAddress,
    /// Destination MAC.
    pub dst_addr: EthernetAddress,
    /// The 802.1Q TCI, if tagged.
    pub vlan_tci: Option<u16>,
    /// The payload's ethertype.
    pub ethertype: EtherType,
}

impl Repr {
    /// Reads the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Repr, WireError> {
        frame.check_len()?;
        Ok(Repr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            vlan_tci: frame.vlan_tci(),
            ethertype: frame.ethertype(),
        })
    }

    /// 14 or 18.
    pub const fn header_len(&self) -> usize {
        if self.vlan_tci.is_some() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Writes the header into the start of `buf` (at least [`Repr::header_len`] bytes).
    pub fn emit(&self, buf: &mut [u8]) {
        buf[field::DST].copy_from_slice(&self.dst_addr.0);
        buf[field::SRC].copy_from_slice(&self.src_addr.0);
        match self.vlan_tci {
            Some(tci) => {
                put16(buf, field::ETHERTYPE, 0x8100);
                put16(buf, field::TCI, tci);
                put16(buf, field::INNER_ETHERTYPE, self.ethertype.into());
            }
            None => put16(buf, field::ETHERTYPE, self.ethertype.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::captures::{ARP_FRAME, SYN_FRAME, VLAN_FRAME};

    #[test]
    fn parse_and_emit_untagged() {
        let f = Frame::new_checked(&SYN_FRAME[..]).expect("valid");
        assert_eq!(f.dst_addr().to_string(), "02:00:00:00:00:fe");
        assert_eq!(f.src_addr().to_string(), "02:00:00:00:00:01");
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.vlan_id(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload().len(), SYN_FRAME.len() - 14);
        let r = Repr::parse(&f).expect("valid");
        let mut out = [0u8; 14];
        r.emit(&mut out);
        assert_eq!(out[..], SYN_FRAME[..14]);
    }

    #[test]
    fn parse_and_emit_tagged() {
        let f = Frame::new_checked(&VLAN_FRAME[..]).expect("valid");
        assert_eq!(f.outer_ethertype(), EtherType::Vlan);
        assert_eq!(f.vlan_id(), Some(100));
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload()[0], 0x45);
        let r = Repr::parse(&f).expect("valid");
        assert_eq!(r.header_len(), 18);
        let mut out = [0u8; 18];
        r.emit(&mut out);
        assert_eq!(out[..], VLAN_FRAME[..18]);
    }

    #[test]
    fn arp_frame_and_setters() {
        let mut b = ARP_FRAME;
        let mut f = Frame::new_checked(&mut b[..]).expect("valid");
        assert_eq!(f.dst_addr(), EthernetAddress::BROADCAST);
        assert!(!f.dst_addr().is_unicast());
        assert_eq!(f.ethertype(), EtherType::Arp);
        f.set_dst_addr(EthernetAddress([2, 0, 0, 0, 0, 9]));
        f.set_ethertype(EtherType::Unknown(0x88b5));
        assert_eq!(f.ethertype(), EtherType::Unknown(0x88b5));
        assert!(f.dst_addr().is_unicast());
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Frame::new_checked(&SYN_FRAME[..13]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            Frame::new_checked(&VLAN_FRAME[..17]).err(),
            Some(WireError::Truncated)
        );
        assert!(Frame::new_checked(&VLAN_FRAME[..18]).is_ok());
    }
}
