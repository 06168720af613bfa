//! Connection sync between the two directors, sans-IO: the wire format ([`wire`]), the
//! [`Sender`] that batches connection-table changes into signed datagrams, and the
//! [`Receiver`] that authenticates datagrams and yields the entries they carry. The layout
//! and the protocol are described in `docs/sync.md`.
//!
//! # Contract
//!
//! * **Sans-IO.** Time is passed in ([`Instant`](crate::time::Instant)); nothing here reads
//!   a clock, opens a socket, spawns a thread or draws randomness (the boot id and resync
//!   session numbers come from the caller). The shell (lvsd) owns the UDP socket: it hands
//!   received datagrams to [`Receiver::handle_datagram`] and sends what
//!   [`Sender::poll_transmit`] returns, waking at [`Sender::poll_timeout`].
//! * **What is synced** comes from the engine: [`crate::ipvs::Ipvs::enable_sync_feed`]
//!   makes the engine queue the keys of connections and templates that changed in a way
//!   that matters (bounded, dropped and counted when full), and
//!   [`crate::ipvs::Ipvs::drain_sync_feed`] turns them into [`SyncRecord`]s for the sender.
//!   [`crate::ipvs::Ipvs::sync_export`] lists the whole table for a bulk resync, and
//!   [`crate::ipvs::Ipvs::sync_import`] applies a received record on the other director.
//! * **Authenticated.** Every datagram carries an HMAC-SHA256 tag over all its bytes, with
//!   the pair's shared key ([`SyncKey`]); a (boot id, sequence) pair is accepted once, within
//!   a 64-wide window ([`ReplayWindow`]), as pulse's heartbeats do; only a datagram newer
//!   than every one accepted before is passed on, so records are applied in the sender's
//!   order.
//! * **No panics** on any input: every malformed datagram is a [`SyncError`] variant.

#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
pub mod receiver;
pub mod sender;
pub mod wire;

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

use core::net::Ipv4Addr;
use core::time::Duration;

use ring::hmac;

use crate::conn::{ConnKey, ConnState, TemplateKey};
use crate::types::ForwardMethod;

pub use receiver::{Entries, ReceiveCounts, Received, Receiver, ReceiverConfig};
pub use sender::{SendCounts, Sender, SenderConfig, SenderConfigError};
pub use wire::Kind;

/// Width of the replay window, in sequence numbers.
pub const WINDOW: u64 = 64;
/// Shortest key accepted, in bytes (as pulse's heartbeat key).
pub const MIN_KEY_LEN: usize = 16;

/// One synced connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnRecord {
    /// Protocol, client and virtual address and port.
    pub key: ConnKey,
    /// The firewall mark of the connection's service, 0 when the service is not a mark
    /// service (it tells the receiver which service the connection belongs to).
    pub fwmark: u32,
    /// Real server address.
    pub daddr: Ipv4Addr,
    /// Real server port as configured in its service (`-r RIP:PORT`, may be 0); with the
    /// service it names the destination.
    pub dport: u16,
    /// Forwarding method the connection was created with.
    pub fwd: ForwardMethod,
    /// Protocol state.
    pub state: ConnState,
    /// Remaining lifetime on the sender (millisecond resolution on the wire, at most 31
    /// days).
    pub timeout: Duration,
}

/// One synced persistence template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateRecord {
    /// Masked client and service.
    pub key: TemplateKey,
    /// Real server address the client group sticks to.
    pub daddr: Ipv4Addr,
    /// Its configured port.
    pub dport: u16,
    /// Remaining lifetime on the sender.
    pub timeout: Duration,
}

/// One entry of a sync datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncRecord {
    /// A connection.
    Conn(ConnRecord),
    /// A persistence template.
    Template(TemplateRecord),
}

/// Why a sync datagram was dropped. One variant per reason, so each can be counted
/// ([`ReceiveCounts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// Shorter than a header and a tag.
    #[error("sync datagram truncated: {len} bytes, need {need}")]
    Truncated {
        /// Length received.
        len: usize,
        /// Length required.
        need: usize,
    },
    /// Not a sync datagram.
    #[error("sync datagram with bad magic")]
    BadMagic,
    /// A version this build does not speak.
    #[error(
        "unsupported sync version {version} (this build speaks {})",
        wire::VERSION
    )]
    BadVersion {
        /// Version received.
        version: u8,
    },
    /// Longer than the format or the receiver's configuration allows.
    #[error("sync datagram oversized: {len} bytes, at most {max}")]
    Oversized {
        /// Length received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An unknown message kind.
    #[error("unknown sync message kind {kind}")]
    BadKind {
        /// Kind received.
        kind: u8,
    },
    /// The length disagrees with the kind and entry count.
    #[error("sync datagram length {len} does not match its header (expected {expected})")]
    LengthMismatch {
        /// Length received.
        len: usize,
        /// Length the header implies.
        expected: usize,
    },
    /// Another pair's traffic (syncd id differs).
    #[error("sync datagram for syncd_id {got}, this director has {want}")]
    WrongId {
        /// Id received.
        got: u8,
        /// Id configured.
        want: u8,
    },
    /// The tag does not verify: wrong key, or tampered bytes.
    #[error("sync datagram authentication failed (wrong key or tampered)")]
    BadMac,
    /// A reserved field is not zero (after the tag verified).
    #[error("sync datagram: reserved field {field} not zero")]
    Reserved {
        /// Which field.
        field: &'static str,
    },
    /// An entry has an undefined value (after the tag verified).
    #[error("sync entry {index}: bad {field} ({value})")]
    BadEntry {
        /// Entry index in the datagram.
        index: usize,
        /// Which field.
        field: &'static str,
        /// The value found.
        value: u32,
    },
    /// Older than the replay window, or from an earlier boot of the sender.
    #[error("stale sync datagram: boot {boot_id} sequence {sequence}")]
    Stale {
        /// Boot id received.
        boot_id: u64,
        /// Sequence received.
        sequence: u64,
    },
    /// Authentic and not seen before, but older than a datagram already accepted: its
    /// records may be older than ones already applied, so it is dropped (recorded in the
    /// window: a second copy is `Replayed`). Lost records are made up by the periodic
    /// refresh, and a resync answer missing a batch is asked for again.
    #[error("reordered sync datagram: boot {boot_id} sequence {sequence}")]
    Reordered {
        /// Boot id received.
        boot_id: u64,
        /// Sequence received.
        sequence: u64,
    },
    /// Already received once.
    #[error("replayed sync datagram: boot {boot_id} sequence {sequence}")]
    Replayed {
        /// Boot id received.
        boot_id: u64,
        /// Sequence received.
        sequence: u64,
    },
}

/// A key too short to be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("sync key too short: {len} bytes, need at least {MIN_KEY_LEN}")]
pub struct KeyTooShort {
    /// Length given.
    pub len: usize,
}

/// The pair's shared HMAC-SHA256 key (lvsd uses the heartbeat key). `Debug` never shows it.
#[derive(Clone)]
pub struct SyncKey(pub(crate) hmac::Key);

impl SyncKey {
    /// A key from raw bytes (at least [`MIN_KEY_LEN`]).
    pub fn new(bytes: &[u8]) -> Result<SyncKey, KeyTooShort> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(KeyTooShort { len: bytes.len() });
        }
        Ok(SyncKey(hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }
}

impl core::fmt::Debug for SyncKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SyncKey(..)")
    }
}

/// A sliding window over `(boot id, sequence)`, like IPsec's anti-replay window (RFC 4303
/// §3.4.3): a higher boot id starts a new window, a lower one is stale; within a boot id
/// each of the last [`WINDOW`] sequence numbers is accepted once, in any order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Boot id and highest sequence accepted so far; `None` before the first datagram.
    top: Option<(u64, u64)>,
    /// Bit `i` set: sequence `highest - i` was accepted.
    seen: u64,
}

impl ReplayWindow {
    /// Whether `(boot_id, sequence)` would be accepted; changes nothing.
    pub fn check(&self, boot_id: u64, sequence: u64) -> Result<(), SyncError> {
        let Some((boot, highest)) = self.top else {
            return Ok(());
        };
        if boot_id > boot || (boot_id == boot && sequence > highest) {
            return Ok(());
        }
        if boot_id < boot || highest - sequence >= WINDOW {
            return Err(SyncError::Stale { boot_id, sequence });
        }
        if self.seen & (1u64 << (highest - sequence)) != 0 {
            return Err(SyncError::Replayed { boot_id, sequence });
        }
        Ok(())
    }

    /// Checks, then records `(boot_id, sequence)` as received.
    pub fn accept(&mut self, boot_id: u64, sequence: u64) -> Result<(), SyncError> {
        self.check(boot_id, sequence)?;
        match self.top {
            Some((boot, highest)) if boot == boot_id && sequence <= highest => {
                self.seen |= 1u64 << (highest - sequence);
            }
            Some((boot, highest)) if boot == boot_id => {
                let shift = sequence - highest;
                self.seen = if shift >= WINDOW {
                    0
                } else {
                    self.seen << shift
                } | 1;
                self.top = Some((boot_id, sequence));
            }
            _ => {
                self.top = Some((boot_id, sequence));
                self.seen = 1;
            }
        }
        Ok(())
    }

    /// Whether `(boot_id, sequence)` is newer than everything accepted so far.
    pub fn is_newest(&self, boot_id: u64, sequence: u64) -> bool {
        match self.top {
            None => true,
            Some((boot, highest)) => boot_id > boot || (boot_id == boot && sequence > highest),
        }
    }

    /// The boot id of the partner currently followed, if any.
    pub fn boot_id(&self) -> Option<u64> {
        self.top.map(|(b, _)| b)
    }
}
