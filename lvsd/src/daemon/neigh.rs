//! Neighbour resolution for the engine, done by the kernel.
//!
//! The engine never sends ARP itself: it queues the addresses it could not forward to
//! ([`Engine::take_unresolved`]); the [`Resolver`] asks the kernel to resolve them
//! ([`host::probe`]), then copies the kernel's answers from `/proc/net/arp` into the engine
//! ([`Engine::set_neighbour`]). It also re-reads the table every [`REFRESH`] so that a real
//! server whose MAC changed (a replaced machine) is followed.
//!
//! Bounded: at most [`MAX_PENDING`] addresses wait at once, each probed at most every
//! [`PROBE_EVERY`] and given up after [`MAX_TRIES`] probes (the engine asks again on the next
//! packet that needs it).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use ipvs_core::engine::Engine;
use ipvs_core::time::Instant;

use super::host;

/// How often the whole ARP table is copied into the engine.
pub const REFRESH: Duration = Duration::from_secs(5);
/// Interval between probes of one address.
pub const PROBE_EVERY: Duration = Duration::from_millis(300);
/// Shortest interval between two reads of `/proc/net/arp` while addresses are pending.
pub const READ_EVERY: Duration = Duration::from_millis(20);
/// Probes before an address is given up.
pub const MAX_TRIES: u32 = 10;
/// How often [`Resolver::settle`] looks at the kernel's ARP table.
pub const SETTLE_STEP: Duration = Duration::from_millis(10);
/// Addresses waiting at once.
pub const MAX_PENDING: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Pending {
    tries: u32,
    next_probe: Instant,
}

/// See the module docs.
#[derive(Debug)]
pub struct Resolver {
    ifindex_by_name: BTreeMap<String, u32>,
    pending: BTreeMap<Ipv4Addr, Pending>,
    next_refresh: Instant,
    next_read: Instant,
}

impl Resolver {
    /// A resolver for the engine's interfaces.
    pub fn new(ifindex_by_name: BTreeMap<String, u32>) -> Resolver {
        Resolver {
            ifindex_by_name,
            pending: BTreeMap::new(),
            next_refresh: Instant::ZERO,
            next_read: Instant::ZERO,
        }
    }

    /// Asks for `ip` to be resolved (e.g. every real server at start-up).
    pub fn want(&mut self, ip: Ipv4Addr) {
        if self.pending.len() < MAX_PENDING {
            self.pending.entry(ip).or_insert(Pending {
                tries: 0,
                next_probe: Instant::ZERO,
            });
        }
    }

    /// Start-up: resolves what was [`Resolver::want`]ed before the first packet needs it
    /// (a first UDP datagram to a real server without a neighbour entry would be dropped),
    /// waiting at most `max`. Returns how many addresses are still unresolved; they stay
    /// pending and are resolved by [`Resolver::tick`] as usual.
    pub fn settle(
        &mut self,
        engine: &mut Engine,
        clock: impl Fn() -> Instant,
        max: Duration,
    ) -> usize {
        let deadline = clock() + max;
        loop {
            self.tick(engine, clock());
            if self.pending.is_empty() || clock() >= deadline {
                return self.pending.len();
            }
            std::thread::sleep(SETTLE_STEP);
        }
    }

    /// Runs after each batch of frames.
    pub fn tick(&mut self, engine: &mut Engine, now: Instant) {
        let asked: Vec<Ipv4Addr> = engine.take_unresolved().map(|(_, ip)| ip).collect();
        for ip in asked {
            self.want(ip);
        }
        if (self.pending.is_empty() || now < self.next_read) && now < self.next_refresh {
            return;
        }
        // The worker ticks after every batch (and while spinning under load): read the
        // kernel's table at most every READ_EVERY.
        self.next_read = now + READ_EVERY;
        let table = host::arp_table();
        for ((dev, ip), mac) in &table {
            if let Some(&ifindex) = self.ifindex_by_name.get(dev) {
                engine.set_neighbour(ifindex, *ip, *mac);
                self.pending.remove(ip);
            }
        }
        if now >= self.next_refresh {
            self.next_refresh = now + REFRESH;
        }
        self.pending.retain(|ip, p| {
            if now >= p.next_probe {
                host::probe(*ip);
                p.tries += 1;
                p.next_probe = now + PROBE_EVERY;
            }
            if p.tries > MAX_TRIES {
                tracing::warn!(%ip, "no ARP answer; packets for it are dropped until it answers");
                return false;
            }
            true
        });
    }
}
