//! The fourteen kernel schedulers, one file each, behind one [`Scheduler`] trait and a
//! closed [`Sched`] enum (static dispatch, no allocation on the scheduling path).
//!
//! Each file follows its kernel counterpart `net/netfilter/ipvs/ip_vs_<name>.c`: same
//! eligibility rule (weight > 0 and OVERLOAD clear, see [`Dest::is_eligible`]), same
//! integer cross-multiplication instead of division, same walk over the destinations in
//! list order and the same tie-breaking. Differences are stated in each file's docs.
//!
//! # Contract
//!
//! - `update(dests)` is called after every change to the destination list (add, edit,
//!   remove; the kernel's `add_dest`/`upd_dest`/`del_dest` hooks). Schedulers with lookup
//!   tables (dh, sh, mh) or cursors (rr, wrr) rebuild them there and swap them in whole;
//!   the scheduling path only reads them. An update may be refused (mh with more
//!   destinations than slots, like the kernel's `ip_vs_mh_reassign`): the old table then
//!   stays in force and [`Scheduler::refused_updates`] counts it.
//! - `schedule(dests, input, now)` gets the same slice that was last passed to `update`,
//!   with possibly different counters/OVERLOAD flags, and returns an index into it. It
//!   never allocates except in lblc/lblcr, whose caches grow by one entry per new
//!   destination address (as the kernel's do) and are trimmed by their garbage collection.
//! - Sans-IO: time comes in as `now`; the only randomness (`twos`) comes from the seed
//!   given to [`new`].
//! - Nothing panics, even if a caller passes a slice that does not match the last
//!   `update`: stale table entries are bounds-checked and yield `None`.

mod dh;
mod fo;
mod hash;
mod lblc;
mod lblcr;
mod lc;
mod locality;
mod mh;
mod nq;
mod ovf;
mod rr;
mod sed;
mod sh;
mod twos;
mod wlc;
mod wrr;

#[cfg(test)]
mod testutil;

pub use dh::Dh;
pub use fo::Fo;
pub use hash::{hash_32, hsiphash_u32};
pub use lblc::Lblc;
pub use lblcr::Lblcr;
pub use lc::Lc;
pub use mh::Mh;
pub use nq::Nq;
pub use ovf::Ovf;
pub use rr::Rr;
pub use sed::Sed;
pub use sh::Sh;
pub use twos::Twos;
pub use wlc::Wlc;
pub use wrr::Wrr;

use std::net::Ipv4Addr;

use crate::dest::Dest;
use crate::time::Instant;
use crate::types::{DestId, SchedFlag, SchedulerKind};

/// What a scheduler may look at in the packet that opens a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SchedInput {
    /// Client address.
    pub src: Ipv4Addr,
    /// Client port.
    pub sport: u16,
    /// Virtual address the client connected to.
    pub dst: Ipv4Addr,
    /// Virtual port.
    pub dport: u16,
}

/// The kernel's `IP_VS_SVC_F_SCHED1..3` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SchedFlags(u8);

impl SchedFlags {
    /// No flags.
    pub const NONE: SchedFlags = SchedFlags(0);

    /// Folds ipvsadm flags into the three kernel bits.
    pub fn from_flags(flags: &[SchedFlag]) -> Self {
        SchedFlags(flags.iter().fold(0, |acc, f| acc | (1 << (f.bit() - 1))))
    }

    /// SCHED1: `sh-fallback` / `mh-fallback` / `flag-1`.
    pub const fn fallback(self) -> bool {
        self.0 & 1 != 0
    }

    /// SCHED2: `sh-port` / `mh-port` / `flag-2`.
    pub const fn port(self) -> bool {
        self.0 & 2 != 0
    }

    /// SCHED3: `flag-3` (no kernel scheduler uses it).
    pub const fn sched3(self) -> bool {
        self.0 & 4 != 0
    }
}

/// A scheduler: picks a destination for each new connection.
pub trait Scheduler: Send + core::fmt::Debug {
    /// Which scheduler this is.
    fn kind(&self) -> SchedulerKind;

    /// The destination list changed (add, edit or remove): rebuild derived state.
    fn update(&mut self, dests: &[Dest]);

    /// Picks a destination; returns its index in `dests`, or `None` when none is available.
    fn schedule(&mut self, dests: &[Dest], input: &SchedInput, now: Instant) -> Option<usize>;

    /// Scheduler flags changed without a scheduler change.
    fn set_flags(&mut self, _flags: SchedFlags) {}

    /// Earliest time housekeeping is due, if any.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Runs housekeeping due at `now`.
    fn handle_timeout(&mut self, _dests: &[Dest], _now: Instant) {}

    /// As [`Scheduler::schedule`], also given the service's **removed** destinations (in
    /// the trash) that cached state may still refer to. Only lblcr looks at them: its
    /// `ip_vs_dest_set_max` weighs a removed member like any other. Never returns an index
    /// into `removed`.
    fn schedule_with_removed(
        &mut self,
        dests: &[Dest],
        _removed: &[Dest],
        input: &SchedInput,
        now: Instant,
    ) -> Option<usize> {
        self.schedule(dests, input, now)
    }

    /// Whether the scheduler's state refers to destination `id` (lblc/lblcr cache entries,
    /// which in the kernel hold a reference that keeps a removed destination in the trash).
    fn holds(&self, _id: DestId) -> bool {
        false
    }

    /// How many [`Scheduler::update`] calls were refused, leaving the previous lookup
    /// table in force (only `mh` refuses: more destinations than slots,
    /// `ip_vs_mh_reassign`).
    fn refused_updates(&self) -> u64 {
        0
    }
}

/// Every scheduler, as one enum (what [`new`] returns).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per service; boxing would add a pointer chase
pub enum Sched {
    /// Round robin.
    Rr(Rr),
    /// Weighted round robin.
    Wrr(Wrr),
    /// Least connection.
    Lc(Lc),
    /// Weighted least connection.
    Wlc(Wlc),
    /// Shortest expected delay.
    Sed(Sed),
    /// Never queue.
    Nq(Nq),
    /// Locality-based least connection.
    Lblc(Lblc),
    /// Locality-based least connection with replication.
    Lblcr(Lblcr),
    /// Destination hashing.
    Dh(Dh),
    /// Source hashing.
    Sh(Sh),
    /// Maglev hashing.
    Mh(Mh),
    /// Weighted fail-over.
    Fo(Fo),
    /// Weighted overflow.
    Ovf(Ovf),
    /// Power of two choices.
    Twos(Twos),
}

/// Builds a scheduler with no destinations yet (call [`Scheduler::update`] before use).
/// `flags` matter to sh and mh; `seed` to twos.
pub fn new(kind: SchedulerKind, flags: &[SchedFlag], seed: u64) -> Sched {
    let flags = SchedFlags::from_flags(flags);
    match kind {
        SchedulerKind::Rr => Sched::Rr(Rr::new()),
        SchedulerKind::Wrr => Sched::Wrr(Wrr::new()),
        SchedulerKind::Lc => Sched::Lc(Lc),
        SchedulerKind::Wlc => Sched::Wlc(Wlc),
        SchedulerKind::Sed => Sched::Sed(Sed),
        SchedulerKind::Nq => Sched::Nq(Nq),
        SchedulerKind::Lblc => Sched::Lblc(Lblc::new()),
        SchedulerKind::Lblcr => Sched::Lblcr(Lblcr::new()),
        SchedulerKind::Dh => Sched::Dh(Dh::new()),
        SchedulerKind::Sh => Sched::Sh(Sh::new(flags)),
        SchedulerKind::Mh => Sched::Mh(Mh::new(flags)),
        SchedulerKind::Fo => Sched::Fo(Fo),
        SchedulerKind::Ovf => Sched::Ovf(Ovf),
        SchedulerKind::Twos => Sched::Twos(Twos::new(seed)),
    }
}

macro_rules! dispatch {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Sched::Rr($s) => $e,
            Sched::Wrr($s) => $e,
            Sched::Lc($s) => $e,
            Sched::Wlc($s) => $e,
            Sched::Sed($s) => $e,
            Sched::Nq($s) => $e,
            Sched::Lblc($s) => $e,
            Sched::Lblcr($s) => $e,
            Sched::Dh($s) => $e,
            Sched::Sh($s) => $e,
            Sched::Mh($s) => $e,
            Sched::Fo($s) => $e,
            Sched::Ovf($s) => $e,
            Sched::Twos($s) => $e,
        }
    };
}

impl Scheduler for Sched {
    fn kind(&self) -> SchedulerKind {
        dispatch!(self, s => s.kind())
    }
    fn update(&mut self, dests: &[Dest]) {
        dispatch!(self, s => s.update(dests))
    }
    #[inline]
    fn schedule(&mut self, dests: &[Dest], input: &SchedInput, now: Instant) -> Option<usize> {
        dispatch!(self, s => s.schedule(dests, input, now))
    }
    fn set_flags(&mut self, flags: SchedFlags) {
        dispatch!(self, s => s.set_flags(flags))
    }
    fn poll_timeout(&self) -> Option<Instant> {
        dispatch!(self, s => s.poll_timeout())
    }
    fn handle_timeout(&mut self, dests: &[Dest], now: Instant) {
        dispatch!(self, s => s.handle_timeout(dests, now))
    }
    fn refused_updates(&self) -> u64 {
        dispatch!(self, s => s.refused_updates())
    }
    #[inline]
    fn schedule_with_removed(
        &mut self,
        dests: &[Dest],
        removed: &[Dest],
        input: &SchedInput,
        now: Instant,
    ) -> Option<usize> {
        dispatch!(self, s => s.schedule_with_removed(dests, removed, input, now))
    }
    fn holds(&self, id: DestId) -> bool {
        dispatch!(self, s => s.holds(id))
    }
}

/// Greatest common divisor of the positive values, 0 if none is positive.
pub(crate) fn gcd_positive(values: impl Iterator<Item = u32>) -> u32 {
    fn gcd(mut a: u32, mut b: u32) -> u32 {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }
    values
        .filter(|&w| w > 0)
        .fold(0, |g, w| if g == 0 { w } else { gcd(g, w) })
}

/// The weighted-least-connection pick shared by wlc, lblc and lblcr
/// (`ip_vs_wlc_schedule`, `__ip_vs_lblc_schedule`, `__ip_vs_lblcr_schedule`): the first
/// eligible destination starts as the minimum; every later non-overloaded destination
/// replaces it when `loh * w_d > doh * w_least` (strictly), so ties keep the earlier one.
/// A later weight-0 destination can never win that comparison, so it needs no check.
#[inline]
pub(crate) fn wlc_pick(dests: &[Dest]) -> Option<usize> {
    let first = dests.iter().position(Dest::is_eligible)?;
    let mut least = first;
    let mut loh = dests[first].overhead();
    let mut lw = u64::from(dests[first].weight);
    for (i, d) in dests.iter().enumerate().skip(first + 1) {
        if d.overloaded {
            continue;
        }
        let doh = d.overhead();
        // 64-bit: overhead < 2^41 and weight < 2^16, so the products fit.
        if loh * u64::from(d.weight) > doh * lw {
            least = i;
            loh = doh;
            lw = u64::from(d.weight);
        }
    }
    Some(least)
}

/// lblc/lblcr's "is overloaded" test (distinct from the OVERLOAD flag): the destination
/// has more active connections than its weight **and** some destination in the service
/// (any, even quiesced or flagged) has `active * 2 < weight`.
pub(crate) fn locality_overloaded(dest: &Dest, dests: &[Dest]) -> bool {
    dest.active_conns > dest.weight
        && dests
            .iter()
            .any(|d| u64::from(d.active_conns) * 2 < u64::from(d.weight))
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn flags_fold_to_kernel_bits() {
        let f = SchedFlags::from_flags(&[SchedFlag::ShFallback]);
        assert!(f.fallback() && !f.port() && !f.sched3());
        let f = SchedFlags::from_flags(&[SchedFlag::MhPort, SchedFlag::Flag3]);
        assert!(!f.fallback() && f.port() && f.sched3());
        assert_eq!(SchedFlags::from_flags(&[]), SchedFlags::NONE);
    }

    #[test]
    fn gcd_ignores_zero_weights() {
        assert_eq!(gcd_positive([4, 0, 6, 10].into_iter()), 2);
        assert_eq!(gcd_positive([0, 0].into_iter()), 0);
        assert_eq!(gcd_positive([7].into_iter()), 7);
    }

    #[test]
    fn every_kind_builds_and_reports_its_kind() {
        let ds = dests(&[1, 2, 3]);
        for kind in SchedulerKind::ALL {
            let mut s = new(kind, &[], 1);
            assert_eq!(s.kind(), kind);
            s.update(&ds);
            let got = s.schedule(&ds, &input(1, 1), Instant::ZERO);
            assert!(got.is_some_and(|i| i < ds.len()), "{kind}: {got:?}");
            s.update(&[]);
            assert_eq!(s.schedule(&[], &input(1, 1), Instant::ZERO), None, "{kind}");
        }
    }

    #[test]
    fn stale_slice_never_panics() {
        // update() with 5 dests, then schedule with a shorter slice: must not panic.
        let big = dests(&[1, 1, 1, 1, 1]);
        let small = dests(&[1]);
        for kind in SchedulerKind::ALL {
            let mut s = new(kind, &[SchedFlag::Flag1], 9);
            s.update(&big);
            for k in 0..300 {
                let r = s.schedule(&small, &input(k, k as u16), Instant::from_secs(k.into()));
                assert!(r.is_none_or(|i| i < small.len()), "{kind}");
            }
        }
    }
}
