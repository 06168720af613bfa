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
//! Adding or removing a member stamps the set's `lastmod`. A member removed from the
//! service stays in its sets, as in the kernel (the set element holds a reference to the
//! destination in the trash): step 1 skips it (`IP_VS_DEST_F_AVAILABLE` clear), step 2
//! still weighs it with its weight and connections (the kernel's `ip_vs_dest_set_max` does
//! not look at AVAILABLE; it sees them through
//! [`Scheduler::schedule_with_removed`]), and once the same destination is added back it is
//! a full member again.

use core::time::Duration;

use hashbrown::HashMap;

use super::locality::{LocalityEntry, LocalityTable};
use super::{SchedInput, Scheduler, locality_overloaded, wlc_pick};
use crate::dest::Dest;
use crate::time::Instant;
use crate::types::{DestId, SchedulerKind};

#[derive(Debug, Clone, Copy)]
struct Member {
    /// Index of `id` in the destination list; `None` while it is removed.
    dest: Option<usize>,
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
            .filter_map(|m| m.dest.and_then(|i| Some((i, dests.get(i)?))));
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

    /// `ip_vs_dest_set_max`: position in the set of the weighted-most-loaded member,
    /// removed members (found in `removed`) included.
    fn max_pos(&self, dests: &[Dest], removed: &[Dest]) -> Option<usize> {
        let member = |m: &Member| match m.dest {
            Some(i) => dests.get(i),
            None => removed.iter().find(|d| d.id == m.id),
        };
        let mut it = self
            .set
            .iter()
            .enumerate()
            .filter_map(|(p, m)| member(m).map(|d| (p, d)));
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
            for m in &mut e.set {
                m.dest = pos.get(&m.id).copied();
            }
            true
        });
    }

    fn schedule(&mut self, dests: &[Dest], input: &SchedInput, now: Instant) -> Option<usize> {
        self.schedule_with_removed(dests, &[], input, now)
    }

    fn holds(&self, id: DestId) -> bool {
        self.table.any(|e| e.set.iter().any(|m| m.id == id))
    }

    fn schedule_with_removed(
        &mut self,
        dests: &[Dest],
        removed: &[Dest],
        input: &SchedInput,
        now: Instant,
    ) -> Option<usize> {
        self.table.maybe_gc(now);
        let expiration = self.table.expiration;
        let addr = u32::from(input.dst);
        if let Some(e) = self.table.get_mut(addr) {
            e.lastuse = now;
            let picked = e.min(dests);
            if e.set.len() > 1
                && now > e.lastmod + expiration
                && let Some(p) = e.max_pos(dests, removed)
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
                    dest: Some(i),
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
                dest: Some(i),
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

    /// A removed member stays in the set (kernel: the set element holds the destination in
    /// the trash): `ip_vs_dest_set_min` skips it (not AVAILABLE), so wlc adds another; once
    /// the same destination is back, it is a member again.
    #[test]
    fn removed_member_stays_in_the_set_and_counts_again_when_back() {
        let mut ds = dests(&[1, 1]);
        let mut s = Lblcr::new();
        s.update(&ds);
        assert_eq!(s.schedule(&ds, &to_vip(), Instant::ZERO), Some(0));
        let a = ds.remove(0);
        s.update(&ds);
        assert_eq!(ids(&s.server_set(VIP)), [0]);
        assert!(s.holds(a.id));
        assert_eq!(s.schedule(&ds, &to_vip(), Instant::ZERO), Some(0));
        assert_eq!(ids(&s.server_set(VIP)), [1, 0], "B added, A kept");
        // A back at the head, idle; B loaded: set min picks A again.
        ds.insert(0, a);
        set_conns(&mut ds[1], 3, 0);
        s.update(&ds);
        assert_eq!(s.schedule(&ds, &to_vip(), Instant::ZERO), Some(0));
    }

    /// `ip_vs_dest_set_max` does not look at IP_VS_DEST_F_AVAILABLE: a removed member with
    /// weight and load is the one a stale set sheds.
    #[test]
    fn stale_set_may_shed_a_removed_member() {
        let mut ds = dests(&[1, 1]);
        let mut s = Lblcr::with_expiration(Duration::from_secs(100));
        s.update(&ds);
        let sched = |s: &mut Lblcr, ds: &[Dest], rm: &[Dest], t| {
            s.schedule_with_removed(ds, rm, &to_vip(), Instant::from_secs(t))
        };
        assert_eq!(sched(&mut s, &ds, &[], 0), Some(0));
        set_conns(&mut ds[0], 2, 0);
        assert_eq!(
            sched(&mut s, &ds, &[], 10),
            Some(1),
            "A overloaded: B added"
        );
        let a = ds.remove(0);
        s.update(&ds);
        // At 200 s the set [B, A] is stale: A (removed, 512) is the most loaded: shed.
        assert_eq!(sched(&mut s, &ds, std::slice::from_ref(&a), 200), Some(0));
        assert_eq!(ids(&s.server_set(VIP)), [1]);
        assert!(!s.holds(a.id));
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
