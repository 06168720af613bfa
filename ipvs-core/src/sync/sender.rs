//! [`Sender`]: batches sync records into signed datagrams, sans-IO.
//!
//! Records are written straight into the open datagram. A datagram is sealed (sequence
//! number, count and tag written) when it is full, when a record of another stream (updates,
//! or another resync session) arrives, or [`SenderConfig::flush_delay`] after its first
//! record (the kernel's sync daemon waits 20 ms, `IPVS_SYNC_SEND_DELAY`). Sealed datagrams
//! wait in a bounded queue for [`Sender::poll_transmit`]; when the queue is full a newly
//! sealed datagram is dropped and counted (the receiving side recovers through the
//! periodic refresh and, if it matters, a bulk resync). The shell sends everything
//! `poll_transmit` returns and sleeps until [`Sender::poll_timeout`].

use std::collections::VecDeque;

use core::time::Duration;

use super::wire::{self, ENTRY_LEN, HEADER_LEN, Header, Kind, MIN_DATAGRAM_LEN, TAG_LEN};
use super::{SyncKey, SyncRecord};
use crate::time::Instant;

/// Construction parameters of a [`Sender`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderConfig {
    /// lvs.cf `syncd_id`, written into every datagram.
    pub syncd_id: u8,
    /// This director's boot id: must grow across restarts (the shell uses the wall-clock
    /// time in microseconds at start-up), so the partner's replay window accepts the new
    /// boot and rejects the old one's datagrams.
    pub boot_id: u64,
    /// Largest datagram, in bytes (UDP payload). Default [`wire::DEFAULT_DATAGRAM_LEN`]
    /// (1472, a 1500-byte MTU); at least one entry's worth, at most
    /// [`wire::MAX_DATAGRAM_LEN`].
    pub max_datagram: usize,
    /// How long a datagram that is not full may wait for more records. Default 20 ms.
    pub flush_delay: Duration,
    /// Sealed datagrams kept for [`Sender::poll_transmit`]; beyond this they are dropped
    /// and counted. Default 1024 (1.5 MB of 1472-byte datagrams).
    pub max_queued: usize,
    /// How often an unanswered resync request is sent again. Default 1 s.
    pub resync_retry: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            syncd_id: 0,
            boot_id: 0,
            max_datagram: wire::DEFAULT_DATAGRAM_LEN,
            flush_delay: Duration::from_millis(20),
            max_queued: 1024,
            resync_retry: Duration::from_secs(1),
        }
    }
}

/// A [`SenderConfig`] that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SenderConfigError {
    /// `max_datagram` holds no entry.
    #[error("sync datagram size {len} too small: at least {min} bytes")]
    DatagramTooSmall {
        /// Configured size.
        len: usize,
        /// Smallest useful size.
        min: usize,
    },
    /// `max_datagram` is larger than a UDP payload can be.
    #[error("sync datagram size {len} too large: at most {max} bytes")]
    DatagramTooLarge {
        /// Configured size.
        len: usize,
        /// Largest size.
        max: usize,
    },
    /// `max_queued` is 0.
    #[error("sync send queue of 0 datagrams")]
    NoQueue,
}

/// Counters of a [`Sender`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendCounts {
    /// Datagrams handed out by [`Sender::poll_transmit`].
    pub datagrams: u64,
    /// Entries in those datagrams.
    pub entries: u64,
    /// Datagrams dropped because the queue was full.
    pub dropped_datagrams: u64,
    /// Entries in the dropped datagrams.
    pub dropped_entries: u64,
    /// Resync requests sent (first tries and retries).
    pub resync_requests: u64,
}

/// The datagram being filled.
#[derive(Debug)]
struct Open {
    kind: Kind,
    session: u32,
    buf: Vec<u8>,
    count: u16,
    since: Instant,
}

/// An unanswered resync request of this director.
#[derive(Debug, Clone, Copy)]
struct Request {
    session: u32,
    next_at: Instant,
}

/// Batches records into signed datagrams; see the [module docs](self).
#[derive(Debug)]
pub struct Sender {
    key: SyncKey,
    cfg: SenderConfig,
    per_datagram: usize,
    next_sequence: u64,
    open: Option<Open>,
    ready: VecDeque<Vec<u8>>,
    request: Option<Request>,
    counts: SendCounts,
}

impl Sender {
    /// A sender for one boot of this director.
    pub fn new(key: SyncKey, cfg: SenderConfig) -> Result<Sender, SenderConfigError> {
        let min = MIN_DATAGRAM_LEN + ENTRY_LEN;
        if cfg.max_datagram < min {
            return Err(SenderConfigError::DatagramTooSmall {
                len: cfg.max_datagram,
                min,
            });
        }
        if cfg.max_datagram > wire::MAX_DATAGRAM_LEN {
            return Err(SenderConfigError::DatagramTooLarge {
                len: cfg.max_datagram,
                max: wire::MAX_DATAGRAM_LEN,
            });
        }
        if cfg.max_queued == 0 {
            return Err(SenderConfigError::NoQueue);
        }
        // The count field is 16 bits; 65507-byte datagrams hold 2045 entries.
        let per_datagram = wire::entries_per_datagram(cfg.max_datagram);
        Ok(Sender {
            key,
            per_datagram,
            next_sequence: 0,
            open: None,
            ready: VecDeque::new(),
            request: None,
            counts: SendCounts::default(),
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SenderConfig {
        &self.cfg
    }

    /// Counters.
    pub fn counts(&self) -> SendCounts {
        self.counts
    }

    /// Entries one datagram holds.
    pub fn entries_per_datagram(&self) -> usize {
        self.per_datagram
    }

    /// Free places in the queue of sealed datagrams. A bulk resync answer should be fed in
    /// while this is not 0, so that it is paced by the socket instead of dropped.
    pub fn room(&self) -> usize {
        self.cfg.max_queued.saturating_sub(self.ready.len())
    }

    /// Sealed datagrams waiting for [`Sender::poll_transmit`].
    pub fn queued(&self) -> usize {
        self.ready.len()
    }

    /// Adds a record to the update stream (a connection-table change).
    pub fn push(&mut self, now: Instant, record: &SyncRecord) {
        self.add(now, Kind::Update, 0, record);
    }

    /// Adds a record to the answer to resync request `session`.
    pub fn push_resync(&mut self, now: Instant, session: u32, record: &SyncRecord) {
        self.add(now, Kind::ResyncBatch, session, record);
    }

    /// Ends the answer to resync request `session`: seals its last batch and queues the end
    /// marker carrying `total`, the number of records pushed for it. Returns `false` if the
    /// marker was dropped because the queue is full (the requester will ask again).
    pub fn end_resync(&mut self, session: u32, total: u64) -> bool {
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.kind == Kind::ResyncBatch && o.session == session)
        {
            self.seal_open();
        }
        let header = Header {
            kind: Kind::ResyncEnd,
            syncd_id: self.cfg.syncd_id,
            boot_id: self.cfg.boot_id,
            sequence: 0,
            session,
            count: 0,
            end_total: total,
        };
        let buf = vec![0u8; MIN_DATAGRAM_LEN + wire::END_BODY_LEN];
        self.enqueue(header, buf)
    }

    /// Asks the partner for its whole table, as resync session `session` (the caller picks
    /// a value not used recently, e.g. random; 0 is allowed but ambiguous in logs). The
    /// request goes out at the next [`Sender::poll_transmit`] and again every
    /// [`SenderConfig::resync_retry`] until [`Sender::resync_complete`]. A new request
    /// replaces an unanswered one.
    pub fn request_resync(&mut self, now: Instant, session: u32) {
        self.request = Some(Request {
            session,
            next_at: now,
        });
    }

    /// Stops asking: the answer to `session` arrived complete (the receiver's
    /// [`super::Received::ResyncEnd`] with `received == total`).
    pub fn resync_complete(&mut self, session: u32) {
        if self.request.is_some_and(|r| r.session == session) {
            self.request = None;
        }
    }

    /// The partner is answering `session` (a batch of it arrived): the next retry of the
    /// request waits another [`SenderConfig::resync_retry`] from `now`, so a long answer is
    /// not asked for again while it streams in; a stalled one is.
    pub fn resync_progress(&mut self, now: Instant, session: u32) {
        if let Some(r) = self.request.as_mut().filter(|r| r.session == session) {
            r.next_at = now + self.cfg.resync_retry;
        }
    }

    /// The resync session this director is waiting for, if any.
    pub fn pending_resync(&self) -> Option<u32> {
        self.request.map(|r| r.session)
    }

    fn add(&mut self, now: Instant, kind: Kind, session: u32, record: &SyncRecord) {
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.kind != kind || o.session != session)
        {
            self.seal_open();
        }
        let max = self.cfg.max_datagram;
        let open = self.open.get_or_insert_with(|| {
            let mut buf = Vec::with_capacity(max);
            buf.resize(HEADER_LEN, 0);
            Open {
                kind,
                session,
                buf,
                count: 0,
                since: now,
            }
        });
        let at = open.buf.len();
        open.buf.resize(at + ENTRY_LEN, 0);
        wire::emit_entry(record, &mut open.buf[at..]);
        open.count += 1;
        if usize::from(open.count) >= self.per_datagram {
            self.seal_open();
        }
    }

    fn seal_open(&mut self) {
        let Some(mut open) = self.open.take() else {
            return;
        };
        open.buf.resize(open.buf.len() + TAG_LEN, 0);
        let header = Header {
            kind: open.kind,
            syncd_id: self.cfg.syncd_id,
            boot_id: self.cfg.boot_id,
            sequence: 0,
            session: open.session,
            count: open.count,
            end_total: 0,
        };
        self.enqueue(header, open.buf);
    }

    /// Numbers, signs and queues a datagram whose body is in place; drops it when the
    /// queue is full.
    fn enqueue(&mut self, mut header: Header, mut buf: Vec<u8>) -> bool {
        if self.ready.len() >= self.cfg.max_queued {
            self.counts.dropped_datagrams += 1;
            self.counts.dropped_entries += u64::from(header.count);
            return false;
        }
        header.sequence = self.take_sequence();
        wire::seal(&header, &mut buf, &self.key);
        self.ready.push_back(buf);
        true
    }

    fn take_sequence(&mut self) -> u64 {
        let s = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        s
    }

    /// The next datagram to send, if any is due at `now`: queued ones first, then the open
    /// one if its flush delay has passed, then a due resync request.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.ready.is_empty()
            && self
                .open
                .as_ref()
                .is_some_and(|o| o.since + self.cfg.flush_delay <= now)
        {
            self.seal_open();
        }
        if self.ready.is_empty()
            && let Some(r) = self.request
            && r.next_at <= now
        {
            self.request = Some(Request {
                session: r.session,
                next_at: now + self.cfg.resync_retry,
            });
            let header = Header {
                kind: Kind::ResyncRequest,
                syncd_id: self.cfg.syncd_id,
                boot_id: self.cfg.boot_id,
                sequence: self.take_sequence(),
                session: r.session,
                count: 0,
                end_total: 0,
            };
            let mut buf = vec![0u8; MIN_DATAGRAM_LEN];
            wire::seal(&header, &mut buf, &self.key);
            self.counts.resync_requests += 1;
            self.counts.datagrams += 1;
            return Some(buf);
        }
        let d = self.ready.pop_front()?;
        self.counts.datagrams += 1;
        self.counts.entries += ((d.len() - MIN_DATAGRAM_LEN) / ENTRY_LEN) as u64;
        Some(d)
    }

    /// When [`Sender::poll_transmit`] has something next: [`Instant::ZERO`] (at once) while
    /// datagrams are queued, else the open datagram's flush time or the next resync
    /// request, whichever is earlier; `None` when idle.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.ready.is_empty() {
            return Some(Instant::ZERO);
        }
        let flush = self.open.as_ref().map(|o| o.since + self.cfg.flush_delay);
        let request = self.request.map(|r| r.next_at);
        match (flush, request) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
