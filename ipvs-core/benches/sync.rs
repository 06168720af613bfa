//! Connection-sync benchmarks (per record): what the active director pays to turn
//! connection changes into signed datagrams, and what the standby pays to authenticate and
//! apply them. With the default 1472-byte datagrams a record costs 1/44 of a seal (HMAC).
//!
//! - `sync/push_transmit`: records encoded into the sender, the datagram sealed and taken.
//! - `sync/packets_feed_drain`: packets of established connections due for their refresh
//!   queue their keys; the drain turns them into records (packets included).
//! - `sync/receive_import`: one 44-record datagram authenticated and its records applied
//!   to a standby engine that already holds the connections (the update path).
//! - `sync/export`: the full-table export of 65 536 connections: per record.
//!
//! `cargo bench -p ipvs-core --bench sync -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipvs_core::conn::{ConnKey, TcpFlags};
use ipvs_core::ipvs::{Ipvs, IpvsConfig, NewFlow, SyncFeedConfig};
use ipvs_core::service::{DestConfig, ServiceKey};
use ipvs_core::sync::{
    Received, Receiver, ReceiverConfig, Sender, SenderConfig, SyncKey, SyncRecord,
};
use ipvs_core::time::Instant;
use ipvs_core::types::{ForwardMethod, Protocol, SchedulerKind};

const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);

fn engine() -> Ipvs {
    let mut cfg = IpvsConfig::default();
    cfg.conn_table.initial_capacity = 1 << 17;
    let mut ipvs = Ipvs::new(cfg);
    let sk = ServiceKey::tcp(VIP, 80);
    ipvs.add_service(sk, SchedulerKind::Wlc, &[], None)
        .expect("service");
    for i in 1..=4 {
        ipvs.add_dest(
            &sk,
            DestConfig::new(Ipv4Addr::new(10, 0, 1, i), 8080, ForwardMethod::Masq),
        )
        .expect("dest");
    }
    ipvs
}

fn key(i: u32) -> ConnKey {
    ConnKey {
        proto: Protocol::Tcp,
        caddr: Ipv4Addr::from(0xc633_0000u32 + i),
        cport: 10_000 + (i % 50_000) as u16,
        vaddr: VIP,
        vport: 80,
    }
}

/// An engine with `n` established connections.
fn established(n: u32, now: Instant) -> Ipvs {
    let mut ipvs = engine();
    for i in 0..n {
        let flow = NewFlow {
            key: key(i),
            fwmark: 0,
            tcp_flags: TcpFlags::SYN,
        };
        ipvs.new_connection(now, &flow).expect("scheduled");
        ipvs.in_packet(now, &key(i), TcpFlags::ACK);
    }
    ipvs
}

fn sync_key() -> SyncKey {
    SyncKey::new(b"benchmark key, 32 bytes long...").expect("long enough")
}

fn bench(c: &mut Criterion) {
    let now = Instant::from_secs(1);
    let mut g = c.benchmark_group("sync");

    let mut active = established(1 << 16, now);
    let records: Vec<SyncRecord> = active.sync_export(now).take(44).collect();
    g.throughput(Throughput::Elements(records.len() as u64));

    // Active side, sender only: records encoded, a datagram sealed (HMAC) and taken.
    let mut tx = Sender::new(sync_key(), SenderConfig::default()).expect("valid");
    assert_eq!(tx.entries_per_datagram(), records.len());
    g.bench_function("push_transmit", |b| {
        b.iter(|| {
            for r in &records {
                tx.push(now, r);
            }
            black_box(tx.poll_transmit(now).expect("a full datagram"))
        })
    });

    // Active side, engine: 44 packets of established connections that are due for their
    // refresh (10 ms periods, 10 ms apart) queue their keys; the drain looks them up and
    // builds the records. Includes the packets themselves (compare `conn` benches).
    active.enable_sync_feed(SyncFeedConfig {
        capacity: 1024,
        refresh: Some(core::time::Duration::from_millis(10)),
    });
    let mut t = now;
    let mut base = 0u32;
    let mut out = Vec::with_capacity(64);
    g.bench_function("packets_feed_drain", |b| {
        b.iter(|| {
            t += core::time::Duration::from_millis(10);
            for i in base..base + 44 {
                active.in_packet(t, &key(i), TcpFlags::ACK);
            }
            out.clear();
            active.drain_sync_feed(t, usize::MAX, |r| out.push(r));
            base = (base + 44) % ((1 << 16) - 44);
            black_box(out.len())
        })
    });
    active.disable_sync_feed();

    // Standby side: authenticate a full datagram and apply its 44 records to an engine
    // that holds the connections already (the update path). A fresh receiver per
    // iteration, so the same datagram is not a replay.
    let mut standby = established(1 << 16, now);
    let d = {
        let mut tx = Sender::new(sync_key(), SenderConfig::default()).expect("valid");
        for r in &records {
            tx.push(now, r);
        }
        tx.poll_transmit(now).expect("a full datagram")
    };
    let k = sync_key();
    g.bench_function("receive_import", |b| {
        b.iter(|| {
            let mut rx = Receiver::new(k.clone(), ReceiverConfig::default());
            if let Ok(Received::Update(entries)) = rx.handle_datagram(&d) {
                for r in entries {
                    let _ = black_box(standby.sync_import(now, &r));
                }
            }
        })
    });

    g.throughput(Throughput::Elements(1 << 16));
    g.bench_function("export_65536", |b| {
        b.iter(|| black_box(active.sync_export(now).count()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
