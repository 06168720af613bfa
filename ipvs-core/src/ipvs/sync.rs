//! Connection sync on the engine side (see [`crate::sync`] for the wire and the
//! sender/receiver): the change feed the active director's sender reads, the full-table
//! export for a bulk resync, and the import of records on the other director.
//!
//! # The change feed
//!
//! Off by default. [`Ipvs::enable_sync_feed`] turns it on: from then on the packet paths
//! queue the *key* of every connection or template that changed in a way the partner must
//! learn (below), in a bounded queue allocated once; when it is full the key is dropped
//! and counted ([`SyncFeedStats::dropped`]), forwarding never waits. The shell drains it
//! between batches of frames with [`Ipvs::drain_sync_feed`], which looks each key up and
//! yields the entry as it is *then* (so several changes of one connection within a batch
//! cost one lookup each and carry the latest state).
//!
//! Queued:
//! * a new connection (with its template, when persistent, before it);
//! * every TCP state change (the kernel syncs the changes into ESTABLISHED and the closing
//!   states; the others are rare and keep the partner's state exact);
//! * the periodic refresh ([`SyncFeedConfig::refresh`],
//!   [`crate::conn::ConnTable::set_sync_refresh`]): the first packet of a connection in
//!   each period, so that the partner's copy of a long-lived connection does not time out.
//!
//! # Import
//!
//! [`Ipvs::sync_import`] applies one record: the service is found from the record's
//! fwmark or protocol/address/port (the exact service, then the port-0 one), the real
//! server within it by address and configured port; the entry is inserted with the
//! record's real server, method, state and remaining timeout, **never scheduled**, and
//! counts against the table's bound. Refused, each with its own counter
//! ([`SyncImportCounts`]): unknown service, unknown real server, a template for a
//! service that is not persistent, a state that cannot follow the stored one
//! ([`crate::conn::synced_state_may_follow`]), a full table. A record with another real
//! server for a stored connection replaces it: the receiver passes records on in the
//! sender's order (reordered datagrams are dropped), so the record is the newer truth, a
//! new connection on the same addresses and ports.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use core::time::Duration;

use super::Ipvs;
use crate::conn::{
    ConnError, ConnInfo, ConnKey, ConnState, NewConn, TemplateInfo, TemplateKey, TemplateService,
    synced_state_may_follow,
};
use crate::service::ServiceKey;
use crate::sync::{ConnRecord, SyncRecord, TemplateRecord};
use crate::time::Instant;
use crate::types::DestId;

/// Settings of the change feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncFeedConfig {
    /// Keys queued at most between two drains; beyond, changes are dropped and counted.
    /// Default 65536 (1.5 MB).
    pub capacity: usize,
    /// Periodic refresh of connections that carry packets; `None` turns it off. Default
    /// 60 s: a synced connection's copy lives at least until 60 s before its deadline on
    /// the active director.
    pub refresh: Option<Duration>,
}

impl Default for SyncFeedConfig {
    fn default() -> Self {
        SyncFeedConfig {
            capacity: 65_536,
            refresh: Some(Duration::from_secs(60)),
        }
    }
}

/// What the change feed queues: the key of what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncItem {
    /// A connection.
    Conn(ConnKey),
    /// A persistence template.
    Template(TemplateKey),
}

/// Counters of the change feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncFeedStats {
    /// Keys waiting for [`Ipvs::drain_sync_feed`].
    pub queued: usize,
    /// Keys queued since the feed was enabled.
    pub pushed: u64,
    /// Keys dropped because the queue was full.
    pub dropped: u64,
}

/// The bounded queue behind the change feed.
#[derive(Debug, Default)]
pub(crate) struct SyncFeed {
    pub(crate) enabled: bool,
    queue: VecDeque<SyncItem>,
    capacity: usize,
    pushed: u64,
    dropped: u64,
}

impl SyncFeed {
    #[inline]
    pub(crate) fn push(&mut self, item: SyncItem) {
        if self.queue.len() >= self.capacity {
            self.dropped += 1;
        } else {
            self.queue.push_back(item);
            self.pushed += 1;
        }
    }
}

/// Whether a state change is one the partner must learn at once: every TCP state change
/// (the kernel syncs ESTABLISHED and the closing states; the opening ones cost little more
/// and keep the partner's state exact). UDP has one state.
#[inline]
pub(crate) fn state_change_syncs(old: ConnState, new: ConnState) -> bool {
    old != new
}

/// How [`Ipvs::sync_import`] applied a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// A new entry was created.
    Created,
    /// The existing entry took the record's state and timeout.
    Updated,
    /// The existing entry was replaced: a connection with another real server (a new one
    /// on the same addresses and ports), or a template whose real server changed on the
    /// sender.
    Replaced,
}

/// Why [`Ipvs::sync_import`] refused a record. Each variant has a counter in
/// [`SyncImportCounts`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportRefusal {
    /// No service here matches the record.
    #[error("synced entry for an unknown service ({proto} {vaddr}:{vport}, mark {fwmark})")]
    UnknownService {
        /// Protocol number (0 for a fwmark template).
        proto: u8,
        /// Virtual address.
        vaddr: Ipv4Addr,
        /// Virtual port.
        vport: u16,
        /// Firewall mark.
        fwmark: u32,
    },
    /// The service has no real server with this address and port.
    #[error("synced entry for unknown real server {daddr}:{dport} of {service}")]
    UnknownDest {
        /// The service.
        service: ServiceKey,
        /// Real server address.
        daddr: Ipv4Addr,
        /// Real server port.
        dport: u16,
    },
    /// A template for a service that is not persistent here.
    #[error("synced template for {0}, which is not persistent")]
    NotPersistent(ServiceKey),
    /// The state cannot follow the stored one ([`crate::conn::synced_state_may_follow`]:
    /// no transition leads into it).
    #[error("synced state {new:?} cannot follow {old:?} for {key:?}")]
    StateCannotFollow {
        /// The connection.
        key: ConnKey,
        /// Stored state.
        old: ConnState,
        /// Offered state.
        new: ConnState,
    },
    /// The connection table is full.
    #[error("connection table full ({max} entries)")]
    TableFull {
        /// The bound.
        max: usize,
    },
    /// The connection table refused in a way this module does not expect.
    #[error("unexpected connection table error: {0}")]
    Conn(ConnError),
}

/// One counter per [`Imported`] and [`ImportRefusal`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncImportCounts {
    /// [`Imported::Created`].
    pub created: u64,
    /// [`Imported::Updated`].
    pub updated: u64,
    /// [`Imported::Replaced`].
    pub replaced: u64,
    /// [`ImportRefusal::UnknownService`].
    pub unknown_service: u64,
    /// [`ImportRefusal::UnknownDest`].
    pub unknown_dest: u64,
    /// [`ImportRefusal::NotPersistent`].
    pub not_persistent: u64,
    /// [`ImportRefusal::StateCannotFollow`].
    pub state_cannot_follow: u64,
    /// [`ImportRefusal::TableFull`].
    pub table_full: u64,
    /// [`ImportRefusal::Conn`].
    pub conn_error: u64,
}

impl SyncImportCounts {
    fn count(&mut self, r: &Result<Imported, ImportRefusal>) {
        let c = match r {
            Ok(Imported::Created) => &mut self.created,
            Ok(Imported::Updated) => &mut self.updated,
            Ok(Imported::Replaced) => &mut self.replaced,
            Err(ImportRefusal::UnknownService { .. }) => &mut self.unknown_service,
            Err(ImportRefusal::UnknownDest { .. }) => &mut self.unknown_dest,
            Err(ImportRefusal::NotPersistent(_)) => &mut self.not_persistent,
            Err(ImportRefusal::StateCannotFollow { .. }) => &mut self.state_cannot_follow,
            Err(ImportRefusal::TableFull { .. }) => &mut self.table_full,
            Err(ImportRefusal::Conn(_)) => &mut self.conn_error,
        };
        *c += 1;
    }
}

fn conn_refusal(e: ConnError) -> ImportRefusal {
    match e {
        ConnError::TableFull { max } => ImportRefusal::TableFull { max },
        other => ImportRefusal::Conn(other),
    }
}

fn template_service(key: ServiceKey) -> TemplateService {
    match key {
        ServiceKey::Fwmark(m) => TemplateService::Fwmark(m),
        ServiceKey::Inet {
            protocol,
            addr,
            port,
        } => TemplateService::Port {
            proto: protocol,
            vaddr: addr,
            vport: port,
        },
    }
}

impl Ipvs {
    // ----- the change feed (active director) -----

    /// Turns the change feed on (see the [module docs](self)); the queue is allocated now,
    /// never on the packet path. Enabling it again resizes the queue and keeps its
    /// contents that fit.
    pub fn enable_sync_feed(&mut self, cfg: SyncFeedConfig) {
        let feed = &mut self.sync_feed;
        feed.enabled = true;
        feed.capacity = cfg.capacity;
        feed.queue.truncate(cfg.capacity);
        feed.queue
            .reserve(cfg.capacity.saturating_sub(feed.queue.len()));
        self.conns.set_sync_refresh(cfg.refresh);
    }

    /// Turns the change feed off and empties it (the standby director, or sync off).
    pub fn disable_sync_feed(&mut self) {
        self.sync_feed.enabled = false;
        self.sync_feed.queue.clear();
        self.conns.set_sync_refresh(None);
    }

    /// Counters of the change feed.
    pub fn sync_feed_stats(&self) -> SyncFeedStats {
        SyncFeedStats {
            queued: self.sync_feed.queue.len(),
            pushed: self.sync_feed.pushed,
            dropped: self.sync_feed.dropped,
        }
    }

    /// Takes up to `max` keys from the change feed and calls `out` with the current record
    /// of each entry that still exists (and whose real server is still configured).
    /// Returns the number of keys taken.
    pub fn drain_sync_feed(
        &mut self,
        now: Instant,
        max: usize,
        mut out: impl FnMut(SyncRecord),
    ) -> usize {
        let mut n = 0;
        while n < max {
            let Some(item) = self.sync_feed.queue.pop_front() else {
                break;
            };
            n += 1;
            let rec = self.sync_record_of(now, &item);
            if let Some(r) = rec {
                out(r);
            }
        }
        n
    }

    /// The current record of a template or connection, `None` when it is gone (expired,
    /// removed) or its real server was removed.
    pub fn sync_record_of(&self, now: Instant, item: &SyncItem) -> Option<SyncRecord> {
        match item {
            SyncItem::Conn(k) => self
                .conns
                .lookup_in(now, k)
                .and_then(|c| self.conn_record(now, &c)),
            SyncItem::Template(k) => self
                .conns
                .lookup_template(now, k)
                .and_then(|t| self.template_record(now, &t)),
        }
    }

    /// The keys of every live template, then of every live connection: a snapshot of what
    /// a bulk resync answer holds (about 20 bytes per entry), to be turned into records in
    /// slices with [`Ipvs::sync_record_of`] so that a large table never holds up
    /// forwarding for long (an entry gone by then is skipped; one created since is sent by
    /// the change feed).
    pub fn sync_export_keys(&self, now: Instant) -> Vec<SyncItem> {
        let mut out = Vec::with_capacity(self.conns.len());
        out.extend(
            self.conns
                .templates(now)
                .filter(|t| !t.invalidated)
                .map(|t| SyncItem::Template(t.key)),
        );
        out.extend(self.conns.conns(now).map(|c| SyncItem::Conn(c.key)));
        out
    }

    /// Every live template, then every live connection, as sync records: the answer to a
    /// bulk resync request. Entries of removed real servers are left out (the partner
    /// would refuse them). Borrows the engine: a shell that must keep forwarding while it
    /// streams a large table collects the records first (about 40 bytes each).
    pub fn sync_export(&self, now: Instant) -> impl Iterator<Item = SyncRecord> + '_ {
        let templates = self
            .conns
            .templates(now)
            .filter(|t| !t.invalidated)
            .filter_map(move |t| self.template_record(now, &t));
        let conns = self
            .conns
            .conns(now)
            .filter_map(move |c| self.conn_record(now, &c));
        templates.chain(conns)
    }

    /// The sync record of a live connection, `None` if its real server was removed.
    pub fn conn_record(&self, now: Instant, c: &ConnInfo) -> Option<SyncRecord> {
        let (svc, d) = self.reg.services.dest_with_service(c.dest)?;
        let fwmark = match svc.key() {
            ServiceKey::Fwmark(m) => m,
            ServiceKey::Inet { .. } => 0,
        };
        Some(SyncRecord::Conn(ConnRecord {
            key: c.key,
            fwmark,
            daddr: d.addr(),
            dport: d.port(),
            fwd: c.fwd,
            state: c.state,
            timeout: c.expires.saturating_duration_since(now),
        }))
    }

    /// The sync record of a template, `None` if its real server was removed. A template
    /// past its deadline that still controls connections (the sweep will re-arm it) is
    /// sent with the re-arm time.
    pub fn template_record(&self, now: Instant, t: &TemplateInfo) -> Option<SyncRecord> {
        let d = self.reg.services.dest(t.dest)?;
        let mut timeout = t.expires.saturating_duration_since(now);
        if timeout.is_zero() {
            timeout = Duration::from_secs(u64::from(crate::conn::timeouts::TEMPLATE_REARM_SECS));
        }
        Some(SyncRecord::Template(TemplateRecord {
            key: t.key,
            daddr: d.addr(),
            dport: d.port(),
            timeout,
        }))
    }

    // ----- import (the other director) -----

    /// Counters of [`Ipvs::sync_import`] and [`Ipvs::sync_import_resync`].
    pub fn sync_import_counts(&self) -> SyncImportCounts {
        self.sync_imports
    }

    /// Applies one record of the update stream; see the [module docs](self). Counted
    /// either way.
    pub fn sync_import(
        &mut self,
        now: Instant,
        record: &SyncRecord,
    ) -> Result<Imported, ImportRefusal> {
        self.import(now, record, false)
    }

    /// Applies one record of a bulk resync answer: as [`Ipvs::sync_import`], except that
    /// the record is authoritative for its connection (the partner's table at the time of
    /// the export), so a stored entry that contradicts it (another real server, a later
    /// state) is replaced instead of kept. This repairs entries whose updates were lost.
    /// Unknown services and real servers and a full table are still refused.
    pub fn sync_import_resync(
        &mut self,
        now: Instant,
        record: &SyncRecord,
    ) -> Result<Imported, ImportRefusal> {
        self.import(now, record, true)
    }

    fn import(
        &mut self,
        now: Instant,
        record: &SyncRecord,
        authoritative: bool,
    ) -> Result<Imported, ImportRefusal> {
        self.saw(now);
        let r = match record {
            SyncRecord::Conn(c) => self.import_conn(now, c, authoritative),
            SyncRecord::Template(t) => self.import_template(now, t),
        };
        self.sync_imports.count(&r);
        self.debug_check();
        r
    }

    /// The service and live destination a connection record names.
    fn synced_dest(&self, c: &ConnRecord) -> Result<(ServiceKey, DestId), ImportRefusal> {
        let k = c.key;
        let candidates = if c.fwmark != 0 {
            [Some(ServiceKey::Fwmark(c.fwmark)), None]
        } else {
            [
                Some(ServiceKey::Inet {
                    protocol: k.proto,
                    addr: k.vaddr,
                    port: k.vport,
                }),
                Some(ServiceKey::Inet {
                    protocol: k.proto,
                    addr: k.vaddr,
                    port: 0,
                }),
            ]
        };
        let mut found = None;
        for skey in candidates.into_iter().flatten() {
            let Some(svc) = self.reg.services.get(&skey) else {
                continue;
            };
            if let Some(d) = svc.find_dest(c.daddr, c.dport) {
                return Ok((skey, d.id()));
            }
            found.get_or_insert(skey);
        }
        Err(match found {
            Some(service) => ImportRefusal::UnknownDest {
                service,
                daddr: c.daddr,
                dport: c.dport,
            },
            None => ImportRefusal::UnknownService {
                proto: k.proto.number(),
                vaddr: k.vaddr,
                vport: k.vport,
                fwmark: c.fwmark,
            },
        })
    }

    fn import_conn(
        &mut self,
        now: Instant,
        c: &ConnRecord,
        authoritative: bool,
    ) -> Result<Imported, ImportRefusal> {
        let (skey, dest) = self.synced_dest(c)?;
        let key = c.key;
        let mut how = Imported::Created;
        if let Some(old) = self.conns.lookup_in(now, &key) {
            if old.dest == dest && old.fwd == c.fwd {
                if !authoritative && !synced_state_may_follow(old.state, c.state) {
                    return Err(ImportRefusal::StateCannotFollow {
                        key,
                        old: old.state,
                        new: c.state,
                    });
                }
                let out = self
                    .conns
                    .update_synced(now, &key, c.state, c.timeout)
                    .map_err(conn_refusal)?;
                if let Some(ev) = out.and_then(|o| o.accounting) {
                    self.reg.apply(ev);
                }
                return Ok(Imported::Updated);
            }
            // Another real server: a new connection on the same addresses and ports (the
            // sender saw the old one end; records arrive in the sender's order).
            if let Some(ev) = self.conns.remove(&key) {
                self.reg.apply(ev);
            }
            how = Imported::Replaced;
        }
        // Link to the controlling template when the partner sent it (templates travel
        // before their connections) and it names the same real server.
        let template = self
            .reg
            .services
            .get(&skey)
            .and_then(|s| s.persistence().copied())
            .and_then(|p| {
                let tkey = TemplateKey::new(key.caddr, p.netmask, template_service(skey));
                self.conns.lookup_template(now, &tkey)
            })
            .filter(|t| t.dest == dest)
            .map(|t| t.id);
        let new = NewConn {
            key,
            dest,
            fwd: c.fwd,
            template,
        };
        let ins = self
            .conns
            .insert_synced(now, new, c.state, c.timeout)
            .map_err(conn_refusal)?;
        if let Some(ev) = ins.replaced {
            self.reg.apply(ev);
        }
        self.reg.apply(ins.created);
        Ok(how)
    }

    fn import_template(
        &mut self,
        now: Instant,
        t: &TemplateRecord,
    ) -> Result<Imported, ImportRefusal> {
        let skey = match t.key.service {
            TemplateService::Fwmark(m) => ServiceKey::Fwmark(m),
            TemplateService::Port {
                proto,
                vaddr,
                vport,
            } => ServiceKey::Inet {
                protocol: proto,
                addr: vaddr,
                port: vport,
            },
        };
        let Some(svc) = self.reg.services.get(&skey) else {
            let (proto, vaddr, vport, fwmark) = match t.key.service {
                TemplateService::Fwmark(m) => (0, Ipv4Addr::UNSPECIFIED, 0, m),
                TemplateService::Port {
                    proto,
                    vaddr,
                    vport,
                } => (proto.number(), vaddr, vport, 0),
            };
            return Err(ImportRefusal::UnknownService {
                proto,
                vaddr,
                vport,
                fwmark,
            });
        };
        let p = *svc
            .persistence()
            .ok_or(ImportRefusal::NotPersistent(skey))?;
        let dest = svc
            .find_dest(t.daddr, t.dport)
            .ok_or(ImportRefusal::UnknownDest {
                service: skey,
                daddr: t.daddr,
                dport: t.dport,
            })?
            .id();
        let tkey = TemplateKey::new(t.key.client, p.netmask, t.key.service);
        let mut how = Imported::Created;
        if let Some(old) = self.conns.lookup_template(now, &tkey) {
            if old.dest == dest {
                if now + t.timeout > old.expires {
                    self.conns
                        .set_template_deadline(now, old.id, t.timeout)
                        .map_err(conn_refusal)?;
                }
                return Ok(Imported::Updated);
            }
            // The sender moved the client group (its old real server went away there).
            self.conns
                .invalidate_template(old.id)
                .map_err(conn_refusal)?;
            how = Imported::Replaced;
        }
        let ins = self
            .conns
            .insert_template(now, tkey, dest, p.timeout)
            .map_err(conn_refusal)?;
        if let Some(ev) = ins.replaced {
            self.reg.apply(ev);
        }
        self.reg.apply(ins.created);
        self.conns
            .set_template_deadline(now, ins.id, t.timeout)
            .map_err(conn_refusal)?;
        Ok(how)
    }
}
