//! Virtual services and their destinations.
//!
//! - [`Service`]: one virtual service (key, scheduler, persistence) with its destinations
//!   in the kernel's list order, and the scheduler state built from them.
//! - [`Dest`] / [`DestConfig`] / [`ConnClass`] (re-exported from [`crate::dest`], which sits
//!   below both this module and [`crate::sched`]): one real server and its connection
//!   accounting (`bind` / `unbind` / `state_changed`, OVERLOAD thresholds).
//! - [`ServiceTable`] (module `table`): every service, with [`DestId`] allocation and
//!   lookup by id for the connection table.
//!
//! # Destination order
//!
//! The kernel inserts a new destination at the **head** of `svc->destinations`
//! (`list_add_rcu` in `__ip_vs_update_dest`), and every scheduler walks that list. So the
//! list order is *newest first*, and this module keeps [`Service::dests`] in exactly that
//! order: adding A, B, C yields `[C, B, A]`. Editing a destination keeps its position.
//! Tie-breaking such as "first minimum" in `lc`/`wlc` therefore favours the most recently
//! added destination, as in the kernel.
//!
//! # Contracts
//!
//! - Sans-IO: no clock, no randomness except the seed handed to [`Service::new`].
//! - Every add/edit/remove calls the scheduler's `update` hook (the kernel's
//!   `add_dest`/`upd_dest`/`del_dest`); lookup tables are rebuilt there, off the
//!   scheduling path, and replaced whole ("selection behind a swap").
//! - Nothing here panics; bad input is returned as [`ServiceError`].

mod table;

pub use crate::dest::{ConnClass, Dest, DestConfig, DestError, MAX_WEIGHT};
pub use table::{DEST_TRASH_PERIOD, ServiceEdit, ServiceTable};

use core::fmt;
use core::time::Duration;
use std::net::Ipv4Addr;

use hashbrown::HashMap;

use crate::sched::{self, SchedFlags, SchedInput, Scheduler};
use crate::time::Instant;
use crate::types::{DestId, Protocol, SchedFlag, SchedulerKind};

/// Errors from service and destination operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// `add_dest` for an address:port the service already has (kernel `EEXIST`).
    #[error("destination {addr}:{port} already exists")]
    DestExists {
        /// Address of the existing destination.
        addr: Ipv4Addr,
        /// Port of the existing destination.
        port: u16,
    },
    /// `edit_dest`/`remove_dest` for an address:port the service does not have (`ENOENT`).
    #[error("no destination {addr}:{port} in this service")]
    NoSuchDestAddr {
        /// Address looked for.
        addr: Ipv4Addr,
        /// Port looked for.
        port: u16,
    },
    /// A [`DestId`] that no live destination carries.
    #[error("no destination with id {0:?}")]
    NoSuchDest(DestId),
    /// `add_dest` with an id another destination already uses.
    #[error("destination id {0:?} is already in use")]
    DestIdInUse(DestId),
    /// A destination's own check or accounting failed (weight or threshold range, counter
    /// underflow).
    #[error(transparent)]
    Dest(#[from] DestError),
    /// A scheduler flag the scheduler does not accept (ipvsadm "incompatible scheduler flag").
    #[error("incompatible scheduler flag `{}' for scheduler {kind}", flag.name())]
    IncompatibleFlag {
        /// The scheduler.
        kind: SchedulerKind,
        /// The flag.
        flag: SchedFlag,
    },
    /// The scheduler cannot be bound to a service with this many destinations (mh: more
    /// destinations than table slots, kernel `ip_vs_mh_init_svc` failing with `EINVAL`).
    #[error("scheduler {kind} cannot serve {dests} destinations")]
    TooManyDests {
        /// The scheduler refused.
        kind: SchedulerKind,
        /// Destinations in the service.
        dests: usize,
    },
    /// A service with this key already exists.
    #[error("service {0} already exists")]
    ServiceExists(ServiceKey),
    /// No service with this key.
    #[error("no service {0}")]
    NoSuchService(ServiceKey),
    /// The table ran out of destination ids (more than 2^32 live destinations).
    #[error("destination ids exhausted")]
    IdsExhausted,
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceKey {
    /// `-t`/`-u addr:port`.
    Inet {
        /// TCP or UDP.
        protocol: Protocol,
        /// Virtual IP.
        addr: Ipv4Addr,
        /// Virtual port (0 = all ports; persistent services only).
        port: u16,
    },
    /// `-f mark`.
    Fwmark(u32),
}

impl ServiceKey {
    /// A TCP service key.
    pub const fn tcp(addr: Ipv4Addr, port: u16) -> Self {
        ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr,
            port,
        }
    }

    /// A UDP service key.
    pub const fn udp(addr: Ipv4Addr, port: u16) -> Self {
        ServiceKey::Inet {
            protocol: Protocol::Udp,
            addr,
            port,
        }
    }

    /// Whether this is a firewall-mark service.
    pub const fn is_fwmark(&self) -> bool {
        matches!(self, ServiceKey::Fwmark(_))
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Inet {
                protocol,
                addr,
                port,
            } => write!(f, "{protocol} {addr}:{port}"),
            ServiceKey::Fwmark(mark) => write!(f, "FWM {mark}"),
        }
    }
}

/// Persistence settings (`-p timeout -M netmask`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Persistence {
    /// Template timeout.
    pub timeout: Duration,
    /// Client netmask applied to the template key.
    pub netmask: Ipv4Addr,
}

impl Persistence {
    /// Timeout of a bare `-p` (`IPVS_SVC_PERSISTENT_TIMEOUT`, 360 s in code).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(360);
    /// Default netmask, 255.255.255.255.
    pub const DEFAULT_NETMASK: Ipv4Addr = Ipv4Addr::BROADCAST;

    /// Persistence with the given timeout and a /32 mask.
    pub const fn new(timeout: Duration) -> Self {
        Persistence {
            timeout,
            netmask: Self::DEFAULT_NETMASK,
        }
    }

    /// The client address as the template key uses it: `client & netmask`.
    pub fn template_client(&self, client: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(client) & u32::from(self.netmask))
    }
}

impl Default for Persistence {
    fn default() -> Self {
        Self::new(Self::DEFAULT_TIMEOUT)
    }
}

/// One virtual service.
#[derive(Debug)]
pub struct Service {
    key: ServiceKey,
    kind: SchedulerKind,
    flags: Vec<SchedFlag>,
    persistence: Option<Persistence>,
    /// Kernel list order (newest first).
    dests: Vec<Dest>,
    /// `DestId` -> index into `dests`; rebuilt on every add/remove.
    index: HashMap<DestId, usize>,
    sched: sched::Sched,
}

impl Service {
    /// A service with no destinations. Fails if a flag does not fit the scheduler.
    /// `seed` feeds the schedulers that draw random numbers (`twos`).
    pub fn new(
        key: ServiceKey,
        kind: SchedulerKind,
        flags: &[SchedFlag],
        persistence: Option<Persistence>,
        seed: u64,
    ) -> Result<Self, ServiceError> {
        check_flags(kind, flags)?;
        let mut sched = sched::new(kind, flags, seed);
        sched.update(&[]);
        Ok(Service {
            key,
            kind,
            flags: flags.to_vec(),
            persistence,
            dests: Vec::new(),
            index: HashMap::new(),
            sched,
        })
    }

    /// The service key.
    pub fn key(&self) -> ServiceKey {
        self.key
    }
    /// The scheduler in use.
    pub fn scheduler_kind(&self) -> SchedulerKind {
        self.kind
    }
    /// Scheduler flags as given.
    pub fn sched_flags(&self) -> &[SchedFlag] {
        &self.flags
    }
    /// Persistence, if the service is persistent.
    pub fn persistence(&self) -> Option<&Persistence> {
        self.persistence.as_ref()
    }
    /// Changes persistence (`ipvsadm -E ... -p`).
    pub fn set_persistence(&mut self, persistence: Option<Persistence>) {
        self.persistence = persistence;
    }

    /// Changes scheduler and flags (`ipvsadm -E -s -b`). As in `ip_vs_edit_service`, the
    /// scheduler state is rebuilt only when the scheduler itself changes; a flags-only
    /// change keeps it (sh/mh read the flags at schedule time). A scheduler that cannot
    /// serve the current destinations (mh with more destinations than slots) is refused
    /// with [`ServiceError::TooManyDests`] and the old one stays; the kernel fails the
    /// command too, but leaves the service with no scheduler at all (so nothing is
    /// scheduled until the next edit), which we do not copy.
    pub fn set_scheduler(
        &mut self,
        kind: SchedulerKind,
        flags: &[SchedFlag],
        seed: u64,
    ) -> Result<(), ServiceError> {
        check_flags(kind, flags)?;
        if kind != self.kind {
            let mut new = sched::new(kind, flags, seed);
            new.update(&self.dests);
            if new.refused_updates() != 0 {
                return Err(ServiceError::TooManyDests {
                    kind,
                    dests: self.dests.len(),
                });
            }
            self.sched = new;
            self.kind = kind;
        } else {
            self.sched.set_flags(SchedFlags::from_flags(flags));
        }
        self.flags = flags.to_vec();
        Ok(())
    }

    /// Destinations in the kernel's list order (newest first).
    pub fn dests(&self) -> &[Dest] {
        &self.dests
    }

    /// The destination with id `id`.
    pub fn dest(&self, id: DestId) -> Option<&Dest> {
        self.index.get(&id).and_then(|&i| self.dests.get(i))
    }

    /// The destination at `addr:port`.
    pub fn find_dest(&self, addr: Ipv4Addr, port: u16) -> Option<&Dest> {
        self.dests.iter().find(|d| d.addr == addr && d.port == port)
    }

    fn position(&self, addr: Ipv4Addr, port: u16) -> Option<usize> {
        self.dests
            .iter()
            .position(|d| d.addr == addr && d.port == port)
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (i, d) in self.dests.iter().enumerate() {
            self.index.insert(d.id, i);
        }
    }

    /// Adds a destination with a caller-chosen id (normally allocated by
    /// [`ServiceTable::add_dest`]). It goes to the head of the list, like the kernel's.
    pub fn add_dest(&mut self, id: DestId, cfg: DestConfig) -> Result<(), ServiceError> {
        cfg.validate()?;
        if self.position(cfg.addr, cfg.port).is_some() {
            return Err(ServiceError::DestExists {
                addr: cfg.addr,
                port: cfg.port,
            });
        }
        if self.index.contains_key(&id) {
            return Err(ServiceError::DestIdInUse(id));
        }
        self.dests.insert(0, Dest::new(id, &cfg));
        self.reindex();
        self.sched.update(&self.dests);
        Ok(())
    }

    /// Edits the destination at `cfg.addr:cfg.port` (weight, thresholds, method); returns
    /// its id. Counters are kept; see [`Dest`] for the OVERLOAD rule on threshold edits.
    pub fn edit_dest(&mut self, cfg: DestConfig) -> Result<DestId, ServiceError> {
        cfg.validate()?;
        let i = self
            .position(cfg.addr, cfg.port)
            .ok_or(ServiceError::NoSuchDestAddr {
                addr: cfg.addr,
                port: cfg.port,
            })?;
        let d = &mut self.dests[i];
        d.apply_edit(&cfg);
        let id = d.id;
        self.sched.update(&self.dests);
        Ok(id)
    }

    /// Brings back a destination removed earlier (from the trash, see
    /// [`ServiceTable`]): the same object and id, to the head of the list like any add,
    /// updated from `cfg` the way `__ip_vs_update_dest(.., add = 1)` does (see
    /// [`Dest`]'s `revive`). Address and port must be the destination's own.
    pub fn revive_dest(&mut self, mut dest: Dest, cfg: &DestConfig) -> Result<(), ServiceError> {
        cfg.validate()?;
        if self.position(dest.addr, dest.port).is_some() {
            return Err(ServiceError::DestExists {
                addr: dest.addr,
                port: dest.port,
            });
        }
        if self.index.contains_key(&dest.id) {
            return Err(ServiceError::DestIdInUse(dest.id));
        }
        dest.revive(cfg);
        self.dests.insert(0, dest);
        self.reindex();
        self.sched.update(&self.dests);
        Ok(())
    }

    /// Removes the destination at `addr:port` and returns it (with its counters and
    /// flags), for the caller to keep in the trash ([`ServiceTable`] does).
    pub fn remove_dest(&mut self, addr: Ipv4Addr, port: u16) -> Result<Dest, ServiceError> {
        let i = self
            .position(addr, port)
            .ok_or(ServiceError::NoSuchDestAddr { addr, port })?;
        let d = self.dests.remove(i);
        self.reindex();
        self.sched.update(&self.dests);
        Ok(d)
    }

    fn dest_mut(&mut self, id: DestId) -> Result<&mut Dest, ServiceError> {
        self.dest_mut_opt(id).ok_or(ServiceError::NoSuchDest(id))
    }

    pub(crate) fn dest_mut_opt(&mut self, id: DestId) -> Option<&mut Dest> {
        let i = *self.index.get(&id)?;
        self.dests.get_mut(i)
    }

    /// Takes every destination out (the service is being deleted).
    fn take_dests(&mut self) -> Vec<Dest> {
        let dests = core::mem::take(&mut self.dests);
        self.index.clear();
        self.sched.update(&self.dests);
        dests
    }

    /// Whether NAT replies come from the connection's virtual port rather than the
    /// destination's: persistent fwmark and port-0 services, where a connection keeps its
    /// packet's port (`ip_vs_sched_persist`).
    pub fn replies_keep_vport(&self) -> bool {
        let port = match self.key {
            ServiceKey::Inet { port, .. } => port,
            ServiceKey::Fwmark(_) => 0,
        };
        self.persistence.is_some() && port == 0
    }

    /// Whether the scheduler's state still refers to destination `id` (see
    /// [`Scheduler::holds`]); a trashed destination it refers to is not freed.
    pub fn holds(&self, id: DestId) -> bool {
        self.sched.holds(id)
    }

    /// Counts a new connection or template on `id` (see [`Dest::bind`]).
    pub fn bind(&mut self, id: DestId, class: ConnClass) -> Result<(), ServiceError> {
        self.dest_mut(id)?.bind(class);
        Ok(())
    }

    /// Forgets a connection or template on `id` (see [`Dest::unbind`]).
    pub fn unbind(&mut self, id: DestId, class: ConnClass) -> Result<(), ServiceError> {
        Ok(self.dest_mut(id)?.unbind(class)?)
    }

    /// A connection on `id` moved between active and inactive.
    pub fn state_changed(
        &mut self,
        id: DestId,
        was_active: bool,
        is_active: bool,
    ) -> Result<(), ServiceError> {
        Ok(self.dest_mut(id)?.state_changed(was_active, is_active)?)
    }

    /// Picks a destination for a new connection, or `None` when no destination is
    /// available ("no destination available"). Does not bind: the caller binds the
    /// connection it creates.
    #[inline]
    pub fn schedule(&mut self, input: &SchedInput, now: Instant) -> Option<DestId> {
        self.schedule_among(input, &[], now)
    }

    /// As [`Service::schedule`], with this service's destinations in the trash, which
    /// lblcr weighs when it sheds a member of a stale set.
    #[inline]
    pub fn schedule_among(
        &mut self,
        input: &SchedInput,
        removed: &[Dest],
        now: Instant,
    ) -> Option<DestId> {
        let i = self
            .sched
            .schedule_with_removed(&self.dests, removed, input, now)?;
        self.dests.get(i).map(|d| d.id)
    }

    /// How many destination changes the scheduler refused to rebuild its table for,
    /// keeping the previous one in force (mh with more destinations than slots,
    /// `ip_vs_mh_reassign`). The change itself was made, as in the kernel, which ignores
    /// the scheduler's refusal; destinations added since get no share of new connections.
    pub fn sched_refused_updates(&self) -> u64 {
        self.sched.refused_updates()
    }

    /// Earliest time the scheduler wants [`Service::handle_timeout`] (lblc/lblcr garbage
    /// collection); `None` if never.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sched.poll_timeout()
    }

    /// Runs scheduler housekeeping that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sched.handle_timeout(&self.dests, now);
    }
}

fn check_flags(kind: SchedulerKind, flags: &[SchedFlag]) -> Result<(), ServiceError> {
    match flags.iter().find(|f| !kind.accepts_flag(**f)) {
        Some(&flag) => Err(ServiceError::IncompatibleFlag { kind, flag }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
