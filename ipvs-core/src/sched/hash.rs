//! The kernel hash functions the hashing schedulers use.
//!
//! - [`hash_32`]: `include/linux/hash.h` `hash_32(val, bits)`, multiplicative hashing with
//!   `GOLDEN_RATIO_32` keeping the top `bits` bits. Current kernels key dh, sh, lblc and
//!   lblcr with it. (Older kernels used `(addr * 2654435761) & mask`, which keeps the
//!   *low* bits and so depends only on the last octet; the reference notes describe that
//!   older form.)
//! - [`hsiphash_u32`]: the kernel's `hsiphash()` of one 4-byte word as built on 64-bit
//!   machines, where "HalfSipHash-1-3" is really SipHash-1-3 over 64-bit lanes truncated
//!   to 32 bits (`lib/siphash.c`). mh uses it with fixed keys. The general byte-slice form
//!   is checked against the kernel's own test vectors in the tests below.

/// `GOLDEN_RATIO_32` from `include/linux/hash.h`.
const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// Kernel `hash_32(val, bits)` for `1 <= bits <= 32`: the top `bits` bits of
/// `val * GOLDEN_RATIO_32`.
#[inline]
pub const fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

const SIP_C0: u64 = 0x736f_6d65_7073_6575;
const SIP_C1: u64 = 0x646f_7261_6e64_6f6d;
const SIP_C2: u64 = 0x6c79_6765_6e65_7261;
const SIP_C3: u64 = 0x7465_6462_7974_6573;

#[derive(Clone, Copy)]
struct SipState([u64; 4]);

impl SipState {
    #[inline(always)]
    fn new(key: [u64; 2], len: usize) -> (Self, u64) {
        let s = SipState([
            SIP_C0 ^ key[0],
            SIP_C1 ^ key[1],
            SIP_C2 ^ key[0],
            SIP_C3 ^ key[1],
        ]);
        (s, (len as u64 & 0xff) << 56)
    }

    #[inline(always)]
    fn round(&mut self) {
        let [mut v0, mut v1, mut v2, mut v3] = self.0;
        v0 = v0.wrapping_add(v1);
        v1 = v1.rotate_left(13) ^ v0;
        v0 = v0.rotate_left(32);
        v2 = v2.wrapping_add(v3);
        v3 = v3.rotate_left(16) ^ v2;
        v0 = v0.wrapping_add(v3);
        v3 = v3.rotate_left(21) ^ v0;
        v2 = v2.wrapping_add(v1);
        v1 = v1.rotate_left(17) ^ v2;
        v2 = v2.rotate_left(32);
        self.0 = [v0, v1, v2, v3];
    }

    /// One compression round per 8-byte block (the "1" of 1-3).
    #[inline(always)]
    fn block(&mut self, m: u64) {
        self.0[3] ^= m;
        self.round();
        self.0[0] ^= m;
    }

    /// The final block, then three finalisation rounds (the "3" of 1-3).
    #[inline(always)]
    fn finish(mut self, b: u64) -> u32 {
        self.block(b);
        self.0[2] ^= 0xff;
        self.round();
        self.round();
        self.round();
        let [v0, v1, v2, v3] = self.0;
        // Truncation to the low 32 bits is what the kernel's u32 return does.
        ((v0 ^ v1) ^ (v2 ^ v3)) as u32
    }
}

/// Kernel `hsiphash(&v, 4, key)` on a 64-bit machine (`v` in host = little-endian order).
#[inline]
pub fn hsiphash_u32(v: u32, key: [u64; 2]) -> u32 {
    let (s, b) = SipState::new(key, 4);
    s.finish(b | u64::from(v))
}

/// Kernel `hsiphash(data, len, key)` on a 64-bit machine, for any length.
#[cfg(test)]
pub(crate) fn hsiphash(data: &[u8], key: [u64; 2]) -> u32 {
    let (mut s, mut b) = SipState::new(key, data.len());
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        s.block(u64::from_le_bytes(w));
    }
    for (i, &byte) in chunks.remainder().iter().enumerate() {
        b |= u64::from(byte) << (8 * i);
    }
    s.finish(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lib/siphash_kunit.c` (64-bit): key bytes 00..0f, input bytes 0..len-1.
    const KEY: [u64; 2] = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];
    const VECTORS: [u32; 12] = [
        0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67, 0xc59f22a7,
        0x9bb11140, 0x8d299a8e, 0x6c063de4, 0x92ff097f, 0xf94dc352,
    ];

    #[test]
    fn hsiphash_matches_kernel_test_vectors() {
        let input: Vec<u8> = (0u8..64).collect();
        for (len, want) in VECTORS.iter().enumerate() {
            assert_eq!(hsiphash(&input[..len], KEY), *want, "len {len}");
        }
    }

    #[test]
    fn word_form_matches_byte_form() {
        assert_eq!(
            hsiphash_u32(u32::from_le_bytes([0, 1, 2, 3]), KEY),
            VECTORS[4]
        );
        for v in [0u32, 1, 0xdead_beef, u32::MAX] {
            let k = [2_654_435_761, 2_654_435_761];
            assert_eq!(hsiphash_u32(v, k), hsiphash(&v.to_le_bytes(), k));
        }
    }

    #[test]
    fn hash_32_takes_top_bits() {
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(1, 32), GOLDEN_RATIO_32);
        assert_eq!(hash_32(2, 10), (2u32.wrapping_mul(GOLDEN_RATIO_32)) >> 22);
    }
}
