//! Per-state timeouts and the table's clock resolution.
//!
//! Timeouts are whole seconds like the kernel's sysctls; the connection table stores
//! deadlines as 32-bit counts of [`TICK_MS`]-millisecond ticks compared with wrapping
//! arithmetic. The largest timeout `ipvsadm` accepts ([`MAX_TIMEOUT_SECS`], 31 days) is far
//! inside the 2^31-tick (about 248 days) comparison window.

use core::time::Duration;

use super::tcp::TcpState;
use crate::time::Instant;

/// Resolution of stored deadlines, in milliseconds.
pub const TICK_MS: u64 = 10;

/// Largest timeout `ipvsadm --set` and `-p` accept: 2 678 400 s (31 days).
pub const MAX_TIMEOUT_SECS: u32 = 2_678_400;

/// Kernel default per TCP state, in seconds, indexed by [`TcpState::index`]
/// (`tcp_timeouts[]`).
pub const DEFAULT_TCP_SECS: [u32; TcpState::COUNT] = [
    2,       // NONE
    15 * 60, // ESTABLISHED
    2 * 60,  // SYN_SENT
    60,      // SYN_RECV
    2 * 60,  // FIN_WAIT
    2 * 60,  // TIME_WAIT
    10,      // CLOSE
    60,      // CLOSE_WAIT
    30,      // LAST_ACK
    2 * 60,  // LISTEN
    120,     // SYNACK
];

/// Kernel default for UDP "connections" (`udp_timeouts[]`), seconds.
pub const DEFAULT_UDP_SECS: u32 = 5 * 60;

/// How long a template that still controls connections is kept after its own timeout ran
/// out, before it is looked at again (the kernel's `expire_later` re-arm of 60 s).
pub const TEMPLATE_REARM_SECS: u32 = 60;

/// The three values `ipvsadm --set tcp tcpfin udp` changes; 0 leaves a value unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeoutUpdate {
    /// ESTABLISHED timeout in seconds, 0 = unchanged.
    pub tcp: u32,
    /// FIN_WAIT timeout in seconds, 0 = unchanged.
    pub tcpfin: u32,
    /// UDP timeout in seconds, 0 = unchanged.
    pub udp: u32,
}

/// Error from [`Timeouts::apply`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{which} timeout {secs} s is out of range 0..={max}", max = MAX_TIMEOUT_SECS)]
pub struct TimeoutRangeError {
    /// `tcp`, `tcpfin` or `udp`.
    pub which: &'static str,
    /// The rejected value.
    pub secs: u32,
}

/// The protocol timeout table of one engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    tcp: [u32; TcpState::COUNT],
    udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: DEFAULT_TCP_SECS,
            udp: DEFAULT_UDP_SECS,
        }
    }
}

impl Timeouts {
    /// Timeout of a TCP state, seconds.
    pub fn tcp_secs(&self, state: TcpState) -> u32 {
        self.tcp[state.index()]
    }

    /// UDP timeout, seconds.
    pub fn udp_secs(&self) -> u32 {
        self.udp
    }

    /// The triple `ipvsadm -L --timeout` prints: (ESTABLISHED, FIN_WAIT, UDP).
    pub fn ipvsadm_triple(&self) -> (u32, u32, u32) {
        (
            self.tcp[TcpState::Established.index()],
            self.tcp[TcpState::FinWait.index()],
            self.udp,
        )
    }

    /// Applies `ipvsadm --set`: every non-zero field replaces its value. All-or-nothing: on
    /// error nothing changes. Existing connections keep their deadline until their next
    /// packet, as in the kernel.
    pub fn apply(&mut self, u: TimeoutUpdate) -> Result<(), TimeoutRangeError> {
        for (which, secs) in [("tcp", u.tcp), ("tcpfin", u.tcpfin), ("udp", u.udp)] {
            if secs > MAX_TIMEOUT_SECS {
                return Err(TimeoutRangeError { which, secs });
            }
        }
        if u.tcp != 0 {
            self.tcp[TcpState::Established.index()] = u.tcp;
        }
        if u.tcpfin != 0 {
            self.tcp[TcpState::FinWait.index()] = u.tcpfin;
        }
        if u.udp != 0 {
            self.udp = u.udp;
        }
        Ok(())
    }
}

/// Seconds to ticks; callers keep `secs` within [`MAX_TIMEOUT_SECS`] (or a small
/// constant), so the product fits in 32 bits with room to spare.
pub(crate) const fn secs_to_ticks(secs: u32) -> u32 {
    secs.saturating_mul((1000 / TICK_MS) as u32)
}

/// Current tick, rounded down. Wraps every ~497 days, by design.
pub(crate) fn now_tick(now: Instant) -> u32 {
    // Truncation to 32 bits is the wrapping clock the entries compare against.
    (now.as_millis() / TICK_MS) as u32
}

/// Deadline tick for a timeout of `ticks` starting at `now`, rounded up so an entry never
/// expires before its full timeout has elapsed (it may live up to two ticks longer).
pub(crate) fn deadline_tick(now: Instant, ticks: u32) -> u32 {
    let up = now.as_millis().div_ceil(TICK_MS) as u32;
    up.wrapping_add(ticks)
}

/// Whether a deadline is reached at tick `now` (wrapping comparison, valid while the two
/// are less than 2^31 ticks apart).
#[inline]
pub(crate) fn is_due(deadline: u32, now: u32) -> bool {
    (now.wrapping_sub(deadline) as i32) >= 0
}

/// The instant a deadline tick stands for, seen from `now`.
pub(crate) fn deadline_instant(deadline: u32, now: Instant) -> Instant {
    let rel = deadline.wrapping_sub(now_tick(now)) as i32;
    let base = (now.as_millis() / TICK_MS) * TICK_MS;
    if rel >= 0 {
        Instant::from_millis(base) + Duration::from_millis(u64::from(rel.unsigned_abs()) * TICK_MS)
    } else {
        Instant::from_millis(base.saturating_sub(u64::from(rel.unsigned_abs()) * TICK_MS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_kernel() {
        let t = Timeouts::default();
        assert_eq!(t.ipvsadm_triple(), (900, 120, 300));
        let want = [
            (TcpState::None, 2),
            (TcpState::Established, 900),
            (TcpState::SynSent, 120),
            (TcpState::SynRecv, 60),
            (TcpState::FinWait, 120),
            (TcpState::TimeWait, 120),
            (TcpState::Close, 10),
            (TcpState::CloseWait, 60),
            (TcpState::LastAck, 30),
            (TcpState::Listen, 120),
            (TcpState::SynAck, 120),
        ];
        for (s, secs) in want {
            assert_eq!(t.tcp_secs(s), secs, "{s}");
        }
        assert_eq!(t.udp_secs(), 300);
    }

    #[test]
    fn set_semantics_zero_keeps() {
        let mut t = Timeouts::default();
        t.apply(TimeoutUpdate {
            tcp: 3600,
            tcpfin: 0,
            udp: 0,
        })
        .expect("in range");
        assert_eq!(t.ipvsadm_triple(), (3600, 120, 300));
        t.apply(TimeoutUpdate {
            tcp: 0,
            tcpfin: 30,
            udp: 60,
        })
        .expect("in range");
        assert_eq!(t.ipvsadm_triple(), (3600, 30, 60));
        // Other states are untouched by --set.
        assert_eq!(t.tcp_secs(TcpState::TimeWait), 120);
        t.apply(TimeoutUpdate::default()).expect("all zero");
        assert_eq!(t.ipvsadm_triple(), (3600, 30, 60));
    }

    #[test]
    fn set_rejects_out_of_range_atomically() {
        let mut t = Timeouts::default();
        let err = t
            .apply(TimeoutUpdate {
                tcp: 10,
                tcpfin: 0,
                udp: MAX_TIMEOUT_SECS + 1,
            })
            .expect_err("udp too big");
        assert_eq!(err.which, "udp");
        assert_eq!(t, Timeouts::default());
        t.apply(TimeoutUpdate {
            tcp: MAX_TIMEOUT_SECS,
            tcpfin: 0,
            udp: 0,
        })
        .expect("max ok");
    }

    #[test]
    fn ticks_round_up_and_wrap() {
        let now = Instant::from_millis(15);
        assert_eq!(now_tick(now), 1);
        assert_eq!(deadline_tick(now, secs_to_ticks(1)), 102);
        assert!(!is_due(102, 101));
        assert!(is_due(102, 102));
        // Wrapping: a deadline just past the wrap is still in the future.
        assert!(!is_due(5, u32::MAX - 5));
        assert!(is_due(u32::MAX - 5, 5));
        assert!(secs_to_ticks(MAX_TIMEOUT_SECS) < i32::MAX as u32);
        let t = Instant::from_secs(100);
        let d = deadline_tick(t, secs_to_ticks(30));
        assert_eq!(deadline_instant(d, t), Instant::from_secs(130));
    }
}
