//! The one model of the running director: what lvs.cf asks for, what the health checkers
//! report, run-time changes (ipvsadm's verbs through lvsadm and the API, [`runtime`]) and
//! the HA role. It answers [`Director::desired`],
//! the IPVS table the engine should hold; lvsd's worker diffs that against what the engine
//! and the steering maps hold and applies the difference (`daemon`).
//!
//! Every change is a [`Command`]; nothing else mutates the model. Rules:
//! - a configured, active real server is in the table unless its state is
//!   [`ServerState::Down`]; [`ServerState::Quiesced`] keeps it with weight 0 (existing
//!   connections go on, no new ones); [`ServerState::Up`] uses the weight last reported
//!   (nanny's slow start and load monitor) or else the configured one;
//! - a server nobody has reported on yet counts as up ("not checked yet"): a restarted lvsd
//!   on an active director keeps forwarding, and nanny takes a dead server out at its first
//!   failed probe;
//! - `sorry_server` is in the table, with weight 1 and the service's forwarding method, while
//!   no real server of the service is up (Piranha's intent, lvsd.c `checkClientMonitor`,
//!   which in 0.8.6 never worked); it leaves as soon as one is up again;
//! - a reload keeps the health of every real server that is still configured, with the same
//!   (service, address, port), so a server its nanny holds down stays down;
//! - the role (set by pulse) decides whether the desired table is also *steered*: a standby
//!   director holds the same table and its nannies probe, but no packet reaches its engine,
//!   so a takeover is one steering update on a table that is already healthy.
//!
//! Pure: no I/O, no clock, never panics.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;

use ipvs_core::service::ServiceKey;

mod runtime;

use crate::control::api::{
    MAX_WEIGHT, Role, ServerPatch, ServerSpec, ServerState, ServiceId, ServiceSpec,
};
use crate::desired::{DesiredDest, DesiredTable, desired_table};
use crate::lvscf::Config;

/// A real server's health as last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Up, down or quiesced.
    pub state: ServerState,
    /// The weight asked for at run time, if any.
    pub weight: Option<u32>,
    /// Why (the probe's message, or "not checked yet").
    pub reason: String,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            state: ServerState::Up,
            weight: None,
            reason: "not checked yet".to_owned(),
        }
    }
}

/// One change to the model.
#[derive(Debug, Clone)]
pub enum Command {
    /// A health report or an operator's order for one real server (`PATCH …/servers/…`).
    SetServer {
        /// The service.
        service: ServiceKey,
        /// The real server as the engine holds it (`RIP:RPORT`).
        server: SocketAddrV4,
        /// What changes.
        patch: ServerPatch,
    },
    /// A new configuration (SIGHUP).
    Reload(Box<Config>),
    /// A new configuration whose model was built off the worker thread
    /// ([`Director::new`] for the new file, the costly part of [`Command::Reload`] on a big
    /// table): as `Reload`, the health of every server still configured and the role carry
    /// over, run-time changes are undone.
    ReloadPrepared(Box<Director>),
    /// pulse switches the director between active and standby.
    SetRole(Role),
    /// `-A`: a new virtual service (run time; [`runtime`]).
    AddService(ServiceSpec),
    /// `-E`: new scheduler, flags or persistence for a service.
    EditService(ServiceSpec),
    /// `-D`.
    DeleteService(ServiceId),
    /// `-C`: every service.
    Clear,
    /// `-a`.
    AddServer(ServiceId, ServerSpec),
    /// `-e`.
    EditServer(ServiceId, ServerSpec),
    /// `-d`.
    DeleteServer(ServiceId, SocketAddrV4),
}

/// Why a command was refused (the model is unchanged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No such virtual service in the running configuration.
    #[error("no virtual service {0}")]
    UnknownService(ServiceId),
    /// The service has no such real server.
    #[error("virtual service {service} has no real server {server}")]
    UnknownServer {
        /// The service.
        service: ServiceId,
        /// The server asked for.
        server: SocketAddrV4,
    },
    /// A weight above ipvsadm's range.
    #[error("weight {0} is out of range (0..=65535)")]
    WeightOutOfRange(u32),
    /// `-A` for a service that exists.
    #[error("virtual service {0} already exists")]
    ServiceExists(ServiceId),
    /// `-a` for a real server the service has.
    #[error("virtual service {service} already has real server {server}")]
    ServerExists {
        /// The service.
        service: ServiceId,
        /// The server.
        server: SocketAddrV4,
    },
    /// A scheduler the engine does not have.
    #[error("unknown scheduler {0:?}")]
    UnknownScheduler(String),
    /// A scheduler flag the scheduler does not take.
    #[error("scheduler flag {0:?} is not one of the {1} scheduler's")]
    BadFlag(String, &'static str),
    /// A forwarding method other than masq, route, tunnel.
    #[error("unknown forwarding method {0:?} (masq, route or tunnel)")]
    UnknownMethod(String),
}

/// Something that changed, for the log (one line each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A real server's state changed.
    ServerState {
        /// Service section name.
        service: String,
        /// The server.
        server: SocketAddrV4,
        /// New state.
        state: ServerState,
        /// Why.
        reason: String,
    },
    /// The role changed.
    Role(Role),
    /// A run-time change to the table (lvsadm, the API).
    Runtime(String),
    /// A reload put lvs.cf's table back over this many run-time changes.
    RuntimeUndone(usize),
    /// A real server's run-time weight changed.
    ServerWeight {
        /// Service section name.
        service: String,
        /// The server.
        server: SocketAddrV4,
        /// New weight.
        weight: u32,
    },
}

/// The model.
#[derive(Debug, Clone)]
pub struct Director {
    file: String,
    config: Config,
    base: DesiredTable,
    /// Each service's sorry server, computed with `base` (looked up on every sync).
    sorry: BTreeMap<ServiceKey, DesiredDest>,
    health: BTreeMap<(ServiceKey, SocketAddrV4), Health>,
    role: Role,
    /// Run-time changes since the file was loaded.
    runtime: usize,
}

impl Director {
    /// The director for `config` (read from `file`), every server not checked yet.
    pub fn new(file: &str, config: Config) -> Director {
        let base = desired_table(file, &config);
        let sorry = sorry_table(&config, &base);
        Director {
            file: file.to_owned(),
            config,
            base,
            sorry,
            health: BTreeMap::new(),
            role: Role::Active,
            runtime: 0,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configuration file's name.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// What lvs.cf asks for when every real server is healthy.
    pub fn configured(&self) -> &DesiredTable {
        &self.base
    }

    /// The health of one configured real server (default when never reported).
    pub fn health(&self, service: &ServiceKey, server: SocketAddrV4) -> Health {
        self.health
            .get(&(*service, server))
            .cloned()
            .unwrap_or_default()
    }

    /// Applies `cmd`. On error nothing changed.
    pub fn apply(&mut self, cmd: Command) -> Result<Vec<Event>, CommandError> {
        match cmd {
            Command::SetServer {
                service,
                server,
                patch,
            } => self.set_server(service, server, patch),
            Command::Reload(config) => {
                let next = Director::new(&self.file, *config);
                Ok(self.adopt(next))
            }
            Command::ReloadPrepared(next) => Ok(self.reload_prepared(*next).0),
            Command::AddService(spec) => self.add_service(spec),
            Command::EditService(spec) => self.edit_service(spec),
            Command::DeleteService(id) => self.delete_service(id),
            Command::Clear => Ok(self.clear()),
            Command::AddServer(id, spec) => self.add_server(id, spec),
            Command::EditServer(id, spec) => self.edit_server(id, spec),
            Command::DeleteServer(id, server) => self.delete_server(id, server),
            Command::SetRole(role) => {
                let changed = role != self.role;
                self.role = role;
                Ok(if changed {
                    vec![Event::Role(role)]
                } else {
                    Vec::new()
                })
            }
        }
    }

    /// Active (steered, forwarding) or standby (programmed and probed, not steered).
    pub fn role(&self) -> Role {
        self.role
    }

    fn set_server(
        &mut self,
        key: ServiceKey,
        server: SocketAddrV4,
        patch: ServerPatch,
    ) -> Result<Vec<Event>, CommandError> {
        let svc = self
            .base
            .services
            .iter()
            .find(|s| s.key == key)
            .ok_or(CommandError::UnknownService(ServiceId(key)))?;
        if !svc
            .dests
            .iter()
            .any(|d| SocketAddrV4::new(d.addr, d.port) == server)
        {
            return Err(CommandError::UnknownServer {
                service: ServiceId(key),
                server,
            });
        }
        if let Some(w) = patch.weight.filter(|w| *w > MAX_WEIGHT) {
            return Err(CommandError::WeightOutOfRange(w));
        }
        let name = svc.name.clone();
        let h = self.health.entry((key, server)).or_default();
        let mut events = Vec::new();
        if let Some(state) = patch.state {
            let reason = patch.reason.clone().unwrap_or_default();
            if state != h.state {
                events.push(Event::ServerState {
                    service: name.clone(),
                    server,
                    state,
                    reason: reason.clone(),
                });
            }
            h.state = state;
            h.reason = reason;
        } else if let Some(r) = patch.reason {
            h.reason = r;
        }
        if let Some(w) = patch.weight {
            if h.weight != Some(w) {
                events.push(Event::ServerWeight {
                    service: name,
                    server,
                    weight: w,
                });
            }
            h.weight = Some(w);
        }
        Ok(events)
    }

    /// [`Command::ReloadPrepared`], returning also a director that holds the configuration
    /// and table replaced, so that the caller frees them where it costs nothing (lvsd's
    /// reload thread, not its worker).
    pub fn reload_prepared(&mut self, mut next: Director) -> (Vec<Event>, Director) {
        let events = self.adopt_health(&next);
        std::mem::swap(&mut self.config, &mut next.config);
        std::mem::swap(&mut self.base, &mut next.base);
        std::mem::swap(&mut self.sorry, &mut next.sorry);
        (events, next)
    }

    /// Takes `next`'s configuration, table and sorry servers (a reload); keeps the file name,
    /// the role and the health of the servers `next` still has.
    fn adopt(&mut self, next: Director) -> Vec<Event> {
        let events = self.adopt_health(&next);
        self.sorry = next.sorry;
        self.config = next.config;
        self.base = next.base;
        events
    }

    /// The health of the servers `next` no longer has is forgotten; run-time changes are
    /// undone (counted in the event).
    fn adopt_health(&mut self, next: &Director) -> Vec<Event> {
        let still: std::collections::BTreeSet<(ServiceKey, SocketAddrV4)> = next
            .base
            .services
            .iter()
            .flat_map(|s| {
                s.dests
                    .iter()
                    .map(move |d| (s.key, SocketAddrV4::new(d.addr, d.port)))
            })
            .collect();
        self.health.retain(|k, _| still.contains(k));
        let undone = std::mem::take(&mut self.runtime);
        if undone > 0 {
            vec![Event::RuntimeUndone(undone)]
        } else {
            Vec::new()
        }
    }

    /// Whether service `key`'s sorry server is in the desired table.
    pub fn sorry_active(&self, key: &ServiceKey) -> bool {
        self.base
            .services
            .iter()
            .find(|s| s.key == *key)
            .is_some_and(|s| self.sorry_dest(s).is_some() && !self.any_up(s))
    }

    fn any_up(&self, s: &crate::desired::DesiredService) -> bool {
        s.dests.iter().any(|d| {
            self.health
                .get(&(s.key, SocketAddrV4::new(d.addr, d.port)))
                .is_none_or(|h| h.state == ServerState::Up)
        })
    }

    /// The sorry server of a service as a destination, if configured (and not also one of
    /// its real servers).
    pub fn sorry_dest(&self, s: &crate::desired::DesiredService) -> Option<DesiredDest> {
        self.sorry.get(&s.key).cloned()
    }

    /// The table the engine should hold: lvs.cf ∧ health (∧ later runtime changes).
    pub fn desired(&self) -> DesiredTable {
        let mut t = self.base.clone();
        t.warnings.clear();
        for s in &mut t.services {
            let key = s.key;
            let sorry = if self.any_up(s) {
                None
            } else {
                self.sorry.get(&key).cloned()
            };
            s.dests.retain_mut(|d| {
                let Some(h) = self.health.get(&(key, SocketAddrV4::new(d.addr, d.port))) else {
                    return true; // not checked yet: up with its configured weight
                };
                match h.state {
                    ServerState::Down => false,
                    ServerState::Quiesced => {
                        d.weight = 0;
                        true
                    }
                    ServerState::Up => {
                        d.weight = h.weight.unwrap_or(d.weight);
                        true
                    }
                }
            });
            s.dests.extend(sorry);
        }
        t
    }
}

/// The sorry server of every service that has one (and does not list it as a real server):
/// weight 1, the global forwarding method, the service's port (Piranha's `-a … -w 1`).
fn sorry_table(config: &Config, base: &DesiredTable) -> BTreeMap<ServiceKey, DesiredDest> {
    let mut out = BTreeMap::new();
    for (v, s) in config
        .active_virtuals()
        .filter_map(|v| Some((v, base.services.iter().find(|s| s.line == v.line)?)))
    {
        let Some(addr) = v.sorry_server else { continue };
        let port = match s.key {
            ServiceKey::Inet { port, .. } => port,
            ServiceKey::Fwmark(_) => 0,
        };
        if s.dests.iter().any(|d| d.addr == addr && d.port == port) {
            continue;
        }
        out.insert(
            s.key,
            DesiredDest {
                addr,
                port,
                method: config.global.network,
                weight: 1,
                upper: 0,
                lower: 0,
                name: String::new(),
                line: v.lines.get("sorry_server").copied().unwrap_or(v.line),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvscf::{StaticLookup, parse_str};
    use std::net::Ipv4Addr;

    const CF: &str = "service = lvs\nprimary = 198.18.0.2\nnetwork = nat\n\
        nat_router = 198.19.0.254 eth1:1\n\
        virtual web {\n active = 1\n address = 198.18.0.10 eth0:1\n port = 80\n\
        sorry_server = 198.19.0.99\n\
        server a {\n address = 198.19.0.11\n active = 1\n weight = 3\n }\n\
        server b {\n address = 198.19.0.12\n active = 1\n weight = 1\n }\n}\n";

    fn director(text: &str) -> Director {
        let cfg = parse_str("lvs.cf", text, &StaticLookup::default()).expect("valid");
        Director::new("lvs.cf", cfg)
    }

    fn web() -> ServiceKey {
        ServiceKey::tcp(Ipv4Addr::new(198, 18, 0, 10), 80)
    }

    fn rs(last: u8) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, last), 80)
    }

    fn set(d: &mut Director, last: u8, state: Option<ServerState>, weight: Option<u32>) {
        d.apply(Command::SetServer {
            service: web(),
            server: rs(last),
            patch: ServerPatch {
                state,
                weight,
                reason: Some("test".into()),
            },
        })
        .expect("known server");
    }

    fn weights(d: &Director) -> Vec<(u8, u32)> {
        d.desired().services[0]
            .dests
            .iter()
            .map(|x| (x.addr.octets()[3], x.weight))
            .collect()
    }

    #[test]
    fn unchecked_servers_are_up_with_their_configured_weight() {
        let d = director(CF);
        assert_eq!(weights(&d), [(11, 3), (12, 1)]);
        assert!(!d.sorry_active(&web()));
    }

    #[test]
    fn down_removes_quiesced_zeroes_weight_reports_set_weight() {
        let mut d = director(CF);
        set(&mut d, 11, Some(ServerState::Down), None);
        assert_eq!(weights(&d), [(12, 1)]);
        set(&mut d, 12, Some(ServerState::Quiesced), None);
        // No server up: the sorry server joins, the quiesced one keeps its connections.
        assert_eq!(weights(&d), [(12, 0), (99, 1)]);
        assert!(d.sorry_active(&web()));
        set(&mut d, 11, Some(ServerState::Up), Some(2));
        assert_eq!(weights(&d), [(11, 2), (12, 0)]);
        assert!(!d.sorry_active(&web()));
    }

    #[test]
    fn unknown_services_servers_and_weights_are_refused_without_change() {
        let mut d = director(CF);
        let before = d.desired();
        let e = d.apply(Command::SetServer {
            service: ServiceKey::tcp(Ipv4Addr::new(198, 18, 0, 11), 80),
            server: rs(11),
            patch: ServerPatch::default(),
        });
        assert!(matches!(e, Err(CommandError::UnknownService(_))));
        let e = d.apply(Command::SetServer {
            service: web(),
            server: rs(13),
            patch: ServerPatch::default(),
        });
        assert!(matches!(e, Err(CommandError::UnknownServer { .. })));
        let e = d.apply(Command::SetServer {
            service: web(),
            server: rs(11),
            patch: ServerPatch {
                state: Some(ServerState::Down),
                weight: Some(70000),
                reason: None,
            },
        });
        assert_eq!(e, Err(CommandError::WeightOutOfRange(70000)));
        assert_eq!(d.desired(), before);
    }

    #[test]
    fn events_only_for_real_changes() {
        let mut d = director(CF);
        let ev = d
            .apply(Command::SetServer {
                service: web(),
                server: rs(11),
                patch: ServerPatch {
                    state: Some(ServerState::Up),
                    weight: None,
                    reason: None,
                },
            })
            .expect("ok");
        assert!(ev.is_empty(), "up → up is no event: {ev:?}");
        let ev = d
            .apply(Command::SetServer {
                service: web(),
                server: rs(11),
                patch: ServerPatch {
                    state: Some(ServerState::Down),
                    weight: Some(5),
                    reason: Some("connect refused".into()),
                },
            })
            .expect("ok");
        assert_eq!(ev.len(), 2, "{ev:?}");
    }

    #[test]
    fn the_role_changes_only_by_command_and_reports_once() {
        let mut d = director(CF);
        assert_eq!(d.role(), Role::Active);
        let ev = d.apply(Command::SetRole(Role::Standby)).expect("ok");
        assert_eq!(ev, [Event::Role(Role::Standby)]);
        assert!(
            d.apply(Command::SetRole(Role::Standby))
                .expect("ok")
                .is_empty()
        );
        // The table itself does not depend on the role (only its steering does).
        assert_eq!(weights(&d), [(11, 3), (12, 1)]);
    }

    #[test]
    fn reload_keeps_health_of_unchanged_servers_only() {
        let mut d = director(CF);
        set(&mut d, 11, Some(ServerState::Down), None);
        set(&mut d, 12, Some(ServerState::Down), None);
        // b moves to port 8080: a different real server, not checked yet.
        let text = CF.replace(
            "server b {\n address = 198.19.0.12\n",
            "server b {\n address = 198.19.0.12\n port = 8080\n",
        );
        let cfg = parse_str("lvs.cf", &text, &StaticLookup::default()).expect("valid");
        d.apply(Command::Reload(Box::new(cfg))).expect("reload");
        let t = d.desired();
        let dests: Vec<SocketAddrV4> = t.services[0]
            .dests
            .iter()
            .map(|x| SocketAddrV4::new(x.addr, x.port))
            .collect();
        assert_eq!(
            dests,
            [SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 12), 8080)]
        );
    }

    #[test]
    fn a_prepared_reload_is_the_same_as_a_reload_and_hands_back_the_old_table() {
        let text = CF.replace("weight = 3", "weight = 5");
        let cfg = parse_str("lvs.cf", &text, &StaticLookup::default()).expect("valid");
        let mut plain = director(CF);
        set(&mut plain, 12, Some(ServerState::Down), None);
        let mut prepared = plain.clone();
        let a = plain
            .apply(Command::Reload(Box::new(cfg.clone())))
            .expect("reload");
        let (b, old) = prepared.reload_prepared(Director::new("lvs.cf", cfg));
        assert_eq!(a, b);
        assert_eq!(plain.desired(), prepared.desired());
        // b is still held down; a has its new weight.
        assert_eq!(weights(&prepared), [(11, 5)]);
        assert_eq!(prepared.health(&web(), rs(12)).state, ServerState::Down);
        // The director handed back holds the replaced configuration.
        assert_eq!(old.configured().services[0].dests[0].weight, 3);
    }
}
