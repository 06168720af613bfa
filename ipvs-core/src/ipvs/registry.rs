//! The service table plus connection accounting applied to destinations, live or removed.
//!
//! The connection table stores a [`DestId`] per entry. A destination removed with
//! `ipvsadm -d` (or with its service) goes to the [`ServiceTable`]'s trash with its id, its
//! counters and its flags, exactly as the kernel keeps it while connections point at it;
//! accounting events for its connections keep applying to it there. Re-adding the same
//! address:port to a service with the same key revives that very destination (kernel
//! `ip_vs_trash_get_dest`), so its connections, templates and counters are simply live
//! again: no aliasing, no id translation. This is what `expire_nodest_conn = 0` exists for:
//! "a re-added real server can resume the connection".
//!
//! Nothing here panics. An event that cannot be applied (a counter would underflow, an id
//! nobody knows) is counted (`accounting_errors`), which
//! [`super::Ipvs::check_invariants`] reports: it is a bug, never a caller error.

use std::net::Ipv4Addr;

use super::IpvsInvariantViolation;
use crate::conn::{self, Accounting};
use crate::service::{self, Dest, Service, ServiceKey, ServiceTable};
use crate::types::DestId;

/// A removed destination still in the trash (see [`ServiceTable`]), as
/// [`super::Ipvs::detached`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detached {
    /// The key of the service it was removed from.
    pub service: ServiceKey,
    /// Its address.
    pub addr: Ipv4Addr,
    /// Its port.
    pub port: u16,
    /// Port NAT replies come from; 0 = the connection's virtual port (see
    /// [`reply_port`]).
    pub reply_port: u16,
    /// Entries still counted on it: `[active, inactive, template]`.
    pub counts: [u32; 3],
}

/// Where a stored [`DestId`] leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A live destination.
    Live {
        id: DestId,
        addr: Ipv4Addr,
        /// 0 = the connection's virtual port.
        port: u16,
    },
    /// A removed destination (in the trash).
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
    if svc.replies_keep_vport() {
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

/// Services (with the trash); the one place accounting is applied.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) services: ServiceTable,
    pub(crate) accounting_errors: u64,
}

impl Registry {
    /// Applies one counter change from the connection table to the destination it names,
    /// live or in the trash.
    pub(crate) fn apply(&mut self, ev: Accounting) {
        if self.apply_to(ev.dest, ev).is_err() {
            self.accounting_errors += 1;
        }
    }

    fn apply_to(&mut self, id: DestId, ev: Accounting) -> Result<(), service::ServiceError> {
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
        if let Some((svc, d)) = self.services.dest_with_service(id) {
            return Some(Target::Live {
                id,
                addr: d.addr(),
                port: reply_port(svc, d),
            });
        }
        let (_, d) = self.services.trashed(id)?;
        Some(Target::Gone {
            addr: d.addr(),
            port: self.services.trashed_reply_port(id)?,
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

    /// `(id, weight)` if a template's stored id is a live destination of service `svc`.
    pub(crate) fn live_in_service(&self, id: DestId, svc: &ServiceKey) -> Option<(DestId, u32)> {
        let (s, d) = self.services.dest_with_service(id)?;
        (s.key() == *svc).then_some((id, d.weight()))
    }

    /// The trash as [`Detached`] records.
    pub(crate) fn detached(&self) -> impl Iterator<Item = (DestId, Detached)> + '_ {
        self.services.trash().map(|(service, d)| {
            let detached = Detached {
                service,
                addr: d.addr(),
                port: d.port(),
                reply_port: self.services.trashed_reply_port(d.id()).unwrap_or(d.port()),
                counts: [d.active_conns(), d.inactive_conns(), d.persist_conns()],
            };
            (d.id(), detached)
        })
    }

    /// Checks that every destination's counters, live or trashed, equal what the
    /// connection table holds for it (`stored`, from [`conn::ConnTable::dest_counts`]).
    pub(crate) fn check(&self, stored: &conn::DestCounts) -> Result<(), IpvsInvariantViolation> {
        let fail = |m: String| Err(IpvsInvariantViolation::Accounting(m));
        if self.accounting_errors != 0 {
            return fail(format!(
                "{} accounting events could not be applied",
                self.accounting_errors
            ));
        }
        for (&id, c) in stored {
            if *c != [0; 3]
                && self.services.dest(id).is_none()
                && self.services.trashed(id).is_none()
            {
                return fail(format!("{c:?} entries point at unknown destination {id:?}"));
            }
        }
        let live = self
            .services
            .iter()
            .flat_map(|s| s.dests().iter().map(move |d| (s.key(), d, "live")));
        let trashed = self.services.trash().map(|(k, d)| (k, d, "removed"));
        for (key, d, what) in live.chain(trashed) {
            if what == "removed" && self.services.dest(d.id()).is_some() {
                return fail(format!("{:?} is both live and removed", d.id()));
            }
            let want = stored.get(&d.id()).copied().unwrap_or_default();
            let have = [
                i64::from(d.active_conns()),
                i64::from(d.inactive_conns()),
                i64::from(d.persist_conns()),
            ];
            if want != have {
                return fail(format!(
                    "{key} {what} {}:{} ({:?}): counters [active, inactive, persist] \
                     {have:?}, connection table {want:?}",
                    d.addr(),
                    d.port(),
                    d.id()
                ));
            }
        }
        Ok(())
    }
}
