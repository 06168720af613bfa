//! A fixed lab topology and the fuzz body, shared by the fuzz target
//! (`fuzz/fuzz_targets/engine.rs`), the seed-corpus test, the proptests and the benchmark.
//!
//! Lab (all addresses documentation/benchmark ranges):
//!
//! | ifindex | vlan | MAC | address | role |
//! |---|---|---|---|---|
//! | 1 | — | 02:00:00:00:00:fe | 203.0.113.2/24, gw 203.0.113.1 | public side |
//! | 2 | — | 02:00:00:00:01:fe | 10.0.1.1/24 | real servers |
//! | 1 | 100 | 02:00:00:00:00:fe | 198.18.100.1/24 | tagged client network |
//!
//! Services: TCP 203.0.113.10:80 NAT rr to 10.0.1.20:8080 and 10.0.1.21:8080; UDP
//! 203.0.113.10:53 NAT to 10.0.1.20:5353; TCP 203.0.113.11:80 DR to 10.0.1.30; TCP
//! 203.0.113.12:80 TUN to 10.0.1.40; fwmark 7 (TCP 203.0.113.13 ports 8000-8999) persistent
//! NAT to 10.0.1.20 port 0. Every neighbour is known.

use core::net::Ipv4Addr;

use super::{Engine, EngineConfig, FrameBuf, FwmarkRule, Interface, Ipv4Cidr, Verdict};
use crate::ipvs::{Ipvs, IpvsConfig};
use crate::service::{DestConfig, Persistence, ServiceKey};
use crate::time::Instant;
use crate::types::{ForwardMethod, Protocol, SchedulerKind};
use crate::wire::{EthernetAddress, ethernet, ipv4};

/// The director's public MAC.
pub const DIRECTOR_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0xfe]);
/// The director's MAC toward the real servers.
pub const DIRECTOR_PRIVATE_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 0xfe]);
/// The public gateway's MAC.
pub const GATEWAY_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
/// Headroom the lab's buffers give frames.
pub const HEADROOM: usize = 64;

/// The MAC the lab gives real server `ip` (last octet in the last byte).
pub fn rs_mac(ip: Ipv4Addr) -> EthernetAddress {
    EthernetAddress([2, 0, 0, 0, 2, ip.octets()[3]])
}

/// The lab's configuration.
pub fn lab_config() -> EngineConfig {
    EngineConfig {
        interfaces: vec![
            Interface {
                ifindex: 1,
                vlan: None,
                mac: DIRECTOR_MAC,
                addrs: vec![Ipv4Cidr::new(Ipv4Addr::new(203, 0, 113, 2), 24)],
                mtu: 1500,
                gateway: Some(Ipv4Addr::new(203, 0, 113, 1)),
            },
            Interface {
                ifindex: 2,
                vlan: None,
                mac: DIRECTOR_PRIVATE_MAC,
                addrs: vec![Ipv4Cidr::new(Ipv4Addr::new(10, 0, 1, 1), 24)],
                mtu: 1500,
                gateway: None,
            },
            Interface {
                ifindex: 1,
                vlan: Some(100),
                mac: DIRECTOR_MAC,
                addrs: vec![Ipv4Cidr::new(Ipv4Addr::new(198, 18, 100, 1), 24)],
                mtu: 1500,
                gateway: None,
            },
        ],
        fwmark_rules: vec![FwmarkRule {
            mark: 7,
            protocol: Some(Protocol::Tcp),
            addr: Ipv4Cidr::new(Ipv4Addr::new(203, 0, 113, 13), 32),
            port_lo: 8000,
            port_hi: 8999,
        }],
        ..EngineConfig::default()
    }
}

/// The lab engine with its services and neighbours.
pub fn lab_engine() -> Engine {
    lab_engine_with(IpvsConfig::default())
}

/// The lab engine over an [`Ipvs`] built from `cfg`.
pub fn lab_engine_with(cfg: IpvsConfig) -> Engine {
    let mut ipvs = Ipvs::new(cfg);
    let ip = Ipv4Addr::new;
    let rr = SchedulerKind::Rr;
    let mut add =
        |key: ServiceKey, p: Option<Persistence>, dests: &[(Ipv4Addr, u16, ForwardMethod)]| {
            // The lab is fixed; a failure here is a bug in this function, seen by every test.
            if ipvs.add_service(key, rr, &[], p).is_ok() {
                for &(a, port, m) in dests {
                    let _ = ipvs.add_dest(&key, DestConfig::new(a, port, m));
                }
            }
        };
    add(
        ServiceKey::tcp(ip(203, 0, 113, 10), 80),
        None,
        &[
            (ip(10, 0, 1, 20), 8080, ForwardMethod::Masq),
            (ip(10, 0, 1, 21), 8080, ForwardMethod::Masq),
        ],
    );
    add(
        ServiceKey::udp(ip(203, 0, 113, 10), 53),
        None,
        &[(ip(10, 0, 1, 20), 5353, ForwardMethod::Masq)],
    );
    add(
        ServiceKey::tcp(ip(203, 0, 113, 11), 80),
        None,
        &[(ip(10, 0, 1, 30), 80, ForwardMethod::Route)],
    );
    add(
        ServiceKey::tcp(ip(203, 0, 113, 12), 80),
        None,
        &[(ip(10, 0, 1, 40), 80, ForwardMethod::Tunnel)],
    );
    add(
        ServiceKey::Fwmark(7),
        Some(Persistence::default()),
        &[(ip(10, 0, 1, 20), 0, ForwardMethod::Masq)],
    );
    #[allow(clippy::expect_used)]
    let mut e = Engine::new(lab_config(), ipvs).expect("the lab configuration is valid");
    for last in [20, 21, 30, 40] {
        let a = ip(10, 0, 1, last);
        e.set_neighbour(2, a, rs_mac(a));
    }
    e.set_neighbour(1, ip(203, 0, 113, 1), GATEWAY_MAC);
    e
}

/// Checks what a `Tx`/`Reply` verdict left in the buffer: an Ethernet frame with an IPv4
/// packet whose header checksum verifies. Panics otherwise (fuzz and test oracle).
pub fn check_output(fb: &FrameBuf<'_>) {
    let f = ethernet::Frame::new_checked(fb.frame()).expect("output frame has an Ethernet header");
    let p = ipv4::Packet::new_checked(f.payload()).expect("output frame has a valid IPv4 packet");
    assert!(p.verify_checksum(), "output IPv4 header checksum");
    assert_eq!(
        usize::from(p.total_len()),
        f.payload().len(),
        "no padding left"
    );
}

/// The fuzz body: a NAT SYN to open a connection, then the input split into frames
/// (`[len_hi, len_lo, interface selector, bytes...]` repeated), each handled at a later
/// millisecond with the output checked by [`check_output`].
pub fn frames_body(data: &[u8]) {
    let mut e = lab_engine();
    let mut now = Instant::ZERO;
    let mut buf = vec![0u8; HEADROOM + 2048];
    let mut rest = data;
    let mut first = true;
    loop {
        let (ifindex, frame): (u32, &[u8]) = if first {
            first = false;
            (1, &SEED_SYN[..])
        } else {
            let [hi, lo, sel, tail @ ..] = rest else {
                break;
            };
            let n = usize::from(u16::from_be_bytes([*hi, *lo]))
                .min(tail.len())
                .min(1600);
            let (fr, r) = tail.split_at(n);
            rest = r;
            ([1, 2, 9][usize::from(*sel % 3)], fr)
        };
        buf.fill(0);
        buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        let Ok(mut fb) = FrameBuf::new(&mut buf, HEADROOM, frame.len()) else {
            break;
        };
        now = Instant::from_millis(now.as_millis() + 1);
        handle_and_check(&mut e, now, ifindex, &mut fb);
    }
    let _ = e.ipvs().check_invariants();
}

/// Handles one frame and checks every output: the frame itself after `Tx`/`Reply`, the
/// outbox after `Stolen` (frames no larger than the lab's MTU); then the timers.
fn handle_and_check(e: &mut Engine, now: Instant, ifindex: u32, fb: &mut FrameBuf<'_>) {
    match e.handle_frame(now, ifindex, fb) {
        Verdict::Tx { .. } | Verdict::Reply { .. } => check_output(fb),
        Verdict::Drop(_) | Verdict::NotMine | Verdict::Stolen => {}
    }
    e.drain_outbox(|_, f| {
        let mut copy = f.to_vec();
        let n = copy.len();
        let out = FrameBuf::new(&mut copy, 0, n).expect("a frame fits itself");
        check_output(&out);
        let l2 = ethernet::Frame::new_checked(f)
            .expect("checked")
            .header_len();
        assert!(n - l2 <= 1500, "outbox frame of {n} bytes exceeds the MTU");
    });
    if e.poll_timeout().is_some_and(|t| t <= now) {
        e.handle_timeout(now);
    }
    for _ in e.take_unresolved() {}
}

/// The reassembly fuzz body: the input is a list of 8-byte fragment descriptions
/// `[dir, id, off_hi, off_lo, len_hi, len_lo, flags, wait]` of UDP datagrams between the
/// client 198.51.100.10:40000 and the lab's NAT service 203.0.113.10:53 (`dir` even:
/// request on interface 1; odd: reply from 10.0.1.20:5353 on interface 2). `off` is in
/// 8-byte units, `len` at most 1480; `flags` bit 0 = MF, bit 1 = DF, bits 2.. give the UDP
/// length field (`8 + 64 * (flags >> 2)`); the clock then advances `wait * 200` ms. The
/// datagram's bytes are a UDP header then a fixed pattern, so fragments of one `id` agree.
pub fn fragments_body(data: &[u8]) {
    let mut e = lab_engine();
    let mut now = Instant::ZERO;
    let mut buf = vec![0u8; HEADROOM + 2048];
    let client = Ipv4Addr::new(198, 51, 100, 10);
    let vip = Ipv4Addr::new(203, 0, 113, 10);
    let rs = Ipv4Addr::new(10, 0, 1, 20);
    for rec in data.chunks_exact(8) {
        let &[dir, id, oh, ol, lh, ll, flags, wait] = rec else {
            continue;
        };
        let off = usize::from(u16::from_be_bytes([oh, ol]) & 0x1fff) * 8;
        let len = usize::from(u16::from_be_bytes([lh, ll])).min(1480);
        let (ifindex, src_mac, dst_mac, src, dst, sport, dport) = if dir % 2 == 0 {
            (1, GATEWAY_MAC, DIRECTOR_MAC, client, vip, 40000u16, 53u16)
        } else {
            (2, rs_mac(rs), DIRECTOR_PRIVATE_MAC, rs, client, 5353, 40000)
        };
        let udp_len = 8 + 64 * u16::from(flags >> 2);
        let byte = |p: usize| -> u8 {
            let h = [
                sport.to_be_bytes(),
                dport.to_be_bytes(),
                udp_len.to_be_bytes(),
                [0, 0],
            ];
            h.as_flattened().get(p).copied().unwrap_or(p as u8)
        };
        let frame_len = 14 + 20 + len;
        buf.fill(0);
        let f = &mut buf[HEADROOM..HEADROOM + frame_len];
        ethernet::Repr {
            src_addr: src_mac,
            dst_addr: dst_mac,
            vlan_tci: None,
            ethertype: crate::wire::EtherType::Ipv4,
        }
        .emit(f);
        ipv4::Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: crate::wire::IpProtocol::Udp,
            payload_len: len,
            ttl: 64,
            dscp_ecn: 0,
            ident: u16::from(id),
            dont_frag: false,
        }
        .emit(&mut f[14..]);
        for (i, b) in f[34..].iter_mut().enumerate() {
            *b = byte(off + i);
        }
        let mut word = (off / 8) as u16;
        if flags & 1 != 0 {
            word |= ipv4::FLAG_MF;
        }
        if flags & 2 != 0 {
            word |= ipv4::FLAG_DF;
        }
        let mut p = ipv4::Packet::new_unchecked(&mut f[14..]);
        p.set_flags_frag_word(word);
        p.fill_checksum();
        let Ok(mut fb) = FrameBuf::new(&mut buf, HEADROOM, frame_len) else {
            break;
        };
        handle_and_check(&mut e, now, ifindex, &mut fb);
        now = Instant::from_millis(now.as_millis() + u64::from(wait) * 200);
    }
    let (queues, bytes) = e.reassembly_usage();
    assert!(
        bytes <= e.config().frag_mem_limit,
        "{queues} queues, {bytes} bytes"
    );
    let _ = e.ipvs().check_invariants();
}

/// A SYN from 198.51.100.10:51000 to the lab's NAT service 203.0.113.10:80 on interface 1.
pub const SEED_SYN: [u8; 74] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x3c, 0x5f, 0x2a, 0x40, 0x00, 0x40, 0x06, 0x75, 0x49, 0xc6, 0x33, 0x64, 0x0a, 0xcb, 0x00,
    0x71, 0x0a, 0xc7, 0x38, 0x00, 0x50, 0x3a, 0x1b, 0x2c, 0x3d, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02,
    0xfa, 0xf0, 0xe2, 0x4b, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x12,
    0xd6, 0x87, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
];
