//! `wrr`: interleaved weighted round robin (`ip_vs_wrr.c`, newer kernels).
//!
//! State: cursor `cl` (last pick or head), current weight `cw`, `di` = gcd of the positive
//! weights, `mw` = max weight − (di − 1). Each traversal of the list returns the
//! non-overloaded destinations with `weight >= cw`; at the end of the list `cw` drops by
//! `di`; when it reaches 0 it restarts at `mw`, so the last pass of a cycle runs at
//! `cw = 1` and a destination whose weight dropped below `di` is still reached.
//!
//! The search stops (no destination) after every destination was tried at `cw <= di`
//! from the first one: either the traversal that began at the head or, when it began
//! after the cursor, the wrapped pass that ends at the cursor.
//!
//! On any destination change (`ip_vs_wrr_dest_changed`): cursor to head, `di`/`mw`
//! recomputed, and `cw` reset to `mw` if it is above `mw` or 0, else rounded down to a
//! multiple of `di` plus 1 when `di > 1`.

use super::{SchedInput, Scheduler, gcd_positive};
use crate::dest::Dest;
use crate::time::Instant;
use crate::types::SchedulerKind;

/// Weighted round-robin state (kernel `struct ip_vs_wrr_mark`).
#[derive(Debug, Clone, Default)]
pub struct Wrr {
    /// Last pick; `None` = list head.
    cl: Option<usize>,
    cw: i64,
    mw: i64,
    di: i64,
}

impl Wrr {
    /// State for an empty service.
    pub fn new() -> Self {
        Wrr {
            cl: None,
            cw: 0,
            mw: 0,
            di: 1,
        }
    }

    /// `(cw, mw, di)`, for tests and diagnostics.
    pub fn weights(&self) -> (i64, i64, i64) {
        (self.cw, self.mw, self.di)
    }
}

impl Scheduler for Wrr {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Wrr
    }

    fn update(&mut self, dests: &[Dest]) {
        self.cl = None;
        self.di = i64::from(gcd_positive(dests.iter().map(|d| d.weight)).max(1));
        let max = dests.iter().map(|d| d.weight).max().unwrap_or(0);
        self.mw = i64::from(max) - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    fn schedule(&mut self, dests: &[Dest], _input: &SchedInput, _now: Instant) -> Option<usize> {
        if self.mw <= 0 {
            return None;
        }
        let n = dests.len();
        let last = self.cl.filter(|&c| c < n);
        let mut start = last.map_or(0, |c| c + 1);
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            for (i, d) in dests.iter().enumerate().skip(start) {
                if !d.overloaded && i64::from(d.weight) >= self.cw {
                    self.cl = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    self.cl = Some(i);
                    return None;
                }
            }
            // Reached the head again.
            start = 0;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn run(s: &mut Wrr, ds: &[Dest], n: usize) -> String {
        picks(s, ds, n)
            .into_iter()
            .map(|p| p.map_or('-', |i| (b'A' + i as u8) as char))
            .collect()
    }

    #[test]
    fn weights_4_3_2_exact_sequence() {
        // di=1, mw=4. Passes: cw=4: A | cw=3: A B | cw=2: A B C | cw=1: A B C.
        let ds = dests(&[4, 3, 2]);
        let mut s = Wrr::new();
        s.update(&ds);
        assert_eq!(run(&mut s, &ds, 18), "AABABCABCAABABCABC");
    }

    #[test]
    fn weights_with_gcd_restart_below_max() {
        // 4,2,2: di=2, mw=4-(2-1)=3. cw=3: A | cw=1: A B C | wrap to 3: A | ...
        let ds = dests(&[4, 2, 2]);
        let mut s = Wrr::new();
        s.update(&ds);
        assert_eq!(s.weights(), (3, 3, 2));
        assert_eq!(run(&mut s, &ds, 12), "AABCAABCAABC");
        // 6,4: di=2, mw=5. cw=5: A | cw=3: A B | cw=1: A B.
        let ds = dests(&[6, 4]);
        let mut s = Wrr::new();
        s.update(&ds);
        assert_eq!(run(&mut s, &ds, 10), "AABABAABAB");
    }

    #[test]
    fn weights_3_2_1_over_600_picks_exact_counts() {
        let ds = dests(&[3, 2, 1]);
        let mut s = Wrr::new();
        s.update(&ds);
        let mut count = [0usize; 3];
        for p in picks(&mut s, &ds, 600) {
            count[p.expect("always available")] += 1;
        }
        assert_eq!(count, [300, 200, 100]);
    }

    #[test]
    fn quiesced_and_overloaded_are_skipped() {
        let mut ds = dests(&[2, 0, 1]);
        let mut s = Wrr::new();
        s.update(&ds);
        // mw=2: cw=2: A | cw=1: A C
        assert_eq!(run(&mut s, &ds, 6), "AACAAC");
        ds[0].overloaded = true;
        // Cursor at C, cw=1: wrap, cw restarts at 2: nothing >= 2 except A (overloaded);
        // cw=1 (last pass, restarted, stop at C): C.
        assert_eq!(run(&mut s, &ds, 3), "CCC");
        ds[2].overloaded = true;
        assert_eq!(run(&mut s, &ds, 2), "--");
    }

    #[test]
    fn all_zero_weights_schedule_nothing() {
        let ds = dests(&[0, 0]);
        let mut s = Wrr::new();
        s.update(&ds);
        assert_eq!(s.weights().1, 0);
        assert_eq!(run(&mut s, &ds, 2), "--");
    }

    #[test]
    fn dest_change_mid_run_resets_cursor_keeps_cw() {
        let mut ds = dests(&[4, 3, 2]);
        let mut s = Wrr::new();
        s.update(&ds);
        // After "AABAB" the state is cw=2, cursor at B.
        assert_eq!(run(&mut s, &ds, 5), "AABAB");
        assert_eq!(s.weights().0, 2);
        // Change C's weight to 1: cursor -> head, di=1, mw=4, cw stays 2.
        ds[2].weight = 1;
        s.update(&ds);
        assert_eq!(s.weights(), (2, 4, 1));
        // From head at cw=2: A B (C has 1 < 2) | cw=1: A B C | cw=4: A | cw=3: A B ...
        assert_eq!(run(&mut s, &ds, 9), "ABABCAABA");
    }

    #[test]
    fn dest_change_rounds_cw_up_to_one_above_a_multiple_of_di() {
        // 3,2: di=1, mw=3. "AAB" leaves cw=2, cursor at B.
        let mut ds = dests(&[3, 2]);
        let mut s = Wrr::new();
        s.update(&ds);
        assert_eq!(run(&mut s, &ds, 3), "AAB");
        assert_eq!(s.weights().0, 2);
        // Weights 6,4: di=2, mw=5, cw=2 -> (2/2)*2+1 = 3 (without the rule it would stay
        // 2 and the sequence would be ABAABABAA). From head: cw=3: A B | cw=1: A B |
        // cw=5: A | cw=3: A B | cw=1: A B.
        ds[0].weight = 6;
        ds[1].weight = 4;
        s.update(&ds);
        assert_eq!(s.weights(), (3, 5, 2));
        assert_eq!(run(&mut s, &ds, 9), "ABABAABAB");
    }

    #[test]
    fn dest_change_with_gcd_rounds_cw() {
        // 6,4,2: di=2, mw=5. After 3 picks (cw=5: A | cw=3: A B) cw=3, cursor at B.
        let mut ds = dests(&[6, 4, 2]);
        let mut s = Wrr::new();
        s.update(&ds);
        assert_eq!(run(&mut s, &ds, 3), "AAB");
        assert_eq!(s.weights(), (3, 5, 2));
        // Weight of C 2 -> 4: di=2, mw=5, cw=3 -> (3/2)*2+1 = 3. From head at cw=3:
        // A B C | cw=1: A B C | cw=5: A.
        ds[2].weight = 4;
        s.update(&ds);
        assert_eq!(s.weights(), (3, 5, 2));
        assert_eq!(run(&mut s, &ds, 7), "ABCABCA");
        // Weights 6,4,4 -> 8,4,4: di=4, mw=5; cw (=5 after the wrap) -> (5/4)*4+1 = 5.
        ds[0].weight = 8;
        s.update(&ds);
        assert_eq!(s.weights(), (5, 5, 4));
        // cw=5: A | cw=1: A B C | cw=5: A ...
        assert_eq!(run(&mut s, &ds, 6), "AABCAA");
    }
}
