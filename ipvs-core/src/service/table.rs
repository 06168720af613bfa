//! Every virtual service, plus [`DestId`] allocation and lookup, and the **trash** of
//! removed destinations.
//!
//! A [`DestId`] is allocated here when a destination is first added and stays attached to
//! it for the destination's whole life, trash included (edits keep it), so the connection
//! table can store only the id and resolve it with [`ServiceTable::dest`] (live) or
//! [`ServiceTable::trashed`] (removed). Ids are not reused while the destination exists;
//! after 2^32 allocations the counter wraps and skips ids still in use.
//!
//! # The trash (`ip_vs_ctl.c`)
//!
//! As in the kernel, a destination removed with `ipvsadm -d` (or with its service) is not
//! destroyed but moved to a trash (`__ip_vs_del_dest`), **the same object** with its id,
//! its connection counters and its OVERLOAD flag. Connections still pointing at it keep
//! being accounted on it (so OVERLOAD keeps following the thresholds), and lblc/lblcr cache
//! entries keep referring to it. Adding the same address:port back to a service with the
//! same key (protocol, address and port, or fwmark: `ip_vs_trash_get_dest` matches on
//! these, not on the service object) revives that destination
//! (`__ip_vs_update_dest(.., add = 1)`, see [`Dest`]): same id, so its connections, its
//! templates and the schedulers' cache entries are valid again. Health checkers remove and
//! re-add the same real server all day; this is that path.
//!
//! A trashed destination is freed by the trash sweep (`ip_vs_dest_trash_expire`), which
//! runs [`DEST_TRASH_PERIOD`] / 2 after the trash became non-empty and then every
//! [`DEST_TRASH_PERIOD`] / 2 while it is not empty. A destination that nothing refers to
//! (no connection or template counted on it, no scheduler cache entry: the kernel's
//! `refcnt == 1`) is marked idle at the first sweep that sees it so, and freed at the
//! first sweep at least [`DEST_TRASH_PERIOD`] after that. A removed destination with no
//! connections can therefore be revived for between 2 and 3 minutes, one that still has
//! connections for as long as they last. Time is passed in: removals take the caller's
//! latest `now`, the sweep runs from [`ServiceTable::handle_timeout`].
//!
//! Not kept: the kernel zeroes a revived destination's traffic statistics when it comes
//! back into a different service object (the old service was deleted in between); traffic
//! statistics live in the engine, keyed by [`DestId`].

use core::time::Duration;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use hashbrown::HashMap;

use super::{ConnClass, Dest, DestConfig, Persistence, Service, ServiceError, ServiceKey};
use crate::sched::SchedInput;
use crate::time::Instant;
use crate::types::{DestId, SchedFlag, SchedulerKind};

/// How long the trash keeps a destination nothing refers to (kernel
/// `IP_VS_DEST_TRASH_PERIOD`, 120 s); the sweep runs every half period.
pub const DEST_TRASH_PERIOD: Duration = Duration::from_secs(120);

/// The removed destinations of one service key.
#[derive(Debug, Default)]
struct Trash {
    dests: Vec<Dest>,
    /// Whether NAT replies of the service's connections come from the virtual port rather
    /// than the destination's (persistent fwmark and port-0 services, see
    /// [`Service::replies_keep_vport`]), as last known while the service existed.
    keeps_vport: bool,
}

/// All virtual services, keyed deterministically, and the trash of removed destinations.
#[derive(Debug, Default)]
pub struct ServiceTable {
    services: BTreeMap<ServiceKey, Service>,
    /// The service key of every live and every trashed destination.
    owner: HashMap<DestId, ServiceKey>,
    trash: BTreeMap<ServiceKey, Trash>,
    /// Next trash sweep; `None` while the trash is empty.
    trash_timer: Option<Instant>,
    next_id: u32,
}

impl ServiceTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service (`ipvsadm -A`).
    pub fn add_service(
        &mut self,
        key: ServiceKey,
        kind: SchedulerKind,
        flags: &[SchedFlag],
        persistence: Option<Persistence>,
        seed: u64,
    ) -> Result<(), ServiceError> {
        if self.services.contains_key(&key) {
            return Err(ServiceError::ServiceExists(key));
        }
        let svc = Service::new(key, kind, flags, persistence, seed)?;
        self.services.insert(key, svc);
        Ok(())
    }

    /// Removes a service (`ipvsadm -D`); its destinations go to the trash at `now`.
    pub fn remove_service(&mut self, key: &ServiceKey, now: Instant) -> Result<(), ServiceError> {
        let mut svc = self
            .services
            .remove(key)
            .ok_or(ServiceError::NoSuchService(*key))?;
        let keeps_vport = svc.replies_keep_vport();
        for d in svc.take_dests() {
            self.put(*key, d, keeps_vport, now);
        }
        Ok(())
    }

    /// The service with this key.
    pub fn get(&self, key: &ServiceKey) -> Option<&Service> {
        self.services.get(key)
    }

    /// The service with this key, mutably (scheduler and persistence edits). Destination
    /// adds and removes must go through the table so that ids stay resolvable.
    pub fn get_mut(&mut self, key: &ServiceKey) -> Option<ServiceEdit<'_>> {
        self.services.get_mut(key).map(ServiceEdit)
    }

    /// All services in key order.
    pub fn iter(&self) -> impl Iterator<Item = &Service> {
        self.services.values()
    }

    fn alloc_id(&mut self) -> Result<DestId, ServiceError> {
        for _ in 0..=u32::MAX {
            let id = DestId(self.next_id);
            self.next_id = self.next_id.wrapping_add(1);
            if !self.owner.contains_key(&id) {
                return Ok(id);
            }
        }
        Err(ServiceError::IdsExhausted)
    }

    /// Adds a destination to a service (`ipvsadm -a`) and returns its id: the id of the
    /// destination revived from the trash if one with this address:port was removed from
    /// a service with this key (kernel `ip_vs_add_dest` / `ip_vs_trash_get_dest`), else a
    /// new one.
    pub fn add_dest(&mut self, key: &ServiceKey, cfg: DestConfig) -> Result<DestId, ServiceError> {
        let svc = self
            .services
            .get_mut(key)
            .ok_or(ServiceError::NoSuchService(*key))?;
        cfg.validate()?;
        if svc.find_dest(cfg.addr, cfg.port).is_some() {
            return Err(ServiceError::DestExists {
                addr: cfg.addr,
                port: cfg.port,
            });
        }
        if let Some(trash) = self.trash.get_mut(key)
            && let Some(i) = trash
                .dests
                .iter()
                .position(|d| d.addr == cfg.addr && d.port == cfg.port)
        {
            let d = trash.dests.swap_remove(i);
            let id = d.id;
            if trash.dests.is_empty() {
                self.trash.remove(key);
            }
            svc.revive_dest(d, &cfg)?;
            return Ok(id);
        }
        let id = self.alloc_id()?;
        let svc = self
            .services
            .get_mut(key)
            .ok_or(ServiceError::NoSuchService(*key))?;
        svc.add_dest(id, cfg)?;
        self.owner.insert(id, *key);
        Ok(id)
    }

    /// Edits a destination (`ipvsadm -e`); its id does not change.
    pub fn edit_dest(&mut self, key: &ServiceKey, cfg: DestConfig) -> Result<DestId, ServiceError> {
        self.services
            .get_mut(key)
            .ok_or(ServiceError::NoSuchService(*key))?
            .edit_dest(cfg)
    }

    /// Removes a destination (`ipvsadm -d`): it moves to the trash at `now`, keeping its
    /// id. Returns the id.
    pub fn remove_dest(
        &mut self,
        key: &ServiceKey,
        addr: Ipv4Addr,
        port: u16,
        now: Instant,
    ) -> Result<DestId, ServiceError> {
        let svc = self
            .services
            .get_mut(key)
            .ok_or(ServiceError::NoSuchService(*key))?;
        let keeps_vport = svc.replies_keep_vport();
        let d = svc.remove_dest(addr, port)?;
        let id = d.id;
        self.put(*key, d, keeps_vport, now);
        Ok(id)
    }

    /// `__ip_vs_del_dest`: into the trash, arming the sweep if the trash was empty.
    fn put(&mut self, key: ServiceKey, mut d: Dest, keeps_vport: bool, now: Instant) {
        if self.trash_timer.is_none() {
            self.trash_timer = Some(now + DEST_TRASH_PERIOD / 2);
        }
        d.idle_start = None;
        let trash = self.trash.entry(key).or_default();
        trash.keeps_vport = keeps_vport;
        trash.dests.push(d);
    }

    /// The live destination with this id.
    pub fn dest(&self, id: DestId) -> Option<&Dest> {
        self.dest_with_service(id).map(|(_, d)| d)
    }

    /// The live destination with this id and the service it belongs to.
    pub fn dest_with_service(&self, id: DestId) -> Option<(&Service, &Dest)> {
        let svc = self.services.get(self.owner.get(&id)?)?;
        Some((svc, svc.dest(id)?))
    }

    /// The removed destination with this id, if it is in the trash, with the key of the
    /// service it was removed from.
    pub fn trashed(&self, id: DestId) -> Option<(ServiceKey, &Dest)> {
        let key = self.owner.get(&id)?;
        let d = self.trash.get(key)?.dests.iter().find(|d| d.id == id)?;
        Some((*key, d))
    }

    /// Every destination in the trash, with the key of the service it was removed from.
    pub fn trash(&self) -> impl Iterator<Item = (ServiceKey, &Dest)> {
        self.trash
            .iter()
            .flat_map(|(k, t)| t.dests.iter().map(move |d| (*k, d)))
    }

    /// Whether the trash holds any destination.
    pub fn has_trash(&self) -> bool {
        !self.trash.is_empty()
    }

    /// The port NAT replies of a trashed destination's connections come from; 0 = the
    /// connection's virtual port.
    pub fn trashed_reply_port(&self, id: DestId) -> Option<u16> {
        let key = self.owner.get(&id)?;
        let trash = self.trash.get(key)?;
        let d = trash.dests.iter().find(|d| d.id == id)?;
        Some(if trash.keeps_vport { 0 } else { d.port })
    }

    /// The destination, live or trashed, that accounting for `id` applies to.
    fn any_dest_mut(&mut self, id: DestId) -> Result<&mut Dest, ServiceError> {
        let key = self.owner.get(&id).ok_or(ServiceError::NoSuchDest(id))?;
        if let Some(svc) = self.services.get_mut(key)
            && let Some(d) = svc.dest_mut_opt(id)
        {
            return Ok(d);
        }
        self.trash
            .get_mut(key)
            .and_then(|t| t.dests.iter_mut().find(|d| d.id == id))
            .ok_or(ServiceError::NoSuchDest(id))
    }

    /// Counts a new connection or template on `id`, live or trashed (see [`Dest::bind`]).
    pub fn bind(&mut self, id: DestId, class: ConnClass) -> Result<(), ServiceError> {
        self.any_dest_mut(id)?.bind(class);
        Ok(())
    }

    /// Forgets a connection or template on `id`, live or trashed (see [`Dest::unbind`]).
    pub fn unbind(&mut self, id: DestId, class: ConnClass) -> Result<(), ServiceError> {
        Ok(self.any_dest_mut(id)?.unbind(class)?)
    }

    /// A connection on `id` (live or trashed) moved between active and inactive.
    pub fn state_changed(
        &mut self,
        id: DestId,
        was_active: bool,
        is_active: bool,
    ) -> Result<(), ServiceError> {
        Ok(self
            .any_dest_mut(id)?
            .state_changed(was_active, is_active)?)
    }

    /// Schedules a new connection on service `key`; `None` if there is no such service or
    /// no destination is available.
    pub fn schedule(
        &mut self,
        key: &ServiceKey,
        input: &SchedInput,
        now: Instant,
    ) -> Option<DestId> {
        let removed = self.trash.get(key).map_or(&[][..], |t| &t.dests[..]);
        self.services
            .get_mut(key)?
            .schedule_among(input, removed, now)
    }

    /// Earliest housekeeping deadline: the services' schedulers and the trash sweep.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.services
            .values()
            .filter_map(Service::poll_timeout)
            .chain(self.trash_timer)
            .min()
    }

    /// Runs due housekeeping: every service's scheduler, then the trash sweep if due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for svc in self.services.values_mut() {
            svc.handle_timeout(now);
        }
        if self.trash_timer.is_some_and(|t| t <= now) {
            self.sweep_trash(now);
        }
    }

    /// `ip_vs_dest_trash_expire`: frees destinations nothing has referred to for
    /// [`DEST_TRASH_PERIOD`], marks newly unreferenced ones idle, re-arms while not empty.
    fn sweep_trash(&mut self, now: Instant) {
        let Self {
            services,
            owner,
            trash,
            ..
        } = self;
        for (key, bin) in trash.iter_mut() {
            let svc = services.get(key);
            bin.dests.retain_mut(|d| {
                let referenced = d.total_conns() != 0
                    || d.persist_conns != 0
                    || svc.is_some_and(|s| s.holds(d.id));
                if referenced {
                    return true;
                }
                match d.idle_start {
                    Some(t) if now < t + DEST_TRASH_PERIOD => true,
                    Some(_) => {
                        owner.remove(&d.id);
                        false
                    }
                    None => {
                        d.idle_start = Some(now);
                        true
                    }
                }
            });
        }
        trash.retain(|_, bin| !bin.dests.is_empty());
        self.trash_timer = (!self.trash.is_empty()).then(|| now + DEST_TRASH_PERIOD / 2);
    }
}

/// Mutable access to a service that excludes destination adds and removes (those go
/// through [`ServiceTable`] so ids stay resolvable).
#[derive(Debug)]
pub struct ServiceEdit<'a>(&'a mut Service);

impl ServiceEdit<'_> {
    /// See [`Service::set_scheduler`].
    pub fn set_scheduler(
        &mut self,
        kind: SchedulerKind,
        flags: &[SchedFlag],
        seed: u64,
    ) -> Result<(), ServiceError> {
        self.0.set_scheduler(kind, flags, seed)
    }

    /// See [`Service::set_persistence`].
    pub fn set_persistence(&mut self, persistence: Option<Persistence>) {
        self.0.set_persistence(persistence);
    }

    /// Read access to the service.
    pub fn service(&self) -> &Service {
        self.0
    }
}
