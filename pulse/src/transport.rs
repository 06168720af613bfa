//! The heartbeat transport: UDP sockets between this director and its partner.
//!
//! One non-blocking [`UdpSocket`] per path: the public addresses always, the private
//! addresses when configured (reference `piranha-daemons.md` §1.3). [`Transport::send`] sends
//! one heartbeat on every path; [`Transport::recv_all`] drains every socket and returns the
//! heartbeats the failover machine may act on. The daemon polls the descriptors from
//! [`Transport::fds`] and calls `recv_all` when one is readable.
//!
//! A received datagram is dropped, counted by [`DropReason`] in [`Counters`], and logged at
//! most once per reason every [`LOG_INTERVAL`] (with the count of what was suppressed) when:
//! - its source is not one of the partner's configured `address:heartbeat_port`
//!   (Piranha checks only the address);
//! - a key is configured and it is not a valid authenticated heartbeat: a Piranha frame is
//!   [`DropReason::Unauthenticated`] (a keyed node never falls back), anything else gets the
//!   [`AuthError`] variant's reason;
//! - no key is configured and it is an authenticated heartbeat ([`DropReason::NoKey`]) or not
//!   a valid Piranha frame.
//!
//! With private addresses the same authenticated heartbeat (same sequence number) goes out
//! on both paths; the copy that arrives second on the other path is counted as
//! [`DropReason::Duplicate`] and logged only at debug level. Piranha frames carry no
//! sequence, so each copy is returned, as in Piranha.
//!
//! Contract: nothing here panics or blocks; send and receive errors are counted and logged
//! (rate-limited), never returned, so that a link going down does not stop the daemon.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use crate::config::{Keyed, PulseConfig};
use crate::time::Instant;
use crate::wire::auth::{self, AuthError};
use crate::wire::piranha::{self, PiranhaError};
use crate::wire::{Format, PeerState, Role, classify};

/// At most one log line per drop reason in this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Receive buffer: longer datagrams are cut to this length (and so reported as oversized).
const RECV_BUF: usize = 512;

/// Which pair of addresses a heartbeat travels between.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Path {
    /// `primary` ↔ `backup`.
    Public,
    /// `primary_private` ↔ `backup_private`.
    Private,
}

/// The two ends of one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathAddrs {
    /// Bound locally.
    pub local: SocketAddrV4,
    /// The partner's socket on this path.
    pub partner: SocketAddrV4,
}

/// The paths of one director pair, as seen from this director.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paths {
    /// Public addresses.
    pub public: PathAddrs,
    /// Private addresses, when configured.
    pub private: Option<PathAddrs>,
}

impl Paths {
    /// The paths of a mapped configuration; `None` for a lone primary (no partner).
    pub fn from_config(config: &PulseConfig) -> Option<Paths> {
        let partner = config.partner?;
        let at = |a: Ipv4Addr| SocketAddrV4::new(a, config.port);
        Some(Paths {
            public: PathAddrs {
                local: at(config.local.public),
                partner: at(partner.public),
            },
            private: config
                .local
                .private
                .zip(partner.private)
                .map(|(local, partner)| PathAddrs {
                    local: at(local),
                    partner: at(partner),
                }),
        })
    }
}

/// The heartbeat format in use, with its sequence state.
#[derive(Clone, Debug)]
pub enum Codec {
    /// Piranha's 4-byte format (no key configured).
    Piranha,
    /// The authenticated format.
    Authenticated {
        /// Our heartbeats.
        sender: Box<auth::Sender>,
        /// The partner's heartbeats.
        receiver: Box<auth::Receiver>,
    },
}

impl Codec {
    /// The codec for this director: authenticated when `keyed` is given. `boot_id` must grow
    /// across restarts (see [`crate::wire::auth`]).
    pub fn new(keyed: Option<&Keyed>, role: Role, boot_id: u64) -> Codec {
        match keyed {
            None => Codec::Piranha,
            Some(k) => Codec::Authenticated {
                sender: Box::new(auth::Sender::new(
                    k.key.clone(),
                    role,
                    k.cluster_id,
                    boot_id,
                )),
                receiver: Box::new(auth::Receiver::new(
                    k.key.clone(),
                    k.cluster_id,
                    role.other(),
                )),
            },
        }
    }
}

/// Why a received datagram was dropped. Each has a counter in [`Counters`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// Not from the partner's configured address and port.
    UnexpectedSource,
    /// A Piranha frame on a node with a key.
    Unauthenticated,
    /// An authenticated heartbeat on a node without a key.
    NoKey,
    /// Too short for its format.
    Truncated,
    /// Longer than the authenticated format.
    Oversized,
    /// Bad magic or field values.
    Garbled,
    /// An authenticated version this build does not speak.
    UnsupportedVersion,
    /// Another pair's cluster id.
    WrongCluster,
    /// Wrong key or tampered.
    BadMac,
    /// The partner announces our own role.
    WrongRole,
    /// Older than the replay window or from an earlier boot.
    Stale,
    /// Seen before.
    Replayed,
    /// Authentic but older than one already accepted.
    Reordered,
    /// The copy of an accepted heartbeat that came over the other path.
    Duplicate,
    /// A Piranha magic this mode does not accept.
    Incompatible,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 15] = [
        DropReason::UnexpectedSource,
        DropReason::Unauthenticated,
        DropReason::NoKey,
        DropReason::Truncated,
        DropReason::Oversized,
        DropReason::Garbled,
        DropReason::UnsupportedVersion,
        DropReason::WrongCluster,
        DropReason::BadMac,
        DropReason::WrongRole,
        DropReason::Stale,
        DropReason::Replayed,
        DropReason::Reordered,
        DropReason::Duplicate,
        DropReason::Incompatible,
    ];

    /// A stable name for logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::UnexpectedSource => "unexpected_source",
            DropReason::Unauthenticated => "unauthenticated",
            DropReason::NoKey => "no_key",
            DropReason::Truncated => "truncated",
            DropReason::Oversized => "oversized",
            DropReason::Garbled => "garbled",
            DropReason::UnsupportedVersion => "unsupported_version",
            DropReason::WrongCluster => "wrong_cluster",
            DropReason::BadMac => "bad_mac",
            DropReason::WrongRole => "wrong_role",
            DropReason::Stale => "stale",
            DropReason::Replayed => "replayed",
            DropReason::Reordered => "reordered",
            DropReason::Duplicate => "duplicate",
            DropReason::Incompatible => "incompatible",
        }
    }
}

impl From<AuthError> for DropReason {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Truncated { .. } => DropReason::Truncated,
            AuthError::Oversized { .. } => DropReason::Oversized,
            AuthError::Garbled { .. } => DropReason::Garbled,
            AuthError::UnsupportedVersion { .. } => DropReason::UnsupportedVersion,
            AuthError::WrongCluster { .. } => DropReason::WrongCluster,
            AuthError::BadMac => DropReason::BadMac,
            AuthError::Stale { .. } => DropReason::Stale,
            AuthError::WrongRole { .. } => DropReason::WrongRole,
            AuthError::Reordered { .. } => DropReason::Reordered,
            AuthError::Replayed { .. } => DropReason::Replayed,
        }
    }
}

impl From<PiranhaError> for DropReason {
    fn from(e: PiranhaError) -> Self {
        match e {
            PiranhaError::Truncated { .. } => DropReason::Truncated,
            PiranhaError::Incompatible { .. } => DropReason::Incompatible,
        }
    }
}

/// What the transport has seen since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Heartbeats returned by [`Transport::recv_all`].
    pub accepted: u64,
    /// Heartbeats sent (one per path per [`Transport::send`]).
    pub sent: u64,
    /// `send_to` failures.
    pub send_errors: u64,
    /// `recv_from` failures other than "would block".
    pub recv_errors: u64,
    /// See [`DropReason::UnexpectedSource`].
    pub unexpected_source: u64,
    /// See [`DropReason::Unauthenticated`].
    pub unauthenticated: u64,
    /// See [`DropReason::NoKey`].
    pub no_key: u64,
    /// See [`DropReason::Truncated`].
    pub truncated: u64,
    /// See [`DropReason::Oversized`].
    pub oversized: u64,
    /// See [`DropReason::Garbled`].
    pub garbled: u64,
    /// See [`DropReason::UnsupportedVersion`].
    pub unsupported_version: u64,
    /// See [`DropReason::WrongCluster`].
    pub wrong_cluster: u64,
    /// See [`DropReason::BadMac`].
    pub bad_mac: u64,
    /// See [`DropReason::WrongRole`].
    pub wrong_role: u64,
    /// See [`DropReason::Stale`].
    pub stale: u64,
    /// See [`DropReason::Replayed`].
    pub replayed: u64,
    /// See [`DropReason::Reordered`].
    pub reordered: u64,
    /// See [`DropReason::Duplicate`].
    pub duplicate: u64,
    /// See [`DropReason::Incompatible`].
    pub incompatible: u64,
}

impl Counters {
    fn slot(&mut self, reason: DropReason) -> &mut u64 {
        match reason {
            DropReason::UnexpectedSource => &mut self.unexpected_source,
            DropReason::Unauthenticated => &mut self.unauthenticated,
            DropReason::NoKey => &mut self.no_key,
            DropReason::Truncated => &mut self.truncated,
            DropReason::Oversized => &mut self.oversized,
            DropReason::Garbled => &mut self.garbled,
            DropReason::UnsupportedVersion => &mut self.unsupported_version,
            DropReason::WrongCluster => &mut self.wrong_cluster,
            DropReason::BadMac => &mut self.bad_mac,
            DropReason::WrongRole => &mut self.wrong_role,
            DropReason::Stale => &mut self.stale,
            DropReason::Replayed => &mut self.replayed,
            DropReason::Reordered => &mut self.reordered,
            DropReason::Duplicate => &mut self.duplicate,
            DropReason::Incompatible => &mut self.incompatible,
        }
    }

    /// The count for one drop reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        // `Counters` is `Copy`: one match (in `slot`) serves reading and counting.
        let mut copy = *self;
        *copy.slot(reason)
    }

    /// All drops together.
    pub fn total_dropped(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.dropped(*r)).sum()
    }
}

/// One log line per key per [`LOG_INTERVAL`]; counts what it held back.
#[derive(Clone, Debug, Default)]
pub struct RateLimit {
    slots: BTreeMap<&'static str, (Instant, u64)>,
}

impl RateLimit {
    /// Whether an event of kind `key` at `now` may be logged. `Some(n)`: log it, and say that
    /// `n` events of this kind were held back since the last line. `None`: hold it back.
    pub fn admit(&mut self, key: &'static str, now: Instant) -> Option<u64> {
        match self.slots.get_mut(key) {
            Some((last, held)) if now.saturating_since(*last) < LOG_INTERVAL => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                let n = *held;
                *last = now;
                *held = 0;
                Some(n)
            }
            None => {
                self.slots.insert(key, (now, 0));
                Some(0)
            }
        }
    }
}

/// A heartbeat the failover machine may act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// What the partner announces.
    pub state: PeerState,
    /// The path it came over.
    pub path: Path,
    /// Its source.
    pub from: SocketAddrV4,
}

/// The sockets could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Binding failed (Piranha: `cannot create heartbeat socket. running as root?`).
    #[error("cannot bind the heartbeat socket to {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddrV4,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The socket could not be made non-blocking.
    #[error("cannot make the heartbeat socket on {addr} non-blocking: {source}")]
    NonBlocking {
        /// The socket's address, as far as known.
        addr: String,
        /// The operating system's reason.
        source: io::Error,
    },
}

#[derive(Debug)]
struct Link {
    path: Path,
    socket: UdpSocket,
    partner: SocketAddrV4,
}

/// The heartbeat endpoint of one director.
#[derive(Debug)]
pub struct Transport {
    links: Vec<Link>,
    codec: Codec,
    counters: Counters,
    log: RateLimit,
    /// `(boot id, sequence, path)` of the last authenticated heartbeat returned.
    last_accepted: Option<(u64, u64, Path)>,
}

impl Transport {
    /// Binds a socket per path.
    pub fn bind(paths: &Paths, codec: Codec) -> Result<Transport, TransportError> {
        let open = |p: &PathAddrs| {
            UdpSocket::bind(p.local)
                .map(|s| (s, p.partner))
                .map_err(|source| TransportError::Bind {
                    addr: p.local,
                    source,
                })
        };
        let public = open(&paths.public)?;
        let private = paths.private.as_ref().map(open).transpose()?;
        Transport::with_sockets(public, private, codec)
    }

    /// Wraps sockets bound by the caller (tests bind port 0), each with its partner.
    pub fn with_sockets(
        public: (UdpSocket, SocketAddrV4),
        private: Option<(UdpSocket, SocketAddrV4)>,
        codec: Codec,
    ) -> Result<Transport, TransportError> {
        let mut links = Vec::with_capacity(2);
        for (path, (socket, partner)) in
            std::iter::once((Path::Public, public)).chain(private.map(|p| (Path::Private, p)))
        {
            socket
                .set_nonblocking(true)
                .map_err(|source| TransportError::NonBlocking {
                    addr: socket
                        .local_addr()
                        .map_or_else(|_| "?".to_owned(), |a| a.to_string()),
                    source,
                })?;
            links.push(Link {
                path,
                socket,
                partner,
            });
        }
        Ok(Transport {
            links,
            codec,
            counters: Counters::default(),
            log: RateLimit::default(),
            last_accepted: None,
        })
    }

    /// The counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The sockets' descriptors with their paths, for the daemon's poll loop.
    pub fn fds(&self) -> impl Iterator<Item = (Path, BorrowedFd<'_>)> {
        self.links.iter().map(|l| (l.path, l.socket.as_fd()))
    }

    /// The bound addresses, by path.
    pub fn local_addrs(&self) -> Vec<(Path, io::Result<SocketAddr>)> {
        self.links
            .iter()
            .map(|l| (l.path, l.socket.local_addr()))
            .collect()
    }

    /// Sends one heartbeat announcing `state` on every path; returns how many went out.
    pub fn send(&mut self, now: Instant, state: PeerState) -> usize {
        let mut buf = [0u8; auth::LEN];
        let bytes: &[u8] = match &mut self.codec {
            Codec::Piranha => {
                let frame = piranha::Repr::lvs(state).to_bytes();
                buf[..frame.len()].copy_from_slice(&frame);
                &buf[..frame.len()]
            }
            Codec::Authenticated { sender, .. } => {
                buf = sender.heartbeat(state);
                &buf
            }
        };
        let mut sent = 0;
        for link in &self.links {
            match link.socket.send_to(bytes, link.partner) {
                Ok(_) => sent += 1,
                Err(e) => {
                    self.counters.send_errors += 1;
                    if let Some(held) = self.log.admit("send", now) {
                        tracing::warn!(
                            peer = %link.partner, path = ?link.path, error = %e,
                            errors = self.counters.send_errors, held_back = held,
                            "cannot send heartbeat"
                        );
                    }
                }
            }
        }
        self.counters.sent += sent as u64;
        sent
    }

    /// Reads every pending datagram on every path; returns the heartbeats to act on, in
    /// arrival order per path.
    pub fn recv_all(&mut self, now: Instant) -> Vec<Received> {
        let mut out = Vec::new();
        let mut buf = [0u8; RECV_BUF];
        for i in 0..self.links.len() {
            loop {
                let (len, from) = match self.links[i].socket.recv_from(&mut buf) {
                    Ok(r) => r,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // The partner's ICMP port unreachable, reported on a later call (Piranha
                    // ignores it too).
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => {
                        self.counters.recv_errors += 1;
                        if let Some(held) = self.log.admit("recv", now) {
                            tracing::warn!(
                                path = ?self.links[i].path, error = %e,
                                errors = self.counters.recv_errors, held_back = held,
                                "cannot receive heartbeat"
                            );
                        }
                        break;
                    }
                };
                let path = self.links[i].path;
                match self.judge(path, from, &buf[..len]) {
                    Ok(r) => {
                        self.counters.accepted += 1;
                        out.push(r);
                    }
                    Err((reason, detail)) => self.drop_datagram(now, reason, from, &detail),
                }
            }
        }
        out
    }

    /// Source check, then format and authentication.
    fn judge(
        &mut self,
        path: Path,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<Received, (DropReason, String)> {
        let from = match from {
            SocketAddr::V4(a) if self.links.iter().any(|l| l.partner == a) => a,
            _ => {
                return Err((
                    DropReason::UnexpectedSource,
                    "not the partner's address and heartbeat port".to_owned(),
                ));
            }
        };
        let state = match &mut self.codec {
            Codec::Piranha => {
                if classify(datagram) == Format::Authenticated {
                    return Err((
                        DropReason::NoKey,
                        "authenticated heartbeat, but no heartbeat_key is configured".to_owned(),
                    ));
                }
                piranha::Repr::parse_lvs(datagram).map_err(|e| (e.into(), e.to_string()))?
            }
            Codec::Authenticated { receiver, .. } => {
                if classify(datagram) == Format::Piranha
                    && piranha::Repr::parse_lvs(datagram).is_ok()
                {
                    return Err((
                        DropReason::Unauthenticated,
                        "Piranha heartbeat, but heartbeat_key is configured".to_owned(),
                    ));
                }
                match receiver.receive(datagram) {
                    Ok(repr) => {
                        self.last_accepted = Some((repr.boot_id, repr.sequence, path));
                        repr.state
                    }
                    Err(AuthError::Replayed { boot_id, sequence })
                        if self.last_accepted.is_some_and(|(b, s, p)| {
                            (b, s) == (boot_id, sequence) && p != path
                        }) =>
                    {
                        return Err((
                            DropReason::Duplicate,
                            "copy of the last heartbeat over the other path".to_owned(),
                        ));
                    }
                    Err(e) => return Err((e.into(), e.to_string())),
                }
            }
        };
        Ok(Received { state, path, from })
    }

    fn drop_datagram(&mut self, now: Instant, reason: DropReason, from: SocketAddr, detail: &str) {
        let slot = self.counters.slot(reason);
        *slot += 1;
        let count = *slot;
        if reason == DropReason::Duplicate {
            tracing::debug!(peer = %from, count, "duplicate heartbeat over the other path");
            return;
        }
        if let Some(held) = self.log.admit(reason.name(), now) {
            tracing::warn!(
                peer = %from, reason = reason.name(), count, held_back = held,
                "heartbeat dropped: {detail}"
            );
        }
    }
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;
