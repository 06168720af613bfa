//! [`Ipvs`]: services, schedulers and the connection table glued into the one object a packet
//! engine calls — the kernel's `ip_vs_in` / `ip_vs_out` / `ip_vs_schedule` decisions without
//! the packets.
//!
//! # Contract
//!
//! * **Sans-IO.** Every method that depends on time takes `now`; nothing reads a clock,
//!   touches a socket, spawns a thread, or draws unseeded randomness (the scheduler and hash
//!   seeds are in [`IpvsConfig`]). Callers pass non-decreasing instants and run
//!   [`Ipvs::handle_timeout`] when [`Ipvs::poll_timeout`] says so.
//! * **One owner of accounting.** Every counter change the connection table reports
//!   ([`crate::conn::Accounting`]) is applied here, at once, to the destination it names, so
//!   `ActiveConn` / `InActConn` / `PersistConn` and the OVERLOAD flag always equal what the
//!   table holds ([`Ipvs::check_invariants`]; run automatically after each mutation in debug
//!   builds while the table is small).
//! * **No panics** on any input. Admin errors are [`IpvsError`]; a packet that cannot be
//!   handled is a [`Refusal`] (counted in [`RefusalCounts`]) or a [`Delivery`] other than
//!   `Forward`.
//! * **Connection sync** (the `sync` file, `docs/sync.md`): with the change feed on
//!   ([`Ipvs::enable_sync_feed`]) the packet paths queue the keys of new and changed
//!   connections in a bounded queue (full: dropped and counted); [`Ipvs::sync_export`]
//!   lists the table, [`Ipvs::sync_import`] applies a partner's record without scheduling.
//!
//! # Packet paths
//!
//! * Inbound packet: [`Ipvs::in_packet`] for a known connection; if it answers
//!   [`Delivery::NoConn`], [`Ipvs::new_connection`] (kernel `tcp_conn_schedule` /
//!   `udp_conn_schedule` then `ip_vs_schedule`). [`Ipvs::inbound`] does both.
//! * NAT reply: [`Ipvs::out_packet`].
//!
//! Cost per packet of a known connection: one connection-table probe, plus one more while
//! the trash of removed destinations is not empty (to drop without touching the entry), and the
//! destination's resolution (id map, service map, dest index). A new flow adds a probe for
//! an existing key (so a duplicate never advances a scheduler or makes a template), the
//! service lookup (up to three map probes), the scheduler and, when persistent, a template
//! probe.
//!
//! # Decisions (where this differs from, or pins down, the kernel)
//!
//! * **Service lookup** ([`Ipvs::find_service`]) follows `ip_vs_service_find`: the fwmark
//!   service if the packet has a non-zero mark and such a service exists; then
//!   `<protocol, vaddr, vport>`; then the port-0 catch-all `<protocol, vaddr, 0>`. The FTP
//!   step (TCP to port 20 or an unprivileged port falls to a port-21 service) is **not**
//!   implemented: without an `ip_vs_ftp` helper it would only capture unrelated traffic.
//!   Likewise a persistent port-21 service keeps its port in the template key (the kernel
//!   uses 0 there for FTP data). Persistent FTP is configured with a fwmark, as Piranha's
//!   docs advise.
//! * **Port 0.** A port-0 service found by the catch-all step but not persistent refuses the
//!   connection ([`Refusal::PortZeroNotPersistent`]), as `ip_vs_schedule` does ("port zero
//!   only supported in persistent services").
//! * **Which TCP segments create connections:** SYN without RST, or any non-RST segment
//!   with [`IpvsConfig::sloppy_tcp`] (kernel `tcp_conn_schedule`). Others get
//!   [`Refusal::NotSyn`]; the kernel lets such packets through to the local stack.
//! * **Persistence** (`ip_vs_sched_persist`): the template key is the client masked by the
//!   persistence netmask plus `(protocol, vaddr, service port)` — the service port is 0 for
//!   port-0 services — or the mark for fwmark services. A live template is used if its
//!   destination is still in the service and, with
//!   [`IpvsConfig::expire_quiescent_template`], has weight > 0; otherwise it is invalidated
//!   and the scheduler picks again and a new template is made. Templates are honoured even
//!   when their destination is OVERLOADED (kernel `ip_vs_check_template` ignores the flag).
//!   A connection inserted under a template refreshes it to the full persistence timeout
//!   (kernel: `ip_vs_conn_put` on the template). If the template is created but the
//!   connection then does not fit, the template stays (bound, expiring on its own), as in
//!   the kernel.
//! * **Real server port:** a non-persistent connection goes to the destination's port, or
//!   keeps its virtual port when that is 0; a persistent connection on a fwmark or port-0
//!   service always keeps its virtual port (see [`registry::reply_port`]). NAT reply matching
//!   uses the same rule.
//! * **Removed destinations** (`expire_nodest_conn`): inbound packets of a connection whose
//!   destination was removed are dropped without touching the entry (no state change, no
//!   refresh): [`Delivery::DestGone`]. With [`IpvsConfig::expire_nodest_conn`] the entry is
//!   also removed at once, and the packet still dropped (the reference's wording; kernels
//!   since 5.9 may instead reschedule the packet as new when conntrack is off). NAT replies of
//!   such connections are still translated, as the kernel's `ip_vs_out` does not check the
//!   destination. A removed destination is kept in a trash (the kernel's, with its timing,
//!   see [`ServiceTable`]); re-adding the same address:port to a service with the same key
//!   **revives** that destination with its id, connections, counters, OVERLOAD flag and
//!   lblc/lblcr cache entries (`ip_vs_trash_get_dest`, `__ip_vs_update_dest`), see
//!   [`registry`]. Administrative calls take no `now`: a removal enters the trash at the
//!   latest `now` any call passed in.
//! * **Port reuse** (`conn_reuse_mode = 1`, the kernel's default): a SYN that hits an entry
//!   in TIME_WAIT or CLOSE that no template controls expires it and is scheduled anew.
//! * Not implemented: other `conn_reuse_mode` values, one-packet scheduling (`-o`), persistence engines (`--pe sip`), `drop_entry` /
//!   `drop_packet` / `secure_tcp`, ICMP.

pub mod registry;
mod sync;
mod types;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;

use crate::conn::{
    ConnError, ConnInfo, ConnKey, ConnState, ConnTable, NewConn, ReplyKey, TcpFlags, TemplateKey,
    TemplateService, TimeoutUpdate,
};
use crate::sched::SchedInput;
use crate::service::{DestConfig, Persistence, ServiceError, ServiceKey, ServiceTable};
use crate::time::Instant;
use crate::types::{DestId, Protocol, SchedFlag, SchedulerKind};

pub use registry::Detached;
use registry::{Registry, Target};
pub use sync::{
    ImportRefusal, Imported, SyncFeedConfig, SyncFeedStats, SyncImportCounts, SyncItem,
};
pub use types::{
    Delivery, Forward, Inbound, IpvsConfig, IpvsError, IpvsInvariantViolation, IpvsStats, NewFlow,
    Placement, Refusal, RefusalCounts, Scheduled,
};

/// Services, schedulers and connections; see the [module docs](self).
#[derive(Debug)]
pub struct Ipvs {
    reg: Registry,
    conns: ConnTable,
    cfg: IpvsConfig,
    services_added: u64,
    stats: IpvsStats,
    refusals: RefusalCounts,
    /// The latest `now` any call passed in: the time administrative removals put a
    /// destination into the trash (they take no `now` of their own).
    now: Instant,
    /// Connection sync's change feed (off unless enabled), see [`sync`].
    sync_feed: sync::SyncFeed,
    /// Outcomes of [`Ipvs::sync_import`].
    sync_imports: SyncImportCounts,
}

impl Ipvs {
    /// An engine with no services.
    pub fn new(cfg: IpvsConfig) -> Ipvs {
        Ipvs {
            reg: Registry::default(),
            conns: ConnTable::new(cfg.conn_table.clone()),
            cfg,
            services_added: 0,
            stats: IpvsStats::default(),
            refusals: RefusalCounts::default(),
            now: Instant::ZERO,
            sync_feed: sync::SyncFeed::default(),
            sync_imports: SyncImportCounts::default(),
        }
    }

    /// Remembers the latest time seen (callers pass non-decreasing instants).
    fn saw(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    // ----- read access -----

    /// The configuration (sysctls as currently set).
    pub fn config(&self) -> &IpvsConfig {
        &self.cfg
    }
    /// Services and destinations, with their counters.
    pub fn services(&self) -> &ServiceTable {
        &self.reg.services
    }
    /// The connection table (listing, stats, timeouts).
    pub fn conns(&self) -> &ConnTable {
        &self.conns
    }
    /// Glue counters.
    pub fn stats(&self) -> IpvsStats {
        self.stats
    }
    /// Refusal counters.
    pub fn refusals(&self) -> RefusalCounts {
        self.refusals
    }
    /// Removed destinations still in the trash (with or without connections), by id; see
    /// [`ServiceTable`] for how long they stay.
    pub fn detached(&self) -> impl Iterator<Item = (DestId, Detached)> + '_ {
        self.reg.detached()
    }

    // ----- sysctls -----

    /// Sets `expire_nodest_conn`.
    pub fn set_expire_nodest_conn(&mut self, on: bool) {
        self.cfg.expire_nodest_conn = on;
    }
    /// Sets `expire_quiescent_template`.
    pub fn set_expire_quiescent_template(&mut self, on: bool) {
        self.cfg.expire_quiescent_template = on;
    }
    /// Sets `sloppy_tcp`.
    pub fn set_sloppy_tcp(&mut self, on: bool) {
        self.cfg.sloppy_tcp = on;
    }

    // ----- administration (ipvsadm) -----

    fn next_seed(&mut self) -> u64 {
        self.services_added += 1;
        self.cfg
            .sched_seed
            .wrapping_add(self.services_added.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// `ipvsadm -A`.
    pub fn add_service(
        &mut self,
        key: ServiceKey,
        kind: SchedulerKind,
        flags: &[SchedFlag],
        persistence: Option<Persistence>,
    ) -> Result<(), IpvsError> {
        let seed = self.next_seed();
        self.reg
            .services
            .add_service(key, kind, flags, persistence, seed)?;
        Ok(())
    }

    /// `ipvsadm -E`: scheduler, flags and persistence (a full replacement, like ipvsadm).
    /// Existing connections and templates are kept.
    pub fn edit_service(
        &mut self,
        key: &ServiceKey,
        kind: SchedulerKind,
        flags: &[SchedFlag],
        persistence: Option<Persistence>,
    ) -> Result<(), IpvsError> {
        let seed = self.next_seed();
        let mut svc = self
            .reg
            .services
            .get_mut(key)
            .ok_or(ServiceError::NoSuchService(*key))?;
        svc.set_scheduler(kind, flags, seed)?;
        svc.set_persistence(persistence);
        Ok(())
    }

    /// `ipvsadm -D`. Its destinations go to the trash; their connections stay until they
    /// expire (see the module docs on removed destinations).
    pub fn remove_service(&mut self, key: &ServiceKey) -> Result<(), IpvsError> {
        self.reg.services.remove_service(key, self.now)?;
        self.debug_check();
        Ok(())
    }

    /// `ipvsadm -C`: removes every service.
    pub fn clear(&mut self) {
        let keys: Vec<ServiceKey> = self.reg.services.iter().map(|s| s.key()).collect();
        for key in keys {
            // Cannot fail: the key was just listed.
            let _ = self.reg.services.remove_service(&key, self.now);
        }
        self.debug_check();
    }

    /// `ipvsadm -a`; returns the destination's id. If the same address:port was removed
    /// from a service with this key and is still in the trash, that destination comes
    /// back (same id, its connections, templates, counters and OVERLOAD flag; kernel
    /// `ip_vs_trash_get_dest`, `__ip_vs_update_dest`), else a new one is made.
    pub fn add_dest(&mut self, key: &ServiceKey, cfg: DestConfig) -> Result<DestId, IpvsError> {
        let id = self.reg.services.add_dest(key, cfg)?;
        self.debug_check();
        Ok(id)
    }

    /// `ipvsadm -e`; the id does not change.
    pub fn edit_dest(&mut self, key: &ServiceKey, cfg: DestConfig) -> Result<DestId, IpvsError> {
        Ok(self.reg.services.edit_dest(key, cfg)?)
    }

    /// `ipvsadm -d`. Its connections and templates stay until they expire.
    pub fn remove_dest(
        &mut self,
        key: &ServiceKey,
        addr: Ipv4Addr,
        port: u16,
    ) -> Result<(), IpvsError> {
        self.reg.services.remove_dest(key, addr, port, self.now)?;
        self.debug_check();
        Ok(())
    }

    /// `ipvsadm --set tcp tcpfin udp`.
    pub fn set_timeouts(&mut self, update: TimeoutUpdate) -> Result<(), IpvsError> {
        Ok(self.conns.set_timeouts(update)?)
    }

    // ----- packets -----

    /// The service a new packet belongs to, in `ip_vs_service_find` order: fwmark (when
    /// `fwmark != 0`), then `<proto, vaddr, vport>`, then the port-0 catch-all.
    pub fn find_service(
        &self,
        proto: Protocol,
        vaddr: Ipv4Addr,
        vport: u16,
        fwmark: u32,
    ) -> Option<ServiceKey> {
        let s = &self.reg.services;
        let fw = ServiceKey::Fwmark(fwmark);
        if fwmark != 0 && s.get(&fw).is_some() {
            return Some(fw);
        }
        let exact = ServiceKey::Inet {
            protocol: proto,
            addr: vaddr,
            port: vport,
        };
        if s.get(&exact).is_some() {
            return Some(exact);
        }
        let zero = ServiceKey::Inet {
            protocol: proto,
            addr: vaddr,
            port: 0,
        };
        s.get(&zero).is_some().then_some(zero)
    }

    /// Creates the connection for a new flow and processes its first packet (kernel
    /// `ip_vs_schedule`, `ip_vs_sched_persist`). See the module docs for the rules.
    pub fn new_connection(&mut self, now: Instant, flow: &NewFlow) -> Result<Scheduled, Refusal> {
        self.saw(now);
        let r = self.schedule(now, flow);
        match &r {
            Ok(_) => self.stats.conns_created += 1,
            Err(e) => self.refusals.count(e),
        }
        self.debug_check();
        r
    }

    fn schedule(&mut self, now: Instant, flow: &NewFlow) -> Result<Scheduled, Refusal> {
        let key = flow.key;
        if key.proto == Protocol::Tcp {
            let f = flow.tcp_flags;
            let rst = f.contains(TcpFlags::RST);
            if rst || !(f.contains(TcpFlags::SYN) || self.cfg.sloppy_tcp) {
                return Err(Refusal::NotSyn);
            }
        }
        if self.conns.lookup_in(now, &key).is_some() {
            return Err(Refusal::ConnExists(key));
        }
        let skey = self
            .find_service(key.proto, key.vaddr, key.vport, flow.fwmark)
            .ok_or(Refusal::NoService {
                proto: key.proto,
                vaddr: key.vaddr,
                vport: key.vport,
                fwmark: flow.fwmark,
            })?;
        let persistence = self
            .reg
            .services
            .get(&skey)
            .and_then(|s| s.persistence().copied());
        let input = SchedInput {
            src: key.caddr,
            sport: key.cport,
            dst: key.vaddr,
            dport: key.vport,
        };
        let (dest, placement) = match persistence {
            None => {
                if let ServiceKey::Inet { port, .. } = skey
                    && port != key.vport
                {
                    return Err(Refusal::PortZeroNotPersistent(skey));
                }
                let d = self
                    .reg
                    .services
                    .schedule(&skey, &input, now)
                    .ok_or(Refusal::NoDestination(skey))?;
                (d, Placement::Scheduled)
            }
            Some(p) => self.sched_persist(now, skey, &p, &input)?,
        };
        let method = self
            .reg
            .services
            .dest(dest)
            .map(|d| d.method())
            .ok_or(Refusal::NoDestination(skey))?;
        let template = match placement {
            Placement::Scheduled => None,
            Placement::Template(t) | Placement::NewTemplate(t) => Some(t),
        };
        let new = NewConn {
            key,
            dest,
            fwd: method,
            template,
        };
        let ins = self
            .conns
            .insert(now, new, flow.tcp_flags)
            .map_err(refusal)?;
        if let Some(ev) = ins.replaced {
            self.reg.apply(ev);
        }
        self.reg.apply(ins.created);
        if self.sync_feed.enabled {
            self.feed_new(now, key, template);
        }
        let forward = self
            .forward(&ins.info, initial_state(key.proto))
            .ok_or(Refusal::NoDestination(skey))?;
        Ok(Scheduled {
            service: skey,
            forward,
            placement,
        })
    }

    /// `ip_vs_sched_persist` up to the connection: follow or make the template.
    fn sched_persist(
        &mut self,
        now: Instant,
        skey: ServiceKey,
        p: &Persistence,
        input: &SchedInput,
    ) -> Result<(DestId, Placement), Refusal> {
        let tservice = match skey {
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
        };
        let tkey = TemplateKey::new(input.src, p.netmask, tservice);
        if let Some(t) = self.conns.lookup_template(now, &tkey) {
            match self.reg.live_in_service(t.dest, &skey) {
                Some((live, weight)) if !(self.cfg.expire_quiescent_template && weight == 0) => {
                    self.stats.template_hits += 1;
                    return Ok((live, Placement::Template(t.id)));
                }
                _ => {
                    self.conns.invalidate_template(t.id).map_err(refusal)?;
                    self.stats.templates_invalidated += 1;
                }
            }
        }
        let d = self
            .reg
            .services
            .schedule(&skey, input, now)
            .ok_or(Refusal::NoDestination(skey))?;
        let ins = self
            .conns
            .insert_template(now, tkey, d, p.timeout)
            .map_err(refusal)?;
        if let Some(ev) = ins.replaced {
            self.reg.apply(ev);
        }
        self.reg.apply(ins.created);
        self.stats.templates_created += 1;
        Ok((d, Placement::NewTemplate(ins.id)))
    }

    /// Feeds a new connection (after its template) to connection sync.
    #[cold]
    fn feed_new(&mut self, now: Instant, key: ConnKey, template: Option<crate::conn::TemplateId>) {
        if let Some(t) = template.and_then(|id| self.conns.template(now, id)) {
            self.sync_feed.push(SyncItem::Template(t.key));
        }
        self.sync_feed.push(SyncItem::Conn(key));
    }

    fn forward(&self, info: &ConnInfo, old_state: ConnState) -> Option<Forward> {
        let Target::Live { id, addr, port } = self.reg.target(info.dest)? else {
            return None;
        };
        Some(Forward {
            conn: info.key,
            dest: id,
            daddr: addr,
            dport: if port == 0 { info.key.vport } else { port },
            method: info.fwd,
            state: info.state,
            old_state,
            expires: info.expires,
            template: info.template,
        })
    }

    /// An inbound packet (client to virtual service) of an existing connection: TCP state
    /// transition, refresh, accounting. See [`Delivery`] for removed destinations.
    pub fn in_packet(&mut self, now: Instant, key: &ConnKey, flags: TcpFlags) -> Delivery {
        self.saw(now);
        let d = self.in_packet_inner(now, key, flags);
        self.debug_check();
        d
    }

    fn in_packet_inner(&mut self, now: Instant, key: &ConnKey, flags: TcpFlags) -> Delivery {
        if self.reuse_expired(now, key, flags) {
            return Delivery::NoConn;
        }
        // Only when some removed destination is in the trash can a connection lead
        // nowhere; look before touching the entry (the kernel drops without refreshing).
        if self.reg.services.has_trash() {
            let Some(info) = self.conns.lookup_in(now, key) else {
                return Delivery::NoConn;
            };
            if let Some(d) = self.nodest(key, info.dest) {
                return d;
            }
        }
        let Some(out) = self.conns.in_packet(now, key, flags) else {
            return Delivery::NoConn;
        };
        if let Some(ev) = out.accounting {
            self.reg.apply(ev);
        }
        if self.sync_feed.enabled
            && (out.sync_refresh || sync::state_change_syncs(out.old_state, out.info.state))
        {
            self.sync_feed.push(SyncItem::Conn(*key));
        }
        match self.forward(&out.info, out.old_state) {
            Some(f) => Delivery::Forward(f),
            // Unreachable: the destination was checked above or nothing is detached.
            None => Delivery::DestGone {
                dest: out.info.dest,
                expired: false,
            },
        }
    }

    /// `conn_reuse_mode = 1`, the kernel's default (`ip_vs_in_hook`, `is_new_conn_expected`):
    /// a SYN that finds an entry in TIME_WAIT or CLOSE not controlled by a template expires
    /// the entry, so that the SYN is scheduled as a new connection. Without it a client that
    /// reuses a source port within the TIME_WAIT timeout (every busy client does) sticks to
    /// the old connection's server, skewing the schedule. Returns whether it expired one.
    fn reuse_expired(&mut self, now: Instant, key: &ConnKey, flags: TcpFlags) -> bool {
        if key.proto != Protocol::Tcp || !flags.contains(TcpFlags::SYN) {
            return false;
        }
        let Some(info) = self.conns.lookup_in(now, key) else {
            return false;
        };
        let closed = matches!(
            info.state,
            ConnState::Tcp(crate::conn::TcpState::TimeWait | crate::conn::TcpState::Close)
        );
        if !closed || info.template.is_some() {
            return false;
        }
        if let Some(ev) = self.conns.remove(key) {
            self.reg.apply(ev);
        }
        self.stats.reused += 1;
        true
    }

    /// `expire_nodest_conn` handling, if `dest` (stored in the entry for `key`) is gone.
    fn nodest(&mut self, key: &ConnKey, dest: DestId) -> Option<Delivery> {
        if matches!(self.reg.target(dest), Some(Target::Live { .. })) {
            return None;
        }
        self.stats.nodest_dropped += 1;
        let mut expired = false;
        if self.cfg.expire_nodest_conn
            && let Some(ev) = self.conns.remove(key)
        {
            self.reg.apply(ev);
            self.stats.nodest_expired += 1;
            expired = true;
        }
        Some(Delivery::DestGone { dest, expired })
    }

    /// A NAT reply (real server to client): finds the connection by the reply's addresses,
    /// runs the output transition, refreshes, accounts. `None` if no live connection
    /// matches (not IPVS traffic). Replies of connections whose destination was removed are
    /// still translated; `Forward::dest` is then the stored id.
    pub fn out_packet(
        &mut self,
        now: Instant,
        reply: &ReplyKey,
        flags: TcpFlags,
    ) -> Option<Forward> {
        self.saw(now);
        let reg = &self.reg;
        let out = self
            .conns
            .out_packet(now, reply, flags, |id| reg.reply_addr(id))?;
        if let Some(ev) = out.accounting {
            self.reg.apply(ev);
        }
        if self.sync_feed.enabled
            && (out.sync_refresh || sync::state_change_syncs(out.old_state, out.info.state))
        {
            self.sync_feed.push(SyncItem::Conn(out.info.key));
        }
        let info = out.info;
        let f = self.forward(&info, out.old_state).unwrap_or(Forward {
            conn: info.key,
            dest: info.dest,
            daddr: reply.daddr,
            dport: reply.dport,
            method: info.fwd,
            state: info.state,
            old_state: out.old_state,
            expires: info.expires,
            template: info.template,
        });
        self.debug_check();
        Some(f)
    }

    /// The connection `key` names, resolved to where its packets go, **without touching
    /// it** (no state change, no refresh, no accounting): for ICMP errors that belong to a
    /// connection. `None` if there is no live connection or its destination was removed.
    pub fn peek_in(&self, now: Instant, key: &ConnKey) -> Option<Forward> {
        let info = self.conns.lookup_in(now, key)?;
        self.forward(&info, info.state)
    }

    /// The NAT connection a reply with these addresses belongs to, without touching it
    /// (see [`Ipvs::peek_in`]). Replies of removed destinations match, as in
    /// [`Ipvs::out_packet`].
    pub fn peek_out(&self, now: Instant, reply: &ReplyKey) -> Option<Forward> {
        let reg = &self.reg;
        let info = self.conns.lookup_out(now, reply, |id| reg.reply_addr(id))?;
        Some(self.forward(&info, info.state).unwrap_or(Forward {
            conn: info.key,
            dest: info.dest,
            daddr: reply.daddr,
            dport: reply.dport,
            method: info.fwd,
            state: info.state,
            old_state: info.state,
            expires: info.expires,
            template: info.template,
        }))
    }

    /// The kernel's inbound decision in one call: [`Ipvs::in_packet`] if the connection
    /// exists, else [`Ipvs::new_connection`].
    pub fn inbound(&mut self, now: Instant, flow: &NewFlow) -> Inbound {
        match self.in_packet(now, &flow.key, flow.tcp_flags) {
            Delivery::NoConn => match self.new_connection(now, flow) {
                Ok(s) => Inbound::New(s),
                Err(r) => Inbound::Refused(r),
            },
            d => Inbound::Existing(d),
        }
    }

    // ----- time -----

    /// Runs what is due at `now`: the connection sweep (expired connections and templates
    /// removed, their counters released), the schedulers' housekeeping (lblc/lblcr) and
    /// the trash sweep (removed destinations nothing refers to any more are freed).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.saw(now);
        if self.conns.poll_timeout().is_some_and(|t| t <= now) {
            let reg = &mut self.reg;
            self.conns.expire(now, |ev| reg.apply(ev));
        }
        if self.reg.services.poll_timeout().is_some_and(|t| t <= now) {
            self.reg.services.handle_timeout(now);
        }
        self.debug_check();
    }

    /// The earliest time [`Ipvs::handle_timeout`] has work; `None` if never.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.conns.poll_timeout(), self.reg.services.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- invariants -----

    /// Checks the connection table's invariants and that every destination's active /
    /// inactive / persistent counters equal the entries the table holds for it (removed
    /// destinations and revivals included). O(entries).
    pub fn check_invariants(&self) -> Result<(), IpvsInvariantViolation> {
        self.conns.check_invariants()?;
        self.reg.check(&self.conns.dest_counts())
    }

    fn debug_check(&self) {
        #[cfg(debug_assertions)]
        if self.conns.debug_check_due()
            && let Err(e) = self.check_invariants()
        {
            panic!("ipvs invariant broken: {e}");
        }
    }
}

/// State "before the first packet" of a new connection.
fn initial_state(proto: Protocol) -> ConnState {
    match proto {
        Protocol::Tcp => ConnState::Tcp(crate::conn::TcpState::None),
        Protocol::Udp => ConnState::Udp,
    }
}

fn refusal(e: ConnError) -> Refusal {
    match e {
        ConnError::TableFull { max } => Refusal::TableFull { max },
        ConnError::Exists { key } => Refusal::ConnExists(key),
        ConnError::TemplateSlotsExhausted => Refusal::TemplateSlotsExhausted,
        other => Refusal::Unexpected(other),
    }
}
