//! [`Receiver`]: authenticates sync datagrams and yields what they carry, sans-IO.
//!
//! Checks, in order: format ([`wire::Packet::new_checked`]), size against
//! [`ReceiverConfig::max_datagram`], syncd id, tag, reserved fields and every entry
//! ([`wire::Header::parse`]), then freshness ([`ReplayWindow`]: not stale, not replayed,
//! and newer than every datagram accepted before, so that records are applied in the
//! sender's order; an older one is `Reordered`). A datagram that fails any
//! check is dropped whole and counted by reason ([`ReceiveCounts`]); one that passes is
//! yielded as [`Received`]. The receiver needs no clock. Whether the entries make sense for
//! this director's table (known service, known real server, a state that can follow the
//! stored one) is checked when they are applied, by
//! [`crate::ipvs::Ipvs::sync_import`].

use core::slice::ChunksExact;

use super::wire::{self, ENTRY_LEN, Kind, Packet};
use super::{ReplayWindow, SyncError, SyncKey, SyncRecord};

/// Construction parameters of a [`Receiver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// lvs.cf `syncd_id`: datagrams with another id are dropped; 0 accepts every id (as the
    /// kernel's backup daemon with syncid 0).
    pub syncd_id: u8,
    /// Longest datagram accepted. Default [`wire::MAX_DATAGRAM_LEN`].
    pub max_datagram: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            syncd_id: 0,
            max_datagram: wire::MAX_DATAGRAM_LEN,
        }
    }
}

/// What an accepted datagram carries.
#[derive(Debug, Clone)]
pub enum Received<'a> {
    /// Connection-table changes.
    Update(Entries<'a>),
    /// The partner asks for this director's whole table, as resync session `session`.
    ResyncRequest {
        /// Echo it in the answer ([`super::Sender::push_resync`]).
        session: u32,
    },
    /// Part of the partner's answer to a resync request.
    ResyncBatch {
        /// The session it answers.
        session: u32,
        /// The records.
        entries: Entries<'a>,
    },
    /// The end of the partner's answer.
    ResyncEnd {
        /// The session it ends.
        session: u32,
        /// Records the partner sent for it.
        total: u64,
        /// Records this receiver accepted for it; fewer than `total` means batches were
        /// lost and the request should be repeated.
        received: u64,
    },
}

/// The records of an accepted datagram, in order. Every entry was validated before the
/// datagram was accepted.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    chunks: ChunksExact<'a, u8>,
}

impl Iterator for Entries<'_> {
    type Item = SyncRecord;
    fn next(&mut self) -> Option<SyncRecord> {
        // Validated by `Header::parse`; a failure here would be a bug, skipped not panicked.
        self.chunks.by_ref().find_map(|c| wire::parse_entry(c).ok())
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.chunks.len()))
    }
}

/// Counters of a [`Receiver`]: accepted datagrams and one counter per [`SyncError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiveCounts {
    /// Datagrams accepted.
    pub accepted: u64,
    /// Entries in accepted datagrams.
    pub entries: u64,
    /// [`SyncError::Truncated`].
    pub truncated: u64,
    /// [`SyncError::BadMagic`].
    pub bad_magic: u64,
    /// [`SyncError::BadVersion`].
    pub bad_version: u64,
    /// [`SyncError::Oversized`].
    pub oversized: u64,
    /// [`SyncError::BadKind`].
    pub bad_kind: u64,
    /// [`SyncError::LengthMismatch`].
    pub length_mismatch: u64,
    /// [`SyncError::WrongId`].
    pub wrong_id: u64,
    /// [`SyncError::BadMac`].
    pub bad_mac: u64,
    /// [`SyncError::Reserved`].
    pub reserved: u64,
    /// [`SyncError::BadEntry`].
    pub bad_entry: u64,
    /// [`SyncError::Stale`].
    pub stale: u64,
    /// [`SyncError::Reordered`].
    pub reordered: u64,
    /// [`SyncError::Replayed`].
    pub replayed: u64,
}

impl ReceiveCounts {
    fn count(&mut self, e: &SyncError) {
        let c = match e {
            SyncError::Truncated { .. } => &mut self.truncated,
            SyncError::BadMagic => &mut self.bad_magic,
            SyncError::BadVersion { .. } => &mut self.bad_version,
            SyncError::Oversized { .. } => &mut self.oversized,
            SyncError::BadKind { .. } => &mut self.bad_kind,
            SyncError::LengthMismatch { .. } => &mut self.length_mismatch,
            SyncError::WrongId { .. } => &mut self.wrong_id,
            SyncError::BadMac => &mut self.bad_mac,
            SyncError::Reserved { .. } => &mut self.reserved,
            SyncError::BadEntry { .. } => &mut self.bad_entry,
            SyncError::Stale { .. } => &mut self.stale,
            SyncError::Reordered { .. } => &mut self.reordered,
            SyncError::Replayed { .. } => &mut self.replayed,
        };
        *c += 1;
    }

    /// Datagrams dropped, all reasons together.
    pub fn dropped(&self) -> u64 {
        self.truncated
            + self.bad_magic
            + self.bad_version
            + self.oversized
            + self.bad_kind
            + self.length_mismatch
            + self.wrong_id
            + self.bad_mac
            + self.reserved
            + self.bad_entry
            + self.stale
            + self.reordered
            + self.replayed
    }
}

/// Validates the partner's sync datagrams; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Receiver {
    key: SyncKey,
    cfg: ReceiverConfig,
    window: ReplayWindow,
    /// The resync session whose batches are being counted, and the records accepted so far.
    resync: Option<(u32, u64)>,
    counts: ReceiveCounts,
}

impl Receiver {
    /// A receiver for one pair.
    pub fn new(key: SyncKey, cfg: ReceiverConfig) -> Receiver {
        Receiver {
            key,
            cfg,
            window: ReplayWindow::default(),
            resync: None,
            counts: ReceiveCounts::default(),
        }
    }

    /// Counters.
    pub fn counts(&self) -> ReceiveCounts {
        self.counts
    }

    /// Forgets the partner's boot id and sequence, so that a partner whose boot id went
    /// backwards (its clock was set back before it restarted) is accepted again. An
    /// operator action; replays of the old boot's datagrams become possible until the
    /// partner's next datagram.
    pub fn reset(&mut self) {
        self.window = ReplayWindow::default();
        self.resync = None;
    }

    /// Checks one received datagram; see the [module docs](self). Every error is counted.
    pub fn handle_datagram<'a>(&mut self, bytes: &'a [u8]) -> Result<Received<'a>, SyncError> {
        let r = self.check(bytes);
        match &r {
            Ok(rx) => {
                self.counts.accepted += 1;
                if let Received::Update(e) | Received::ResyncBatch { entries: e, .. } = rx {
                    self.counts.entries += e.chunks.len() as u64;
                }
            }
            Err(e) => self.counts.count(e),
        }
        r
    }

    fn check<'a>(&mut self, bytes: &'a [u8]) -> Result<Received<'a>, SyncError> {
        let packet = Packet::new_checked(bytes)?;
        if bytes.len() > self.cfg.max_datagram {
            return Err(SyncError::Oversized {
                len: bytes.len(),
                max: self.cfg.max_datagram,
            });
        }
        let h = wire::Header::parse(&packet, &self.key, self.cfg.syncd_id)?;
        let newest = self.window.is_newest(h.boot_id, h.sequence);
        self.window.accept(h.boot_id, h.sequence)?;
        if !newest {
            return Err(SyncError::Reordered {
                boot_id: h.boot_id,
                sequence: h.sequence,
            });
        }
        let body = &bytes[wire::HEADER_LEN..bytes.len() - wire::TAG_LEN];
        let entries = || Entries {
            chunks: if h.kind.has_entries() {
                body.chunks_exact(ENTRY_LEN)
            } else {
                [].chunks_exact(ENTRY_LEN)
            },
        };
        Ok(match h.kind {
            Kind::Update => Received::Update(entries()),
            Kind::ResyncRequest => Received::ResyncRequest { session: h.session },
            Kind::ResyncBatch => {
                let n = u64::from(h.count);
                self.resync = Some(match self.resync {
                    Some((s, got)) if s == h.session => (s, got + n),
                    _ => (h.session, n),
                });
                Received::ResyncBatch {
                    session: h.session,
                    entries: entries(),
                }
            }
            Kind::ResyncEnd => {
                let received = match self.resync {
                    Some((s, got)) if s == h.session => got,
                    _ => 0,
                };
                Received::ResyncEnd {
                    session: h.session,
                    total: h.end_total,
                    received,
                }
            }
        })
    }
}
