//! Planning and sending: route, neighbour, TTL and MTU checks toward a real server or a
//! client ([`Plan`]), partial-checksum completion, the NAT rewrites, encapsulation and the
//! Ethernet header, per-destination counters, and generated ICMP errors.

use core::net::Ipv4Addr;

use super::{Blocked, Engine, FrameBuf, Plan, Rx, Verdict, csum, xmit};
use crate::engine::DropReason;
use crate::ipvs::Forward;
use crate::service::ServiceKey;
use crate::time::Instant;
use crate::types::{DestId, ForwardMethod, Protocol};
use crate::wire::icmp::{CODE_FRAG_NEEDED, Message};
use xmit::{End, IcmpError};

impl Engine {
    /// Route, neighbour, TTL and MTU checks toward a real server.
    pub(super) fn plan_to_rs(
        &mut self,
        rx: &Rx,
        f: &Forward,
        is_icmp: bool,
    ) -> Result<Plan, Blocked> {
        if rx.ttl <= 1 {
            return Err(DropReason::TtlExceeded.into());
        }
        let (out, gw) = self.routes.lookup(f.daddr).ok_or(DropReason::NoRoute)?;
        let next_hop = match f.method {
            // DR: the real server itself is the next hop (kernel IP_VS_RT_MODE_KNOWN_NH).
            ForwardMethod::Route => f.daddr,
            _ => gw,
        };
        let ifc = &self.cfg.interfaces[out];
        let (tunnel, overhead) = match f.method {
            ForwardMethod::Tunnel => (Some((ifc.addrs[0].addr, f.daddr)), 20usize),
            _ => (None, 0),
        };
        let mtu = usize::from(ifc.mtu);
        // Too big with DF: frag-needed (a reassembled datagram only when one of its
        // fragments was, as `ip_fragment` uses `frag_max_size`). Otherwise `send`
        // fragments.
        let size = self.reassembled_max.unwrap_or(rx.ip_len);
        if rx.df && size + overhead > mtu {
            if !is_icmp {
                return Err(Blocked::FragNeeded((mtu - overhead).min(65535) as u16));
            }
            return Err(DropReason::TooBig.into());
        }
        let ifindex = ifc.ifindex;
        let Some(mac) = self.neigh.get(ifindex, next_hop) else {
            self.neigh.miss(ifindex, next_hop);
            return Err(DropReason::NoNeighbour {
                ifindex,
                ip: next_hop,
            }
            .into());
        };
        Ok(Plan { out, mac, tunnel })
    }

    /// Route and neighbour toward a client (learned previous hop first).
    pub(super) fn plan_to_client(&mut self, rx: &Rx, client: Ipv4Addr) -> Result<Plan, Blocked> {
        if rx.ttl <= 1 {
            return Err(DropReason::TtlExceeded.into());
        }
        let (out, mac) = match self.prev.get(client) {
            Some(hop) => hop,
            None => {
                let (out, gw) = self.routes.lookup(client).ok_or(DropReason::NoRoute)?;
                let ifindex = self.cfg.interfaces[out].ifindex;
                let Some(mac) = self.neigh.get(ifindex, gw) else {
                    self.neigh.miss(ifindex, gw);
                    return Err(DropReason::NoNeighbour { ifindex, ip: gw }.into());
                };
                (out, mac)
            }
        };
        let ifc = self.cfg.interfaces.get(out).ok_or(DropReason::NoRoute)?;
        if rx.df && self.reassembled_max.unwrap_or(rx.ip_len) > usize::from(ifc.mtu) {
            return Err(Blocked::FragNeeded(ifc.mtu));
        }
        Ok(Plan {
            out,
            mac,
            tunnel: None,
        })
    }

    /// TTL, encapsulation and Ethernet header for a planned packet (already rewritten).
    pub(super) fn send(&mut self, fb: &mut FrameBuf<'_>, rx: &Rx, plan: &Plan) -> Verdict {
        let ip_at = fb.start() + rx.l3;
        let Some(ip) = fb.raw_mut().get_mut(ip_at..ip_at + rx.ip_len) else {
            return Verdict::Drop(DropReason::NoRoom);
        };
        xmit::decrement_ttl(ip);
        let (at, len) = match plan.tunnel {
            Some((src, dst)) => match xmit::encapsulate(fb, ip_at, rx.ip_len, src, dst) {
                Ok(x) => x,
                Err(r) => return Verdict::Drop(r),
            },
            None => (ip_at, rx.ip_len),
        };
        let out = &self.cfg.interfaces[plan.out];
        if len > usize::from(out.mtu) || self.reassembled_max.is_some() {
            return self.send_from_outbox(fb, at, len, plan);
        }
        match xmit::emit_l2(fb, at, len, out, plan.mac) {
            Ok(()) => Verdict::Tx {
                ifindex: out.ifindex,
            },
            Err(r) => Verdict::Drop(r),
        }
    }

    /// Client to real server, NAT/DR/TUN.
    pub(super) fn forward_in(
        &mut self,
        fb: &mut FrameBuf<'_>,
        rx: &Rx,
        proto: Protocol,
        f: &Forward,
        new_in: Option<ServiceKey>,
    ) -> Verdict {
        let plan = match self.plan_to_rs(rx, f, false) {
            Ok(p) => p,
            Err(Blocked::Drop(r)) => {
                self.count_in(f.dest, new_in, 0, false);
                return Verdict::Drop(r);
            }
            Err(Blocked::FragNeeded(mtu)) => {
                self.count_in(f.dest, new_in, 0, false);
                let err = IcmpError {
                    msg: Message::DstUnreachable,
                    code: CODE_FRAG_NEEDED,
                    mtu,
                };
                return self.reply_error(fb, rx, rx.dst, err, DropReason::TooBig);
            }
        };
        self.complete_l4_checksum(fb, rx, proto);
        if f.method == ForwardMethod::Masq {
            self.prev.learn(rx.src, rx.iface, rx.src_mac);
            let at = rx.l3;
            let Some(ip) = fb.frame_mut().get_mut(at..at + rx.ip_len) else {
                return Verdict::Drop(DropReason::NoRoom);
            };
            if let Err(r) = xmit::rewrite_endpoint(ip, rx.hl, proto, End::Dst, f.daddr, f.dport) {
                return Verdict::Drop(r);
            }
        }
        let v = self.send(fb, rx, &plan);
        self.count_in(f.dest, new_in, rx.ip_len, v.sent());
        v
    }

    /// Completes a partial TCP/UDP checksum (a sender with checksum offload) before the
    /// packet is rewritten and forwarded; see `csum.rs`.
    pub(super) fn complete_l4_checksum(&mut self, fb: &mut FrameBuf<'_>, rx: &Rx, proto: Protocol) {
        let Some(l4) = fb.frame_mut().get_mut(rx.l3 + rx.hl..rx.l3 + rx.ip_len) else {
            return;
        };
        if csum::complete_if_partial(l4, proto, rx.src, rx.dst) == csum::L4Sum::Completed {
            self.counters.csum_completed += 1;
        }
    }

    /// Counts a connection (when `new_in`) and, if sent, an inbound packet.
    pub(super) fn count_in(
        &mut self,
        dest: DestId,
        new_in: Option<ServiceKey>,
        len: usize,
        sent: bool,
    ) {
        if !sent && new_in.is_none() {
            return;
        }
        if sent {
            self.counters.tx_in += 1;
        }
        if let Some(s) = self.traffic.slot(&self.ipvs, dest, new_in) {
            s.conns += u64::from(new_in.is_some());
            if sent {
                s.in_pkts += 1;
                s.in_bytes += len as u64;
            }
        }
    }

    /// Counts an outbound packet.
    pub(super) fn count_out(&mut self, dest: DestId, len: usize) {
        self.counters.tx_out += 1;
        if let Some(s) = self.traffic.slot(&self.ipvs, dest, None) {
            s.out_pkts += 1;
            s.out_bytes += len as u64;
        }
    }

    /// NAT reply, real server to client.
    pub(super) fn forward_out(
        &mut self,
        fb: &mut FrameBuf<'_>,
        rx: &Rx,
        proto: Protocol,
        f: &Forward,
    ) -> Verdict {
        let plan = match self.plan_to_client(rx, rx.dst) {
            Ok(p) => p,
            Err(Blocked::Drop(r)) => return Verdict::Drop(r),
            Err(Blocked::FragNeeded(mtu)) => {
                // As `ip_forward` does before the NAT hook: frag-needed to the real server,
                // from the director's address on the interface it came in on.
                let err = IcmpError {
                    msg: Message::DstUnreachable,
                    code: CODE_FRAG_NEEDED,
                    mtu,
                };
                let src = self.cfg.interfaces[rx.iface].addrs[0].addr;
                return self.reply_error(fb, rx, src, err, DropReason::TooBig);
            }
        };
        self.complete_l4_checksum(fb, rx, proto);
        let at = rx.l3;
        let Some(ip) = fb.frame_mut().get_mut(at..at + rx.ip_len) else {
            return Verdict::Drop(DropReason::NoRoom);
        };
        if let Err(r) =
            xmit::rewrite_endpoint(ip, rx.hl, proto, End::Src, f.conn.vaddr, f.conn.vport)
        {
            return Verdict::Drop(r);
        }
        let v = self.send(fb, rx, &plan);
        if v.sent() {
            self.count_out(f.dest, rx.ip_len);
        }
        v
    }

    /// Rate-limited ICMP error from `src` back to the sender of the received packet.
    pub(super) fn reply_error(
        &mut self,
        fb: &mut FrameBuf<'_>,
        rx: &Rx,
        src: Ipv4Addr,
        err: IcmpError,
        otherwise: DropReason,
    ) -> Verdict {
        if self.icmp_tokens == 0 {
            return Verdict::Drop(otherwise);
        }
        let ingress = &self.cfg.interfaces[rx.iface];
        let ip_at = fb.start() + rx.l3;
        match xmit::icmp_error_in_place(fb, ip_at, rx.ip_len, rx.hl, src, ingress, rx.src_mac, err)
        {
            Ok(()) => {
                self.icmp_tokens -= 1;
                Verdict::Reply {
                    ifindex: ingress.ifindex,
                }
            }
            Err(r) => Verdict::Drop(r),
        }
    }

    pub(super) fn refill_icmp(&mut self, now: Instant) {
        let rate = u64::from(self.cfg.icmp_errors_per_sec);
        let ms = now.as_millis().saturating_sub(self.icmp_refill.as_millis());
        let add = ms.saturating_mul(rate) / 1000;
        if add > 0 {
            self.icmp_tokens = (u64::from(self.icmp_tokens) + add).min(rate) as u32;
            self.icmp_refill = now;
        }
    }
}
