//! IPv4 reassembly (sans-IO): fragments of datagrams for a virtual service or from a NAT
//! real server are held until their datagram is complete, then the whole datagram goes
//! through the normal path, as kernel IPVS gets it from `ip_vs_gather_frags` / `ip_defrag`.
//!
//! Semantics follow `net/ipv4/ip_fragment.c` and `inet_fragment.c`:
//!
//! * Queues are keyed by (source, destination, identification, protocol).
//! * **Bounded memory**: every held fragment costs its payload plus a fixed overhead; a
//!   fragment that would take the total above [`Limits::mem`] (the kernel's
//!   `ipfrag_high_thresh`, 4 MiB) is dropped ([`FragCounters::over_budget`]).
//! * **Timeout**: a queue not completed within [`Limits::timeout`] (`ipfrag_time`, 30 s)
//!   is freed ([`FragCounters::timeouts`]); no ICMP time-exceeded is sent. Expiry is checked
//!   with every fragment and by [`Reassembler::expire`], at most [`SCAN_EVERY`] late.
//! * **Overlaps** (RFC 5722 as Linux applies it to IPv4 since 4.19): a fragment that lies
//!   entirely within one already held is a duplicate and is dropped, the queue kept; any
//!   other overlap discards the whole queue ([`FragCounters::overlaps`]).
//! * **Bad fragments** ([`FragCounters::bad`]): empty, a non-last fragment whose length is
//!   not a multiple of 8 (the kernel trims it; we drop it), a datagram past 65 535 bytes, a
//!   last fragment that disagrees with the known end or data past it. They discard the
//!   queue, as `ip_frag_queue`'s `discard_qp`.
//! * The reassembled datagram has the first fragment's header (options included), MF and
//!   offset cleared, DF kept, total length and checksum recomputed. The size of its largest
//!   fragment is kept (the kernel's `frag_max_size`) for the DF/MTU decision on output.
//!
//! Nothing here panics on any input: lengths are checked before every slice.

use core::net::Ipv4Addr;
use core::time::Duration;

use hashbrown::HashMap;

use crate::time::Instant;
use crate::wire::ipv4::{self, FLAG_DF};

/// Accounting overhead of one held fragment (its bookkeeping), bytes.
const FRAG_COST: usize = 64;
/// Accounting overhead of one queue, bytes.
const QUEUE_COST: usize = 128;
/// Expired queues are looked for at most this often.
pub(crate) const SCAN_EVERY: Duration = Duration::from_millis(100);

/// Reassembly limits (`EngineConfig::frag_mem_limit`, `EngineConfig::frag_timeout`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) mem: usize,
    pub(crate) timeout: Duration,
}

/// Reassembly counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FragCounters {
    /// Fragments received for reassembly.
    pub fragments: u64,
    /// Datagrams reassembled.
    pub reassembled: u64,
    /// Incomplete datagrams freed after the timeout.
    pub timeouts: u64,
    /// Fragments dropped because held fragments would exceed the memory limit.
    pub over_budget: u64,
    /// Fragments lying within one already held (dropped, queue kept).
    pub duplicates: u64,
    /// Overlapping fragments (the queue was discarded).
    pub overlaps: u64,
    /// Malformed fragments (the queue was discarded).
    pub bad: u64,
    /// Fragments the engine sent after fragmenting a datagram too big for its output MTU.
    pub fragments_out: u64,
}

/// What [`Reassembler::insert`] did with a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Insert {
    /// Held; the datagram is not complete yet.
    Held,
    /// Dropped (counted in [`FragCounters`]).
    Dropped,
    /// The datagram is complete and was written to the output buffer: `len` bytes of IPv4
    /// packet, the largest fragment was `max_frag` bytes.
    Complete { len: usize, max_frag: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    proto: u8,
}

#[derive(Debug)]
struct Frag {
    off: usize,
    data: Vec<u8>,
}

impl Frag {
    fn end(&self) -> usize {
        self.off + self.data.len()
    }
}

#[derive(Debug)]
struct Queue {
    deadline: Instant,
    /// The first fragment's IPv4 header, once it arrived.
    header: Option<Vec<u8>>,
    /// Held fragments, sorted by offset, disjoint.
    frags: Vec<Frag>,
    /// Payload length, known once the last fragment arrived.
    total: Option<usize>,
    received: usize,
    max_frag: usize,
    cost: usize,
}

/// The reassembly table; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Reassembler {
    queues: HashMap<Key, Queue>,
    mem: usize,
    limits: Limits,
    next_scan: Instant,
    /// No queue's deadline is earlier (it may be stale-early after a queue completed).
    earliest: Option<Instant>,
    pub(crate) counters: FragCounters,
}

impl Reassembler {
    pub(crate) fn new(limits: Limits) -> Self {
        Reassembler {
            queues: HashMap::new(),
            mem: 0,
            limits,
            next_scan: Instant::ZERO,
            earliest: None,
            counters: FragCounters::default(),
        }
    }

    /// Bytes accounted to held fragments.
    pub(crate) fn mem(&self) -> usize {
        self.mem
    }

    /// Number of incomplete datagrams.
    pub(crate) fn len(&self) -> usize {
        self.queues.len()
    }

    /// When [`Reassembler::expire`] next has work.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.earliest.map(|d| d.max(self.next_scan))
    }

    /// Frees the queues whose deadline passed (at most every [`SCAN_EVERY`]).
    pub(crate) fn expire(&mut self, now: Instant) {
        if now < self.next_scan || self.earliest.is_none_or(|t| t > now) {
            return;
        }
        self.next_scan = now + SCAN_EVERY;
        let before = self.queues.len();
        let mut freed = 0;
        let mut earliest: Option<Instant> = None;
        self.queues.retain(|_, q| {
            let keep = q.deadline > now;
            if keep {
                earliest = Some(earliest.map_or(q.deadline, |t| t.min(q.deadline)));
            } else {
                freed += q.cost;
            }
            keep
        });
        self.earliest = earliest;
        self.mem -= freed;
        self.counters.timeouts += (before - self.queues.len()) as u64;
    }

    fn kill(&mut self, key: &Key) {
        if let Some(q) = self.queues.remove(key) {
            self.mem -= q.cost;
        }
    }

    /// Adds the fragment `ip` (a validated IPv4 packet of `ip.len()` bytes, header checksum
    /// verified, MF set or offset ≠ 0). On completion the datagram is written to `out`
    /// (cleared first).
    pub(crate) fn insert(&mut self, now: Instant, ip: &[u8], out: &mut Vec<u8>) -> Insert {
        self.counters.fragments += 1;
        self.expire(now);
        let Ok(p) = ipv4::Packet::new_checked(ip) else {
            self.counters.bad += 1;
            return Insert::Dropped;
        };
        let hl = p.header_len();
        let key = Key {
            src: p.src_addr(),
            dst: p.dst_addr(),
            id: p.ident(),
            proto: u8::from(p.next_header()),
        };
        let data = p.payload();
        let off = usize::from(p.frag_offset());
        let end = off + data.len();
        let last = !p.more_frags();
        if data.is_empty() || (!last && data.len() % 8 != 0) || hl + end > 65535 {
            self.counters.bad += 1;
            self.kill(&key);
            return Insert::Dropped;
        }
        let cost = FRAG_COST + data.len() + if off == 0 { hl } else { 0 };
        if !self.queues.contains_key(&key) {
            if self.mem + QUEUE_COST + cost > self.limits.mem {
                self.counters.over_budget += 1;
                return Insert::Dropped;
            }
            self.mem += QUEUE_COST;
            let deadline = now + self.limits.timeout;
            self.earliest = Some(self.earliest.map_or(deadline, |t| t.min(deadline)));
            self.queues.insert(
                key,
                Queue {
                    deadline,
                    header: None,
                    frags: Vec::new(),
                    total: None,
                    received: 0,
                    max_frag: 0,
                    cost: QUEUE_COST,
                },
            );
        }
        let Some(q) = self.queues.get_mut(&key) else {
            return Insert::Dropped;
        };
        // The end of the datagram: a last fragment fixes it, nothing may pass it.
        let bad_end = match (q.total, last) {
            (Some(t), true) => t != end,
            (Some(t), false) => end > t,
            (None, true) => q.frags.last().is_some_and(|f| f.end() > end),
            (None, false) => false,
        };
        if bad_end {
            self.counters.bad += 1;
            self.kill(&key);
            return Insert::Dropped;
        }
        let at = q.frags.partition_point(|f| f.off < off);
        let prev = at.checked_sub(1).and_then(|i| q.frags.get(i));
        let next = q.frags.get(at);
        let dup = prev.is_some_and(|f| f.end() >= end)
            || next.is_some_and(|f| f.off == off && f.end() >= end);
        if dup {
            self.counters.duplicates += 1;
            return Insert::Dropped;
        }
        if prev.is_some_and(|f| f.end() > off) || next.is_some_and(|f| f.off < end) {
            self.counters.overlaps += 1;
            self.kill(&key);
            return Insert::Dropped;
        }
        if self.mem + cost > self.limits.mem {
            self.counters.over_budget += 1;
            return Insert::Dropped;
        }
        self.mem += cost;
        q.cost += cost;
        q.frags.insert(
            at,
            Frag {
                off,
                data: data.to_vec(),
            },
        );
        q.received += data.len();
        q.max_frag = q.max_frag.max(ip.len());
        if last {
            q.total = Some(end);
        }
        if off == 0 {
            q.header = Some(ip[..hl].to_vec());
        }
        match (q.total, &q.header) {
            (Some(t), Some(_)) if q.received == t => {}
            _ => return Insert::Held,
        }
        let Some(q) = self.queues.remove(&key) else {
            return Insert::Dropped;
        };
        self.mem -= q.cost;
        let (Some(header), Some(total)) = (q.header, q.total) else {
            return Insert::Dropped;
        };
        // The first fragment's header may be longer than the one the size was checked with.
        let len = header.len() + total;
        let Ok(len16) = u16::try_from(len) else {
            self.counters.bad += 1;
            return Insert::Dropped;
        };
        out.clear();
        out.extend_from_slice(&header);
        for f in &q.frags {
            out.extend_from_slice(&f.data);
        }
        let mut h = ipv4::Packet::new_unchecked(&mut out[..]);
        h.set_total_len(len16);
        h.set_flags_frag_word(h.flags_frag_word() & FLAG_DF);
        h.fill_checksum();
        self.counters.reassembled += 1;
        Insert::Complete {
            len,
            max_frag: q.max_frag,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::IpProtocol;
    use crate::wire::ipv4::FLAG_MF;

    const LIMITS: Limits = Limits {
        mem: 64 * 1024,
        timeout: Duration::from_secs(30),
    };

    /// Fragment of datagram `id` carrying `payload[off..off + n]` of a UDP datagram.
    fn frag(id: u16, payload: &[u8], off: usize, n: usize, more: bool) -> Vec<u8> {
        let repr = ipv4::Repr {
            src_addr: Ipv4Addr::new(198, 18, 0, 200),
            dst_addr: Ipv4Addr::new(198, 18, 0, 10),
            next_header: IpProtocol::Udp,
            payload_len: n,
            ttl: 64,
            dscp_ecn: 0,
            ident: id,
            dont_frag: false,
        };
        let mut b = vec![0u8; 20 + n];
        repr.emit(&mut b);
        b[20..].copy_from_slice(&payload[off..off + n]);
        let mut p = ipv4::Packet::new_unchecked(&mut b[..]);
        let mf = if more { FLAG_MF } else { 0 };
        p.set_flags_frag_word(mf | (off / 8) as u16);
        p.fill_checksum();
        b
    }

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7) as u8).collect()
    }

    #[test]
    fn reassembles_in_any_order_and_ignores_duplicates() {
        let data = payload(3000);
        let frags = [
            frag(1, &data, 1480, 1480, true),
            frag(1, &data, 2960, 40, false),
            frag(1, &data, 1480, 1480, true), // duplicate
            frag(1, &data, 0, 1480, true),
        ];
        let mut r = Reassembler::new(LIMITS);
        let mut out = Vec::new();
        let now = Instant::from_secs(1);
        assert_eq!(r.insert(now, &frags[0], &mut out), Insert::Held);
        assert_eq!(r.insert(now, &frags[1], &mut out), Insert::Held);
        assert_eq!(r.insert(now, &frags[2], &mut out), Insert::Dropped);
        assert_eq!(
            r.insert(now, &frags[3], &mut out),
            Insert::Complete {
                len: 3020,
                max_frag: 1500
            }
        );
        let p = ipv4::Packet::new_checked(&out[..]).expect("valid");
        assert!(p.verify_checksum());
        assert!(!p.is_fragment());
        assert_eq!(p.payload(), &data[..]);
        assert_eq!((r.len(), r.mem()), (0, 0));
        assert_eq!(r.counters.duplicates, 1);
        assert_eq!(r.counters.reassembled, 1);
    }

    #[test]
    fn overlap_and_bad_fragments_discard_the_queue() {
        let data = payload(3000);
        let mut r = Reassembler::new(LIMITS);
        let mut out = Vec::new();
        let now = Instant::from_secs(1);
        assert_eq!(
            r.insert(now, &frag(2, &data, 0, 1480, true), &mut out),
            Insert::Held
        );
        assert_eq!(
            r.insert(now, &frag(2, &data, 1400, 800, true), &mut out),
            Insert::Dropped
        );
        assert_eq!((r.len(), r.mem(), r.counters.overlaps), (0, 0, 1));
        // Non-last fragment not a multiple of 8; last fragment before held data.
        assert_eq!(
            r.insert(now, &frag(3, &data, 0, 1001, true), &mut out),
            Insert::Dropped
        );
        assert_eq!(
            r.insert(now, &frag(4, &data, 1480, 800, true), &mut out),
            Insert::Held
        );
        assert_eq!(
            r.insert(now, &frag(4, &data, 0, 1000, false), &mut out),
            Insert::Dropped
        );
        assert_eq!((r.len(), r.mem(), r.counters.bad), (0, 0, 2));
    }

    #[test]
    fn a_flood_that_never_completes_is_bounded_counted_and_expires() {
        let data = payload(3000);
        let mut r = Reassembler::new(LIMITS);
        let mut out = Vec::new();
        let t0 = Instant::from_secs(1);
        // Only second fragments, 10 000 datagrams: none completes.
        let mut held = 0;
        for id in 0..10_000u16 {
            if r.insert(t0, &frag(id, &data, 1480, 1480, true), &mut out) == Insert::Held {
                held += 1;
            }
            assert!(r.mem() <= LIMITS.mem);
        }
        assert!(held > 0 && held < 10_000, "{held}");
        assert_eq!(r.counters.over_budget, 10_000 - held);
        assert_eq!(r.len() as u64, held);
        assert_eq!(r.poll_timeout(), Some(t0 + LIMITS.timeout));
        // Nothing expires early; everything at the timeout.
        r.expire(t0 + Duration::from_secs(29));
        assert_eq!(r.len() as u64, held);
        r.expire(t0 + LIMITS.timeout);
        assert_eq!((r.len(), r.mem(), r.counters.timeouts), (0, 0, held));
        assert_eq!(r.poll_timeout(), None);
    }
}
