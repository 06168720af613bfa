//! `lblc`: locality-based least connection (`ip_vs_lblc.c`).
//!
//! Keyed on the packet's **destination** IP (the virtual address; the scheduler exists for
//! cache clusters where many destination IPs share one service). Each cached address maps
//! to one destination, reused while it has weight > 0 and is not "locality-overloaded"
//! (`active > weight` while some destination has `active * 2 < weight`; see
//! [`super::locality_overloaded`]). Note that, as in the kernel, the OVERLOAD
//! *threshold flag* does not invalidate a cached destination. Otherwise the wlc pick is
//! used and cached (replacing any previous mapping, with a fresh `lastuse`).
//!
//! A destination removed from the service keeps its cache entries, as in the kernel, where
//! an entry holds a reference to the destination (in the trash) and `ip_vs_lblc_schedule`
//! skips it only because `IP_VS_DEST_F_AVAILABLE` is clear: such an entry is rescheduled
//! on its next use (and replaced), and if the same address:port is added back first, the
//! entry is valid again ([`Scheduler::holds`] tells the service layer that the trash must
//! keep that destination). Garbage collection timing is as described in the `locality`
//! module.

use core::time::Duration;

use hashbrown::HashMap;

use super::locality::{LocalityEntry, LocalityTable};
use super::{SchedInput, Scheduler, locality_overloaded, wlc_pick};
use crate::dest::Dest;
use crate::time::Instant;
use crate::types::{DestId, SchedulerKind};

#[derive(Debug, Clone)]
struct Entry {
    addr: u32,
    /// Index of `id` in the destination list; `None` while it is removed (unavailable).
    dest: Option<usize>,
    id: DestId,
    lastuse: Instant,
}

impl LocalityEntry for Entry {
    fn addr(&self) -> u32 {
        self.addr
    }
    fn lastuse(&self) -> Instant {
        self.lastuse
    }
}

/// Locality-based least-connection state.
#[derive(Debug, Clone)]
pub struct Lblc {
    table: LocalityTable<Entry>,
}

impl Default for Lblc {
    fn default() -> Self {
        Self::new()
    }
}

impl Lblc {
    /// Empty cache, 24 h expiration.
    pub fn new() -> Self {
        Lblc {
            table: LocalityTable::new(),
        }
    }

    /// Empty cache with another `lblc_expiration`.
    pub fn with_expiration(expiration: Duration) -> Self {
        let mut s = Self::new();
        s.table.expiration = expiration;
        s
    }

    /// Number of cached destination addresses.
    pub fn cached(&self) -> usize {
        self.table.len()
    }
}

impl Scheduler for Lblc {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Lblc
    }

    fn update(&mut self, dests: &[Dest]) {
        let pos: HashMap<DestId, usize> =
            dests.iter().enumerate().map(|(i, d)| (d.id, i)).collect();
        self.table.retain_mut(|e| {
            e.dest = pos.get(&e.id).copied();
            true
        });
    }

    fn schedule(&mut self, dests: &[Dest], input: &SchedInput, now: Instant) -> Option<usize> {
        self.table.maybe_gc(now);
        let addr = u32::from(input.dst);
        if let Some(e) = self.table.get_mut(addr) {
            e.lastuse = now;
            if let Some(i) = e.dest
                && let Some(d) = dests.get(i)
                && d.id == e.id
                && d.weight > 0
                && !locality_overloaded(d, dests)
            {
                return Some(i);
            }
        }
        let i = wlc_pick(dests)?;
        let id = dests[i].id;
        match self.table.get_mut(addr) {
            Some(e) if e.id == id => {}
            Some(e) => {
                *e = Entry {
                    addr,
                    dest: Some(i),
                    id,
                    lastuse: now,
                }
            }
            None => self.table.insert(Entry {
                addr,
                dest: Some(i),
                id,
                lastuse: now,
            }),
        }
        Some(i)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.table.poll_timeout()
    }

    fn handle_timeout(&mut self, _dests: &[Dest], now: Instant) {
        self.table.maybe_gc(now);
    }

    fn holds(&self, id: DestId) -> bool {
        self.table.any(|e| e.id == id)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::super::testutil::*;
    use super::*;

    fn to(dst: [u8; 4]) -> SchedInput {
        SchedInput {
            src: Ipv4Addr::new(192, 0, 2, 1),
            sport: 1000,
            dst: Ipv4Addr::from(dst),
            dport: 80,
        }
    }

    const T0: Instant = Instant::ZERO;

    #[test]
    fn sticks_to_cached_dest_until_locality_overloaded() {
        let mut ds = dests(&[2, 2]);
        let mut s = Lblc::new();
        s.update(&ds);
        let x = to([198, 51, 100, 7]);
        assert_eq!(s.schedule(&ds, &x, T0), Some(0), "wlc: tie, first");
        // Load A beyond what wlc would pick; the cache keeps A while active <= weight.
        set_conns(&mut ds[0], 2, 0);
        assert_eq!(s.schedule(&ds, &x, T0), Some(0));
        // A: active 3 > weight 2, and B has 0*2 < 2: locality-overloaded -> wlc -> B.
        set_conns(&mut ds[0], 3, 0);
        assert_eq!(s.schedule(&ds, &x, T0), Some(1));
        // The cache now points at B even when A becomes idle again.
        set_conns(&mut ds[0], 0, 0);
        set_conns(&mut ds[1], 1, 0);
        assert_eq!(s.schedule(&ds, &x, T0), Some(1));
        // Another destination address gets its own entry, by wlc: A.
        assert_eq!(s.schedule(&ds, &to([198, 51, 100, 8]), T0), Some(0));
        assert_eq!(s.cached(), 2);
    }

    #[test]
    fn overloaded_needs_an_underloaded_peer() {
        let mut ds = dests(&[1, 1]);
        let mut s = Lblc::new();
        s.update(&ds);
        let x = to([203, 0, 113, 1]);
        assert_eq!(s.schedule(&ds, &x, T0), Some(0));
        // A: 5 > 1, but B: 1*2 < 1 is false, so A is not locality-overloaded.
        set_conns(&mut ds[0], 5, 0);
        set_conns(&mut ds[1], 1, 0);
        assert_eq!(s.schedule(&ds, &x, T0), Some(0));
        // The OVERLOAD threshold flag does not invalidate the cache either.
        ds[0].overloaded = true;
        assert_eq!(s.schedule(&ds, &x, T0), Some(0));
        // Weight 0 does: wlc skips flagged A and picks B.
        ds[0].weight = 0;
        assert_eq!(s.schedule(&ds, &x, T0), Some(1));
    }

    /// `ip_vs_lblc_schedule` keeps an entry whose destination was removed (it holds a
    /// reference; only `IP_VS_DEST_F_AVAILABLE` is clear): indices are remapped, and the
    /// entry is valid again once the same destination is back in the list.
    #[test]
    fn removed_dest_entries_stay_and_are_valid_again_when_it_comes_back() {
        let mut ds = dests(&[1, 1, 1]);
        let mut s = Lblc::new();
        s.update(&ds);
        let (x, y) = (to([198, 51, 100, 1]), to([198, 51, 100, 2]));
        assert_eq!(s.schedule(&ds, &x, T0), Some(0));
        set_conns(&mut ds[0], 1, 0);
        assert_eq!(s.schedule(&ds, &y, T0), Some(1));
        // Remove A (index 0): x's entry stays (A is held), y's entry moves to index 0.
        let a = ds.remove(0);
        s.update(&ds);
        assert_eq!(s.cached(), 2);
        assert!(s.holds(a.id) && s.holds(DestId(1)) && !s.holds(DestId(2)));
        assert_eq!(s.schedule(&ds, &y, T0), Some(0));
        assert_eq!(ds[0].id, DestId(1));
        // A comes back (at the head, as a re-add does): x's entry points at it again,
        // although A is more loaded than the others.
        ds.insert(0, a);
        s.update(&ds);
        assert_eq!(s.schedule(&ds, &x, T0), Some(0));
        // Removed again, x is used: unavailable, so wlc picks B and replaces the entry.
        let a = ds.remove(0);
        s.update(&ds);
        assert_eq!(s.schedule(&ds, &x, T0), Some(0));
        assert_eq!(ds[0].id, DestId(1));
        assert!(!s.holds(a.id), "nothing refers to A any more");
    }

    #[test]
    fn entries_expire_with_time_passed_in() {
        let ds = dests(&[1, 1]);
        let mut s = Lblc::with_expiration(Duration::from_secs(600));
        s.update(&ds);
        let x = to([198, 51, 100, 9]);
        assert_eq!(s.schedule(&ds, &x, T0), Some(0));
        assert_eq!(s.poll_timeout(), Some(Instant::from_secs(60)));
        for k in 1..=29 {
            s.handle_timeout(&ds, Instant::from_secs(60 * k));
        }
        assert_eq!(s.cached(), 1);
        s.handle_timeout(&ds, Instant::from_secs(1800)); // 30th run: full check
        assert_eq!(s.cached(), 0);
    }
}
