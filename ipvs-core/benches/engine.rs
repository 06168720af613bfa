//! Forwarding-engine benchmarks: frames from memory through `Engine::handle_frame` for
//! established NAT connections, inbound (client to real server) and reply (real server to
//! client), with 1 and 65 536 connections. Each iteration copies the frame into the buffer
//! (as an io layer's receive would) and handles it. Target: >= 5 M packets/s on one core.
//!
//! The `engine/csum` group measures partial-checksum completion (a sender with checksum
//! offload leaves only the pseudo-header sum in the TCP checksum field): the same inbound
//! packet with a complete and with a partial checksum, at 64 and 1400 bytes of payload.
//!
//! The `engine/frag` group measures IPv4 fragments: a 3000-byte UDP datagram to the NAT
//! service as three fragments (held, held, then reassembled, NAT-rewritten, fragmented
//! again for the 1500-byte MTU and drained from the outbox), against the same payload
//! size cut by the sender into datagrams that need no reassembly.
//!
//! `cargo bench -p ipvs-core --bench engine -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipvs_core::engine::fuzzing::{
    DIRECTOR_MAC, DIRECTOR_PRIVATE_MAC, GATEWAY_MAC, HEADROOM, lab_engine, rs_mac,
};
use ipvs_core::engine::{Engine, FrameBuf, Verdict};
use ipvs_core::time::Instant;
use ipvs_core::wire::{EtherType, EthernetAddress, IpProtocol, checksum, ethernet, ipv4, tcp, udp};

const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);

#[allow(clippy::too_many_arguments)]
fn frame(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let t = tcp::Repr {
        src_port: sport,
        dst_port: dport,
        seq_number: 1,
        ack_number: 1,
        flags,
        window_len: 502,
        urgent_at: 0,
        options: &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
        payload,
    };
    let ip = ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Tcp,
        payload_len: t.buffer_len(),
        ttl: 64,
        dscp_ecn: 0,
        ident: 1,
        dont_frag: true,
    };
    let mut f = vec![0u8; 14 + ip.buffer_len()];
    ethernet::Repr {
        src_addr: src_mac,
        dst_addr: dst_mac,
        vlan_tci: None,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut f);
    ip.emit(&mut f[14..]);
    t.emit(&mut f[34..], src, dst);
    f
}

fn handle(e: &mut Engine, now: Instant, ifindex: u32, buf: &mut [u8], f: &[u8]) -> Verdict {
    buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
    let mut fb = FrameBuf::new(buf, HEADROOM, f.len()).expect("fits");
    e.handle_frame(now, ifindex, &mut fb)
}

/// An engine with `n` established NAT connections; returns (inbound, reply) frames.
fn setup(n: usize, payload: &[u8]) -> (Engine, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut e = lab_engine();
    let mut buf = vec![0u8; HEADROOM + 2048];
    let now = Instant::from_secs(1);
    let (mut ins, mut outs) = (Vec::new(), Vec::new());
    for i in 0..n {
        let client = Ipv4Addr::from(0xc633_0000u32 + i as u32 + 1); // 198.51.x.y
        let cport = 10_000 + (i % 50_000) as u16;
        let syn = frame(GATEWAY_MAC, DIRECTOR_MAC, client, cport, VIP, 80, 0x02, b"");
        let Verdict::Tx { .. } = handle(&mut e, now, 1, &mut buf, &syn) else {
            panic!("SYN not forwarded");
        };
        let rip = Ipv4Addr::new(
            buf[HEADROOM + 30],
            buf[HEADROOM + 31],
            buf[HEADROOM + 32],
            buf[HEADROOM + 33],
        );
        let synack = frame(
            rs_mac(rip),
            DIRECTOR_PRIVATE_MAC,
            rip,
            8080,
            client,
            cport,
            0x12,
            b"",
        );
        assert!(matches!(
            handle(&mut e, now, 2, &mut buf, &synack),
            Verdict::Tx { .. }
        ));
        ins.push(frame(
            GATEWAY_MAC,
            DIRECTOR_MAC,
            client,
            cport,
            VIP,
            80,
            0x10,
            payload,
        ));
        outs.push(frame(
            rs_mac(rip),
            DIRECTOR_PRIVATE_MAC,
            rip,
            8080,
            client,
            cport,
            0x18,
            payload,
        ));
    }
    (e, ins, outs)
}

/// `f` (an untagged TCP/IPv4 frame, 20-byte IP header) as a sender with checksum offload
/// hands it over: the TCP checksum field holds the folded pseudo-header sum.
fn partial(f: &[u8]) -> Vec<u8> {
    let mut f = f.to_vec();
    let ip = ipv4::Packet::new_checked(&f[14..]).expect("valid");
    let (src, dst, len) = (ip.src_addr(), ip.dst_addr(), ip.payload().len());
    let ph = checksum::fold(checksum::pseudo_header(src, dst, 6, len as u16));
    f[14 + 20 + 16..14 + 20 + 18].copy_from_slice(&ph.to_be_bytes());
    f
}

fn bench_csum(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine/csum");
    g.throughput(Throughput::Elements(1));
    for size in [64usize, 1400] {
        let payload = vec![0x5a; size];
        let (mut e, ins, _) = setup(1, &payload);
        let complete = ins[0].clone();
        let part = partial(&complete);
        let mut buf = vec![0u8; HEADROOM + 2048];
        let now = Instant::from_secs(2);
        g.bench_function(format!("nat_in_{size}B_complete"), |b| {
            b.iter(|| black_box(handle(&mut e, now, 1, &mut buf, &complete)))
        });
        let before = e.counters().csum_completed;
        g.bench_function(format!("nat_in_{size}B_partial"), |b| {
            b.iter(|| black_box(handle(&mut e, now, 1, &mut buf, &part)))
        });
        assert!(e.counters().csum_completed > before, "completion ran");
        assert_eq!(e.counters().dropped, 0, "{:?}", e.drop_counts());
    }
    g.finish();
}

/// A UDP datagram from 198.51.100.7:40000 to the NAT service VIP:53 with `n` payload
/// bytes and identification `id`, split into fragments of at most 1500 IP bytes (DF clear).
fn udp_fragments(n: usize, id: u16) -> Vec<Vec<u8>> {
    let client = Ipv4Addr::new(198, 51, 100, 7);
    let payload = vec![0x33u8; n];
    let u = udp::Repr {
        src_port: 40000,
        dst_port: 53,
        payload: &payload,
    };
    let mut l4 = vec![0u8; u.buffer_len()];
    u.emit(&mut l4, client, VIP);
    let mut out = Vec::new();
    for (k, chunk) in l4.chunks(1480).enumerate() {
        let more = (k + 1) * 1480 < l4.len();
        let ip = ipv4::Repr {
            src_addr: client,
            dst_addr: VIP,
            next_header: IpProtocol::Udp,
            payload_len: chunk.len(),
            ttl: 64,
            dscp_ecn: 0,
            ident: id,
            dont_frag: false,
        };
        let mut f = vec![0u8; 14 + ip.buffer_len()];
        ethernet::Repr {
            src_addr: GATEWAY_MAC,
            dst_addr: DIRECTOR_MAC,
            vlan_tci: None,
            ethertype: EtherType::Ipv4,
        }
        .emit(&mut f);
        ip.emit(&mut f[14..]);
        let mut p = ipv4::Packet::new_unchecked(&mut f[14..]);
        p.set_flags_frag_word(if more { ipv4::FLAG_MF } else { 0 } | (k * 185) as u16);
        p.fill_checksum();
        f[34..].copy_from_slice(chunk);
        out.push(f);
    }
    out
}

fn bench_frag(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine/frag");
    let mut e = lab_engine();
    let mut buf = vec![0u8; HEADROOM + 2048];
    let now = Instant::from_secs(2);
    // The same source port for every datagram: one UDP connection, as a DNS client's.
    let datagrams: Vec<Vec<Vec<u8>>> = (0..256).map(|id| udp_fragments(3000, id)).collect();
    assert_eq!(datagrams[0].len(), 3);
    g.throughput(Throughput::Elements(3));
    let mut i = 0usize;
    g.bench_function("udp_3000B_as_3_fragments", |b| {
        b.iter(|| {
            i = (i + 1) % datagrams.len();
            for f in &datagrams[i] {
                black_box(handle(&mut e, now, 1, &mut buf, f));
            }
            e.drain_outbox(|ifindex, f| {
                black_box((ifindex, f.len()));
            });
        })
    });
    assert_eq!(e.counters().dropped, 0, "{:?}", e.drop_counts());
    assert!(e.frag_counters().reassembled > 0);
    // For comparison: three datagrams that need no reassembly (1000 bytes each).
    let whole: Vec<Vec<u8>> = (0..3)
        .map(|id| udp_fragments(1000, 1000 + id).remove(0))
        .collect();
    g.bench_function("udp_3x1000B_unfragmented", |b| {
        b.iter(|| {
            for f in &whole {
                black_box(handle(&mut e, now, 1, &mut buf, f));
            }
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let payload = [0x5a; 64];
    for n in [1usize, 1 << 16] {
        let (mut e, ins, outs) = setup(n, &payload);
        let mut buf = vec![0u8; HEADROOM + 2048];
        let now = Instant::from_secs(2);
        let mut g = c.benchmark_group(format!("engine/{n}conns"));
        g.throughput(Throughput::Elements(1));
        let mut i = 0usize;
        g.bench_function("nat_in", |b| {
            b.iter(|| {
                i = (i + 1) % ins.len();
                black_box(handle(&mut e, now, 1, &mut buf, &ins[i]))
            })
        });
        let mut i = 0usize;
        g.bench_function("nat_reply", |b| {
            b.iter(|| {
                i = (i + 1) % outs.len();
                black_box(handle(&mut e, now, 2, &mut buf, &outs[i]))
            })
        });
        g.finish();
        assert_eq!(e.counters().dropped, 0, "{:?}", e.drop_counts());
    }
}

criterion_group!(benches, bench, bench_csum, bench_frag);
criterion_main!(benches);
