//! Cost of scheduling one new connection, per scheduler, at 2, 16 and 1000 destinations.
//!
//! Each destination gets a weight in 1..=9 and a fixed, pseudo-random load (active 0..40,
//! inactive 0..200, bound once through the accounting API before measuring; no
//! thresholds, so nothing is overloaded). Inputs cycle through 4096 precomputed packets
//! with different source and destination addresses and ports, so the hashing schedulers
//! hash for real and lblc/lblcr look up a warm cache of 4096 entries.
//!
//! Run: `cargo bench -p ipvs-core --bench sched -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ipvs_core::sched::SchedInput;
use ipvs_core::service::{ConnClass, DestConfig, Service, ServiceKey};
use ipvs_core::time::Instant;
use ipvs_core::types::{DestId, ForwardMethod, SchedulerKind};

const INPUTS: usize = 4096;

/// Deterministic pseudo-random numbers (SplitMix64), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u32 {
        u32::try_from(self.next() % n).expect("n fits in u32")
    }
}

fn service(kind: SchedulerKind, n: u32, rng: &mut Rng) -> Service {
    let key = ServiceKey::tcp(Ipv4Addr::new(192, 0, 2, 1), 80);
    let mut svc = Service::new(key, kind, &[], None, 42).expect("valid service");
    for i in 0..n {
        let [_, _, a, b] = (i + 1).to_be_bytes();
        let cfg = DestConfig::new(Ipv4Addr::new(10, 1, a, b), 80, ForwardMethod::Masq)
            .with_weight(1 + rng.below(9));
        svc.add_dest(DestId(i), cfg).expect("distinct address");
    }
    for i in 0..n {
        for _ in 0..rng.below(41) {
            svc.bind(DestId(i), ConnClass::Active).expect("live dest");
        }
        for _ in 0..rng.below(201) {
            svc.bind(DestId(i), ConnClass::Inactive).expect("live dest");
        }
    }
    svc
}

fn inputs(rng: &mut Rng) -> Vec<SchedInput> {
    (0..INPUTS)
        .map(|_| SchedInput {
            src: Ipv4Addr::from(rng.below(1 << 32)),
            sport: u16::try_from(rng.below(1 << 16)).expect("16 bits"),
            dst: Ipv4Addr::from(rng.below(1 << 32)),
            dport: 80,
        })
        .collect()
}

fn bench_schedulers(c: &mut Criterion) {
    let mut rng = Rng(0x5eed);
    let inputs = inputs(&mut rng);
    for kind in SchedulerKind::ALL {
        let mut group = c.benchmark_group(format!("schedule/{kind}"));
        group.throughput(Throughput::Elements(1));
        for n in [2u32, 16, 1000] {
            let mut svc = service(kind, n, &mut rng);
            // Warm lblc/lblcr caches with every input once.
            for x in &inputs {
                svc.schedule(x, Instant::ZERO);
            }
            group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                let mut k = 0usize;
                b.iter(|| {
                    k = (k + 1) & (INPUTS - 1);
                    black_box(svc.schedule(black_box(&inputs[k]), Instant::ZERO))
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_schedulers);
criterion_main!(benches);
