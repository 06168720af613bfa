//! The worker's side of the control plane: the [`Director`] model, what the engine and the
//! XDP steering maps hold now (`actual`), and the one routine that brings them together
//! ([`State::sync`]): `diff(actual, desired)` applied to the engine, then the steering
//! entries added and removed *as a set difference*, so an unchanged service's entries are
//! never touched and its packets never reach the kernel's stack.
//!
//! Order within one sync: engine changes first (removals, edits, additions — see
//! `program::diff`), then new steering entries, then stale ones removed. A packet of a new
//! service therefore never meets a steering entry without an engine service; a packet of a
//! removed service meets either the engine's `NotMine` (dropped, counted) or, once its entry
//! is gone, the kernel, which refuses it as it would without lvsd.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};

use ipvs_core::engine::Engine;
use ipvs_core::io::Steering;
use ipvs_core::types::{ForwardMethod, Protocol};
use tracing::{error, info, warn};

use super::events::{Recent, now_unix_ms};
use super::rates::RateBook;
use crate::control::api::{
    ConnView, ConnectionsView, RatesView, Role, RoleView, ServerState, ServerView, ServiceId,
    ServiceView, ServicesView, StatsView, StatusView, TableServerView, TableServiceView, TableView,
    TimeoutsView,
};
use crate::control::server::{Op, OpError, Reply};
use crate::desired::{DesiredService, DesiredTable, ServiceKey};
use crate::model::{Command, CommandError, Director, Event};
use crate::nanny_args::nanny_args;
use crate::program;
use crate::supervise::{NannyList, NannySpec};

/// One entry of the XDP steering maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Steer {
    /// A virtual service's VIP:port (port 0 = every port of the VIP).
    Service(Ipv4Addr, u16, Protocol),
    /// A NAT real server's replies (source address:port).
    Reply(Ipv4Addr, u16, Protocol),
}

/// The steering entries `table` needs.
pub fn steer_set(table: &DesiredTable) -> BTreeSet<Steer> {
    let mut out = BTreeSet::new();
    for s in &table.services {
        let protos: &[Protocol] = match s.key {
            ServiceKey::Inet { protocol, .. } => &[protocol][..],
            ServiceKey::Fwmark(_) => &[Protocol::Tcp, Protocol::Udp],
        };
        for &p in protos {
            match s.key {
                ServiceKey::Inet { addr, port, .. } => out.insert(Steer::Service(addr, port, p)),
                ServiceKey::Fwmark(_) => out.insert(Steer::Service(s.vip, 0, p)),
            };
            for d in s.dests.iter().filter(|d| d.method == ForwardMethod::Masq) {
                out.insert(Steer::Reply(d.addr, d.port, p));
            }
        }
    }
    out
}

fn steer_one(steering: &Steering, e: Steer, add: bool) {
    let r = match (e, add) {
        (Steer::Service(a, port, p), true) => steering.add_service(a, port, p),
        (Steer::Service(a, port, p), false) => steering.remove_service(a, port, p),
        (Steer::Reply(a, port, p), true) => steering.add_reply(a, port, p),
        (Steer::Reply(a, port, p), false) => steering.remove_reply(a, port, p).map(drop),
    };
    if let Err(err) = r {
        error!(entry = ?e, "cannot update the XDP steering maps: {err}");
    }
}

/// Most steering-map updates [`State::steer_tick`] makes per worker turn (~15 µs each).
pub const STEER_PER_TURN: usize = 24;

/// Settings of the process that shape the nanny list.
#[derive(Debug, Clone)]
pub struct NannySettings {
    /// The nanny program (`--nanny`, else `client_monitor`, else the one beside lvsd).
    pub program: Option<std::path::PathBuf>,
    /// Pass `-v`.
    pub verbose: bool,
    /// Pass `--nodaemon`.
    pub nodaemon: bool,
    /// The control socket, passed as `LVSD_SOCKET`.
    pub socket: std::path::PathBuf,
}

/// The model plus what the engine holds.
#[derive(Debug)]
pub struct State {
    /// The model.
    pub director: Director,
    actual: DesiredTable,
    steered: BTreeSet<Steer>,
    /// Steering-map updates not yet made (a big reload's, see [`State::sync_spread`]), in
    /// order; `steered` already counts them.
    steer_queue: std::collections::VecDeque<(Steer, bool)>,
    nanny: NannySettings,
    /// Scheduler table rebuilds refused so far, per service (mh with more destinations
    /// than slots): logged when the count grows.
    refused: BTreeMap<ServiceKey, u64>,
    /// `--rate` estimators of the services and real servers in the engine.
    rates: RateBook,
    /// Recent events for the status page.
    recent: Recent,
}

impl State {
    /// A state whose engine and steering maps are still empty.
    pub fn new(director: Director, nanny: NannySettings) -> State {
        State {
            director,
            actual: DesiredTable::default(),
            steered: BTreeSet::new(),
            steer_queue: std::collections::VecDeque::new(),
            nanny,
            refused: BTreeMap::new(),
            rates: RateBook::default(),
            recent: Recent::default(),
        }
    }

    /// Samples the rate estimators when they are due (every 2 s).
    pub fn tick_rates(&mut self, engine: &Engine, now: ipvs_core::time::Instant) {
        self.rates.tick(engine, now);
    }

    /// What the engine holds now.
    pub fn actual(&self) -> &DesiredTable {
        &self.actual
    }

    /// Programs the empty engine with the desired table (start-up; steering comes later,
    /// once the data path exists). An engine refusal here stops lvsd.
    pub fn start(&mut self, engine: &mut Engine) -> Result<(), program::ApplyError> {
        let desired = self.director.desired();
        program::apply(engine.ipvs_mut(), &program::diff(&self.actual, &desired))?;
        self.actual = desired;
        Ok(())
    }

    /// Brings the engine and the steering maps to the model's desired table (steered only
    /// while the role is active). On a refused engine change the rest of the changes is
    /// skipped and `actual` becomes what the engine really holds, so the next sync retries
    /// the difference.
    pub fn sync(&mut self, engine: &mut Engine, steering: Option<&Steering>) {
        let _ = self.sync_inner(engine, steering, false);
    }

    /// [`State::sync`] for a big reload: the engine changes are made at once, the steering
    /// map updates (one bpf(2) call each, ~15 µs: a 10 000-server reload's 220 took 3 ms of
    /// the worker) are queued and made [`STEER_PER_TURN`] per worker turn by
    /// [`State::steer_tick`]. Unchanged services keep their entries throughout; a new
    /// service is steered a few turns after it exists in the engine, a removed one a few
    /// turns after it left (its packets then find no service and go to the kernel).
    /// Returns the changes made and the table they replaced (for the log, and to be freed
    /// off the worker).
    pub fn sync_spread(
        &mut self,
        engine: &mut Engine,
        steering: &Steering,
    ) -> (Vec<program::Change>, DesiredTable) {
        self.sync_inner(engine, Some(steering), true)
    }

    /// Whether steering updates wait in the queue (the worker should not sleep).
    pub fn steer_pending(&self) -> bool {
        !self.steer_queue.is_empty()
    }

    /// Makes at most [`STEER_PER_TURN`] queued steering updates.
    pub fn steer_tick(&mut self, steering: &Steering) {
        for _ in 0..STEER_PER_TURN {
            let Some((e, add)) = self.steer_queue.pop_front() else {
                return;
            };
            steer_one(steering, e, add);
        }
    }

    fn sync_inner(
        &mut self,
        engine: &mut Engine,
        steering: Option<&Steering>,
        spread: bool,
    ) -> (Vec<program::Change>, DesiredTable) {
        let mut desired = self.director.desired();
        let mut changes = program::diff(&self.actual, &desired);
        let mut refused = false;
        if !changes.is_empty()
            && let Err(e) = program::apply(engine.ipvs_mut(), &changes)
        {
            // The changes before the refused one are in; continue from what the engine
            // really holds, so that the next command's diff is right.
            error!("engine refused a change; the table stays as the engine holds it: {e}");
            desired = program::engine_table(engine.ipvs(), &desired);
            refused = true;
        }
        if let Some(steering) = steering {
            // Updates still queued come first, so that the maps follow the same order.
            if !spread {
                while self.steer_pending() {
                    self.steer_tick(steering);
                }
            }
            let want = match self.director.role() {
                Role::Active => steer_set(&desired),
                Role::Standby => BTreeSet::new(),
            };
            let ops: Vec<(Steer, bool)> = want
                .difference(&self.steered)
                .map(|e| (*e, true))
                .chain(self.steered.difference(&want).map(|e| (*e, false)))
                .collect();
            if spread {
                self.steer_queue.extend(ops);
            } else {
                for (e, add) in ops {
                    steer_one(steering, e, add);
                }
            }
            self.steered = want;
        }
        let before = self.actual.by_key();
        for s in &desired.services {
            let refused_updates = engine
                .ipvs()
                .services()
                .get(&s.key)
                .map_or(0, |svc| svc.sched_refused_updates());
            if refused_updates > self.refused.get(&s.key).copied().unwrap_or(0) {
                warn!(service = %s.name, dests = s.dests.len(),
                    "{}: the {} scheduler refused to rebuild its table for {} real servers \
                     (more than its table has slots); the previous table stays in force and \
                     servers added since get no new connections",
                    s.name, s.scheduler.name(), s.dests.len());
            }
            self.refused.insert(s.key, refused_updates);
            let was = before.get(&s.key).copied();
            let sorry = self.director.sorry_dest(s);
            let has = |t: &DesiredService, a: Ipv4Addr| t.dests.iter().any(|d| d.addr == a);
            if let Some(sorry) = sorry {
                let now_in = has(s, sorry.addr);
                let was_in = was.is_some_and(|w| has(w, sorry.addr));
                if now_in && !was_in {
                    info!(service = %s.name, sorry = %sorry.addr,
                        "Virtual Server {}: No real servers; activate sorry_server {}", s.name, sorry.addr);
                    self.recent.push(
                        now_unix_ms(),
                        "sorry",
                        format!(
                            "{}: no real server is up; sorry server {} stands in",
                            s.name, sorry.addr
                        ),
                    );
                } else if was_in && !now_in {
                    let n = s.dests.len();
                    info!(service = %s.name, sorry = %sorry.addr,
                        "Virtual Server {}: {n} real servers; deactivate sorry_server {}", s.name, sorry.addr);
                    self.recent.push(
                        now_unix_ms(),
                        "sorry",
                        format!(
                            "{}: a real server is back; sorry server {} stands down",
                            s.name, sorry.addr
                        ),
                    );
                }
            }
        }
        let old = std::mem::replace(&mut self.actual, desired);
        if refused {
            changes = program::diff(&old, &self.actual);
        }
        (changes, old)
    }

    /// Applies a command to the model and syncs. Logs each event.
    pub fn command(
        &mut self,
        cmd: Command,
        engine: &mut Engine,
        steering: Option<&Steering>,
    ) -> Result<(), CommandError> {
        self.command_because(cmd, engine, steering, None)
    }

    /// Records an event for the status page (`GET /v1/events`); the journal line is the
    /// caller's.
    pub fn note(&mut self, kind: &str, text: String) {
        self.recent.push(now_unix_ms(), kind, text);
    }

    /// [`State::command`] with the reason for a role change (pulse's).
    fn command_because(
        &mut self,
        cmd: Command,
        engine: &mut Engine,
        steering: Option<&Steering>,
        reason: Option<&str>,
    ) -> Result<(), CommandError> {
        let events = self.director.apply(cmd)?;
        for ev in &events {
            self.remember(ev, reason);
        }
        for ev in &events {
            match ev {
                Event::ServerState {
                    service,
                    server,
                    state,
                    reason,
                } => info!(service = %service, rs = %server, state = %state, reason = %reason,
                    "real server {server} of {service} is {state}: {reason}"),
                Event::ServerWeight {
                    service,
                    server,
                    weight,
                } => info!(service = %service, rs = %server, weight,
                    "real server {server} of {service}: weight {weight}"),
                Event::Role(role) => info!(role = %role, "lvsd is now {role}: {}", match role {
                    Role::Active => "virtual services are steered to the engine",
                    Role::Standby => "nothing is steered; the table and the nannies stay ready",
                }),
                Event::Runtime(what) => info!(change = %what, "run-time change: {what}"),
                Event::RuntimeUndone(n) => warn!(
                    runtime_changes = n,
                    "reload: lvs.cf wins over the {n} run-time change(s) made since it was \
                     loaded; the changes below put its table back"
                ),
            }
        }
        self.sync(engine, steering);
        Ok(())
    }

    /// Keeps `ev` for the status page (run-time weights, slow start's steps among them,
    /// are left to the journal: they would crowd everything else out).
    fn remember(&mut self, ev: &Event, reason: Option<&str>) {
        let now = now_unix_ms();
        match ev {
            Event::ServerState {
                service,
                server,
                state,
                reason,
            } => self.recent.push(
                now,
                "server",
                format!("real server {server} of {service} is {state}: {reason}"),
            ),
            Event::Role(Role::Active) => self.recent.takeover(
                now,
                format!("active: {}", reason.unwrap_or("set through the API")),
            ),
            Event::Role(Role::Standby) => self.recent.push(
                now,
                "role",
                format!("standby: {}", reason.unwrap_or("set through the API")),
            ),
            Event::Runtime(what) => {
                self.recent
                    .push(now, "runtime", format!("run-time change: {what}"))
            }
            Event::RuntimeUndone(n) => self.recent.push(
                now,
                "reload",
                format!("reload: lvs.cf wins over {n} run-time change(s)"),
            ),
            Event::ServerWeight { .. } => {}
        }
    }

    /// The nannies the model wants (one per active real server of each active service).
    pub fn nannies(&self) -> NannyList {
        let cfg = self.director.config();
        let mut nannies = BTreeMap::new();
        let method = cfg.global.network;
        // One lookup per service (a search per service was quadratic: tens of ms on the
        // worker for 1000 services).
        let virtuals: std::collections::HashMap<(&str, usize), _> = cfg
            .active_virtuals()
            .map(|v| ((v.name.as_str(), v.line), v))
            .collect();
        for s in &self.director.configured().services {
            let Some(&v) = virtuals.get(&(s.name.as_str(), s.line)) else {
                continue;
            };
            let program = self
                .nanny
                .program
                .clone()
                .unwrap_or_else(|| v.client_monitor.clone());
            for rs in v.active_servers() {
                let port = crate::lvscf::validate::effective_port(v, rs, method);
                let server = SocketAddrV4::new(rs.address, port);
                // Deleted at run time: nothing to check.
                if !s
                    .dests
                    .iter()
                    .any(|d| d.addr == rs.address && d.port == port)
                {
                    continue;
                }
                nannies.insert(
                    (s.key, server),
                    NannySpec {
                        label: format!("{}/{}", v.name, rs.name),
                        program: program.clone(),
                        args: nanny_args(cfg, v, rs, self.nanny.verbose, self.nanny.nodaemon),
                        env: vec![
                            (
                                crate::control::api::SOCKET_ENV.to_owned(),
                                self.nanny.socket.display().to_string(),
                            ),
                            // nanny asks the kernel for SIGTERM when lvsd dies.
                            (
                                "LVSD_SUPERVISOR_PID".to_owned(),
                                std::process::id().to_string(),
                            ),
                        ],
                    },
                );
            }
        }
        NannyList {
            nannies,
            hard_shutdown: cfg.global.hard_shutdown,
        }
    }

    /// Answers an API request.
    pub fn answer(
        &mut self,
        op: Op,
        engine: &mut Engine,
        steering: Option<&Steering>,
        extra: &StatusExtra,
    ) -> Result<Reply, OpError> {
        match op {
            Op::Status => Ok(Reply::Status(StatusView {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                config: self.director.file().to_owned(),
                services: self.director.configured().services.len(),
                connections: engine.ipvs().conns().len(),
                nannies_running: extra.nannies_running,
                api_errors: extra.api_errors,
                role: self.director.role(),
                conn_capacity: engine.ipvs().conns().max_entries(),
            })),
            Op::Role => Ok(Reply::Role(RoleView {
                role: self.director.role(),
                reason: None,
            })),
            Op::Events => Ok(Reply::Events(Box::new(self.recent.view()))),
            // The worker answers these itself (its sync link, its clock, the file).
            Op::Sync | Op::Connections | Op::Reload => {
                Err(OpError::NotFound("answered by the worker loop".to_owned()))
            }
            Op::AddService(spec) => {
                let id = spec.id;
                if let ServiceKey::Fwmark(_) = id.0 {
                    return Err(OpError::Invalid(format!(
                        "{id}: a firewall-mark service needs its address and the mark's rule \
                         from lvs.cf (no kernel marks reach lvsd); add it there and reload"
                    )));
                }
                self.runtime(Command::AddService(spec), engine, steering)?;
                self.answer(Op::Service(id), engine, steering, extra)
            }
            Op::EditService(spec) => {
                let id = spec.id;
                self.runtime(Command::EditService(spec), engine, steering)?;
                self.answer(Op::Service(id), engine, steering, extra)
            }
            Op::DeleteService(id) => {
                self.runtime(Command::DeleteService(id), engine, steering)?;
                Ok(Reply::Done)
            }
            Op::Clear => {
                self.runtime(Command::Clear, engine, steering)?;
                Ok(Reply::Done)
            }
            Op::AddServer(id, spec) => {
                let asked = spec.address;
                self.runtime(Command::AddServer(id, spec), engine, steering)?;
                let held = self.held_address(&id, asked);
                self.answer(Op::Server(id, held), engine, steering, extra)
            }
            Op::EditServer(id, spec) => {
                let asked = spec.address;
                self.runtime(Command::EditServer(id, spec), engine, steering)?;
                let held = self.held_address(&id, asked);
                self.answer(Op::Server(id, held), engine, steering, extra)
            }
            Op::DeleteServer(id, addr) => {
                self.runtime(Command::DeleteServer(id, addr), engine, steering)?;
                Ok(Reply::Done)
            }
            Op::Zero(z) => {
                if let Some(id) = z.service {
                    self.find(&id)?;
                }
                engine.zero_stats(z.service.as_ref().map(|s| &s.0));
                self.rates.zero(engine, z.service.as_ref().map(|s| &s.0));
                info!(service = ?z.service.map(|s| s.to_string()), "counters zeroed");
                Ok(Reply::Done)
            }
            Op::Timeouts => Ok(Reply::Timeouts(timeouts_view(engine))),
            Op::SetTimeouts(t) => {
                engine
                    .ipvs_mut()
                    .set_timeouts(ipvs_core::conn::TimeoutUpdate {
                        tcp: t.tcp,
                        tcpfin: t.tcpfin,
                        udp: t.udp,
                    })
                    .map_err(|e| OpError::Invalid(e.to_string()))?;
                let now = timeouts_view(engine);
                info!(
                    tcp = now.tcp,
                    tcpfin = now.tcpfin,
                    udp = now.udp,
                    "timeouts set (tcp tcpfin udp): {} {} {}",
                    now.tcp,
                    now.tcpfin,
                    now.udp
                );
                Ok(Reply::Timeouts(now))
            }
            Op::SetRole(asked) => {
                let reason = asked.reason.as_deref();
                self.command_because(Command::SetRole(asked.role), engine, steering, reason)
                    .map_err(|e| OpError::Invalid(e.to_string()))?;
                Ok(Reply::Role(RoleView {
                    role: self.director.role(),
                    reason: None,
                }))
            }
            Op::Services => {
                let totals = engine.services_stats();
                Ok(Reply::Services(ServicesView {
                    services: self
                        .director
                        .configured()
                        .services
                        .iter()
                        .map(|s| {
                            let total = totals.get(&s.key).copied().unwrap_or_default();
                            self.service_view(s, engine, total)
                        })
                        .collect(),
                }))
            }
            Op::Table { counters } => Ok(Reply::Table(Box::new(self.table_view(engine, counters)))),
            Op::Service(id) => self.find(&id).map(|s| {
                let total = engine.service_stats(&s.key);
                Reply::Service(Box::new(self.service_view(s, engine, total)))
            }),
            Op::Server(id, addr) => {
                let s = self.find(&id)?;
                let v = self.service_view(s, engine, engine.service_stats(&s.key));
                v.servers
                    .into_iter()
                    .find(|x| x.address == addr)
                    .map(|x| Reply::Server(Box::new(x)))
                    .ok_or_else(|| {
                        OpError::NotFound(
                            CommandError::UnknownServer {
                                service: id,
                                server: addr,
                            }
                            .to_string(),
                        )
                    })
            }
            Op::Patch(id, addr, patch) => {
                let cmd = Command::SetServer {
                    service: id.0,
                    server: addr,
                    patch,
                };
                self.command(cmd, engine, steering).map_err(|e| match e {
                    CommandError::WeightOutOfRange(_) => OpError::Invalid(e.to_string()),
                    _ => OpError::NotFound(e.to_string()),
                })?;
                self.answer(Op::Server(id, addr), engine, steering, extra)
            }
        }
    }

    /// A run-time command: applied, or refused with the API's status for its reason.
    fn runtime(
        &mut self,
        cmd: Command,
        engine: &mut Engine,
        steering: Option<&Steering>,
    ) -> Result<(), OpError> {
        self.command(cmd, engine, steering).map_err(|e| match e {
            CommandError::UnknownService(_) | CommandError::UnknownServer { .. } => {
                OpError::NotFound(e.to_string())
            }
            CommandError::ServiceExists(_) | CommandError::ServerExists { .. } => {
                OpError::Conflict(e.to_string())
            }
            _ => OpError::Invalid(e.to_string()),
        })
    }

    /// The address service `id` holds for a server asked for as `asked` (port 0 or a
    /// direct-routing server: the service's port).
    fn held_address(&self, id: &ServiceId, asked: SocketAddrV4) -> SocketAddrV4 {
        self.find(id)
            .ok()
            .and_then(|s| {
                let same = |d: &&crate::desired::DesiredDest| d.addr == *asked.ip();
                let exact = s.dests.iter().find(|d| same(d) && d.port == asked.port());
                exact
                    .or_else(|| s.dests.iter().find(same))
                    .map(|d| SocketAddrV4::new(d.addr, d.port))
            })
            .unwrap_or(asked)
    }

    /// `GET /v1/connections`: templates, then connections, as `ipvsadm -L -c` lists them.
    pub fn connections(&self, engine: &Engine, now: ipvs_core::time::Instant) -> ConnectionsView {
        let ipvs = engine.ipvs();
        let dest = |id| {
            ipvs.services()
                .dest(id)
                .map_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), |d| {
                    SocketAddrV4::new(d.addr(), d.port())
                })
        };
        let left = |t: ipvs_core::time::Instant| {
            u64::try_from(t.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
        };
        let proto = |p: Protocol| match p {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        let mut out = Vec::new();
        for t in ipvs.conns().templates(now) {
            let (p, vaddr) = match t.key.service {
                ipvs_core::conn::TemplateService::Port {
                    proto: p,
                    vaddr,
                    vport,
                } => (proto(p), SocketAddrV4::new(vaddr, vport)),
                ipvs_core::conn::TemplateService::Fwmark(m) => {
                    ("ip", SocketAddrV4::new(Ipv4Addr::from(m), 0))
                }
            };
            out.push(ConnView {
                proto: p.to_owned(),
                client: SocketAddrV4::new(t.key.client, 0),
                vaddr,
                server: dest(t.dest),
                state: "NONE".to_owned(),
                expires_ms: left(t.expires),
            });
        }
        for c in ipvs.conns().conns(now) {
            out.push(ConnView {
                proto: proto(c.key.proto).to_owned(),
                client: SocketAddrV4::new(c.key.caddr, c.key.cport),
                vaddr: SocketAddrV4::new(c.key.vaddr, c.key.vport),
                server: dest(c.dest),
                state: c.state.name().to_owned(),
                expires_ms: left(c.expires),
            });
        }
        ConnectionsView { connections: out }
    }

    /// `GET /v1/table`: what the engine holds ([`State::actual`]), with its counters.
    fn table_view(&self, engine: &Engine, counters: bool) -> TableView {
        let totals = counters.then(|| engine.services_stats());
        let services = self
            .actual
            .services
            .iter()
            .map(|s| {
                let table = engine.ipvs().services().get(&s.key);
                let servers = s
                    .dests
                    .iter()
                    .map(|d| {
                        let dest = table.and_then(|t| t.find_dest(d.addr, d.port));
                        TableServerView {
                            address: SocketAddrV4::new(d.addr, d.port),
                            method: method_name(d.method).to_owned(),
                            weight: dest.map_or(d.weight, |x| x.weight()),
                            upper: d.upper,
                            lower: d.lower,
                            active: dest.map_or(0, |x| x.active_conns()),
                            inactive: dest.map_or(0, |x| x.inactive_conns()),
                            persistent: dest.map_or(0, |x| x.persist_conns()),
                            stats: counters.then(|| {
                                stats_view(
                                    dest.and_then(|x| engine.dest_stats(x.id()))
                                        .unwrap_or_default(),
                                )
                            }),
                            rates: counters.then(|| {
                                rates_view(
                                    dest.map(|x| self.rates.dest(x.id())).unwrap_or_default(),
                                )
                            }),
                        }
                    })
                    .collect();
                TableServiceView {
                    id: ServiceId(s.key),
                    scheduler: s.scheduler.name().to_owned(),
                    flags: s.sched_flags.iter().map(|f| f.name().to_owned()).collect(),
                    persistent: s.persistent,
                    netmask: s.pmask,
                    stats: totals
                        .as_ref()
                        .map(|t| stats_view(t.get(&s.key).copied().unwrap_or_default())),
                    rates: counters.then(|| rates_view(self.rates.service(&s.key))),
                    servers,
                }
            })
            .collect();
        TableView {
            conn_capacity: engine.ipvs().conns().max_entries(),
            services,
        }
    }

    fn find(&self, id: &ServiceId) -> Result<&DesiredService, OpError> {
        self.director
            .configured()
            .services
            .iter()
            .find(|s| s.key == id.0)
            .ok_or_else(|| OpError::NotFound(CommandError::UnknownService(*id).to_string()))
    }

    fn service_view(
        &self,
        s: &DesiredService,
        engine: &Engine,
        total: ipvs_core::engine::TrafficStats,
    ) -> ServiceView {
        let table = engine.ipvs().services().get(&s.key);
        let mut servers: Vec<ServerView> = s
            .dests
            .iter()
            .map(|d| {
                let addr = SocketAddrV4::new(d.addr, d.port);
                let h = self.director.health(&s.key, addr);
                let mut v = server_view(engine, &self.rates, table, addr, false);
                v.name = d.name.clone();
                v.upper = d.upper;
                v.lower = d.lower;
                v.method = method_name(d.method).to_owned();
                v.config_weight = d.weight;
                v.weight = h.weight.unwrap_or(d.weight);
                v.state = h.state;
                v.reason = h.reason;
                v
            })
            .collect();
        let sorry_active = self.director.sorry_active(&s.key);
        if let Some(sorry) = self.director.sorry_dest(s) {
            let addr = SocketAddrV4::new(sorry.addr, sorry.port);
            let mut v = server_view(engine, &self.rates, table, addr, true);
            v.method = method_name(sorry.method).to_owned();
            v.config_weight = 1;
            v.weight = 1;
            v.state = if sorry_active {
                ServerState::Up
            } else {
                ServerState::Down
            };
            v.reason = if sorry_active {
                "no real server is up".into()
            } else {
                "a real server is up".into()
            };
            servers.push(v);
        }
        ServiceView {
            id: ServiceId(s.key),
            name: s.name.clone(),
            vip: s.vip,
            scheduler: s.scheduler.name().to_owned(),
            flags: s.sched_flags.iter().map(|f| f.name().to_owned()).collect(),
            persistent: s.persistent,
            netmask: s.pmask,
            sorry_active,
            servers,
            stats: stats_view(total),
            rates: rates_view(self.rates.service(&s.key)),
        }
    }
}

/// Figures the worker does not own, for `/v1/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusExtra {
    /// Nannies running.
    pub nannies_running: usize,
    /// API requests refused.
    pub api_errors: u64,
}

fn timeouts_view(engine: &Engine) -> TimeoutsView {
    let (tcp, tcpfin, udp) = engine.ipvs().conns().timeouts().ipvsadm_triple();
    TimeoutsView { tcp, tcpfin, udp }
}

fn stats_view(st: ipvs_core::engine::TrafficStats) -> StatsView {
    StatsView {
        conns: st.conns,
        in_pkts: st.in_pkts,
        out_pkts: st.out_pkts,
        in_bytes: st.in_bytes,
        out_bytes: st.out_bytes,
    }
}

fn method_name(m: ForwardMethod) -> &'static str {
    match m {
        ForwardMethod::Masq => "masq",
        ForwardMethod::Route => "route",
        ForwardMethod::Tunnel => "tunnel",
    }
}

fn rates_view(r: crate::lvsadm::table::Rates) -> RatesView {
    RatesView {
        cps: r.cps,
        in_pps: r.inpps,
        out_pps: r.outpps,
        in_bps: r.inbps,
        out_bps: r.outbps,
    }
}

fn server_view(
    engine: &Engine,
    rates: &RateBook,
    table: Option<&ipvs_core::service::Service>,
    addr: SocketAddrV4,
    sorry: bool,
) -> ServerView {
    let dest = table.and_then(|t| t.find_dest(*addr.ip(), addr.port()));
    let st = dest
        .and_then(|d| engine.dest_stats(d.id()))
        .unwrap_or_default();
    ServerView {
        address: addr,
        name: String::new(),
        method: String::new(),
        config_weight: 0,
        weight: 0,
        state: ServerState::Up,
        reason: String::new(),
        sorry,
        in_table: dest.is_some(),
        table_weight: dest.map(|d| d.weight()),
        active_conns: dest.map_or(0, |d| d.active_conns()),
        inactive_conns: dest.map_or(0, |d| d.inactive_conns()),
        persistent_conns: dest.map_or(0, |d| d.persist_conns()),
        upper: 0,
        lower: 0,
        stats: stats_view(st),
        rates: rates_view(dest.map(|d| rates.dest(d.id())).unwrap_or_default()),
    }
}
