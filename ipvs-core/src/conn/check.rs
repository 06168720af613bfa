//! Invariant checks and recomputed per-destination counts.
//!
//! [`ConnTable::check_invariants`] is O(entries); mutating methods run it automatically in
//! debug builds while the table holds at most [`super::DEBUG_CHECK_MAX_LEN`] entries (tests,
//! property tests), and never in release builds.

use std::collections::BTreeMap;

use super::entry::{ConnClass, Entry};
use super::table::ConnTable;
use super::tcp::TcpState;
use super::template::Status;
use crate::types::{DestId, Protocol};

/// A broken table invariant (a bug in this module, never a caller error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("connection table invariant: {0}")]
pub struct InvariantViolation(pub String);

fn fail<T>(msg: String) -> Result<T, InvariantViolation> {
    Err(InvariantViolation(msg))
}

/// Per-destination `[active, inactive, template]` counts.
pub type DestCounts = BTreeMap<DestId, [i64; 3]>;

impl ConnTable {
    /// Recounts, from the stored entries, what every destination's active, inactive and
    /// template counters must be (every stored entry counts, expired-but-unswept ones too:
    /// they have not been reported as removed yet).
    pub fn dest_counts(&self) -> DestCounts {
        let mut out = DestCounts::new();
        for e in self.conns.iter() {
            out.entry(e.dest()).or_default()[e.class().index()] += 1;
        }
        for s in &self.templates.slots {
            if s.status != Status::Free {
                out.entry(s.dest).or_default()[ConnClass::Template.index()] += 1;
            }
        }
        out
    }

    /// Checks every structural invariant:
    ///
    /// * bounds: `len() <= max_entries`;
    /// * each connection: valid state bits, a key found exactly once, a template reference
    ///   (if any) to an allocated slot;
    /// * each template's `n_control` equals the connections pointing at it;
    /// * the template index holds exactly the indexed slots, each findable by its key, keys
    ///   unique;
    /// * debug builds: the accounting events emitted so far sum, per destination, to
    ///   [`ConnTable::dest_counts`].
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        if self.len() > self.max_entries {
            return fail(format!("len {} > max {}", self.len(), self.max_entries));
        }
        let mut controlled = vec![0u32; self.templates.slots.len()];
        for e in self.conns.iter() {
            check_entry(e)?;
            let h = self.hasher.entry(e);
            let key = e.key();
            let same = self
                .conns
                .iter_hash(h)
                .filter(|x| x.matches_in(&key))
                .count();
            if same != 1 {
                return fail(format!("key {key:?} stored {same} times (or unreachable)"));
            }
            if let Some(s) = e.template_slot() {
                match self.templates.slots.get(s as usize) {
                    Some(t) if t.status != Status::Free => controlled[s as usize] += 1,
                    _ => return fail(format!("{key:?} points at free template slot {s}")),
                }
            }
        }
        let mut in_use = 0;
        let mut indexed = 0;
        for (i, t) in self.templates.slots.iter().enumerate() {
            if t.n_control != controlled[i] {
                return fail(format!(
                    "template slot {i}: n_control {} but {} connections",
                    t.n_control, controlled[i]
                ));
            }
            match t.status {
                Status::Free => continue,
                Status::Detached => {}
                Status::Indexed => {
                    indexed += 1;
                    let found = self.templates.find(&self.hasher, &t.key);
                    if found != u32::try_from(i).ok() {
                        return fail(format!("template slot {i} not found by key ({found:?})"));
                    }
                }
            }
            in_use += 1;
        }
        if in_use != self.templates.in_use {
            return fail(format!(
                "templates in use {} != counted {in_use}",
                self.templates.in_use
            ));
        }
        if indexed != self.templates.index.len() {
            return fail(format!(
                "template index has {} entries, {indexed} slots indexed",
                self.templates.index.len()
            ));
        }
        if let Some(ledger) = self.ledger.counts() {
            let actual = self.dest_counts();
            let nonzero = |m: &DestCounts| -> DestCounts {
                m.iter()
                    .filter(|(_, c)| **c != [0; 3])
                    .map(|(d, c)| (*d, *c))
                    .collect()
            };
            if nonzero(&ledger) != nonzero(&actual) {
                return fail(format!(
                    "reported accounting {ledger:?} != stored entries {actual:?}"
                ));
            }
        }
        Ok(())
    }
}

fn check_entry(e: &Entry) -> Result<(), InvariantViolation> {
    let st = e.raw_state_index();
    match e.proto() {
        Protocol::Tcp if st as usize >= TcpState::COUNT => {
            fail(format!("{:?}: bad TCP state {st}", e.key()))
        }
        Protocol::Udp if st != 0 => fail(format!("{:?}: UDP with state bits {st}", e.key())),
        _ => Ok(()),
    }
}
