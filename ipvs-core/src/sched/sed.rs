//! `sed`: shortest expected delay (`ip_vs_sed.c`).
//!
//! Minimises `(active + 1) / weight` (inactive connections are ignored) with the wlc-style
//! walk: the first eligible destination starts, later non-overloaded ones replace it when
//! `loh * w_d > doh * w_least` strictly. The kernel multiplies in 32-bit unsigned
//! arithmetic; this uses 64-bit, which only differs past 65 536 active connections per
//! destination at maximum weight, where the kernel's product wraps.

use super::{SchedInput, Scheduler};
use crate::dest::Dest;
use crate::time::Instant;
use crate::types::SchedulerKind;

/// Shortest expected delay (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sed;

/// `active + 1`, the SED/NQ cost.
#[inline]
pub(crate) fn sed_overhead(d: &Dest) -> u64 {
    u64::from(d.active_conns) + 1
}

impl Scheduler for Sed {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Sed
    }

    fn update(&mut self, _dests: &[Dest]) {}

    #[inline]
    fn schedule(&mut self, dests: &[Dest], _input: &SchedInput, _now: Instant) -> Option<usize> {
        let first = dests.iter().position(Dest::is_eligible)?;
        let mut least = first;
        let mut loh = sed_overhead(&dests[first]);
        let mut lw = u64::from(dests[first].weight);
        for (i, d) in dests.iter().enumerate().skip(first + 1) {
            if d.overloaded {
                continue;
            }
            let doh = sed_overhead(d);
            if loh * u64::from(d.weight) > doh * lw {
                least = i;
                loh = doh;
                lw = u64::from(d.weight);
            }
        }
        Some(least)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn uses_active_only_and_counts_the_new_job() {
        let mut ds = dests(&[1, 2]);
        // A: (0+1)/1, B: (1+1)/2 -> 1*2 > 2*1? no -> A (tie, first wins).
        set_conns(&mut ds[1], 1, 0);
        set_conns(&mut ds[0], 0, 1000); // inactive does not count
        assert_eq!(picks(&mut Sed, &ds, 1), [Some(0)]);
        // B with 0 active: 1*2 > 1*1 -> B.
        set_conns(&mut ds[1], 0, 0);
        assert_eq!(picks(&mut Sed, &ds, 1), [Some(1)]);
    }

    #[test]
    fn replay_sed_vs_weights() {
        // Weights 1 and 3, each pick adds one active connection.
        // A (a+1)/1 vs B (b+1)/3, replace when (a+1)*3 > (b+1)*1.
        // (0,0): 3 > 1 -> B. (0,1): 3 > 2 -> B. (0,2): 3 > 3? no -> A.
        // (1,2): 6 > 3 -> B. (1,3): 6 > 4 -> B. (1,4): 6 > 5 -> B. (1,5): 6 > 6? no -> A.
        let mut ds = dests(&[1, 3]);
        let mut got = Vec::new();
        for _ in 0..7 {
            let i = picks(&mut Sed, &ds, 1)[0].expect("available");
            ds[i].active_conns += 1;
            got.push(i);
        }
        assert_eq!(got, [1, 1, 0, 1, 1, 1, 0]);
    }

    #[test]
    fn none_when_nothing_eligible() {
        let mut ds = dests(&[0, 1]);
        ds[1].overloaded = true;
        assert_eq!(picks(&mut Sed, &ds, 1), [None]);
    }
}
