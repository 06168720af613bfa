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

/// Where a state lies in a connection's life, for [`synced_state_may_follow`].
fn phase(s: ConnState) -> u8 {
    match s {
        ConnState::Udp => 1,
        ConnState::Tcp(t) => match t {
            TcpState::None
            | TcpState::Listen
            | TcpState::SynSent
            | TcpState::SynRecv
            | TcpState::SynAck => 0,
            TcpState::Established => 1,
            TcpState::FinWait
            | TcpState::CloseWait
            | TcpState::LastAck
            | TcpState::TimeWait
            | TcpState::Close => 2,
        },
    }
}

/// Whether a synced state may replace the stored one of the same connection: a connection
/// moves from opening (NONE, LISTEN, SYN_*) to ESTABLISHED to closing (FIN_WAIT,
/// CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE) and never back. Within a phase any state may
/// follow any other (the kernel's tables move between closing states both ways). A record
/// that would move a connection back (a late or forged datagram) is refused.
pub fn synced_state_may_follow(old: ConnState, new: ConnState) -> bool {
    phase(new) >= phase(old)
}

/// Whether a synced record in state `s` describes a connection that has just begun: TCP in
/// NONE, LISTEN or a SYN state, or UDP (whose entries are only re-created after the
/// previous one expired on the sender, which is never later than the copy expired here).
/// Such a record for a stored connection with another real server is a new connection on
/// reused ports: the sender saw the old one end, its closing record was lost.
pub fn synced_state_starts_new(s: ConnState) -> bool {
    matches!(s, ConnState::Udp) || phase(s) == 0
}

/// Whether a stored state is over: TIME_WAIT or CLOSE. A synced record for the same key
/// with another real server is then a new connection on a reused port, not a contradiction.
pub fn state_is_closed(s: ConnState) -> bool {
    matches!(s, ConnState::Tcp(TcpState::TimeWait | TcpState::Close))
}

impl ConnTable {
    /// Turns the periodic sync refresh on (`Some(period)`, rounded to 10 ms, at least one
    /// tick) or off (`None`, the default). While on, [`PacketOutcome::sync_refresh`] is set
    /// on the first packet of an ESTABLISHED TCP or a UDP connection in each `period`
    /// (periods are offset per connection, so refreshes spread out). No per-connection
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
        if r == 0
            || !matches!(
                e.state(),
                ConnState::Tcp(TcpState::Established) | ConnState::Udp
            )
        {
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
