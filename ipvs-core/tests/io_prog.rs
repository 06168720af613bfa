//! The steering program's classifier, run by the kernel with `BPF_PROG_TEST_RUN` (no
//! interface, no namespace): which frames it would send to userspace. Needs root (bpf(2));
//! skips with a message otherwise.

#![allow(clippy::unwrap_used)] // test code: helpers outside #[test] fns unwrap too

mod io_util;

use std::net::{Ipv4Addr, SocketAddrV4};

use io_util::*;
use ipvs_core::io::bpf::TestProgram;
use ipvs_core::io::{Steering, lab};
use ipvs_core::types::Protocol;

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const VIP0: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 20);
const RS: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

fn setup() -> Option<(Steering, TestProgram)> {
    if !lab::is_root() {
        eprintln!("SKIPPED: io_prog needs root (bpf(2)); run as root to test the XDP program");
        return None;
    }
    let s = Steering::new(1024).expect("maps");
    s.add_service(VIP, 80, Protocol::Tcp).unwrap();
    s.add_service(VIP0, 0, Protocol::Udp).unwrap();
    s.set_fragments(VIP, Protocol::Tcp, true).unwrap();
    s.add_reply(RS, 8080, Protocol::Tcp).unwrap();
    let p = TestProgram::load(&s).unwrap_or_else(|e| panic!("{e}"));
    Some((s, p))
}

#[test]
fn services_replies_and_catch_all_are_steered_the_rest_passes() {
    let Some((s, p)) = setup() else { return };
    let c = sa(CLIENT, 40000);
    let yes = |f: &[u8]| assert!(p.steers(f).unwrap(), "should steer {:?}", summarize(f));
    let no = |f: &[u8]| assert!(!p.steers(f).unwrap(), "should pass {:?}", summarize(f));
    yes(&tcp_frame(c, sa(VIP, 80), SYN));
    no(&tcp_frame(c, sa(VIP, 81), SYN));
    no(&udp_frame(c, sa(VIP, 80), b"x"));
    no(&tcp_frame(c, sa(CLIENT, 80), SYN));
    // NAT replies from the real server.
    yes(&tcp_frame(sa(RS, 8080), c, SYN | ACK));
    no(&tcp_frame(sa(RS, 8081), c, SYN | ACK));
    // Port-0 catch-all (UDP only).
    yes(&udp_frame(c, sa(VIP0, 53), b"q"));
    yes(&udp_frame(c, sa(VIP0, 9999), b"q"));
    no(&tcp_frame(c, sa(VIP0, 53), SYN));
    // Removal.
    s.remove_service(VIP, 80, Protocol::Tcp).unwrap();
    no(&tcp_frame(c, sa(VIP, 80), SYN));
    s.add_service(VIP, 80, Protocol::Tcp).unwrap();
    yes(&tcp_frame(c, sa(VIP, 80), SYN));
    // The director's own connection to the real server's service port (a health check):
    // its answers are addressed to the director, not a client, and stay with the kernel.
    let me = sa(Ipv4Addr::new(198, 19, 0, 254), 41000);
    yes(&tcp_frame(sa(RS, 8080), me, SYN | ACK));
    s.add_local(*me.ip()).unwrap();
    no(&tcp_frame(sa(RS, 8080), me, SYN | ACK));
    yes(&tcp_frame(sa(RS, 8080), c, SYN | ACK));
    assert!(s.remove_local(*me.ip()).unwrap());
    yes(&tcp_frame(sa(RS, 8080), me, SYN | ACK));
    assert!(s.remove_reply(RS, 8080, Protocol::Tcp).unwrap());
    no(&tcp_frame(sa(RS, 8080), c, SYN | ACK));
    assert!(!s.remove_reply(RS, 8080, Protocol::Tcp).unwrap());
    // The reply fragments' port-0 entry went with the last reply entry.
    assert!(!s.has_reply(RS, 0, Protocol::Tcp).unwrap());
}

#[test]
fn fragment_steering_follows_port_services_and_replies() {
    let Some((s, _p)) = setup() else { return };
    let frag = |vip| s.service_flags(vip, 0, Protocol::Udp).unwrap().unwrap_or(0);
    let v = Ipv4Addr::new(198, 18, 0, 30);
    s.add_service(v, 53, Protocol::Udp).unwrap();
    s.add_service(v, 5353, Protocol::Udp).unwrap();
    s.add_service(v, 53, Protocol::Udp).unwrap(); // again: no extra reference
    assert_eq!(frag(v), ipvs_core::io::bpf::prog::FRAGMENTS);
    s.remove_service(v, 53, Protocol::Udp).unwrap();
    assert_eq!(
        frag(v),
        ipvs_core::io::bpf::prog::FRAGMENTS,
        "5353 still wants them"
    );
    s.remove_service(v, 5353, Protocol::Udp).unwrap();
    assert_eq!(frag(v), 0);
    // Two reply ports of one real server share the fragment entry.
    let rs = Ipv4Addr::new(198, 19, 0, 9);
    s.add_reply(rs, 53, Protocol::Udp).unwrap();
    s.add_reply(rs, 54, Protocol::Udp).unwrap();
    assert!(s.has_reply(rs, 0, Protocol::Udp).unwrap());
    s.remove_reply(rs, 53, Protocol::Udp).unwrap();
    assert!(s.has_reply(rs, 0, Protocol::Udp).unwrap());
    s.remove_reply(rs, 54, Protocol::Udp).unwrap();
    assert!(!s.has_reply(rs, 0, Protocol::Udp).unwrap());
}

#[test]
fn vlan_fragments_and_icmp_errors() {
    let Some((_s, p)) = setup() else { return };
    let c = sa(CLIENT, 40000);
    let seg = tcp(c, sa(VIP, 80), SYN, 1, &[]);
    // One 802.1Q tag.
    let tagged = eth(
        MAC_B,
        MAC_A,
        Some(100),
        ETH_IP,
        &ipv4(CLIENT, VIP, 6, 0, &seg),
    );
    assert!(p.steers(&tagged).unwrap());
    // First fragment (MF, offset 0) has ports: steered by the exact entry.
    let first = eth(
        MAC_B,
        MAC_A,
        None,
        ETH_IP,
        &ipv4(CLIENT, VIP, 6, 0x2000, &seg),
    );
    assert!(p.steers(&first).unwrap());
    // Non-first fragments: the port-0 entry with FRAGMENTS (set for TCP only).
    let later = eth(
        MAC_B,
        MAC_A,
        None,
        ETH_IP,
        &ipv4(CLIENT, VIP, 6, 0x0010, &[0; 16]),
    );
    assert!(p.steers(&later).unwrap());
    let later_udp = eth(
        MAC_B,
        MAC_A,
        None,
        ETH_IP,
        &ipv4(CLIENT, VIP, 17, 0x0010, &[0; 16]),
    );
    assert!(!p.steers(&later_udp).unwrap());
    // Non-first fragments of NAT replies: the port-0 replies entry that `add_reply` keeps.
    let rs_later = |proto| {
        eth(
            MAC_B,
            MAC_A,
            None,
            ETH_IP,
            &ipv4(RS, CLIENT, proto, 0x0010, &[0; 16]),
        )
    };
    assert!(p.steers(&rs_later(6)).unwrap());
    assert!(!p.steers(&rs_later(17)).unwrap());
    // ICMP echo to the VIP: the kernel answers.
    let echo = eth(
        MAC_B,
        MAC_A,
        None,
        ETH_IP,
        &ipv4(CLIENT, VIP, 1, 0, &icmp(8, 0, [0, 1, 0, 1], b"ping")),
    );
    assert!(!p.steers(&echo).unwrap());
    // Fragmentation needed, about a packet VIP:80 -> client (quoted header + 8 bytes).
    let quoted = ipv4(VIP, CLIENT, 6, 0, &tcp(sa(VIP, 80), c, ACK, 1, &[]));
    let err = icmp(3, 4, [0, 0, 5, 0xdc], &quoted[..28]);
    let f = eth(
        MAC_B,
        MAC_A,
        None,
        ETH_IP,
        &ipv4(Ipv4Addr::new(198, 18, 0, 254), VIP, 1, 0, &err),
    );
    assert!(p.steers(&f).unwrap());
    // Time exceeded about client -> real server (NAT), sent towards the client.
    let quoted = ipv4(CLIENT, RS, 6, 0, &tcp(c, sa(RS, 8080), ACK, 1, &[]));
    let err = icmp(11, 0, [0; 4], &quoted[..28]);
    let f = eth(
        MAC_B,
        MAC_A,
        None,
        ETH_IP,
        &ipv4(Ipv4Addr::new(198, 19, 0, 254), CLIENT, 1, 0, &err),
    );
    assert!(p.steers(&f).unwrap());
    // An error about unrelated traffic passes.
    let quoted = ipv4(
        CLIENT,
        Ipv4Addr::new(198, 18, 5, 5),
        6,
        0,
        &tcp(c, sa(RS, 22), ACK, 1, &[]),
    );
    let err = icmp(3, 1, [0; 4], &quoted[..28]);
    let f = eth(
        MAC_B,
        MAC_A,
        None,
        ETH_IP,
        &ipv4(Ipv4Addr::new(198, 18, 0, 254), CLIENT, 1, 0, &err),
    );
    assert!(!p.steers(&f).unwrap());
}

#[test]
fn malformed_frames_pass() {
    let Some((_s, p)) = setup() else { return };
    let good = tcp_frame(sa(CLIENT, 40000), sa(VIP, 80), SYN);
    // Truncated anywhere: IPv4 header, TCP ports.
    for cut in [14, 20, 33, 34, 35, 37] {
        assert!(!p.steers(&good[..cut]).unwrap(), "cut at {cut}");
    }
    assert!(p.steers(&good[..38]).unwrap(), "ports complete at 38 bytes");
    // IHL 15 (60-byte header) with too little data behind it.
    let mut f = good.clone();
    f[14] = 0x4f;
    assert!(!p.steers(&f).unwrap());
    // IHL < 5, version 6, other ethertypes.
    let mut f = good.clone();
    f[14] = 0x44;
    assert!(!p.steers(&f).unwrap());
    let mut f = good.clone();
    f[14] = 0x65;
    assert!(!p.steers(&f).unwrap());
    let mut f = good.clone();
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert!(!p.steers(&f).unwrap());
    // Truncated ICMP error.
    let quoted = ipv4(
        VIP,
        CLIENT,
        6,
        0,
        &tcp(sa(VIP, 80), sa(CLIENT, 1), ACK, 1, &[]),
    );
    let err = icmp(3, 4, [0; 4], &quoted[..22]);
    let f = eth(MAC_B, MAC_A, None, ETH_IP, &ipv4(CLIENT, VIP, 1, 0, &err));
    assert!(!p.steers(&f).unwrap());
}
