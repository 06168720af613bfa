//! `dh`: destination hashing (`ip_vs_dh.c`).
//!
//! A 256-bucket table filled by cycling through the destinations in list order,
//! unweighted (bucket `i` gets destination `i mod n`). The key is
//! `hash_32(daddr, 8)` of the packet's destination IP. If the bucket's destination has
//! weight 0 or is overloaded, there is no fallback: the result is `None`.
//!
//! The kernel rebuilds the table on add and delete only (weights do not enter it); this
//! rebuilds on every update, with the same result.

use super::{SchedInput, Scheduler, hash_32};
use crate::dest::Dest;
use crate::time::Instant;
use crate::types::SchedulerKind;

const TAB_BITS: u32 = 8;
const TAB_SIZE: usize = 1 << TAB_BITS;

/// Destination-hashing table.
#[derive(Debug, Clone)]
pub struct Dh {
    /// Destination index per bucket; `None` when the service has no destination.
    buckets: Box<[Option<u32>; TAB_SIZE]>,
}

impl Default for Dh {
    fn default() -> Self {
        Self::new()
    }
}

impl Dh {
    /// Empty table.
    pub fn new() -> Self {
        Dh {
            buckets: Box::new([None; TAB_SIZE]),
        }
    }

    /// Bucket of a destination IP.
    #[inline]
    pub fn bucket(daddr: std::net::Ipv4Addr) -> usize {
        hash_32(u32::from(daddr), TAB_BITS) as usize
    }
}

impl Scheduler for Dh {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Dh
    }

    fn update(&mut self, dests: &[Dest]) {
        let mut table = Box::new([None; TAB_SIZE]);
        if !dests.is_empty() {
            for (i, b) in table.iter_mut().enumerate() {
                *b = u32::try_from(i % dests.len()).ok();
            }
        }
        self.buckets = table;
    }

    #[inline]
    fn schedule(&mut self, dests: &[Dest], input: &SchedInput, _now: Instant) -> Option<usize> {
        let i = self.buckets[Self::bucket(input.dst)]? as usize;
        dests.get(i).filter(|d| d.is_eligible()).map(|_| i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn same_destination_address_same_server_and_even_spread() {
        let ds = dests(&[1, 5, 1, 1]);
        let mut s = Dh::new();
        s.update(&ds);
        let mut count = [0usize; 4];
        for k in 0..40_000 {
            let a = s
                .schedule(&ds, &input(k, 1), Instant::ZERO)
                .expect("eligible");
            let b = s
                .schedule(&ds, &input(k, 2), Instant::ZERO)
                .expect("eligible");
            assert_eq!(a, b, "source port and repeat do not matter");
            count[a] += 1;
        }
        // Unweighted: each of the 4 gets 64 buckets, so about 10 000 keys (within 10%).
        for c in count {
            assert!((9_000..=11_000).contains(&c), "{count:?}");
        }
    }

    #[test]
    fn no_fallback_when_bucket_dest_unavailable() {
        let mut ds = dests(&[1, 1]);
        let mut s = Dh::new();
        s.update(&ds);
        let k = (0..).find(|&k| s.schedule(&ds, &input(k, 0), Instant::ZERO) == Some(0));
        let x = input(k.expect("some key maps to 0"), 0);
        ds[0].overloaded = true;
        assert_eq!(s.schedule(&ds, &x, Instant::ZERO), None);
        ds[0].overloaded = false;
        ds[0].weight = 0;
        assert_eq!(s.schedule(&ds, &x, Instant::ZERO), None);
    }

    #[test]
    fn rebuild_is_deterministic_and_follows_list_order() {
        let ds = dests(&[1, 1, 1]);
        let (mut s1, mut s2) = (Dh::new(), Dh::new());
        s1.update(&ds);
        s2.update(&ds);
        s2.update(&ds);
        assert_eq!(s1.buckets, s2.buckets);
        assert_eq!(
            s1.buckets[..6],
            [Some(0), Some(1), Some(2), Some(0), Some(1), Some(2)]
        );
        s1.update(&[]);
        assert!(s1.buckets.iter().all(Option::is_none));
    }
}
