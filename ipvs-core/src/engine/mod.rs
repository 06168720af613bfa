//! [`Engine`]: the userspace IPVS data path. Frames in, verdicts out.
//!
//! # Contract
//!
//! * **Sans-IO.** [`Engine::handle_frame`] takes `now`, the ingress interface and a frame
//!   in a [`FrameBuf`]; it rewrites the frame in place and returns a [`Verdict`]. No clock,
//!   no sockets, no threads, no randomness (the connection table's seeds are in
//!   [`crate::ipvs::IpvsConfig`]). Time advances only through `now`; the io layer also runs
//!   [`Engine::handle_timeout`] when [`Engine::poll_timeout`] says so.
//! * **Never panics** on any frame (fuzzed: `fuzz/fuzz_targets/engine.rs`, and
//!   `fuzzing::frames_body` and `fuzzing::fragments_body` over the seeds in `cargo test`;
//!   `fuzzing` is test scaffolding behind the `testing` feature).
//! * **What the io loop does** with each verdict: [`Verdict::Tx`] — send
//!   `frame.frame()` (start and length may have moved) out of `ifindex`;
//!   [`Verdict::Reply`] — same, the frame is now an ICMP error for the sender;
//!   [`Verdict::Drop`] — drop (counted in [`Engine::drop_counts`]); [`Verdict::NotMine`] —
//!   pass the unchanged frame to the kernel; [`Verdict::Stolen`] — free the frame, the
//!   engine kept what it needed (a fragment held for reassembly, or a packet whose output
//!   is in the outbox). After each batch it sends what [`Engine::drain_outbox`] hands it
//!   (frames the engine originated: fragments, reassembled datagrams), drains
//!   [`Engine::take_unresolved`], resolves those neighbours with the kernel, and reports
//!   them with [`Engine::set_neighbour`]. Buffers should have at least 24 bytes of headroom
//!   (IP-in-IP and a VLAN tag) and enough tailroom for a 576-byte ICMP error.
//!
//! # Data path
//!
//! For an Ethernet frame to our MAC (tagged frames belong to the configured VLAN
//! interface) carrying IPv4 with a valid header checksum:
//!
//! 1. TCP/UDP: a known connection ([`crate::ipvs::Ipvs::in_packet`]) is forwarded; else a
//!    NAT reply ([`crate::ipvs::Ipvs::out_packet`]) is translated back to the client; else,
//!    if a virtual service matches (with the mark from the [`FwmarkRule`]s), a connection
//!    is scheduled; else the frame is [`Verdict::NotMine`]. A TCP segment that cannot open
//!    a connection (no SYN) is `NotMine` too: the kernel answers it, as with kernel IPVS.
//! 2. ICMP errors (unreachable, source quench, time exceeded) quoting a packet of a
//!    connection follow it (`icmp.rs`); other ICMP is `NotMine`.
//! 3. Forwarding: **NAT** rewrites destination address and port (source on replies) with
//!    incremental checksums; **DR** rewrites only the MACs (next hop = the real server,
//!    which must be on a connected subnet); **TUN** prepends an outer IPv4 header (source =
//!    the output interface's first address, protocol 4, TTL 64, DF/TOS copied) in the
//!    headroom.
//! 4. **TTL.** Decremented on every forwarded packet, inner packet for TUN, as kernels
//!    since 5.3 do (`decrement_ttl()` in `ip_vs_xmit.c`, called from
//!    `__ip_vs_get_out_rt` for every non-local transmitter); a packet with TTL <= 1 is
//!    dropped ([`DropReason::TtlExceeded`]; no time-exceeded is generated).
//! 5. **MTU.** A packet larger than the output MTU (minus 20 for TUN) with DF set is
//!    answered with ICMP frag-needed carrying that MTU ([`Verdict::Reply`], source = the
//!    VIP, as `__icmp_send` picks the local destination address), rate-limited by
//!    [`EngineConfig::icmp_errors_per_sec`]; a NAT reply with DF set too big for the client
//!    side gets frag-needed back to the real server, from the director's address on the
//!    ingress interface (as `ip_forward` answers before the NAT hook). Without DF the
//!    packet is fragmented for the output MTU (`outbox.rs`, `ip_do_fragment` semantics;
//!    TUN: the outer packet, whose DF is the inner one's) and leaves through the outbox. A reassembled datagram counts as too big
//!    with DF only when one of its fragments was (the kernel's `frag_max_size`).
//! 6. A service with no available destination answers ICMP port unreachable, as
//!    `ip_vs_leave` does.
//!
//! # Decisions
//!
//! * **Fragments** of TCP/UDP datagrams to a virtual address or from a NAT real server are
//!   reassembled (`reasm.rs`, as kernel IPVS gets whole datagrams from
//!   `ip_vs_gather_frags`): bounded by [`EngineConfig::frag_mem_limit`] (4 MiB, the
//!   kernel's `ipfrag_high_thresh`), freed after [`EngineConfig::frag_timeout`] (30 s,
//!   `ipfrag_time`; no ICMP time-exceeded), duplicates dropped, overlapping or malformed
//!   fragments discard their datagram; all counted in [`Engine::frag_counters`], refused
//!   fragments also as [`DropReason::Fragment`]. The complete datagram is copied into an
//!   engine-owned buffer (it may exceed an io frame) and takes the normal path; its output
//!   goes through the outbox. A reassembled datagram no service wants is `NotMine`.
//!   Fragmented ICMP (big pings) is `NotMine` unreassembled.
//! * **L4 checksums are not verified** on the fast path (the kernel also leaves that to the
//!   receiver for forwarded packets); incremental updates keep a bad checksum bad, so the
//!   real server or client still drops it. The IPv4 header checksum is verified.
//! * **Partial L4 checksums are completed** (`csum.rs`): a sender with checksum offload
//!   (veths and container hosts by default) leaves only the pseudo-header sum in the field,
//!   and AF_XDP loses the metadata that would tell the receiver so. Before forwarding (NAT,
//!   DR and TUN alike) the engine compares the field with the pseudo-header sum (a few
//!   additions); only on a match does it sum the segment and write the complete checksum
//!   ([`EngineCounters::csum_completed`]). Cost: about 45 ns for a 64-byte payload, 165 ns
//!   for 1400 bytes; nothing measurable on complete checksums (`docs/BENCHMARKS.md`).
//! * **Martians.** Traffic for a VIP whose source is 0/8, 127/8, multicast or reserved,
//!   equal to the destination, one of the director's addresses or a VIP is dropped
//!   ([`DropReason::Martian`]); such packets to other addresses are left to the kernel.
//! * **Firewall marks.** No kernel mark reaches userspace, so the engine marks packets
//!   itself from [`EngineConfig::fwmark_rules`]: the operator lists, per mark, the
//!   protocol(s), addresses and port range the iptables rule would have matched (lvsd
//!   fills them from `lvs.cf`). The first matching rule wins.
//! * **Neighbours and routes** (`neigh.rs`): interface routes only, a neighbour table the io
//!   layer fills, a bounded queue of addresses to resolve, and a direct-mapped cache of
//!   clients' previous hops for NAT replies.
//! * **Counters.** Frames by outcome ([`EngineCounters`]), drops by reason
//!   ([`DropCounts`]), and `ipvsadm --stats` figures per destination and per service
//!   ([`TrafficStats`], [`Engine::dest_stats`], [`Engine::service_stats`]).
//! * Not supported: IPv6, the "Local" method (a real server that is the director itself),
//!   GUE/GRE tunnels, ICMP errors generated for expired TTL.

// Files: `mod.rs` receive and dispatch; `forward.rs` planning, rewriting and sending;
// `icmp.rs` ICMP errors that follow connections; `csum.rs` partial checksums; `defrag.rs`,
// `reasm.rs` and `outbox.rs` fragments (reassembly, egress fragmentation, originated
// frames); `xmit.rs` byte-level rewrites; `neigh.rs` routes and neighbours; `stats.rs`
// per-destination counters.
pub mod config;
mod csum;
mod defrag;
mod forward;
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
mod icmp;
mod neigh;
mod outbox;
mod reasm;
mod stats;
pub mod verdict;
mod xmit;

#[cfg(test)]
mod frag_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod sync_tests;
#[cfg(test)]
mod tests;

use core::net::Ipv4Addr;

use hashbrown::HashSet;

pub use crate::frame::{FrameBuf, FrameError};
pub use config::{EngineConfig, EngineConfigError, FwmarkRule, Interface, Ipv4Cidr};
pub use reasm::FragCounters;
pub use verdict::{DropCounts, DropReason, EngineCounters, TrafficStats, Verdict};

use crate::conn::{ConnKey, ReplyKey, TcpFlags};
use crate::ipvs::{Delivery, Ipvs, NewFlow, Refusal};
use crate::service::ServiceKey;
use crate::time::Instant;
use crate::types::{DestId, ForwardMethod, Protocol};
use crate::wire::icmp::{CODE_PORT_UNREACHABLE, Message};
use crate::wire::{EtherType, EthernetAddress, IpProtocol, WireError, ethernet, ipv4, tcp, udp};
use neigh::{Neighbours, PrevHops, Routes};
use outbox::Outbox;
use reasm::Reassembler;
use stats::Traffic;
use xmit::IcmpError;

/// What the engine read from a received frame (offsets relative to the frame start).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rx {
    /// Ingress interface position in the config.
    iface: usize,
    src_mac: EthernetAddress,
    /// Offset of the IPv4 header.
    l3: usize,
    /// IPv4 total length.
    ip_len: usize,
    /// IPv4 header length.
    hl: usize,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    df: bool,
}

/// Where a packet goes: output interface, next-hop MAC, tunnel source.
#[derive(Debug, Clone, Copy)]
struct Plan {
    out: usize,
    mac: EthernetAddress,
    tunnel: Option<(Ipv4Addr, Ipv4Addr)>,
}

/// Why a packet cannot be sent as is.
enum Blocked {
    Drop(DropReason),
    /// Too big with DF: answer frag-needed with this MTU.
    FragNeeded(u16),
}

impl From<DropReason> for Blocked {
    fn from(r: DropReason) -> Self {
        Blocked::Drop(r)
    }
}

fn wire_drop(e: WireError) -> DropReason {
    match e {
        WireError::Truncated => DropReason::Truncated,
        _ => DropReason::Malformed,
    }
}

/// The forwarding engine; see the [module docs](self).
#[derive(Debug)]
pub struct Engine {
    ipvs: Ipvs,
    cfg: EngineConfig,
    routes: Routes,
    neigh: Neighbours,
    prev: PrevHops,
    local: HashSet<u32>,
    vips: HashSet<u32>,
    nat_rips: HashSet<u32>,
    dirty: bool,
    drops: DropCounts,
    counters: EngineCounters,
    traffic: Traffic,
    icmp_tokens: u32,
    icmp_refill: Instant,
    reasm: Reassembler,
    outbox: Outbox,
    /// The last reassembled IPv4 datagram.
    reasm_out: Vec<u8>,
    /// The frame buffer a reassembled datagram is forwarded from.
    big: Vec<u8>,
    /// While a reassembled datagram goes through the path: its largest fragment's size.
    reassembled_max: Option<usize>,
}

impl Engine {
    /// An engine over `ipvs` (services may already be configured).
    pub fn new(cfg: EngineConfig, ipvs: Ipvs) -> Result<Engine, EngineConfigError> {
        cfg.validate()?;
        let local = cfg
            .interfaces
            .iter()
            .flat_map(|i| i.addrs.iter().map(|c| u32::from(c.addr)))
            .collect();
        Ok(Engine {
            ipvs,
            routes: Routes::new(&cfg.interfaces),
            neigh: Neighbours::new(cfg.max_unresolved),
            prev: PrevHops::new(cfg.prev_hop_slots),
            local,
            vips: HashSet::new(),
            nat_rips: HashSet::new(),
            dirty: true,
            drops: DropCounts::default(),
            counters: EngineCounters::default(),
            traffic: Traffic::default(),
            icmp_tokens: cfg.icmp_errors_per_sec,
            icmp_refill: Instant::ZERO,
            reasm: Reassembler::new(reasm::Limits {
                mem: cfg.frag_mem_limit,
                timeout: cfg.frag_timeout,
            }),
            outbox: Outbox::default(),
            reasm_out: Vec::new(),
            big: Vec::new(),
            reassembled_max: None,
            cfg,
        })
    }

    // ----- access -----

    /// The IPVS state (services, connections, their counters).
    pub fn ipvs(&self) -> &Ipvs {
        &self.ipvs
    }

    /// The IPVS state for administration (`ipvsadm` operations). The engine refreshes its
    /// derived sets (VIPs, NAT real servers) and folds the traffic counters of removed
    /// destinations before the next frame.
    pub fn ipvs_mut(&mut self) -> &mut Ipvs {
        self.dirty = true;
        &mut self.ipvs
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Replaces the firewall-mark rules ([`EngineConfig::fwmark_rules`]), for a reload that
    /// adds, removes or moves a `fwmark` service. Validated as at construction; on error the
    /// rules in force stay. The next frame is marked by the new rules.
    pub fn set_fwmark_rules(&mut self, rules: Vec<FwmarkRule>) -> Result<(), EngineConfigError> {
        let mut cfg = self.cfg.clone();
        cfg.fwmark_rules = rules;
        cfg.validate()?;
        self.cfg = cfg;
        self.dirty = true;
        Ok(())
    }

    /// Drops by reason.
    pub fn drop_counts(&self) -> &DropCounts {
        &self.drops
    }

    /// Frames by outcome.
    pub fn counters(&self) -> &EngineCounters {
        &self.counters
    }

    /// `--stats` figures of one destination (`None` before its first packet).
    pub fn dest_stats(&self, dest: DestId) -> Option<TrafficStats> {
        self.traffic.dest(dest)
    }

    /// `--stats` figures of one service (destinations since removed included).
    pub fn service_stats(&self, key: &ServiceKey) -> TrafficStats {
        self.traffic.service(key)
    }

    /// `--stats` figures of every service that has counted something, in one pass (absent:
    /// all zero).
    pub fn services_stats(&self) -> hashbrown::HashMap<ServiceKey, TrafficStats> {
        self.traffic.services()
    }

    /// `ipvsadm -Z`: zeroes the traffic counters of `service` and its destinations, or of
    /// every service when `None`.
    pub fn zero_stats(&mut self, service: Option<&ServiceKey>) {
        self.traffic.zero(service);
    }

    // ----- neighbours -----

    /// Records the MAC of `ip` on interface `ifindex` (from the kernel's neighbour table).
    pub fn set_neighbour(&mut self, ifindex: u32, ip: Ipv4Addr, mac: EthernetAddress) {
        self.neigh.set(ifindex, ip, mac);
    }

    /// Forgets a neighbour (failed or changed); returns the MAC it had.
    pub fn remove_neighbour(&mut self, ifindex: u32, ip: Ipv4Addr) -> Option<EthernetAddress> {
        self.neigh.remove(ifindex, ip)
    }

    /// Addresses frames were dropped for because their MAC is unknown, each once since the
    /// last call: `(ifindex, ip)`.
    pub fn take_unresolved(&mut self) -> impl Iterator<Item = (u32, Ipv4Addr)> + '_ {
        self.neigh.take()
    }

    /// Number of known neighbours.
    pub fn neighbour_count(&self) -> usize {
        self.neigh.len()
    }

    /// Forgets every learned client previous hop (after an interface or gateway change);
    /// replies are then routed until the hops are learned again.
    pub fn clear_prev_hops(&mut self) {
        self.prev.clear();
    }

    // ----- time -----

    /// Runs connection expiry and scheduler housekeeping due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ipvs.handle_timeout(now);
        self.reasm.expire(now);
    }

    /// When [`Engine::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.ipvs.poll_timeout(), self.reasm.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Hands every frame the engine originated since the last call (fragments of a
    /// datagram too big for its output MTU, reassembled datagrams; see [`Verdict::Stolen`])
    /// to `send(ifindex, frame)`, in order. The io layer calls it after each batch.
    pub fn drain_outbox(&mut self, send: impl FnMut(u32, &[u8])) {
        self.outbox.drain(send);
    }

    /// Frames waiting in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// IPv4 reassembly and fragmentation counters.
    pub fn frag_counters(&self) -> &FragCounters {
        &self.reasm.counters
    }

    /// Incomplete datagrams held by reassembly and the bytes accounted to them (bounded
    /// by [`EngineConfig::frag_mem_limit`]).
    pub fn reassembly_usage(&self) -> (usize, usize) {
        (self.reasm.len(), self.reasm.mem())
    }

    // ----- frames -----

    /// Handles one received frame; see the [module docs](self).
    pub fn handle_frame(
        &mut self,
        now: Instant,
        ifindex_in: u32,
        frame: &mut FrameBuf<'_>,
    ) -> Verdict {
        self.counters.frames += 1;
        self.refill_icmp(now);
        if self.dirty {
            self.refresh();
        }
        let v = self.dispatch(now, ifindex_in, frame);
        match v {
            Verdict::Drop(r) => {
                self.drops.count(r);
                self.counters.dropped += 1;
            }
            Verdict::NotMine => self.counters.not_mine += 1,
            Verdict::Reply { .. } => self.counters.replies += 1,
            Verdict::Stolen => self.counters.stolen += 1,
            Verdict::Tx { .. } => {}
        }
        v
    }

    fn refresh(&mut self) {
        self.vips.clear();
        self.nat_rips.clear();
        for s in self.ipvs.services().iter() {
            if let ServiceKey::Inet { addr, .. } = s.key() {
                self.vips.insert(u32::from(addr));
            }
            for d in s.dests() {
                if d.method() == ForwardMethod::Masq {
                    self.nat_rips.insert(u32::from(d.addr()));
                }
            }
        }
        self.traffic.prune(&self.ipvs);
        self.dirty = false;
    }

    /// Whether `ip` is a virtual address (of an address service or a mark rule).
    fn is_vip(&self, ip: Ipv4Addr) -> bool {
        self.vips.contains(&u32::from(ip))
            || self.cfg.fwmark_rules.iter().any(|r| r.addr.contains(ip))
    }

    fn is_martian(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let o = src.octets()[0];
        o == 0
            || o == 127
            || o >= 224
            || src == dst
            || self.local.contains(&u32::from(src))
            || self.is_vip(src)
    }

    fn fwmark(&self, proto: Protocol, dst: Ipv4Addr, dport: u16) -> u32 {
        self.cfg
            .fwmark_rules
            .iter()
            .find(|r| r.matches(proto, dst, dport))
            .map_or(0, |r| r.mark)
    }

    fn iface_of(&self, ifindex: u32, vlan: Option<u16>) -> Option<usize> {
        self.cfg
            .interfaces
            .iter()
            .position(|i| i.ifindex == ifindex && i.vlan == vlan)
    }

    fn dispatch(&mut self, now: Instant, ifindex_in: u32, fb: &mut FrameBuf<'_>) -> Verdict {
        let rx = match self.receive(ifindex_in, fb) {
            Ok(Some(rx)) => rx,
            Ok(None) => return Verdict::NotMine,
            Err(r) => return Verdict::Drop(r),
        };
        let ip = &fb.frame()[rx.l3..rx.l3 + rx.ip_len];
        let proto = match IpProtocol::from(ip[9]) {
            IpProtocol::Tcp => Protocol::Tcp,
            IpProtocol::Udp => Protocol::Udp,
            IpProtocol::Icmp => return self.handle_icmp(now, fb, &rx),
            _ => return Verdict::NotMine,
        };
        if self.is_martian(rx.src, rx.dst) {
            return self.ours_or_not(rx.dst, DropReason::Martian);
        }
        let p = ipv4::Packet::new_unchecked(ip);
        if p.is_fragment() {
            if self.is_vip(rx.dst) || self.nat_rips.contains(&u32::from(rx.src)) {
                return self.reassemble(now, ifindex_in, fb, &rx);
            }
            return Verdict::NotMine;
        }
        let l4 = &ip[rx.hl..];
        let (sport, dport, flags) = match proto {
            Protocol::Tcp => match tcp::Packet::new_checked(l4) {
                Ok(t) => (
                    t.src_port(),
                    t.dst_port(),
                    TcpFlags::from_header_byte(t.flags()),
                ),
                Err(e) => return self.ours_or_not(rx.dst, wire_drop(e)),
            },
            Protocol::Udp => match udp::Packet::new_checked(l4) {
                Ok(u) => (u.src_port(), u.dst_port(), TcpFlags::NONE),
                Err(e) => return self.ours_or_not(rx.dst, wire_drop(e)),
            },
        };
        let key = ConnKey {
            proto,
            caddr: rx.src,
            cport: sport,
            vaddr: rx.dst,
            vport: dport,
        };
        match self.ipvs.in_packet(now, &key, flags) {
            Delivery::Forward(f) => return self.forward_in(fb, &rx, proto, &f, None),
            Delivery::DestGone { .. } => return Verdict::Drop(DropReason::DestGone),
            Delivery::NoConn => {}
        }
        let reply = ReplyKey {
            proto,
            daddr: rx.src,
            dport: sport,
            caddr: rx.dst,
            cport: dport,
        };
        if let Some(f) = self.ipvs.out_packet(now, &reply, flags) {
            return self.forward_out(fb, &rx, proto, &f);
        }
        let fwmark = self.fwmark(proto, rx.dst, dport);
        if self
            .ipvs
            .find_service(proto, rx.dst, dport, fwmark)
            .is_none()
        {
            return Verdict::NotMine;
        }
        let flow = NewFlow {
            key,
            fwmark,
            tcp_flags: flags,
        };
        match self.ipvs.new_connection(now, &flow) {
            Ok(s) => self.forward_in(fb, &rx, proto, &s.forward, Some(s.service)),
            Err(Refusal::NotSyn | Refusal::NoService { .. }) => Verdict::NotMine,
            Err(Refusal::NoDestination(_)) => {
                let err = IcmpError {
                    msg: Message::DstUnreachable,
                    code: CODE_PORT_UNREACHABLE,
                    mtu: 0,
                };
                self.reply_error(fb, &rx, rx.dst, err, DropReason::NoDestination)
            }
            Err(_) => Verdict::Drop(DropReason::Refused),
        }
    }

    /// `Drop(reason)` for traffic to a VIP, else `NotMine` (the kernel decides).
    fn ours_or_not(&self, dst: Ipv4Addr, reason: DropReason) -> Verdict {
        if self.is_vip(dst) {
            Verdict::Drop(reason)
        } else {
            Verdict::NotMine
        }
    }

    /// Ethernet and IPv4 checks. `Ok(None)`: not for us.
    fn receive(&self, ifindex: u32, fb: &FrameBuf<'_>) -> Result<Option<Rx>, DropReason> {
        let f = ethernet::Frame::new_checked(fb.frame()).map_err(wire_drop)?;
        if f.ethertype() != EtherType::Ipv4 {
            return Ok(None);
        }
        let Some(iface) = self.iface_of(ifindex, f.vlan_id()) else {
            return Ok(None);
        };
        if f.dst_addr() != self.cfg.interfaces[iface].mac {
            return Ok(None);
        }
        let l3 = f.header_len();
        let p = ipv4::Packet::new_checked(f.payload()).map_err(wire_drop)?;
        if !p.verify_checksum() {
            return Err(DropReason::BadIpChecksum);
        }
        let dst = p.dst_addr();
        if dst.is_multicast() || dst.is_broadcast() {
            return Ok(None);
        }
        Ok(Some(Rx {
            iface,
            src_mac: f.src_addr(),
            l3,
            ip_len: usize::from(p.total_len()),
            hl: p.header_len(),
            src: p.src_addr(),
            dst,
            ttl: p.ttl(),
            df: p.dont_frag(),
        }))
    }
}
