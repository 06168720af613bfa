//! The sync fuzz body, shared by the fuzz target (`fuzz/fuzz_targets/sync.rs`) and the
//! seed-corpus test. Test scaffolding behind the `testing` feature, not part of the API.
//!
//! One input drives three things:
//!
//! 1. **Datagrams**: the input split into datagrams (the first byte says how many) through
//!    a [`Receiver`]; every 32-byte window through [`wire::parse_entry`], and an entry that
//!    parses must emit to the same bytes. Contract: no panic; nothing is accepted that the
//!    key did not sign.
//! 2. **Signed entries**: the input's 32-byte chunks signed as one update datagram (as a
//!    partner with the key would send them), through a receiver, imported into the lab
//!    engine ([`crate::engine::fuzzing::lab_engine`]).
//! 3. **Structured records**: 8-byte chunks turned into records aimed at the lab's
//!    services and real servers (known and unknown, every state, method and timeout),
//!    imported with time advancing and sweeps in between; then the whole table exported
//!    and imported into a second lab engine, which must take every record. Contract: the
//!    accounting invariants hold after every step; the second engine holds as many
//!    connections as the first.

#![allow(clippy::expect_used)]

use core::net::Ipv4Addr;
use core::time::Duration;

use super::wire::{self, ENTRY_LEN, HEADER_LEN, Header, Kind, MIN_DATAGRAM_LEN, TAG_LEN};
use super::{ConnRecord, Received, Receiver, ReceiverConfig, SyncKey, SyncRecord, TemplateRecord};
use crate::conn::{ConnKey, ConnState, TcpState, TemplateKey, TemplateService};
use crate::engine::fuzzing::lab_engine;
use crate::ipvs::Ipvs;
use crate::time::Instant;
use crate::types::{ForwardMethod, Protocol};

/// The key the fuzz body signs with.
pub const FUZZ_KEY: &[u8] = b"sync fuzzing key, 32 bytes long!";

fn key() -> SyncKey {
    SyncKey::new(FUZZ_KEY).expect("the fuzz key is long enough")
}

/// Runs all three parts over `data`.
pub fn body(data: &[u8]) {
    datagrams_body(data);
    signed_body(data);
    records_body(data);
}

/// Part 1: raw datagrams and raw entries.
pub fn datagrams_body(data: &[u8]) {
    let mut rx = Receiver::new(key(), ReceiverConfig::default());
    let (n, rest) = data
        .split_first()
        .map_or((1, data), |(n, r)| (usize::from(*n) % 8 + 1, r));
    let chunk = rest.len().div_ceil(n).max(1);
    for d in rest.chunks(chunk) {
        if rx.handle_datagram(d).is_ok() {
            // Only a datagram signed with the key gets here (a seed file may hold one).
            let p = wire::Packet::new_checked(d).expect("accepted, so well-formed");
            assert!(p.verify(&key()).is_ok());
        }
    }
    for w in data.windows(ENTRY_LEN).step_by(7) {
        if let Ok(r) = wire::parse_entry(w) {
            let mut out = [0u8; ENTRY_LEN];
            wire::emit_entry(&r, &mut out);
            assert_eq!(&out[..], w, "a parsed entry emits to the same bytes");
        }
    }
}

/// Part 2: the input's entries, signed, through a receiver into the lab engine.
pub fn signed_body(data: &[u8]) {
    let n = (data.len() / ENTRY_LEN).min(wire::entries_per_datagram(wire::MAX_DATAGRAM_LEN));
    let mut buf = vec![0u8; MIN_DATAGRAM_LEN + n * ENTRY_LEN];
    buf[HEADER_LEN..HEADER_LEN + n * ENTRY_LEN].copy_from_slice(&data[..n * ENTRY_LEN]);
    let h = Header {
        kind: Kind::Update,
        syncd_id: 0,
        boot_id: 1,
        sequence: 1,
        session: 0,
        count: u16::try_from(n).expect("at most 2045 entries"),
        end_total: 0,
    };
    wire::seal(&h, &mut buf, &key());
    debug_assert_eq!(buf.len() - TAG_LEN, HEADER_LEN + n * ENTRY_LEN);
    let mut rx = Receiver::new(key(), ReceiverConfig::default());
    let mut engine = lab_engine();
    let ipvs = engine.ipvs_mut();
    if let Ok(Received::Update(entries)) = rx.handle_datagram(&buf) {
        let now = Instant::from_secs(1);
        for r in entries {
            let _ = ipvs.sync_import(now, &r);
        }
    }
    ipvs.check_invariants()
        .expect("imports keep the counters right");
}

/// A lab service: protocol, VIP, port, fwmark, real servers with their configured ports.
type LabService = (Protocol, Ipv4Addr, u16, u32, &'static [(Ipv4Addr, u16)]);

/// The lab's services ([`crate::engine::fuzzing::lab_engine`]) that records aim at.
const LAB: [LabService; 4] = [
    (
        Protocol::Tcp,
        Ipv4Addr::new(203, 0, 113, 10),
        80,
        0,
        &[
            (Ipv4Addr::new(10, 0, 1, 20), 8080),
            (Ipv4Addr::new(10, 0, 1, 21), 8080),
        ],
    ),
    (
        Protocol::Udp,
        Ipv4Addr::new(203, 0, 113, 10),
        53,
        0,
        &[(Ipv4Addr::new(10, 0, 1, 20), 5353)],
    ),
    (
        Protocol::Tcp,
        Ipv4Addr::new(203, 0, 113, 11),
        80,
        0,
        &[(Ipv4Addr::new(10, 0, 1, 30), 80)],
    ),
    (
        Protocol::Tcp,
        Ipv4Addr::new(203, 0, 113, 13),
        8000,
        7,
        &[(Ipv4Addr::new(10, 0, 1, 20), 0)],
    ),
];

/// An 8-byte chunk as a record aimed at the lab's services.
fn record(c: &[u8]) -> SyncRecord {
    let b = |i: usize| c.get(i).copied().unwrap_or(0);
    let (proto, vaddr, vport, fwmark, dests) = LAB[usize::from(b(0) >> 1) % 4];
    let pick = usize::from(b(0) >> 3) % (dests.len() + 1);
    let (daddr, dport) = dests
        .get(pick)
        .copied()
        .unwrap_or((Ipv4Addr::new(10, 0, 1, 99), 1));
    let caddr = Ipv4Addr::new(198, 51, 100, b(2) % 8);
    let timeout = Duration::from_millis(u64::from(u16::from_be_bytes([b(5), b(6)])) * 50);
    if b(0) & 1 == 1 {
        let service = if fwmark != 0 {
            TemplateService::Fwmark(fwmark)
        } else {
            TemplateService::Port {
                proto,
                vaddr,
                vport,
            }
        };
        return SyncRecord::Template(TemplateRecord {
            key: TemplateKey {
                client: caddr,
                service,
            },
            daddr,
            dport,
            timeout,
        });
    }
    let state = match proto {
        Protocol::Udp => ConnState::Udp,
        Protocol::Tcp => ConnState::Tcp(
            TcpState::from_index(usize::from(b(1)) % TcpState::COUNT).expect("in range"),
        ),
    };
    let fwd = [
        ForwardMethod::Masq,
        ForwardMethod::Route,
        ForwardMethod::Tunnel,
    ][usize::from(b(1) >> 4) % 3];
    SyncRecord::Conn(ConnRecord {
        key: ConnKey {
            proto,
            caddr,
            cport: u16::from_be_bytes([b(3), b(4)]) % 16,
            vaddr,
            vport: if fwmark != 0 {
                vport + u16::from(b(4) % 4)
            } else {
                vport
            },
        },
        fwmark,
        daddr,
        dport,
        fwd,
        state,
        timeout,
    })
}

/// Part 3: structured records into one lab engine, then its export into another.
pub fn records_body(data: &[u8]) {
    let mut a_engine = lab_engine();
    let a: &mut Ipvs = a_engine.ipvs_mut();
    let mut now = Instant::from_secs(1);
    for c in data.chunks(8) {
        now += Duration::from_millis(u64::from(c.get(7).copied().unwrap_or(0)) * 40);
        let _ = a.sync_import(now, &record(c));
        if c.get(7).is_some_and(|t| t & 0x80 != 0) {
            a.handle_timeout(now);
        }
        a.check_invariants()
            .expect("imports keep the counters right");
    }
    let exported: Vec<SyncRecord> = a.sync_export(now).collect();
    let live = a.conns().conns(now).count();
    let mut b_engine = lab_engine();
    let b = b_engine.ipvs_mut();
    for r in &exported {
        assert!(
            b.sync_import(now, r).is_ok(),
            "an export imports into the same configuration: {r:?}"
        );
    }
    b.check_invariants()
        .expect("imports keep the counters right");
    assert_eq!(b.conns().conns(now).count(), live);
}
