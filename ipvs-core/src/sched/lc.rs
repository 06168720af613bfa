//! `lc`: least connection (`ip_vs_lc.c`).
//!
//! Among destinations with weight > 0 and OVERLOAD clear, the one with the smallest
//! `overhead = active * 256 + inactive`; the first one in list order wins ties (strict `<`).
//! Weights are otherwise ignored.

use super::{SchedInput, Scheduler};
use crate::dest::Dest;
use crate::time::Instant;
use crate::types::SchedulerKind;

/// Least connection (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct Lc;

impl Scheduler for Lc {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Lc
    }

    fn update(&mut self, _dests: &[Dest]) {}

    #[inline]
    fn schedule(&mut self, dests: &[Dest], _input: &SchedInput, _now: Instant) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for (i, d) in dests.iter().enumerate() {
            if !d.is_eligible() {
                continue;
            }
            let doh = d.overhead();
            if least.is_none_or(|(_, loh)| doh < loh) {
                least = Some((i, doh));
            }
        }
        least.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn picks_first_minimum_overhead_ignoring_weight() {
        let mut ds = dests(&[1, 100, 1, 0]);
        let mut s = Lc;
        // overheads: A 1*256+0=256, B 0*256+300=300, C 0*256+256=256, D 0 (weight 0).
        set_conns(&mut ds[0], 1, 0);
        set_conns(&mut ds[1], 0, 300);
        set_conns(&mut ds[2], 0, 256);
        assert_eq!(
            picks(&mut s, &ds, 1),
            [Some(0)],
            "A and C tie at 256: first wins"
        );
        // One more inactive on A: 257 > 256, so C.
        set_conns(&mut ds[0], 1, 1);
        assert_eq!(picks(&mut s, &ds, 1), [Some(2)]);
        // C overloaded: A (257) < B (300).
        ds[2].overloaded = true;
        assert_eq!(picks(&mut s, &ds, 1), [Some(0)]);
        ds[0].weight = 0;
        assert_eq!(picks(&mut s, &ds, 1), [Some(1)]);
        ds[1].overloaded = true;
        assert_eq!(picks(&mut s, &ds, 1), [None]);
    }

    #[test]
    fn replay_with_binding_spreads_evenly() {
        // Each pick binds one inactive connection: A B C A B C ...
        let mut ds = dests(&[1, 5, 9]);
        let mut s = Lc;
        let mut got = Vec::new();
        for _ in 0..6 {
            let i = picks(&mut s, &ds, 1)[0].expect("available");
            ds[i].inactive_conns += 1;
            got.push(i);
        }
        assert_eq!(got, [0, 1, 2, 0, 1, 2]);
    }
}
