//! ARP over Ethernet and IPv4 (RFC 826). The engine passes ARP to the kernel; this view
//! exists for the io layer and for tests (gratuitous ARP, neighbour learning).

use core::net::Ipv4Addr;

use super::{EthernetAddress, WireError, be16, put16};

/// ARP operation; unknown values survive as `Unknown(n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// 1.
    Request,
    /// 2.
    Reply,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Operation::Request,
            2 => Operation::Reply,
            n => Operation::Unknown(n),
        }
    }
}

impl From<Operation> for u16 {
    fn from(o: Operation) -> u16 {
        match o {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(n) => n,
        }
    }
}

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

/// A view of an ARP packet of any hardware/protocol address lengths.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking that the fixed part and the four addresses fit.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Packet::new_unchecked(buffer);
        let b = p.buffer.as_ref();
        if b.len() < 8 {
            return Err(WireError::Truncated);
        }
        let need = 8 + 2 * (usize::from(b[field::HLEN]) + usize::from(b[field::PLEN]));
        if b.len() < need {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    /// Hardware type (1 = Ethernet).
    pub fn hardware_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::HTYPE)
    }
    /// Protocol type (0x0800 = IPv4).
    pub fn protocol_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PTYPE)
    }
    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }
    /// Operation.
    pub fn operation(&self) -> Operation {
        Operation::from(be16(self.buffer.as_ref(), field::OPER))
    }
    fn hl(&self) -> usize {
        usize::from(self.hardware_len())
    }
    fn pl(&self) -> usize {
        usize::from(self.protocol_len())
    }
    /// Sender hardware address (raw).
    pub fn source_hardware_addr(&self) -> &[u8] {
        let s = field::SHA;
        &self.buffer.as_ref()[s..s + self.hl()]
    }
    /// Sender protocol address (raw).
    pub fn source_protocol_addr(&self) -> &[u8] {
        let s = field::SHA + self.hl();
        &self.buffer.as_ref()[s..s + self.pl()]
    }
    /// Target hardware address (raw).
    pub fn target_hardware_addr(&self) -> &[u8] {
        let s = field::SHA + self.hl() + self.pl();
        &self.buffer.as_ref()[s..s + self.hl()]
    }
    /// Target protocol address (raw).
    pub fn target_protocol_addr(&self) -> &[u8] {
        let s = field::SHA + 2 * self.hl() + self.pl();
        &self.buffer.as_ref()[s..s + self.pl()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the operation.
    pub fn set_operation(&mut self, op: Operation) {
        put16(self.buffer.as_mut(), field::OPER, op.into());
    }
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Request or reply.
    pub operation: Operation,
    /// Sender MAC.
    pub source_hardware_addr: EthernetAddress,
    /// Sender IPv4 address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target MAC (zero in a request).
    pub target_hardware_addr: EthernetAddress,
    /// Target IPv4 address.
    pub target_protocol_addr: Ipv4Addr,
}

fn mac(b: &[u8]) -> EthernetAddress {
    let mut a = [0; 6];
    a.copy_from_slice(b);
    EthernetAddress(a)
}

fn ip(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

impl Repr {
    /// Parses an Ethernet/IPv4 ARP packet; other address types are
    /// [`WireError::Unsupported`].
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, WireError> {
        if p.hardware_type() != 1
            || p.protocol_type() != 0x0800
            || p.hardware_len() != 6
            || p.protocol_len() != 4
        {
            return Err(WireError::Unsupported);
        }
        Ok(Repr {
            operation: p.operation(),
            source_hardware_addr: mac(p.source_hardware_addr()),
            source_protocol_addr: ip(p.source_protocol_addr()),
            target_hardware_addr: mac(p.target_hardware_addr()),
            target_protocol_addr: ip(p.target_protocol_addr()),
        })
    }

    /// 28.
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet into the first 28 bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) {
        put16(buf, field::HTYPE, 1);
        put16(buf, field::PTYPE, 0x0800);
        buf[field::HLEN] = 6;
        buf[field::PLEN] = 4;
        put16(buf, field::OPER, self.operation.into());
        buf[8..14].copy_from_slice(&self.source_hardware_addr.0);
        buf[14..18].copy_from_slice(&self.source_protocol_addr.octets());
        buf[18..24].copy_from_slice(&self.target_hardware_addr.0);
        buf[24..28].copy_from_slice(&self.target_protocol_addr.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::captures::ARP_FRAME;

    #[test]
    fn parse_and_emit_request() {
        let p = Packet::new_checked(&ARP_FRAME[14..]).expect("valid");
        let r = Repr::parse(&p).expect("eth/ipv4");
        assert_eq!(r.operation, Operation::Request);
        assert_eq!(r.source_protocol_addr, Ipv4Addr::new(198, 51, 100, 10));
        assert_eq!(r.target_protocol_addr, Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(r.target_hardware_addr, EthernetAddress([0; 6]));
        let mut out = [0u8; PACKET_LEN];
        r.emit(&mut out);
        assert_eq!(out[..], ARP_FRAME[14..14 + PACKET_LEN]);
    }

    #[test]
    fn rejects() {
        assert_eq!(
            Packet::new_checked(&ARP_FRAME[14..14 + 27]).err(),
            Some(WireError::Truncated)
        );
        let mut b = ARP_FRAME;
        b[14 + 4] = 255; // hlen 255 does not fit
        assert_eq!(
            Packet::new_checked(&b[14..]).err(),
            Some(WireError::Truncated)
        );
        let mut b = ARP_FRAME;
        b[14 + 1] = 6; // htype 6 (IEEE 802)
        let p = Packet::new_checked(&b[14..]).expect("lengths fine");
        assert_eq!(Repr::parse(&p), Err(WireError::Unsupported));
        let mut b = ARP_FRAME;
        b[14 + 7] = 9;
        let p = Packet::new_checked(&b[14..]).expect("lengths fine");
        assert_eq!(p.operation(), Operation::Unknown(9));
    }
}
