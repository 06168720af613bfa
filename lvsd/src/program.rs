//! Programming the engine: `diff(current, desired) -> Vec<Change>` and [`apply`].
//!
//! One change type serves start-up (diff against the empty table), SIGHUP reload (diff
//! against what was applied last) and, later, the control API and nanny's reports. Unlike
//! Piranha's lvsd, a reload applies *every* difference:
//!
//! - a service present only in the new file is added, one gone from it is removed;
//! - a service in both keeps its connections; a changed scheduler, scheduler flags or
//!   persistence is an edit (Piranha never issued `ipvsadm -E`, so such changes needed a
//!   restart);
//! - real servers are matched by (address, port): added, removed, or edited in place when
//!   the weight or forwarding method changed (Piranha left changed servers untouched and
//!   tore the whole service down when one server disappeared).
//!
//! Order inside the returned list: removals first (services, then real servers), then edits,
//! then additions, so that an apply never meets a duplicate. Services are matched by the
//! engine's [`ServiceKey`] (protocol, VIP, port, or fwmark), never by section name.
//!
//! Pure except for [`apply`], which only touches the [`Ipvs`] it is given.

use std::net::Ipv4Addr;
use std::time::Duration;

use ipvs_core::ipvs::{Ipvs, IpvsError};
use ipvs_core::service::{DestConfig, Persistence};
use ipvs_core::types::{SchedFlag, SchedulerKind};

use crate::desired::{DesiredDest, DesiredService, DesiredTable, ServiceKey};

/// One administrative change to the engine (the ipvsadm verbs `-A -E -D -a -e -d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `-A`: a new virtual service.
    AddService {
        /// Service key.
        key: ServiceKey,
        /// Scheduler.
        scheduler: SchedulerKind,
        /// Scheduler flags.
        flags: Vec<SchedFlag>,
        /// Persistence, if any.
        persistence: Option<Persistence>,
    },
    /// `-E`: new scheduler, flags or persistence for an existing service.
    EditService {
        /// Service key.
        key: ServiceKey,
        /// Scheduler.
        scheduler: SchedulerKind,
        /// Scheduler flags.
        flags: Vec<SchedFlag>,
        /// Persistence, if any.
        persistence: Option<Persistence>,
    },
    /// `-D`.
    RemoveService {
        /// Service key.
        key: ServiceKey,
    },
    /// `-a`.
    AddDest {
        /// Service key.
        service: ServiceKey,
        /// The real server.
        dest: DestConfig,
    },
    /// `-e`: new weight or method for an existing real server.
    EditDest {
        /// Service key.
        service: ServiceKey,
        /// The real server.
        dest: DestConfig,
    },
    /// `-d`.
    RemoveDest {
        /// Service key.
        service: ServiceKey,
        /// Real-server address.
        addr: Ipv4Addr,
        /// Real-server port.
        port: u16,
    },
}

/// ipvsadm's words for a change (`-A -t 198.18.0.10:80 -s wlc`, `-e -t … -r … -m -w 3`),
/// one log line each on reload.
impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let svc = |k: &ServiceKey| match *k {
            ServiceKey::Inet {
                protocol,
                addr,
                port,
            } => {
                let p = match protocol {
                    ipvs_core::types::Protocol::Tcp => "-t",
                    ipvs_core::types::Protocol::Udp => "-u",
                };
                format!("{p} {addr}:{port}")
            }
            ServiceKey::Fwmark(m) => format!("-f {m}"),
        };
        let service = |f: &mut std::fmt::Formatter<'_>,
                       verb: &str,
                       key: &ServiceKey,
                       scheduler: &SchedulerKind,
                       flags: &[SchedFlag],
                       persistence: &Option<Persistence>| {
            write!(f, "{verb} {} -s {}", svc(key), scheduler.name())?;
            if !flags.is_empty() {
                let names: Vec<&str> = flags.iter().map(|x| x.name()).collect();
                write!(f, " -b {}", names.join(","))?;
            }
            if let Some(p) = persistence {
                write!(f, " -p {}", p.timeout.as_secs())?;
                if p.netmask != Persistence::DEFAULT_NETMASK {
                    write!(f, " -M {}", p.netmask)?;
                }
            }
            Ok(())
        };
        let dest =
            |f: &mut std::fmt::Formatter<'_>, verb: &str, key: &ServiceKey, d: &DestConfig| {
                let m = match d.method {
                    ipvs_core::types::ForwardMethod::Masq => "-m",
                    ipvs_core::types::ForwardMethod::Route => "-g",
                    ipvs_core::types::ForwardMethod::Tunnel => "-i",
                };
                write!(
                    f,
                    "{verb} {} -r {}:{} {m} -w {}",
                    svc(key),
                    d.addr,
                    d.port,
                    d.weight
                )?;
                if d.u_threshold > 0 {
                    write!(f, " -x {}", d.u_threshold)?;
                }
                if d.l_threshold > 0 {
                    write!(f, " -y {}", d.l_threshold)?;
                }
                Ok(())
            };
        match self {
            Change::AddService {
                key,
                scheduler,
                flags,
                persistence,
            } => service(f, "-A", key, scheduler, flags, persistence),
            Change::EditService {
                key,
                scheduler,
                flags,
                persistence,
            } => service(f, "-E", key, scheduler, flags, persistence),
            Change::RemoveService { key } => write!(f, "-D {}", svc(key)),
            Change::AddDest { service, dest: d } => dest(f, "-a", service, d),
            Change::EditDest { service, dest: d } => dest(f, "-e", service, d),
            Change::RemoveDest {
                service,
                addr,
                port,
            } => write!(f, "-d {} -r {addr}:{port}", svc(service)),
        }
    }
}

/// Why a change could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("cannot apply {change:?}: {source}")]
pub struct ApplyError {
    /// The change that failed.
    pub change: Change,
    /// The engine's reason.
    #[source]
    pub source: IpvsError,
}

/// The persistence of a desired service as the engine holds it.
pub fn persistence_of(s: &DesiredService) -> Option<Persistence> {
    s.persistent.map(|secs| Persistence {
        timeout: Duration::from_secs(u64::from(secs)),
        netmask: s.pmask.unwrap_or(Persistence::DEFAULT_NETMASK),
    })
}

/// The engine's view of a desired real server.
pub fn dest_config(d: &DesiredDest) -> DestConfig {
    DestConfig {
        weight: d.weight,
        u_threshold: d.upper,
        l_threshold: d.lower,
        ..DestConfig::new(d.addr, d.port, d.method)
    }
}

/// The changes that turn `current` into `desired`.
pub fn diff(current: &DesiredTable, desired: &DesiredTable) -> Vec<Change> {
    let old = current.by_key();
    let new = desired.by_key();
    let mut removals = Vec::new();
    let mut edits = Vec::new();
    let mut additions = Vec::new();

    for (key, _) in old.iter().filter(|(k, _)| !new.contains_key(*k)) {
        removals.push(Change::RemoveService { key: *key });
    }
    // Additions in file order, so that start-up programs services as the file lists them.
    for s in desired
        .services
        .iter()
        .filter(|s| !old.contains_key(&s.key))
    {
        additions.push(add_service(s));
        additions.extend(s.dests.iter().map(|d| Change::AddDest {
            service: s.key,
            dest: dest_config(d),
        }));
    }
    for s in &desired.services {
        let Some(was) = old.get(&s.key) else { continue };
        if was.scheduler != s.scheduler
            || was.sched_flags != s.sched_flags
            || persistence_of(was) != persistence_of(s)
        {
            edits.push(Change::EditService {
                key: s.key,
                scheduler: s.scheduler,
                flags: s.sched_flags.clone(),
                persistence: persistence_of(s),
            });
        }
        diff_dests(
            s.key,
            &was.dests,
            &s.dests,
            &mut removals,
            &mut edits,
            &mut additions,
        );
    }
    removals.into_iter().chain(edits).chain(additions).collect()
}

fn add_service(s: &DesiredService) -> Change {
    Change::AddService {
        key: s.key,
        scheduler: s.scheduler,
        flags: s.sched_flags.clone(),
        persistence: persistence_of(s),
    }
}

fn diff_dests(
    service: ServiceKey,
    old: &[DesiredDest],
    new: &[DesiredDest],
    removals: &mut Vec<Change>,
    edits: &mut Vec<Change>,
    additions: &mut Vec<Change>,
) {
    let find = |list: &[DesiredDest], d: &DesiredDest| {
        list.iter()
            .find(|o| o.addr == d.addr && o.port == d.port)
            .cloned()
    };
    for d in old.iter().filter(|d| find(new, d).is_none()) {
        removals.push(Change::RemoveDest {
            service,
            addr: d.addr,
            port: d.port,
        });
    }
    for d in new {
        match find(old, d) {
            None => additions.push(Change::AddDest {
                service,
                dest: dest_config(d),
            }),
            Some(o) if dest_config(&o) != dest_config(d) => edits.push(Change::EditDest {
                service,
                dest: dest_config(d),
            }),
            Some(_) => {}
        }
    }
}

/// What `ipvs` holds now, as a table `diff` understands: after a refused change, the next
/// diff starts from the engine's truth instead of from what was hoped for. Names, lines and
/// VIPs of fwmark services are taken from `like` where it has the service.
pub fn engine_table(ipvs: &Ipvs, like: &DesiredTable) -> DesiredTable {
    let known = like.by_key();
    let mut services: Vec<DesiredService> = ipvs
        .services()
        .iter()
        .map(|svc| {
            let key = svc.key();
            let model = known.get(&key);
            let persistence = svc.persistence().copied();
            DesiredService {
                key,
                vip: model.map_or_else(
                    || match key {
                        ServiceKey::Inet { addr, .. } => addr,
                        ServiceKey::Fwmark(_) => Ipv4Addr::UNSPECIFIED,
                    },
                    |m| m.vip,
                ),
                name: model.map(|m| m.name.clone()).unwrap_or_default(),
                line: model.map_or(0, |m| m.line),
                scheduler: svc.scheduler_kind(),
                sched_flags: svc.sched_flags().to_vec(),
                persistent: persistence
                    .map(|p| u32::try_from(p.timeout.as_secs()).unwrap_or(u32::MAX)),
                pmask: persistence
                    .map(|p| p.netmask)
                    .filter(|m| *m != Persistence::DEFAULT_NETMASK),
                dests: svc
                    .dests()
                    .iter()
                    .map(|d| {
                        let named = model.and_then(|m| {
                            m.dests
                                .iter()
                                .find(|x| x.addr == d.addr() && x.port == d.port())
                        });
                        DesiredDest {
                            addr: d.addr(),
                            port: d.port(),
                            method: d.method(),
                            weight: d.weight(),
                            upper: d.u_threshold(),
                            lower: d.l_threshold(),
                            name: named.map(|x| x.name.clone()).unwrap_or_default(),
                            line: named.map_or(0, |x| x.line),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    // File order where known, the engine's order after that.
    let order = |k: &ServiceKey| {
        like.services
            .iter()
            .position(|s| s.key == *k)
            .unwrap_or(usize::MAX)
    };
    services.sort_by_key(|s| order(&s.key));
    DesiredTable {
        services,
        warnings: Vec::new(),
    }
}

/// Applies `changes` in order; stops at the first failure and reports it. Changes before
/// the failing one stay applied (each is a complete, valid engine state on its own).
pub fn apply(ipvs: &mut Ipvs, changes: &[Change]) -> Result<(), ApplyError> {
    for change in changes {
        let result = match change {
            Change::AddService {
                key,
                scheduler,
                flags,
                persistence,
            } => ipvs.add_service(*key, *scheduler, flags, *persistence),
            Change::EditService {
                key,
                scheduler,
                flags,
                persistence,
            } => ipvs.edit_service(key, *scheduler, flags, *persistence),
            Change::RemoveService { key } => ipvs.remove_service(key),
            Change::AddDest { service, dest } => ipvs.add_dest(service, *dest).map(drop),
            Change::EditDest { service, dest } => ipvs.edit_dest(service, *dest).map(drop),
            Change::RemoveDest {
                service,
                addr,
                port,
            } => ipvs.remove_dest(service, *addr, *port),
        };
        result.map_err(|source| ApplyError {
            change: change.clone(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::desired_table;
    use crate::lvscf::{StaticLookup, parse_str};
    use ipvs_core::ipvs::IpvsConfig;

    fn table(text: &str) -> DesiredTable {
        let cfg = parse_str("t.cf", text, &StaticLookup::new()).expect("valid test config");
        desired_table("t.cf", &cfg)
    }

    const BASE: &str = "network = nat
virtual web {
    active = 1
    address = 198.18.0.10 eth0:1
    port = 80
    scheduler = wlc
    server a {
        address = 198.19.0.11
        active = 1
        weight = 2
    }
    server b {
        address = 198.19.0.12
        active = 1
    }
}
virtual dns {
    active = 1
    address = 198.18.0.10 eth0:1
    protocol = udp
    port = 53
    scheduler = rr
    server a {
        address = 198.19.0.11
        active = 1
    }
}
";

    fn web() -> ServiceKey {
        ServiceKey::tcp(Ipv4Addr::new(198, 18, 0, 10), 80)
    }

    #[test]
    fn start_up_adds_everything_in_file_order() {
        let changes = diff(&DesiredTable::default(), &table(BASE));
        let kinds: Vec<&str> = changes
            .iter()
            .map(|c| match c {
                Change::AddService { .. } => "A",
                Change::AddDest { .. } => "a",
                _ => "?",
            })
            .collect();
        assert_eq!(kinds, ["A", "a", "a", "A", "a"]);
        let mut ipvs = Ipvs::new(IpvsConfig::default());
        apply(&mut ipvs, &changes).expect("applies");
        let svc = ipvs.services().get(&web()).expect("web exists");
        assert_eq!(svc.dests().len(), 2);
        assert_eq!(ipvs.services().iter().count(), 2);
    }

    #[test]
    fn engine_table_reads_back_what_was_applied_and_recovers_a_partial_apply() {
        let want = table(&BASE.replace("scheduler = wlc", "scheduler = wlc\n    persistent = 30"));
        let mut ipvs = Ipvs::new(IpvsConfig::default());
        apply(&mut ipvs, &diff(&DesiredTable::default(), &want)).expect("applies");
        let back = engine_table(&ipvs, &want);
        assert!(diff(&back, &want).is_empty(), "{back:?}");
        assert_eq!(back.services[0].name, "web");

        // A change list refused halfway: the first service is in, the rest is not.
        let mut ipvs = Ipvs::new(IpvsConfig::default());
        let mut changes = diff(&DesiredTable::default(), &want);
        changes.insert(
            3,
            Change::RemoveDest {
                service: web(),
                addr: Ipv4Addr::new(192, 0, 2, 1),
                port: 80,
            },
        );
        assert!(apply(&mut ipvs, &changes).is_err());
        let actual = engine_table(&ipvs, &want);
        assert_eq!(actual.services.len(), 1);
        apply(&mut ipvs, &diff(&actual, &want)).expect("the rest applies");
        assert!(diff(&engine_table(&ipvs, &want), &want).is_empty());
    }

    #[test]
    fn identical_tables_need_no_change() {
        assert!(diff(&table(BASE), &table(BASE)).is_empty());
    }

    #[test]
    fn reload_applies_every_difference() {
        let edited = BASE
            .replace("scheduler = wlc", "scheduler = wrr\n    persistent = 60")
            .replace("weight = 2", "weight = 5")
            .replace("address = 198.19.0.12", "address = 198.19.0.13");
        let without_dns = match edited.find("virtual dns") {
            Some(i) => edited[..i].to_owned(),
            None => unreachable!("BASE has a dns section"),
        };
        let (old, new) = (table(BASE), table(&without_dns));
        let changes = diff(&old, &new);
        assert_eq!(
            changes,
            vec![
                Change::RemoveService {
                    key: ServiceKey::Inet {
                        protocol: ipvs_core::types::Protocol::Udp,
                        addr: Ipv4Addr::new(198, 18, 0, 10),
                        port: 53
                    }
                },
                Change::RemoveDest {
                    service: web(),
                    addr: Ipv4Addr::new(198, 19, 0, 12),
                    port: 80
                },
                Change::EditService {
                    key: web(),
                    scheduler: SchedulerKind::Wrr,
                    flags: vec![],
                    persistence: Some(Persistence {
                        timeout: Duration::from_secs(60),
                        netmask: Ipv4Addr::BROADCAST
                    }),
                },
                Change::EditDest {
                    service: web(),
                    dest: DestConfig {
                        weight: 5,
                        ..DestConfig::new(
                            Ipv4Addr::new(198, 19, 0, 11),
                            80,
                            ipvs_core::types::ForwardMethod::Masq
                        )
                    }
                },
                Change::AddDest {
                    service: web(),
                    dest: DestConfig::new(
                        Ipv4Addr::new(198, 19, 0, 13),
                        80,
                        ipvs_core::types::ForwardMethod::Masq
                    )
                },
            ]
        );

        // Applying start-up then the reload gives the same engine as starting from `new`.
        let mut ipvs = Ipvs::new(IpvsConfig::default());
        apply(&mut ipvs, &diff(&DesiredTable::default(), &old)).expect("start-up");
        let a_id = ipvs.services().get(&web()).expect("web").dests()[1].id();
        apply(&mut ipvs, &changes).expect("reload");
        let svc = ipvs.services().get(&web()).expect("web");
        assert_eq!(svc.scheduler_kind(), SchedulerKind::Wrr);
        let addrs: Vec<(Ipv4Addr, u32)> =
            svc.dests().iter().map(|d| (d.addr(), d.weight())).collect();
        assert!(addrs.contains(&(Ipv4Addr::new(198, 19, 0, 11), 5)));
        assert!(addrs.contains(&(Ipv4Addr::new(198, 19, 0, 13), 1)));
        assert_eq!(addrs.len(), 2);
        // The edited server kept its identity (its connections stay bound to it).
        assert!(svc.dests().iter().any(|d| d.id() == a_id));
        assert_eq!(ipvs.services().iter().count(), 1);
    }

    #[test]
    fn a_failing_change_is_reported() {
        let mut ipvs = Ipvs::new(IpvsConfig::default());
        let err =
            apply(&mut ipvs, &[Change::RemoveService { key: web() }]).expect_err("no such service");
        assert_eq!(err.change, Change::RemoveService { key: web() });
        assert!(err.to_string().contains("cannot apply"), "{err}");
    }
}
