//! The sync thread: owns the UDP socket, the [`Sender`] and the [`Receiver`], so that
//! HMAC work and system calls stay off the forwarding worker.
//!
//! It blocks in `poll(2)` on the socket and on a wake-up socket the worker writes to, with
//! the sender's next deadline as the timeout. Each round:
//! 1. takes the worker's messages: records of the change feed, slices of a resync answer,
//!    a request to ask the partner for its table;
//! 2. feeds the open resync answer to the sender while it has room, asking the worker for
//!    the next slice when the last one is written (the answer is paced by the socket);
//! 3. transmits sealed datagrams (a full socket keeps the datagram for the next round);
//! 4. receives: datagrams from another source than the partner's are dropped and counted;
//!    the receiver checks the rest (every drop counted by reason and logged rate-limited);
//!    updates and resync batches go to the worker over a bounded channel. When that channel
//!    is full the thread stops reading the socket until the worker has caught up (the
//!    socket's buffer absorbs the burst; nothing accepted is thrown away);
//! 5. publishes its counters for the API.

use std::collections::VecDeque;
use std::io::{self, Read as _};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd as _;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver as ChanRx, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipvs_core::io::Waker;
use ipvs_core::sync::{
    ReceiveCounts, Received, Receiver, ReceiverConfig, SendCounts, Sender, SenderConfig, SyncError,
    SyncKey, SyncRecord,
};
use ipvs_core::time::Instant;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tracing::{info, warn};

use super::Every;
use super::settings::SyncSettings;

/// Datagrams read per round at most, so that the worker's messages are not starved.
const RECV_PER_ROUND: usize = 256;

/// Longest sleep: the stop flag is looked at this often.
const MAX_SLEEP: Duration = Duration::from_millis(100);

/// Socket buffers asked for (`SO_RCVBUFFORCE`, falling back to the capped `SO_RCVBUF`):
/// a bulk resync arrives as a burst of up to the sender's 1024 queued datagrams.
const SOCKET_BUFFER: usize = 8 << 20;

/// What the worker tells the sync thread.
#[derive(Debug)]
pub(super) enum ToSync {
    /// Records of the change feed, in order.
    Updates(Vec<SyncRecord>),
    /// A slice of the answer to the partner's resync request; `last` carries the total
    /// when it is the final slice.
    Answer {
        /// The partner's session.
        session: u32,
        /// The records.
        records: Vec<SyncRecord>,
        /// `Some(total)` on the final slice.
        last: Option<u64>,
    },
    /// Ask the partner for its whole table (this director stepped down).
    RequestResync,
}

/// What the sync thread tells the worker.
#[derive(Debug)]
pub(super) enum FromSync {
    /// Records of the partner's change feed.
    Update(Vec<SyncRecord>),
    /// Records of the partner's answer to our resync request.
    ResyncBatch(Vec<SyncRecord>),
    /// The partner asks for our table (a new session restarts an answer).
    Export {
        /// Its session.
        session: u32,
    },
    /// The previous slice of the answer is written: the next one, please.
    ExportMore {
        /// The session.
        session: u32,
    },
}

/// Counters the thread publishes.
#[derive(Debug, Clone, Default)]
pub(super) struct ThreadStats {
    pub sent: SendCounts,
    pub send_errors: u64,
    pub received: ReceiveCounts,
    pub wrong_source: u64,
    pub resync: crate::control::api::SyncResyncView,
}

/// The thread's end of the channels.
pub(super) struct Channels {
    pub to_sync: ChanRx<ToSync>,
    pub from_sync: SyncSender<FromSync>,
    pub wake: UnixStream,
    pub worker: Waker,
    pub stats: Arc<Mutex<ThreadStats>>,
    pub stop: Arc<AtomicBool>,
}

/// Opens the sync socket as the settings say.
pub(super) fn open_socket(s: &SyncSettings) -> io::Result<UdpSocket> {
    use nix::sys::socket::{setsockopt, sockopt};
    let sock = UdpSocket::bind(s.bind)?;
    let fd = sock.as_fd();
    if let Some(dev) = &s.device {
        setsockopt(&fd, sockopt::BindToDevice, &std::ffi::OsString::from(dev))
            .map_err(|e| io::Error::other(format!("SO_BINDTODEVICE {dev}: {e}")))?;
    }
    if setsockopt(&fd, sockopt::RcvBufForce, &SOCKET_BUFFER).is_err() {
        let _ = setsockopt(&fd, sockopt::RcvBuf, &SOCKET_BUFFER);
    }
    if setsockopt(&fd, sockopt::SndBufForce, &SOCKET_BUFFER).is_err() {
        let _ = setsockopt(&fd, sockopt::SndBuf, &SOCKET_BUFFER);
    }
    if let Some((group, iface)) = s.multicast {
        sock.join_multicast_v4(&group, &iface)?;
        // A director must not read its own datagrams.
        sock.set_multicast_loop_v4(false)?;
        sock.set_multicast_ttl_v4(1)?;
    }
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// A resync answer being written.
struct Answer {
    session: u32,
    queue: VecDeque<SyncRecord>,
    last: Option<u64>,
    asked_more: bool,
}

/// Our own open resync request.
struct Asking {
    session: u32,
    since: std::time::Instant,
    /// A batch of the session could not be handed to the worker: incomplete.
    lost: bool,
}

struct SyncThread {
    sock: UdpSocket,
    dest: SocketAddrV4,
    sources: Vec<std::net::Ipv4Addr>,
    sender: Sender,
    receiver: Receiver,
    ch: Channels,
    epoch: std::time::Instant,
    pending_tx: Option<Vec<u8>>,
    /// A message the worker's full channel did not take yet.
    held: Option<FromSync>,
    answer: Option<Answer>,
    /// The last answer written in full: (session, total). A repeated request for it means
    /// its end marker was lost; the marker alone goes again (if batches were lost too, the
    /// partner's count falls short and it asks anew with another session).
    answered: Option<(u32, u64)>,
    asking: Option<Asking>,
    stats: ThreadStats,
    every: Every,
    buf: Vec<u8>,
}

/// Runs the sync thread until the stop flag is set or the worker is gone.
pub(super) fn run(sock: UdpSocket, settings: &SyncSettings, boot_id: u64, ch: Channels) {
    let key = match SyncKey::new(settings.key.bytes()) {
        Ok(k) => k,
        Err(e) => {
            warn!("connection sync: {e}; sync is off");
            return;
        }
    };
    let sender = match Sender::new(
        key.clone(),
        SenderConfig {
            syncd_id: settings.syncd_id,
            boot_id,
            ..SenderConfig::default()
        },
    ) {
        Ok(s) => s,
        Err(e) => {
            warn!("connection sync: {e}; sync is off");
            return;
        }
    };
    let receiver = Receiver::new(
        key,
        ReceiverConfig {
            syncd_id: settings.syncd_id,
            ..ReceiverConfig::default()
        },
    );
    let mut t = SyncThread {
        sock,
        dest: settings.dest,
        sources: settings.sources.clone(),
        sender,
        receiver,
        ch,
        epoch: std::time::Instant::now(),
        pending_tx: None,
        held: None,
        answer: None,
        answered: None,
        asking: None,
        stats: ThreadStats::default(),
        every: Every::default(),
        buf: vec![0; 65_536],
    };
    // A director that starts holds nothing: ask the partner for its table at once.
    t.request_resync();
    t.main_loop();
}

impl SyncThread {
    fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn main_loop(&mut self) {
        while !self.ch.stop.load(Ordering::Relaxed) {
            if !self.take_messages() {
                return; // the worker is gone
            }
            self.feed_answer();
            self.transmit();
            let forwarded = self.receive();
            if forwarded {
                self.ch.worker.wake();
            }
            self.stats.sent = self.sender.counts();
            self.stats.received = self.receiver.counts();
            self.stats.resync.in_progress = self.asking.is_some();
            if let Ok(mut s) = self.ch.stats.lock() {
                *s = self.stats.clone();
            }
            self.sleep();
        }
    }

    /// Takes every message of the worker. False when the worker is gone.
    fn take_messages(&mut self) -> bool {
        let now = self.now();
        loop {
            match self.ch.to_sync.try_recv() {
                Ok(ToSync::Updates(records)) => {
                    for r in &records {
                        self.sender.push(now, r);
                    }
                }
                Ok(ToSync::Answer {
                    session,
                    records,
                    last,
                }) => {
                    if let Some(a) = self.answer.as_mut().filter(|a| a.session == session) {
                        a.queue.extend(records);
                        a.last = last;
                        a.asked_more = false;
                    }
                }
                Ok(ToSync::RequestResync) => self.request_resync(),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn request_resync(&mut self) {
        let session = loop {
            let s = (super::super::random_u64() >> 32) as u32;
            if s != 0 {
                break s;
            }
        };
        let now = self.now();
        self.sender.request_resync(now, session);
        self.asking = Some(Asking {
            session,
            since: std::time::Instant::now(),
            lost: false,
        });
        self.stats.resync.requested += 1;
        info!(session, peer = %self.dest, "connection sync: asking the partner for its table");
    }

    /// Writes the open answer while the sender has room; asks for the next slice.
    fn feed_answer(&mut self) {
        let now = self.now();
        let Some(a) = self.answer.as_mut() else {
            return;
        };
        while self.sender.room() > 0 {
            let Some(r) = a.queue.pop_front() else {
                break;
            };
            self.sender.push_resync(now, a.session, &r);
        }
        if !a.queue.is_empty() {
            return;
        }
        if let Some(total) = a.last {
            self.sender.end_resync(a.session, total);
            self.answered = Some((a.session, total));
            self.stats.resync.answered += 1;
            self.stats.resync.answered_entries += total;
            info!(
                session = a.session,
                entries = total,
                "connection sync: answered the partner's resync request"
            );
            self.answer = None;
        } else if !a.asked_more {
            a.asked_more = true;
            let more = FromSync::ExportMore { session: a.session };
            if self.forward(more) {
                self.ch.worker.wake();
            }
        }
    }

    fn transmit(&mut self) {
        let now = self.now();
        loop {
            let Some(d) = self
                .pending_tx
                .take()
                .or_else(|| self.sender.poll_transmit(now))
            else {
                return;
            };
            match self.sock.send_to(&d, self.dest) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pending_tx = Some(d);
                    return;
                }
                Err(e) => {
                    self.stats.send_errors += 1;
                    if let Some(held) = self.every.admit("send") {
                        warn!(peer = %self.dest, held, "connection sync: cannot send: {e}");
                    }
                }
            }
        }
    }

    /// Reads datagrams; true when something went to the worker.
    fn receive(&mut self) -> bool {
        let mut forwarded = false;
        if let Some(m) = self.held.take() {
            if !self.forward(m) {
                return false;
            }
            forwarded = true;
        }
        for _ in 0..RECV_PER_ROUND {
            let (n, from) = match self.sock.recv_from(&mut self.buf) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if let Some(held) = self.every.admit("recv") {
                        warn!(held, "connection sync: receive error: {e}");
                    }
                    break;
                }
            };
            let SocketAddr::V4(from) = from else {
                continue;
            };
            if !self.sources.contains(from.ip()) {
                self.stats.wrong_source += 1;
                if let Some(held) = self.every.admit("wrong source") {
                    warn!(%from, held, "connection sync: datagram from a stranger dropped");
                }
                continue;
            }
            let msg = self.handle(n, from);
            if let Some(m) = msg {
                forwarded = true;
                if !self.forward(m) {
                    break; // the worker is behind: leave the rest in the socket
                }
            }
        }
        forwarded
    }

    fn handle(&mut self, n: usize, from: SocketAddrV4) -> Option<FromSync> {
        let now = self.now();
        let received = match self.receiver.handle_datagram(&self.buf[..n]) {
            Ok(r) => r,
            Err(e) => {
                if let Some(held) = self.every.admit(drop_kind(&e)) {
                    warn!(%from, held, reason = drop_kind(&e), "connection sync: datagram dropped: {e}");
                }
                return None;
            }
        };
        match received {
            Received::Update(entries) => Some(FromSync::Update(entries.collect())),
            Received::ResyncRequest { session } => {
                if self.answer.as_ref().is_some_and(|a| a.session == session) {
                    return None; // a retry of the request being answered
                }
                if let Some((_, total)) = self.answered.filter(|(s, _)| *s == session) {
                    info!(session, %from, "connection sync: the partner asks again for an \
                        answer already sent; sending its end marker again");
                    self.sender.end_resync(session, total);
                    return None;
                }
                self.answer = Some(Answer {
                    session,
                    queue: VecDeque::new(),
                    last: None,
                    asked_more: true,
                });
                info!(session, %from, "connection sync: the partner asks for our table");
                Some(FromSync::Export { session })
            }
            Received::ResyncBatch { session, entries } => {
                let ours = self.asking.as_ref().is_some_and(|a| a.session == session);
                if !ours {
                    return None;
                }
                self.sender.resync_progress(now, session);
                Some(FromSync::ResyncBatch(entries.collect()))
            }
            Received::ResyncEnd {
                session,
                total,
                received,
            } => {
                let asking = self.asking.as_ref().filter(|a| a.session == session)?;
                if received == total && !asking.lost {
                    let ms = u64::try_from(asking.since.elapsed().as_millis()).unwrap_or(u64::MAX);
                    self.sender.resync_complete(session);
                    self.asking = None;
                    self.stats.resync.completed += 1;
                    self.stats.resync.last_entries = total;
                    self.stats.resync.last_ms = ms;
                    info!(
                        session,
                        entries = total,
                        ms,
                        "connection sync: bulk resync complete"
                    );
                } else {
                    self.stats.resync.incomplete += 1;
                    warn!(
                        session,
                        total, received, "connection sync: bulk resync incomplete; asking again"
                    );
                    self.sender.resync_complete(session);
                    self.request_resync();
                }
                None
            }
        }
    }

    /// Hands a message to the worker; false (and the message held) when its channel is
    /// full.
    fn forward(&mut self, m: FromSync) -> bool {
        match self.ch.from_sync.try_send(m) {
            Ok(()) => true,
            Err(TrySendError::Full(m)) => {
                self.held = Some(m);
                false
            }
            Err(TrySendError::Disconnected(_)) => {
                // The worker is gone; the next round stops.
                if let Some(a) = self.asking.as_mut() {
                    a.lost = true;
                }
                true
            }
        }
    }

    fn sleep(&mut self) {
        let now = self.now();
        let busy = self.held.is_some()
            || self
                .answer
                .as_ref()
                .is_some_and(|a| !a.queue.is_empty() && self.sender.room() > 0);
        let wait = if busy && self.held.is_none() {
            Duration::ZERO
        } else if self.held.is_some() {
            Duration::from_millis(1) // the worker is catching up
        } else {
            self.sender
                .poll_timeout()
                .map_or(MAX_SLEEP, |t| t.saturating_duration_since(now))
                .min(MAX_SLEEP)
        };
        let mut sock_events = PollFlags::empty();
        if self.held.is_none() {
            sock_events |= PollFlags::POLLIN;
        }
        if self.pending_tx.is_some() {
            sock_events |= PollFlags::POLLOUT;
        }
        let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
        let mut fds = [
            PollFd::new(self.sock.as_fd(), sock_events),
            PollFd::new(self.ch.wake.as_fd(), PollFlags::POLLIN),
        ];
        let woken = match poll(&mut fds, timeout) {
            Ok(_) => fds[1]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN)),
            Err(_) => false, // EINTR: go round
        };
        if woken {
            let mut sink = [0u8; 256];
            while matches!((&self.ch.wake).read(&mut sink), Ok(n) if n > 0) {}
        }
    }
}

/// The counter name of a drop reason, for logs.
fn drop_kind(e: &SyncError) -> &'static str {
    match e {
        SyncError::Truncated { .. } => "truncated",
        SyncError::BadMagic => "bad magic",
        SyncError::BadVersion { .. } => "bad version",
        SyncError::Oversized { .. } => "oversized",
        SyncError::BadKind { .. } => "bad kind",
        SyncError::LengthMismatch { .. } => "length mismatch",
        SyncError::WrongId { .. } => "wrong syncd_id",
        SyncError::BadMac => "bad mac",
        SyncError::Reserved { .. } => "reserved",
        SyncError::BadEntry { .. } => "bad entry",
        SyncError::Stale { .. } => "stale",
        SyncError::Reordered { .. } => "reordered",
        SyncError::Replayed { .. } => "replayed",
    }
}

/// The worker's end of a fresh set of channels.
pub(super) fn channels(worker: Waker, stop: Arc<AtomicBool>) -> io::Result<(Channels, WorkerEnd)> {
    let (to_tx, to_rx) = mpsc::sync_channel(super::TO_SYNC_QUEUE);
    let (from_tx, from_rx) = mpsc::sync_channel(super::FROM_SYNC_QUEUE);
    let (wake_tx, wake_rx) = UnixStream::pair()?;
    wake_tx.set_nonblocking(true)?;
    wake_rx.set_nonblocking(true)?;
    let stats = Arc::new(Mutex::new(ThreadStats::default()));
    Ok((
        Channels {
            to_sync: to_rx,
            from_sync: from_tx,
            wake: wake_rx,
            worker,
            stats: Arc::clone(&stats),
            stop,
        },
        WorkerEnd {
            to_sync: to_tx,
            from_sync: from_rx,
            wake: wake_tx,
            stats,
        },
    ))
}

/// The worker's end of the channels.
#[derive(Debug)]
pub(super) struct WorkerEnd {
    pub to_sync: SyncSender<ToSync>,
    pub from_sync: ChanRx<FromSync>,
    pub wake: UnixStream,
    pub stats: Arc<Mutex<ThreadStats>>,
}
