//! Frame building and parsing for the io tests (independent of the engine's `wire` module).
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4};

pub const ETH_IP: u16 = 0x0800;

pub fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub fn eth(
    dst: [u8; 6],
    src: [u8; 6],
    vlan: Option<u16>,
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(18 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    if let Some(tag) = vlan {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&tag.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 header (no options) + payload; `frag` is the raw flags/offset field.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut h = vec![0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn l4_checksum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, seg: &[u8]) -> u16 {
    let mut p = Vec::with_capacity(12 + seg.len());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.push(0);
    p.push(proto);
    p.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    p.extend_from_slice(seg);
    checksum(&p)
}

pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// TCP segment (20-byte header, no options) with a valid checksum.
pub fn tcp(src: SocketAddrV4, dst: SocketAddrV4, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&src.port().to_be_bytes());
    t[2..4].copy_from_slice(&dst.port().to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    t.extend_from_slice(payload);
    let c = l4_checksum(*src.ip(), *dst.ip(), 6, &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

/// UDP datagram with a valid checksum.
pub fn udp(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    u[0..2].copy_from_slice(&src.port().to_be_bytes());
    u[2..4].copy_from_slice(&dst.port().to_be_bytes());
    u[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(payload);
    let c = l4_checksum(*src.ip(), *dst.ip(), 17, &u);
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// ICMP message: type, code, 4 bytes rest-of-header, body.
pub fn icmp(ty: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(body);
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

pub fn tcp_frame(src: SocketAddrV4, dst: SocketAddrV4, flags: u8) -> Vec<u8> {
    eth(
        MAC_B,
        MAC_A,
        None,
        ETH_IP,
        &ipv4(
            *src.ip(),
            *dst.ip(),
            6,
            0x4000,
            &tcp(src, dst, flags, 1, &[]),
        ),
    )
}

pub fn udp_frame(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    eth(
        MAC_B,
        MAC_A,
        None,
        ETH_IP,
        &ipv4(*src.ip(), *dst.ip(), 17, 0x4000, &udp(src, dst, payload)),
    )
}

/// What the tests look at in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    pub icmp_type: u8,
}

/// Untagged Ethernet + IPv4 (+ TCP/UDP/ICMP) summary.
pub fn summarize(f: &[u8]) -> Option<Summary> {
    if f.len() < 34 || f[12..14] != ETH_IP.to_be_bytes() {
        return None;
    }
    let ip = &f[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let l4 = ip.get(ihl..)?;
    let mut s = Summary {
        src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        proto: ip[9],
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        icmp_type: 0,
    };
    match s.proto {
        6 | 17 if l4.len() >= 8 => {
            s.sport = u16::from_be_bytes([l4[0], l4[1]]);
            s.dport = u16::from_be_bytes([l4[2], l4[3]]);
            if s.proto == 6 && l4.len() >= 14 {
                s.tcp_flags = l4[13];
            }
        }
        1 if !l4.is_empty() => s.icmp_type = l4[0],
        _ => {}
    }
    Some(s)
}

/// Turns a TCP/UDP frame around in place: swaps MACs, addresses and ports, sets the TCP
/// flags to `flags` (SYN|ACK for a SYN), and fixes the checksums. No options, untagged.
pub fn turn_around(f: &mut [u8], flags: u8) -> bool {
    if summarize(f).is_none() {
        return false;
    }
    let (dst, src) = f.split_at_mut(6);
    dst.swap_with_slice(&mut src[..6]);
    let ip = &mut f[14..];
    let (a, b) = ip[12..20].split_at_mut(4);
    a.swap_with_slice(b);
    ip[10] = 0;
    ip[11] = 0;
    let c = checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let proto = ip[9];
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let end = total.min(ip.len());
    let l4 = &mut ip[20..end];
    let (sp, dp) = l4[0..4].split_at_mut(2);
    sp.swap_with_slice(dp);
    let ck = if proto == 6 { 16 } else { 6 };
    if proto == 6 {
        l4[13] = flags;
        l4[8..12].copy_from_slice(&2u32.to_be_bytes()); // ack = seq + 1
    }
    l4[ck] = 0;
    l4[ck + 1] = 0;
    let c = l4_checksum(src, dst, proto, l4);
    l4[ck..ck + 2].copy_from_slice(&c.to_be_bytes());
    true
}
