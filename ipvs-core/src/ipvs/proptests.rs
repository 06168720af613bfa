//! Property test: random new flows, packets in both directions, time advances and sweeps,
//! destination and service removals and re-adds, weight edits and sysctl flips, on a
//! small table (so it fills). After every step [`Ipvs::check_invariants`] must hold: each
//! destination's active / inactive / persistent counters equal what the connection table
//! holds for it (through removals and revivals), no accounting event was ever refused
//! (so counters never drifted or underflowed), and the connection table's own invariants.

use core::time::Duration;
use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::*;
use crate::conn::ConnTableConfig;
use crate::types::ForwardMethod;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const VIP2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
const NSVC: usize = 5;
const FLAGS: [TcpFlags; 6] = [
    TcpFlags::SYN,
    TcpFlags::ACK,
    TcpFlags::FIN,
    TcpFlags::RST,
    TcpFlags::NONE,
    TcpFlags::SYN,
];

fn svc_key(s: usize) -> ServiceKey {
    match s {
        0 => ServiceKey::tcp(VIP, 80),
        1 => ServiceKey::tcp(VIP, 443),
        2 => ServiceKey::Fwmark(7),
        3 => ServiceKey::udp(VIP, 53),
        _ => ServiceKey::tcp(VIP2, 0),
    }
}

fn add_service(ipvs: &mut Ipvs, s: usize) {
    let p = |secs, mask| {
        Some(Persistence {
            timeout: Duration::from_secs(secs),
            netmask: mask,
        })
    };
    let (kind, pers) = match s {
        0 => (SchedulerKind::Rr, None),
        1 => (SchedulerKind::Wlc, p(30, Ipv4Addr::new(255, 255, 255, 0))),
        2 => (SchedulerKind::Lc, p(20, Ipv4Addr::BROADCAST)),
        3 => (SchedulerKind::Wrr, None),
        _ => (SchedulerKind::Sh, p(40, Ipv4Addr::BROADCAST)),
    };
    // Exists already: fine, the op is a no-op then.
    let _ = ipvs.add_service(svc_key(s), kind, &[], pers);
}

fn dest_cfg(s: usize, d: usize, weight: u32) -> DestConfig {
    let method = match (s + d) % 3 {
        0 => ForwardMethod::Masq,
        1 => ForwardMethod::Route,
        _ => ForwardMethod::Tunnel,
    };
    let port = if s == 2 || s == 4 { 0 } else { 8000 + d as u16 };
    DestConfig::new(Ipv4Addr::new(10, 0, s as u8, d as u8 + 1), port, method)
        .with_weight(weight)
        .with_thresholds(if d == 0 { 3 } else { 0 }, 0)
}

fn flow(s: usize, client: u8, cport: u8, flags: usize) -> NewFlow {
    let caddr = Ipv4Addr::new(198, 51, client % 2, 1 + client / 2);
    let cport = 1000 + u16::from(cport);
    let (proto, vaddr, vport, fwmark) = match s {
        0 => (Protocol::Tcp, VIP, 80, 0),
        1 => (Protocol::Tcp, VIP, 443, 0),
        2 => {
            let proto = if cport % 2 == 0 {
                Protocol::Tcp
            } else {
                Protocol::Udp
            };
            (proto, VIP2, 8080, 7)
        }
        3 => (Protocol::Udp, VIP, 53, 0),
        4 => (Protocol::Tcp, VIP2, 9000 + (cport % 3), 0),
        _ => (Protocol::Tcp, VIP, 9999, 0),
    };
    NewFlow {
        key: ConnKey {
            proto,
            caddr,
            cport,
            vaddr,
            vport,
        },
        fwmark,
        // Mostly SYNs, so that connections pile up; the rest exercise NotSyn / sloppy_tcp.
        tcp_flags: if flags < 8 {
            TcpFlags::SYN
        } else {
            FLAGS[flags % FLAGS.len()]
        },
    }
}

#[derive(Debug, Clone)]
enum Op {
    New {
        svc: usize,
        client: u8,
        cport: u8,
        flags: usize,
    },
    In {
        pick: usize,
        flags: usize,
    },
    Out {
        pick: usize,
        flags: usize,
    },
    Advance {
        ms: u64,
    },
    Tick,
    RemoveDest {
        svc: usize,
        d: usize,
    },
    AddDest {
        svc: usize,
        d: usize,
        weight: u32,
    },
    Weight {
        svc: usize,
        d: usize,
        weight: u32,
    },
    RemoveService {
        svc: usize,
        re_add: bool,
    },
    AddService {
        svc: usize,
    },
    Sysctl {
        which: u8,
        on: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..NSVC + 1, 0u8..6, 0u8..4, 0usize..10)
            .prop_map(|(svc, client, cport, flags)| Op::New { svc, client, cport, flags }),
        6 => (any::<usize>(), 0usize..6).prop_map(|(pick, flags)| Op::In { pick, flags }),
        3 => (any::<usize>(), 0usize..6).prop_map(|(pick, flags)| Op::Out { pick, flags }),
        3 => prop_oneof![0u64..5_000, 0u64..90_000].prop_map(|ms| Op::Advance { ms }),
        2 => Just(Op::Tick),
        1 => (0..NSVC, 0usize..3).prop_map(|(svc, d)| Op::RemoveDest { svc, d }),
        1 => (0..NSVC, 0usize..3, 0u32..3)
            .prop_map(|(svc, d, weight)| Op::AddDest { svc, d, weight }),
        1 => (0..NSVC, 0usize..3, 0u32..3)
            .prop_map(|(svc, d, weight)| Op::Weight { svc, d, weight }),
        1 => (0..NSVC, any::<bool>())
            .prop_map(|(svc, re_add)| Op::RemoveService { svc, re_add }),
        1 => (0..NSVC).prop_map(|svc| Op::AddService { svc }),
        1 => (0u8..3, any::<bool>()).prop_map(|(which, on)| Op::Sysctl { which, on }),
    ]
}

/// A connection the test opened, and where its replies come from.
#[derive(Debug, Clone, Copy)]
struct Seen {
    key: ConnKey,
    daddr: Ipv4Addr,
    dport: u16,
}

fn check_forward(ipvs: &Ipvs, f: &Forward) -> Result<(), TestCaseError> {
    let d = ipvs.services().dest(f.dest);
    prop_assert!(d.is_some(), "forwarded to a dest that is not live: {f:?}");
    if let Some(d) = d {
        prop_assert_eq!(d.addr(), f.daddr);
    }
    prop_assert!(f.dport != 0);
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let cfg = IpvsConfig {
        conn_table: ConnTableConfig {
            max_entries: 24,
            ..ConnTableConfig::default()
        },
        ..IpvsConfig::default()
    };
    let mut ipvs = Ipvs::new(cfg);
    for s in 0..NSVC {
        add_service(&mut ipvs, s);
        for d in 0..3 {
            ipvs.add_dest(&svc_key(s), dest_cfg(s, d, 1))
                .expect("fresh service");
        }
    }
    let mut now = Instant::ZERO;
    let mut seen: Vec<Seen> = Vec::new();
    let mut attempts = 0u64;
    for op in ops {
        match op {
            Op::New {
                svc,
                client,
                cport,
                flags,
            } => {
                attempts += 1;
                let fl = flow(svc, client, cport, flags);
                if let Ok(s) = ipvs.new_connection(now, &fl) {
                    check_forward(&ipvs, &s.forward)?;
                    prop_assert_eq!(s.forward.conn, fl.key);
                    seen.push(Seen {
                        key: fl.key,
                        daddr: s.forward.daddr,
                        dport: s.forward.dport,
                    });
                }
            }
            Op::In { pick, flags } if !seen.is_empty() => {
                let s = seen[pick % seen.len()];
                if let Delivery::Forward(f) = ipvs.in_packet(now, &s.key, FLAGS[flags]) {
                    check_forward(&ipvs, &f)?;
                }
            }
            Op::Out { pick, flags } if !seen.is_empty() => {
                let s = seen[pick % seen.len()];
                let reply = ReplyKey {
                    proto: s.key.proto,
                    daddr: s.daddr,
                    dport: s.dport,
                    caddr: s.key.caddr,
                    cport: s.key.cport,
                };
                ipvs.out_packet(now, &reply, FLAGS[flags]);
            }
            Op::In { .. } | Op::Out { .. } => {}
            Op::Advance { ms } => {
                now += Duration::from_millis(ms);
                if ipvs.poll_timeout().is_some_and(|t| t <= now) {
                    ipvs.handle_timeout(now);
                }
            }
            Op::Tick => ipvs.handle_timeout(now),
            Op::RemoveDest { svc, d } => {
                let c = dest_cfg(svc, d, 1);
                let _ = ipvs.remove_dest(&svc_key(svc), c.addr, c.port);
            }
            Op::AddDest { svc, d, weight } => {
                let _ = ipvs.add_dest(&svc_key(svc), dest_cfg(svc, d, weight));
            }
            Op::Weight { svc, d, weight } => {
                let _ = ipvs.edit_dest(&svc_key(svc), dest_cfg(svc, d, weight));
            }
            Op::RemoveService { svc, re_add } => {
                let _ = ipvs.remove_service(&svc_key(svc));
                if re_add {
                    add_service(&mut ipvs, svc);
                    for d in 0..3 {
                        let _ = ipvs.add_dest(&svc_key(svc), dest_cfg(svc, d, 1));
                    }
                }
            }
            Op::AddService { svc } => add_service(&mut ipvs, svc),
            Op::Sysctl { which, on } => match which {
                0 => ipvs.set_expire_nodest_conn(on),
                1 => ipvs.set_expire_quiescent_template(on),
                _ => ipvs.set_sloppy_tcp(on),
            },
        }
        if let Err(e) = ipvs.check_invariants() {
            return Err(TestCaseError::fail(format!("after step: {e}")));
        }
        let r = ipvs.refusals();
        prop_assert_eq!(r.unexpected, 0);
        let refused = r.not_syn
            + r.no_service
            + r.port_zero_not_persistent
            + r.no_destination
            + r.table_full
            + r.conn_exists
            + r.template_slots_exhausted;
        prop_assert_eq!(ipvs.stats().conns_created + refused, attempts);
    }
    // Let everything expire: every counter returns to zero, every record goes.
    now += Duration::from_secs(3600);
    ipvs.handle_timeout(now);
    now += Duration::from_secs(120);
    ipvs.handle_timeout(now);
    prop_assert!(ipvs.conns().is_empty());
    prop_assert_eq!(ipvs.detached().count(), 0);
    for svc in ipvs.services().iter() {
        for d in svc.dests() {
            prop_assert_eq!(
                (d.active_conns(), d.inactive_conns(), d.persist_conns()),
                (0, 0, 0)
            );
            // The last unbind cleared any OVERLOAD (thresholds never change here).
            prop_assert!(!d.is_overloaded());
        }
    }
    ipvs.check_invariants()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn counters_never_drift(ops in proptest::collection::vec(op(), 1..250)) {
        run(ops)?;
    }
}
