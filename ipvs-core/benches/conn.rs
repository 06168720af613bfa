//! Connection-table benchmarks at 1 M entries: lookup hit/miss, per-packet update, NAT reply
//! lookup, insert rate, sweep cost; prints bytes per entry.
//!
//! `cargo bench -p ipvs-core --bench conn -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ipvs_core::conn::{ConnKey, ConnTable, ConnTableConfig, NewConn, ReplyKey, TcpFlags};
use ipvs_core::time::Instant;
use ipvs_core::types::{DestId, ForwardMethod, Protocol};

const N: usize = 1 << 20;
const BATCH: usize = 4096;

/// SplitMix64: deterministic keys without a rand dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn key(&mut self) -> ConnKey {
        let r = self.next();
        ConnKey {
            proto: Protocol::Tcp,
            caddr: Ipv4Addr::from((r >> 32) as u32),
            cport: (r >> 16) as u16,
            vaddr: Ipv4Addr::new(10, 0, 0, (r & 7) as u8 + 1),
            vport: if r & 8 == 0 { 80 } else { 443 },
        }
    }
}

fn dest_of(k: &ConnKey) -> DestId {
    DestId(u32::from(k.caddr) % 64)
}

fn resolve(d: DestId) -> Option<(Ipv4Addr, u16)> {
    Some((Ipv4Addr::new(192, 168, 1, d.0 as u8), 8080))
}

fn config() -> ConnTableConfig {
    ConnTableConfig {
        max_entries: N,
        initial_capacity: N,
        hash_seed: 0x1234_5678_9abc_def0,
        ..ConnTableConfig::default()
    }
}

fn fill(tab: &mut ConnTable, rng: &mut Rng, n: usize) -> Vec<ConnKey> {
    let now = Instant::ZERO;
    let mut keys = Vec::with_capacity(n);
    while keys.len() < n {
        let k = rng.key();
        let c = NewConn {
            key: k,
            dest: dest_of(&k),
            fwd: ForwardMethod::Masq,
            template: None,
        };
        if tab.insert(now, c, TcpFlags::SYN).is_ok() {
            keys.push(k);
        }
    }
    keys
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(42);
    let mut tab = ConnTable::new(config());
    let keys = fill(&mut tab, &mut rng, N);
    let now = Instant::from_secs(1);
    println!(
        "conn table: {} entries, {} bytes ({:.1} bytes/entry, entry = 24 B, hashbrown buckets + ctrl bytes included); whole table incl. template store: {} bytes",
        tab.len(),
        tab.conn_memory_bytes(),
        tab.conn_memory_bytes() as f64 / tab.len() as f64,
        tab.memory_bytes(),
    );

    let mut pick = Rng(7);
    let hits: Vec<ConnKey> = (0..BATCH)
        .map(|_| keys[(pick.next() % N as u64) as usize])
        .collect();
    let misses: Vec<ConnKey> = (0..BATCH)
        .map(|_| pick.key())
        .filter(|k| tab.lookup_in(now, k).is_none())
        .collect();
    let replies: Vec<ReplyKey> = hits
        .iter()
        .map(|k| ReplyKey {
            proto: k.proto,
            daddr: Ipv4Addr::new(192, 168, 1, dest_of(k).0 as u8),
            dport: 8080,
            caddr: k.caddr,
            cport: k.cport,
        })
        .collect();

    let mut g = c.benchmark_group("conn_1M");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("lookup_in_hit", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for k in &hits {
                n += usize::from(tab.lookup_in(now, black_box(k)).is_some());
            }
            assert_eq!(n, BATCH);
            n
        })
    });
    g.throughput(Throughput::Elements(misses.len() as u64));
    g.bench_function("lookup_in_miss", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for k in &misses {
                n += usize::from(tab.lookup_in(now, black_box(k)).is_some());
            }
            assert_eq!(n, 0);
            n
        })
    });
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("lookup_out_hit", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for r in &replies {
                n += usize::from(tab.lookup_out(now, black_box(r), resolve).is_some());
            }
            assert_eq!(n, BATCH);
            n
        })
    });
    g.bench_function("in_packet_ack", |b| {
        // Lookup + TCP transition + refresh: the per-packet hot path.
        b.iter(|| {
            let mut n = 0usize;
            for k in &hits {
                n += usize::from(tab.in_packet(now, black_box(k), TcpFlags::ACK).is_some());
            }
            n
        })
    });
    g.finish();

    // The same lookups on a cache-resident table: the compute part of a lookup, without
    // the DRAM miss that dominates at 1 M entries.
    {
        let mut small = ConnTable::new(ConnTableConfig {
            max_entries: 1 << 14,
            initial_capacity: 1 << 14,
            ..config()
        });
        let skeys = fill(&mut small, &mut Rng(3), 1 << 14);
        let shits: Vec<ConnKey> = (0..BATCH)
            .map(|_| skeys[(pick.next() % (1 << 14)) as usize])
            .collect();
        let mut g = c.benchmark_group("conn_16K");
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function("lookup_in_hit", |b| {
            b.iter(|| {
                let mut n = 0usize;
                for k in &shits {
                    n += usize::from(small.lookup_in(now, black_box(k)).is_some());
                }
                n
            })
        });
        g.finish();
    }

    let mut g = c.benchmark_group("conn_1M_sweep");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("expire_scan_nothing_due", |b| {
        b.iter(|| tab.expire(now, |_| unreachable!("nothing is due")))
    });
    g.finish();

    let mut g = c.benchmark_group("conn_insert");
    g.sample_size(10);
    let mut ins_rng = Rng(99);
    let fresh: Vec<ConnKey> = (0..N).map(|_| ins_rng.key()).collect();
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("insert_1M_preallocated", |b| {
        b.iter_batched_ref(
            || ConnTable::new(config()),
            |t| {
                for k in &fresh {
                    let c = NewConn {
                        key: *k,
                        dest: dest_of(k),
                        fwd: ForwardMethod::Masq,
                        template: None,
                    };
                    let _ = black_box(t.insert(Instant::ZERO, c, TcpFlags::SYN));
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
