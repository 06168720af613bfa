//! `fo`: weighted fail-over (`ip_vs_fo.c`).
//!
//! The non-overloaded destination with the highest weight; the first one in list order
//! wins ties. Weight 0 never qualifies (the running maximum starts at 0, compared with `>`).

use super::{SchedInput, Scheduler};
use crate::dest::Dest;
use crate::time::Instant;
use crate::types::SchedulerKind;

/// Weighted fail-over (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct Fo;

impl Scheduler for Fo {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Fo
    }

    fn update(&mut self, _dests: &[Dest]) {}

    #[inline]
    fn schedule(&mut self, dests: &[Dest], _input: &SchedInput, _now: Instant) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut hw = 0;
        for (i, d) in dests.iter().enumerate() {
            if !d.overloaded && d.weight > hw {
                best = Some(i);
                hw = d.weight;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn highest_weight_then_fail_over() {
        let mut ds = dests(&[5, 10, 10, 1]);
        set_conns(&mut ds[1], 1000, 1000); // load is ignored
        assert_eq!(
            picks(&mut Fo, &ds, 2),
            [Some(1), Some(1)],
            "first of the tied 10s"
        );
        ds[1].overloaded = true;
        assert_eq!(picks(&mut Fo, &ds, 1), [Some(2)]);
        ds[2].weight = 0;
        assert_eq!(picks(&mut Fo, &ds, 1), [Some(0)]);
        ds[0].overloaded = true;
        assert_eq!(picks(&mut Fo, &ds, 1), [Some(3)]);
        ds[3].weight = 0;
        assert_eq!(picks(&mut Fo, &ds, 1), [None]);
    }
}
