//! `mh`: Maglev hashing (`ip_vs_mh.c`, Eisenbud et al., NSDI'16 §3.4).
//!
//! Table of `M` slots (a prime; 4093 by default, `CONFIG_IP_VS_MH_TAB_INDEX = 12`). Each
//! destination gets a permutation `offset + j * skip (mod M)` with
//! `offset = h1(port + addr) % M` and `skip = h2(port + addr) % (M - 1) + 1`, where `h1`,
//! `h2` are the kernel's `hsiphash` with its fixed keys 2654435761 and 2654446892
//! (exactly, see [`super::hsiphash_u32`]; on 64-bit machines the kernel's hsiphash is
//! SipHash-1-3 truncated to 32 bits, and that is what is implemented).
//!
//! Population walks the destinations in list order, round after round; each takes
//! `turns = (last_weight / gcd) >> rshift` consecutive slots per round (at least 1 if its
//! `last_weight` is not 0), claiming the next free slot of its permutation, until all `M`
//! slots are taken. `rshift` keeps `max_weight / gcd` within `CONFIG / 2` = 6 bits. The
//! table uses `last_weight` (latest non-zero weight), so quiescing a destination
//! (weight 0) does not reshuffle the table; the quiesced destination's slots then give
//! `None`, or another destination with `mh-fallback`.
//!
//! Lookup: `h1(sport + saddr) % M` with `sport = 0` unless `mh-port` (SCHED2). With
//! `mh-fallback` (SCHED1), an unavailable slot (weight 0 or overloaded) is followed by
//! probes `h1(roffset + sport + saddr) % M` for `roffset = ihash, ihash + 1, ...` (mod M).
//!
//! # More destinations than slots
//!
//! `ip_vs_mh_reassign` refuses to rebuild the table when the service has more destinations
//! than slots (`-EINVAL`), and `ip_vs_mh_dest_changed` passes that on to
//! `__ip_vs_update_dest`, which ignores it: the destination is added (or edited, or
//! removed) and the **old table stays in force**, so scheduling never stops. Here the same:
//! [`Scheduler::update`] keeps the old table, re-pointing its slots at the same
//! destinations in the new list (the kernel's slots hold destination pointers, ours hold
//! list indices), and counts the refusal ([`Mh::refused_updates`], [`Mh::is_stale`]).
//! Destinations added since the last successful build get no slots. One deliberate
//! difference: a slot whose destination has since been removed is treated as unavailable
//! (skipped by `mh-fallback`, `None` without it); the kernel's `is_unavailable` looks only
//! at weight and OVERLOAD, so its stale slot would still hand out the removed destination.
//! When the scheduler is first bound to a service that already has too many destinations
//! (`ip_vs_mh_init_svc`), the kernel fails the command; [`crate::service::Service`] refuses
//! that scheduler change.

use super::{SchedFlags, SchedInput, Scheduler, gcd_positive, hsiphash_u32};
use crate::dest::Dest;
use crate::time::Instant;
use crate::types::{DestId, SchedulerKind};

/// Table sizes for `CONFIG_IP_VS_MH_TAB_INDEX` 8..=17.
pub const PRIMES: [u32; 10] = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
];
/// Kernel default `CONFIG_IP_VS_MH_TAB_INDEX`.
pub const DEFAULT_CONFIG_INDEX: u32 = 12;

const KEY1: [u64; 2] = [2_654_435_761, 2_654_435_761];
const KEY2: [u64; 2] = [2_654_446_892, 2_654_446_892];

/// Maglev lookup table.
#[derive(Debug, Clone)]
pub struct Mh {
    flags: SchedFlags,
    size: u32,
    tab_bits: u32,
    /// Index into the destination list per slot; `None` = empty. An index past the end of
    /// the list (a removed destination in a stale table) is unavailable.
    lookup: Box<[Option<u32>]>,
    /// The destination ids the slots' indices stand for, in list order, as of the last
    /// update (successful or not); used to re-point a stale table.
    ids: Vec<DestId>,
    /// Updates refused because there were more destinations than slots.
    refused: u64,
    /// Whether the table in force was built from an older destination list.
    stale: bool,
}

/// Slot value for a destination that left the list while the table was stale.
const GONE: u32 = u32::MAX;

#[inline]
fn mh_hash(addr: u32, port: u16, key: [u64; 2], offset: u32) -> u32 {
    hsiphash_u32(offset.wrapping_add(u32::from(port)).wrapping_add(addr), key)
}

impl Mh {
    /// Default table (4093 slots); `flags` selects `mh-fallback` / `mh-port`.
    pub fn new(flags: SchedFlags) -> Self {
        Self::with_config_index(flags, DEFAULT_CONFIG_INDEX)
    }

    /// Table for `CONFIG_IP_VS_MH_TAB_INDEX = index` (clamped to 8..=17).
    pub fn with_config_index(flags: SchedFlags, index: u32) -> Self {
        let index = index.clamp(8, 17);
        let size = PRIMES[(index - 8) as usize];
        Mh {
            flags,
            size,
            tab_bits: index / 2,
            lookup: vec![None; size as usize].into_boxed_slice(),
            ids: Vec::new(),
            refused: 0,
            stale: false,
        }
    }

    /// How many destination-list changes found more destinations than slots and left the
    /// old table in force (kernel `ip_vs_mh_reassign` returning `-EINVAL`).
    pub fn refused_updates(&self) -> u64 {
        self.refused
    }

    /// Whether the table in force was built from an older destination list (the last
    /// update was refused).
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Keeps the table, re-pointing each slot at its destination's index in `dests`.
    fn keep_stale(&mut self, dests: &[Dest]) {
        let pos: hashbrown::HashMap<DestId, u32> = dests
            .iter()
            .enumerate()
            .filter_map(|(i, d)| Some((d.id, u32::try_from(i).ok()?)))
            .collect();
        let old = core::mem::take(&mut self.ids);
        for slot in self.lookup.iter_mut().flatten() {
            let id = old.get(*slot as usize);
            *slot = id.and_then(|id| pos.get(id)).copied().unwrap_or(GONE);
        }
        self.ids = dests.iter().map(|d| d.id).collect();
        self.refused += 1;
        self.stale = true;
    }

    /// Number of slots.
    pub fn table_size(&self) -> u32 {
        self.size
    }

    /// Destination index per slot (for tests and diagnostics).
    pub fn slots(&self) -> &[Option<u32>] {
        &self.lookup
    }

    fn populate(&self, dests: &[Dest]) -> Box<[Option<u32>]> {
        let m = self.size;
        let mut lookup = vec![None; m as usize].into_boxed_slice();
        let gcd = gcd_positive(dests.iter().map(|d| d.last_weight));
        if gcd == 0 {
            return lookup;
        }
        let max = dests.iter().map(|d| d.last_weight).max().unwrap_or(0) / gcd;
        let fls = u32::BITS - max.leading_zeros();
        let rshift = fls.saturating_sub(self.tab_bits);

        struct Setup {
            perm: u32,
            skip: u32,
            turns: u32,
        }
        let mut setup: Vec<Setup> = dests
            .iter()
            .map(|d| {
                let addr = u32::from(d.addr);
                let lw = d.last_weight;
                let turns = (lw / gcd) >> rshift;
                Setup {
                    perm: mh_hash(addr, d.port, KEY1, 0) % m,
                    skip: mh_hash(addr, d.port, KEY2, 0) % (m - 1) + 1,
                    turns: if turns > 0 { turns } else { u32::from(lw != 0) },
                }
            })
            .collect();

        let mut used = vec![false; m as usize];
        let mut n = 0u32;
        let mut dt_count = 0u32;
        // gcd > 0 means some destination has turns >= 1, so each lap claims a slot.
        'fill: loop {
            for (p, ds) in setup.iter_mut().enumerate() {
                if ds.turns < 1 {
                    continue;
                }
                loop {
                    while used[ds.perm as usize] {
                        ds.perm += ds.skip;
                        if ds.perm >= m {
                            ds.perm -= m;
                        }
                    }
                    used[ds.perm as usize] = true;
                    lookup[ds.perm as usize] = u32::try_from(p).ok();
                    n += 1;
                    if n == m {
                        break 'fill;
                    }
                    dt_count += 1;
                    if dt_count >= ds.turns {
                        dt_count = 0;
                        break;
                    }
                }
            }
        }
        lookup
    }

    #[inline]
    fn slot(&self, dests: &[Dest], hash: u32) -> Result<usize, bool> {
        // Err(true): a destination that cannot take the connection (or one no longer in
        // the list); Err(false): empty.
        match self
            .lookup
            .get((hash % self.size) as usize)
            .copied()
            .flatten()
        {
            None => Err(false),
            Some(i) => match dests.get(i as usize) {
                Some(d) if d.is_eligible() => Ok(i as usize),
                Some(_) | None => Err(true),
            },
        }
    }
}

impl Scheduler for Mh {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Mh
    }

    fn update(&mut self, dests: &[Dest]) {
        if dests.len() > self.size as usize {
            self.keep_stale(dests);
            return;
        }
        self.lookup = self.populate(dests);
        self.ids = dests.iter().map(|d| d.id).collect();
        self.stale = false;
    }

    fn refused_updates(&self) -> u64 {
        self.refused
    }

    fn set_flags(&mut self, flags: SchedFlags) {
        self.flags = flags;
    }

    #[inline]
    fn schedule(&mut self, dests: &[Dest], input: &SchedInput, _now: Instant) -> Option<usize> {
        let saddr = u32::from(input.src);
        let port = if self.flags.port() { input.sport } else { 0 };
        let ihash = mh_hash(saddr, port, KEY1, 0) % self.size;
        match self.slot(dests, ihash) {
            Ok(i) => Some(i),
            Err(true) if self.flags.fallback() => {
                for offset in 0..self.size {
                    let roffset = (offset + ihash) % self.size;
                    match self.slot(dests, mh_hash(saddr, port, KEY1, roffset)) {
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
mod tests;
