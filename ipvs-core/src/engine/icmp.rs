//! ICMP errors that belong to a connection follow it (kernel `ip_vs_in_icmp` /
//! `ip_vs_out_icmp`).
//!
//! An error (destination unreachable, source quench, time exceeded) quotes the IP header
//! and at least 8 bytes of the packet that caused it, and is addressed to that packet's
//! source. Two cases, told apart by which connection lookup the quote matches:
//!
//! * **From the client side**, about a packet the director sent to the client (a NAT
//!   reply, or in DR/TUN a reply the real server sent with the VIP as source): the quote is
//!   `VIP:vport -> client:cport`, the error is addressed to the VIP. The connection is
//!   `client:cport -> VIP:vport` ([`crate::ipvs::Ipvs::peek_in`] with the quote inverted).
//!   NAT: the outer destination and the quote's source become the real server's address
//!   and port; DR and TUN forward the error unchanged, as the kernel does.
//! * **From the real-server side** (NAT only), about a packet the director forwarded: the
//!   quote is `client:cport -> RIP:rport`, the error is addressed to the client. The
//!   connection is found as a NAT reply would find it ([`crate::ipvs::Ipvs::peek_out`]);
//!   the outer source and the quote's destination become the VIP and virtual port (the
//!   kernel rewrites the outer source even when a router sent the error).
//!
//! The quoted IP header checksum and, when quoted, the L4 checksum are updated
//! incrementally; the ICMP checksum is recomputed over the whole message. Errors never
//! change a connection's state or deadline. Errors about fragments other than the first
//! (no ports) and anything else are [`Verdict::NotMine`].

use super::xmit::{self, End};
use super::{Blocked, DropReason, Engine, FrameBuf, Rx, Verdict};
use crate::conn::{ConnKey, ReplyKey};
use crate::ipvs::Forward;
use crate::time::Instant;
use crate::types::{ForwardMethod, Protocol};
use crate::wire::icmp::{self, Message};
use crate::wire::{IpProtocol, be16, ipv4};

impl Engine {
    pub(super) fn handle_icmp(&mut self, now: Instant, fb: &mut FrameBuf<'_>, rx: &Rx) -> Verdict {
        let Some(ip) = fb.frame().get(rx.l3..rx.l3 + rx.ip_len) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        if ipv4::Packet::new_unchecked(ip).is_fragment() {
            return Verdict::NotMine;
        }
        let Ok(msg) = icmp::Packet::new_checked(&ip[rx.hl..]) else {
            return self.ours_or_not(rx.dst, DropReason::Truncated);
        };
        if !matches!(
            msg.msg_type(),
            Message::DstUnreachable | Message::SourceQuench | Message::TimeExceeded
        ) {
            return Verdict::NotMine;
        }
        let Ok(q) = msg.quoted() else {
            return Verdict::NotMine;
        };
        let proto = match q.next_header() {
            IpProtocol::Tcp => Protocol::Tcp,
            IpProtocol::Udp => Protocol::Udp,
            _ => return Verdict::NotMine,
        };
        if q.frag_offset() != 0 || rx.dst != q.src_addr() {
            return Verdict::NotMine;
        }
        let (qsrc, qdst, qhl) = (q.src_addr(), q.dst_addr(), q.header_len());
        let (sport, dport) = (be16(q.payload(), 0), be16(q.payload(), 2));
        if self.is_martian(rx.src, rx.dst) {
            return self.ours_or_not(rx.dst, DropReason::Martian);
        }
        let key = ConnKey {
            proto,
            caddr: qdst,
            cport: dport,
            vaddr: qsrc,
            vport: sport,
        };
        if let Some(f) = self.ipvs.peek_in(now, &key) {
            return self.icmp_to_rs(fb, rx, proto, qhl, &f);
        }
        let reply = ReplyKey {
            proto,
            daddr: qdst,
            dport,
            caddr: qsrc,
            cport: sport,
        };
        if let Some(f) = self.ipvs.peek_out(now, &reply)
            && f.method == ForwardMethod::Masq
        {
            return self.icmp_to_client(fb, rx, proto, qhl, &f);
        }
        Verdict::NotMine
    }

    /// Client-side error forwarded to the real server.
    fn icmp_to_rs(
        &mut self,
        fb: &mut FrameBuf<'_>,
        rx: &Rx,
        proto: Protocol,
        qhl: usize,
        f: &Forward,
    ) -> Verdict {
        let plan = match self.plan_to_rs(rx, f, true) {
            Ok(p) => p,
            Err(Blocked::Drop(r)) => return Verdict::Drop(r),
            Err(Blocked::FragNeeded(_)) => return Verdict::Drop(DropReason::TooBig),
        };
        if f.method == ForwardMethod::Masq
            && let Err(r) = rewrite_error(fb, rx, proto, qhl, End::Src, f.daddr, f.dport)
        {
            return Verdict::Drop(r);
        }
        let v = self.send(fb, rx, &plan);
        if v.sent() {
            self.counters.icmp_followed += 1;
            self.count_in(f.dest, None, rx.ip_len, true);
        }
        v
    }

    /// Real-server-side error translated for the client.
    fn icmp_to_client(
        &mut self,
        fb: &mut FrameBuf<'_>,
        rx: &Rx,
        proto: Protocol,
        qhl: usize,
        f: &Forward,
    ) -> Verdict {
        let plan = match self.plan_to_client(rx, rx.dst) {
            Ok(p) => p,
            Err(Blocked::Drop(r)) => return Verdict::Drop(r),
            Err(Blocked::FragNeeded(_)) => return Verdict::Drop(DropReason::TooBig),
        };
        if let Err(r) = rewrite_error(fb, rx, proto, qhl, End::Dst, f.conn.vaddr, f.conn.vport) {
            return Verdict::Drop(r);
        }
        let v = self.send(fb, rx, &plan);
        if v.sent() {
            self.counters.icmp_followed += 1;
            self.count_out(f.dest, rx.ip_len);
        }
        v
    }
}

/// NAT of an ICMP error: the quote's `quoted_end` endpoint becomes `addr:port`, the outer
/// header's opposite address (destination for a quoted source, and vice versa) becomes
/// `addr`, all checksums follow.
fn rewrite_error(
    fb: &mut FrameBuf<'_>,
    rx: &Rx,
    proto: Protocol,
    qhl: usize,
    quoted_end: End,
    addr: core::net::Ipv4Addr,
    port: u16,
) -> Result<(), DropReason> {
    let ip = fb
        .frame_mut()
        .get_mut(rx.l3..rx.l3 + rx.ip_len)
        .ok_or(DropReason::Truncated)?;
    let msg_at = rx.hl;
    let quote_at = msg_at + icmp::HEADER_LEN;
    let quote = ip.get_mut(quote_at..).ok_or(DropReason::Truncated)?;
    xmit::rewrite_endpoint(quote, qhl, proto, quoted_end, addr, port)?;
    let msg = ip.get_mut(msg_at..).ok_or(DropReason::Truncated)?;
    xmit::refill_icmp_checksum(msg);
    let outer_end = match quoted_end {
        End::Src => End::Dst,
        End::Dst => End::Src,
    };
    xmit::rewrite_addr(ip, outer_end, addr)
}
