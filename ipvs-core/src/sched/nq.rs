//! `nq`: never queue (`ip_vs_nq.c`).
//!
//! Walks the eligible destinations in list order; the first one with no active connection
//! is returned at once. Otherwise the SED minimum `(active + 1) / weight` is returned,
//! with the first candidate winning ties. 64-bit products (the kernel's are 32-bit; see
//! the `sed` module).

use super::sed::sed_overhead;
use super::{SchedInput, Scheduler};
use crate::dest::Dest;
use crate::time::Instant;
use crate::types::SchedulerKind;

/// Never queue (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct Nq;

impl Scheduler for Nq {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Nq
    }

    fn update(&mut self, _dests: &[Dest]) {}

    #[inline]
    fn schedule(&mut self, dests: &[Dest], _input: &SchedInput, _now: Instant) -> Option<usize> {
        let mut least: Option<(usize, u64, u64)> = None;
        for (i, d) in dests.iter().enumerate() {
            if !d.is_eligible() {
                continue;
            }
            if d.active_conns == 0 {
                return Some(i);
            }
            let doh = sed_overhead(d);
            let w = u64::from(d.weight);
            if least.is_none_or(|(_, loh, lw)| loh * w > doh * lw) {
                least = Some((i, doh, w));
            }
        }
        least.map(|(i, _, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn first_idle_wins_even_with_low_weight() {
        let mut ds = dests(&[100, 1, 1]);
        set_conns(&mut ds[0], 1, 0);
        set_conns(&mut ds[1], 0, 50); // idle: inactive does not count
        assert_eq!(picks(&mut Nq, &ds, 1), [Some(1)]);
        ds[1].overloaded = true;
        assert_eq!(picks(&mut Nq, &ds, 1), [Some(2)]);
    }

    #[test]
    fn falls_back_to_sed_when_all_busy() {
        let mut ds = dests(&[2, 1, 4]);
        // A (3+1)/2, B (1+1)/1, C (5+1)/4.
        // Start A (4, w2). B: 4*1 > 2*2? no. C: 4*4 = 16 > 6*2 = 12 -> C.
        set_conns(&mut ds[0], 3, 0);
        set_conns(&mut ds[1], 1, 0);
        set_conns(&mut ds[2], 5, 0);
        assert_eq!(picks(&mut Nq, &ds, 1), [Some(2)]);
        // C to 7 active: (8)/4 = 2 = A's 4/2: 4*4 = 16 > 8*2 = 16? no -> A.
        set_conns(&mut ds[2], 7, 0);
        assert_eq!(picks(&mut Nq, &ds, 1), [Some(0)]);
        // Quiesce A: B (2, w1) vs C (8, w4): 2*4 = 8 > 8*1? no -> B.
        ds[0].weight = 0;
        assert_eq!(picks(&mut Nq, &ds, 1), [Some(1)]);
    }
}
