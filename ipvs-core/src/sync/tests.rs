//! Wire round trips, every drop reason, the replay window, batching with a fake clock,
//! resync sessions (the engine side is in `engine_tests`).

use core::net::Ipv4Addr;
use core::time::Duration;

use super::wire::{self, ENTRY_LEN, HEADER_LEN, Header, Kind, MIN_DATAGRAM_LEN, TAG_LEN};
use super::*;
use crate::conn::{ConnState, TcpState, TemplateService};
use crate::time::Instant;
use crate::types::{ForwardMethod, Protocol};

pub(super) const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

pub(super) fn key() -> SyncKey {
    SyncKey::new(b"0123456789abcdef-sync").expect("long enough")
}

fn conn_rec(cport: u16, state: ConnState) -> SyncRecord {
    SyncRecord::Conn(ConnRecord {
        key: ConnKey {
            proto: match state {
                ConnState::Udp => Protocol::Udp,
                ConnState::Tcp(_) => Protocol::Tcp,
            },
            caddr: Ipv4Addr::new(198, 51, 100, 7),
            cport,
            vaddr: VIP,
            vport: 80,
        },
        fwmark: 0,
        daddr: Ipv4Addr::new(10, 0, 0, 2),
        dport: 8080,
        fwd: ForwardMethod::Route,
        state,
        timeout: Duration::from_millis(899_990),
    })
}

pub(super) fn tmpl_rec(service: TemplateService) -> SyncRecord {
    SyncRecord::Template(TemplateRecord {
        key: TemplateKey {
            client: Ipv4Addr::new(198, 51, 100, 0),
            service,
        },
        daddr: Ipv4Addr::new(10, 0, 0, 1),
        dport: 0,
        timeout: Duration::from_secs(300),
    })
}

fn header(kind: Kind, seq: u64) -> Header {
    Header {
        kind,
        syncd_id: 7,
        boot_id: 100,
        sequence: seq,
        session: 0,
        count: 0,
        end_total: 0,
    }
}

pub(super) fn receiver() -> Receiver {
    Receiver::new(
        key(),
        ReceiverConfig {
            syncd_id: 7,
            ..ReceiverConfig::default()
        },
    )
}

fn all_records() -> Vec<SyncRecord> {
    let mut v: Vec<SyncRecord> = TcpState::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| conn_rec(40_000 + i as u16, ConnState::Tcp(*s)))
        .collect();
    v.push(conn_rec(53, ConnState::Udp));
    v.push(tmpl_rec(TemplateService::Fwmark(9)));
    v.push(tmpl_rec(TemplateService::Port {
        proto: Protocol::Udp,
        vaddr: VIP,
        vport: 0,
    }));
    v
}

// ----- wire -----

#[test]
fn round_trip_every_kind_of_entry() {
    let recs = all_records();
    let bytes = wire::to_bytes(&header(Kind::Update, 1), &recs, &key());
    assert_eq!(bytes.len(), MIN_DATAGRAM_LEN + recs.len() * ENTRY_LEN);
    let mut rx = receiver();
    match rx.handle_datagram(&bytes).expect("accepted") {
        Received::Update(e) => assert_eq!(e.collect::<Vec<_>>(), recs),
        other => panic!("{other:?}"),
    }
    assert_eq!(rx.counts().accepted, 1);
    assert_eq!(rx.counts().entries, recs.len() as u64);
}

#[test]
fn golden_bytes_of_one_entry() {
    let mut e = [0u8; ENTRY_LEN];
    wire::emit_entry(
        &conn_rec(0x1234, ConnState::Tcp(TcpState::Established)),
        &mut e,
    );
    #[rustfmt::skip]
    let want: [u8; ENTRY_LEN] = [
        1, 6, 1, 1,                 // connection, TCP, DR, ESTABLISHED
        198, 51, 100, 7,            // caddr
        192, 0, 2, 10,              // vaddr
        10, 0, 0, 2,                // daddr
        0x12, 0x34, 0, 80, 0x1f, 0x90, // cport, vport, dport 8080
        0, 0,                       // flags
        0, 0, 0, 0,                 // fwmark
        0x00, 0x0d, 0xbb, 0x96,     // 899 990 ms
    ];
    assert_eq!(e, want);
}

#[test]
fn header_layout_and_tag_position() {
    let mut h = header(Kind::ResyncEnd, 0x0102_0304_0506_0708);
    h.session = 0xaabb_ccdd;
    h.end_total = 5;
    let b = wire::to_bytes(&h, &[], &key());
    assert_eq!(b.len(), MIN_DATAGRAM_LEN + 8);
    assert_eq!(&b[0..4], b"LVSS");
    assert_eq!(b[4..8], [1, 4, 7, 0]);
    assert_eq!(b[8..16], 100u64.to_be_bytes());
    assert_eq!(b[16..24], 0x0102_0304_0506_0708u64.to_be_bytes());
    assert_eq!(b[24..28], [0xaa, 0xbb, 0xcc, 0xdd]);
    assert_eq!(b[28..32], [0, 0, 0, 0]);
    assert_eq!(b[32..40], 5u64.to_be_bytes());
    let tag = ring::hmac::sign(&key().0, &b[..40]);
    assert_eq!(&b[40..], tag.as_ref());
}

/// Re-signs `b` after a change, so that the check after the MAC is what fails.
fn resign(b: &mut [u8]) {
    let n = b.len();
    let tag = ring::hmac::sign(&key().0, &b[..n - TAG_LEN]);
    b[n - TAG_LEN..].copy_from_slice(tag.as_ref());
}

fn one_update(seq: u64) -> Vec<u8> {
    wire::to_bytes(
        &header(Kind::Update, seq),
        &[conn_rec(1000, ConnState::Tcp(TcpState::Established))],
        &key(),
    )
}

#[test]
fn every_drop_reason_is_its_own_error() {
    let good = one_update(1);
    let mut rx = receiver();
    let expect = |rx: &mut Receiver, b: &[u8], want: SyncError| {
        assert_eq!(rx.handle_datagram(b).expect_err("dropped"), want);
    };
    expect(
        &mut rx,
        &good[..3],
        SyncError::Truncated { len: 3, need: 64 },
    );
    expect(
        &mut rx,
        &good[..40],
        SyncError::Truncated { len: 40, need: 64 },
    );
    let mut b = good.clone();
    b[0] = b'X';
    expect(&mut rx, &b, SyncError::BadMagic);
    let mut b = good.clone();
    b[4] = 2;
    expect(&mut rx, &b, SyncError::BadVersion { version: 2 });
    let mut big = good.clone();
    big.resize(wire::MAX_DATAGRAM_LEN + 1, 0);
    expect(
        &mut rx,
        &big,
        SyncError::Oversized {
            len: wire::MAX_DATAGRAM_LEN + 1,
            max: wire::MAX_DATAGRAM_LEN,
        },
    );
    let mut b = good.clone();
    b[5] = 9;
    expect(&mut rx, &b, SyncError::BadKind { kind: 9 });
    let mut b = good.clone();
    b[29] = 2;
    expect(
        &mut rx,
        &b,
        SyncError::LengthMismatch {
            len: 96,
            expected: 128,
        },
    );
    let mut b = good.clone();
    b.truncate(95);
    expect(
        &mut rx,
        &b,
        SyncError::LengthMismatch {
            len: 95,
            expected: 96,
        },
    );
    let mut b = good.clone();
    b[6] = 8;
    expect(&mut rx, &b, SyncError::WrongId { got: 8, want: 7 });
    let mut b = good.clone();
    b[HEADER_LEN + 5] ^= 1;
    expect(&mut rx, &b, SyncError::BadMac);
    let other = SyncKey::new(b"another key, 16+ bytes").expect("long enough");
    let forged = wire::to_bytes(
        &header(Kind::Update, 1),
        &[conn_rec(1, ConnState::Udp)],
        &other,
    );
    expect(&mut rx, &forged, SyncError::BadMac);
    let mut b = good.clone();
    b[7] = 1;
    resign(&mut b);
    expect(&mut rx, &b, SyncError::Reserved { field: "flags" });
    let mut b = good.clone();
    b[31] = 1;
    resign(&mut b);
    expect(
        &mut rx,
        &b,
        SyncError::Reserved {
            field: "header reserved",
        },
    );
    // Freshness.
    rx.handle_datagram(&good).expect("first copy");
    expect(
        &mut rx,
        &good,
        SyncError::Replayed {
            boot_id: 100,
            sequence: 1,
        },
    );
    rx.handle_datagram(&one_update(100)).expect("newer");
    expect(
        &mut rx,
        &one_update(90),
        SyncError::Reordered {
            boot_id: 100,
            sequence: 90,
        },
    );
    expect(
        &mut rx,
        &one_update(90),
        SyncError::Replayed {
            boot_id: 100,
            sequence: 90,
        },
    );
    expect(
        &mut rx,
        &one_update(2),
        SyncError::Stale {
            boot_id: 100,
            sequence: 2,
        },
    );
    let mut old_boot = header(Kind::Update, 500);
    old_boot.boot_id = 99;
    expect(
        &mut rx,
        &wire::to_bytes(&old_boot, &[], &key()),
        SyncError::Stale {
            boot_id: 99,
            sequence: 500,
        },
    );
    let c = rx.counts();
    assert_eq!(
        [
            c.truncated,
            c.bad_magic,
            c.bad_version,
            c.oversized,
            c.bad_kind,
            c.length_mismatch,
            c.wrong_id,
            c.bad_mac,
            c.reserved,
            c.stale,
            c.reordered,
            c.replayed
        ],
        [2, 1, 1, 1, 1, 2, 1, 2, 2, 2, 1, 2]
    );
    assert_eq!(c.accepted, 2);
    assert_eq!(c.dropped(), 18);
}

#[test]
fn receiver_size_limit_and_id_zero() {
    let b = one_update(1);
    let mut rx = Receiver::new(
        key(),
        ReceiverConfig {
            syncd_id: 7,
            max_datagram: 95,
        },
    );
    assert_eq!(
        rx.handle_datagram(&b).expect_err("too big"),
        SyncError::Oversized { len: 96, max: 95 }
    );
    // syncd_id 0 accepts any id, as the kernel's backup does.
    let mut any = Receiver::new(key(), ReceiverConfig::default());
    assert!(any.handle_datagram(&b).is_ok());
}

#[test]
fn every_bad_entry_field_is_refused_after_the_mac() {
    use TemplateService::*;
    // (entry byte offset, value, field name) applied to a TCP connection entry or a
    // template entry.
    let conn = conn_rec(5, ConnState::Tcp(TcpState::Established));
    let udp = conn_rec(5, ConnState::Udp);
    let fwm = tmpl_rec(Fwmark(3));
    let port = tmpl_rec(Port {
        proto: Protocol::Tcp,
        vaddr: VIP,
        vport: 80,
    });
    let cases: &[(&SyncRecord, usize, &[u8], &str, u32)] = &[
        (&conn, 0, &[3], "type", 3),
        (&conn, 1, &[1], "protocol", 1),
        (&conn, 2, &[3], "method", 3),
        (&conn, 3, &[11], "state", 11),
        (&udp, 3, &[1], "state", 1),
        (&conn, 22, &[0, 1], "flags", 1),
        (&conn, 28, &[0xff, 0, 0, 0], "timeout", 0xff00_0000),
        (&fwm, 2, &[1], "method", 1),
        (&fwm, 3, &[1], "state", 1),
        (&fwm, 16, &[0, 9], "cport", 9),
        (&fwm, 8, &[1, 0, 0, 0], "vaddr", 0x0100_0000),
        (&fwm, 18, &[0, 1], "vport", 1),
        (&fwm, 24, &[0, 0, 0, 0], "fwmark", 0),
        (&port, 24, &[0, 0, 0, 4], "fwmark", 4),
        (&port, 1, &[50], "protocol", 50),
    ];
    for (i, (rec, at, bytes, field, value)) in cases.iter().enumerate() {
        let mut b = wire::to_bytes(
            &header(Kind::Update, i as u64 + 1),
            &[conn_rec(1, ConnState::Udp), **rec],
            &key(),
        );
        let off = HEADER_LEN + ENTRY_LEN + at;
        b[off..off + bytes.len()].copy_from_slice(bytes);
        resign(&mut b);
        assert_eq!(
            receiver().handle_datagram(&b).expect_err("bad entry"),
            SyncError::BadEntry {
                index: 1,
                field,
                value: *value
            },
            "case {i}"
        );
    }
}

#[test]
fn replay_window_accepts_reordered_once() {
    let mut w = ReplayWindow::default();
    w.accept(1, 10).expect("first");
    w.accept(1, 8).expect("reordered, inside the window");
    assert_eq!(
        w.accept(1, 8),
        Err(SyncError::Replayed {
            boot_id: 1,
            sequence: 8
        })
    );
    w.accept(1, 80).expect("jump");
    assert_eq!(
        w.accept(1, 16),
        Err(SyncError::Stale {
            boot_id: 1,
            sequence: 16
        })
    );
    w.accept(1, 17).expect("last slot of the window");
    w.accept(2, 0).expect("new boot");
    assert_eq!(w.boot_id(), Some(2));
    assert!(w.accept(1, 1000).is_err());
}

#[test]
fn key_must_be_long_enough() {
    assert_eq!(SyncKey::new(b"short").err(), Some(KeyTooShort { len: 5 }));
    assert_eq!(format!("{:?}", key()), "SyncKey(..)");
}

// ----- sender -----

pub(super) fn sender() -> Sender {
    Sender::new(
        key(),
        SenderConfig {
            syncd_id: 7,
            boot_id: 100,
            ..SenderConfig::default()
        },
    )
    .expect("valid config")
}

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

#[test]
fn sender_flushes_after_the_delay_or_when_full() {
    let mut s = sender();
    assert_eq!(s.entries_per_datagram(), 44);
    assert_eq!(s.poll_timeout(), None);
    s.push(ms(1000), &conn_rec(1, ConnState::Udp));
    s.push(ms(1010), &conn_rec(2, ConnState::Udp));
    assert_eq!(s.poll_timeout(), Some(ms(1020)));
    assert!(s.poll_transmit(ms(1019)).is_none());
    let d = s.poll_transmit(ms(1020)).expect("flush delay passed");
    assert_eq!(d.len(), MIN_DATAGRAM_LEN + 2 * ENTRY_LEN);
    assert_eq!(s.poll_timeout(), None);
    let mut rx = receiver();
    match rx.handle_datagram(&d).expect("valid") {
        Received::Update(e) => assert_eq!(e.count(), 2),
        other => panic!("{other:?}"),
    }
    // 44 records fill a datagram: it is ready at once, the 45th opens the next.
    for i in 0..45 {
        s.push(ms(2000), &conn_rec(i, ConnState::Udp));
    }
    assert_eq!(s.poll_timeout(), Some(Instant::ZERO));
    let full = s.poll_transmit(ms(2000)).expect("full datagram");
    assert_eq!(full.len(), 1472);
    assert!(s.poll_transmit(ms(2000)).is_none());
    assert_eq!(s.poll_timeout(), Some(ms(2020)));
    let rest = s.poll_transmit(ms(2020)).expect("flushed");
    assert!(rx.handle_datagram(&full).is_ok());
    assert!(rx.handle_datagram(&rest).is_ok());
    assert_eq!(s.counts().datagrams, 3);
    assert_eq!(s.counts().entries, 47);
}

#[test]
fn sender_config_is_checked() {
    let cfg = |max_datagram, max_queued| SenderConfig {
        max_datagram,
        max_queued,
        ..SenderConfig::default()
    };
    assert_eq!(
        Sender::new(key(), cfg(95, 1)).err(),
        Some(SenderConfigError::DatagramTooSmall { len: 95, min: 96 })
    );
    assert_eq!(
        Sender::new(key(), cfg(65_508, 1)).err(),
        Some(SenderConfigError::DatagramTooLarge {
            len: 65_508,
            max: 65_507
        })
    );
    assert_eq!(
        Sender::new(key(), cfg(1472, 0)).err(),
        Some(SenderConfigError::NoQueue)
    );
    let jumbo = Sender::new(key(), cfg(65_507, 1)).expect("largest");
    assert_eq!(jumbo.entries_per_datagram(), 2045);
}

#[test]
fn sender_queue_is_bounded() {
    let mut s = Sender::new(
        key(),
        SenderConfig {
            max_datagram: 96,
            max_queued: 2,
            ..SenderConfig::default()
        },
    )
    .expect("valid");
    for i in 0..5 {
        s.push(ms(0), &conn_rec(i, ConnState::Udp));
    }
    assert_eq!(s.queued(), 2);
    assert_eq!(s.room(), 0);
    assert_eq!(s.counts().dropped_datagrams, 3);
    assert_eq!(s.counts().dropped_entries, 3);
    // Sequence numbers are only taken by datagrams that are kept.
    let mut rx = Receiver::new(key(), ReceiverConfig::default());
    for _ in 0..2 {
        let d = s.poll_transmit(ms(0)).expect("queued");
        rx.handle_datagram(&d).expect("in order");
    }
}

#[test]
fn resync_session_request_batches_and_end() {
    let mut a = sender(); // asks
    let mut b = sender(); // answers
    let mut rx_a = receiver();
    let mut rx_b = receiver();
    a.request_resync(ms(0), 42);
    assert_eq!(a.poll_timeout(), Some(ms(0)));
    let req = a.poll_transmit(ms(0)).expect("request");
    let Received::ResyncRequest { session } = rx_b.handle_datagram(&req).expect("valid") else {
        panic!("not a request");
    };
    assert_eq!(session, 42);
    // Not answered yet: asked again after a second, with a fresh sequence number.
    assert_eq!(a.poll_timeout(), Some(ms(1000)));
    assert!(a.poll_transmit(ms(999)).is_none());
    let again = a.poll_transmit(ms(1000)).expect("retry");
    assert!(rx_b.handle_datagram(&again).is_ok());
    assert_eq!(a.counts().resync_requests, 2);

    let recs = all_records();
    let n = 100;
    for i in 0..n {
        b.push_resync(ms(1000), session, &recs[i % recs.len()]);
    }
    // An update in between seals the batch, the stream goes on after it.
    b.push(ms(1000), &conn_rec(9, ConnState::Udp));
    b.push_resync(ms(1000), session, &recs[0]);
    assert!(b.end_resync(session, n as u64 + 1));
    let mut got = 0;
    let mut end = None;
    while let Some(d) = b.poll_transmit(ms(1000)) {
        match rx_a.handle_datagram(&d).expect("valid") {
            Received::ResyncBatch {
                session: s,
                entries,
            } => {
                assert_eq!(s, 42);
                got += entries.count();
            }
            Received::ResyncEnd {
                session,
                total,
                received,
            } => end = Some((session, total, received)),
            Received::Update(e) => assert_eq!(e.count(), 1),
            Received::ResyncRequest { .. } => panic!("no request expected"),
        }
    }
    assert_eq!(got, n + 1);
    assert_eq!(end, Some((42, n as u64 + 1, n as u64 + 1)));
    // Batches arriving hold the retry back; without them it comes after a second.
    a.resync_progress(ms(1900), 42);
    assert_eq!(a.poll_timeout(), Some(ms(2900)));
    a.resync_progress(ms(1950), 41);
    assert_eq!(
        a.poll_timeout(),
        Some(ms(2900)),
        "another session changes nothing"
    );
    a.resync_complete(42);
    assert_eq!(a.pending_resync(), None);
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn lost_resync_batch_shows_in_the_end_marker() {
    let mut b = sender();
    let mut rx = receiver();
    for i in 0..50 {
        b.push_resync(ms(0), 3, &conn_rec(i, ConnState::Udp));
    }
    b.end_resync(3, 50);
    let first = b.poll_transmit(ms(0)).expect("batch of 44");
    let _lost = b.poll_transmit(ms(0)).expect("batch of 6");
    let end = b.poll_transmit(ms(0)).expect("end");
    assert!(rx.handle_datagram(&first).is_ok());
    match rx.handle_datagram(&end).expect("valid") {
        Received::ResyncEnd {
            total, received, ..
        } => assert_eq!((total, received), (50, 44)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fuzz_seeds_do_not_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/sync");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let data = std::fs::read(entry.expect("entry").path()).expect("seed");
        super::fuzzing::body(&data);
        n += 1;
    }
    assert!(n >= 3, "only {n} seeds in {}", dir.display());
}

#[test]
#[ignore = "writes the seed corpus; run by hand after a format change"]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/sync");
    std::fs::create_dir_all(&dir).expect("seed directory");
    let k = SyncKey::new(super::fuzzing::FUZZ_KEY).expect("long enough");
    let signed = wire::to_bytes(&header(Kind::Update, 1), &all_records(), &k);
    std::fs::write(dir.join("update-signed.bin"), &signed).expect("write");
    let mut end = header(Kind::ResyncEnd, 2);
    end.session = 9;
    end.end_total = 3;
    // First byte 1: two datagrams of equal length, both valid.
    let mut two = vec![1u8];
    two.extend(wire::to_bytes(&end, &[], &k));
    end.sequence = 3;
    two.extend(wire::to_bytes(&end, &[], &k));
    std::fs::write(dir.join("two-ends.bin"), &two).expect("write");
    // Structured records (8 bytes each) for the lab's services: connections in every
    // state, templates, unknown real servers, time passing.
    let mut recs = Vec::new();
    for i in 0u8..64 {
        recs.extend_from_slice(&[
            i.wrapping_mul(37),
            i,
            i % 8,
            0,
            i % 16,
            0x4e,
            0x20,
            i.wrapping_mul(13),
        ]);
    }
    std::fs::write(dir.join("records.bin"), &recs).expect("write");
    std::fs::write(dir.join("junk.bin"), b"LVSS\x01\x01\x00\x00junk").expect("write");
}
