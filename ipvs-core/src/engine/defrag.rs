//! The engine's side of IPv4 fragments: fragments of datagrams for a virtual service or
//! from a NAT real server go to the [`super::reasm::Reassembler`]; a completed datagram is
//! copied into an engine-owned buffer (it can exceed an io frame) and run through the
//! normal path; what that path sends leaves through the outbox, fragmented to the output
//! MTU when needed ([`super::outbox::queue_fragmented`]).

use super::outbox;
use super::reasm::Insert;
use super::{Engine, FrameBuf, Plan, Rx, Verdict};
use crate::engine::DropReason;
use crate::time::Instant;
use crate::wire::{EtherType, ethernet};

/// Room in front of a reassembled frame (IP-in-IP and a VLAN tag).
const HEADROOM: usize = 64;
/// Room behind it (an ICMP error quoting a short packet).
const TAILROOM: usize = 600;

impl Engine {
    /// A fragment for a virtual service or from a NAT real server.
    pub(super) fn reassemble(
        &mut self,
        now: Instant,
        ifindex_in: u32,
        fb: &FrameBuf<'_>,
        rx: &Rx,
    ) -> Verdict {
        let frame = fb.frame();
        let (Some(l2), Some(ip)) = (frame.get(..rx.l3), frame.get(rx.l3..rx.l3 + rx.ip_len)) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        let mut dgram = core::mem::take(&mut self.reasm_out);
        let v = match self.reasm.insert(now, ip, &mut dgram) {
            Insert::Held => Verdict::Stolen,
            Insert::Dropped => Verdict::Drop(DropReason::Fragment),
            Insert::Complete { len, max_frag } => match dgram.get(..len) {
                Some(ip) => self.forward_reassembled(now, ifindex_in, l2, ip, max_frag),
                None => Verdict::Drop(DropReason::Fragment),
            },
        };
        self.reasm_out = dgram;
        v
    }

    /// Runs the reassembled datagram `ip` (behind the last fragment's Ethernet header `l2`)
    /// through the normal path. Whatever it sends goes through the outbox.
    fn forward_reassembled(
        &mut self,
        now: Instant,
        ifindex_in: u32,
        l2: &[u8],
        ip: &[u8],
        max_frag: usize,
    ) -> Verdict {
        let mut buf = core::mem::take(&mut self.big);
        buf.clear();
        buf.resize(HEADROOM + l2.len() + ip.len() + TAILROOM, 0);
        let at = HEADROOM + l2.len();
        buf[HEADROOM..at].copy_from_slice(l2);
        buf[at..at + ip.len()].copy_from_slice(ip);
        let v = match FrameBuf::new(&mut buf, HEADROOM, l2.len() + ip.len()) {
            Ok(mut big) => {
                self.reassembled_max = Some(max_frag);
                let v = self.dispatch(now, ifindex_in, &mut big);
                self.reassembled_max = None;
                match v {
                    // `send` queues what it forwards; a generated ICMP error is still in
                    // the buffer.
                    Verdict::Tx { ifindex } | Verdict::Reply { ifindex } => {
                        if let Verdict::Reply { .. } = v {
                            self.counters.replies += 1;
                        }
                        match self.outbox.push(ifindex, &[big.frame()]) {
                            Ok(()) => Verdict::Stolen,
                            Err(r) => Verdict::Drop(r),
                        }
                    }
                    other => other,
                }
            }
            Err(_) => Verdict::Drop(DropReason::NoRoom),
        };
        self.big = buf;
        v
    }

    /// Sends the IP packet at absolute `at` (`len` bytes, TTL and encapsulation done)
    /// through the outbox, fragmented to the output MTU if larger (DF was checked by the
    /// plan).
    pub(super) fn send_from_outbox(
        &mut self,
        fb: &FrameBuf<'_>,
        at: usize,
        len: usize,
        plan: &Plan,
    ) -> Verdict {
        let out = &self.cfg.interfaces[plan.out];
        let repr = ethernet::Repr {
            src_addr: out.mac,
            dst_addr: plan.mac,
            vlan_tci: out.vlan,
            ethertype: EtherType::Ipv4,
        };
        let mut l2 = [0u8; 18];
        let l2 = &mut l2[..repr.header_len()];
        repr.emit(l2);
        let Some(ip) = fb.raw().get(at..at + len) else {
            return Verdict::Drop(DropReason::NoRoom);
        };
        match outbox::queue_fragmented(&mut self.outbox, out.ifindex, l2, ip, usize::from(out.mtu))
        {
            Ok(n) => {
                if n > 1 {
                    self.reasm.counters.fragments_out += n as u64;
                }
                Verdict::Stolen
            }
            Err(r) => Verdict::Drop(r),
        }
    }
}
