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
//! Differences from the kernel, both invisible in scheduling decisions: a destination
//! removed from the service drops its cache entries at once (the kernel keeps them
//! pointing at the unavailable destination until they are rescheduled or expire), and
//! garbage collection timing is as described in the `locality` module.

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
    dest: usize,
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
        self.table.retain_mut(|e| match pos.get(&e.id) {
            Some(&i) => {
                e.dest = i;
                true
            }
            None => false,
        });
    }

    fn schedule(&mut self, dests: &[Dest], input: &SchedInput, now: Instant) -> Option<usize> {
        self.table.maybe_gc(now);
        let addr = u32::from(input.dst);
        if let Some(e) = self.table.get_mut(addr) {
            e.lastuse = now;
            if let Some(d) = dests.get(e.dest)
                && d.id == e.id
                && d.weight > 0
                && !locality_overloaded(d, dests)
            {
                return Some(e.dest);
            }
        }
        let i = wlc_pick(dests)?;
        let id = dests[i].id;
        match self.table.get_mut(addr) {
            Some(e) if e.id == id => {}
            Some(e) => {
                *e = Entry {
                    addr,
                    dest: i,
                    id,
                    lastuse: now,
                }
            }
            None => self.table.insert(Entry {
                addr,
                dest: i,
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

    #[test]
    fn removed_dest_entries_are_dropped_and_indices_remapped() {
        let ds = dests(&[1, 1, 1]);
        let mut s = Lblc::new();
        s.update(&ds);
        let (x, y) = (to([198, 51, 100, 1]), to([198, 51, 100, 2]));
        assert_eq!(s.schedule(&ds, &x, T0), Some(0));
        let mut ds = ds;
        set_conns(&mut ds[0], 1, 0);
        assert_eq!(s.schedule(&ds, &y, T0), Some(1));
        // Remove A (index 0): x's entry goes, y's entry (id 1) moves to index 0.
        let ds2 = ds[1..].to_vec();
        s.update(&ds2);
        assert_eq!(s.cached(), 1);
        assert_eq!(s.schedule(&ds2, &y, T0), Some(0));
        assert_eq!(ds2[0].id, DestId(1));
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
