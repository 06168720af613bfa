//! The cache table shared by lblc and lblcr: 1024 hash buckets keyed on the destination
//! (virtual) IP, `hash_32(addr, 10)`, with the kernel's garbage collection.
//!
//! Garbage collection (`ip_vs_lblc_check_expire` / `ip_vs_lblcr_check_expire`) runs every
//! [`CHECK_EXPIRE_INTERVAL`]:
//! - every 30th run is a full check dropping entries unused for the expiration time
//!   (sysctl `lblc_expiration` / `lblcr_expiration`, default 24 h) and resetting the count;
//! - otherwise, if the table holds more than 16 × 1024 entries, it walks buckets from a
//!   rover dropping entries unused for [`ENTRY_TIMEOUT`] until `(entries − max) × 4/3`
//!   (at most max/2) are gone; if not over the limit, the run only counts.
//!
//! The kernel drives this from a timer; here it runs from `handle_timeout` and from the
//! scheduling call itself when due. If several intervals passed since the last run, one
//! run is made (the kernel would make one per interval), then the next is due one interval
//! after `now`.

use core::time::Duration;

use super::hash_32;
use crate::time::Instant;

/// How often garbage collection runs.
pub const CHECK_EXPIRE_INTERVAL: Duration = Duration::from_secs(60);
/// Idle time after which an entry may be dropped when the table is over its size.
pub const ENTRY_TIMEOUT: Duration = Duration::from_secs(6 * 60);
/// Default `lblc_expiration` / `lblcr_expiration`.
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);

const TAB_BITS: u32 = 10;
const TAB_SIZE: usize = 1 << TAB_BITS;
const TAB_MASK: usize = TAB_SIZE - 1;
const MAX_SIZE: usize = TAB_SIZE * 16;
const COUNT_FOR_FULL_EXPIRATION: u32 = 30;

/// What the table needs to know about an entry.
pub(crate) trait LocalityEntry {
    /// The destination IP the entry caches (host order).
    fn addr(&self) -> u32;
    /// Last time the entry was used.
    fn lastuse(&self) -> Instant;
}

/// Hash buckets plus garbage-collection state.
#[derive(Debug, Clone)]
pub(crate) struct LocalityTable<E> {
    buckets: Vec<Vec<E>>,
    entries: usize,
    rover: usize,
    counter: u32,
    next_check: Option<Instant>,
    pub(crate) expiration: Duration,
}

impl<E: LocalityEntry> LocalityTable<E> {
    pub(crate) fn new() -> Self {
        LocalityTable {
            buckets: (0..TAB_SIZE).map(|_| Vec::new()).collect(),
            entries: 0,
            rover: 0,
            counter: 1,
            next_check: None,
            expiration: DEFAULT_EXPIRATION,
        }
    }

    #[inline]
    fn bucket_of(addr: u32) -> usize {
        hash_32(addr, TAB_BITS) as usize & TAB_MASK
    }

    /// Number of cached destination addresses.
    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    /// The entry for `addr`, if cached.
    #[inline]
    pub(crate) fn get_mut(&mut self, addr: u32) -> Option<&mut E> {
        self.buckets
            .get_mut(Self::bucket_of(addr))?
            .iter_mut()
            .find(|e| e.addr() == addr)
    }

    /// Adds an entry; the caller has checked that `addr` is not cached yet.
    pub(crate) fn insert(&mut self, e: E) {
        if let Some(b) = self.buckets.get_mut(Self::bucket_of(e.addr())) {
            b.push(e);
            self.entries += 1;
        }
    }

    /// Keeps the entries for which `f` returns true (after letting it edit them).
    pub(crate) fn retain_mut(&mut self, mut f: impl FnMut(&mut E) -> bool) {
        for b in &mut self.buckets {
            let before = b.len();
            b.retain_mut(&mut f);
            self.entries -= before - b.len();
        }
    }

    /// Whether some entry satisfies `f`.
    pub(crate) fn any(&self, mut f: impl FnMut(&E) -> bool) -> bool {
        self.buckets.iter().flatten().any(&mut f)
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.next_check
    }

    /// Arms the timer on first use and runs garbage collection when due.
    #[inline]
    pub(crate) fn maybe_gc(&mut self, now: Instant) {
        match self.next_check {
            None => self.next_check = Some(now + CHECK_EXPIRE_INTERVAL),
            Some(t) if now >= t => {
                self.check_expire(now);
                self.next_check = Some(now + CHECK_EXPIRE_INTERVAL);
            }
            Some(_) => {}
        }
    }

    fn check_expire(&mut self, now: Instant) {
        if self.counter.is_multiple_of(COUNT_FOR_FULL_EXPIRATION) {
            let exp = self.expiration;
            self.sweep(now, exp, usize::MAX);
            self.counter = 1;
            return;
        }
        if self.entries <= MAX_SIZE {
            self.counter += 1;
            return;
        }
        let goal = ((self.entries - MAX_SIZE) * 4 / 3).min(MAX_SIZE / 2);
        self.sweep(now, ENTRY_TIMEOUT, goal);
    }

    /// Walks buckets from the rover, dropping entries idle for at least `idle`, stopping
    /// after the bucket in which `goal` drops were reached (or after all buckets).
    fn sweep(&mut self, now: Instant, idle: Duration, goal: usize) {
        let mut j = self.rover;
        let mut dropped = 0usize;
        for _ in 0..TAB_SIZE {
            j = (j + 1) & TAB_MASK;
            if let Some(b) = self.buckets.get_mut(j) {
                let before = b.len();
                b.retain(|e| now < e.lastuse() + idle);
                dropped += before - b.len();
                self.entries -= before - b.len();
            }
            if dropped >= goal {
                break;
            }
        }
        self.rover = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(u32, Instant);
    impl LocalityEntry for E {
        fn addr(&self) -> u32 {
            self.0
        }
        fn lastuse(&self) -> Instant {
            self.1
        }
    }

    #[test]
    fn full_check_every_thirtieth_run_drops_expired() {
        let mut t: LocalityTable<E> = LocalityTable::new();
        t.expiration = Duration::from_secs(600);
        t.maybe_gc(Instant::ZERO);
        assert_eq!(t.poll_timeout(), Some(Instant::from_secs(60)));
        t.insert(E(1, Instant::ZERO));
        t.insert(E(2, Instant::from_secs(1500)));
        // Runs at 60, 120, ..., 1740 only count (29 runs, counter 1 -> 30).
        for k in 1..=29 {
            t.maybe_gc(Instant::from_secs(60 * k));
            assert_eq!(t.len(), 2, "run {k}");
        }
        // Run 30 at 1800 s: full check. Entry 1 idle 1800 >= 600: dropped; entry 2 idle
        // 300 < 600: kept.
        t.maybe_gc(Instant::from_secs(1800));
        assert_eq!(t.len(), 1);
        assert!(t.get_mut(2).is_some());
        assert_eq!(t.poll_timeout(), Some(Instant::from_secs(1860)));
    }

    #[test]
    fn over_size_drops_idle_entries_towards_goal() {
        let mut t: LocalityTable<E> = LocalityTable::new();
        t.maybe_gc(Instant::ZERO);
        let n = MAX_SIZE as u32 + 300;
        for a in 0..n {
            t.insert(E(a, Instant::ZERO));
        }
        // Fresh entries survive: nothing idle for 6 min at t = 60 s.
        t.maybe_gc(Instant::from_secs(60));
        assert_eq!(t.len(), n as usize);
        // At 7 min every entry is idle: goal = 300*4/3 = 400, stopping at a bucket edge.
        t.maybe_gc(Instant::from_secs(7 * 60));
        let dropped = n as usize - t.len();
        assert!((400..400 + 64).contains(&dropped), "dropped {dropped}");
    }
}
