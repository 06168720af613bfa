//! Property tests: no input panics; NAT rewrites keep every checksum valid.

use core::net::Ipv4Addr;

use proptest::prelude::*;

use super::fuzzing::{HEADROOM, SEED_SYN, fragments_body, frames_body, lab_engine};
use super::tests::{Pkt, VIP_NAT, run, verify_l4};
use super::{FrameBuf, Verdict};
use crate::time::Instant;
use crate::wire::tcp::{FLAG_ACK, FLAG_SYN};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        frames_body(&data);
        // Straight into handle_frame too, with no headroom and on every interface.
        let mut e = lab_engine();
        for ifindex in [1, 2, 3] {
            let mut buf = data.clone();
            let n = buf.len();
            let mut fb = FrameBuf::new(&mut buf, 0, n).expect("fits");
            let _ = e.handle_frame(Instant::from_millis(1), ifindex, &mut fb);
        }
    }

    #[test]
    fn arbitrary_fragment_sequences_never_panic(
        recs in proptest::collection::vec(
            (
                0u8..2,
                0u8..3,
                prop_oneof![3 => (0u16..3).prop_map(|k| k * 185), 1 => 0u16..400],
                prop_oneof![3 => Just(185u16), 1 => 1u16..186],
                any::<u8>(),
                prop_oneof![4 => Just(0u8), 1 => 0u8..200],
            ),
            1..40,
        )
    ) {
        // Offsets and lengths in 8-byte units, mostly those of 1480-byte fragments, so that
        // datagrams complete as well as overlap, duplicate, leave gaps and time out.
        let mut data = Vec::new();
        for (dir, id, off, len8, flags, wait) in recs {
            let len = len8 * 8 - u16::from(flags & 0x80 != 0) * 3;
            data.extend_from_slice(&[dir, id]);
            data.extend_from_slice(&off.to_be_bytes());
            data.extend_from_slice(&len.to_be_bytes());
            data.extend_from_slice(&[flags & 0x7f, wait]);
        }
        fragments_body(&data);
    }

    #[test]
    fn mutated_syn_never_panics(pos in 0usize..74, byte in any::<u8>(), cut in 0usize..80) {
        let mut f = SEED_SYN.to_vec();
        f[pos] = byte;
        f.truncate(cut.max(1));
        let mut e = lab_engine();
        let mut buf = vec![0u8; HEADROOM + f.len()];
        buf[HEADROOM..].copy_from_slice(&f);
        let mut fb = FrameBuf::new(&mut buf, HEADROOM, f.len()).expect("fits");
        if let Verdict::Tx { .. } | Verdict::Reply { .. } = e.handle_frame(Instant::ZERO, 1, &mut fb) {
            super::fuzzing::check_output(&fb);
        }
    }

    #[test]
    fn nat_rewrite_preserves_checksum_validity(
        client in any::<u32>().prop_filter("unicast", |c| {
            let o = (c >> 24) as u8;
            o != 0 && o != 127 && o < 224 && o != 10 && o != 203
        }),
        cport in 1u16..,
        ttl in 2u8..,
        payload in proptest::collection::vec(any::<u8>(), 0..600),
        udp in any::<bool>(),
    ) {
        let client = Ipv4Addr::from(client);
        let mut e = lab_engine();
        let (inb, dport) = if udp {
            (Pkt::udp(client, cport, VIP_NAT, 53, &payload), 53)
        } else {
            (Pkt::tcp(client, cport, VIP_NAT, 80, FLAG_SYN, &payload), 80)
        };
        let mut inb = inb;
        inb.ttl = ttl;
        let (v, out) = run(&mut e, 1, 1, &inb.frame());
        prop_assert_eq!(v, Verdict::Tx { ifindex: 2 });
        let (s, sp, rip, rp) = verify_l4(&out[14..]);
        prop_assert_eq!((s, sp), (client, cport));
        prop_assert_eq!(out[14 + 8], ttl - 1);
        let reply = if udp {
            Pkt::udp(rip, rp, client, cport, &payload)
        } else {
            Pkt::tcp(rip, rp, client, cport, FLAG_SYN | FLAG_ACK, &payload)
        };
        let (v, out) = run(&mut e, 2, 2, &reply.via_rs().frame());
        prop_assert_eq!(v, Verdict::Tx { ifindex: 1 });
        prop_assert_eq!(verify_l4(&out[14..]), (VIP_NAT, dport, client, cport));
    }
}
