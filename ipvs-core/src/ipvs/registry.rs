//! The service table plus what it forgets: connection accounting applied to destinations,
//! and the connections of **removed** destinations.
//!
//! The connection table stores a [`DestId`] per entry. A destination removed with
//! `ipvsadm -d` (or with its service) disappears from the [`ServiceTable`], but its
//! connections and templates stay in the connection table until they expire, exactly as the
//! kernel keeps them pointing at a destination in its "trash". The registry keeps, for every
//! removed destination that still has entries, a [`Detached`] record: which service and
//! address:port it was, and how many active / inactive / template entries still carry its
//! id. Accounting events for a detached id update that record; the record goes away with
//! its last entry.
//!
//! # Revival (the kernel's trash)
//!
//! Re-adding the same address:port to the same service revives the detached entries (kernel
//! `ip_vs_trash_get_dest`): the new destination has a new [`DestId`], so the record is
//! *aliased* to it (`revived_as`), its counts are bound on the new destination, and from then
//! on every event for the old id also moves the new destination's counters, and packets of
//! the old connections are forwarded to it. This is what `expire_nodest_conn = 0` exists
//! for: "a re-added real server can resume the connection". Removing the new destination
//! again hands its share back to the records it revived.
//!
//! Nothing here panics. An event that cannot be applied (a counter would underflow, an id
//! nobody knows) is counted (`accounting_errors`), which
//! [`super::Ipvs::check_invariants`] reports: it is a bug, never a caller error.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use hashbrown::HashMap;

use super::IpvsInvariantViolation;
use crate::conn::{self, Accounting};
use crate::service::{self, Dest, Service, ServiceKey, ServiceTable};
use crate::types::DestId;

/// What remains of a removed destination while connections or templates still carry its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detached {
    /// The service it belonged to.
    pub service: ServiceKey,
    /// Its address.
    pub addr: Ipv4Addr,
    /// Its port.
    pub port: u16,
    /// Port NAT replies come from; 0 = the connection's virtual port (see
    /// [`reply_port`]).
    pub reply_port: u16,
    /// Entries still carrying this id: `[active, inactive, template]`.
    pub counts: [u32; 3],
    /// The live destination this record was revived as, if the address:port was re-added.
    pub revived_as: Option<DestId>,
}

/// Where a stored [`DestId`] leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A live destination (possibly through a revival alias): `id` is the live one.
    Live {
        id: DestId,
        addr: Ipv4Addr,
        /// 0 = the connection's virtual port.
        port: u16,
    },
    /// A removed destination, not re-added.
    Gone { addr: Ipv4Addr, port: u16 },
}

/// The port replies of a connection to `dest` come from, and new connections are sent to;
/// 0 stands for "the connection's own virtual port".
///
/// Kernel rule (`ip_vs_schedule` / `ip_vs_sched_persist`): a non-persistent connection goes
/// to `dest->port`, or to the virtual port when that is 0; a persistent connection whose
/// virtual port differs from the service port (fwmark and port-0 services) keeps the
/// packet's port even when the destination has one.
pub fn reply_port(svc: &Service, dest: &Dest) -> u16 {
    let svc_port = match svc.key() {
        ServiceKey::Inet { port, .. } => port,
        ServiceKey::Fwmark(_) => 0,
    };
    if svc.persistence().is_some() && svc_port == 0 {
        0
    } else {
        dest.port()
    }
}

fn class_of(c: conn::ConnClass) -> service::ConnClass {
    match c {
        conn::ConnClass::Active => service::ConnClass::Active,
        conn::ConnClass::Inactive => service::ConnClass::Inactive,
        conn::ConnClass::Template => service::ConnClass::Template,
    }
}

/// Applies `ev` to a `[active, inactive, template]` tally; `false` (and no change) if a
/// counter would underflow or overflow.
fn step(counts: &mut [u32; 3], ev: Accounting) -> bool {
    let mut next = *counts;
    if let Some(f) = ev.from {
        match next[f.index()].checked_sub(1) {
            Some(v) => next[f.index()] = v,
            None => return false,
        }
    }
    if let Some(t) = ev.to {
        match next[t.index()].checked_add(1) {
            Some(v) => next[t.index()] = v,
            None => return false,
        }
    }
    *counts = next;
    true
}

/// Services plus detached destinations; the one place accounting is applied.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) services: ServiceTable,
    pub(crate) detached: HashMap<DestId, Detached>,
    pub(crate) accounting_errors: u64,
}

impl Registry {
    /// Applies one counter change from the connection table.
    pub(crate) fn apply(&mut self, ev: Accounting) {
        let mut live = Some(ev.dest);
        if let Some(det) = self.detached.get_mut(&ev.dest) {
            if !step(&mut det.counts, ev) {
                self.accounting_errors += 1;
                return;
            }
            live = det.revived_as;
            if det.counts == [0; 3] {
                self.detached.remove(&ev.dest);
            }
        }
        if let Some(id) = live
            && self.apply_live(id, ev).is_err()
        {
            self.accounting_errors += 1;
        }
    }

    fn apply_live(&mut self, id: DestId, ev: Accounting) -> Result<(), service::ServiceError> {
        let s = &mut self.services;
        match (ev.from, ev.to) {
            (None, Some(to)) => s.bind(id, class_of(to)),
            (Some(from), None) => s.unbind(id, class_of(from)),
            (Some(from), Some(to)) if from == to => Ok(()),
            (Some(from), Some(to)) => {
                // Only connections change class, between active and inactive.
                if from == conn::ConnClass::Template || to == conn::ConnClass::Template {
                    return Err(service::ServiceError::NoSuchDest(id));
                }
                s.state_changed(
                    id,
                    from == conn::ConnClass::Active,
                    to == conn::ConnClass::Active,
                )
            }
            (None, None) => Ok(()),
        }
    }

    /// Where a stored id leads.
    pub(crate) fn target(&self, id: DestId) -> Option<Target> {
        if let Some(det) = self.detached.get(&id) {
            return match det.revived_as {
                Some(live) => self.live_target(live),
                None => Some(Target::Gone {
                    addr: det.addr,
                    port: det.reply_port,
                }),
            };
        }
        self.live_target(id)
    }

    fn live_target(&self, id: DestId) -> Option<Target> {
        let (svc, d) = self.services.dest_with_service(id)?;
        Some(Target::Live {
            id,
            addr: d.addr(),
            port: reply_port(svc, d),
        })
    }

    /// The address and port NAT replies of a connection to `id` come from (port 0 = the
    /// connection's virtual port); removed destinations included, as in the kernel, where
    /// replies of a removed destination's connections are still translated.
    pub(crate) fn reply_addr(&self, id: DestId) -> Option<(Ipv4Addr, u16)> {
        match self.target(id)? {
            Target::Live { addr, port, .. } | Target::Gone { addr, port } => Some((addr, port)),
        }
    }

    /// The live destination a template's stored id leads to, if it is in service `svc`:
    /// `(live id, weight)`.
    pub(crate) fn live_in_service(&self, id: DestId, svc: &ServiceKey) -> Option<(DestId, u32)> {
        let live = match self.detached.get(&id) {
            Some(det) => det.revived_as?,
            None => id,
        };
        let (s, d) = self.services.dest_with_service(live)?;
        (s.key() == *svc).then_some((live, d.weight()))
    }

    /// Records a destination just removed from service `svc_key` (whose last counters are in
    /// `dest`); `reply_port` as computed while the service still knew it.
    pub(crate) fn detach(&mut self, svc_key: ServiceKey, dest: &Dest, reply_port: u16) {
        let mut counts = [
            dest.active_conns(),
            dest.inactive_conns(),
            dest.persist_conns(),
        ];
        // Entries of older records this destination had revived stay with those records.
        for det in self.detached.values_mut() {
            if det.revived_as == Some(dest.id()) {
                det.revived_as = None;
                for (c, d) in counts.iter_mut().zip(det.counts) {
                    match c.checked_sub(d) {
                        Some(v) => *c = v,
                        None => {
                            *c = 0;
                            self.accounting_errors += 1;
                        }
                    }
                }
            }
        }
        if counts != [0; 3] {
            self.detached.insert(
                dest.id(),
                Detached {
                    service: svc_key,
                    addr: dest.addr(),
                    port: dest.port(),
                    reply_port,
                    counts,
                    revived_as: None,
                },
            );
        }
    }

    /// Records every destination of a removed service.
    pub(crate) fn detach_service(&mut self, svc: &Service) {
        for d in svc.dests() {
            self.detach(svc.key(), d, reply_port(svc, d));
        }
    }

    /// A destination `live` was just added at `addr:port` to service `svc_key`: revive the
    /// records of earlier destinations at the same place, binding their entries on it.
    pub(crate) fn revive(&mut self, svc_key: ServiceKey, live: DestId, addr: Ipv4Addr, port: u16) {
        let mut binds = [0u32; 3];
        for det in self.detached.values_mut() {
            if det.revived_as.is_none()
                && det.service == svc_key
                && det.addr == addr
                && det.port == port
            {
                det.revived_as = Some(live);
                for (b, c) in binds.iter_mut().zip(det.counts) {
                    *b = b.saturating_add(c);
                }
            }
        }
        let classes = [
            service::ConnClass::Active,
            service::ConnClass::Inactive,
            service::ConnClass::Template,
        ];
        for (class, n) in classes.into_iter().zip(binds) {
            for _ in 0..n {
                if self.services.bind(live, class).is_err() {
                    self.accounting_errors += 1;
                }
            }
        }
    }

    /// Checks that every destination's counters equal what the connection table holds for
    /// it (`stored`, from [`conn::ConnTable::dest_counts`]), through detached records and
    /// revival aliases.
    pub(crate) fn check(&self, stored: &conn::DestCounts) -> Result<(), IpvsInvariantViolation> {
        let fail = |m: String| Err(IpvsInvariantViolation::Accounting(m));
        if self.accounting_errors != 0 {
            return fail(format!(
                "{} accounting events could not be applied",
                self.accounting_errors
            ));
        }
        let mut expected: BTreeMap<DestId, [i64; 3]> = BTreeMap::new();
        let add = |m: &mut BTreeMap<DestId, [i64; 3]>, id: DestId, c: &[i64; 3]| {
            let e = m.entry(id).or_default();
            for (x, y) in e.iter_mut().zip(c) {
                *x += *y;
            }
        };
        for (&id, c) in stored {
            if *c == [0; 3] {
                continue;
            }
            if let Some(det) = self.detached.get(&id) {
                let held = det.counts.map(i64::from);
                if held != *c {
                    return fail(format!(
                        "removed destination {id:?}: record {held:?}, table {c:?}"
                    ));
                }
                if let Some(live) = det.revived_as {
                    add(&mut expected, live, c);
                }
            } else if self.services.dest(id).is_some() {
                add(&mut expected, id, c);
            } else {
                return fail(format!("{c:?} entries point at unknown destination {id:?}"));
            }
        }
        for (&id, det) in &self.detached {
            if det.counts == [0; 3] || stored.get(&id).is_none_or(|c| *c == [0; 3]) {
                return fail(format!("stale record for removed destination {id:?}"));
            }
            if self.services.dest(id).is_some() {
                return fail(format!("{id:?} is both live and removed"));
            }
            if let Some(live) = det.revived_as {
                let ok = self.services.dest_with_service(live).is_some_and(|(s, d)| {
                    s.key() == det.service && d.addr() == det.addr && d.port() == det.port
                });
                if !ok {
                    return fail(format!("{id:?} revived as {live:?}, which does not match"));
                }
            }
        }
        for svc in self.services.iter() {
            for d in svc.dests() {
                let want = expected.get(&d.id()).copied().unwrap_or_default();
                let have = [
                    i64::from(d.active_conns()),
                    i64::from(d.inactive_conns()),
                    i64::from(d.persist_conns()),
                ];
                if want != have {
                    return fail(format!(
                        "{} {}:{} ({:?}): counters [active, inactive, persist] {have:?}, \
                         connection table {want:?}",
                        svc.key(),
                        d.addr(),
                        d.port(),
                        d.id()
                    ));
                }
            }
        }
        Ok(())
    }
}
