//! ICMPv4 (RFC 792, RFC 1191): echo, destination unreachable (code 4 "fragmentation
//! needed" carries the next-hop MTU), time exceeded, and the quoted original datagram
//! (IP header + at least 8 bytes) of error messages.

use super::checksum;
use super::ipv4;
use super::{WireError, be16, put16};

/// ICMP message type; unknown values survive as `Unknown(n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// 0.
    EchoReply,
    /// 3.
    DstUnreachable,
    /// 4 (deprecated).
    SourceQuench,
    /// 5.
    Redirect,
    /// 8.
    EchoRequest,
    /// 11.
    TimeExceeded,
    /// 12.
    ParamProblem,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for Message {
    fn from(v: u8) -> Self {
        match v {
            0 => Message::EchoReply,
            3 => Message::DstUnreachable,
            4 => Message::SourceQuench,
            5 => Message::Redirect,
            8 => Message::EchoRequest,
            11 => Message::TimeExceeded,
            12 => Message::ParamProblem,
            n => Message::Unknown(n),
        }
    }
}

impl From<Message> for u8 {
    fn from(m: Message) -> u8 {
        match m {
            Message::EchoReply => 0,
            Message::DstUnreachable => 3,
            Message::SourceQuench => 4,
            Message::Redirect => 5,
            Message::EchoRequest => 8,
            Message::TimeExceeded => 11,
            Message::ParamProblem => 12,
            Message::Unknown(n) => n,
        }
    }
}

impl Message {
    /// Whether this type is an error that quotes a datagram (3, 4, 5, 11, 12).
    pub const fn is_error(self) -> bool {
        matches!(
            self,
            Message::DstUnreachable
                | Message::SourceQuench
                | Message::Redirect
                | Message::TimeExceeded
                | Message::ParamProblem
        )
    }
}

/// Destination unreachable: port unreachable.
pub const CODE_PORT_UNREACHABLE: u8 = 3;
/// Destination unreachable: fragmentation needed and DF set.
pub const CODE_FRAG_NEEDED: u8 = 4;
/// Time exceeded: TTL exceeded in transit.
pub const CODE_TTL_EXCEEDED: u8 = 0;

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQNO: usize = 6;
    pub const MTU: usize = 6;
}

/// Length of the ICMP header (type, code, checksum, 4 bytes of "rest of header").
pub const HEADER_LEN: usize = 8;

/// A view of an ICMP message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer of at least 8 bytes.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Packet::new_unchecked(buffer);
        if p.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    pub fn msg_type(&self) -> Message {
        Message::from(self.buffer.as_ref()[field::TYPE])
    }
    /// Code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_IDENT)
    }
    /// Echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }
    /// Next-hop MTU of a frag-needed message (RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), field::MTU)
    }
    /// Everything after the 8-byte header: echo data, or the quoted datagram.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    /// Whether the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verifies(self.buffer.as_ref())
    }
    /// The quoted datagram of an error message, as a prefix-checked IPv4 view with at
    /// least 8 bytes of its payload (ports) present.
    pub fn quoted(&self) -> Result<ipv4::Packet<&[u8]>, WireError> {
        quoted(self.data())
    }
}

/// Checks a quoted datagram: an IPv4 header that fits, plus at least 8 payload bytes.
pub fn quoted(data: &[u8]) -> Result<ipv4::Packet<&[u8]>, WireError> {
    let ip = ipv4::Packet::new_checked_prefix(data)?;
    if ip.payload().len() < 8 {
        return Err(WireError::Truncated);
    }
    Ok(ip)
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the type.
    pub fn set_msg_type(&mut self, m: Message) {
        self.buffer.as_mut()[field::TYPE] = m.into();
    }
    /// Sets the code.
    pub fn set_msg_code(&mut self, c: u8) {
        self.buffer.as_mut()[field::CODE] = c;
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
    /// Recomputes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
    /// Data after the header, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// A parsed ICMP message of the kinds the engine deals with; others are
/// [`WireError::Unsupported`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Destination unreachable.
    DstUnreachable {
        /// Code (`CODE_*`).
        code: u8,
        /// Next-hop MTU (frag-needed; 0 otherwise).
        next_hop_mtu: u16,
        /// The quoted datagram: IP header + at least 8 bytes.
        quoted: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// Code (0 = TTL, 1 = reassembly).
        code: u8,
        /// The quoted datagram.
        quoted: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Parses a checked message, verifying the checksum and, for errors, that the quoted
    /// datagram has an IPv4 header and 8 bytes.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &'a Packet<&'a T>) -> Result<Repr<'a>, WireError> {
        if !p.verify_checksum() {
            return Err(WireError::Checksum);
        }
        let data: &'a [u8] = &p.buffer.as_ref()[HEADER_LEN..];
        match p.msg_type() {
            Message::EchoRequest => Ok(Repr::EchoRequest {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            }),
            Message::EchoReply => Ok(Repr::EchoReply {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            }),
            Message::DstUnreachable => {
                quoted(data)?;
                Ok(Repr::DstUnreachable {
                    code: p.msg_code(),
                    next_hop_mtu: if p.msg_code() == CODE_FRAG_NEEDED {
                        p.next_hop_mtu()
                    } else {
                        0
                    },
                    quoted: data,
                })
            }
            Message::TimeExceeded => {
                quoted(data)?;
                Ok(Repr::TimeExceeded {
                    code: p.msg_code(),
                    quoted: data,
                })
            }
            _ => Err(WireError::Unsupported),
        }
    }

    /// Header plus data.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => data.len(),
                Repr::DstUnreachable { quoted, .. } | Repr::TimeExceeded { quoted, .. } => {
                    quoted.len()
                }
            }
    }

    /// Writes the message into the first [`Repr::buffer_len`] bytes of `buf`, checksum
    /// filled.
    pub fn emit(&self, buf: &mut [u8]) {
        let buf = &mut buf[..self.buffer_len()];
        let (ty, code, rest, data): (Message, u8, [u8; 4], &[u8]) = match *self {
            Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (Message::EchoRequest, 0, echo_rest(ident, seq_no), data),
            Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (Message::EchoReply, 0, echo_rest(ident, seq_no), data),
            Repr::DstUnreachable {
                code,
                next_hop_mtu,
                quoted,
            } => {
                let m = next_hop_mtu.to_be_bytes();
                (Message::DstUnreachable, code, [0, 0, m[0], m[1]], quoted)
            }
            Repr::TimeExceeded { code, quoted } => (Message::TimeExceeded, code, [0; 4], quoted),
        };
        buf[field::TYPE] = ty.into();
        buf[field::CODE] = code;
        buf[4..HEADER_LEN].copy_from_slice(&rest);
        buf[HEADER_LEN..].copy_from_slice(data);
        Packet::new_unchecked(buf).fill_checksum();
    }
}

fn echo_rest(ident: u16, seq: u16) -> [u8; 4] {
    let i = ident.to_be_bytes();
    let s = seq.to_be_bytes();
    [i[0], i[1], s[0], s[1]]
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use super::*;
    use crate::wire::IpProtocol;
    use crate::wire::captures::{FRAG_NEEDED_IP, PING_IP, TIME_EXCEEDED_IP};

    #[test]
    fn parse_and_emit_echo() {
        let p = Packet::new_checked(&PING_IP[20..]).expect("valid");
        assert_eq!(p.msg_type(), Message::EchoRequest);
        let r = Repr::parse(&p).expect("valid");
        let Repr::EchoRequest {
            ident,
            seq_no,
            data,
        } = r
        else {
            panic!("not an echo request: {r:?}");
        };
        assert_eq!((ident, seq_no, data.len()), (0x1234, 1, 56));
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out);
        assert_eq!(out[..], PING_IP[20..]);
    }

    #[test]
    fn parse_and_emit_frag_needed() {
        let outer = ipv4::Packet::new_checked(&FRAG_NEEDED_IP[..]).expect("valid");
        assert!(outer.verify_checksum());
        assert_eq!(outer.next_header(), IpProtocol::Icmp);
        let p = Packet::new_checked(outer.payload()).expect("valid");
        assert_eq!(p.msg_type(), Message::DstUnreachable);
        assert_eq!(p.msg_code(), CODE_FRAG_NEEDED);
        assert_eq!(p.next_hop_mtu(), 1400);
        let q = p.quoted().expect("quoted datagram");
        assert_eq!(q.src_addr(), Ipv4Addr::new(203, 0, 113, 10));
        assert_eq!(q.dst_addr(), Ipv4Addr::new(198, 51, 100, 10));
        assert_eq!(q.total_len(), 1480);
        assert_eq!(q.payload().len(), 8);
        assert_eq!(be16(q.payload(), 0), 80);
        let r = Repr::parse(&p).expect("valid");
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out);
        assert_eq!(out[..], FRAG_NEEDED_IP[20..]);
    }

    #[test]
    fn parse_and_emit_time_exceeded() {
        let p = Packet::new_checked(&TIME_EXCEEDED_IP[20..]).expect("valid");
        let r = Repr::parse(&p).expect("valid");
        assert!(matches!(r, Repr::TimeExceeded { code: 0, .. }));
        assert!(p.msg_type().is_error());
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out);
        assert_eq!(out[..], TIME_EXCEEDED_IP[20..]);
    }

    #[test]
    fn rejects() {
        assert!(Packet::new_checked(&PING_IP[20..27]).is_err());
        let mut b = PING_IP[20..].to_vec();
        b[9] ^= 1;
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(Repr::parse(&p), Err(WireError::Checksum));
        // An error quoting fewer than 8 bytes of the original payload.
        let mut b = FRAG_NEEDED_IP[20..FRAG_NEEDED_IP.len() - 1].to_vec();
        let mut p = Packet::new_checked(&mut b[..]).expect("valid");
        p.fill_checksum();
        assert_eq!(p.quoted().err(), Some(WireError::Truncated));
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(Repr::parse(&p), Err(WireError::Truncated));
        let mut b = PING_IP[20..].to_vec();
        let mut p = Packet::new_checked(&mut b[..]).expect("valid");
        p.set_msg_type(Message::Unknown(42));
        p.fill_checksum();
        assert_eq!(p.msg_type(), Message::Unknown(42));
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(Repr::parse(&p), Err(WireError::Unsupported));
    }
}
