//! Frames the engine originates beyond the one it was handed: the fragments of a datagram
//! too big for its output MTU, or a reassembled datagram (which lives in an engine-owned
//! buffer, not in the io layer's frame). The io layer sends them after each batch
//! ([`super::Engine::drain_outbox`]).
//!
//! Fragmentation follows `ip_do_fragment`'s slow path: every fragment but the last carries
//! a multiple of 8 payload bytes; the first keeps the header's options, the others only the
//! options with the "copied" flag (the rest become NOPs, as `ip_options_fragment` does);
//! identification, TOS and TTL are kept; MF is set on all but the last (which keeps the
//! original MF).

use super::verdict::DropReason;
use crate::wire::ipv4::{self, FLAG_MF};

/// At most this many bytes wait in the outbox (about 40 full-size datagrams); beyond it
/// frames are dropped ([`DropReason::NoRoom`]).
pub(crate) const MAX_BYTES: usize = 1 << 21;

/// Frames waiting to be sent.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    data: Vec<u8>,
    /// `(ifindex, start, len)` into `data`.
    frames: Vec<(u32, usize, usize)>,
}

impl Outbox {
    /// Queues the frame made of `parts`, in order.
    pub(crate) fn push(&mut self, ifindex: u32, parts: &[&[u8]]) -> Result<(), DropReason> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if self.data.len() + len > MAX_BYTES {
            return Err(DropReason::NoRoom);
        }
        let start = self.data.len();
        for p in parts {
            self.data.extend_from_slice(p);
        }
        self.frames.push((ifindex, start, len));
        Ok(())
    }

    /// Number of queued frames.
    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }

    /// Hands every queued frame to `send` and empties the outbox (keeping its memory).
    pub(crate) fn drain(&mut self, mut send: impl FnMut(u32, &[u8])) {
        for &(ifindex, start, len) in &self.frames {
            if let Some(f) = self.data.get(start..start + len) {
                send(ifindex, f);
            }
        }
        self.frames.clear();
        self.data.clear();
    }
}

/// Rewrites the options area of `hdr` for non-first fragments: options without the
/// "copied" flag become NOPs. A malformed option list is an error.
fn options_for_later_fragments(hdr: &mut [u8]) -> Result<(), DropReason> {
    let mut i = ipv4::HEADER_LEN;
    while i < hdr.len() {
        let kind = hdr[i];
        match kind {
            0 => break, // end of list
            1 => i += 1,
            _ => {
                let n = usize::from(*hdr.get(i + 1).ok_or(DropReason::Malformed)?);
                if n < 2 || i + n > hdr.len() {
                    return Err(DropReason::Malformed);
                }
                if kind & 0x80 == 0 {
                    hdr[i..i + n].fill(1);
                }
                i += n;
            }
        }
    }
    Ok(())
}

/// Queues the IPv4 packet `ip` behind the Ethernet header `l2` on `ifindex`, split into
/// fragments of at most `mtu` bytes when it is larger. The caller has checked DF. Returns
/// the number of frames queued.
pub(crate) fn queue_fragmented(
    out: &mut Outbox,
    ifindex: u32,
    l2: &[u8],
    ip: &[u8],
    mtu: usize,
) -> Result<usize, DropReason> {
    let p = ipv4::Packet::new_checked(ip).map_err(|_| DropReason::Malformed)?;
    if ip.len() <= mtu {
        out.push(ifindex, &[l2, ip])?;
        return Ok(1);
    }
    let hl = p.header_len();
    let chunk = mtu.saturating_sub(hl) & !7;
    if chunk == 0 {
        return Err(DropReason::TooBig);
    }
    let word = p.flags_frag_word();
    let base = usize::from(p.frag_offset());
    let orig_mf = word & FLAG_MF;
    let keep = word & !(FLAG_MF | 0x1fff);
    let payload = p.payload();
    let mut hdr = [0u8; 60];
    hdr[..hl].copy_from_slice(&ip[..hl]);
    let mut pos = 0;
    let mut n_frames = 0;
    while pos < payload.len() {
        let n = chunk.min(payload.len() - pos);
        let last = pos + n == payload.len();
        let mf = if last { orig_mf } else { FLAG_MF };
        let h = &mut hdr[..hl];
        {
            let mut hp = ipv4::Packet::new_unchecked(&mut *h);
            hp.set_total_len((hl + n) as u16);
            hp.set_flags_frag_word(keep | mf | (((base + pos) / 8) as u16 & 0x1fff));
            hp.fill_checksum();
        }
        out.push(ifindex, &[l2, h, &payload[pos..pos + n]])?;
        n_frames += 1;
        if pos == 0 && hl > ipv4::HEADER_LEN {
            options_for_later_fragments(&mut hdr[..hl])?;
        }
        pos += n;
    }
    Ok(n_frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::reasm::{Insert, Limits, Reassembler};
    use crate::time::Instant;
    use crate::wire::IpProtocol;
    use core::net::Ipv4Addr;
    use core::time::Duration;

    fn datagram(n: usize, options: &[u8]) -> Vec<u8> {
        let hl = 20 + options.len();
        let repr = ipv4::Repr {
            src_addr: Ipv4Addr::new(198, 19, 0, 11),
            dst_addr: Ipv4Addr::new(198, 18, 0, 200),
            next_header: IpProtocol::Udp,
            payload_len: n,
            ttl: 63,
            dscp_ecn: 0,
            ident: 77,
            dont_frag: false,
        };
        let mut b = vec![0u8; hl + n];
        repr.emit(&mut b);
        b[0] = 0x40 | (hl / 4) as u8;
        b[20..hl].copy_from_slice(options);
        let total = (hl + n) as u16;
        let mut p = ipv4::Packet::new_unchecked(&mut b[..]);
        p.set_total_len(total);
        p.fill_checksum();
        for (i, x) in b[hl..].iter_mut().enumerate() {
            *x = i as u8;
        }
        b
    }

    #[test]
    fn fragments_reassemble_to_the_original() {
        // Record route (not copied) then a copied option (0x94 router alert, 4 bytes).
        let opts = [7, 7, 4, 0, 0, 0, 0, 0x94, 4, 0, 0, 0];
        assert_eq!(opts.len() % 4, 0);
        for (n, options) in [(3000usize, &[][..]), (2999, &opts[..])] {
            let ip = datagram(n, options);
            let mut ob = Outbox::default();
            let l2 = [0xaau8; 14];
            let k = queue_fragmented(&mut ob, 7, &l2, &ip, 1500).expect("fragments");
            assert_eq!(k, 3);
            let mut r = Reassembler::new(Limits {
                mem: 1 << 20,
                timeout: Duration::from_secs(30),
            });
            let mut out = Vec::new();
            let mut frames = Vec::new();
            ob.drain(|ifx, f| frames.push((ifx, f.to_vec())));
            let mut done = None;
            for (ifx, f) in &frames {
                assert_eq!(*ifx, 7);
                assert!(f.len() - 14 <= 1500);
                let p = ipv4::Packet::new_checked(&f[14..]).expect("valid fragment");
                assert!(p.verify_checksum());
                if p.frag_offset() > 0 && !options.is_empty() {
                    assert_eq!(&p.options()[..7], &[1; 7], "record route became NOPs");
                    assert_eq!(&p.options()[7..], &opts[7..], "copied option kept");
                }
                if let Insert::Complete { len, .. } =
                    r.insert(Instant::from_secs(1), &f[14..], &mut out)
                {
                    done = Some(len);
                }
            }
            assert_eq!(done, Some(ip.len()));
            assert_eq!(&out[20 + options.len()..], &ip[20 + options.len()..]);
            assert_eq!(ob.len(), 0);
        }
    }

    #[test]
    fn small_packets_pass_whole_and_the_outbox_is_bounded() {
        let ip = datagram(100, &[]);
        let mut ob = Outbox::default();
        assert_eq!(queue_fragmented(&mut ob, 1, &[0; 14], &ip, 1500), Ok(1));
        let big = vec![0u8; MAX_BYTES];
        assert_eq!(ob.push(1, &[&big]), Err(DropReason::NoRoom));
        assert_eq!(
            queue_fragmented(&mut ob, 1, &[0; 14], &ip, 20),
            Err(DropReason::TooBig)
        );
    }
}
