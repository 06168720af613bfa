//! Helpers shared by the scheduler unit tests.

use std::net::Ipv4Addr;

use super::{SchedInput, Scheduler};
use crate::dest::{Dest, DestConfig};
use crate::time::Instant;
use crate::types::{DestId, ForwardMethod};

/// Destinations 10.0.0.1.. (port 80) in list order, with the given weights; ids 0..n.
pub fn dests(weights: &[u32]) -> Vec<Dest> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let n = u8::try_from(i + 1).expect("test lists are small");
            dest_at(i as u32, Ipv4Addr::new(10, 0, 0, n), w)
        })
        .collect()
}

/// Many destinations 10.1.x.y, weight `w`, ids 0..n.
pub fn many_dests(n: u32, w: u32) -> Vec<Dest> {
    (0..n)
        .map(|i| {
            let [_, _, a, b] = (i + 1).to_be_bytes();
            dest_at(i, Ipv4Addr::new(10, 1, a, b), w)
        })
        .collect()
}

/// One destination.
pub fn dest_at(id: u32, addr: Ipv4Addr, weight: u32) -> Dest {
    Dest::new(
        DestId(id),
        &DestConfig::new(addr, 80, ForwardMethod::Masq).with_weight(weight),
    )
}

/// A packet from client number `k` (192.168.x.y / 172.16.x.y spread over all octets) to
/// virtual address number `k` as well.
pub fn input(k: u32, sport: u16) -> SchedInput {
    // A bijective mix so that consecutive k differ in every octet.
    let mixed = k.wrapping_mul(0x9E37_79B1).rotate_left(7) ^ 0x5bd1_e995;
    SchedInput {
        src: Ipv4Addr::from(mixed),
        sport,
        dst: Ipv4Addr::from(mixed.rotate_left(13)),
        dport: 80,
    }
}

/// Runs `n` picks with a fixed input and returns the chosen indices.
pub fn picks<S: Scheduler>(s: &mut S, ds: &[Dest], n: usize) -> Vec<Option<usize>> {
    (0..n)
        .map(|_| s.schedule(ds, &input(0, 0), Instant::ZERO))
        .collect()
}

/// Sets counters by hand (tests only; bypasses the OVERLOAD bookkeeping).
pub fn set_conns(d: &mut Dest, active: u32, inactive: u32) {
    d.active_conns = active;
    d.inactive_conns = inactive;
}
