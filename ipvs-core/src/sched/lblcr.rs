//! `lblcr`: locality-based least connection with replication (`ip_vs_lblcr.c`).
//!
//! Like lblc, keyed on the destination IP, but each address maps to a **set** of
//! destinations (newest member first, as the kernel's `list_add`):
//! 1. pick the set's weighted-least-connection member (`ip_vs_dest_set_min`: the first
//!    member with weight > 0 and OVERLOAD clear starts; later non-overloaded members
//!    replace it when strictly less loaded);
//! 2. if the set has more than one member and has not changed for the expiration time
//!    (strictly more), drop its weighted-most-loaded member (`ip_vs_dest_set_max`, which
//!    ignores OVERLOAD) — the member picked in step 1 is still used for this connection;
//! 3. if step 1 found a member and it is not locality-overloaded, use it; otherwise pick
//!    by wlc over the whole service and add that destination to the set (if absent).
//!
//! Adding or removing a member stamps the set's `lastmod`. Differences from the kernel as
//! in lblc: members removed from the service leave the sets at once.

use core::time::Duration;

use hashbrown::HashMap;

use super::locality::{LocalityEntry, LocalityTable};
use super::{SchedInput, Scheduler, locality_overloaded, wlc_pick};
use crate::dest::Dest;
use crate::time::Instant;
use crate::types::{DestId, SchedulerKind};

#[derive(Debug, Clone, Copy)]
struct Member {
    dest: usize,
    id: DestId,
}

#[derive(Debug, Clone)]
struct Entry {
    addr: u32,
    /// Newest first.
    set: Vec<Member>,
    lastmod: Instant,
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

impl Entry {
    fn insert(&mut self, m: Member, now: Instant) {
        if self.set.iter().any(|x| x.id == m.id) {
            return;
        }
        self.set.insert(0, m);
        self.lastmod = now;
    }

    /// `ip_vs_dest_set_min`.
    fn min(&self, dests: &[Dest]) -> Option<usize> {
        let mut it = self
            .set
            .iter()
            .filter_map(|m| dests.get(m.dest).map(|d| (m.dest, d)));
        let (mut least, first) = it.by_ref().find(|(_, d)| d.is_eligible())?;
        let mut loh = first.overhead();
        let mut lw = u64::from(first.weight);
        for (i, d) in it {
            if d.overloaded {
                continue;
            }
            let doh = d.overhead();
            if loh * u64::from(d.weight) > doh * lw {
                least = i;
                loh = doh;
                lw = u64::from(d.weight);
            }
        }
        Some(least)
    }

    /// `ip_vs_dest_set_max`: position in the set of the weighted-most-loaded member.
    fn max_pos(&self, dests: &[Dest]) -> Option<usize> {
        let mut it = self
            .set
            .iter()
            .enumerate()
            .filter_map(|(p, m)| dests.get(m.dest).map(|d| (p, d)));
        let (mut most, first) = it.by_ref().find(|(_, d)| d.weight > 0)?;
        let mut moh = first.overhead();
        let mut mw = u64::from(first.weight);
        for (p, d) in it {
            let doh = d.overhead();
            if d.weight > 0 && moh * u64::from(d.weight) < doh * mw {
                most = p;
                moh = doh;
                mw = u64::from(d.weight);
            }
        }
        Some(most)
    }
}

/// Locality-based least-connection-with-replication state.
#[derive(Debug, Clone)]
pub struct Lblcr {
    table: LocalityTable<Entry>,
}

impl Default for Lblcr {
    fn default() -> Self {
        Self::new()
    }
}

impl Lblcr {
    /// Empty cache, 24 h expiration.
    pub fn new() -> Self {
        Lblcr {
            table: LocalityTable::new(),
        }
    }

    /// Empty cache with another `lblcr_expiration`.
    pub fn with_expiration(expiration: Duration) -> Self {
        let mut s = Self::new();
        s.table.expiration = expiration;
        s
    }

    /// Number of cached destination addresses.
    pub fn cached(&self) -> usize {
        self.table.len()
    }

    /// Ids in the server set of destination address `dst`, newest first.
    pub fn server_set(&mut self, dst: std::net::Ipv4Addr) -> Vec<DestId> {
        self.table
            .get_mut(u32::from(dst))
            .map(|e| e.set.iter().map(|m| m.id).collect())
            .unwrap_or_default()
    }
}

impl Scheduler for Lblcr {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Lblcr
    }

    fn update(&mut self, dests: &[Dest]) {
        let pos: HashMap<DestId, usize> =
            dests.iter().enumerate().map(|(i, d)| (d.id, i)).collect();
        self.table.retain_mut(|e| {
            e.set.retain_mut(|m| match pos.get(&m.id) {
                Some(&i) => {
                    m.dest = i;
                    true
                }
                None => false,
            });
            true
        });
    }

    fn schedule(&mut self, dests: &[Dest], input: &SchedInput, now: Instant) -> Option<usize> {
        self.table.maybe_gc(now);
        let expiration = self.table.expiration;
        let addr = u32::from(input.dst);
        if let Some(e) = self.table.get_mut(addr) {
            e.lastuse = now;
            let picked = e.min(dests);
            if e.set.len() > 1
                && now > e.lastmod + expiration
                && let Some(p) = e.max_pos(dests)
            {
                e.set.remove(p);
                e.lastmod = now;
            }
            if let Some(i) = picked
                && let Some(d) = dests.get(i)
                && !locality_overloaded(d, dests)
            {
                return Some(i);
            }
            let i = wlc_pick(dests)?;
            e.insert(
                Member {
                    dest: i,
                    id: dests[i].id,
                },
                now,
            );
            return Some(i);
        }
        let i = wlc_pick(dests)?;
        self.table.insert(Entry {
            addr,
            set: vec![Member {
                dest: i,
                id: dests[i].id,
            }],
            lastmod: now,
            lastuse: now,
        });
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

    const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);

    fn to_vip() -> SchedInput {
        SchedInput {
            src: Ipv4Addr::new(192, 0, 2, 1),
            sport: 1000,
            dst: VIP,
            dport: 80,
        }
    }

    fn ids(v: &[DestId]) -> Vec<u32> {
        v.iter().map(|d| d.0).collect()
    }

    #[test]
    fn set_grows_on_overload_and_picks_least_loaded_member() {
        let mut ds = dests(&[1, 1, 1]);
        let mut s = Lblcr::with_expiration(Duration::from_secs(100));
        s.update(&ds);
        let t = Instant::from_secs(1);
        assert_eq!(s.schedule(&ds, &to_vip(), t), Some(0));
        assert_eq!(ids(&s.server_set(VIP)), [0]);
        // A: 2 > 1 and B has 0*2 < 1 -> locality-overloaded -> wlc over all: B (0 load).
        set_conns(&mut ds[0], 2, 0);
        assert_eq!(s.schedule(&ds, &to_vip(), t), Some(1));
        assert_eq!(ids(&s.server_set(VIP)), [1, 0], "newest first");
        // Set min: B (first, 0) vs A (512): B. B not overloaded -> B.
        assert_eq!(s.schedule(&ds, &to_vip(), t), Some(1));
        // B loaded too: B 2 active -> min is B? B 512 vs A 512: tie keeps B (first).
        // B: 2 > 1 and C 0*2 < 1 -> overloaded -> wlc: C. Set becomes [C, B, A].
        set_conns(&mut ds[1], 2, 0);
        assert_eq!(s.schedule(&ds, &to_vip(), t), Some(2));
        assert_eq!(ids(&s.server_set(VIP)), [2, 1, 0]);
    }

    #[test]
    fn stale_set_sheds_its_most_loaded_member() {
        let mut ds = dests(&[1, 1]);
        let mut s = Lblcr::with_expiration(Duration::from_secs(100));
        s.update(&ds);
        assert_eq!(s.schedule(&ds, &to_vip(), Instant::from_secs(0)), Some(0));
        set_conns(&mut ds[0], 2, 0);
        // At t=10: A overloaded -> B added, lastmod = 10.
        assert_eq!(s.schedule(&ds, &to_vip(), Instant::from_secs(10)), Some(1));
        assert_eq!(ids(&s.server_set(VIP)), [1, 0]);
        // At t=110: not strictly after lastmod + 100: nothing removed.
        assert_eq!(s.schedule(&ds, &to_vip(), Instant::from_secs(110)), Some(1));
        assert_eq!(s.server_set(VIP).len(), 2);
        // At 110.001 s: the most loaded (A, 512 vs B 0) is dropped; B still chosen.
        let t = Instant::from_millis(110_001);
        assert_eq!(s.schedule(&ds, &to_vip(), t), Some(1));
        assert_eq!(ids(&s.server_set(VIP)), [1]);
    }

    #[test]
    fn empty_set_after_removal_reschedules() {
        let ds = dests(&[1, 1]);
        let mut s = Lblcr::new();
        s.update(&ds);
        assert_eq!(s.schedule(&ds, &to_vip(), Instant::ZERO), Some(0));
        let ds2 = ds[1..].to_vec();
        s.update(&ds2);
        assert!(s.server_set(VIP).is_empty());
        assert_eq!(s.schedule(&ds2, &to_vip(), Instant::ZERO), Some(0));
        assert_eq!(ids(&s.server_set(VIP)), [1]);
    }

    #[test]
    fn quiesced_member_is_skipped_by_set_min() {
        let mut ds = dests(&[1, 1]);
        let mut s = Lblcr::new();
        s.update(&ds);
        assert_eq!(s.schedule(&ds, &to_vip(), Instant::ZERO), Some(0));
        ds[0].weight = 0;
        // Set min finds nothing eligible -> wlc -> B, added.
        assert_eq!(s.schedule(&ds, &to_vip(), Instant::ZERO), Some(1));
        assert_eq!(ids(&s.server_set(VIP)), [1, 0]);
    }
}
