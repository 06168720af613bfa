//! Fragments through the engine: reassembly, NAT both ways, egress fragmentation, and what
//! happens to fragments that never complete.

use core::net::Ipv4Addr;
use core::time::Duration;

use super::fuzzing::{DIRECTOR_MAC, DIRECTOR_PRIVATE_MAC, GATEWAY_MAC, lab_engine, rs_mac};
use super::outbox::{Outbox, queue_fragmented};
use super::reasm::{Insert, Limits, Reassembler};
use super::tests::{CLIENT, Pkt, VIP_NAT, run};
use super::*;

const RS: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 20);

/// `frame` (untagged) split into fragments of at most `mtu` IP bytes.
fn fragments(frame: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let mut ob = Outbox::default();
    queue_fragmented(&mut ob, 0, &frame[..14], &frame[14..], mtu).expect("fragments");
    let mut v = Vec::new();
    ob.drain(|_, f| v.push(f.to_vec()));
    v
}

/// Drains the outbox: every frame goes out of `ifindex`, to `mac`, within a 1500 MTU;
/// returns the datagram they reassemble to.
fn reassembled_output(e: &mut Engine, ifindex: u32, mac: EthernetAddress) -> Vec<u8> {
    let mut r = Reassembler::new(Limits {
        mem: 1 << 20,
        timeout: Duration::from_secs(30),
    });
    let mut out = Vec::new();
    let mut done = false;
    let mut n = 0;
    e.drain_outbox(|ifx, f| {
        n += 1;
        assert_eq!(ifx, ifindex);
        let eth = ethernet::Frame::new_checked(f).expect("ethernet");
        assert_eq!(eth.dst_addr(), mac);
        assert!(f.len() - 14 <= 1500, "{} bytes", f.len());
        if let Insert::Complete { len, .. } = r.insert(Instant::ZERO, &f[14..], &mut out) {
            out.truncate(len);
            done = true;
        }
    });
    assert!(done && n > 1, "{n} frames, complete: {done}");
    out
}

#[test]
fn nat_udp_3000_bytes_both_ways() {
    let mut e = lab_engine();
    let req: Vec<u8> = (0..3000).map(|i| (i % 251) as u8).collect();
    let mut p = Pkt::udp(CLIENT, 40000, VIP_NAT, 53, &req);
    p.df = false;
    let frags = fragments(&p.frame(), 1500);
    assert_eq!(frags.len(), 3);
    // Out of order: last, first, middle.
    for (k, i) in [2, 0, 1].into_iter().enumerate() {
        let (v, _) = run(&mut e, 1 + k as u64, 1, &frags[i]);
        assert_eq!(v, Verdict::Stolen);
    }
    let ip = reassembled_output(&mut e, 2, rs_mac(RS));
    assert_eq!(super::tests::verify_l4(&ip), (CLIENT, 40000, RS, 5353));
    assert_eq!(&ip[28..], &req[..]);

    let resp: Vec<u8> = (0..3000).map(|i| (i % 13) as u8).collect();
    let mut p = Pkt::udp(RS, 5353, CLIENT, 40000, &resp).via_rs();
    p.df = false;
    for f in fragments(&p.frame(), 1500) {
        assert_eq!(run(&mut e, 10, 2, &f).0, Verdict::Stolen);
    }
    let ip = reassembled_output(&mut e, 1, GATEWAY_MAC);
    assert_eq!(super::tests::verify_l4(&ip), (VIP_NAT, 53, CLIENT, 40000));
    assert_eq!(&ip[28..], &resp[..]);

    let fc = *e.frag_counters();
    assert_eq!((fc.fragments, fc.reassembled, fc.fragments_out), (6, 2, 6));
    assert_eq!(e.counters().stolen, 6);
    assert_eq!(e.reassembly_usage(), (0, 0));
    // The NAT connection counted one datagram each way.
    let d = e.ipvs().services().iter().find_map(|s| {
        (s.key() == crate::service::ServiceKey::udp(VIP_NAT, 53)).then(|| s.dests()[0].id())
    });
    let st = e.dest_stats(d.expect("dest")).expect("stats");
    assert_eq!((st.in_pkts, st.out_pkts), (1, 1));
}

#[test]
fn fragments_that_never_complete_time_out_and_are_counted() {
    let mut e = lab_engine();
    let mut p = Pkt::udp(CLIENT, 40001, VIP_NAT, 53, &[7; 3000]);
    p.df = false;
    let frags = fragments(&p.frame(), 1500);
    assert_eq!(run(&mut e, 1000, 1, &frags[1]).0, Verdict::Stolen);
    assert_eq!(e.reassembly_usage().0, 1);
    let t = e.poll_timeout().expect("a reassembly deadline");
    assert_eq!(t, Instant::from_millis(1000) + e.config().frag_timeout);
    e.handle_timeout(t);
    assert_eq!(e.reassembly_usage(), (0, 0));
    assert_eq!(e.frag_counters().timeouts, 1);
    assert_eq!(e.outbox_len(), 0);
}

#[test]
fn fragments_of_other_traffic_are_the_kernels() {
    let mut e = lab_engine();
    let mut p = Pkt::udp(CLIENT, 40002, Ipv4Addr::new(203, 0, 113, 2), 53, &[7; 3000]);
    p.df = false;
    for f in fragments(&p.frame(), 1500) {
        assert_eq!(run(&mut e, 1, 1, &f).0, Verdict::NotMine);
    }
    // A reassembled datagram that no service wants is not forwarded.
    let mut p = Pkt::udp(CLIENT, 40003, VIP_NAT, 54, &[7; 3000]);
    p.df = false;
    let frags = fragments(&p.frame(), 1500);
    let last = frags.len() - 1;
    for f in &frags[..last] {
        assert_eq!(run(&mut e, 1, 1, f).0, Verdict::Stolen);
    }
    assert_eq!(run(&mut e, 1, 1, &frags[last]).0, Verdict::NotMine);
    assert_eq!(e.outbox_len(), 0);
    let _ = (DIRECTOR_MAC, DIRECTOR_PRIVATE_MAC);
}

#[test]
fn fragments_body_runs_a_complete_datagram() {
    // Two fragments of a 1544-byte UDP datagram (k = 24: 8 + 64 * 24), request then reply.
    let mut seed = Vec::new();
    for dir in [0u8, 1] {
        seed.extend_from_slice(&[dir, 1, 0, 0, 0x05, 0xc8, 1 | (24 << 2), 0]);
        seed.extend_from_slice(&[dir, 1, 0, 185, 0, 64, 24 << 2, 1]);
    }
    super::fuzzing::fragments_body(&seed);
}

#[test]
fn tcp_fragments_to_dr_and_tun_services() {
    let mut e = lab_engine();
    let vip_dr = Ipv4Addr::new(203, 0, 113, 11);
    let vip_tun = Ipv4Addr::new(203, 0, 113, 12);
    for (vip, rs, port) in [
        (vip_dr, Ipv4Addr::new(10, 0, 1, 30), 51000),
        (vip_tun, Ipv4Addr::new(10, 0, 1, 40), 51001),
    ] {
        // A SYN carrying 2000 bytes (as with TCP Fast Open), fragmented by the client.
        let mut p = Pkt::tcp(
            CLIENT,
            port,
            vip,
            80,
            crate::wire::tcp::FLAG_SYN,
            &[9; 2000],
        );
        p.df = false;
        let frags = fragments(&p.frame(), 1500);
        assert_eq!(frags.len(), 2);
        for f in &frags {
            assert_eq!(run(&mut e, 1, 1, f).0, Verdict::Stolen);
        }
        let ip = reassembled_output(&mut e, 2, rs_mac(rs));
        let p = ipv4::Packet::new_checked(&ip[..]).expect("ip");
        if vip == vip_dr {
            // DR: the datagram as the client sent it, TTL decremented.
            assert_eq!((p.dst_addr(), p.ttl()), (vip, 63));
            assert_eq!(super::tests::verify_l4(&ip), (CLIENT, port, vip, 80));
        } else {
            // TUN: the outer packet was fragmented; inside, the whole datagram.
            assert_eq!((p.dst_addr(), p.next_header()), (rs, IpProtocol::IpIp));
            let inner = p.payload();
            assert_eq!(super::tests::verify_l4(inner), (CLIENT, port, vip, 80));
        }
    }
    assert_eq!(e.frag_counters().reassembled, 2);
}

#[test]
fn nat_reply_too_big_is_fragmented_or_answered_with_frag_needed() {
    let mut e = lab_engine();
    // Open the UDP connection.
    let p = Pkt::udp(CLIENT, 40010, VIP_NAT, 53, b"q");
    assert!(matches!(
        run(&mut e, 1, 1, &p.frame()).0,
        Verdict::Tx { .. }
    ));
    // A 1600-byte reply (a real server with a larger MTU than the client side) without DF:
    // two fragments toward the client.
    let mut r = Pkt::udp(RS, 5353, CLIENT, 40010, &[5; 1572]).via_rs();
    r.df = false;
    assert_eq!(run(&mut e, 2, 2, &r.frame()).0, Verdict::Stolen);
    let ip = reassembled_output(&mut e, 1, GATEWAY_MAC);
    assert_eq!(super::tests::verify_l4(&ip), (VIP_NAT, 53, CLIENT, 40010));
    // With DF: frag-needed back to the real server, from the director's private address.
    r.df = true;
    let (v, out) = run(&mut e, 3, 2, &r.frame());
    assert_eq!(v, Verdict::Reply { ifindex: 2 });
    let p = ipv4::Packet::new_checked(&out[14..]).expect("ip");
    assert_eq!(
        (p.src_addr(), p.dst_addr(), p.next_header()),
        (Ipv4Addr::new(10, 0, 1, 1), RS, IpProtocol::Icmp)
    );
    let m = crate::wire::icmp::Packet::new_checked(p.payload()).expect("icmp");
    assert_eq!(m.next_hop_mtu(), 1500);
}
