//! `rr`: round robin (`ip_vs_rr.c`).
//!
//! The cursor is the last destination picked, or the list head. Scheduling walks the list
//! cyclically from the entry after the cursor and returns the first eligible destination;
//! the cursor itself is checked last. With the cursor at the head, one pass is made.
//!
//! The kernel's cursor is a pointer, so adding destinations does not move it; deleting the
//! destination under it moves it to the previous entry (or the head), as
//! `ip_vs_rr_del_dest` does. Here the cursor is an index, remapped in `update` by
//! destination id to the same effect.

use super::{SchedInput, Scheduler};
use crate::dest::Dest;
use crate::time::Instant;
use crate::types::{DestId, SchedulerKind};

/// Round-robin state.
#[derive(Debug, Clone, Default)]
pub struct Rr {
    /// Index of the last pick; `None` = list head.
    cursor: Option<usize>,
    /// Destination ids as of the last `update`, to remap the cursor.
    ids: Vec<DestId>,
}

impl Rr {
    /// Cursor at the list head.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Scheduler for Rr {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Rr
    }

    fn update(&mut self, dests: &[Dest]) {
        let find = |id: DestId| dests.iter().position(|d| d.id == id);
        self.cursor = match self.cursor {
            None => None,
            Some(c) => match self.ids.get(c).copied().and_then(find) {
                Some(i) => Some(i),
                // The cursor's destination is gone: nearest earlier survivor, else head.
                None => self.ids[..c.min(self.ids.len())]
                    .iter()
                    .rev()
                    .find_map(|&id| find(id)),
            },
        };
        self.ids = dests.iter().map(|d| d.id).collect();
    }

    #[inline]
    fn schedule(&mut self, dests: &[Dest], _input: &SchedInput, _now: Instant) -> Option<usize> {
        let n = dests.len();
        let found = match self.cursor.filter(|&c| c < n) {
            None => dests.iter().position(Dest::is_eligible),
            Some(c) => dests[c + 1..]
                .iter()
                .position(Dest::is_eligible)
                .map(|i| c + 1 + i)
                .or_else(|| dests[..=c].iter().position(Dest::is_eligible)),
        };
        if found.is_some() {
            self.cursor = found;
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn cycles_in_list_order_skipping_ineligible() {
        let mut ds = dests(&[1, 5, 0, 1]);
        let mut s = Rr::new();
        s.update(&ds);
        // Weight is ignored except 0 (index 2 quiesced).
        let got: Vec<_> = picks(&mut s, &ds, 7).into_iter().flatten().collect();
        assert_eq!(got, [0, 1, 3, 0, 1, 3, 0]);
        // Cursor at 0. Overload 1: next picks skip it.
        ds[1].overloaded = true;
        let got: Vec<_> = picks(&mut s, &ds, 3).into_iter().flatten().collect();
        assert_eq!(got, [3, 0, 3]);
    }

    #[test]
    fn single_eligible_dest_is_picked_again_and_none_when_all_out() {
        let mut ds = dests(&[0, 1, 0]);
        let mut s = Rr::new();
        s.update(&ds);
        assert_eq!(picks(&mut s, &ds, 3), [Some(1), Some(1), Some(1)]);
        ds[1].weight = 0;
        assert_eq!(picks(&mut s, &ds, 1), [None]);
        ds[1].weight = 1;
        assert_eq!(picks(&mut s, &ds, 1), [Some(1)], "cursor kept on failure");
    }

    #[test]
    fn delete_under_cursor_moves_to_previous_entry() {
        let ds = dests(&[1, 1, 1, 1]); // ids 0..3
        let mut s = Rr::new();
        s.update(&ds);
        assert_eq!(picks(&mut s, &ds, 3), [Some(0), Some(1), Some(2)]);
        // Remove id 2 (the cursor). The kernel's cursor becomes id 1, so id 3 is next.
        let ds2: Vec<_> = ds.iter().filter(|d| d.id != DestId(2)).cloned().collect();
        s.update(&ds2);
        assert_eq!(ds2[2].id, DestId(3));
        assert_eq!(picks(&mut s, &ds2, 2), [Some(2), Some(0)]);
    }

    #[test]
    fn delete_first_under_cursor_goes_to_head_and_add_keeps_cursor() {
        let ds = dests(&[1, 1, 1]);
        let mut s = Rr::new();
        s.update(&ds);
        assert_eq!(picks(&mut s, &ds, 1), [Some(0)]);
        let ds2: Vec<_> = ds[1..].to_vec();
        s.update(&ds2);
        assert_eq!(picks(&mut s, &ds2, 1), [Some(0)], "from head: first entry");
        assert_eq!(ds2[0].id, DestId(1));
        // Add a new dest at the head (kernel list_add): cursor stays on id 1.
        let mut ds3 = vec![dest_at(9, std::net::Ipv4Addr::new(10, 0, 0, 9), 1)];
        ds3.extend(ds2.iter().cloned());
        s.update(&ds3);
        let got: Vec<_> = picks(&mut s, &ds3, 3)
            .into_iter()
            .flatten()
            .map(|i| ds3[i].id.0)
            .collect();
        assert_eq!(got, [2, 9, 1]);
    }
}
