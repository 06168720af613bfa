//! `ovf`: weighted overflow (`ip_vs_ovf.c`).
//!
//! Among destinations with weight > 0, OVERLOAD clear and `active <= weight` (the weight
//! acts as a cap on active connections), the one with the highest weight; the first one
//! in list order wins ties. Only active connections count, which is why the kernel
//! comment calls it unsuitable for UDP.

use super::{SchedInput, Scheduler};
use crate::dest::Dest;
use crate::time::Instant;
use crate::types::SchedulerKind;

/// Weighted overflow (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ovf;

impl Scheduler for Ovf {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Ovf
    }

    fn update(&mut self, _dests: &[Dest]) {}

    #[inline]
    fn schedule(&mut self, dests: &[Dest], _input: &SchedInput, _now: Instant) -> Option<usize> {
        let mut best: Option<(usize, u32)> = None;
        for (i, d) in dests.iter().enumerate() {
            let w = d.weight;
            if d.overloaded || d.active_conns > w || w == 0 {
                continue;
            }
            if best.is_none_or(|(_, hw)| w > hw) {
                best = Some((i, w));
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn replay_overflow_in_weight_order() {
        // Weights 2, 3 (list order A, B). Each pick adds an active connection.
        // B (w3) is used while active <= 3, i.e. 4 times (0,1,2,3 -> 4), then A while
        // active <= 2 (3 times), then nothing.
        let mut ds = dests(&[2, 3]);
        let mut got = Vec::new();
        for _ in 0..8 {
            let p = picks(&mut Ovf, &ds, 1)[0];
            if let Some(i) = p {
                ds[i].active_conns += 1;
            }
            got.push(p);
        }
        let b = Some(1);
        let a = Some(0);
        assert_eq!(got, [b, b, b, b, a, a, a, None]);
        // Inactive connections do not count; one active finishing re-opens B.
        ds[1].active_conns -= 1;
        ds[1].inactive_conns = 500;
        assert_eq!(picks(&mut Ovf, &ds, 1), [b]);
    }

    #[test]
    fn ties_keep_first_and_flags_exclude() {
        let mut ds = dests(&[4, 4]);
        assert_eq!(picks(&mut Ovf, &ds, 1), [Some(0)]);
        ds[0].overloaded = true;
        assert_eq!(picks(&mut Ovf, &ds, 1), [Some(1)]);
    }
}
