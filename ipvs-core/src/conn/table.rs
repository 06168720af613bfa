//! [`ConnTable`]: connections, their TCP states and deadlines, and the persistence templates.
//!
//! See the [module docs](super) for the contract; this file holds the connection half of the
//! table (insert, lookups, per-packet updates, removal, the sweep). Template operations are in
//! [`super::persist`], invariant checks in [`super::check`].

use core::net::Ipv4Addr;
use core::time::Duration;

use hashbrown::HashTable;

use super::entry::{Accounting, ConnClass, ConnKey, ConnState, Entry, Hasher, ReplyKey};
use super::tcp::{TcpDirection, TcpFlags, TcpState, next_state};
use super::template::{Status, TemplateId, Templates};
use super::timeouts::{
    TEMPLATE_REARM_SECS, TICK_MS, TimeoutUpdate, Timeouts, deadline_instant, deadline_tick, is_due,
    now_tick, secs_to_ticks,
};
use super::{ConnError, Ledger};
use crate::time::Instant;
use crate::types::{DestId, ForwardMethod, Protocol};

/// Construction parameters of a [`ConnTable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnTableConfig {
    /// Hard bound on connections plus templates. Inserting beyond it fails with
    /// [`ConnError::TableFull`]; nothing live is ever evicted.
    pub max_entries: usize,
    /// Connections to allocate room for up front. Setting it to `max_entries` keeps the hash
    /// table from ever growing (and pausing to rehash) on the packet path.
    pub initial_capacity: usize,
    /// Seed of the connection hash. Clients choose their address and port, so a predictable
    /// hash lets an attacker aim many connections at one probe sequence; pass a secret random
    /// value (the engine's shell reads it from the OS) in production. The mixer is a folded
    /// multiply, not a keyed PRF: it raises the bar, it does not make collisions impossible,
    /// which is why the table is also bounded.
    pub hash_seed: u64,
    /// How often the caller is expected to run [`ConnTable::expire`]; used by
    /// [`ConnTable::poll_timeout`].
    pub sweep_interval: Duration,
}

impl Default for ConnTableConfig {
    fn default() -> Self {
        ConnTableConfig {
            max_entries: 1 << 20,
            initial_capacity: 1024,
            hash_seed: 0x5eed_1b5e_c0ff_ee00,
            sweep_interval: Duration::from_secs(1),
        }
    }
}

/// A new connection to insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewConn {
    /// The connection's key, as its first packet sees it.
    pub key: ConnKey,
    /// The destination the scheduler (or the template) chose.
    pub dest: DestId,
    /// How packets reach the destination.
    pub fwd: ForwardMethod,
    /// The persistence template controlling this connection, if the service is persistent.
    pub template: Option<TemplateId>,
}

/// Everything the table knows about one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// The key.
    pub key: ConnKey,
    /// Destination.
    pub dest: DestId,
    /// Forwarding method.
    pub fwd: ForwardMethod,
    /// Protocol state.
    pub state: ConnState,
    /// When the connection expires if no packet refreshes it (10 ms resolution).
    pub expires: Instant,
    /// The controlling template, if any.
    pub template: Option<TemplateId>,
    /// No reply has been seen yet and the method is not NAT: inbound segments use the
    /// input-only state table.
    pub no_output: bool,
}

impl ConnInfo {
    /// Active, inactive (templates are never returned as connections).
    pub fn class(&self) -> ConnClass {
        self.state.class()
    }
}

/// What processing one packet did to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketOutcome {
    /// The connection after the packet.
    pub info: ConnInfo,
    /// Its state before the packet (compare with `info.state` to see a transition, e.g. to
    /// decide on a sync message).
    pub old_state: ConnState,
    /// The counter change to apply, when the connection moved between active and inactive.
    pub accounting: Option<Accounting>,
    /// The connection's periodic sync refresh is due: this packet is its first in a new
    /// refresh period (see [`ConnTable::set_sync_refresh`]).
    /// Always `false` while the refresh is off.
    pub sync_refresh: bool,
}

/// Result of a successful insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inserted {
    /// The new connection.
    pub info: ConnInfo,
    /// Counter change for the new connection (`from: None`).
    pub created: Accounting,
    /// Counter change for an expired, not yet swept entry with the same key that the new
    /// connection replaced (`to: None`).
    pub replaced: Option<Accounting>,
}

/// Counters of a [`ConnTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnStats {
    /// Connections stored (live, or expired and not swept yet).
    pub conns: usize,
    /// Templates stored (live, invalidated but still controlling, or expired and not swept).
    pub templates: usize,
    /// Inserts refused because the table was full.
    pub refused_full: u64,
    /// Entries (connections and templates) removed because they expired.
    pub expired: u64,
}

/// What one [`ConnTable::expire`] call removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpireReport {
    /// Connections removed.
    pub conns: usize,
    /// Templates removed.
    pub templates: usize,
    /// Templates whose deadline passed while they still control connections, re-armed.
    pub rearmed: usize,
}

/// The connection table. See the [module docs](super).
pub struct ConnTable {
    pub(crate) conns: HashTable<Entry>,
    pub(crate) templates: Templates,
    pub(crate) hasher: Hasher,
    pub(crate) timeouts: Timeouts,
    pub(crate) tcp_ticks: [u32; TcpState::COUNT],
    pub(crate) udp_ticks: u32,
    pub(crate) max_entries: usize,
    pub(crate) refused_full: u64,
    pub(crate) expired: u64,
    pub(crate) sweep_interval: Duration,
    pub(crate) last_sweep: Option<Instant>,
    pub(crate) ledger: Ledger,
    /// Sync refresh period in ticks, 0 = off (see [`ConnTable::set_sync_refresh`]).
    pub(crate) sync_refresh_ticks: u32,
}

impl core::fmt::Debug for ConnTable {
    /// Counters only: a million entries are not debug output.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ConnTable")
            .field("stats", &self.stats())
            .field("max_entries", &self.max_entries)
            .field("timeouts", &self.timeouts)
            .field("memory_bytes", &self.memory_bytes())
            .finish_non_exhaustive()
    }
}

impl ConnTable {
    /// An empty table.
    pub fn new(config: ConnTableConfig) -> ConnTable {
        let timeouts = Timeouts::default();
        let mut t = ConnTable {
            conns: HashTable::with_capacity(config.initial_capacity.min(config.max_entries)),
            templates: Templates::new(),
            hasher: Hasher::new(config.hash_seed),
            timeouts: timeouts.clone(),
            tcp_ticks: [0; TcpState::COUNT],
            udp_ticks: 0,
            max_entries: config.max_entries,
            refused_full: 0,
            expired: 0,
            sweep_interval: config.sweep_interval,
            last_sweep: None,
            ledger: Ledger::default(),
            sync_refresh_ticks: 0,
        };
        t.cache_ticks();
        t
    }

    fn cache_ticks(&mut self) {
        for s in TcpState::ALL {
            self.tcp_ticks[s.index()] = secs_to_ticks(self.timeouts.tcp_secs(s));
        }
        self.udp_ticks = secs_to_ticks(self.timeouts.udp_secs());
    }

    /// The protocol timeouts in force.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// `ipvsadm --set tcp tcpfin udp` (0 = unchanged). Takes effect for each connection at
    /// its next packet.
    pub fn set_timeouts(&mut self, update: TimeoutUpdate) -> Result<(), ConnError> {
        self.timeouts.apply(update)?;
        self.cache_ticks();
        Ok(())
    }

    /// Counters.
    pub fn stats(&self) -> ConnStats {
        ConnStats {
            conns: self.conns.len(),
            templates: self.templates.in_use,
            refused_full: self.refused_full,
            expired: self.expired,
        }
    }

    /// Connections plus templates stored: what counts against `max_entries`.
    pub fn len(&self) -> usize {
        self.conns.len() + self.templates.in_use
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured bound.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Heap bytes held by the connection hash table (capacity-based, including the control
    /// bytes and empty buckets). Divide by the connection count for bytes per entry.
    pub fn conn_memory_bytes(&self) -> usize {
        self.conns.allocation_size()
    }

    /// Heap bytes held by the whole table: connections plus template slab and index.
    pub fn memory_bytes(&self) -> usize {
        self.conn_memory_bytes() + self.templates.memory_bytes()
    }

    pub(crate) fn state_ticks(&self, state: ConnState) -> u32 {
        match state {
            ConnState::Tcp(s) => self.tcp_ticks[s.index()],
            ConnState::Udp => self.udp_ticks,
        }
    }

    pub(crate) fn info_of(&self, e: &Entry, now: Instant) -> ConnInfo {
        ConnInfo {
            key: e.key(),
            dest: e.dest(),
            fwd: e.fwd(),
            state: e.state(),
            expires: deadline_instant(e.expires, now),
            template: e.template_slot().map(|s| self.templates.id_of(s)),
            no_output: e.no_output(),
        }
    }

    /// Inserts a connection and processes its first, inbound packet (`flags`; ignored for
    /// UDP), as the kernel does right after scheduling. The connection starts in NONE and
    /// inactive; the returned `created` event already includes the effect of that packet.
    ///
    /// Errors: [`ConnError::Exists`] if a live connection has this key,
    /// [`ConnError::TableFull`] at the bound, [`ConnError::UnknownTemplate`] for a stale
    /// template handle. A template that controls the new connection is refreshed to its own
    /// timeout.
    pub fn insert(
        &mut self,
        now: Instant,
        conn: NewConn,
        flags: TcpFlags,
    ) -> Result<Inserted, ConnError> {
        self.insert_inner(now, conn, InitialState::FirstPacket(flags))
    }

    /// Inserts a connection learnt from a sync message: state and remaining timeout come
    /// from the master (the timeout is capped at the 31-day maximum). `state` must match the
    /// key's protocol (`Udp` for UDP); otherwise [`ConnError::StateMismatch`].
    pub fn insert_synced(
        &mut self,
        now: Instant,
        conn: NewConn,
        state: ConnState,
        timeout: Duration,
    ) -> Result<Inserted, ConnError> {
        let ok = matches!(
            (conn.key.proto, state),
            (Protocol::Tcp, ConnState::Tcp(_)) | (Protocol::Udp, ConnState::Udp)
        );
        if !ok {
            return Err(ConnError::StateMismatch {
                proto: conn.key.proto,
                state,
            });
        }
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let max_ticks = secs_to_ticks(super::timeouts::MAX_TIMEOUT_SECS);
        let ticks = u32::try_from(ms.div_ceil(TICK_MS)).map_or(max_ticks, |t| t.min(max_ticks));
        self.insert_inner(now, conn, InitialState::Synced(state, ticks))
    }

    fn insert_inner(
        &mut self,
        now: Instant,
        conn: NewConn,
        init: InitialState,
    ) -> Result<Inserted, ConnError> {
        let key = conn.key;
        let nt = now_tick(now);
        let h = self
            .hasher
            .client(key.proto, u32::from(key.caddr), key.cport);
        let slot = match conn.template {
            Some(id) => match self.templates.resolve(id) {
                Some(_) => Some(id.slot),
                None => return Err(ConnError::UnknownTemplate { id }),
            },
            None => None,
        };
        // An existing entry with this key: refuse if live, replace if expired.
        let stale = self
            .conns
            .find(h, |e| e.matches_in(&key))
            .map(|e| (is_due(e.expires, nt), *e));
        let replaced = match stale {
            Some((false, _)) => return Err(ConnError::Exists { key }),
            Some((true, old)) => {
                if let Ok(occ) = self.conns.find_entry(h, |e| e.matches_in(&key)) {
                    occ.remove();
                }
                Some(self.release(&old, true))
            }
            None => {
                if self.len() >= self.max_entries {
                    self.refused_full += 1;
                    return Err(ConnError::TableFull {
                        max: self.max_entries,
                    });
                }
                None
            }
        };

        let mut e = Entry::new(&key, conn.dest, conn.fwd, slot, 0);
        match init {
            InitialState::FirstPacket(flags) => {
                if key.proto == Protocol::Tcp {
                    let dir = if e.no_output() {
                        TcpDirection::InputOnly
                    } else {
                        TcpDirection::Input
                    };
                    e.set_tcp_state(next_state(TcpState::None, dir, flags));
                }
                e.expires = deadline_tick(now, self.state_ticks(e.state()));
            }
            InitialState::Synced(state, ticks) => {
                if let ConnState::Tcp(s) = state {
                    e.set_tcp_state(s);
                }
                e.expires = deadline_tick(now, ticks);
            }
        }
        let hasher = self.hasher;
        self.conns.insert_unique(h, e, |x| hasher.entry(x));
        if let Some(s) = slot {
            let t = &mut self.templates.slots[s as usize];
            t.n_control += 1;
            t.expires = deadline_tick(now, t.timeout_ticks);
        }
        let created = self.ledger.record(Accounting {
            dest: conn.dest,
            from: None,
            to: Some(e.class()),
        });
        self.debug_check();
        Ok(Inserted {
            info: self.info_of(&e, now),
            created,
            replaced,
        })
    }

    /// Accounting and template bookkeeping for an entry already taken out of the hash table.
    fn release(&mut self, e: &Entry, expired: bool) -> Accounting {
        if let Some(s) = e.template_slot() {
            let t = &mut self.templates.slots[s as usize];
            t.n_control = t.n_control.saturating_sub(1);
        }
        if expired {
            self.expired += 1;
        }
        self.ledger.record(Accounting {
            dest: e.dest(),
            from: Some(e.class()),
            to: None,
        })
    }

    /// The live connection with this key, without touching it.
    pub fn lookup_in(&self, now: Instant, key: &ConnKey) -> Option<ConnInfo> {
        let nt = now_tick(now);
        let h = self
            .hasher
            .client(key.proto, u32::from(key.caddr), key.cport);
        self.conns
            .find(h, |e| e.matches_in(key))
            .filter(|e| !is_due(e.expires, nt))
            .map(|e| self.info_of(e, now))
    }

    /// The live connection a NAT reply belongs to, without touching it.
    ///
    /// `resolve` maps a destination to its (address, port); port 0 (fwmark services) stands
    /// for "the connection's virtual port". Entries that are not NAT match on their virtual
    /// address and port instead, as in the kernel.
    pub fn lookup_out(
        &self,
        now: Instant,
        reply: &ReplyKey,
        mut resolve: impl FnMut(DestId) -> Option<(Ipv4Addr, u16)>,
    ) -> Option<ConnInfo> {
        let nt = now_tick(now);
        let h = self
            .hasher
            .client(reply.proto, u32::from(reply.caddr), reply.cport);
        self.conns
            .find(h, |e| matches_out(e, reply, nt, &mut resolve))
            .map(|e| self.info_of(e, now))
    }

    /// Processes an inbound (client to virtual service) packet of a live connection: TCP
    /// state transition (input, or input-only while no reply was seen on a non-NAT
    /// connection), then refresh to the new state's timeout. `None` if there is no live
    /// connection with this key. `flags` is ignored for UDP.
    pub fn in_packet(
        &mut self,
        now: Instant,
        key: &ConnKey,
        flags: TcpFlags,
    ) -> Option<PacketOutcome> {
        let nt = now_tick(now);
        let h = self
            .hasher
            .client(key.proto, u32::from(key.caddr), key.cport);
        let e = self.conns.find_mut(h, |e| e.matches_in(key))?;
        if is_due(e.expires, nt) {
            return None;
        }
        let dir = if e.no_output() {
            TcpDirection::InputOnly
        } else {
            TcpDirection::Input
        };
        let prev = e.expires;
        let (old, e) = step(e, dir, flags, now, &self.tcp_ticks, self.udp_ticks);
        Some(self.outcome(old, prev, &e, now))
    }

    /// Processes a NAT reply (real server to client) of a live connection: clears the
    /// "no output" mark, runs the output transition and refreshes. `resolve` as in
    /// [`ConnTable::lookup_out`].
    pub fn out_packet(
        &mut self,
        now: Instant,
        reply: &ReplyKey,
        flags: TcpFlags,
        mut resolve: impl FnMut(DestId) -> Option<(Ipv4Addr, u16)>,
    ) -> Option<PacketOutcome> {
        let nt = now_tick(now);
        let h = self
            .hasher
            .client(reply.proto, u32::from(reply.caddr), reply.cport);
        let e = self
            .conns
            .find_mut(h, |e| matches_out(e, reply, nt, &mut resolve))?;
        e.clear_no_output();
        let prev = e.expires;
        let (old, e) = step(
            e,
            TcpDirection::Output,
            flags,
            now,
            &self.tcp_ticks,
            self.udp_ticks,
        );
        Some(self.outcome(old, prev, &e, now))
    }

    /// `prev` is the entry's deadline before the packet.
    pub(crate) fn outcome(
        &mut self,
        old: ConnState,
        prev: u32,
        e: &Entry,
        now: Instant,
    ) -> PacketOutcome {
        let (from, to) = (old.class(), e.class());
        let accounting = (from != to).then(|| {
            self.ledger.record(Accounting {
                dest: e.dest(),
                from: Some(from),
                to: Some(to),
            })
        });
        PacketOutcome {
            info: self.info_of(e, now),
            old_state: old,
            accounting,
            sync_refresh: self.sync_refresh_ticks != 0 && self.refresh_due(old, prev, e, now),
        }
    }

    /// Removes a connection whatever its deadline (flush, `expire_nodest_conn`, a reset the
    /// caller wants to drop at once). Returns the counter change, `None` if absent.
    pub fn remove(&mut self, key: &ConnKey) -> Option<Accounting> {
        let h = self
            .hasher
            .client(key.proto, u32::from(key.caddr), key.cport);
        let (e, _) = self
            .conns
            .find_entry(h, |e| e.matches_in(key))
            .ok()?
            .remove();
        let ev = self.release(&e, false);
        self.debug_check();
        Some(ev)
    }

    /// The periodic sweep: removes every connection whose deadline has passed, then every
    /// template that is expired (or invalidated) and controls no connection; re-arms expired
    /// templates that still control connections. Calls `on_removed` once per removed entry
    /// with its counter change (`to: None`). Cost: one pass over the connection table's
    /// buckets and the template slab, no allocation (about 3-5 ms at 1 M connections on the
    /// development machine, see `benches/conn.rs`).
    pub fn expire(&mut self, now: Instant, mut on_removed: impl FnMut(Accounting)) -> ExpireReport {
        let nt = now_tick(now);
        let mut report = ExpireReport::default();
        let templates = &mut self.templates;
        let ledger = &mut self.ledger;
        self.conns.retain(|e| {
            if !is_due(e.expires, nt) {
                return true;
            }
            if let Some(s) = e.template_slot() {
                let t = &mut templates.slots[s as usize];
                t.n_control = t.n_control.saturating_sub(1);
            }
            on_removed(ledger.record(Accounting {
                dest: e.dest(),
                from: Some(e.class()),
                to: None,
            }));
            report.conns += 1;
            false
        });
        let rearm = secs_to_ticks(TEMPLATE_REARM_SECS);
        for slot in 0..self.templates.slots.len() {
            let t = &mut self.templates.slots[slot];
            let due = is_due(t.expires, nt);
            match t.status {
                Status::Free => {}
                _ if t.n_control == 0 && (due || t.status == Status::Detached) => {
                    let slot = u32::try_from(slot).expect("slab bounded by MAX_TEMPLATE_SLOTS");
                    let dest = self.templates.free(&self.hasher, slot);
                    on_removed(self.ledger.record(Accounting {
                        dest,
                        from: Some(ConnClass::Template),
                        to: None,
                    }));
                    report.templates += 1;
                }
                Status::Indexed if due => {
                    t.expires = deadline_tick(now, rearm);
                    report.rearmed += 1;
                }
                _ => {}
            }
        }
        self.expired += (report.conns + report.templates) as u64;
        self.last_sweep = Some(now);
        self.debug_check();
        report
    }

    /// When the caller should run [`ConnTable::expire`] next: one sweep interval after the
    /// last sweep, `None` while the table is empty. (A sweep interval, not the earliest
    /// deadline: keeping a deadline heap would cost more than the 24-byte entries.)
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_empty() {
            return None;
        }
        Some(match self.last_sweep {
            Some(t) => t + self.sweep_interval,
            None => Instant::ZERO,
        })
    }

    /// Every live connection, in hash-table order (like `/proc/net/ip_vs_conn`).
    pub fn conns(&self, now: Instant) -> impl Iterator<Item = ConnInfo> + '_ {
        let nt = now_tick(now);
        self.conns
            .iter()
            .filter(move |e| !is_due(e.expires, nt))
            .map(move |e| self.info_of(e, now))
    }

    /// Whether debug builds run the full invariant check after a mutation: small tables only
    /// (see [`super::DEBUG_CHECK_MAX_LEN`], [`super::DEBUG_CHECK_MAX_CAPACITY`]). Only
    /// debug builds and tests call it.
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    pub(crate) fn debug_check_due(&self) -> bool {
        self.len() <= super::DEBUG_CHECK_MAX_LEN
            && self.conns.capacity() <= super::DEBUG_CHECK_MAX_CAPACITY
    }

    pub(crate) fn debug_check(&self) {
        #[cfg(debug_assertions)]
        if self.debug_check_due()
            && let Err(e) = self.check_invariants()
        {
            panic!("connection table invariant broken: {e}");
        }
    }
}

enum InitialState {
    FirstPacket(TcpFlags),
    Synced(ConnState, u32),
}

/// Reply matching; `nt` excludes expired entries so they cannot shadow a live one.
#[inline]
fn matches_out(
    e: &Entry,
    r: &ReplyKey,
    nt: u32,
    resolve: &mut impl FnMut(DestId) -> Option<(Ipv4Addr, u16)>,
) -> bool {
    if e.caddr != u32::from(r.caddr) || e.cport != r.cport || e.proto() != r.proto {
        return false;
    }
    if is_due(e.expires, nt) {
        return false;
    }
    match e.fwd() {
        ForwardMethod::Masq => match resolve(e.dest()) {
            Some((addr, port)) => {
                let port = if port == 0 { e.vport } else { port };
                addr == r.daddr && port == r.dport
            }
            None => false,
        },
        _ => e.vaddr == u32::from(r.daddr) && e.vport == r.dport,
    }
}

/// One packet's effect on an entry: transition (TCP) and refresh. Returns the old state and
/// a copy of the updated entry.
#[inline]
fn step(
    e: &mut Entry,
    dir: TcpDirection,
    flags: TcpFlags,
    now: Instant,
    tcp_ticks: &[u32; TcpState::COUNT],
    udp_ticks: u32,
) -> (ConnState, Entry) {
    let old = e.state();
    let ticks = match old {
        ConnState::Tcp(s) => {
            let new = next_state(s, dir, flags);
            e.set_tcp_state(new);
            tcp_ticks[new.index()]
        }
        ConnState::Udp => udp_ticks,
    };
    e.expires = deadline_tick(now, ticks);
    (old, *e)
}
