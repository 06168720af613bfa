//! [`EngineConfig`]: the director's interfaces (the engine's whole view of routing) and the
//! firewall-mark rules.

use core::net::Ipv4Addr;

use crate::types::Protocol;
use crate::wire::EthernetAddress;

/// An IPv4 address with a prefix length: an interface address and its connected subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    /// The address.
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// `addr/prefix_len`.
    pub const fn new(addr: Ipv4Addr, prefix_len: u8) -> Self {
        Ipv4Cidr { addr, prefix_len }
    }

    /// The netmask as a u32 (0 for /0).
    pub fn mask(&self) -> u32 {
        match self.prefix_len {
            0 => 0,
            n => u32::MAX << (32 - u32::from(n.min(32))),
        }
    }

    /// Whether `ip` is inside the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let m = self.mask();
        u32::from(ip) & m == u32::from(self.addr) & m
    }
}

/// One director interface (or one VLAN on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Kernel interface index frames arrive on and leave by.
    pub ifindex: u32,
    /// 802.1Q VLAN id when this logical interface is a tagged VLAN on `ifindex`: frames
    /// carrying this tag belong to it, and frames sent out of it get the tag.
    pub vlan: Option<u16>,
    /// The interface's MAC: frames for other unicast MACs are not ours.
    pub mac: EthernetAddress,
    /// The director's own addresses with their connected subnets (not the VIPs). The first
    /// one is the source of IP-in-IP packets leaving this interface.
    pub addrs: Vec<Ipv4Cidr>,
    /// IP MTU (1500 on plain Ethernet).
    pub mtu: u16,
    /// Default gateway reachable through this interface, if any. The first interface with
    /// a gateway carries the default route.
    pub gateway: Option<Ipv4Addr>,
}

/// Marks packets for a firewall-mark service, in place of the iptables rule that cannot
/// reach a userspace engine: TCP/UDP packets to `addr` with a destination port in
/// `ports` get `mark`. Rules are tried in order; the first match wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FwmarkRule {
    /// The mark (> 0), as in `ipvsadm -f`.
    pub mark: u32,
    /// TCP, UDP, or both (`None`).
    pub protocol: Option<Protocol>,
    /// Destination addresses covered (a VIP is `/32`).
    pub addr: Ipv4Cidr,
    /// First destination port covered.
    pub port_lo: u16,
    /// Last destination port covered (inclusive).
    pub port_hi: u16,
}

impl FwmarkRule {
    /// Whether a packet matches.
    pub fn matches(&self, proto: Protocol, dst: Ipv4Addr, dport: u16) -> bool {
        self.protocol.is_none_or(|p| p == proto)
            && self.addr.contains(dst)
            && (self.port_lo..=self.port_hi).contains(&dport)
    }
}

/// Everything the engine knows about its surroundings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The interfaces.
    pub interfaces: Vec<Interface>,
    /// Firewall-mark rules (see [`FwmarkRule`]).
    pub fwmark_rules: Vec<FwmarkRule>,
    /// Slots of the previous-hop cache (a power of two; 65 536 by default, 1 MiB).
    pub prev_hop_slots: usize,
    /// Most addresses waiting for neighbour resolution at once.
    pub max_unresolved: usize,
    /// Generated ICMP errors (frag-needed, port unreachable) per second, with a burst of
    /// the same size; 0 disables them.
    pub icmp_errors_per_sec: u32,
    /// Most bytes held by IPv4 reassembly (the kernel's `ipfrag_high_thresh`, 4 MiB).
    pub frag_mem_limit: usize,
    /// How long an incomplete datagram's fragments are held (`ipfrag_time`, 30 s).
    pub frag_timeout: core::time::Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            interfaces: Vec::new(),
            fwmark_rules: Vec::new(),
            prev_hop_slots: 1 << 16,
            max_unresolved: 1024,
            icmp_errors_per_sec: 1000,
            frag_mem_limit: 4 << 20,
            frag_timeout: core::time::Duration::from_secs(30),
        }
    }
}

/// A refused [`EngineConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineConfigError {
    /// Two interfaces share `(ifindex, vlan)`.
    #[error("interface {ifindex} vlan {vlan:?} configured twice")]
    DuplicateInterface {
        /// Interface index.
        ifindex: u32,
        /// VLAN.
        vlan: Option<u16>,
    },
    /// An interface without an address.
    #[error("interface {ifindex} has no IPv4 address")]
    NoAddress {
        /// Interface index.
        ifindex: u32,
    },
    /// A prefix longer than 32.
    #[error("interface {ifindex}: prefix length {prefix_len} > 32")]
    BadPrefix {
        /// Interface index.
        ifindex: u32,
        /// The prefix length.
        prefix_len: u8,
    },
    /// An MTU below IPv4's 68.
    #[error("interface {ifindex}: MTU {mtu} below 68")]
    MtuTooSmall {
        /// Interface index.
        ifindex: u32,
        /// The MTU.
        mtu: u16,
    },
    /// A VLAN id outside 1..=4094.
    #[error("interface {ifindex}: VLAN id {vlan} outside 1..=4094")]
    BadVlan {
        /// Interface index.
        ifindex: u32,
        /// The id.
        vlan: u16,
    },
    /// A firewall-mark rule with mark 0, an empty port range or a prefix > 32.
    #[error("fwmark rule {index}: {reason}")]
    BadFwmarkRule {
        /// Position in the list.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// `prev_hop_slots` is not a power of two (or is 0 or above 2^24).
    #[error("prev_hop_slots {0} must be a power of two in 1..=2^24")]
    PrevHopSlots(usize),
}

impl EngineConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), EngineConfigError> {
        for (i, a) in self.interfaces.iter().enumerate() {
            if self.interfaces[..i]
                .iter()
                .any(|b| b.ifindex == a.ifindex && b.vlan == a.vlan)
            {
                return Err(EngineConfigError::DuplicateInterface {
                    ifindex: a.ifindex,
                    vlan: a.vlan,
                });
            }
            if a.addrs.is_empty() {
                return Err(EngineConfigError::NoAddress { ifindex: a.ifindex });
            }
            if let Some(c) = a.addrs.iter().find(|c| c.prefix_len > 32) {
                return Err(EngineConfigError::BadPrefix {
                    ifindex: a.ifindex,
                    prefix_len: c.prefix_len,
                });
            }
            if a.mtu < 68 {
                return Err(EngineConfigError::MtuTooSmall {
                    ifindex: a.ifindex,
                    mtu: a.mtu,
                });
            }
            if let Some(v) = a.vlan
                && !(1..=4094).contains(&v)
            {
                return Err(EngineConfigError::BadVlan {
                    ifindex: a.ifindex,
                    vlan: v,
                });
            }
        }
        for (index, r) in self.fwmark_rules.iter().enumerate() {
            let reason = if r.mark == 0 {
                "mark must be > 0"
            } else if r.port_lo > r.port_hi {
                "empty port range"
            } else if r.addr.prefix_len > 32 {
                "prefix length > 32"
            } else {
                continue;
            };
            return Err(EngineConfigError::BadFwmarkRule { index, reason });
        }
        let n = self.prev_hop_slots;
        if !n.is_power_of_two() || n > 1 << 24 {
            return Err(EngineConfigError::PrevHopSlots(n));
        }
        Ok(())
    }
}
