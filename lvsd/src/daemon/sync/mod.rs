//! Connection sync, lvsd's shell around `ipvs_core::sync` (the wire format, sender,
//! receiver and the engine's feed and import live there; `docs/sync.md`).
//!
//! - [`settings`]: where sync runs (pure).
//! - [`thread`]: the sync thread, owning the socket, the sender and the receiver.
//! - [`SyncLink`] (here): the worker's side. After every batch of frames the worker calls
//!   [`SyncLink::tick`], which
//!   - when this director is active, drains up to [`FEED_SLICE`] keys of the engine's
//!     change feed into records and hands them to the sync thread (a full channel keeps
//!     them for the next round; the feed itself is bounded and counts what it drops);
//!   - applies what the thread received, at most [`IMPORT_BUDGET`] records per round so a
//!     flood never holds up forwarding: the partner's updates (only when standby: an active
//!     director's table is its own), the batches of a bulk resync (authoritative);
//!   - answers the partner's resync request: a snapshot of the table's keys, turned into
//!     records [`EXPORT_SLICE`] at a time whenever the thread has written the last slice.
//! - The role: active turns the feed on; stepping down to standby turns it off and asks the
//!   partner for its table (after a split brain, the partner's connections are the live
//!   ones). The thread asks once at start as well.

mod settings;
mod thread;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use ipvs_core::io::Waker;
use ipvs_core::ipvs::{ImportRefusal, Ipvs, SyncFeedConfig, SyncItem};
use ipvs_core::sync::SyncRecord;
use ipvs_core::time::Instant;
use tracing::{error, info, warn};

use crate::control::api::{
    Role, SyncFeedView, SyncImportedView, SyncReceivedView, SyncSentView, SyncView,
};
use crate::lvscf::{Global, SyncTransport};
pub use settings::{HostView, SyncOff, SyncSettings, changed_keywords, resolve};
use thread::{FromSync, ToSync, WorkerEnd};

/// Messages the worker may queue for the sync thread.
pub const TO_SYNC_QUEUE: usize = 256;
/// Messages (one received datagram's records each) the thread may queue for the worker.
pub const FROM_SYNC_QUEUE: usize = 4096;
/// Feed keys drained per round.
pub const FEED_SLICE: usize = 1024;
/// Records of a resync answer produced per slice.
pub const EXPORT_SLICE: usize = 8192;
/// Records imported per round at most.
pub const IMPORT_BUDGET: usize = 8192;
/// One log line per reason per this interval.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// One log line per key per [`LOG_EVERY`], with the count held back.
#[derive(Debug, Default)]
pub(crate) struct Every {
    slots: BTreeMap<&'static str, (std::time::Instant, u64)>,
}

impl Every {
    /// `Some(held back since the last line)` when a line may be logged now.
    pub(crate) fn admit(&mut self, key: &'static str) -> Option<u64> {
        let now = std::time::Instant::now();
        let slot = self.slots.entry(key).or_insert((now - LOG_EVERY, 0));
        if now.duration_since(slot.0) < LOG_EVERY {
            slot.1 += 1;
            return None;
        }
        let held = slot.1;
        *slot = (now, 0);
        Some(held)
    }
}

/// A resync answer being produced.
#[derive(Debug)]
struct Export {
    session: u32,
    keys: Vec<SyncItem>,
    pos: usize,
    sent: u64,
}

#[derive(Debug)]
struct Running {
    transport: SyncTransport,
    local: std::net::SocketAddrV4,
    peer: std::net::SocketAddrV4,
    syncd_id: u8,
    device: Option<String>,
    end: WorkerEnd,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pending: Option<Vec<SyncRecord>>,
    streaming: bool,
    export: Option<Export>,
    ignored_while_active: u64,
    every: Every,
}

/// The worker's side of connection sync; off when lvs.cf or the host say so.
#[derive(Debug)]
pub struct SyncLink {
    off: Option<String>,
    running: Option<Running>,
}

impl SyncLink {
    /// Sync that does not run, for `reason`.
    pub fn off(reason: impl Into<String>) -> SyncLink {
        SyncLink {
            off: Some(reason.into()),
            running: None,
        }
    }

    /// Starts the sync thread when lvs.cf asks for sync and it can run; otherwise says why
    /// (at error level unless `syncdaemon = 0`) and stays off. Forwarding never depends on
    /// it.
    pub fn start(g: &Global, host: &HostView, worker: Waker) -> SyncLink {
        let settings = match resolve(g, host, crate::key::read_key_file) {
            Ok(s) => s,
            Err(SyncOff::Disabled) => return SyncLink::off(SyncOff::Disabled.to_string()),
            Err(e) => {
                error!("connection sync: {e}");
                return SyncLink::off(e.to_string());
            }
        };
        match Self::spawn(settings, worker) {
            Ok(link) => link,
            Err(why) => {
                error!("connection sync: {why}; connection sync is off");
                SyncLink::off(why)
            }
        }
    }

    fn spawn(settings: SyncSettings, worker: Waker) -> Result<SyncLink, String> {
        let sock = thread::open_socket(&settings)
            .map_err(|e| format!("cannot open the sync socket {}: {e}", settings.bind))?;
        let local = match sock.local_addr() {
            Ok(std::net::SocketAddr::V4(a)) => a,
            _ => settings.bind,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_end, end) = thread::channels(worker, Arc::clone(&stop))
            .map_err(|e| format!("cannot create the sync thread's channels: {e}"))?;
        // Grows across restarts, so the partner's replay window takes the new boot.
        let boot_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let s = settings.clone();
        let handle = std::thread::Builder::new()
            .name("lvsd-sync".into())
            .spawn(move || thread::run(sock, &s, boot_id, thread_end))
            .map_err(|e| format!("cannot start the sync thread: {e}"))?;
        info!(
            transport = %settings.transport,
            local = %local,
            peer = %settings.dest,
            syncd_id = settings.syncd_id,
            "connection sync: on, {} to {}",
            settings.transport,
            settings.dest
        );
        Ok(SyncLink {
            off: None,
            running: Some(Running {
                transport: settings.transport,
                local,
                peer: settings.dest,
                syncd_id: settings.syncd_id,
                device: settings.device.clone(),
                end,
                stop,
                thread: Some(handle),
                pending: None,
                streaming: false,
                export: None,
                ignored_while_active: 0,
                every: Every::default(),
            }),
        })
    }

    /// Follows the director's role: active streams, standby imports. Stepping down from
    /// active asks the partner for its table.
    pub fn set_role(&mut self, ipvs: &mut Ipvs, role: Role) {
        let Some(r) = self.running.as_mut() else {
            return;
        };
        match (role, r.streaming) {
            (Role::Active, false) => {
                ipvs.enable_sync_feed(SyncFeedConfig::default());
                r.streaming = true;
                info!("connection sync: active, streaming changes to the partner");
            }
            (Role::Standby, true) => {
                ipvs.disable_sync_feed();
                r.streaming = false;
                r.pending = None;
                info!("connection sync: standby, importing the partner's changes");
                r.send(ToSync::RequestResync);
            }
            _ => {}
        }
    }

    /// One round of sync work between two batches of frames. True when work is left over
    /// (the worker should not sleep).
    pub fn tick(&mut self, ipvs: &mut Ipvs, now: Instant) -> bool {
        let Some(r) = self.running.as_mut() else {
            return false;
        };
        let mut more = r.imports(ipvs, now);
        if r.streaming {
            more |= r.drain_feed(ipvs, now);
        }
        more
    }

    /// `GET /v1/sync`.
    pub fn view(&self, ipvs: &Ipvs) -> SyncView {
        let Some(r) = &self.running else {
            return SyncView {
                enabled: false,
                off_reason: self.off.clone(),
                ..SyncView::default()
            };
        };
        let t = r.end.stats.lock().map(|s| s.clone()).unwrap_or_default();
        let i = ipvs.sync_import_counts();
        let f = ipvs.sync_feed_stats();
        let rx = t.received;
        SyncView {
            enabled: true,
            off_reason: None,
            transport: Some(r.transport.to_string()),
            local: Some(r.local),
            peer: Some(r.peer),
            syncd_id: r.syncd_id,
            iface: r.device.clone(),
            streaming: r.streaming,
            sent: SyncSentView {
                datagrams: t.sent.datagrams,
                entries: t.sent.entries,
                dropped_datagrams: t.sent.dropped_datagrams,
                dropped_entries: t.sent.dropped_entries,
                resync_requests: t.sent.resync_requests,
                send_errors: t.send_errors,
            },
            received: SyncReceivedView {
                accepted: rx.accepted,
                entries: rx.entries,
                wrong_source: t.wrong_source,
                truncated: rx.truncated,
                bad_magic: rx.bad_magic,
                bad_version: rx.bad_version,
                oversized: rx.oversized,
                bad_kind: rx.bad_kind,
                length_mismatch: rx.length_mismatch,
                wrong_id: rx.wrong_id,
                bad_mac: rx.bad_mac,
                reserved: rx.reserved,
                bad_entry: rx.bad_entry,
                stale: rx.stale,
                reordered: rx.reordered,
                replayed: rx.replayed,
                ignored_while_active: r.ignored_while_active,
            },
            imported: SyncImportedView {
                created: i.created,
                updated: i.updated,
                replaced: i.replaced,
                unknown_service: i.unknown_service,
                unknown_dest: i.unknown_dest,
                not_persistent: i.not_persistent,
                state_cannot_follow: i.state_cannot_follow,
                table_full: i.table_full,
                conn_error: i.conn_error,
            },
            feed: SyncFeedView {
                queued: f.queued as u64,
                pushed: f.pushed,
                dropped: f.dropped,
            },
            resync: t.resync,
        }
    }

    /// Stops the sync thread.
    pub fn shutdown(&mut self) {
        if let Some(mut r) = self.running.take() {
            r.stop.store(true, Ordering::Relaxed);
            r.wake();
            if let Some(h) = r.thread.take()
                && h.join().is_err()
            {
                error!("the sync thread panicked");
            }
        }
    }
}

impl Drop for SyncLink {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Running {
    fn wake(&self) {
        // A full wake-up socket already wakes the thread.
        let _ = (&self.end.wake).write(&[1]);
    }

    /// Queues a message for the thread; false when its queue is full.
    fn send(&mut self, m: ToSync) -> bool {
        match self.end.to_sync.try_send(m) {
            Ok(()) => {
                self.wake();
                true
            }
            Err(TrySendError::Full(_)) => false,
            Err(TrySendError::Disconnected(_)) => {
                if let Some(held) = self.every.admit("thread gone") {
                    error!(held, "connection sync: the sync thread is gone");
                }
                true
            }
        }
    }

    /// Drains the change feed into one message. True when the feed has more.
    fn drain_feed(&mut self, ipvs: &mut Ipvs, now: Instant) -> bool {
        let records = match self.pending.take() {
            Some(p) => p,
            None => {
                let mut v = Vec::new();
                ipvs.drain_sync_feed(now, FEED_SLICE, |r| v.push(r));
                v
            }
        };
        if records.is_empty() {
            return false;
        }
        match self.end.to_sync.try_send(ToSync::Updates(records)) {
            Ok(()) => {
                self.wake();
                ipvs.sync_feed_stats().queued > 0
            }
            Err(TrySendError::Full(ToSync::Updates(v))) => {
                self.pending = Some(v); // the thread is behind; the feed holds the rest
                false
            }
            Err(_) => false,
        }
    }

    /// Applies received records and answers resync requests, within the budget. True when
    /// messages are left.
    fn imports(&mut self, ipvs: &mut Ipvs, now: Instant) -> bool {
        let mut done = 0;
        while done < IMPORT_BUDGET {
            let m = match self.end.from_sync.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return false,
            };
            match m {
                FromSync::Update(records) => {
                    done += records.len();
                    if self.streaming {
                        // Both active for a moment (split brain): our table is our own.
                        self.ignored_while_active += records.len() as u64;
                        continue;
                    }
                    for r in &records {
                        let res = ipvs.sync_import(now, r);
                        self.log_refusal(res.err());
                    }
                }
                FromSync::ResyncBatch(records) => {
                    done += records.len();
                    for r in &records {
                        let res = ipvs.sync_import_resync(now, r);
                        self.log_refusal(res.err());
                    }
                }
                FromSync::Export { session } => {
                    let keys = ipvs.sync_export_keys(now);
                    done += keys.len() / 8; // the snapshot costs a few ns per entry
                    self.export = Some(Export {
                        session,
                        keys,
                        pos: 0,
                        sent: 0,
                    });
                    done += self.export_slice(ipvs, now, session);
                }
                FromSync::ExportMore { session } => {
                    done += self.export_slice(ipvs, now, session);
                }
            }
        }
        true
    }

    /// Hands the next slice of the answer to the thread; returns the records produced.
    fn export_slice(&mut self, ipvs: &Ipvs, now: Instant, session: u32) -> usize {
        let Some(e) = self.export.as_mut().filter(|e| e.session == session) else {
            return 0;
        };
        let end = (e.pos + EXPORT_SLICE).min(e.keys.len());
        let records: Vec<SyncRecord> = e.keys[e.pos..end]
            .iter()
            .filter_map(|k| ipvs.sync_record_of(now, k))
            .collect();
        e.pos = end;
        e.sent += records.len() as u64;
        let n = records.len();
        let last = (end == e.keys.len()).then_some(e.sent);
        if last.is_some() {
            self.export = None;
        }
        // The thread asks for one slice at a time, so its queue has room; if it had not,
        // the answer would stall and the partner would ask again.
        let _ = self.send(ToSync::Answer {
            session,
            records,
            last,
        });
        n
    }

    fn log_refusal(&mut self, refusal: Option<ImportRefusal>) {
        let Some(refusal) = refusal else {
            return;
        };
        let kind = match refusal {
            ImportRefusal::UnknownService { .. } => "unknown service",
            ImportRefusal::UnknownDest { .. } => "unknown real server",
            ImportRefusal::NotPersistent(_) => "not persistent",
            ImportRefusal::StateCannotFollow { .. } => "state cannot follow",
            ImportRefusal::TableFull { .. } => "table full",
            ImportRefusal::Conn(_) => "connection table",
        };
        if let Some(held) = self.every.admit(kind) {
            warn!(
                held,
                reason = kind,
                "connection sync: record refused: {refusal}"
            );
        }
    }
}
