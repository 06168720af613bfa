//! The steering XDP program, emitted with [`super::asm`].
//!
//! What it does, per frame (everything not listed returns `XDP_PASS`):
//!
//! 1. Ethernet, optionally one 802.1Q / 802.1ad tag; only IPv4 continues.
//! 2. IPv4 with version 4 and IHL ≥ 5 (options skipped by IHL).
//! 3. Keys, 8 bytes each, wire byte order: `services` key `{daddr, dport, proto, 0}`,
//!    `replies` key `{saddr, sport, proto, 0}`. Ports are read for TCP, UDP and SCTP; for
//!    other protocols they are 0.
//! 4. Match, in order: `services[exact]` with flag [`MATCH`]; `replies[exact]` (any value)
//!    unless the destination is one of the director's own addresses (a `{daddr, 0,`
//!    [`LOCAL_PROTO`]`}` entry with flag [`LOCAL`]: the director's own connection, passed);
//!    `services[{daddr, 0, proto}]` with flag [`ALL_PORTS`] (port-0 / catch-all services).
//!    A match is [`OnMatch`]: normally `bpf_redirect_map(xsks, rx_queue_index, XDP_PASS)`,
//!    which falls back to `XDP_PASS` when no AF_XDP socket serves that queue.
//! 5. Non-first IPv4 fragments (offset ≠ 0) have no ports: they match
//!    `services[{daddr, 0, proto}]` with flag [`FRAGMENTS`] (fragments to a VIP), else
//!    `replies[{saddr, 0, proto}]` (fragments of NAT replies from a real server; `Steering`
//!    keeps that port-0 entry while the real server has any reply entry). The engine
//!    reassembles them with the first fragment, which has ports and matches as in 4.
//! 6. ICMP errors (destination unreachable, time exceeded, parameter problem) are matched on the
//!    packet they quote, reversed: the quoted packet went *out*, so its source is looked up in
//!    `services` (an error about VIP:port → client) and its destination in `replies` (an error
//!    about client → real server, NAT). Other ICMP (echo) is passed: the kernel answers ping.
//!
//! Bounds: every packet read is preceded by a `ptr + n > data_end → pass` check that the
//! verifier can follow (fixed offsets from the L3 pointer, IHL-derived offsets masked to ≤ 60).
//!
//! Registers: r6 = ctx, r7 = L3 pointer, r8 = data_end, r9 = IHL in bytes; keys live on the
//! stack at fp-8 (services), fp-16 (replies) and fp-24 (the local-address check).

use super::asm::{Alu, Asm, AsmError, Insn, Jmp, Reg, Size};

/// Flag on a `services` entry: packets to exactly this address:port:proto are steered.
pub const MATCH: u32 = 1 << 0;
/// Flag on a port-0 `services` entry: packets to any port of this address:proto are steered.
pub const ALL_PORTS: u32 = 1 << 1;
/// Flag on a port-0 `services` entry: non-first fragments to this address:proto are steered.
pub const FRAGMENTS: u32 = 1 << 2;

/// Flag on a `{addr, 0, LOCAL_PROTO}` `services` entry: `addr` is one of the director's own
/// addresses. A packet that matches `replies` but is addressed to it is not a NAT reply
/// (those go to clients) but the director's own connection to a real server on the service
/// port — a nanny's health check, an operator's ssh — and is passed to the kernel.
pub const LOCAL: u32 = 1 << 3;
/// The protocol byte of [`LOCAL`] entries (no real protocol: TCP is 6, UDP 17).
pub const LOCAL_PROTO: u8 = 255;

/// `XDP_PASS`.
pub const XDP_PASS: i32 = 2;
/// `XDP_TX` (used by tests as a recognisable "matched" code).
pub const XDP_TX: i32 = 3;

const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
const HELPER_REDIRECT_MAP: i32 = 51;

/// What the program does with a matching frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMatch {
    /// `bpf_redirect_map(xsks_fd, rx_queue_index, XDP_PASS)`.
    RedirectXsk {
        /// The XSKMAP's fd.
        xsks_fd: i32,
    },
    /// Return this XDP action (for `BPF_PROG_TEST_RUN` tests of the classifier).
    Return(i32),
}

/// Map fds the program refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramMaps {
    /// `services` hash map fd.
    pub services_fd: i32,
    /// `replies` hash map fd.
    pub replies_fd: i32,
}

// Ethertypes and masks as a little-endian load of wire bytes sees them.
const ETH_P_IP_LE: i32 = 0x0008;
const ETH_P_8021Q_LE: i32 = 0x0081;
const ETH_P_8021AD_LE: i32 = 0xa888;
const FRAG_OFFSET_MASK_LE: i32 = 0xff1f;

/// Emits the program.
pub fn build(maps: ProgramMaps, on_match: OnMatch) -> Result<Vec<Insn>, AsmError> {
    use Reg::*;
    let mut a = Asm::new();
    let pass = a.label();
    let matched = a.label();
    let no_vlan = a.label();
    let l3 = a.label();
    let ports = a.label();
    let lookup = a.label();
    let fragment = a.label();
    let icmp = a.label();
    let icmp_err = a.label();

    a.mov_reg(R6, R1);
    a.ldx(Size::W, R7, R6, 0); // data
    a.ldx(Size::W, R8, R6, 4); // data_end
    // Ethernet.
    a.mov_reg(R2, R7);
    a.alu_imm(Alu::Add, R2, 14);
    a.jmp_reg(Jmp::Gt, R2, R8, pass);
    a.ldx(Size::H, R3, R7, 12);
    let vlan = a.label();
    a.jmp_imm(Jmp::Eq, R3, ETH_P_8021Q_LE, vlan);
    a.jmp_imm(Jmp::Ne, R3, ETH_P_8021AD_LE, no_vlan);
    a.bind(vlan);
    a.mov_reg(R2, R7);
    a.alu_imm(Alu::Add, R2, 18);
    a.jmp_reg(Jmp::Gt, R2, R8, pass);
    a.ldx(Size::H, R3, R7, 16);
    a.alu_imm(Alu::Add, R7, 18);
    a.ja(l3);
    a.bind(no_vlan);
    a.alu_imm(Alu::Add, R7, 14);
    a.bind(l3);
    // IPv4 header.
    a.jmp_imm(Jmp::Ne, R3, ETH_P_IP_LE, pass);
    a.mov_reg(R2, R7);
    a.alu_imm(Alu::Add, R2, 20);
    a.jmp_reg(Jmp::Gt, R2, R8, pass);
    a.ldx(Size::B, R9, R7, 0);
    a.mov_reg(R2, R9);
    a.alu_imm(Alu::And, R2, 0xf0);
    a.jmp_imm(Jmp::Ne, R2, 0x40, pass);
    a.alu_imm(Alu::And, R9, 0x0f);
    a.alu_imm(Alu::Lsh, R9, 2);
    a.jmp_imm(Jmp::Lt, R9, 20, pass);
    // Keys: services {daddr, 0, proto, 0} at fp-8, replies {saddr, 0, proto, 0} at fp-16.
    a.ldx(Size::W, R2, R7, 16);
    a.stx(Size::W, R10, -8, R2);
    a.ldx(Size::W, R2, R7, 12);
    a.stx(Size::W, R10, -16, R2);
    a.st_imm(Size::H, R10, -4, 0);
    a.st_imm(Size::H, R10, -12, 0);
    a.ldx(Size::B, R2, R7, 9);
    a.stx(Size::B, R10, -2, R2);
    a.stx(Size::B, R10, -10, R2);
    a.st_imm(Size::B, R10, -1, 0);
    a.st_imm(Size::B, R10, -9, 0);
    // Non-first fragment?
    a.ldx(Size::H, R3, R7, 6);
    a.alu_imm(Alu::And, R3, FRAG_OFFSET_MASK_LE);
    a.jmp_imm(Jmp::Ne, R3, 0, fragment);
    a.jmp_imm(Jmp::Eq, R2, 6, ports);
    a.jmp_imm(Jmp::Eq, R2, 17, ports);
    a.jmp_imm(Jmp::Eq, R2, 132, ports);
    a.jmp_imm(Jmp::Eq, R2, 1, icmp);
    a.ja(lookup);

    // Transport ports at L3 + IHL.
    a.bind(ports);
    a.mov_reg(R4, R7);
    a.alu_reg(Alu::Add, R4, R9);
    a.mov_reg(R2, R4);
    a.alu_imm(Alu::Add, R2, 4);
    a.jmp_reg(Jmp::Gt, R2, R8, pass);
    a.ldx(Size::H, R3, R4, 0);
    a.stx(Size::H, R10, -12, R3); // sport -> replies key
    a.ldx(Size::H, R3, R4, 2);
    a.stx(Size::H, R10, -4, R3); // dport -> services key

    // Look-ups.
    a.bind(lookup);
    a.ld_map_fd(R1, maps.services_fd);
    a.mov_reg(R2, R10);
    a.alu_imm(Alu::Add, R2, -8);
    a.call(HELPER_MAP_LOOKUP_ELEM);
    let no_exact = a.label();
    a.jmp_imm(Jmp::Eq, R0, 0, no_exact);
    a.ldx(Size::W, R2, R0, 0);
    a.jmp_imm(Jmp::Set, R2, MATCH as i32, matched);
    a.bind(no_exact);
    a.ld_map_fd(R1, maps.replies_fd);
    a.mov_reg(R2, R10);
    a.alu_imm(Alu::Add, R2, -16);
    a.call(HELPER_MAP_LOOKUP_ELEM);
    let reply_hit = a.label();
    a.jmp_imm(Jmp::Ne, R0, 0, reply_hit);
    a.st_imm(Size::H, R10, -4, 0);
    a.ld_map_fd(R1, maps.services_fd);
    a.mov_reg(R2, R10);
    a.alu_imm(Alu::Add, R2, -8);
    a.call(HELPER_MAP_LOOKUP_ELEM);
    a.jmp_imm(Jmp::Eq, R0, 0, pass);
    a.ldx(Size::W, R2, R0, 0);
    a.jmp_imm(Jmp::Set, R2, ALL_PORTS as i32, matched);
    a.ja(pass);

    // Non-first fragment: port-0 entry with FRAGMENTS.
    a.bind(fragment);
    a.ld_map_fd(R1, maps.services_fd);
    a.mov_reg(R2, R10);
    a.alu_imm(Alu::Add, R2, -8);
    a.call(HELPER_MAP_LOOKUP_ELEM);
    let frag_reply = a.label();
    a.jmp_imm(Jmp::Eq, R0, 0, frag_reply);
    a.ldx(Size::W, R2, R0, 0);
    a.jmp_imm(Jmp::Set, R2, FRAGMENTS as i32, matched);
    // Else a fragment of a NAT reply: replies key {saddr, 0, proto} (sport still 0).
    a.bind(frag_reply);
    a.ld_map_fd(R1, maps.replies_fd);
    a.mov_reg(R2, R10);
    a.alu_imm(Alu::Add, R2, -16);
    a.call(HELPER_MAP_LOOKUP_ELEM);
    a.jmp_imm(Jmp::Ne, R0, 0, reply_hit);
    a.ja(pass);

    // A replies match: a NAT reply, unless it is addressed to the director itself.
    a.bind(reply_hit);
    a.ldx(Size::W, R2, R10, -8); // daddr (services key)
    a.stx(Size::W, R10, -24, R2);
    a.st_imm(Size::H, R10, -20, 0);
    a.st_imm(Size::B, R10, -18, i32::from(LOCAL_PROTO));
    a.st_imm(Size::B, R10, -17, 0);
    a.ld_map_fd(R1, maps.services_fd);
    a.mov_reg(R2, R10);
    a.alu_imm(Alu::Add, R2, -24);
    a.call(HELPER_MAP_LOOKUP_ELEM);
    a.jmp_imm(Jmp::Ne, R0, 0, pass);
    a.ja(matched);

    // ICMP: errors quote an IPv4 header + 8 bytes; keys come from the quoted packet, reversed.
    a.bind(icmp);
    a.mov_reg(R4, R7);
    a.alu_reg(Alu::Add, R4, R9); // r4 = ICMP header
    a.mov_reg(R2, R4);
    a.alu_imm(Alu::Add, R2, 8 + 20);
    a.jmp_reg(Jmp::Gt, R2, R8, pass);
    a.ldx(Size::B, R3, R4, 0);
    a.jmp_imm(Jmp::Eq, R3, 3, icmp_err);
    a.jmp_imm(Jmp::Eq, R3, 11, icmp_err);
    a.jmp_imm(Jmp::Eq, R3, 12, icmp_err);
    a.ja(pass);
    a.bind(icmp_err);
    a.ldx(Size::B, R5, R4, 8); // quoted version/IHL
    a.alu_imm(Alu::And, R5, 0x0f);
    a.alu_imm(Alu::Lsh, R5, 2);
    a.jmp_imm(Jmp::Lt, R5, 20, pass);
    a.ldx(Size::W, R2, R4, 8 + 12); // quoted saddr -> services key
    a.stx(Size::W, R10, -8, R2);
    a.ldx(Size::W, R2, R4, 8 + 16); // quoted daddr -> replies key
    a.stx(Size::W, R10, -16, R2);
    a.ldx(Size::B, R3, R4, 8 + 9); // quoted protocol
    a.stx(Size::B, R10, -2, R3);
    a.stx(Size::B, R10, -10, R3);
    a.alu_imm(Alu::Add, R4, 8);
    a.alu_reg(Alu::Add, R4, R5); // r4 = quoted transport header
    a.mov_reg(R2, R4);
    a.alu_imm(Alu::Add, R2, 4);
    a.jmp_reg(Jmp::Gt, R2, R8, pass);
    a.ldx(Size::H, R2, R4, 0); // quoted sport -> services key
    a.stx(Size::H, R10, -4, R2);
    a.ldx(Size::H, R2, R4, 2); // quoted dport -> replies key
    a.stx(Size::H, R10, -12, R2);
    a.ja(lookup);

    a.bind(matched);
    match on_match {
        OnMatch::RedirectXsk { xsks_fd } => {
            a.ld_map_fd(R1, xsks_fd);
            a.ldx(Size::W, R2, R6, 16); // rx_queue_index
            a.mov_imm(R3, XDP_PASS);
            a.call(HELPER_REDIRECT_MAP);
            a.exit();
        }
        OnMatch::Return(code) => {
            a.mov_imm(R0, code);
            a.exit();
        }
    }
    a.bind(pass);
    a.mov_imm(R0, XDP_PASS);
    a.exit();
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_and_ends_in_exit() {
        let maps = ProgramMaps {
            services_fd: 3,
            replies_fd: 4,
        };
        for on in [OnMatch::RedirectXsk { xsks_fd: 5 }, OnMatch::Return(XDP_TX)] {
            let insns = build(maps, on).unwrap();
            assert!(insns.len() < 200, "{} slots", insns.len());
            assert_eq!(insns.last().unwrap().code, 0x95);
        }
    }
}
