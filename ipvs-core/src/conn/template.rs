//! Persistence templates: keys, handles and their slab-plus-index store.
//!
//! A template (kernel `IP_VS_CONN_F_TEMPLATE`) binds a client group — the client address
//! masked by the service's persistence netmask — to one destination for the service's
//! persistence timeout. Templates live in a slab so that connections can point at their
//! controlling template with a 24-bit slot number; a hash index maps keys to slots.
//!
//! Lifetime rules (kernel `ip_vs_conn_expire` with `n_control`):
//!
//! * a template is *live* while it is indexed and either its deadline has not passed or it
//!   still controls connections (`n_control > 0`); a live template is what lookups return;
//! * when its deadline passes while it controls connections, the sweep re-arms it for
//!   [`TEMPLATE_REARM_SECS`](super::timeouts::TEMPLATE_REARM_SECS) instead of removing it;
//! * [`ConnTable::invalidate_template`](super::ConnTable::invalidate_template) (the kernel's
//!   `ip_vs_check_template` failure path) takes it out of the index at once, so a new
//!   template for the same key can be created, but the slot and its `PersistConn` count stay
//!   until the last controlled connection is gone.

use core::net::Ipv4Addr;

use hashbrown::HashTable;

use super::entry::{Hasher, MAX_TEMPLATE_SLOTS};
use crate::types::{DestId, Protocol};

/// The service part of a template key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TemplateService {
    /// A protocol/address/port service. `vport` is the service port, or 0 for a port-0
    /// ("all ports") persistent service.
    Port {
        /// Service protocol.
        proto: Protocol,
        /// Virtual address.
        vaddr: Ipv4Addr,
        /// Virtual port, 0 for port-0 services.
        vport: u16,
    },
    /// A firewall-mark service: persistence spans every VIP, port and protocol of the mark.
    Fwmark(u32),
}

/// Identifies a persistence template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TemplateKey {
    /// Client address already masked by the persistence netmask.
    pub client: Ipv4Addr,
    /// The service.
    pub service: TemplateService,
}

impl TemplateKey {
    /// Builds a key, masking `client` with the persistence `netmask` (`-M`).
    pub fn new(client: Ipv4Addr, netmask: Ipv4Addr, service: TemplateService) -> TemplateKey {
        TemplateKey {
            client: Ipv4Addr::from(u32::from(client) & u32::from(netmask)),
            service,
        }
    }

    fn words(&self) -> (u64, u64) {
        let a = u64::from(u32::from(self.client));
        match self.service {
            TemplateService::Port {
                proto,
                vaddr,
                vport,
            } => (
                a | (u64::from(proto.number()) << 32),
                (u64::from(u32::from(vaddr)) << 16) | u64::from(vport),
            ),
            TemplateService::Fwmark(m) => (a | (0xFFu64 << 32), u64::from(m) | (1 << 63)),
        }
    }
}

/// Handle to a template. Stale handles (of removed templates) are detected and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TemplateId {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Free,
    Indexed,
    Detached,
}

#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) key: TemplateKey,
    pub(crate) dest: DestId,
    pub(crate) expires: u32,
    pub(crate) timeout_ticks: u32,
    pub(crate) n_control: u32,
    pub(crate) generation: u32,
    pub(crate) status: Status,
}

/// Slab of template slots plus the key index over the indexed ones.
#[derive(Debug)]
pub(crate) struct Templates {
    pub(crate) slots: Vec<Slot>,
    free: Vec<u32>,
    pub(crate) index: HashTable<u32>,
    /// Slots not `Free` (indexed or detached): what counts against the table bound.
    pub(crate) in_use: usize,
}

pub(crate) fn key_hash(h: &Hasher, k: &TemplateKey) -> u64 {
    let (a, b) = k.words();
    h.pair(a, b)
}

impl Templates {
    pub(crate) fn new() -> Templates {
        Templates {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            in_use: 0,
        }
    }

    /// The indexed slot holding `key`, live or not.
    pub(crate) fn find(&self, h: &Hasher, key: &TemplateKey) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(key_hash(h, key), |&s| slots[s as usize].key == *key)
            .copied()
    }

    /// The slot `id` names, if it is still in use with the same generation.
    pub(crate) fn resolve(&self, id: TemplateId) -> Option<&Slot> {
        self.slots
            .get(id.slot as usize)
            .filter(|s| s.generation == id.generation && s.status != Status::Free)
    }

    pub(crate) fn resolve_mut(&mut self, id: TemplateId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.slot as usize)
            .filter(|s| s.generation == id.generation && s.status != Status::Free)
    }

    pub(crate) fn id_of(&self, slot: u32) -> TemplateId {
        TemplateId {
            slot,
            generation: self.slots[slot as usize].generation,
        }
    }

    /// Whether another slot can be allocated.
    pub(crate) fn has_room(&self) -> bool {
        !self.free.is_empty() || (self.slots.len() as u64) < u64::from(MAX_TEMPLATE_SLOTS)
    }

    /// Allocates and indexes a slot. The caller has checked `has_room` and that no slot with
    /// this key is indexed.
    pub(crate) fn insert(
        &mut self,
        h: &Hasher,
        key: TemplateKey,
        dest: DestId,
        expires: u32,
        timeout_ticks: u32,
    ) -> u32 {
        let fresh = |generation| Slot {
            key,
            dest,
            expires,
            timeout_ticks,
            n_control: 0,
            generation,
            status: Status::Indexed,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                let g = self.slots[s as usize].generation;
                self.slots[s as usize] = fresh(g);
                s
            }
            None => {
                self.slots.push(fresh(0));
                u32::try_from(self.slots.len() - 1).expect("bounded by MAX_TEMPLATE_SLOTS")
            }
        };
        let slots = &self.slots;
        self.index.insert_unique(key_hash(h, &key), slot, |&s| {
            key_hash(h, &slots[s as usize].key)
        });
        self.in_use += 1;
        slot
    }

    /// Removes an indexed slot from the index, keeping it allocated.
    pub(crate) fn detach(&mut self, h: &Hasher, slot: u32) {
        let s = &mut self.slots[slot as usize];
        if s.status != Status::Indexed {
            return;
        }
        s.status = Status::Detached;
        if let Ok(entry) = self
            .index
            .find_entry(key_hash(h, &s.key), |&other| other == slot)
        {
            entry.remove();
        }
    }

    /// Frees a slot (indexed or detached); returns its destination for accounting.
    pub(crate) fn free(&mut self, h: &Hasher, slot: u32) -> DestId {
        self.detach(h, slot);
        let s = &mut self.slots[slot as usize];
        debug_assert_eq!(
            s.n_control, 0,
            "freeing a template that controls connections"
        );
        s.status = Status::Free;
        s.generation = s.generation.wrapping_add(1);
        self.free.push(slot);
        self.in_use -= 1;
        s.dest
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.slots.capacity() * core::mem::size_of::<Slot>()
            + self.free.capacity() * core::mem::size_of::<u32>()
            + self.index.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_masks_client() {
        let svc = TemplateService::Fwmark(7);
        let k = TemplateKey::new(
            Ipv4Addr::new(192, 168, 3, 77),
            Ipv4Addr::new(255, 255, 255, 0),
            svc,
        );
        assert_eq!(k.client, Ipv4Addr::new(192, 168, 3, 0));
        let k32 = TemplateKey::new(Ipv4Addr::new(192, 168, 3, 77), Ipv4Addr::BROADCAST, svc);
        assert_eq!(k32.client, Ipv4Addr::new(192, 168, 3, 77));
    }

    #[test]
    fn slots_are_reused_with_new_generation() {
        let h = Hasher::new(0);
        let mut t = Templates::new();
        let key = TemplateKey::new(
            Ipv4Addr::new(1, 2, 3, 4),
            Ipv4Addr::BROADCAST,
            TemplateService::Fwmark(1),
        );
        let s = t.insert(&h, key, DestId(1), 10, 10);
        let id = t.id_of(s);
        assert_eq!(t.find(&h, &key), Some(s));
        t.free(&h, s);
        assert!(t.resolve(id).is_none());
        assert_eq!(t.find(&h, &key), None);
        let s2 = t.insert(&h, key, DestId(2), 10, 10);
        assert_eq!(s2, s);
        assert_ne!(t.id_of(s2), id);
        t.detach(&h, s2);
        assert_eq!(t.find(&h, &key), None);
        assert!(t.resolve(t.id_of(s2)).is_some());
        assert_eq!(t.in_use, 1);
    }
}
