//! The connection-sync datagram, version 1: a zero-copy view ([`Packet`]), the header
//! representation ([`Header`]), one entry's representation ([`SyncRecord`]) and the
//! signing/verification with HMAC-SHA256. The byte diagram is in `docs/sync.md`.
//!
//! All integers are big-endian. A datagram is a 32-byte header, a body and a 32-byte tag:
//!
//! ```text
//! offset size field
//!  0      4   magic      "LVSS"
//!  4      1   version    1
//!  5      1   kind       1 = update, 2 = resync request, 3 = resync batch, 4 = resync end
//!  6      1   syncd id   lvs.cf `syncd_id` (0..=255)
//!  7      1   flags      0 (reserved)
//!  8      8   boot id    grows across restarts of the sender
//! 16      8   sequence   per boot id, +1 per datagram
//! 24      4   session    resync session (request, batch, end); 0 for updates
//! 28      2   count      entries in the body (update, batch); 0 otherwise
//! 30      2   reserved   0
//! 32      .   body       count x 32-byte entries (update, batch); 8-byte total (end);
//!                        empty (request)
//!  .     32   tag        HMAC-SHA256(key, every byte before the tag)
//! ```
//!
//! One entry (32 bytes):
//!
//! ```text
//!  0  1  type      1 = connection, 2 = persistence template
//!  1  1  protocol  6 (TCP) or 17 (UDP); 0 for a firewall-mark template
//!  2  1  method    0 = NAT, 1 = direct routing, 2 = tunnel (templates: 0)
//!  3  1  state     IPVS TCP state 0..=10 (TCP connections); 0 otherwise
//!  4  4  caddr     client address (templates: the masked client)
//!  8  4  vaddr     virtual address (fwmark templates: 0)
//! 12  4  daddr     real server address
//! 16  2  cport     client port (templates: 0)
//! 18  2  vport     virtual port (templates: the service port, 0 for port-0 services)
//! 20  2  dport     real server port as configured (`-r RIP:PORT`)
//! 22  2  flags     0 (reserved)
//! 24  4  fwmark    the service's firewall mark, 0 when the service is not a mark service
//! 28  4  timeout   remaining lifetime in milliseconds (at most 31 days)
//! ```
//!
//! [`Packet::new_checked`] checks, in order: length for magic and version (`Truncated`),
//! magic (`BadMagic`), version (`BadVersion`), length against [`MAX_DATAGRAM_LEN`]
//! (`Oversized`), header and tag present (`Truncated`), kind (`BadKind`), length against
//! kind and count (`LengthMismatch`). After it no accessor can panic. [`Header::parse`]
//! then checks the syncd id (`WrongId`, from unauthenticated bytes, only so that an operator
//! can tell another pair's traffic from a wrong key), the MAC in constant time (`BadMac`),
//! the reserved fields (`Reserved`) and every entry (`BadEntry`), so a datagram is taken
//! whole or not at all. Freshness (replay window) is the receiver's business.

use core::net::Ipv4Addr;
use core::ops::Range;
use core::time::Duration;

use ring::hmac;

use super::{ConnRecord, SyncError, SyncKey, SyncRecord, TemplateRecord};
use crate::conn::{ConnKey, ConnState, TcpState, TemplateKey, TemplateService};
use crate::types::{ForwardMethod, Protocol};

/// The first four bytes of every sync datagram.
pub const MAGIC: [u8; 4] = *b"LVSS";
/// The format version this module reads and writes.
pub const VERSION: u8 = 1;
/// Length of the header.
pub const HEADER_LEN: usize = 32;
/// Length of one entry.
pub const ENTRY_LEN: usize = 32;
/// Length of the HMAC-SHA256 tag.
pub const TAG_LEN: usize = 32;
/// Length of the body of a resync end marker (the total number of entries sent).
pub const END_BODY_LEN: usize = 8;
/// Shortest datagram: a header and a tag (a resync request).
pub const MIN_DATAGRAM_LEN: usize = HEADER_LEN + TAG_LEN;
/// Longest datagram: the largest UDP payload over IPv4.
pub const MAX_DATAGRAM_LEN: usize = 65_507;
/// Default datagram size: fills a 1500-byte MTU (1500 - 20 IPv4 - 8 UDP), holding
/// [`entries_per_datagram`]`(1472)` = 44 entries.
pub const DEFAULT_DATAGRAM_LEN: usize = 1472;
/// Longest remaining timeout an entry may carry: 31 days, in milliseconds.
pub const MAX_TIMEOUT_MS: u32 = crate::conn::timeouts::MAX_TIMEOUT_SECS * 1000;

/// How many entries fit in a datagram of `len` bytes.
pub const fn entries_per_datagram(len: usize) -> usize {
    if len < MIN_DATAGRAM_LEN {
        0
    } else {
        (len - MIN_DATAGRAM_LEN) / ENTRY_LEN
    }
}

mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION: usize = 4;
    pub const KIND: usize = 5;
    pub const SYNCD_ID: usize = 6;
    pub const FLAGS: usize = 7;
    pub const BOOT: Range<usize> = 8..16;
    pub const SEQ: Range<usize> = 16..24;
    pub const SESSION: Range<usize> = 24..28;
    pub const COUNT: Range<usize> = 28..30;
    pub const RESERVED: Range<usize> = 30..32;

    pub mod entry {
        use core::ops::Range;
        pub const TYPE: usize = 0;
        pub const PROTO: usize = 1;
        pub const METHOD: usize = 2;
        pub const STATE: usize = 3;
        pub const CADDR: Range<usize> = 4..8;
        pub const VADDR: Range<usize> = 8..12;
        pub const DADDR: Range<usize> = 12..16;
        pub const CPORT: Range<usize> = 16..18;
        pub const VPORT: Range<usize> = 18..20;
        pub const DPORT: Range<usize> = 20..22;
        pub const FLAGS: Range<usize> = 22..24;
        pub const FWMARK: Range<usize> = 24..28;
        pub const TIMEOUT: Range<usize> = 28..32;
    }
}

const ENTRY_CONN: u8 = 1;
const ENTRY_TEMPLATE: u8 = 2;

/// What a datagram carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Connection-table changes streamed by the active director.
    Update,
    /// "Send me your whole table": sent by a director that starts or rejoins.
    ResyncRequest,
    /// Part of the answer to a resync request.
    ResyncBatch,
    /// The end of the answer, with the number of entries sent.
    ResyncEnd,
}

impl Kind {
    /// The wire value.
    pub const fn number(self) -> u8 {
        match self {
            Kind::Update => 1,
            Kind::ResyncRequest => 2,
            Kind::ResyncBatch => 3,
            Kind::ResyncEnd => 4,
        }
    }

    /// The kind with wire value `n`.
    pub const fn from_number(n: u8) -> Option<Kind> {
        match n {
            1 => Some(Kind::Update),
            2 => Some(Kind::ResyncRequest),
            3 => Some(Kind::ResyncBatch),
            4 => Some(Kind::ResyncEnd),
            _ => None,
        }
    }

    /// Whether the body is a list of entries.
    pub const fn has_entries(self) -> bool {
        matches!(self, Kind::Update | Kind::ResyncBatch)
    }
}

/// A view over a sync datagram.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn be16(b: &[u8], r: Range<usize>) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[r]);
    u16::from_be_bytes(a)
}

fn be32(b: &[u8], r: Range<usize>) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[r]);
    u32::from_be_bytes(a)
}

fn be64(b: &[u8], r: Range<usize>) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[r]);
    u64::from_be_bytes(a)
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors panic if it is malformed.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps untrusted bytes: checks magic, version, kind and that the length is exactly
    /// what the kind and count require (see the module docs for the order). After this no
    /// accessor panics.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, SyncError> {
        let b = buffer.as_ref();
        let len = b.len();
        if len <= field::VERSION {
            return Err(SyncError::Truncated {
                len,
                need: MIN_DATAGRAM_LEN,
            });
        }
        if b[field::MAGIC] != MAGIC {
            return Err(SyncError::BadMagic);
        }
        if b[field::VERSION] != VERSION {
            return Err(SyncError::BadVersion {
                version: b[field::VERSION],
            });
        }
        if len > MAX_DATAGRAM_LEN {
            return Err(SyncError::Oversized {
                len,
                max: MAX_DATAGRAM_LEN,
            });
        }
        if len < MIN_DATAGRAM_LEN {
            return Err(SyncError::Truncated {
                len,
                need: MIN_DATAGRAM_LEN,
            });
        }
        let kind = Kind::from_number(b[field::KIND]).ok_or(SyncError::BadKind {
            kind: b[field::KIND],
        })?;
        let count = usize::from(be16(b, field::COUNT));
        let body = match kind {
            Kind::Update | Kind::ResyncBatch => count * ENTRY_LEN,
            Kind::ResyncEnd => END_BODY_LEN,
            Kind::ResyncRequest => 0,
        };
        let expected = MIN_DATAGRAM_LEN + body;
        if len != expected || (!kind.has_entries() && count != 0) {
            return Err(SyncError::LengthMismatch { len, expected });
        }
        Ok(Packet { buffer })
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The version byte.
    pub fn version(&self) -> u8 {
        self.bytes()[field::VERSION]
    }
    /// The raw kind byte.
    pub fn kind_byte(&self) -> u8 {
        self.bytes()[field::KIND]
    }
    /// The kind (valid after [`Packet::new_checked`]).
    pub fn kind(&self) -> Option<Kind> {
        Kind::from_number(self.kind_byte())
    }
    /// The syncd id.
    pub fn syncd_id(&self) -> u8 {
        self.bytes()[field::SYNCD_ID]
    }
    /// The flags byte (reserved).
    pub fn flags(&self) -> u8 {
        self.bytes()[field::FLAGS]
    }
    /// The sender's boot id.
    pub fn boot_id(&self) -> u64 {
        be64(self.bytes(), field::BOOT)
    }
    /// The sequence number.
    pub fn sequence(&self) -> u64 {
        be64(self.bytes(), field::SEQ)
    }
    /// The resync session.
    pub fn session(&self) -> u32 {
        be32(self.bytes(), field::SESSION)
    }
    /// The number of entries.
    pub fn count(&self) -> u16 {
        be16(self.bytes(), field::COUNT)
    }
    /// The reserved 16 bits after the count.
    pub fn reserved(&self) -> u16 {
        be16(self.bytes(), field::RESERVED)
    }
    /// The body: entries, the end marker's total, or nothing.
    pub fn body(&self) -> &[u8] {
        let b = self.bytes();
        &b[HEADER_LEN..b.len() - TAG_LEN]
    }
    /// The bytes the tag covers: everything before it.
    pub fn signed_bytes(&self) -> &[u8] {
        let b = self.bytes();
        &b[..b.len() - TAG_LEN]
    }
    /// The tag.
    pub fn tag(&self) -> &[u8] {
        let b = self.bytes();
        &b[b.len() - TAG_LEN..]
    }
    /// The end marker's total (0 for other kinds).
    pub fn end_total(&self) -> u64 {
        let body = self.body();
        if body.len() == END_BODY_LEN {
            be64(body, 0..END_BODY_LEN)
        } else {
            0
        }
    }
    /// Verifies the tag in constant time.
    pub fn verify(&self, key: &SyncKey) -> Result<(), SyncError> {
        hmac::verify(&key.0, self.signed_bytes(), self.tag()).map_err(|_| SyncError::BadMac)
    }
    /// The raw entries of the body (empty for kinds without entries).
    pub fn entries(&self) -> core::slice::ChunksExact<'_, u8> {
        let body = if self.kind().is_some_and(Kind::has_entries) {
            self.body()
        } else {
            &[]
        };
        body.chunks_exact(ENTRY_LEN)
    }
}

/// The header of an authenticated datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// What the datagram carries.
    pub kind: Kind,
    /// The sender's syncd id.
    pub syncd_id: u8,
    /// The sender's boot id.
    pub boot_id: u64,
    /// The sender's sequence number.
    pub sequence: u64,
    /// The resync session (0 for updates).
    pub session: u32,
    /// Entries in the body (update, batch).
    pub count: u16,
    /// The total of a resync end marker (0 otherwise).
    pub end_total: u64,
}

impl Header {
    /// Checks the syncd id (`want` 0 accepts every id, as the kernel's backup does), the
    /// MAC, the reserved fields and every entry, then decodes the header. Entries are then
    /// read with [`parse_entry`], which cannot fail on a datagram this accepted.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Packet<T>,
        key: &SyncKey,
        want: u8,
    ) -> Result<Header, SyncError> {
        let got = packet.syncd_id();
        if want != 0 && got != want {
            return Err(SyncError::WrongId { got, want });
        }
        packet.verify(key)?;
        if packet.flags() != 0 {
            return Err(SyncError::Reserved { field: "flags" });
        }
        if packet.reserved() != 0 {
            return Err(SyncError::Reserved {
                field: "header reserved",
            });
        }
        let kind = packet.kind().ok_or(SyncError::BadKind {
            kind: packet.kind_byte(),
        })?;
        for (index, e) in packet.entries().enumerate() {
            parse_entry(e).map_err(|(field, value)| SyncError::BadEntry {
                index,
                field,
                value,
            })?;
        }
        Ok(Header {
            kind,
            syncd_id: got,
            boot_id: packet.boot_id(),
            sequence: packet.sequence(),
            session: packet.session(),
            count: packet.count(),
            end_total: packet.end_total(),
        })
    }
}

fn protocol(n: u8) -> Option<Protocol> {
    match n {
        6 => Some(Protocol::Tcp),
        17 => Some(Protocol::Udp),
        _ => None,
    }
}

/// Decodes one 32-byte entry. The error names the offending field and its value.
pub fn parse_entry(e: &[u8]) -> Result<SyncRecord, (&'static str, u32)> {
    use field::entry as f;
    if e.len() != ENTRY_LEN {
        return Err(("length", e.len() as u32));
    }
    let addr = |r: Range<usize>| Ipv4Addr::from(be32(e, r));
    let flags = be16(e, f::FLAGS);
    if flags != 0 {
        return Err(("flags", u32::from(flags)));
    }
    let timeout_ms = be32(e, f::TIMEOUT);
    if timeout_ms > MAX_TIMEOUT_MS {
        return Err(("timeout", timeout_ms));
    }
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    let fwmark = be32(e, f::FWMARK);
    let (method, state) = (e[f::METHOD], e[f::STATE]);
    match e[f::TYPE] {
        ENTRY_CONN => {
            let proto = protocol(e[f::PROTO]).ok_or(("protocol", u32::from(e[f::PROTO])))?;
            let fwd = match method {
                0 => ForwardMethod::Masq,
                1 => ForwardMethod::Route,
                2 => ForwardMethod::Tunnel,
                m => return Err(("method", u32::from(m))),
            };
            let state = match proto {
                Protocol::Tcp => ConnState::Tcp(
                    TcpState::from_index(usize::from(state)).ok_or(("state", u32::from(state)))?,
                ),
                Protocol::Udp if state == 0 => ConnState::Udp,
                Protocol::Udp => return Err(("state", u32::from(state))),
            };
            Ok(SyncRecord::Conn(ConnRecord {
                key: ConnKey {
                    proto,
                    caddr: addr(f::CADDR),
                    cport: be16(e, f::CPORT),
                    vaddr: addr(f::VADDR),
                    vport: be16(e, f::VPORT),
                },
                fwmark,
                daddr: addr(f::DADDR),
                dport: be16(e, f::DPORT),
                fwd,
                state,
                timeout,
            }))
        }
        ENTRY_TEMPLATE => {
            if method != 0 {
                return Err(("method", u32::from(method)));
            }
            if state != 0 {
                return Err(("state", u32::from(state)));
            }
            let cport = be16(e, f::CPORT);
            if cport != 0 {
                return Err(("cport", u32::from(cport)));
            }
            let (vaddr, vport) = (addr(f::VADDR), be16(e, f::VPORT));
            let service = match (e[f::PROTO], fwmark) {
                (0, 0) => return Err(("fwmark", 0)),
                (0, m) => {
                    if vaddr != Ipv4Addr::UNSPECIFIED {
                        return Err(("vaddr", u32::from(vaddr)));
                    }
                    if vport != 0 {
                        return Err(("vport", u32::from(vport)));
                    }
                    TemplateService::Fwmark(m)
                }
                (p, 0) => TemplateService::Port {
                    proto: protocol(p).ok_or(("protocol", u32::from(p)))?,
                    vaddr,
                    vport,
                },
                (_, m) => return Err(("fwmark", m)),
            };
            Ok(SyncRecord::Template(TemplateRecord {
                key: TemplateKey {
                    client: addr(f::CADDR),
                    service,
                },
                daddr: addr(f::DADDR),
                dport: be16(e, f::DPORT),
                timeout,
            }))
        }
        t => Err(("type", u32::from(t))),
    }
}

fn timeout_ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).map_or(MAX_TIMEOUT_MS, |ms| ms.min(MAX_TIMEOUT_MS))
}

/// Writes one entry into `e` (exactly [`ENTRY_LEN`] bytes). Timeouts above 31 days are
/// written as 31 days.
///
/// # Panics
/// If `e` is not [`ENTRY_LEN`] bytes long.
pub fn emit_entry(record: &SyncRecord, e: &mut [u8]) {
    use field::entry as f;
    assert_eq!(e.len(), ENTRY_LEN, "an entry is {ENTRY_LEN} bytes");
    e.fill(0);
    let mut put = |r: Range<usize>, v: &[u8]| e[r].copy_from_slice(v);
    match record {
        SyncRecord::Conn(c) => {
            put(f::CADDR, &c.key.caddr.octets());
            put(f::VADDR, &c.key.vaddr.octets());
            put(f::DADDR, &c.daddr.octets());
            put(f::CPORT, &c.key.cport.to_be_bytes());
            put(f::VPORT, &c.key.vport.to_be_bytes());
            put(f::DPORT, &c.dport.to_be_bytes());
            put(f::FWMARK, &c.fwmark.to_be_bytes());
            put(f::TIMEOUT, &timeout_ms(c.timeout).to_be_bytes());
            e[f::TYPE] = ENTRY_CONN;
            e[f::PROTO] = c.key.proto.number();
            e[f::METHOD] = match c.fwd {
                ForwardMethod::Masq => 0,
                ForwardMethod::Route => 1,
                ForwardMethod::Tunnel => 2,
            };
            e[f::STATE] = match c.state {
                ConnState::Tcp(s) => s as u8,
                ConnState::Udp => 0,
            };
        }
        SyncRecord::Template(t) => {
            let (proto, vaddr, vport, mark) = match t.key.service {
                TemplateService::Port {
                    proto,
                    vaddr,
                    vport,
                } => (proto.number(), vaddr, vport, 0),
                TemplateService::Fwmark(m) => (0, Ipv4Addr::UNSPECIFIED, 0, m),
            };
            put(f::CADDR, &t.key.client.octets());
            put(f::VADDR, &vaddr.octets());
            put(f::DADDR, &t.daddr.octets());
            put(f::VPORT, &vport.to_be_bytes());
            put(f::DPORT, &t.dport.to_be_bytes());
            put(f::FWMARK, &mark.to_be_bytes());
            put(f::TIMEOUT, &timeout_ms(t.timeout).to_be_bytes());
            e[f::TYPE] = ENTRY_TEMPLATE;
            e[f::PROTO] = proto;
        }
    }
}

/// Writes a header into `buf[..HEADER_LEN]` (`count` and `end_total` taken from `h`; the
/// body must already be in place), then signs `buf[..len - TAG_LEN]` into the last
/// [`TAG_LEN`] bytes.
///
/// # Panics
/// If `buf` is shorter than [`MIN_DATAGRAM_LEN`].
pub fn seal(h: &Header, buf: &mut [u8], key: &SyncKey) {
    let len = buf.len();
    assert!(len >= MIN_DATAGRAM_LEN, "a datagram has a header and a tag");
    buf[field::MAGIC].copy_from_slice(&MAGIC);
    buf[field::VERSION] = VERSION;
    buf[field::KIND] = h.kind.number();
    buf[field::SYNCD_ID] = h.syncd_id;
    buf[field::FLAGS] = 0;
    buf[field::BOOT].copy_from_slice(&h.boot_id.to_be_bytes());
    buf[field::SEQ].copy_from_slice(&h.sequence.to_be_bytes());
    buf[field::SESSION].copy_from_slice(&h.session.to_be_bytes());
    buf[field::COUNT].copy_from_slice(&h.count.to_be_bytes());
    buf[field::RESERVED].copy_from_slice(&[0, 0]);
    if h.kind == Kind::ResyncEnd && len == MIN_DATAGRAM_LEN + END_BODY_LEN {
        buf[HEADER_LEN..HEADER_LEN + END_BODY_LEN].copy_from_slice(&h.end_total.to_be_bytes());
    }
    let tag = hmac::sign(&key.0, &buf[..len - TAG_LEN]);
    buf[len - TAG_LEN..].copy_from_slice(tag.as_ref());
}

/// A whole signed datagram: `header` (whose `count` is replaced by the number of records)
/// and `records`. For tests, tools and the fuzz target; the sender fills its buffers in
/// place instead.
pub fn to_bytes(header: &Header, records: &[SyncRecord], key: &SyncKey) -> Vec<u8> {
    let body = match header.kind {
        Kind::Update | Kind::ResyncBatch => records.len() * ENTRY_LEN,
        Kind::ResyncEnd => END_BODY_LEN,
        Kind::ResyncRequest => 0,
    };
    let mut buf = vec![0u8; MIN_DATAGRAM_LEN + body];
    let mut h = *header;
    if header.kind.has_entries() {
        for (r, e) in records
            .iter()
            .zip(buf[HEADER_LEN..HEADER_LEN + body].chunks_exact_mut(ENTRY_LEN))
        {
            emit_entry(r, e);
        }
        h.count = u16::try_from(records.len()).unwrap_or(u16::MAX);
    } else {
        h.count = 0;
    }
    seal(&h, &mut buf, key);
    buf
}
