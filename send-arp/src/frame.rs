//! The gratuitous ARP frame, built with `ipvs_core::wire` (sans-IO: no sockets, no clock).
//!
//! Piranha's `send_arp` sent one 60-byte frame: an Ethernet header to the destination MAC
//! given on its command line, an ARP **reply** (opcode 2) whose sender *and* target fields
//! both carry the announced MAC and IP (the RFC 2002 gratuitous-ARP convention), and 18 zero
//! bytes of padding up to the Ethernet minimum. [`Kind::Reply`] is that frame, byte for byte.
//! [`Kind::Request`] is the RFC 5227 "ARP announcement" some switches and hosts prefer:
//! opcode 1, target IP = sender IP, target MAC zero.

use std::net::Ipv4Addr;

use ipvs_core::wire::{EtherType, EthernetAddress, arp, ethernet};

/// Length of the frame: 14 (Ethernet) + 28 (ARP) + 18 (zero padding).
pub const FRAME_LEN: usize = 60;

/// Which ARP operation announces the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// Opcode 2, target MAC/IP = sender MAC/IP: Piranha's frame (the default).
    #[default]
    Reply,
    /// Opcode 1, target IP = sender IP, target MAC 00:00:00:00:00:00 (RFC 5227 §2.3).
    Request,
}

/// The gratuitous ARP frame announcing that `ip` is at `mac`, sent to `dst_mac` (broadcast
/// in every announcement pulse makes). Pure; cannot panic.
pub fn gratuitous_frame(
    kind: Kind,
    ip: Ipv4Addr,
    mac: EthernetAddress,
    dst_mac: EthernetAddress,
) -> [u8; FRAME_LEN] {
    let eth = ethernet::Repr {
        src_addr: mac,
        dst_addr: dst_mac,
        vlan_tci: None,
        ethertype: EtherType::Arp,
    };
    let (operation, target_hardware_addr) = match kind {
        Kind::Reply => (arp::Operation::Reply, mac),
        Kind::Request => (arp::Operation::Request, EthernetAddress([0; 6])),
    };
    let arp = arp::Repr {
        operation,
        source_hardware_addr: mac,
        source_protocol_addr: ip,
        target_hardware_addr,
        target_protocol_addr: ip,
    };
    // Zero-initialised: the bytes after the ARP packet are the padding.
    let mut frame = [0u8; FRAME_LEN];
    let header_len = eth.header_len();
    eth.emit(&mut frame[..header_len]);
    arp.emit(&mut frame[header_len..header_len + arp.buffer_len()]);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0xc6, 0x12, 0x00, 0x02]);
    const IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

    /// The frame of Piranha's table (`piranha-daemons.md` §4), written out byte by byte for
    /// `send_arp -i eth0 198.18.0.10 0200C6120002 198.18.0.255 ffffffffffff`.
    const PIRANHA: [u8; FRAME_LEN] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // 0: Ethernet destination = TARG_MAC
        0x02, 0x00, 0xc6, 0x12, 0x00, 0x02, // 6: Ethernet source = SRC_MAC
        0x08, 0x06, // 12: EtherType ARP
        0x00, 0x01, 0x08, 0x00, // 14: htype 1, ptype 0x0800
        0x06, 0x04, // 18: hlen 6, plen 4
        0x00, 0x02, // 20: opcode 2 (reply)
        0x02, 0x00, 0xc6, 0x12, 0x00, 0x02, // 22: sender MAC = SRC_MAC
        198, 18, 0, 10, // 28: sender IP = SRC_IP
        0x02, 0x00, 0xc6, 0x12, 0x00, 0x02, // 32: target MAC = SRC_MAC
        198, 18, 0, 10, // 38: target IP = SRC_IP
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 42: 18 bytes of padding
    ];

    #[test]
    fn reply_is_piranhas_frame_byte_for_byte() {
        let f = gratuitous_frame(Kind::Reply, IP, MAC, EthernetAddress::BROADCAST);
        assert_eq!(f, PIRANHA);
    }

    #[test]
    fn destination_is_the_given_mac() {
        let dst = EthernetAddress([0x02, 0, 0, 0, 0, 0x99]);
        let f = gratuitous_frame(Kind::Reply, IP, MAC, dst);
        assert_eq!(f[..6], dst.0);
        assert_eq!(f[6..], PIRANHA[6..]);
    }

    #[test]
    fn request_is_an_rfc5227_announcement() {
        let f = gratuitous_frame(Kind::Request, IP, MAC, EthernetAddress::BROADCAST);
        let mut want = PIRANHA;
        want[21] = 1; // opcode 1
        want[32..38].fill(0); // target MAC zero
        assert_eq!(f, want);
        // And the project's own parser reads it back.
        let p = arp::Packet::new_checked(&f[14..]).expect("complete ARP packet");
        let r = arp::Repr::parse(&p).expect("Ethernet/IPv4");
        assert_eq!(r.operation, arp::Operation::Request);
        assert_eq!(r.source_protocol_addr, IP);
        assert_eq!(r.target_protocol_addr, IP);
        assert_eq!(r.source_hardware_addr, MAC);
    }
}
