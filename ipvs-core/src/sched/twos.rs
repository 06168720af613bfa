//! `twos`: power of two choices (`ip_vs_twos.c`).
//!
//! `total` = sum of the weights of the eligible destinations. Two numbers are drawn in
//! `[0, total]` (inclusive, as the kernel's `% (total + 1)`); walking the eligible
//! destinations in list order and subtracting each weight, the first destination at which
//! a number drops to 0 or below is that number's choice. The second choice wins only if
//! it is strictly less loaded by `overhead / weight` (cross-multiplied).
//!
//! The kernel draws from `get_random_u32()`; here the draws come from a SplitMix64
//! generator seeded at construction (upper 32 bits of each output), so runs replay
//! exactly for a given seed.

use super::{SchedInput, Scheduler};
use crate::dest::Dest;
use crate::time::Instant;
use crate::types::SchedulerKind;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, seedable, good enough for load balancing.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    #[inline]
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 32) as u32
    }
}

/// Power-of-two-choices state: the seeded generator.
#[derive(Debug, Clone)]
pub struct Twos {
    rng: SplitMix64,
}

impl Twos {
    /// A scheduler whose random draws are fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Twos {
            rng: SplitMix64(seed),
        }
    }
}

impl Scheduler for Twos {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Twos
    }

    fn update(&mut self, _dests: &[Dest]) {}

    #[inline]
    fn schedule(&mut self, dests: &[Dest], _input: &SchedInput, _now: Instant) -> Option<usize> {
        let total: u64 = dests
            .iter()
            .filter(|d| d.is_eligible())
            .map(|d| u64::from(d.weight))
            .sum();
        if total == 0 {
            return None;
        }
        let mut r1 = (u64::from(self.rng.next_u32()) % (total + 1)) as i64;
        let mut r2 = (u64::from(self.rng.next_u32()) % (total + 1)) as i64;
        let (mut c1, mut c2): (Option<usize>, Option<usize>) = (None, None);
        for (i, d) in dests.iter().enumerate() {
            if !d.is_eligible() {
                continue;
            }
            let w = i64::from(d.weight);
            r1 -= w;
            r2 -= w;
            if r1 <= 0 && c1.is_none() {
                c1 = Some(i);
            }
            if r2 <= 0 && c2.is_none() {
                c2 = Some(i);
            }
            if c1.is_some() && c2.is_some() {
                break;
            }
        }
        let (c1, c2) = (c1?, c2?);
        let (d1, d2) = (&dests[c1], &dests[c2]);
        // Choice 2 wins if weight2 * overhead1 > weight1 * overhead2.
        if u64::from(d2.weight) * d1.overhead() > u64::from(d1.weight) * d2.overhead() {
            Some(c2)
        } else {
            Some(c1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn same_seed_same_sequence_other_seed_differs() {
        let ds = dests(&[1, 2, 3, 4]);
        let (mut a, mut b, mut c) = (Twos::new(7), Twos::new(7), Twos::new(8));
        let pa = picks(&mut a, &ds, 200);
        assert_eq!(pa, picks(&mut b, &ds, 200));
        assert_ne!(pa, picks(&mut c, &ds, 200));
    }

    #[test]
    fn idle_pool_is_weight_proportional() {
        // All idle: overheads are 0, so choice 1 always wins; its draw is weighted.
        // Draw r in [0, 10]: A (w1) takes r <= 1 (2 of 11), B (w2) r in 2..=3 (2/11),
        // C (w3) 4..=6 (3/11), D (w4) 7..=10 (4/11).
        let ds = dests(&[1, 2, 3, 4]);
        let mut s = Twos::new(42);
        let n = 110_000;
        let mut count = [0usize; 4];
        for p in picks(&mut s, &ds, n) {
            count[p.expect("eligible")] += 1;
        }
        for (c, parts) in count.iter().zip([2usize, 2, 3, 4]) {
            let want = n * parts / 11;
            assert!(c.abs_diff(want) * 20 <= want, "{count:?}");
        }
    }

    #[test]
    fn less_loaded_of_two_wins_and_load_balances() {
        // Replay with binding: every pick adds an active connection. Power of two keeps
        // the spread tight: after 4000 picks over 4 equal servers, max - min stays small.
        let mut ds = dests(&[1, 1, 1, 1]);
        let mut s = Twos::new(3);
        for _ in 0..4_000 {
            let i = picks(&mut s, &ds, 1)[0].expect("eligible");
            ds[i].active_conns += 1;
        }
        let act: Vec<u32> = ds.iter().map(|d| d.active_conns).collect();
        let spread = act.iter().max().expect("4") - act.iter().min().expect("4");
        assert!(spread <= 20, "{act:?}");
    }

    #[test]
    fn skips_ineligible() {
        let mut ds = dests(&[5, 1, 5]);
        ds[0].overloaded = true;
        ds[2].weight = 0;
        let mut s = Twos::new(1);
        assert!(picks(&mut s, &ds, 50).iter().all(|p| *p == Some(1)));
        ds[1].weight = 0;
        assert_eq!(picks(&mut s, &ds, 1), [None]);
    }
}
