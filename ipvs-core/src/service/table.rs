//! Every virtual service, plus [`DestId`] allocation and lookup.
//!
//! A [`DestId`] is allocated here when a destination is added and stays attached to it
//! until it is removed (edits keep it), so the connection table can store only the id and
//! resolve it with [`ServiceTable::dest`]. Ids are not reused while the destination lives;
//! after 2^32 allocations the counter wraps and skips ids still in use.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use hashbrown::HashMap;

use super::{ConnClass, Dest, DestConfig, Persistence, Service, ServiceError, ServiceKey};
use crate::sched::SchedInput;
use crate::time::Instant;
use crate::types::{DestId, SchedFlag, SchedulerKind};

/// All virtual services, keyed deterministically.
#[derive(Debug, Default)]
pub struct ServiceTable {
    services: BTreeMap<ServiceKey, Service>,
    owner: HashMap<DestId, ServiceKey>,
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

    /// Removes a service and all its destinations (`ipvsadm -D`).
    pub fn remove_service(&mut self, key: &ServiceKey) -> Result<Service, ServiceError> {
        let svc = self
            .services
            .remove(key)
            .ok_or(ServiceError::NoSuchService(*key))?;
        for d in svc.dests() {
            self.owner.remove(&d.id());
        }
        Ok(svc)
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

    /// Adds a destination to a service (`ipvsadm -a`) and returns its new id.
    pub fn add_dest(&mut self, key: &ServiceKey, cfg: DestConfig) -> Result<DestId, ServiceError> {
        if !self.services.contains_key(key) {
            return Err(ServiceError::NoSuchService(*key));
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

    /// Removes a destination (`ipvsadm -d`); its id becomes unresolvable.
    pub fn remove_dest(
        &mut self,
        key: &ServiceKey,
        addr: Ipv4Addr,
        port: u16,
    ) -> Result<Dest, ServiceError> {
        let d = self
            .services
            .get_mut(key)
            .ok_or(ServiceError::NoSuchService(*key))?
            .remove_dest(addr, port)?;
        self.owner.remove(&d.id());
        Ok(d)
    }

    /// The destination with this id.
    pub fn dest(&self, id: DestId) -> Option<&Dest> {
        self.dest_with_service(id).map(|(_, d)| d)
    }

    /// The destination with this id and the service it belongs to.
    pub fn dest_with_service(&self, id: DestId) -> Option<(&Service, &Dest)> {
        let svc = self.services.get(self.owner.get(&id)?)?;
        Some((svc, svc.dest(id)?))
    }

    fn owner_mut(&mut self, id: DestId) -> Result<&mut Service, ServiceError> {
        let key = self.owner.get(&id).ok_or(ServiceError::NoSuchDest(id))?;
        self.services
            .get_mut(key)
            .ok_or(ServiceError::NoSuchDest(id))
    }

    /// Counts a new connection or template on `id` (see [`Dest::bind`]).
    pub fn bind(&mut self, id: DestId, class: ConnClass) -> Result<(), ServiceError> {
        self.owner_mut(id)?.bind(id, class)
    }

    /// Forgets a connection or template on `id` (see [`Dest::unbind`]).
    pub fn unbind(&mut self, id: DestId, class: ConnClass) -> Result<(), ServiceError> {
        self.owner_mut(id)?.unbind(id, class)
    }

    /// A connection on `id` moved between active and inactive.
    pub fn state_changed(
        &mut self,
        id: DestId,
        was_active: bool,
        is_active: bool,
    ) -> Result<(), ServiceError> {
        self.owner_mut(id)?.state_changed(id, was_active, is_active)
    }

    /// Schedules a new connection on service `key`; `None` if there is no such service or
    /// no destination is available.
    pub fn schedule(
        &mut self,
        key: &ServiceKey,
        input: &SchedInput,
        now: Instant,
    ) -> Option<DestId> {
        self.services.get_mut(key)?.schedule(input, now)
    }

    /// Earliest housekeeping deadline over all services.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.services
            .values()
            .filter_map(Service::poll_timeout)
            .min()
    }

    /// Runs due housekeeping in every service.
    pub fn handle_timeout(&mut self, now: Instant) {
        for svc in self.services.values_mut() {
            svc.handle_timeout(now);
        }
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
