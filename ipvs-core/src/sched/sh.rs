//! `sh`: source hashing (`ip_vs_sh.c`).
//!
//! A 256-bucket table filled by walking the destinations in list order, each taking
//! `weight` consecutive buckets (a weight-0 destination still takes one, as the kernel's
//! `++d_count >= weight` test does), cycling until the table is full. Destinations beyond
//! the 256th bucket get none.
//!
//! The key is `(offset + hash_32(sport + saddr, 8)) & 255`, with `sport = 0` unless
//! `sh-port` (SCHED2) is set and `offset = 0` for the first probe. A bucket whose
//! destination has weight 0 or is overloaded gives `None`, unless `sh-fallback` (SCHED1)
//! is set: then offsets `ihash, ihash+1, ...` (mod 256) are probed in turn, stopping at the
//! first available destination.

use super::{SchedFlags, SchedInput, Scheduler, hash_32};
use crate::dest::Dest;
use crate::time::Instant;
use crate::types::SchedulerKind;

const TAB_BITS: u32 = 8;
const TAB_SIZE: usize = 1 << TAB_BITS;
const TAB_MASK: u32 = (TAB_SIZE as u32) - 1;

/// Source-hashing table.
#[derive(Debug, Clone)]
pub struct Sh {
    flags: SchedFlags,
    buckets: Box<[Option<u32>; TAB_SIZE]>,
}

impl Sh {
    /// Empty table; `flags` selects `sh-fallback` / `sh-port`.
    pub fn new(flags: SchedFlags) -> Self {
        Sh {
            flags,
            buckets: Box::new([None; TAB_SIZE]),
        }
    }

    #[inline]
    fn hashkey(saddr: u32, port: u16, offset: u32) -> usize {
        (offset.wrapping_add(hash_32(u32::from(port).wrapping_add(saddr), TAB_BITS)) & TAB_MASK)
            as usize
    }

    #[inline]
    fn available(&self, dests: &[Dest], bucket: usize) -> Result<usize, bool> {
        // Err(true): a destination that cannot take the connection; Err(false): empty.
        match self.buckets[bucket] {
            None => Err(false),
            Some(i) => match dests.get(i as usize) {
                Some(d) if d.is_eligible() => Ok(i as usize),
                Some(_) => Err(true),
                None => Err(false),
            },
        }
    }
}

impl Scheduler for Sh {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Sh
    }

    fn update(&mut self, dests: &[Dest]) {
        let mut table = Box::new([None; TAB_SIZE]);
        if !dests.is_empty() {
            let (mut p, mut count) = (0usize, 0u32);
            for b in table.iter_mut() {
                *b = u32::try_from(p).ok();
                count += 1;
                if count >= dests[p].weight {
                    p = (p + 1) % dests.len();
                    count = 0;
                }
            }
        }
        self.buckets = table;
    }

    fn set_flags(&mut self, flags: SchedFlags) {
        self.flags = flags;
    }

    #[inline]
    fn schedule(&mut self, dests: &[Dest], input: &SchedInput, _now: Instant) -> Option<usize> {
        let saddr = u32::from(input.src);
        let port = if self.flags.port() { input.sport } else { 0 };
        let ihash = Self::hashkey(saddr, port, 0);
        match self.available(dests, ihash) {
            Ok(i) => Some(i),
            Err(true) if self.flags.fallback() => {
                for offset in 0..TAB_SIZE as u32 {
                    let roffset = (offset + ihash as u32) % TAB_SIZE as u32;
                    match self.available(dests, Self::hashkey(saddr, port, roffset)) {
                        Ok(i) => return Some(i),
                        Err(true) => {}
                        Err(false) => return None,
                    }
                }
                None
            }
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::types::SchedFlag;

    fn sh(flags: &[SchedFlag], ds: &[Dest]) -> Sh {
        let mut s = Sh::new(SchedFlags::from_flags(flags));
        s.update(ds);
        s
    }

    #[test]
    fn table_is_weight_proportional_in_list_order() {
        let ds = dests(&[3, 1, 0]);
        let s = sh(&[], &ds);
        let head: Vec<_> = s.buckets[..10].iter().map(|b| b.expect("full")).collect();
        // A A A B C(weight 0 still takes one) A A A B C
        assert_eq!(head, [0, 0, 0, 1, 2, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn distribution_follows_weights() {
        // Weights 1,2,5 sum to 8, which divides 256: 32, 64, 160 buckets.
        let ds = dests(&[1, 2, 5]);
        let mut s = sh(&[], &ds);
        let mut count = [0usize; 3];
        let n = 64_000;
        for k in 0..n {
            count[s
                .schedule(&ds, &input(k, 0), Instant::ZERO)
                .expect("eligible")] += 1;
        }
        // Expected 8000 / 16000 / 40000; allow 10%.
        for (c, want) in count.iter().zip([8_000usize, 16_000, 40_000]) {
            assert!(c.abs_diff(want) * 10 <= want, "{count:?}");
        }
    }

    #[test]
    fn same_source_same_dest_and_port_flag() {
        let ds = dests(&[1, 1, 1, 1]);
        let mut plain = sh(&[], &ds);
        let mut port = sh(&[SchedFlag::ShPort], &ds);
        let mut moved = 0;
        for k in 0..2_000 {
            let a = plain.schedule(&ds, &input(k, 1000), Instant::ZERO);
            let b = plain.schedule(&ds, &input(k, 2000), Instant::ZERO);
            assert_eq!(a, b, "without sh-port the port is ignored");
            let c = port.schedule(&ds, &input(k, 1000), Instant::ZERO);
            let d = port.schedule(&ds, &input(k, 2000), Instant::ZERO);
            moved += usize::from(c != d);
        }
        // With sh-port, a different port lands elsewhere about 3/4 of the time.
        assert!((1_200..=1_800).contains(&moved), "{moved}");
    }

    #[test]
    fn fallback_probes_next_offsets() {
        let mut ds = dests(&[1, 1, 1, 1]);
        let mut plain = sh(&[], &ds);
        let mut fb = sh(&[SchedFlag::ShFallback], &ds);
        ds[2].overloaded = true;
        let (mut none, mut moved) = (0, 0);
        for k in 0..4_000 {
            let x = input(k, 0);
            let p = plain.schedule(&ds, &x, Instant::ZERO);
            let f = fb.schedule(&ds, &x, Instant::ZERO);
            match p {
                None => {
                    none += 1;
                    let f = f.expect("fallback finds another");
                    assert_ne!(f, 2);
                    moved += 1;
                }
                Some(i) => assert_eq!(f, Some(i), "available buckets are not moved"),
            }
        }
        assert!((800..=1_200).contains(&none), "{none}");
        assert_eq!(moved, none);
        // Everything unavailable: fallback gives up after one lap.
        for d in &mut ds {
            d.weight = 0;
        }
        assert_eq!(fb.schedule(&ds, &input(1, 0), Instant::ZERO), None);
    }

    #[test]
    fn rebuild_same_dests_same_mapping() {
        let ds = dests(&[2, 3, 4]);
        let a = sh(&[], &ds);
        let mut b = sh(&[], &dests(&[9]));
        b.update(&ds);
        assert_eq!(a.buckets, b.buckets);
    }
}
