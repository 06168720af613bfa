//! The Internet checksum: RFC 1071 sums, RFC 1624 incremental updates, and the IPv4
//! pseudo-header sum used by TCP and UDP.
//!
//! Sums are carried unfolded in a `u64` (so any buffer up to petabytes can be summed
//! without overflow) and folded to 16 bits at the end. A *checksum* is the one's complement
//! of the folded sum; data including a correct checksum field sums to `0xffff`.

use core::net::Ipv4Addr;

/// One's-complement sum of `data` as big-endian 16-bit words (a trailing odd byte is padded
/// with zero), unfolded.
///
/// Four bytes at a time into a 64-bit accumulator: a big-endian 32-bit word is congruent to
/// the sum of its two 16-bit words modulo 0xffff, and the loop has no carry chain, so the
/// compiler vectorises it (an end-around-carry loop over 64-bit words measured slower).
#[inline]
pub fn sum(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [b] = words.remainder() {
        acc += u64::from(*b) << 8;
    }
    acc
}

/// Folds an unfolded sum to 16 bits (end-around carry).
#[inline]
pub fn fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The checksum of `data`: `!fold(sum(data))`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Finishes a sum into a checksum field value.
#[inline]
pub fn finish(s: u64) -> u16 {
    !fold(s)
}

/// Whether `data` (checksum field included) verifies: its sum folds to `0xffff`.
#[inline]
pub fn verifies(data: &[u8]) -> bool {
    fold(sum(data)) == 0xffff
}

/// Sum of the IPv4 pseudo-header: source, destination, zero + protocol, L4 length.
#[inline]
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u64 {
    let s = u32::from(src);
    let d = u32::from(dst);
    u64::from(s >> 16)
        + u64::from(s & 0xffff)
        + u64::from(d >> 16)
        + u64::from(d & 0xffff)
        + u64::from(protocol)
        + u64::from(len)
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit field changed from `old` to `new`,
/// `HC' = ~(~HC + ~m + m')`.
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    let s = u64::from(!csum) + u64::from(!old) + u64::from(new);
    !fold(s)
}

/// [`update16`] for a 32-bit field (an IPv4 address), both halves at once.
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let s = u64::from(!csum)
        + u64::from(!(old >> 16) & 0xffff)
        + u64::from(!old & 0xffff)
        + u64::from(new >> 16)
        + u64::from(new & 0xffff);
    !fold(s)
}

/// [`update16`] for a UDP checksum: 0 means "no checksum" and stays 0; a result of 0 is
/// sent as `0xffff` (RFC 768).
#[inline]
pub fn update16_udp(csum: u16, old: u16, new: u16) -> u16 {
    if csum == 0 {
        return 0;
    }
    match update16(csum, old, new) {
        0 => 0xffff,
        c => c,
    }
}

/// [`update32`] with the UDP zero rules of [`update16_udp`].
#[inline]
pub fn update32_udp(csum: u16, old: u32, new: u32) -> u16 {
    if csum == 0 {
        return 0;
    }
    match update32(csum, old, new) {
        0 => 0xffff,
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2 (folded).
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d)), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
        // Odd length pads with a zero byte.
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0x12, 0x34, 0xab]), 0x1234 + 0xab00);
    }

    #[test]
    fn sum_matches_word_by_word() {
        let reference = |d: &[u8]| -> u16 {
            let mut acc: u64 = 0;
            for w in d.chunks(2) {
                acc += u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0));
            }
            fold(acc)
        };
        let mut x: u32 = 0x1234_5678;
        let data: Vec<u8> = (0..3000)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 24) as u8
            })
            .collect();
        for n in (0..64).chain([1479, 1480, 1500, 2999, 3000]) {
            assert_eq!(fold(sum(&data[..n])), reference(&data[..n]), "{n} bytes");
        }
        let ones = [0xffu8; 64];
        for n in 0..64 {
            assert_eq!(fold(sum(&ones[..n])), reference(&ones[..n]), "{n} x 0xff");
        }
    }

    #[test]
    fn incremental_matches_recompute() {
        // The IPv4 header from the captures, with the destination rewritten.
        let mut h = [
            0x45, 0x00, 0x00, 0x3c, 0x5f, 0x2a, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0xc6, 0x33,
            0x64, 0x0a, 0xcb, 0x00, 0x71, 0x0a,
        ];
        let c = checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verifies(&h));
        let old = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
        let new = u32::from(Ipv4Addr::new(10, 0, 1, 20));
        h[16..20].copy_from_slice(&new.to_be_bytes());
        let inc = update32(c, old, new);
        h[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(inc, checksum(&h));
        // TTL 64 -> 63 in the TTL/protocol word.
        let w_old = u16::from_be_bytes([h[8], h[9]]);
        h[8] = 63;
        let w_new = u16::from_be_bytes([h[8], h[9]]);
        assert_eq!(update16(inc, w_old, w_new), checksum(&h));
    }

    #[test]
    fn udp_zero_rules() {
        assert_eq!(update16_udp(0, 1, 2), 0);
        assert_eq!(update32_udp(0, 1, 2), 0);
        // A sum that lands on 0 is sent as 0xffff: checksum 0xfffe over a word 0x0001
        // changed to 0x0000 would give !(!0xfffe + !1 + 0) = !(0x0001 + 0xfffe) = 0.
        assert_eq!(update16_udp(0xfffe, 0x0001, 0x0000), 0xffff);
    }

    #[test]
    fn pseudo_header_sum() {
        let s = pseudo_header(Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8), 6, 20);
        assert_eq!(s, 0x0102 + 0x0304 + 0x0506 + 0x0708 + 6 + 20);
    }
}
