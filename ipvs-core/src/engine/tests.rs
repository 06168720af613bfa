//! Engine tests, one per verdict path, with frames built by the `wire` emitters and every
//! checksum verified by recomputing it from scratch.

use core::net::Ipv4Addr;

use super::fuzzing::{
    DIRECTOR_MAC, DIRECTOR_PRIVATE_MAC, GATEWAY_MAC, HEADROOM, check_output, lab_engine, rs_mac,
};
use super::*;
use crate::wire::icmp::{self as wicmp, CODE_FRAG_NEEDED};
use crate::wire::tcp::{FLAG_ACK, FLAG_SYN};
use crate::wire::{arp, be16, checksum};

pub(super) const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub(super) const VIP_NAT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const VIP_DR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);
const VIP_TUN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 12);
const VIP_FWM: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 13);
const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// What goes into a test frame.
#[derive(Debug, Clone)]
pub(super) struct Pkt {
    pub src_mac: EthernetAddress,
    pub dst_mac: EthernetAddress,
    pub vlan: Option<u16>,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub df: bool,
    pub frag: u16,
    pub proto: IpProtocol,
    /// L4 bytes (built with the wire emitters, or raw).
    pub l4: Vec<u8>,
}

impl Pkt {
    pub(super) fn tcp(
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        flags: u8,
        payload: &[u8],
    ) -> Pkt {
        let r = tcp::Repr {
            src_port: sport,
            dst_port: dport,
            seq_number: 1000,
            ack_number: if flags & FLAG_ACK != 0 { 2000 } else { 0 },
            flags,
            window_len: 64240,
            urgent_at: 0,
            options: &[2, 4, 5, 0xb4],
            payload,
        };
        let mut l4 = vec![0; r.buffer_len()];
        r.emit(&mut l4, src, dst);
        Pkt::with_l4(src, dst, IpProtocol::Tcp, l4)
    }

    pub(super) fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Pkt {
        let r = udp::Repr {
            src_port: sport,
            dst_port: dport,
            payload,
        };
        let mut l4 = vec![0; r.buffer_len()];
        r.emit(&mut l4, src, dst);
        Pkt::with_l4(src, dst, IpProtocol::Udp, l4)
    }

    fn icmp(src: Ipv4Addr, dst: Ipv4Addr, repr: wicmp::Repr<'_>) -> Pkt {
        let mut l4 = vec![0; repr.buffer_len()];
        repr.emit(&mut l4);
        Pkt::with_l4(src, dst, IpProtocol::Icmp, l4)
    }

    fn with_l4(src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, l4: Vec<u8>) -> Pkt {
        Pkt {
            src_mac: GATEWAY_MAC,
            dst_mac: DIRECTOR_MAC,
            vlan: None,
            src,
            dst,
            ttl: 64,
            df: true,
            frag: 0,
            proto,
            l4,
        }
    }

    /// From a real server on the private side.
    pub(super) fn via_rs(mut self) -> Pkt {
        self.src_mac = rs_mac(self.src);
        self.dst_mac = DIRECTOR_PRIVATE_MAC;
        self
    }

    pub(super) fn ip_bytes(&self) -> Vec<u8> {
        let r = ipv4::Repr {
            src_addr: self.src,
            dst_addr: self.dst,
            next_header: self.proto,
            payload_len: self.l4.len(),
            ttl: self.ttl,
            dscp_ecn: 0,
            ident: 0x1234,
            dont_frag: self.df,
        };
        let mut b = vec![0; r.buffer_len()];
        r.emit(&mut b);
        if self.frag != 0 {
            let mut p = ipv4::Packet::new_unchecked(&mut b[..]);
            p.set_flags_frag_word(p.flags_frag_word() | self.frag);
            p.fill_checksum();
        }
        b[20..].copy_from_slice(&self.l4);
        b
    }

    pub(super) fn frame(&self) -> Vec<u8> {
        let e = ethernet::Repr {
            src_addr: self.src_mac,
            dst_addr: self.dst_mac,
            vlan_tci: self.vlan,
            ethertype: EtherType::Ipv4,
        };
        let mut f = vec![0; e.header_len()];
        e.emit(&mut f);
        f.extend_from_slice(&self.ip_bytes());
        f
    }
}

/// Runs one frame through the engine with lab headroom; returns the verdict and the output
/// frame (checked when sent).
pub(super) fn run(e: &mut Engine, now_ms: u64, ifindex: u32, frame: &[u8]) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; HEADROOM + frame.len() + 600];
    buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    let mut fb = FrameBuf::new(&mut buf, HEADROOM, frame.len()).expect("fits");
    let v = e.handle_frame(Instant::from_millis(now_ms), ifindex, &mut fb);
    if matches!(v, Verdict::Tx { .. } | Verdict::Reply { .. }) {
        check_output(&fb);
    }
    (v, fb.frame().to_vec())
}

/// Splits an output frame into (Ethernet repr, IP bytes).
fn split(out: &[u8]) -> (ethernet::Repr, Vec<u8>) {
    let f = ethernet::Frame::new_checked(out).expect("frame");
    let r = ethernet::Repr::parse(&f).expect("eth");
    (r, f.payload().to_vec())
}

/// Verifies IP and L4 checksums from scratch; returns (src, sport, dst, dport).
pub(super) fn verify_l4(ip: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let p = ipv4::Packet::new_checked(ip).expect("ip");
    assert!(p.verify_checksum(), "ip checksum");
    let (s, d) = (p.src_addr(), p.dst_addr());
    match p.next_header() {
        IpProtocol::Tcp => {
            let t = tcp::Packet::new_checked(p.payload()).expect("tcp");
            assert!(t.verify_checksum(s, d), "tcp checksum");
            (s, t.src_port(), d, t.dst_port())
        }
        IpProtocol::Udp => {
            let u = udp::Packet::new_checked(p.payload()).expect("udp");
            assert!(u.verify_checksum(s, d), "udp checksum");
            (s, u.src_port(), d, u.dst_port())
        }
        other => panic!("unexpected protocol {other:?}"),
    }
}

fn syn(dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    Pkt::tcp(CLIENT, 51000, dst, dport, FLAG_SYN, b"").frame()
}

#[test]
fn nat_in_and_out_rewrite_with_port_mapping() {
    let mut e = lab_engine();
    let (v, out) = run(&mut e, 1, 1, &syn(VIP_NAT, 80));
    assert_eq!(v, Verdict::Tx { ifindex: 2 });
    let (eth, ip) = split(&out);
    let (s, sp, rip, rp) = verify_l4(&ip);
    assert_eq!((s, sp, rp), (CLIENT, 51000, 8080));
    assert!(rip == Ipv4Addr::new(10, 0, 1, 20) || rip == Ipv4Addr::new(10, 0, 1, 21));
    assert_eq!(eth.dst_addr, rs_mac(rip));
    assert_eq!(eth.src_addr, DIRECTOR_PRIVATE_MAC);
    assert_eq!(eth.vlan_tci, None);
    assert_eq!(ip[8], 63, "TTL decremented");

    // The SYN-ACK from the real server goes back to the gateway with the VIP as source.
    let reply = Pkt::tcp(rip, 8080, CLIENT, 51000, FLAG_SYN | FLAG_ACK, b"").via_rs();
    let (v, out) = run(&mut e, 2, 2, &reply.frame());
    assert_eq!(v, Verdict::Tx { ifindex: 1 });
    let (eth, ip) = split(&out);
    assert_eq!(verify_l4(&ip), (VIP_NAT, 80, CLIENT, 51000));
    assert_eq!((eth.src_addr, eth.dst_addr), (DIRECTOR_MAC, GATEWAY_MAC));

    // Data in both directions, payload untouched.
    let data = Pkt::tcp(
        CLIENT,
        51000,
        VIP_NAT,
        80,
        FLAG_ACK,
        b"GET / HTTP/1.1\r\n\r\n",
    );
    let (v, out) = run(&mut e, 3, 1, &data.frame());
    assert_eq!(v, Verdict::Tx { ifindex: 2 });
    let (_, ip) = split(&out);
    verify_l4(&ip);
    assert!(ip.ends_with(b"GET / HTTP/1.1\r\n\r\n"));

    let key = ServiceKey::tcp(VIP_NAT, 80);
    let st = e.service_stats(&key);
    assert_eq!((st.conns, st.in_pkts, st.out_pkts), (1, 2, 1));
    assert_eq!(
        st.in_bytes,
        (data.ip_bytes().len() + syn(VIP_NAT, 80).len() - 14) as u64
    );
    let dest = e
        .ipvs()
        .services()
        .get(&key)
        .expect("svc")
        .find_dest(rip, 8080)
        .expect("d")
        .id();
    assert_eq!(e.dest_stats(dest), Some(st));
    assert_eq!(e.counters().tx_in, 2);
    assert_eq!(e.counters().tx_out, 1);
}

#[test]
fn dr_rewrites_only_macs() {
    let mut e = lab_engine();
    let input = syn(VIP_DR, 80);
    let (v, out) = run(&mut e, 1, 1, &input);
    assert_eq!(v, Verdict::Tx { ifindex: 2 });
    let (eth, ip) = split(&out);
    let rs = Ipv4Addr::new(10, 0, 1, 30);
    assert_eq!(
        (eth.src_addr, eth.dst_addr),
        (DIRECTOR_PRIVATE_MAC, rs_mac(rs))
    );
    assert_eq!(verify_l4(&ip), (CLIENT, 51000, VIP_DR, 80));
    let mut expect = input[14..].to_vec();
    expect[8] -= 1; // TTL
    ipv4::Packet::new_unchecked(&mut expect[..]).fill_checksum();
    assert_eq!(ip, expect);
}

#[test]
fn tun_encapsulates_in_headroom() {
    let mut e = lab_engine();
    let input = syn(VIP_TUN, 80);
    let mut buf = vec![0u8; HEADROOM + input.len()];
    buf[HEADROOM..].copy_from_slice(&input);
    let mut fb = FrameBuf::new(&mut buf, HEADROOM, input.len()).expect("fits");
    let v = e.handle_frame(Instant::from_millis(1), 1, &mut fb);
    assert_eq!(v, Verdict::Tx { ifindex: 2 });
    assert_eq!(fb.start(), HEADROOM - 20);
    assert_eq!(fb.len(), input.len() + 20);
    check_output(&fb);
    let (eth, outer) = split(fb.frame());
    assert_eq!(eth.dst_addr, rs_mac(Ipv4Addr::new(10, 0, 1, 40)));
    let o = ipv4::Packet::new_checked(&outer[..]).expect("outer");
    let r = ipv4::Repr::parse(&o).expect("valid outer");
    assert_eq!(r.src_addr, Ipv4Addr::new(10, 0, 1, 1));
    assert_eq!(r.dst_addr, Ipv4Addr::new(10, 0, 1, 40));
    assert_eq!(r.next_header, IpProtocol::IpIp);
    assert_eq!((r.ttl, r.dont_frag), (64, true));
    let inner = crate::wire::ipip::decapsulate(&o).expect("inner");
    assert_eq!(inner.ttl(), 63);
    assert_eq!(verify_l4(inner.into_inner()), (CLIENT, 51000, VIP_TUN, 80));
    // Exact bytes of the outer header.
    assert_eq!(
        outer[..20],
        [
            0x45, 0x00, 0x00, 0x40, 0x12, 0x34, 0x40, 0x00, 0x40, 0x04, outer[10], outer[11], 10,
            0, 1, 1, 10, 0, 1, 40
        ]
    );
    assert!(checksum::verifies(&outer[..20]));

    // Without headroom the tunnel cannot be built.
    let data = Pkt::tcp(CLIENT, 51000, VIP_TUN, 80, FLAG_ACK, b"x").frame();
    let mut buf2 = data.clone();
    let mut fb2 = FrameBuf::new(&mut buf2, 0, data.len()).expect("fits");
    assert_eq!(
        e.handle_frame(Instant::from_millis(2), 1, &mut fb2),
        Verdict::Drop(DropReason::NoRoom)
    );
}

#[test]
fn tun_too_big_with_df_answers_frag_needed() {
    let mut e = lab_engine();
    let big = Pkt::tcp(CLIENT, 51000, VIP_TUN, 80, FLAG_SYN, &[0xab; 1460]);
    let input = big.frame();
    assert_eq!(input.len(), 14 + 1500 + 4);
    let (v, out) = run(&mut e, 1, 1, &input);
    assert_eq!(v, Verdict::Reply { ifindex: 1 });
    let (eth, ip) = split(&out);
    assert_eq!((eth.src_addr, eth.dst_addr), (DIRECTOR_MAC, GATEWAY_MAC));
    let p = ipv4::Packet::new_checked(&ip[..]).expect("ip");
    assert_eq!((p.src_addr(), p.dst_addr()), (VIP_TUN, CLIENT));
    assert_eq!(p.next_header(), IpProtocol::Icmp);
    let m = wicmp::Packet::new_checked(p.payload()).expect("icmp");
    assert!(m.verify_checksum());
    assert_eq!(
        (m.msg_type(), m.msg_code(), m.next_hop_mtu()),
        (Message::DstUnreachable, CODE_FRAG_NEEDED, 1480)
    );
    assert_eq!(p.total_len(), 576);
    let q = m.quoted().expect("quote");
    assert_eq!(q.into_inner(), &input[14..14 + 548]);
    assert_eq!(e.counters().replies, 1);
    // DF clear: the outer packet is fragmented (`ip_vs_tunnel_xmit` copies DF to the
    // outer header and the kernel fragments it), through the outbox.
    let mut nodf = big.clone();
    nodf.df = false;
    nodf.l4 = Pkt::tcp(CLIENT, 51001, VIP_TUN, 80, FLAG_SYN, &[0xab; 1460]).l4;
    let (v, _) = run(&mut e, 2, 1, &nodf.frame());
    assert_eq!(v, Verdict::Stolen);
    let mut frames = Vec::new();
    e.drain_outbox(|ifindex, f| frames.push((ifindex, f.to_vec())));
    assert_eq!(frames.len(), 2);
    let mut carried = 0;
    for (i, (ifindex, f)) in frames.iter().enumerate() {
        assert_eq!(*ifindex, 2);
        let p = ipv4::Packet::new_checked(&f[14..]).expect("outer fragment");
        assert!(p.verify_checksum() && f.len() - 14 <= 1500);
        assert_eq!(p.next_header(), IpProtocol::IpIp);
        assert_eq!(p.more_frags(), i == 0);
        assert_eq!(usize::from(p.frag_offset()), carried);
        carried += p.payload().len();
    }
    assert_eq!(carried, nodf.frame().len() - 14);
    assert_eq!(e.frag_counters().fragments_out, 2);
    // 1480 bytes fit.
    let (v, _) = run(
        &mut e,
        3,
        1,
        &Pkt::tcp(CLIENT, 51002, VIP_TUN, 80, FLAG_SYN, &[1; 1436]).frame(),
    );
    assert_eq!(v, Verdict::Tx { ifindex: 2 });
}

#[test]
fn icmp_errors_follow_a_nat_connection_both_ways() {
    let mut e = lab_engine();
    let (_, out) = run(&mut e, 1, 1, &syn(VIP_NAT, 80));
    let (_, ip) = split(&out);
    let (_, _, rip, _) = verify_l4(&ip);
    let state_before = e
        .ipvs()
        .conns()
        .conns(Instant::from_millis(1))
        .next()
        .expect("conn");

    // Client side: a router says the reply VIP:80 -> client needs fragmenting.
    let reply = Pkt::tcp(VIP_NAT, 80, CLIENT, 51000, FLAG_ACK, &[0; 1440]).ip_bytes();
    let err = wicmp::Repr::DstUnreachable {
        code: CODE_FRAG_NEEDED,
        next_hop_mtu: 1400,
        quoted: &reply[..28],
    };
    let (v, out) = run(&mut e, 2, 1, &Pkt::icmp(ROUTER, VIP_NAT, err).frame());
    assert_eq!(v, Verdict::Tx { ifindex: 2 });
    let (eth, ip) = split(&out);
    assert_eq!(eth.dst_addr, rs_mac(rip));
    let p = ipv4::Packet::new_checked(&ip[..]).expect("ip");
    assert!(p.verify_checksum());
    assert_eq!((p.src_addr(), p.dst_addr()), (ROUTER, rip));
    let m = wicmp::Packet::new_checked(p.payload()).expect("icmp");
    assert!(m.verify_checksum());
    assert_eq!(m.next_hop_mtu(), 1400);
    let q = m.quoted().expect("quote");
    assert!(q.verify_checksum());
    assert_eq!((q.src_addr(), q.dst_addr()), (rip, CLIENT));
    assert_eq!((be16(q.payload(), 0), be16(q.payload(), 2)), (8080, 51000));

    // Real-server side: the RS reports port unreachable about client -> RIP:8080.
    let fwd = Pkt::tcp(CLIENT, 51000, rip, 8080, FLAG_ACK, b"data").ip_bytes();
    let err = wicmp::Repr::DstUnreachable {
        code: 3,
        next_hop_mtu: 0,
        quoted: &fwd[..],
    };
    let (v, out) = run(&mut e, 3, 2, &Pkt::icmp(rip, CLIENT, err).via_rs().frame());
    assert_eq!(v, Verdict::Tx { ifindex: 1 });
    let (eth, ip) = split(&out);
    assert_eq!(eth.dst_addr, GATEWAY_MAC);
    let p = ipv4::Packet::new_checked(&ip[..]).expect("ip");
    assert!(p.verify_checksum());
    assert_eq!((p.src_addr(), p.dst_addr()), (VIP_NAT, CLIENT));
    let m = wicmp::Packet::new_checked(p.payload()).expect("icmp");
    assert!(m.verify_checksum());
    let q = m.quoted().expect("quote");
    assert!(q.verify_checksum());
    assert_eq!((q.src_addr(), q.dst_addr()), (CLIENT, VIP_NAT));
    // The whole TCP segment was quoted, so its checksum must still verify.
    let t = tcp::Packet::new_checked(q.payload()).expect("tcp");
    assert_eq!(t.dst_port(), 80);
    assert!(t.verify_checksum(CLIENT, VIP_NAT));
    assert_eq!(e.counters().icmp_followed, 2);
    // Errors do not touch the connection.
    let after = e
        .ipvs()
        .conns()
        .conns(Instant::from_millis(3))
        .next()
        .expect("conn");
    assert_eq!(
        (after.state, after.expires),
        (state_before.state, state_before.expires)
    );

    // An error about an unknown flow is the kernel's.
    let other = Pkt::tcp(VIP_NAT, 80, CLIENT, 1, FLAG_ACK, b"").ip_bytes();
    let err = wicmp::Repr::TimeExceeded {
        code: 0,
        quoted: &other[..28],
    };
    assert_eq!(
        run(&mut e, 4, 1, &Pkt::icmp(ROUTER, VIP_NAT, err).frame()).0,
        Verdict::NotMine
    );
}

#[test]
fn icmp_error_for_dr_is_forwarded_unchanged() {
    let mut e = lab_engine();
    run(&mut e, 1, 1, &syn(VIP_DR, 80));
    let reply = Pkt::tcp(VIP_DR, 80, CLIENT, 51000, FLAG_ACK, b"").ip_bytes();
    let err = wicmp::Repr::DstUnreachable {
        code: CODE_FRAG_NEEDED,
        next_hop_mtu: 1400,
        quoted: &reply[..28],
    };
    let input = Pkt::icmp(ROUTER, VIP_DR, err).frame();
    let (v, out) = run(&mut e, 2, 1, &input);
    assert_eq!(v, Verdict::Tx { ifindex: 2 });
    let (eth, ip) = split(&out);
    assert_eq!(eth.dst_addr, rs_mac(Ipv4Addr::new(10, 0, 1, 30)));
    assert_eq!(ip[20..], input[34..]);
}

#[test]
fn udp_nat_and_zero_checksum() {
    let mut e = lab_engine();
    let q = Pkt::udp(CLIENT, 40000, VIP_NAT, 53, b"\xa1\xb2\x01\x00\x00\x01");
    let (v, out) = run(&mut e, 1, 1, &q.frame());
    assert_eq!(v, Verdict::Tx { ifindex: 2 });
    let (_, ip) = split(&out);
    assert_eq!(
        verify_l4(&ip),
        (CLIENT, 40000, Ipv4Addr::new(10, 0, 1, 20), 5353)
    );
    let a = Pkt::udp(Ipv4Addr::new(10, 0, 1, 20), 5353, CLIENT, 40000, b"answer").via_rs();
    let (v, out) = run(&mut e, 2, 2, &a.frame());
    assert_eq!(v, Verdict::Tx { ifindex: 1 });
    assert_eq!(verify_l4(&split(&out).1), (VIP_NAT, 53, CLIENT, 40000));
    let mut z = Pkt::udp(CLIENT, 40001, VIP_NAT, 53, b"x");
    z.l4[6] = 0;
    z.l4[7] = 0;
    let (v, out) = run(&mut e, 3, 1, &z.frame());
    assert_eq!(v, Verdict::Tx { ifindex: 2 });
    let (_, ip) = split(&out);
    assert_eq!(be16(&ip, 26), 0, "UDP checksum 0 stays 0");
}

#[test]
fn fwmark_service_with_persistence() {
    let mut e = lab_engine();
    let rs = Ipv4Addr::new(10, 0, 1, 20);
    let (v, out) = run(&mut e, 1, 1, &syn(VIP_FWM, 8080));
    assert_eq!(v, Verdict::Tx { ifindex: 2 });
    assert_eq!(
        verify_l4(&split(&out).1),
        (CLIENT, 51000, rs, 8080),
        "port 0 keeps the port"
    );
    let (v, out) = run(
        &mut e,
        2,
        1,
        &Pkt::tcp(CLIENT, 51001, VIP_FWM, 8443, FLAG_SYN, b"").frame(),
    );
    assert_eq!(v, Verdict::Tx { ifindex: 2 });
    assert_eq!(verify_l4(&split(&out).1).2, rs);
    assert_eq!(e.ipvs().stats().template_hits, 1);
    // Outside the rule's ports: no mark, no service.
    assert_eq!(run(&mut e, 3, 1, &syn(VIP_FWM, 9000)).0, Verdict::NotMine);
    let st = e.service_stats(&ServiceKey::Fwmark(7));
    assert_eq!((st.conns, st.in_pkts), (2, 2));
}

#[test]
fn vlan_tag_follows_the_interface() {
    let mut e = lab_engine();
    let client = Ipv4Addr::new(198, 18, 100, 50);
    let mut p = Pkt::tcp(client, 40000, VIP_NAT, 80, FLAG_SYN, b"");
    p.vlan = Some(100);
    p.src_mac = EthernetAddress([2, 0, 0, 0, 9, 9]);
    let (v, out) = run(&mut e, 1, 1, &p.frame());
    assert_eq!(v, Verdict::Tx { ifindex: 2 });
    let (eth, ip) = split(&out);
    assert_eq!(eth.vlan_tci, None);
    let (_, _, rip, _) = verify_l4(&ip);
    let r = Pkt::tcp(rip, 8080, client, 40000, FLAG_SYN | FLAG_ACK, b"").via_rs();
    let (v, out) = run(&mut e, 2, 2, &r.frame());
    assert_eq!(v, Verdict::Tx { ifindex: 1 });
    let (eth, ip) = split(&out);
    assert_eq!(eth.vlan_tci, Some(100));
    assert_eq!(eth.dst_addr, EthernetAddress([2, 0, 0, 0, 9, 9]));
    assert_eq!(verify_l4(&ip).0, VIP_NAT);
    // A tag no interface has is not ours.
    p.vlan = Some(200);
    assert_eq!(run(&mut e, 3, 1, &p.frame()).0, Verdict::NotMine);
}

#[test]
fn neighbour_resolution_round_trip() {
    let mut e = lab_engine();
    let rs = Ipv4Addr::new(10, 0, 1, 30);
    assert_eq!(e.remove_neighbour(2, rs), Some(rs_mac(rs)));
    let nn = DropReason::NoNeighbour { ifindex: 2, ip: rs };
    assert_eq!(run(&mut e, 1, 1, &syn(VIP_DR, 80)).0, Verdict::Drop(nn));
    assert_eq!(run(&mut e, 2, 1, &syn(VIP_DR, 80)).0, Verdict::Drop(nn));
    assert_eq!(e.take_unresolved().collect::<Vec<_>>(), vec![(2, rs)]);
    assert_eq!(e.take_unresolved().count(), 0);
    e.set_neighbour(2, rs, rs_mac(rs));
    assert_eq!(
        run(&mut e, 3, 1, &syn(VIP_DR, 80)).0,
        Verdict::Tx { ifindex: 2 }
    );
    assert_eq!(e.drop_counts().get(nn), 2);
    // The connection was created by the first SYN and counted once.
    assert_eq!(e.service_stats(&ServiceKey::tcp(VIP_DR, 80)).conns, 1);
}

#[test]
fn reply_without_learned_hop_is_routed() {
    let mut e = lab_engine();
    let (_, out) = run(&mut e, 1, 1, &syn(VIP_NAT, 80));
    let rip = verify_l4(&split(&out).1).2;
    e.clear_prev_hops();
    let r = Pkt::tcp(rip, 8080, CLIENT, 51000, FLAG_SYN | FLAG_ACK, b"").via_rs();
    let (v, out) = run(&mut e, 2, 2, &r.frame());
    assert_eq!(v, Verdict::Tx { ifindex: 1 });
    assert_eq!(split(&out).0.dst_addr, GATEWAY_MAC);
}

#[test]
fn no_destination_answers_port_unreachable() {
    let mut e = lab_engine();
    let key = ServiceKey::tcp(Ipv4Addr::new(203, 0, 113, 14), 80);
    e.ipvs_mut()
        .add_service(key, crate::types::SchedulerKind::Rr, &[], None)
        .expect("add");
    let (v, out) = run(&mut e, 1, 1, &syn(Ipv4Addr::new(203, 0, 113, 14), 80));
    assert_eq!(v, Verdict::Reply { ifindex: 1 });
    let (_, ip) = split(&out);
    let p = ipv4::Packet::new_checked(&ip[..]).expect("ip");
    let m = wicmp::Packet::new_checked(p.payload()).expect("icmp");
    assert_eq!((m.msg_type(), m.msg_code()), (Message::DstUnreachable, 3));
    assert!(m.verify_checksum());
    // The quote of a short SYN used tailroom.
    assert_eq!(m.quoted().expect("quote").into_inner().len(), 44);
}

#[test]
fn icmp_rate_limit() {
    let mut cfg = super::fuzzing::lab_config();
    cfg.icmp_errors_per_sec = 1;
    let mut e = Engine::new(cfg, Ipvs::new(crate::ipvs::IpvsConfig::default())).expect("cfg");
    let key = ServiceKey::tcp(VIP_NAT, 80);
    e.ipvs_mut()
        .add_service(key, crate::types::SchedulerKind::Rr, &[], None)
        .expect("add");
    assert!(matches!(
        run(&mut e, 0, 1, &syn(VIP_NAT, 80)).0,
        Verdict::Reply { .. }
    ));
    assert_eq!(
        run(&mut e, 10, 1, &syn(VIP_NAT, 80)).0,
        Verdict::Drop(DropReason::NoDestination)
    );
    assert!(matches!(
        run(&mut e, 1010, 1, &syn(VIP_NAT, 80)).0,
        Verdict::Reply { .. }
    ));
}

#[test]
fn bad_input_is_dropped_and_counted() {
    let mut e = lab_engine();
    let good = syn(VIP_NAT, 80);
    // Truncated Ethernet, IP header, IP total length.
    assert_eq!(
        run(&mut e, 1, 1, &good[..10]).0,
        Verdict::Drop(DropReason::Truncated)
    );
    assert_eq!(
        run(&mut e, 1, 1, &good[..30]).0,
        Verdict::Drop(DropReason::Truncated)
    );
    assert_eq!(
        run(&mut e, 1, 1, &good[..50]).0,
        Verdict::Drop(DropReason::Truncated)
    );
    // Malformed: IHL 4.
    let mut b = good.clone();
    b[14] = 0x44;
    assert_eq!(
        run(&mut e, 1, 1, &b).0,
        Verdict::Drop(DropReason::Malformed)
    );
    // Bad IP checksum.
    let mut b = good.clone();
    b[24] ^= 0xff;
    assert_eq!(
        run(&mut e, 1, 1, &b).0,
        Verdict::Drop(DropReason::BadIpChecksum)
    );
    // TCP data offset below 5, to a VIP.
    let mut p = Pkt::tcp(CLIENT, 1, VIP_NAT, 80, FLAG_SYN, b"");
    p.l4[12] = 0x40;
    assert_eq!(
        run(&mut e, 1, 1, &p.frame()).0,
        Verdict::Drop(DropReason::Malformed)
    );
    // Fragments to a VIP go to reassembly: well-formed ones are held, an overlapping one
    // is dropped with its datagram. To anything else they are the kernel's.
    let mut p = Pkt::tcp(CLIENT, 2, VIP_NAT, 80, FLAG_SYN, b"");
    assert_eq!(p.l4.len() % 8, 0);
    p.frag = ipv4::FLAG_MF;
    assert_eq!(run(&mut e, 1, 1, &p.frame()).0, Verdict::Stolen);
    p.frag = 100;
    assert_eq!(run(&mut e, 1, 1, &p.frame()).0, Verdict::Stolen);
    assert_eq!(e.reassembly_usage().0, 1);
    p.frag = ipv4::FLAG_MF | 1;
    assert_eq!(
        run(&mut e, 1, 1, &p.frame()).0,
        Verdict::Drop(DropReason::Fragment)
    );
    assert_eq!(e.frag_counters().overlaps, 1);
    assert_eq!(e.reassembly_usage(), (0, 0));
    p.dst = Ipv4Addr::new(203, 0, 113, 2);
    assert_eq!(run(&mut e, 1, 1, &p.frame()).0, Verdict::NotMine);
    // Martian and spoofed sources.
    for src in [
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(0, 1, 2, 3),
        VIP_DR,
        Ipv4Addr::new(203, 0, 113, 2),
        VIP_NAT,
    ] {
        let p = Pkt::tcp(src, 1, VIP_NAT, 80, FLAG_SYN, b"");
        assert_eq!(
            run(&mut e, 1, 1, &p.frame()).0,
            Verdict::Drop(DropReason::Martian),
            "{src}"
        );
    }
    // TTL 1.
    let mut p = Pkt::tcp(CLIENT, 3, VIP_NAT, 80, FLAG_SYN, b"");
    p.ttl = 1;
    assert_eq!(
        run(&mut e, 1, 1, &p.frame()).0,
        Verdict::Drop(DropReason::TtlExceeded)
    );
    let d = e.drop_counts();
    assert_eq!(d.get(DropReason::Truncated), 3);
    assert_eq!(d.get(DropReason::Fragment), 1);
    assert_eq!(d.get(DropReason::Martian), 5);
    assert_eq!(e.counters().dropped, d.0.iter().sum::<u64>());
    assert_eq!(d.iter().count(), DropReason::COUNT);
}

#[test]
fn not_mine() {
    let mut e = lab_engine();
    // ARP.
    let a = arp::Repr {
        operation: arp::Operation::Request,
        source_hardware_addr: GATEWAY_MAC,
        source_protocol_addr: Ipv4Addr::new(203, 0, 113, 1),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: VIP_NAT,
    };
    let mut f = vec![0u8; 14 + 28];
    ethernet::Repr {
        src_addr: GATEWAY_MAC,
        dst_addr: EthernetAddress::BROADCAST,
        vlan_tci: None,
        ethertype: EtherType::Arp,
    }
    .emit(&mut f);
    a.emit(&mut f[14..]);
    assert_eq!(run(&mut e, 1, 1, &f).0, Verdict::NotMine);
    // Ping to the VIP.
    let ping = wicmp::Repr::EchoRequest {
        ident: 1,
        seq_no: 1,
        data: b"abcdefgh",
    };
    assert_eq!(
        run(&mut e, 1, 1, &Pkt::icmp(CLIENT, VIP_NAT, ping).frame()).0,
        Verdict::NotMine
    );
    // SSH to the director, a port without service, a non-SYN without connection.
    assert_eq!(
        run(&mut e, 1, 1, &syn(Ipv4Addr::new(203, 0, 113, 2), 22)).0,
        Verdict::NotMine
    );
    assert_eq!(run(&mut e, 1, 1, &syn(VIP_NAT, 443)).0, Verdict::NotMine);
    let ack = Pkt::tcp(CLIENT, 4, VIP_NAT, 80, FLAG_ACK, b"");
    assert_eq!(run(&mut e, 1, 1, &ack.frame()).0, Verdict::NotMine);
    // Another MAC, an unknown interface, multicast.
    let mut p = Pkt::tcp(CLIENT, 5, VIP_NAT, 80, FLAG_SYN, b"");
    p.dst_mac = EthernetAddress([2, 9, 9, 9, 9, 9]);
    assert_eq!(run(&mut e, 1, 1, &p.frame()).0, Verdict::NotMine);
    assert_eq!(run(&mut e, 1, 7, &syn(VIP_NAT, 80)).0, Verdict::NotMine);
    let mut p = Pkt::udp(CLIENT, 5, Ipv4Addr::new(224, 0, 0, 251), 5353, b"");
    p.dst_mac = DIRECTOR_MAC;
    assert_eq!(run(&mut e, 1, 1, &p.frame()).0, Verdict::NotMine);
    assert_eq!(e.counters().not_mine, 8);
    assert_eq!(e.counters().dropped, 0);
}

#[test]
fn removed_destination_drops_and_stats_survive() {
    let mut e = lab_engine();
    let (_, out) = run(&mut e, 1, 1, &syn(VIP_DR, 80));
    assert!(!out.is_empty());
    let key = ServiceKey::tcp(VIP_DR, 80);
    e.ipvs_mut()
        .remove_dest(&key, Ipv4Addr::new(10, 0, 1, 30), 80)
        .expect("rm");
    let ack = Pkt::tcp(CLIENT, 51000, VIP_DR, 80, FLAG_ACK, b"");
    assert_eq!(
        run(&mut e, 2, 1, &ack.frame()).0,
        Verdict::Drop(DropReason::DestGone)
    );
    let st = e.service_stats(&key);
    assert_eq!((st.conns, st.in_pkts), (1, 1));
    // Re-added (a health check bringing it back): the same destination from the trash,
    // with its statistics (ip_vs_trash_get_dest), and its connection flows again.
    let rs = Ipv4Addr::new(10, 0, 1, 30);
    let id = e
        .ipvs_mut()
        .add_dest(
            &key,
            crate::service::DestConfig::new(rs, 80, crate::types::ForwardMethod::Route),
        )
        .expect("re-add");
    assert!(matches!(
        run(&mut e, 3, 1, &ack.frame()).0,
        Verdict::Tx { .. }
    ));
    let st = e.dest_stats(id).expect("stats kept");
    assert_eq!((st.conns, st.in_pkts), (1, 2), "{st:?}");
}

#[test]
fn config_validation() {
    let mut c = super::fuzzing::lab_config();
    c.interfaces[1].mtu = 60;
    assert!(matches!(
        c.validate(),
        Err(EngineConfigError::MtuTooSmall { .. })
    ));
    let mut c = super::fuzzing::lab_config();
    c.interfaces.push(c.interfaces[0].clone());
    assert!(matches!(
        c.validate(),
        Err(EngineConfigError::DuplicateInterface { .. })
    ));
    let mut c = super::fuzzing::lab_config();
    c.fwmark_rules[0].mark = 0;
    assert!(matches!(
        c.validate(),
        Err(EngineConfigError::BadFwmarkRule { .. })
    ));
    let mut c = super::fuzzing::lab_config();
    c.prev_hop_slots = 1000;
    assert!(matches!(
        c.validate(),
        Err(EngineConfigError::PrevHopSlots(1000))
    ));
    let mut c = super::fuzzing::lab_config();
    c.interfaces[0].addrs.clear();
    assert!(matches!(
        c.validate(),
        Err(EngineConfigError::NoAddress { ifindex: 1 })
    ));
    assert!(super::fuzzing::lab_config().validate().is_ok());
}

#[test]
fn fuzz_seeds_do_not_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/engine");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("seed");
        super::fuzzing::frames_body(&data);
        super::fuzzing::fragments_body(&data);
        n += 1;
    }
    assert!(n >= 5, "only {n} seeds in {}", dir.display());
}
