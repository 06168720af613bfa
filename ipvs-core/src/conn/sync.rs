//! What connection sync needs from [`ConnTable`]: the periodic refresh flag on the packet
//! path, and updates of existing entries from sync records on the receiving director.
//! Creating a synced entry is [`ConnTable::insert_synced`]; listing for export is
//! [`ConnTable::conns`] and [`ConnTable::templates`].

use core::time::Duration;

use super::ConnError;
use super::entry::{ConnKey, ConnState, Entry};
use super::table::{ConnTable, PacketOutcome};
use super::tcp::TcpState;
use super::template::TemplateId;
use super::timeouts::{MAX_TIMEOUT_SECS, TICK_MS, deadline_tick, is_due, now_tick, secs_to_ticks};
use crate::time::Instant;

fn ticks_of(timeout: Duration) -> u32 {
    let max = secs_to_ticks(MAX_TIMEOUT_SECS);
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    u32::try_from(ms.div_ceil(TICK_MS)).map_or(max, |t| t.min(max))
}

/// The TCP states a connection can reach by transitions of the kernel's (normal) state
/// tables from any state, as a bit mask by state number: SYN_RECV, ESTABLISHED, SYN_SENT,
/// FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT. (Every state leads to CLOSE on a RST, CLOSE to
/// SYN_RECV on a SYN, and SYN_RECV to the rest.) NONE is only ever initial; LISTEN,
/// LAST_ACK and SYNACK belong to tables this engine does not use. `tests::reachable`
/// recomputes the mask from [`super::tcp::next_state`].
pub(crate) const REACHABLE: u16 = (1 << TcpState::SynRecv as u16)
    | (1 << TcpState::Established as u16)
    | (1 << TcpState::SynSent as u16)
    | (1 << TcpState::FinWait as u16)
    | (1 << TcpState::TimeWait as u16)
    | (1 << TcpState::Close as u16)
    | (1 << TcpState::CloseWait as u16);

/// Whether a synced state may replace the stored one of the same connection (same real
/// server): it is the same state, or one that the state tables can lead to from it in any
/// number of steps (records are coalesced: a record carries the state at the time it was
/// sent, intermediate ones may be skipped). Every state reaches every state of
/// [`REACHABLE`]; so a change *into* NONE, LISTEN, LAST_ACK or SYNACK cannot follow
/// anything, and a TCP state cannot follow UDP or the other way round.
pub fn synced_state_may_follow(old: ConnState, new: ConnState) -> bool {
    match (old, new) {
        (ConnState::Udp, ConnState::Udp) => true,
        (ConnState::Tcp(o), ConnState::Tcp(n)) => o == n || REACHABLE & (1 << n as u16) != 0,
        _ => false,
    }
}

impl ConnTable {
    /// Turns the periodic sync refresh on (`Some(period)`, rounded to 10 ms, at least one
    /// tick) or off (`None`, the default). While on, [`PacketOutcome::sync_refresh`] is set
    /// on the first packet of a connection in each `period` (periods are offset per
    /// connection, so refreshes spread out). No per-connection
    /// state is kept: the previous packet's time is recovered from the old deadline and the
    /// state's timeout, so a packet costs a few arithmetic operations more.
    ///
    /// Guarantee: a synced connection's copy on the partner lives at least until its
    /// deadline here minus `period` (its last packet's period was synced).
    pub fn set_sync_refresh(&mut self, period: Option<Duration>) {
        self.sync_refresh_ticks = period.map_or(0, |p| ticks_of(p).max(1));
    }

    /// Whether the sync refresh is due for `e` after a packet (see
    /// [`ConnTable::set_sync_refresh`]); `prev` is its deadline before the packet.
    pub(crate) fn refresh_due(&self, old: ConnState, prev: u32, e: &Entry, now: Instant) -> bool {
        let r = self.sync_refresh_ticks;
        if r == 0 {
            return false;
        }
        let nt = now_tick(now);
        let last = prev.wrapping_sub(self.state_ticks(old));
        let phase = (e.caddr ^ u32::from(e.cport)).wrapping_mul(0x9e37_79b1) % r;
        nt.wrapping_add(phase) / r != last.wrapping_add(phase) / r
    }

    /// Applies a sync record to an existing live connection: sets its state and its
    /// remaining lifetime (capped at 31 days). `None` if no live connection has this key.
    /// The caller checks the real server and [`synced_state_may_follow`] first; a state of
    /// the wrong protocol is refused with [`ConnError::StateMismatch`].
    pub fn update_synced(
        &mut self,
        now: Instant,
        key: &ConnKey,
        state: ConnState,
        timeout: Duration,
    ) -> Result<Option<PacketOutcome>, ConnError> {
        let fits = matches!(
            (key.proto, state),
            (crate::types::Protocol::Tcp, ConnState::Tcp(_))
                | (crate::types::Protocol::Udp, ConnState::Udp)
        );
        if !fits {
            return Err(ConnError::StateMismatch {
                proto: key.proto,
                state,
            });
        }
        let nt = now_tick(now);
        let h = self
            .hasher
            .client(key.proto, u32::from(key.caddr), key.cport);
        let Some(e) = self.conns.find_mut(h, |e| e.matches_in(key)) else {
            return Ok(None);
        };
        if is_due(e.expires, nt) {
            return Ok(None);
        }
        let old = e.state();
        let prev = e.expires;
        if let ConnState::Tcp(s) = state {
            e.set_tcp_state(s);
        }
        e.expires = deadline_tick(now, ticks_of(timeout));
        let e = *e;
        let mut out = self.outcome(old, prev, &e, now);
        out.sync_refresh = false;
        self.debug_check();
        Ok(Some(out))
    }

    /// Sets a template's deadline to `now + remaining` (capped at 31 days), as a sync
    /// record says. [`ConnError::UnknownTemplate`] for a stale handle.
    pub fn set_template_deadline(
        &mut self,
        now: Instant,
        id: TemplateId,
        remaining: Duration,
    ) -> Result<(), ConnError> {
        let s = self
            .templates
            .resolve_mut(id)
            .ok_or(ConnError::UnknownTemplate { id })?;
        s.expires = deadline_tick(now, ticks_of(remaining));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tcp::{TcpDirection, TcpFlags, next_state};
    use super::*;

    #[test]
    fn reachable() {
        let dirs = [
            TcpDirection::Input,
            TcpDirection::Output,
            TcpDirection::InputOnly,
        ];
        let flags = [
            TcpFlags::SYN,
            TcpFlags::ACK,
            TcpFlags::FIN,
            TcpFlags::RST,
            TcpFlags::NONE,
        ];
        for start in TcpState::ALL {
            // Breadth-first closure of one state under every direction and flag class.
            let mut seen: u16 = 0;
            let mut todo = vec![start];
            while let Some(s) = todo.pop() {
                for d in dirs {
                    for f in flags {
                        let n = next_state(s, d, f);
                        if seen & (1 << n as u16) == 0 {
                            seen |= 1 << n as u16;
                            todo.push(n);
                        }
                    }
                }
            }
            assert_eq!(
                seen & !(1 << start as u16),
                REACHABLE & !(1 << start as u16),
                "{start}"
            );
        }
        use ConnState::Tcp;
        assert!(synced_state_may_follow(
            Tcp(TcpState::FinWait),
            Tcp(TcpState::SynRecv)
        ));
        assert!(synced_state_may_follow(
            Tcp(TcpState::Close),
            Tcp(TcpState::Established)
        ));
        assert!(synced_state_may_follow(
            Tcp(TcpState::LastAck),
            Tcp(TcpState::LastAck)
        ));
        assert!(!synced_state_may_follow(
            Tcp(TcpState::Established),
            Tcp(TcpState::None)
        ));
        assert!(!synced_state_may_follow(
            Tcp(TcpState::CloseWait),
            Tcp(TcpState::LastAck)
        ));
        assert!(!synced_state_may_follow(
            ConnState::Udp,
            Tcp(TcpState::Close)
        ));
    }
}
