//! `wlc`: weighted least connection (`ip_vs_wlc.c`), ipvsadm's default.
//!
//! The first eligible destination in list order starts as the minimum; each later
//! non-overloaded destination replaces it when `loh * w_d > doh * w_least` (64-bit
//! cross-multiplication of `overhead / weight`, strictly greater, so ties keep the earlier
//! one). See [`super::wlc_pick`].

use super::{SchedInput, Scheduler, wlc_pick};
use crate::dest::Dest;
use crate::time::Instant;
use crate::types::SchedulerKind;

/// Weighted least connection (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct Wlc;

impl Scheduler for Wlc {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Wlc
    }

    fn update(&mut self, _dests: &[Dest]) {}

    #[inline]
    fn schedule(&mut self, dests: &[Dest], _input: &SchedInput, _now: Instant) -> Option<usize> {
        wlc_pick(dests)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn cross_multiplied_minimum_first_wins_ties() {
        let mut ds = dests(&[0, 1, 3, 2]);
        let mut s = Wlc;
        // Loop starts at B (A has weight 0 even though it is idle).
        // B: 1*256+0 = 256, w1 | C: 2*256+0 = 512, w3 | D: 1*256+88 = 344, w2.
        set_conns(&mut ds[1], 1, 0);
        set_conns(&mut ds[2], 2, 0);
        set_conns(&mut ds[3], 1, 88);
        // C vs B: 256*3 = 768 > 512*1 = 512 -> C. D vs C: 512*2 = 1024 > 344*3 = 1032? no.
        assert_eq!(picks(&mut s, &ds, 1), [Some(2)]);
        // D with 85 inactive: 341*3 = 1023 < 1024 -> D.
        set_conns(&mut ds[3], 1, 85);
        assert_eq!(picks(&mut s, &ds, 1), [Some(3)]);
        // Exact three-way tie: B 256/1, C 3*256 = 768 over w3, D 2*256 = 512 over w2.
        set_conns(&mut ds[2], 3, 0);
        set_conns(&mut ds[3], 2, 0);
        // B 256/1 vs C 768/3: 256*3 = 768 > 768*1? no -> B stays. D: 256*2 = 512 > 512*1? no.
        assert_eq!(picks(&mut s, &ds, 1), [Some(1)], "three-way tie keeps B");
    }

    #[test]
    fn overloaded_first_is_skipped_for_start() {
        let mut ds = dests(&[5, 1]);
        ds[0].overloaded = true;
        set_conns(&mut ds[1], 100, 0);
        assert_eq!(picks(&mut Wlc, &ds, 1), [Some(1)]);
        ds[1].overloaded = true;
        assert_eq!(picks(&mut Wlc, &ds, 1), [None]);
    }

    #[test]
    fn replay_binding_active_follows_weights() {
        // Weights 3:1, each pick adds one active connection. Loads (active/weight):
        // start A 0/3, B 0/1 -> tie, A. A 1/3 vs B 0 -> B. A 1/3 vs B 1/1 -> A.
        // A 2/3 vs 1/1: 2*1 > 1*3? no -> A. A 3/3 vs 1/1: 3*1 > 1*3? no -> A.
        // A 4/3 vs 1/1: 4 > 3 -> B. Then A 4/3 vs B 2/1: 4 > 6? no -> A ...
        let mut ds = dests(&[3, 1]);
        let mut got = Vec::new();
        for _ in 0..8 {
            let i = picks(&mut Wlc, &ds, 1)[0].expect("available");
            ds[i].active_conns += 1;
            got.push(i);
        }
        assert_eq!(got, [0, 1, 0, 0, 0, 1, 0, 0]);
    }
}
