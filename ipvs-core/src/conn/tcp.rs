//! The IPVS TCP state machine: eleven states, three directions, four flag classes.
//!
//! This is the kernel's *normal* transition table (the one used while `secure_tcp` is off),
//! as found in current kernels' `ip_vs_proto_tcp.c` (`tcp_states`), re-expressed here as
//! data indexed by `[direction][event][state]`. Two details that matter and are easy to miss:
//!
//! * The event is chosen by priority **RST > SYN > FIN > ACK**: a SYN+ACK is a SYN event, a
//!   FIN+ACK is a FIN event. A segment with none of the four flags moves the connection to
//!   [`TcpState::Close`] (the kernel initialises `new_state` to CLOSE and skips the table).
//! * Current kernels move NONE to ESTABLISHED on an ACK seen in the INPUT and INPUT-ONLY
//!   directions (older kernels, before the sloppy-TCP work, went to CLOSE). We follow current
//!   kernels; connections only exist in NONE if the caller created them from a non-SYN packet.
//!
//! "Active" in the sense of `ipvsadm`'s `ActiveConn` column is what current kernels count:
//! ESTABLISHED, SYN_SENT, SYN_RECV and SYNACK ([`TcpState::is_active`], the kernel's
//! `tcp_state_active_table`, used by `set_tcp_state` since Linux 4.8); every other state
//! counts as inactive. Kernels before 4.8 counted ESTABLISHED only. The difference shows in
//! `wlc` (the default scheduler) and every scheduler that weighs connections: a burst of
//! half-open connections weighs on a destination at the 256:1 active rate.
//!
//! Pure functions only: no time, no allocation, cannot panic.

use core::fmt;

/// One state of an IPVS TCP connection (`IP_VS_TCP_S_*`), in kernel numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum TcpState {
    /// No packet processed yet (kernel `NONE`, also what templates show).
    None = 0,
    /// Three-way handshake completed.
    Established = 1,
    /// SYN seen from the real server side.
    SynSent = 2,
    /// SYN seen from the client.
    SynRecv = 3,
    /// FIN seen from the real server side (or from the client on input-only paths).
    FinWait = 4,
    /// Both sides closing.
    TimeWait = 5,
    /// Reset or closed.
    Close = 6,
    /// FIN seen from the client on a path where replies are seen.
    CloseWait = 7,
    /// Last ACK awaited.
    LastAck = 8,
    /// Listening (used for FTP data connections in the kernel).
    Listen = 9,
    /// SYN-ACK state of the `secure_tcp` tables.
    SynAck = 10,
}

impl TcpState {
    /// Number of states.
    pub const COUNT: usize = 11;

    /// Every state in kernel order.
    pub const ALL: [TcpState; Self::COUNT] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// The kernel's state number.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The state with kernel number `i`, if any.
    pub const fn from_index(i: usize) -> Option<TcpState> {
        if i < Self::COUNT {
            Some(Self::ALL[i])
        } else {
            None
        }
    }

    /// The name `ipvsadm -L -c` and `/proc/net/ip_vs_conn` print.
    pub const fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// Whether a connection in this state counts in `ActiveConn`: the kernel's
    /// `tcp_state_active_table` (`ip_vs_proto_tcp.c`, Linux 4.8 and later), which is true
    /// for ESTABLISHED and the three handshake states SYN_SENT, SYN_RECV and SYNACK.
    pub const fn is_active(self) -> bool {
        matches!(
            self,
            TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck
        )
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which way a segment travels, as the state table sees it (`IP_VS_DIR_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpDirection {
    /// Client to virtual service, on a connection whose replies pass through the director.
    Input,
    /// Real server to client (NAT replies).
    Output,
    /// Client to virtual service when replies bypass the director (DR, tunnel): the table
    /// uses this instead of [`TcpDirection::Input`] until an output packet is seen.
    InputOnly,
}

/// The four TCP flags the state machine looks at, as a small bit set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u8);

impl TcpFlags {
    /// No flag set.
    pub const NONE: TcpFlags = TcpFlags(0);
    /// FIN.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// SYN.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// RST.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// ACK.
    pub const ACK: TcpFlags = TcpFlags(0x10);

    /// Builds the set from the TCP header's flag byte (byte 13); other bits are ignored.
    pub const fn from_header_byte(b: u8) -> TcpFlags {
        TcpFlags(b & 0x17)
    }

    /// The flags as the header's bit positions.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Union of two sets.
    pub const fn union(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }

    /// The table row this segment selects, by the kernel's priority RST > SYN > FIN > ACK.
    pub const fn event(self) -> Option<TcpEvent> {
        if self.contains(TcpFlags::RST) {
            Some(TcpEvent::Rst)
        } else if self.contains(TcpFlags::SYN) {
            Some(TcpEvent::Syn)
        } else if self.contains(TcpFlags::FIN) {
            Some(TcpEvent::Fin)
        } else if self.contains(TcpFlags::ACK) {
            Some(TcpEvent::Ack)
        } else {
            None
        }
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        self.union(rhs)
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The kernel's debug format: [SFAR] with '.' for unset flags.
        let c = |flag, ch| if self.contains(flag) { ch } else { '.' };
        write!(
            f,
            "[{}{}{}{}]",
            c(TcpFlags::SYN, 'S'),
            c(TcpFlags::FIN, 'F'),
            c(TcpFlags::ACK, 'A'),
            c(TcpFlags::RST, 'R')
        )
    }
}

/// The table row a segment selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpEvent {
    /// SYN set (and no RST).
    Syn = 0,
    /// FIN set (no RST, no SYN).
    Fin = 1,
    /// Only ACK among the four.
    Ack = 2,
    /// RST set.
    Rst = 3,
}

// Short aliases so the tables below stay readable as a grid (NONE and SYNACK never appear
// as a next state in the normal tables, so they have no alias).
const ES: TcpState = TcpState::Established;
const SS: TcpState = TcpState::SynSent;
const SR: TcpState = TcpState::SynRecv;
const FW: TcpState = TcpState::FinWait;
const TW: TcpState = TcpState::TimeWait;
const CL: TcpState = TcpState::Close;
const CW: TcpState = TcpState::CloseWait;
const LA: TcpState = TcpState::LastAck;
const LI: TcpState = TcpState::Listen;

type Row = [TcpState; TcpState::COUNT];

/// `NEXT[direction][event][current]`. Columns follow [`TcpState::ALL`]:
/// NONE, ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK,
/// LISTEN, SYNACK.
const NEXT: [[Row; 4]; 3] = [
    // Input.
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR], // syn
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW], // fin
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES], // ack
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR], // rst
    ],
    // Output.
    [
        [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR], // syn
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW], // fin
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES], // ack
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL], // rst
    ],
    // Input only.
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR], // syn
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW], // fin
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES], // ack
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL], // rst
    ],
];

/// The state after a segment with `flags` travelling in `dir` hits a connection in `state`.
///
/// Segments with none of RST/SYN/FIN/ACK move the connection to CLOSE, as in the kernel.
pub const fn next_state(state: TcpState, dir: TcpDirection, flags: TcpFlags) -> TcpState {
    let d = match dir {
        TcpDirection::Input => 0,
        TcpDirection::Output => 1,
        TcpDirection::InputOnly => 2,
    };
    match flags.event() {
        Some(ev) => NEXT[d][ev as usize][state as usize],
        None => TcpState::Close,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TcpDirection::*;

    const SYN: TcpFlags = TcpFlags::SYN;
    const ACK: TcpFlags = TcpFlags::ACK;
    const FIN: TcpFlags = TcpFlags::FIN;
    const RST: TcpFlags = TcpFlags::RST;

    fn run(start: TcpState, steps: &[(TcpDirection, TcpFlags, TcpState)]) {
        let mut s = start;
        for (i, &(dir, flags, want)) in steps.iter().enumerate() {
            s = next_state(s, dir, flags);
            assert_eq!(s, want, "step {i}: {dir:?} {flags:?}");
        }
    }

    #[test]
    fn nat_open_data_close() {
        // Client SYN, server SYN-ACK, client ACK, data both ways, client FIN, server FIN-ACK,
        // client ACK.
        run(
            TcpState::None,
            &[
                (Input, SYN, TcpState::SynRecv),
                (Output, SYN | ACK, TcpState::SynRecv),
                (Input, ACK, TcpState::Established),
                (Input, ACK, TcpState::Established),
                (Output, ACK, TcpState::Established),
                (Input, FIN | ACK, TcpState::CloseWait),
                (Output, FIN | ACK, TcpState::TimeWait),
                (Input, ACK, TcpState::TimeWait),
            ],
        );
    }

    #[test]
    fn nat_server_closes_first() {
        run(
            TcpState::Established,
            &[
                (Output, FIN | ACK, TcpState::FinWait),
                (Input, ACK, TcpState::FinWait),
                (Input, FIN | ACK, TcpState::TimeWait),
            ],
        );
    }

    #[test]
    fn direct_routing_input_only() {
        // DR/TUN: the director only sees the client side.
        run(
            TcpState::None,
            &[
                (InputOnly, SYN, TcpState::SynRecv),
                (InputOnly, ACK, TcpState::Established),
                (InputOnly, ACK, TcpState::Established),
                (InputOnly, FIN | ACK, TcpState::FinWait),
                (InputOnly, ACK, TcpState::FinWait),
            ],
        );
    }

    #[test]
    fn resets_and_flagless_segments() {
        assert_eq!(
            next_state(TcpState::Established, Input, RST),
            TcpState::Close
        );
        assert_eq!(
            next_state(TcpState::Established, Output, RST | ACK),
            TcpState::Close
        );
        assert_eq!(next_state(TcpState::SynRecv, Input, RST), TcpState::SynRecv);
        assert_eq!(next_state(TcpState::LastAck, Input, RST), TcpState::LastAck);
        assert_eq!(
            next_state(TcpState::TimeWait, Output, RST),
            TcpState::TimeWait
        );
        // RST wins over SYN.
        assert_eq!(
            next_state(TcpState::None, Input, SYN | RST),
            TcpState::Close
        );
        // No flags at all: CLOSE, whatever the state.
        for s in TcpState::ALL {
            assert_eq!(next_state(s, Input, TcpFlags::NONE), TcpState::Close);
        }
    }

    #[test]
    fn event_priority() {
        assert_eq!((SYN | ACK).event(), Some(TcpEvent::Syn));
        assert_eq!((FIN | ACK).event(), Some(TcpEvent::Fin));
        assert_eq!((FIN | SYN).event(), Some(TcpEvent::Syn));
        assert_eq!((RST | FIN).event(), Some(TcpEvent::Rst));
        assert_eq!(
            TcpFlags::from_header_byte(0x18).event(),
            Some(TcpEvent::Ack)
        ); // PSH+ACK
        assert_eq!(TcpFlags::from_header_byte(0x08).event(), None); // PSH only
        assert_eq!(format!("{:?}", SYN | ACK), "[S.A.]");
    }

    #[test]
    fn listen_and_synack_columns() {
        assert_eq!(
            next_state(TcpState::Listen, Output, ACK),
            TcpState::Established
        );
        assert_eq!(next_state(TcpState::Listen, Input, ACK), TcpState::Listen);
        assert_eq!(
            next_state(TcpState::SynAck, Input, ACK),
            TcpState::Established
        );
        assert_eq!(next_state(TcpState::SynAck, Input, RST), TcpState::SynRecv);
        assert_eq!(
            next_state(TcpState::SynAck, InputOnly, RST),
            TcpState::Close
        );
    }

    #[test]
    fn names_and_indices() {
        for (i, s) in TcpState::ALL.into_iter().enumerate() {
            assert_eq!(s.index(), i);
            assert_eq!(TcpState::from_index(i), Some(s));
        }
        assert_eq!(TcpState::from_index(11), None);
        assert_eq!(TcpState::CloseWait.to_string(), "CLOSE_WAIT");
    }

    /// Pins `tcp_state_active_table` (`ip_vs_proto_tcp.c`): exactly ESTABLISHED, SYN_SENT,
    /// SYN_RECV and SYNACK are active; NONE, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT,
    /// LAST_ACK and LISTEN are not.
    #[test]
    fn active_states_are_the_kernels_tcp_state_active_table() {
        let active: Vec<TcpState> = TcpState::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(
            active,
            [
                TcpState::Established,
                TcpState::SynSent,
                TcpState::SynRecv,
                TcpState::SynAck
            ]
        );
    }
}
