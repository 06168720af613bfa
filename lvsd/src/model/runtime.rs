//! Run-time changes to the director: ipvsadm's verbs (`-A -E -D -C -a -e -d`) as lvsadm and
//! the API send them.
//!
//! They change the configured table ([`Director::configured`]) directly, as ipvsadm changes
//! the kernel's; nothing is written back to lvs.cf. **The file wins**: a reload (SIGHUP,
//! `POST /v1/reload`) rebuilds the table from lvs.cf, so every run-time change not also
//! made in the file is undone, and the reload's log names each change it applies (and says
//! how many run-time changes were made since the last load). That is keepalived's and
//! Piranha's behaviour for `ipvsadm` changes too, but said out loud instead of silent.
//!
//! A service or real server added at run time has no lvs.cf section, so no nanny checks it
//! (as with ipvsadm): it is up until someone says otherwise. One removed at run time loses
//! its nanny. An `-e` changes the configured weight and drops a weight nanny reported
//! (slow start, load monitor), so the new weight takes effect at once.

use std::net::{Ipv4Addr, SocketAddrV4};

use ipvs_core::service::ServiceKey;
use ipvs_core::types::{ForwardMethod, SchedFlag, SchedulerKind};

use super::{CommandError, Director, Event};
use crate::control::api::{MAX_WEIGHT, ServerSpec, ServiceId, ServiceSpec};
use crate::desired::{DesiredDest, DesiredService};

impl Director {
    /// Run-time changes made since the file was last loaded.
    pub fn runtime_changes(&self) -> usize {
        self.runtime
    }

    pub(super) fn add_service(&mut self, spec: ServiceSpec) -> Result<Vec<Event>, CommandError> {
        let key = spec.id.0;
        if self.base.services.iter().any(|s| s.key == key) {
            return Err(CommandError::ServiceExists(spec.id));
        }
        let (scheduler, sched_flags, persistent, pmask) = service_settings(&spec)?;
        let vip = match key {
            ServiceKey::Inet { addr, .. } => addr,
            ServiceKey::Fwmark(_) => Ipv4Addr::UNSPECIFIED,
        };
        self.base.services.push(DesiredService {
            key,
            vip,
            name: spec.id.to_string(),
            line: 0,
            scheduler,
            sched_flags,
            persistent,
            pmask,
            dests: Vec::new(),
        });
        Ok(self.noted(format!("service {} added ({})", spec.id, scheduler.name())))
    }

    pub(super) fn edit_service(&mut self, spec: ServiceSpec) -> Result<Vec<Event>, CommandError> {
        let (scheduler, sched_flags, persistent, pmask) = service_settings(&spec)?;
        let svc = self.service_mut(spec.id)?;
        svc.scheduler = scheduler;
        svc.sched_flags = sched_flags;
        svc.persistent = persistent;
        svc.pmask = pmask;
        Ok(self.noted(format!("service {} edited ({})", spec.id, scheduler.name())))
    }

    pub(super) fn delete_service(&mut self, id: ServiceId) -> Result<Vec<Event>, CommandError> {
        let before = self.base.services.len();
        self.base.services.retain(|s| s.key != id.0);
        if self.base.services.len() == before {
            return Err(CommandError::UnknownService(id));
        }
        self.health.retain(|(k, _), _| *k != id.0);
        self.sorry.remove(&id.0);
        Ok(self.noted(format!("service {id} deleted")))
    }

    pub(super) fn clear(&mut self) -> Vec<Event> {
        let n = self.base.services.len();
        self.base.services.clear();
        self.health.clear();
        self.sorry.clear();
        self.noted(format!("every service deleted ({n})"))
    }

    pub(super) fn add_server(
        &mut self,
        id: ServiceId,
        spec: ServerSpec,
    ) -> Result<Vec<Event>, CommandError> {
        let method = match spec.method.as_deref() {
            None => ForwardMethod::Route,
            Some(m) => method_of(m)?,
        };
        let weight = weight_of(spec.weight.unwrap_or(1))?;
        let (upper, lower) = (spec.upper.unwrap_or(0), spec.lower.unwrap_or(0));
        let svc = self.service_mut(id)?;
        let port = server_port(svc.key, spec.address.port(), method);
        let addr = *spec.address.ip();
        if svc.dests.iter().any(|d| d.addr == addr && d.port == port) {
            return Err(CommandError::ServerExists {
                service: id,
                server: SocketAddrV4::new(addr, port),
            });
        }
        svc.dests.push(DesiredDest {
            addr,
            port,
            method,
            weight,
            upper,
            lower,
            name: String::new(),
            line: 0,
        });
        let server = SocketAddrV4::new(addr, port);
        self.health.remove(&(id.0, server));
        Ok(self.noted(format!(
            "real server {server} added to {id} (weight {weight})"
        )))
    }

    pub(super) fn edit_server(
        &mut self,
        id: ServiceId,
        spec: ServerSpec,
    ) -> Result<Vec<Event>, CommandError> {
        let method = spec.method.as_deref().map(method_of).transpose()?;
        let weight = spec.weight.map(weight_of).transpose()?;
        let svc = self.service_mut(id)?;
        let key = svc.key;
        let i = find_dest(svc, spec.address).ok_or(CommandError::UnknownServer {
            service: id,
            server: spec.address,
        })?;
        let d = &mut svc.dests[i];
        let server = SocketAddrV4::new(d.addr, d.port);
        if let Some(m) = method {
            d.method = m;
        }
        if let Some(w) = weight {
            d.weight = w;
        }
        d.upper = spec.upper.unwrap_or(d.upper);
        d.lower = spec.lower.unwrap_or(d.lower);
        let weight = d.weight;
        if spec.weight.is_some()
            && let Some(h) = self.health.get_mut(&(key, server))
        {
            h.weight = None;
        }
        Ok(self.noted(format!(
            "real server {server} of {id} edited (weight {weight})"
        )))
    }

    pub(super) fn delete_server(
        &mut self,
        id: ServiceId,
        server: SocketAddrV4,
    ) -> Result<Vec<Event>, CommandError> {
        let svc = self.service_mut(id)?;
        let i = find_dest(svc, server).ok_or(CommandError::UnknownServer {
            service: id,
            server,
        })?;
        let d = svc.dests.remove(i);
        let held = SocketAddrV4::new(d.addr, d.port);
        self.health.remove(&(id.0, held));
        Ok(self.noted(format!("real server {held} deleted from {id}")))
    }

    fn service_mut(&mut self, id: ServiceId) -> Result<&mut DesiredService, CommandError> {
        self.base
            .services
            .iter_mut()
            .find(|s| s.key == id.0)
            .ok_or(CommandError::UnknownService(id))
    }

    fn noted(&mut self, what: String) -> Vec<Event> {
        self.runtime += 1;
        vec![Event::Runtime(what)]
    }
}

type Settings = (SchedulerKind, Vec<SchedFlag>, Option<u32>, Option<Ipv4Addr>);

fn service_settings(spec: &ServiceSpec) -> Result<Settings, CommandError> {
    let scheduler = SchedulerKind::from_name(&spec.scheduler)
        .ok_or_else(|| CommandError::UnknownScheduler(spec.scheduler.clone()))?;
    let mut flags = Vec::new();
    for f in &spec.flags {
        let flag = SchedFlag::from_name(f)
            .filter(|fl| scheduler.accepts_flag(*fl))
            .ok_or_else(|| CommandError::BadFlag(f.clone(), scheduler.name()))?;
        flags.push(flag);
    }
    let persistent = spec.persistent.filter(|p| *p > 0);
    let pmask = persistent
        .and(spec.netmask)
        .filter(|m| !m.is_unspecified() && *m != Ipv4Addr::BROADCAST);
    Ok((scheduler, flags, persistent, pmask))
}

fn method_of(m: &str) -> Result<ForwardMethod, CommandError> {
    match m {
        "masq" => Ok(ForwardMethod::Masq),
        "route" => Ok(ForwardMethod::Route),
        "tunnel" => Ok(ForwardMethod::Tunnel),
        other => Err(CommandError::UnknownMethod(other.to_owned())),
    }
}

fn weight_of(w: u32) -> Result<u32, CommandError> {
    if w > MAX_WEIGHT {
        Err(CommandError::WeightOutOfRange(w))
    } else {
        Ok(w)
    }
}

/// The real server `server` names in `svc`: exactly, or (as ipvsadm, whose default method
/// is direct routing) with the service's port when the port is 0 or held as the virtual
/// port.
fn find_dest(svc: &DesiredService, server: SocketAddrV4) -> Option<usize> {
    let at = |port: u16| {
        svc.dests
            .iter()
            .position(|d| d.addr == *server.ip() && d.port == port)
    };
    at(server.port()).or_else(|| at(server_port(svc.key, 0, ForwardMethod::Route)))
}

/// The real server's port as IPVS holds it: ipvsadm gives a server without a port (0) the
/// service's port, and direct routing and tunnelling always use the virtual port.
fn server_port(key: ServiceKey, port: u16, method: ForwardMethod) -> u16 {
    match key {
        ServiceKey::Inet { port: vport, .. } if port == 0 || method != ForwardMethod::Masq => vport,
        _ => port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvscf::{StaticLookup, parse_str};
    use crate::model::Command;

    const CF: &str = "service = lvs\nprimary = 198.18.0.2\nnetwork = nat\n\
        nat_router = 198.19.0.254 eth1:1\n\
        virtual web {\n active = 1\n address = 198.18.0.10 eth0:1\n port = 80\n\
        server a {\n address = 198.19.0.11\n active = 1\n weight = 3\n }\n}\n";

    fn director() -> Director {
        let cfg = parse_str("lvs.cf", CF, &StaticLookup::default()).expect("valid");
        Director::new("lvs.cf", cfg)
    }

    fn id(s: &str) -> ServiceId {
        s.parse().expect("service id")
    }

    fn spec(s: &str, sched: &str) -> ServiceSpec {
        ServiceSpec {
            id: id(s),
            scheduler: sched.to_owned(),
            flags: Vec::new(),
            persistent: None,
            netmask: None,
        }
    }

    fn server(addr: &str, method: Option<&str>, weight: Option<u32>) -> ServerSpec {
        ServerSpec {
            address: addr.parse().expect("address"),
            method: method.map(str::to_owned),
            weight,
            upper: None,
            lower: None,
        }
    }

    #[test]
    fn ipvsadm_verbs_change_the_table_and_the_reload_puts_the_file_back() {
        let mut d = director();
        let udp = id("udp:198.18.0.10:53");
        d.apply(Command::AddService(spec("udp:198.18.0.10:53", "rr")))
            .expect("-A");
        assert_eq!(
            d.apply(Command::AddService(spec("udp:198.18.0.10:53", "wlc"))),
            Err(CommandError::ServiceExists(udp))
        );
        d.apply(Command::AddServer(
            udp,
            server("198.19.0.21:0", Some("masq"), Some(2)),
        ))
        .expect("-a");
        let t = d.desired();
        let s = t.services.iter().find(|s| s.key == udp.0).expect("added");
        assert_eq!(s.scheduler, SchedulerKind::Rr);
        assert_eq!(
            (s.dests[0].port, s.dests[0].weight, s.dests[0].method),
            (53, 2, ForwardMethod::Masq),
            "port 0 takes the service's port"
        );
        let web = id("tcp:198.18.0.10:80");
        d.apply(Command::EditServer(
            web,
            server("198.19.0.11:80", None, Some(7)),
        ))
        .expect("-e");
        let w = |d: &Director| d.desired().services[0].dests[0].weight;
        assert_eq!(w(&d), 7);
        assert_eq!(d.runtime_changes(), 3);

        let cfg = parse_str("lvs.cf", CF, &StaticLookup::default()).expect("valid");
        let events = d.apply(Command::Reload(Box::new(cfg))).expect("reload");
        assert_eq!(events, vec![Event::RuntimeUndone(3)]);
        assert_eq!(d.runtime_changes(), 0);
        assert_eq!(w(&d), 3, "the file's weight is back");
        assert_eq!(
            d.desired().services.len(),
            1,
            "the run-time service is gone"
        );
    }

    #[test]
    fn refusals_change_nothing() {
        let mut d = director();
        let web = id("tcp:198.18.0.10:80");
        let before = d.desired();
        let cases = [
            Command::AddService(spec("tcp:198.18.0.10:443", "nope")),
            Command::EditService(spec("tcp:198.18.0.10:81", "rr")),
            Command::DeleteService(id("tcp:198.18.0.10:81")),
            Command::AddServer(web, server("198.19.0.11:80", Some("masq"), None)),
            Command::AddServer(web, server("198.19.0.12:80", Some("bounce"), None)),
            Command::AddServer(web, server("198.19.0.12:80", None, Some(70_000))),
            Command::EditServer(web, server("198.19.0.99:80", None, Some(1))),
            Command::DeleteServer(web, "198.19.0.99:80".parse().expect("addr")),
        ];
        for c in cases {
            let dbg = format!("{c:?}");
            assert!(d.apply(c).is_err(), "{dbg} was refused");
        }
        assert_eq!(d.desired(), before);
        assert_eq!(d.runtime_changes(), 0);
    }

    #[test]
    fn direct_routing_servers_are_found_by_address_whatever_the_port() {
        let mut d = director();
        let web = id("tcp:198.18.0.10:80");
        d.apply(Command::AddServer(
            web,
            server("198.19.0.12:8080", None, None),
        ))
        .expect("-a -g");
        let s = &d.desired().services[0];
        assert_eq!(s.dests[1].port, 80, "direct routing uses the virtual port");
        d.apply(Command::DeleteServer(
            web,
            "198.19.0.12:8080".parse().expect("addr"),
        ))
        .expect("-d finds it");
        d.apply(Command::Clear).expect("-C");
        assert!(d.desired().services.is_empty());
    }
}
