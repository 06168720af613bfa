//! Where frames go: interface routes, the neighbour table the io layer fills, and the
//! previous-hop cache for NAT replies.
//!
//! * **Routes** come only from [`super::EngineConfig`]: each interface address gives a
//!   connected subnet (longest prefix wins), and the first interface with a gateway gives
//!   the default route. The engine never reads the kernel's routing table.
//! * **Neighbours** (`(ifindex, ip) -> MAC`) are filled by the io layer
//!   ([`super::Engine::set_neighbour`]), which resolves them with the kernel (ARP, netlink).
//!   A miss drops the frame and queues the address once until the next
//!   [`super::Engine::take_unresolved`] drains the queue (bounded by
//!   `EngineConfig::max_unresolved`).
//! * **Previous hops.** A NAT reply must go back the way its client came. The engine learns
//!   `(ingress interface, source MAC)` per client address from NAT inbound frames into a
//!   direct-mapped cache (`prev_hop_slots` slots of 16 bytes, indexed by a hash of the
//!   client address, a colliding client overwrites the slot). That is O(1), allocation-free
//!   and bounded, and it keeps the connection entry at 24 bytes. On a miss (evicted or
//!   never seen) the reply is routed like any other packet (connected subnet or gateway,
//!   then the neighbour table) — exactly what the kernel would do.

use core::net::Ipv4Addr;
use std::collections::VecDeque;

use hashbrown::{HashMap, HashSet};

use super::config::Interface;
use crate::wire::EthernetAddress;

/// A connected route: `(network, mask, prefix_len, interface position)`.
#[derive(Debug, Clone, Copy)]
struct Route {
    net: u32,
    mask: u32,
    iface: usize,
}

/// The routing view built from the interface list.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// Longest prefix first.
    connected: Vec<Route>,
    /// `(interface position, gateway)`.
    default: Option<(usize, Ipv4Addr)>,
}

impl Routes {
    pub(crate) fn new(ifaces: &[Interface]) -> Routes {
        let mut connected: Vec<(u8, Route)> = Vec::new();
        for (i, ifc) in ifaces.iter().enumerate() {
            for c in &ifc.addrs {
                let mask = c.mask();
                connected.push((
                    c.prefix_len,
                    Route {
                        net: u32::from(c.addr) & mask,
                        mask,
                        iface: i,
                    },
                ));
            }
        }
        connected.sort_by_key(|r| core::cmp::Reverse(r.0));
        let default = ifaces
            .iter()
            .enumerate()
            .find_map(|(i, ifc)| ifc.gateway.map(|g| (i, g)));
        Routes {
            connected: connected.into_iter().map(|(_, r)| r).collect(),
            default,
        }
    }

    /// `(interface position, next hop)` for `dst`.
    #[inline]
    pub(crate) fn lookup(&self, dst: Ipv4Addr) -> Option<(usize, Ipv4Addr)> {
        let d = u32::from(dst);
        for r in &self.connected {
            if d & r.mask == r.net {
                return Some((r.iface, dst));
            }
        }
        self.default
    }
}

/// `(ifindex, ip) -> MAC`, plus the queue of addresses to resolve.
#[derive(Debug)]
pub(crate) struct Neighbours {
    map: HashMap<(u32, u32), EthernetAddress>,
    pending: HashSet<(u32, u32)>,
    queue: VecDeque<(u32, Ipv4Addr)>,
    max_pending: usize,
}

impl Neighbours {
    pub(crate) fn new(max_pending: usize) -> Self {
        Neighbours {
            map: HashMap::new(),
            pending: HashSet::new(),
            queue: VecDeque::new(),
            max_pending,
        }
    }

    #[inline]
    pub(crate) fn get(&self, ifindex: u32, ip: Ipv4Addr) -> Option<EthernetAddress> {
        self.map.get(&(ifindex, u32::from(ip))).copied()
    }

    pub(crate) fn set(&mut self, ifindex: u32, ip: Ipv4Addr, mac: EthernetAddress) {
        self.map.insert((ifindex, u32::from(ip)), mac);
        self.pending.remove(&(ifindex, u32::from(ip)));
    }

    pub(crate) fn remove(&mut self, ifindex: u32, ip: Ipv4Addr) -> Option<EthernetAddress> {
        self.map.remove(&(ifindex, u32::from(ip)))
    }

    /// Notes a miss; queues the address unless it is queued already or the queue is full.
    pub(crate) fn miss(&mut self, ifindex: u32, ip: Ipv4Addr) {
        if self.pending.len() < self.max_pending && self.pending.insert((ifindex, u32::from(ip))) {
            self.queue.push_back((ifindex, ip));
        }
    }

    /// Drains the queue. An address drained but still unresolved is queued again by its
    /// next miss.
    pub(crate) fn take(&mut self) -> impl Iterator<Item = (u32, Ipv4Addr)> + '_ {
        self.pending.clear();
        self.queue.drain(..)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// One previous-hop slot. `ip == 0` marks an empty slot (0.0.0.0 is never a client).
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    ip: u32,
    iface: u32,
    mac: EthernetAddress,
}

/// The direct-mapped previous-hop cache (see the module docs).
#[derive(Debug)]
pub(crate) struct PrevHops {
    slots: Vec<Slot>,
    shift: u32,
}

impl PrevHops {
    /// `n` slots; `n` is a power of two in 1..=2^24 (checked by config validation).
    pub(crate) fn new(n: usize) -> Self {
        let n = n.clamp(1, 1 << 24).next_power_of_two();
        PrevHops {
            slots: vec![Slot::default(); n],
            shift: 32 - n.trailing_zeros(),
        }
    }

    #[inline]
    fn index(&self, ip: u32) -> usize {
        // Fibonacci hashing; `shift` is 32 for one slot, so shift the u64 product.
        (u64::from(ip.wrapping_mul(0x9e37_79b1)) >> self.shift) as usize & (self.slots.len() - 1)
    }

    #[inline]
    pub(crate) fn learn(&mut self, ip: Ipv4Addr, iface: usize, mac: EthernetAddress) {
        let ip = u32::from(ip);
        if ip == 0 {
            return;
        }
        let i = self.index(ip);
        let s = Slot {
            ip,
            iface: iface as u32,
            mac,
        };
        if let Some(slot) = self.slots.get_mut(i)
            && (slot.ip != s.ip || slot.iface != s.iface || slot.mac != s.mac)
        {
            *slot = s;
        }
    }

    #[inline]
    pub(crate) fn get(&self, ip: Ipv4Addr) -> Option<(usize, EthernetAddress)> {
        let ip = u32::from(ip);
        let s = self.slots.get(self.index(ip))?;
        (s.ip == ip && ip != 0).then_some((s.iface as usize, s.mac))
    }

    /// Forgets every entry (interfaces changed).
    pub(crate) fn clear(&mut self) {
        self.slots.fill(Slot::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::Ipv4Cidr;

    fn iface(ifindex: u32, addr: [u8; 4], len: u8, gw: Option<[u8; 4]>) -> Interface {
        Interface {
            ifindex,
            vlan: None,
            mac: EthernetAddress([2, 0, 0, 0, 0, ifindex as u8]),
            addrs: vec![Ipv4Cidr::new(addr.into(), len)],
            mtu: 1500,
            gateway: gw.map(Ipv4Addr::from),
        }
    }

    #[test]
    fn longest_prefix_then_default() {
        let r = Routes::new(&[
            iface(1, [203, 0, 113, 2], 24, Some([203, 0, 113, 1])),
            iface(2, [10, 0, 0, 1], 16, None),
            iface(3, [10, 0, 1, 1], 24, None),
        ]);
        let ip = Ipv4Addr::new;
        assert_eq!(r.lookup(ip(10, 0, 1, 20)), Some((2, ip(10, 0, 1, 20))));
        assert_eq!(r.lookup(ip(10, 0, 9, 9)), Some((1, ip(10, 0, 9, 9))));
        assert_eq!(r.lookup(ip(8, 8, 8, 8)), Some((0, ip(203, 0, 113, 1))));
        assert_eq!(
            Routes::new(&[iface(2, [10, 0, 0, 1], 16, None)]).lookup(ip(8, 8, 8, 8)),
            None
        );
    }

    #[test]
    fn neighbours_queue_once() {
        let mut n = Neighbours::new(2);
        let a = Ipv4Addr::new(10, 0, 1, 20);
        n.miss(3, a);
        n.miss(3, a);
        n.miss(3, Ipv4Addr::new(10, 0, 1, 21));
        n.miss(3, Ipv4Addr::new(10, 0, 1, 22)); // over the bound
        assert_eq!(n.take().count(), 2);
        assert_eq!(n.take().count(), 0);
        n.miss(3, a);
        n.set(3, a, EthernetAddress([2, 0, 0, 0, 1, 20]));
        assert_eq!(n.get(3, a), Some(EthernetAddress([2, 0, 0, 0, 1, 20])));
        assert_eq!(n.get(2, a), None);
        assert_eq!(n.len(), 1);
    }

    #[test]
    fn prev_hops_direct_mapped() {
        let mut p = PrevHops::new(1);
        let m = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let a = Ipv4Addr::new(198, 51, 100, 10);
        let b = Ipv4Addr::new(198, 51, 100, 11);
        p.learn(a, 0, m);
        assert_eq!(p.get(a), Some((0, m)));
        p.learn(b, 1, m); // one slot: b evicts a
        assert_eq!(p.get(a), None);
        assert_eq!(p.get(b), Some((1, m)));
        p.clear();
        assert_eq!(p.get(b), None);
        let mut p = PrevHops::new(1 << 16);
        for i in 0..1000u32 {
            p.learn(Ipv4Addr::from(0x0a00_0000 + i), 0, m);
        }
        let hits = (0..1000u32)
            .filter(|i| p.get(Ipv4Addr::from(0x0a00_0000 + i)).is_some())
            .count();
        assert!(hits > 980, "{hits}");
    }
}
