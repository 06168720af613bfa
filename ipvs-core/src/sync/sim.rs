//! Seeded simulation: an active engine with random client traffic (new connections, port
//! reuse, ACKs, FINs, RSTs, replies, persistence), its change feed through a sender, a
//! channel that loses, delays and reorders datagrams, a receiver, and a standby engine that
//! imports. Then a bulk resync over a clean channel.
//!
//! Checked: the accounting invariants of both engines after every step; over a clean
//! channel, the standby holds every live connection of the active with the same real
//! server and state, and a copy that lives at least until the active's deadline minus the
//! refresh period; after a bulk resync, the same for every live connection whatever the
//! channel did before.
//!
//! The seed is printed; `SYNC_SIM_SEED=n cargo test -p ipvs-core sync::sim` replays one.

use core::time::Duration;
use std::collections::VecDeque;

use super::engine_tests::{RS1, RS2, engine};
use super::tests::key as key_for_sim;
use super::*;
use crate::conn::TcpFlags;
use crate::ipvs::{Ipvs, NewFlow, SyncFeedConfig};
use crate::service::Persistence;
use crate::time::Instant;
use crate::types::Protocol;

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const VIP: core::net::Ipv4Addr = core::net::Ipv4Addr::new(192, 0, 2, 10);

fn conn_key(r: &mut Rng) -> ConnKey {
    ConnKey {
        proto: Protocol::Tcp,
        caddr: core::net::Ipv4Addr::new(198, 51, 100, 1 + r.below(6) as u8),
        cport: 1000 + r.below(40) as u16,
        vaddr: VIP,
        vport: 80,
    }
}

/// A datagram in flight: deliver at `at`.
struct InFlight {
    at: Instant,
    bytes: Vec<u8>,
}

struct Channel {
    loss: u64,
    reorder: u64,
    flight: VecDeque<InFlight>,
}

impl Channel {
    fn send(&mut self, r: &mut Rng, now: Instant, bytes: Vec<u8>) {
        if r.chance(self.loss) {
            return;
        }
        let delay = if r.chance(self.reorder) {
            Duration::from_millis(1 + r.below(200))
        } else {
            Duration::from_millis(1)
        };
        self.flight.push_back(InFlight {
            at: now + delay,
            bytes,
        });
    }

    fn due(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let (due, keep): (Vec<_>, Vec<_>) = self.flight.drain(..).partition(|f| f.at <= now);
        self.flight = keep.into();
        due.into_iter().map(|f| f.bytes).collect()
    }
}

fn traffic(r: &mut Rng, a: &mut Ipvs, now: Instant) {
    let key = conn_key(r);
    let flags = match r.below(10) {
        0..=2 => TcpFlags::SYN,
        3..=6 => TcpFlags::ACK,
        7 => TcpFlags::FIN,
        8 => TcpFlags::RST,
        _ => {
            // A reply from the real server, when the connection exists.
            if let Some(f) = a.peek_in(now, &key) {
                let reply = crate::conn::ReplyKey {
                    proto: key.proto,
                    daddr: f.daddr,
                    dport: f.dport,
                    caddr: key.caddr,
                    cport: key.cport,
                };
                let fl = if r.chance(50) {
                    TcpFlags::ACK
                } else {
                    TcpFlags::FIN
                };
                a.out_packet(now, &reply, fl);
            }
            return;
        }
    };
    let _ = a.inbound(
        now,
        &NewFlow {
            key,
            fwmark: 0,
            tcp_flags: flags,
        },
    );
}

fn deliver(rx: &mut Receiver, b: &mut Ipvs, now: Instant, d: &[u8]) -> Option<(u32, u64, u64)> {
    match rx.handle_datagram(d) {
        Ok(Received::Update(entries)) => {
            for rec in entries {
                let _ = b.sync_import(now, &rec);
            }
        }
        Ok(Received::ResyncBatch { entries, .. }) => {
            for rec in entries {
                let _ = b.sync_import_resync(now, &rec);
            }
        }
        Ok(Received::ResyncEnd {
            session,
            total,
            received,
        }) => return Some((session, total, received)),
        Ok(Received::ResyncRequest { .. }) => panic!("the active never asks here"),
        // Datagrams overtaken by newer ones are dropped: that is loss.
        Err(SyncError::Stale { .. } | SyncError::Reordered { .. }) => {}
        Err(e) => panic!("only stale drops expected, got {e}"),
    }
    None
}

/// Every live connection of `a` is on `b` with the same real server and state; its copy
/// lives at least until `slack` before the active's deadline.
fn standby_matches(a: &Ipvs, b: &Ipvs, now: Instant, slack: Duration, seed: u64) {
    for c in a.conns().conns(now) {
        let want = a.services().dest(c.dest).expect("live real server").addr();
        let Some(got) = b.conns().lookup_in(now, &c.key) else {
            // The standby's copy may end up to `slack` before the active's.
            assert!(
                c.expires <= now + slack,
                "seed {seed}: {:?} ({:?}, expires {:?}) missing on the standby at {now:?}; \
                 imports {:?}",
                c.key,
                c.state,
                c.expires,
                b.sync_import_counts()
            );
            continue;
        };
        let got_rs = b
            .services()
            .dest(got.dest)
            .expect("live real server")
            .addr();
        assert_eq!(got_rs, want, "seed {seed}: {:?}", c.key);
        assert_eq!(got.state, c.state, "seed {seed}: {:?}", c.key);
        assert!(
            got.expires + slack >= c.expires,
            "seed {seed}: {:?} expires at {:?} on the standby, {:?} on the active",
            c.key,
            got.expires,
            c.expires
        );
    }
}

fn run(seed: u64, loss: u64, reorder: u64) {
    eprintln!("sync simulation seed {seed} (replay: SYNC_SIM_SEED={seed})");
    let mut r = Rng(seed);
    let p = r
        .chance(50)
        .then(|| Persistence::new(Duration::from_secs(30)));
    let mut a = engine([RS1, RS2], p);
    let mut b = engine([RS2, RS1], p);
    let refresh = Duration::from_secs(60);
    a.enable_sync_feed(SyncFeedConfig {
        capacity: 65_536,
        refresh: Some(refresh),
    });
    let cfg = SenderConfig {
        max_datagram: 96 + 32 * r.below(10) as usize,
        ..SenderConfig::default()
    };
    let mut tx = Sender::new(key_for_sim(), cfg.clone()).expect("valid");
    let mut rx = Receiver::new(key_for_sim(), ReceiverConfig::default());
    let mut ch = Channel {
        loss,
        reorder,
        flight: VecDeque::new(),
    };
    let mut now = Instant::from_secs(1);
    for _ in 0..3000 {
        now += Duration::from_millis(r.below(400));
        for _ in 0..r.below(4) {
            traffic(&mut r, &mut a, now);
        }
        a.drain_sync_feed(now, usize::MAX, |rec| tx.push(now, &rec));
        while let Some(d) = tx.poll_transmit(now) {
            ch.send(&mut r, now, d);
        }
        for d in ch.due(now) {
            deliver(&mut rx, &mut b, now, &d);
        }
        if r.chance(5) {
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
        a.check_invariants()
            .unwrap_or_else(|e| panic!("seed {seed}: active: {e}"));
        b.check_invariants()
            .unwrap_or_else(|e| panic!("seed {seed}: standby: {e}"));
    }
    // Let everything in flight arrive.
    now += Duration::from_secs(1);
    while let Some(d) = tx.poll_transmit(now) {
        ch.send(&mut r, now, d);
    }
    now += Duration::from_secs(1);
    for d in ch.due(now) {
        deliver(&mut rx, &mut b, now, &d);
    }
    if loss == 0 && reorder == 0 {
        standby_matches(&a, &b, now, refresh + Duration::from_secs(2), seed);
    }

    // Bulk resync over a clean channel: the standby asks, the active answers.
    let mut b_tx = Sender::new(key_for_sim(), SenderConfig { boot_id: 1, ..cfg }).expect("valid");
    let mut a_rx = Receiver::new(key_for_sim(), ReceiverConfig::default());
    let session = r.next() as u32;
    b_tx.request_resync(now, session);
    let req = b_tx.poll_transmit(now).expect("request");
    let Ok(Received::ResyncRequest { session: s }) = a_rx.handle_datagram(&req) else {
        panic!("seed {seed}: request refused");
    };
    let records: Vec<SyncRecord> = a.sync_export(now).collect();
    let mut end = None;
    let mut pending = records.iter();
    let mut total = 0u64;
    loop {
        while tx.room() > 0 {
            let Some(rec) = pending.next() else { break };
            tx.push_resync(now, s, rec);
            total += 1;
        }
        if pending.len() == 0 {
            assert!(tx.end_resync(s, total));
        }
        while let Some(d) = tx.poll_transmit(now) {
            if let Some(e) = deliver(&mut rx, &mut b, now, &d) {
                end = Some(e);
            }
        }
        if end.is_some() {
            break;
        }
    }
    assert_eq!(end, Some((session, total, total)), "seed {seed}");
    b_tx.resync_complete(session);
    standby_matches(&a, &b, now, Duration::ZERO, seed);
    b.check_invariants()
        .unwrap_or_else(|e| panic!("seed {seed}: standby: {e}"));
}

fn seeds() -> Vec<u64> {
    match std::env::var("SYNC_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SYNC_SIM_SEED is a number")],
        Err(_) => (1..=6).collect(),
    }
}

#[test]
fn clean_channel_keeps_the_standby_equal() {
    for seed in seeds() {
        run(seed, 0, 0);
    }
}

#[test]
fn lossy_channel_then_bulk_resync() {
    for seed in seeds() {
        run(seed, 10, 20);
    }
}
