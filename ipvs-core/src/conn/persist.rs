//! Template operations of [`ConnTable`] (persistence, kernel `ip_vs_sched_persist` side).
//!
//! The glue's persistent path is: [`ConnTable::lookup_template`]; if it hits, check that the
//! destination is still usable (available, and not weight 0 when
//! `expire_quiescent_template` is on) and either use `info.dest` or
//! [`ConnTable::invalidate_template`] and schedule afresh; on a miss schedule and
//! [`ConnTable::insert_template`]. Then insert the connection with
//! `NewConn::template = Some(id)`, which refreshes the template.

use core::time::Duration;

use super::ConnError;
use super::entry::{Accounting, ConnClass};
use super::table::ConnTable;
use super::template::{Slot, Status, TemplateId, TemplateKey};
use super::timeouts::{
    MAX_TIMEOUT_SECS, TICK_MS, deadline_instant, deadline_tick, is_due, now_tick, secs_to_ticks,
};
use crate::time::Instant;
use crate::types::DestId;

/// Everything the table knows about one template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateInfo {
    /// Handle, for [`super::NewConn::template`].
    pub id: TemplateId,
    /// Key.
    pub key: TemplateKey,
    /// The destination the client group sticks to.
    pub dest: DestId,
    /// Current deadline (10 ms resolution). May lie in the past while the template still
    /// controls connections and the next sweep has not re-armed it yet.
    pub expires: Instant,
    /// Persistence timeout the template is refreshed to.
    pub timeout: Duration,
    /// Connections it controls (kernel `n_control`).
    pub n_control: u32,
    /// Taken out of the index by [`ConnTable::invalidate_template`]; kept only for the
    /// connections it still controls.
    pub invalidated: bool,
}

/// Result of [`ConnTable::insert_template`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateInserted {
    /// The new template.
    pub id: TemplateId,
    /// Counter change (`PersistConn` + 1 on the destination).
    pub created: Accounting,
    /// Counter change for an expired, not yet swept template with the same key that was
    /// replaced.
    pub replaced: Option<Accounting>,
}

fn timeout_ticks(timeout: Duration) -> u32 {
    let max = secs_to_ticks(MAX_TIMEOUT_SECS);
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    u32::try_from(ms.div_ceil(TICK_MS)).map_or(max, |t| t.min(max))
}

/// Whether a stored (not free) template is live at tick `nt`.
pub(crate) fn slot_is_live(s: &Slot, nt: u32) -> bool {
    s.status == Status::Indexed && (s.n_control > 0 || !is_due(s.expires, nt))
}

impl ConnTable {
    fn template_info(&self, slot: u32, now: Instant) -> TemplateInfo {
        let s = &self.templates.slots[slot as usize];
        TemplateInfo {
            id: self.templates.id_of(slot),
            key: s.key,
            dest: s.dest,
            expires: deadline_instant(s.expires, now),
            timeout: Duration::from_millis(u64::from(s.timeout_ticks) * TICK_MS),
            n_control: s.n_control,
            invalidated: s.status == Status::Detached,
        }
    }

    /// The live template for `key`, without refreshing it. A template whose deadline passed
    /// is still returned while it controls connections (the kernel re-arms it).
    pub fn lookup_template(&self, now: Instant, key: &TemplateKey) -> Option<TemplateInfo> {
        let nt = now_tick(now);
        let slot = self.templates.find(&self.hasher, key)?;
        slot_is_live(&self.templates.slots[slot as usize], nt)
            .then(|| self.template_info(slot, now))
    }

    /// The template `id` names, live or invalidated; `None` for a stale handle.
    pub fn template(&self, now: Instant, id: TemplateId) -> Option<TemplateInfo> {
        self.templates.resolve(id)?;
        Some(self.template_info(id.slot, now))
    }

    /// Creates a template binding `key` to `dest` for `timeout` (the service's persistence
    /// timeout, capped at 31 days). Fails with [`ConnError::TemplateExists`] if a live
    /// template has this key, [`ConnError::TableFull`] at the bound (templates count against
    /// it, as in the kernel), [`ConnError::TemplateSlotsExhausted`] past 2^24 - 1 templates.
    pub fn insert_template(
        &mut self,
        now: Instant,
        key: TemplateKey,
        dest: DestId,
        timeout: Duration,
    ) -> Result<TemplateInserted, ConnError> {
        let nt = now_tick(now);
        let mut replaced = None;
        if let Some(slot) = self.templates.find(&self.hasher, &key) {
            if slot_is_live(&self.templates.slots[slot as usize], nt) {
                return Err(ConnError::TemplateExists {
                    id: self.templates.id_of(slot),
                });
            }
            // Expired and controls nothing: the sweep would have removed it.
            let old = self.templates.free(&self.hasher, slot);
            self.expired += 1;
            replaced = Some(self.ledger.record(Accounting {
                dest: old,
                from: Some(ConnClass::Template),
                to: None,
            }));
        }
        // Replacing a stale template frees its room, so only a brand-new key can be refused.
        if replaced.is_none() && self.len() >= self.max_entries {
            self.refused_full += 1;
            return Err(ConnError::TableFull {
                max: self.max_entries,
            });
        }
        if !self.templates.has_room() {
            return Err(ConnError::TemplateSlotsExhausted);
        }
        let ticks = timeout_ticks(timeout);
        let hasher = self.hasher;
        let slot = self
            .templates
            .insert(&hasher, key, dest, deadline_tick(now, ticks), ticks);
        let created = self.ledger.record(Accounting {
            dest,
            from: None,
            to: Some(ConnClass::Template),
        });
        self.debug_check();
        Ok(TemplateInserted {
            id: self.templates.id_of(slot),
            created,
            replaced,
        })
    }

    /// Restarts a template's timeout (done automatically when a connection is inserted under
    /// it). [`ConnError::UnknownTemplate`] for a stale handle.
    pub fn touch_template(&mut self, now: Instant, id: TemplateId) -> Result<(), ConnError> {
        let s = self
            .templates
            .resolve_mut(id)
            .ok_or(ConnError::UnknownTemplate { id })?;
        s.expires = deadline_tick(now, s.timeout_ticks);
        Ok(())
    }

    /// Invalidates a template (its destination is gone or quiesced): lookups miss it from
    /// now on and a new template may take its key; it is removed by the next sweep once it
    /// controls no connection. [`ConnError::UnknownTemplate`] for a stale handle.
    pub fn invalidate_template(&mut self, id: TemplateId) -> Result<(), ConnError> {
        self.templates
            .resolve(id)
            .ok_or(ConnError::UnknownTemplate { id })?;
        let hasher = self.hasher;
        self.templates.detach(&hasher, id.slot);
        self.debug_check();
        Ok(())
    }

    /// Every stored template that is live or invalidated-but-controlling, in slab order.
    pub fn templates(&self, now: Instant) -> impl Iterator<Item = TemplateInfo> + '_ {
        let nt = now_tick(now);
        self.templates
            .slots
            .iter()
            .enumerate()
            .filter(move |(_, s)| match s.status {
                Status::Free => false,
                Status::Indexed => slot_is_live(s, nt),
                Status::Detached => s.n_control > 0,
            })
            .map(move |(i, _)| {
                self.template_info(u32::try_from(i).expect("slab bounded by 2^24"), now)
            })
    }
}
