//! The connection table: IPv4 TCP/UDP connections, their IPVS TCP states and deadlines,
//! persistence templates, and a hard size bound.
//!
//! # Contract
//!
//! * **Sans-IO.** Every method that depends on time takes `now: Instant`; nothing reads a
//!   clock, spawns a thread or draws randomness (the hash seed is configuration). Callers
//!   pass non-decreasing instants.
//! * **No dependency on services or schedulers.** Connections point at a [`DestId`](crate::types::DestId). Every
//!   change to a destination's `ActiveConn` / `InActConn` / `PersistConn` counters is
//!   returned as an [`Accounting`] event (insert, packet, removal, sweep); the service layer
//!   applies them. A new connection starts inactive (kernel: `IP_VS_CONN_F_INACTIVE` is
//!   set at creation); TCP ESTABLISHED, SYN_SENT, SYN_RECV and SYNACK are active (kernel
//!   `tcp_state_active_table`), so a SYN makes a connection active at once; UDP is always
//!   inactive.
//! * **Bounded, never evicting.** At most `max_entries` connections plus templates. A full
//!   table refuses inserts ([`ConnError::TableFull`], counted in
//!   [`ConnStats::refused_full`]); it never drops a live entry to make room. Expired entries
//!   still occupy room until the sweep (or an insert of the same key) removes them.
//! * **Expiry.** Each entry has a deadline, refreshed by every packet to its (new) state's
//!   timeout ([`Timeouts`]). Lookups treat entries past their deadline as absent;
//!   [`ConnTable::expire`] removes them in one pass (the caller runs it periodically, e.g.
//!   every second — see [`ConnTable::poll_timeout`]) and reports each removal.
//! * **Templates** ([`template`], [`TemplateInfo`]) are not removed while they control
//!   connections (kernel `n_control`); they are re-armed instead.
//! * **Panics.** None on any input; the debug-only invariant check panics on a bug in this
//!   module.
//!
//! # Memory
//!
//! A connection is a 24-byte [`entry`] in a `hashbrown` table (one control byte per bucket,
//! at most 7/8 load): 2^20 connections take 2^21 buckets x 25 B = 52.4 MB, 50 bytes per
//! connection including hash-table overhead (kernel IPVS: about 128). As the table grows the
//! figure moves between about 29 B (buckets at 7/8 load) and 57 B (right after a doubling);
//! a table preallocated for more than it holds costs more per entry. Templates live in a
//! separate slab and index ([`ConnTable::memory_bytes`] counts both). The NAT reply lookup
//! shares the inbound entry: both directions hash on (protocol, client address, client port)
//! as in the kernel, and the reply side resolves the entry's [`DestId`](crate::types::DestId) to an address through
//! a closure instead of storing it.
//!
//! # What sync uses
//!
//! [`ConnTable::conns`] / [`ConnTable::templates`] list entries with state, remaining time
//! and destination; [`PacketOutcome::old_state`] exposes state changes and
//! [`PacketOutcome::sync_refresh`] the periodic refresh ([`ConnTable::set_sync_refresh`]);
//! [`ConnTable::insert_synced`] creates an entry with a given state and timeout,
//! [`ConnTable::update_synced`] and [`ConnTable::set_template_deadline`] update one (the `sync`
//! file). A per-connection packet counter (for `sync_threshold`) is not stored: the
//! refresh is derived from the deadline instead.

mod check;
pub mod entry;
mod persist;
mod sync;
mod table;
pub mod tcp;
pub mod template;
pub mod timeouts;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use check::{DestCounts, InvariantViolation};
pub use entry::{Accounting, ConnClass, ConnKey, ConnState, ReplyKey};
pub use persist::{TemplateInfo, TemplateInserted};
pub use sync::synced_state_may_follow;
pub use table::{
    ConnInfo, ConnStats, ConnTable, ConnTableConfig, ExpireReport, Inserted, NewConn, PacketOutcome,
};
pub use tcp::{TcpDirection, TcpFlags, TcpState};
pub use template::{TemplateId, TemplateKey, TemplateService};
pub use timeouts::{TimeoutRangeError, TimeoutUpdate, Timeouts};

use crate::types::Protocol;

/// Debug builds run the full invariant check after every mutation while the table holds at
/// most this many entries.
pub const DEBUG_CHECK_MAX_LEN: usize = 256;

/// ... and while its hash table has at most this much capacity: the check walks every
/// bucket, so a table pre-sized for production (lvsd asks for 65536) would pay a full scan
/// per packet in a debug build (tens of milliseconds per packet in the lab tests).
pub const DEBUG_CHECK_MAX_CAPACITY: usize = 4096;

/// Why a connection-table operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// The table holds `max` connections plus templates already.
    #[error("connection table full ({max} entries); new connection refused")]
    TableFull {
        /// The configured bound.
        max: usize,
    },
    /// A live connection with this key exists.
    #[error("connection {key:?} already exists")]
    Exists {
        /// The key.
        key: ConnKey,
    },
    /// A live template with this key exists.
    #[error("persistence template already exists ({id:?})")]
    TemplateExists {
        /// The existing template.
        id: TemplateId,
    },
    /// The template handle refers to a template that has been removed.
    #[error("unknown or removed persistence template {id:?}")]
    UnknownTemplate {
        /// The stale handle.
        id: TemplateId,
    },
    /// 2^24 - 1 templates are allocated (connections address templates with 24 bits).
    #[error("too many persistence templates (limit 2^24 - 1)")]
    TemplateSlotsExhausted,
    /// A synced connection's state does not fit its protocol.
    #[error("state {state:?} does not belong to protocol {proto}")]
    StateMismatch {
        /// The key's protocol.
        proto: Protocol,
        /// The offered state.
        state: ConnState,
    },
    /// `--set` value out of range.
    #[error(transparent)]
    Timeout(#[from] TimeoutRangeError),
}

/// Debug-build tally of every accounting event handed out, to check against the entries.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    #[cfg(debug_assertions)]
    counts: DestCounts,
}

impl Ledger {
    /// Notes an event on its way out; returns it.
    #[inline]
    pub(crate) fn record(&mut self, ev: Accounting) -> Accounting {
        #[cfg(debug_assertions)]
        ev.apply_to(self.counts.entry(ev.dest).or_default());
        ev
    }

    /// The tally, in debug builds.
    pub(crate) fn counts(&self) -> Option<DestCounts> {
        #[cfg(debug_assertions)]
        return Some(self.counts.clone());
        #[cfg(not(debug_assertions))]
        None
    }
}
