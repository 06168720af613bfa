//! Behaviour of the glue with real connections: persistence, quiescing, counters feeding the
//! schedulers, thresholds, the size bound, lookup order; removed destinations in [`removed`].

use core::time::Duration;
use std::net::Ipv4Addr;

use super::*;
use crate::conn::ConnTableConfig;
use crate::conn::TcpState;
use crate::types::ForwardMethod;

mod removed;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

fn at(s: u64) -> Instant {
    Instant::from_secs(s)
}

fn rs(n: u8) -> DestConfig {
    DestConfig::new(Ipv4Addr::new(10, 0, 0, n), 80, ForwardMethod::Masq)
}

fn client(net: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, net, host)
}

fn key(proto: Protocol, caddr: Ipv4Addr, cport: u16, vport: u16) -> ConnKey {
    ConnKey {
        proto,
        caddr,
        cport,
        vaddr: VIP,
        vport,
    }
}

fn syn(caddr: Ipv4Addr, cport: u16) -> NewFlow {
    NewFlow {
        key: key(Protocol::Tcp, caddr, cport, 80),
        fwmark: 0,
        tcp_flags: TcpFlags::SYN,
    }
}

fn persist(secs: u64, mask: Ipv4Addr) -> Option<Persistence> {
    Some(Persistence {
        timeout: Duration::from_secs(secs),
        netmask: mask,
    })
}

/// A TCP service on VIP:80 with `n` Masq destinations 10.0.0.1..=n.
fn setup(kind: SchedulerKind, p: Option<Persistence>, n: u8) -> (Ipvs, ServiceKey) {
    let mut ipvs = Ipvs::new(IpvsConfig::default());
    let sk = ServiceKey::tcp(VIP, 80);
    ipvs.add_service(sk, kind, &[], p).expect("new service");
    for i in 1..=n {
        ipvs.add_dest(&sk, rs(i)).expect("new dest");
    }
    (ipvs, sk)
}

fn open(ipvs: &mut Ipvs, now: Instant, flow: &NewFlow) -> Forward {
    ipvs.new_connection(now, flow).expect("scheduled").forward
}

/// Last octet of the real server a flow went to.
fn server(ipvs: &mut Ipvs, now: Instant, caddr: Ipv4Addr, cport: u16) -> u8 {
    open(ipvs, now, &syn(caddr, cport)).daddr.octets()[3]
}

fn counts(ipvs: &Ipvs, n: u8) -> (u32, u32, u32) {
    let d = ipvs
        .services()
        .iter()
        .flat_map(|s| s.dests())
        .find(|d| d.addr() == Ipv4Addr::new(10, 0, 0, n))
        .expect("dest exists");
    (d.active_conns(), d.inactive_conns(), d.persist_conns())
}

fn ok(ipvs: &Ipvs) {
    if let Err(e) = ipvs.check_invariants() {
        panic!("{e}");
    }
}

#[test]
fn persistence_keeps_a_slash_24_on_one_server_where_rr_would_rotate() {
    let (mut ipvs, _) = setup(
        SchedulerKind::Rr,
        persist(300, Ipv4Addr::new(255, 255, 255, 0)),
        3,
    );
    let first = server(&mut ipvs, at(0), client(100, 1), 1000);
    for host in 1..=40 {
        for port in 2000..2003 {
            assert_eq!(server(&mut ipvs, at(1), client(100, host), port), first);
        }
    }
    let other = server(&mut ipvs, at(1), client(101, 7), 1000);
    assert_ne!(other, first, "another /24 gets the next rr pick");
    assert_eq!(server(&mut ipvs, at(2), client(101, 200), 1), other);
    let st = ipvs.stats();
    assert_eq!(st.templates_created, 2);
    assert_eq!(st.template_hits, 40 * 3 + 1);
    assert_eq!(counts(&ipvs, first).2, 1, "one template per client group");
    assert_eq!(
        counts(&ipvs, first).0,
        1 + 40 * 3,
        "every SYN_RECV is active (tcp_state_active_table)"
    );
    ok(&ipvs);

    // The same traffic on a non-persistent rr service rotates.
    let (mut plain, _) = setup(SchedulerKind::Rr, None, 3);
    let picks: std::collections::BTreeSet<u8> = (0..6)
        .map(|p| server(&mut plain, at(0), client(100, 1), 3000 + p))
        .collect();
    assert_eq!(picks.len(), 3);
}

#[test]
fn persistent_clients_spread_over_servers() {
    let (mut ipvs, _) = setup(SchedulerKind::Rr, persist(300, Ipv4Addr::BROADCAST), 3);
    let mut per = [0u32; 4];
    for host in 1..=30 {
        let s = server(&mut ipvs, at(0), client(100, host), 1000);
        per[usize::from(s)] += 1;
        // Second connection of the same client sticks.
        assert_eq!(server(&mut ipvs, at(0), client(100, host), 1001), s);
    }
    assert_eq!(per[1..], [10, 10, 10]);
    for n in 1..=3 {
        assert_eq!(counts(&ipvs, n).2, 10);
    }
}

#[test]
fn template_expiry_after_persistence_timeout_moves_the_client() {
    let (mut ipvs, _) = setup(SchedulerKind::Rr, persist(60, Ipv4Addr::BROADCAST), 2);
    let c = client(100, 1);
    let first = server(&mut ipvs, at(0), c, 1000);
    // SYN_RECV lasts 60 s; the template was refreshed to 60 s by that connection.
    ipvs.handle_timeout(at(30));
    assert_eq!(
        server(&mut ipvs, at(30), c, 1001),
        first,
        "still persistent"
    );
    // Both connections gone by t = 91; the template (refreshed at 30) is due at 90.
    ipvs.handle_timeout(at(92));
    assert_eq!(ipvs.conns().stats().templates, 0, "template swept");
    assert_eq!(counts(&ipvs, first), (0, 0, 0));
    let next = server(&mut ipvs, at(92), c, 1002);
    assert_ne!(next, first, "a fresh rr pick");
    ok(&ipvs);
}

#[test]
fn template_outlives_its_deadline_while_it_controls_connections() {
    let (mut ipvs, _) = setup(SchedulerKind::Rr, persist(10, Ipv4Addr::BROADCAST), 2);
    let c = client(100, 1);
    let f = open(&mut ipvs, at(0), &syn(c, 1000));
    // Establish: ACK on the inbound side (NAT: SYN_RECV -> ESTABLISHED, 900 s).
    let Delivery::Forward(e) = ipvs.in_packet(at(1), &f.conn, TcpFlags::ACK) else {
        panic!("forwarded");
    };
    assert_eq!(e.state, ConnState::Tcp(TcpState::Established));
    assert_eq!(counts(&ipvs, f.daddr.octets()[3]), (1, 0, 1));
    // Far past the 10 s persistence timeout: the template is re-armed, not removed.
    for t in [20, 100, 500] {
        ipvs.handle_timeout(at(t));
        assert_eq!(ipvs.conns().stats().templates, 1);
        assert_eq!(
            server(&mut ipvs, at(t), c, 2000 + t as u16),
            f.daddr.octets()[3]
        );
    }
    ok(&ipvs);
}

#[test]
fn template_outlives_short_lived_connections() {
    let (mut ipvs, _) = setup(SchedulerKind::Rr, persist(600, Ipv4Addr::BROADCAST), 2);
    let c = client(100, 1);
    let f = open(&mut ipvs, at(0), &syn(c, 1000));
    // Established then reset: CLOSE lasts 10 s.
    ipvs.in_packet(at(1), &f.conn, TcpFlags::ACK);
    ipvs.in_packet(at(1), &f.conn, TcpFlags::RST);
    ipvs.handle_timeout(at(20));
    assert_eq!(ipvs.conns().stats().conns, 0);
    assert_eq!(counts(&ipvs, f.daddr.octets()[3]), (0, 0, 1));
    // 500 s later, the client comes back to the same server; rr would have moved it.
    ipvs.handle_timeout(at(500));
    assert_eq!(server(&mut ipvs, at(500), c, 1001), f.daddr.octets()[3]);
    ok(&ipvs);
}

#[test]
fn quiesced_server_keeps_persistent_clients_unless_expire_quiescent_template() {
    for expire in [false, true] {
        let (mut ipvs, sk) = setup(SchedulerKind::Rr, persist(300, Ipv4Addr::BROADCAST), 2);
        ipvs.set_expire_quiescent_template(expire);
        let c = client(100, 1);
        let first = server(&mut ipvs, at(0), c, 1000);
        ipvs.edit_dest(&sk, rs(first).with_weight(0)).expect("edit");
        let again = server(&mut ipvs, at(1), c, 1001);
        // A new client never goes to the quiesced server.
        assert_ne!(server(&mut ipvs, at(1), client(100, 2), 1000), first);
        if expire {
            assert_ne!(again, first, "template expired, client moved");
            assert_eq!(ipvs.stats().templates_invalidated, 1);
            // The invalidated template stays counted while its first connection lives.
            assert_eq!(counts(&ipvs, first), (1, 0, 1));
            ipvs.handle_timeout(at(70));
            assert_eq!(counts(&ipvs, first), (0, 0, 0));
        } else {
            assert_eq!(
                again, first,
                "persistent client still sent to the quiesced RS"
            );
            assert_eq!(ipvs.stats().templates_invalidated, 0);
        }
        ok(&ipvs);
    }
}

/// wlc (`ip_vs_wlc_schedule`, overhead `active * 256 + inactive`) during a burst of SYNs,
/// with the counters `set_tcp_state` keeps through `tcp_state_active_table`
/// (`ip_vs_proto_tcp.c`, Linux 4.8+): a half-open connection weighs 256 like an established
/// one, so the burst alternates between the servers. Under the pre-4.8 rule (ESTABLISHED
/// only) all ten SYNs would have gone to 10.0.0.1, whose half-open connections would have
/// weighed 1 each against 10.0.0.2's one established connection.
#[test]
fn wlc_spreads_a_burst_of_syns_because_syn_states_are_active() {
    let (mut ipvs, _) = setup(SchedulerKind::Wlc, None, 2);
    // Both idle: wlc takes the first minimum, the newest destination (10.0.0.2).
    let f = open(&mut ipvs, at(0), &syn(client(100, 1), 1000));
    assert_eq!(f.daddr.octets()[3], 2);
    assert_eq!(counts(&ipvs, 2), (1, 0, 0), "SYN_RECV is active at once");
    ipvs.in_packet(at(0), &f.conn, TcpFlags::ACK);
    assert_eq!(counts(&ipvs, 2), (1, 0, 0), "ESTABLISHED: still active");
    let picks: Vec<u8> = (0..10)
        .map(|h| server(&mut ipvs, at(1), client(101, h), 3000))
        .collect();
    assert_eq!(picks, [1, 2, 1, 2, 1, 2, 1, 2, 1, 2]);
    assert_eq!(counts(&ipvs, 1), (5, 0, 0));
    assert_eq!(counts(&ipvs, 2), (6, 0, 0));
    // Reset the established one: ESTABLISHED -> CLOSE is inactive, 5*256+1 against 5*256.
    ipvs.in_packet(at(2), &f.conn, TcpFlags::RST);
    assert_eq!(counts(&ipvs, 2), (5, 1, 0));
    assert_eq!(server(&mut ipvs, at(2), client(100, 3), 1000), 1);
    // Half-open connections that never complete leave after the SYN_RECV timeout (60 s).
    ipvs.handle_timeout(at(63));
    assert_eq!((counts(&ipvs, 1), counts(&ipvs, 2)), ((0, 0, 0), (0, 0, 0)));
    ok(&ipvs);
}

#[test]
fn overload_threshold_engages_and_clears_through_real_connections() {
    let mut ipvs = Ipvs::new(IpvsConfig::default());
    let sk = ServiceKey::tcp(VIP, 80);
    ipvs.add_service(sk, SchedulerKind::Rr, &[], None)
        .expect("new");
    ipvs.add_dest(&sk, rs(1).with_thresholds(2, 0))
        .expect("new");
    ipvs.add_dest(&sk, rs(2)).expect("new");
    let mut to1 = Vec::new();
    for p in 0..10u16 {
        let f = open(&mut ipvs, at(0), &syn(client(100, 1), 1000 + p));
        if f.daddr.octets()[3] == 1 {
            to1.push(f.conn);
        }
    }
    assert_eq!(to1.len(), 2, "u_threshold 2 caps 10.0.0.1");
    let d1 = |ipvs: &Ipvs| {
        ipvs.services()
            .iter()
            .flat_map(|s| s.dests())
            .find(|d| d.addr().octets()[3] == 1)
            .map(|d| d.is_overloaded())
    };
    assert_eq!(d1(&ipvs), Some(true));
    // An inbound RST leaves SYN_RECV as it is (kernel table); let both time out (60 s)
    // and sweep: the flag clears below 3/4 of u.
    for k in &to1 {
        ipvs.in_packet(at(1), k, TcpFlags::RST);
    }
    ipvs.handle_timeout(at(30));
    assert_eq!(d1(&ipvs), Some(true), "still two SYN_RECV");
    ipvs.handle_timeout(at(62));
    assert_eq!(d1(&ipvs), Some(false));
    assert_eq!(counts(&ipvs, 1), (0, 0, 0));
    let picks: Vec<u8> = (0..2)
        .map(|p| server(&mut ipvs, at(63), client(100, 2), 1000 + p))
        .collect();
    assert!(picks.contains(&1), "eligible again: {picks:?}");
    ok(&ipvs);
}

#[test]
fn full_table_refuses_and_counts_while_existing_connections_work() {
    let cfg = IpvsConfig {
        conn_table: ConnTableConfig {
            max_entries: 4,
            ..ConnTableConfig::default()
        },
        ..IpvsConfig::default()
    };
    let mut ipvs = Ipvs::new(cfg);
    let sk = ServiceKey::tcp(VIP, 80);
    ipvs.add_service(sk, SchedulerKind::Wlc, &[], None)
        .expect("new");
    ipvs.add_dest(&sk, rs(1)).expect("new");
    let conns: Vec<ConnKey> = (0..4)
        .map(|p| open(&mut ipvs, at(0), &syn(client(100, 1), p)).conn)
        .collect();
    let r = ipvs.new_connection(at(0), &syn(client(100, 1), 99));
    assert_eq!(r, Err(Refusal::TableFull { max: 4 }));
    assert_eq!(ipvs.refusals().table_full, 1);
    assert_eq!(ipvs.conns().stats().refused_full, 1);
    assert_eq!(
        counts(&ipvs, 1),
        (4, 0, 0),
        "nothing bound for the refused flow (SYN_RECV is active)"
    );
    for k in &conns {
        assert!(matches!(
            ipvs.in_packet(at(1), k, TcpFlags::ACK),
            Delivery::Forward(Forward {
                state: ConnState::Tcp(TcpState::Established),
                ..
            })
        ));
    }
    assert_eq!(counts(&ipvs, 1), (4, 0, 0));
    ok(&ipvs);
}

#[test]
fn refusals_are_precise_and_counted() {
    let (mut ipvs, sk) = setup(SchedulerKind::Rr, None, 1);
    let mut ack = syn(client(100, 1), 1);
    ack.tcp_flags = TcpFlags::ACK;
    assert_eq!(ipvs.new_connection(at(0), &ack), Err(Refusal::NotSyn));
    let mut synrst = ack;
    synrst.tcp_flags = TcpFlags::SYN | TcpFlags::RST;
    assert_eq!(ipvs.new_connection(at(0), &synrst), Err(Refusal::NotSyn));
    ipvs.set_sloppy_tcp(true);
    assert!(ipvs.new_connection(at(0), &ack).is_ok(), "sloppy_tcp");
    assert_eq!(
        ipvs.new_connection(at(0), &ack),
        Err(Refusal::ConnExists(ack.key))
    );
    let mut other = syn(client(100, 1), 2);
    other.key.vport = 81;
    assert!(matches!(
        ipvs.new_connection(at(0), &other),
        Err(Refusal::NoService { vport: 81, .. })
    ));
    // A non-persistent port-0 service only catches to refuse.
    let zero = ServiceKey::tcp(VIP, 0);
    ipvs.add_service(zero, SchedulerKind::Rr, &[], None)
        .expect("new");
    ipvs.add_dest(&zero, rs(9)).expect("new");
    assert_eq!(
        ipvs.new_connection(at(0), &other),
        Err(Refusal::PortZeroNotPersistent(zero))
    );
    ipvs.edit_dest(&sk, rs(1).with_weight(0)).expect("edit");
    assert_eq!(
        ipvs.new_connection(at(0), &syn(client(100, 3), 3)),
        Err(Refusal::NoDestination(sk))
    );
    // UDP needs no SYN.
    let udp = NewFlow {
        key: key(Protocol::Udp, client(100, 1), 5353, 53),
        fwmark: 0,
        tcp_flags: TcpFlags::NONE,
    };
    assert!(matches!(
        ipvs.new_connection(at(0), &udp),
        Err(Refusal::NoService { .. })
    ));
    let r = ipvs.refusals();
    assert_eq!(
        r,
        RefusalCounts {
            not_syn: 2,
            no_service: 2,
            port_zero_not_persistent: 1,
            no_destination: 1,
            conn_exists: 1,
            ..RefusalCounts::default()
        }
    );
    assert_eq!(ipvs.stats().conns_created, 1);
    ok(&ipvs);
}

#[test]
fn lookup_order_fwmark_then_exact_then_port_zero() {
    let mut ipvs = Ipvs::new(IpvsConfig::default());
    let exact = ServiceKey::tcp(VIP, 80);
    let zero = ServiceKey::tcp(VIP, 0);
    let fw = ServiceKey::Fwmark(7);
    let p = persist(300, Ipv4Addr::BROADCAST);
    ipvs.add_service(exact, SchedulerKind::Rr, &[], None)
        .expect("new");
    ipvs.add_service(zero, SchedulerKind::Rr, &[], p)
        .expect("new");
    ipvs.add_service(fw, SchedulerKind::Rr, &[], p)
        .expect("new");
    assert_eq!(
        ipvs.find_service(Protocol::Tcp, VIP, 80, 7),
        Some(fw),
        "mark first"
    );
    assert_eq!(
        ipvs.find_service(Protocol::Tcp, VIP, 80, 8),
        Some(exact),
        "unknown mark ignored"
    );
    assert_eq!(ipvs.find_service(Protocol::Tcp, VIP, 80, 0), Some(exact));
    assert_eq!(ipvs.find_service(Protocol::Tcp, VIP, 443, 0), Some(zero));
    assert_eq!(ipvs.find_service(Protocol::Udp, VIP, 443, 0), None);
}

#[test]
fn port_zero_persistent_service_shares_the_template_across_ports() {
    let mut ipvs = Ipvs::new(IpvsConfig::default());
    let zero = ServiceKey::tcp(VIP, 0);
    ipvs.add_service(
        zero,
        SchedulerKind::Rr,
        &[],
        persist(300, Ipv4Addr::BROADCAST),
    )
    .expect("new");
    for n in 1..=3 {
        // Destination ports are kept: a persistent port-0 service forwards to the
        // packet's own port anyway.
        ipvs.add_dest(&zero, rs(n)).expect("new");
    }
    let c = client(100, 1);
    let mut flow = syn(c, 1000);
    flow.key.vport = 443;
    let a = open(&mut ipvs, at(0), &flow);
    assert_eq!(a.dport, 443);
    flow.key.vport = 8443;
    let b = open(&mut ipvs, at(0), &flow);
    assert_eq!((b.daddr, b.dport), (a.daddr, 8443));
    assert_eq!(ipvs.stats().templates_created, 1);
    ok(&ipvs);
}

#[test]
fn fwmark_persistence_spans_addresses_ports_and_protocols() {
    let mut ipvs = Ipvs::new(IpvsConfig::default());
    let fw = ServiceKey::Fwmark(5);
    ipvs.add_service(
        fw,
        SchedulerKind::Rr,
        &[],
        persist(300, Ipv4Addr::BROADCAST),
    )
    .expect("new");
    for n in 1..=3 {
        ipvs.add_dest(
            &fw,
            DestConfig::new(Ipv4Addr::new(10, 0, 0, n), 0, ForwardMethod::Route),
        )
        .expect("new");
    }
    let c = client(100, 1);
    let flows = [
        (Protocol::Tcp, Ipv4Addr::new(192, 0, 2, 10), 80),
        (Protocol::Tcp, Ipv4Addr::new(192, 0, 2, 11), 443),
        (Protocol::Udp, Ipv4Addr::new(192, 0, 2, 10), 53),
    ];
    let mut servers = Vec::new();
    for (i, (proto, vaddr, vport)) in flows.into_iter().enumerate() {
        let flow = NewFlow {
            key: ConnKey {
                proto,
                caddr: c,
                cport: 1000 + i as u16,
                vaddr,
                vport,
            },
            fwmark: 5,
            tcp_flags: TcpFlags::SYN,
        };
        let s = ipvs.new_connection(at(0), &flow).expect("scheduled");
        assert_eq!(s.service, fw);
        assert_eq!(s.forward.dport, vport, "port 0 keeps the packet's port");
        assert_eq!(s.forward.method, ForwardMethod::Route);
        servers.push(s.forward.daddr);
    }
    assert!(servers.iter().all(|s| *s == servers[0]));
    ok(&ipvs);
}

#[test]
fn nat_reply_path_establishes_and_ignores_strangers() {
    let (mut ipvs, _) = setup(SchedulerKind::Rr, None, 1);
    let f = open(&mut ipvs, at(0), &syn(client(100, 1), 1000));
    assert_eq!(f.state, ConnState::Tcp(TcpState::SynRecv));
    assert_eq!(f.old_state, ConnState::Tcp(TcpState::None));
    let reply = ReplyKey {
        proto: Protocol::Tcp,
        daddr: f.daddr,
        dport: f.dport,
        caddr: f.conn.caddr,
        cport: f.conn.cport,
    };
    let r = ipvs
        .out_packet(at(0), &reply, TcpFlags::SYN | TcpFlags::ACK)
        .expect("ours");
    assert_eq!(r.conn, f.conn);
    let Delivery::Forward(e) = ipvs.in_packet(at(0), &f.conn, TcpFlags::ACK) else {
        panic!("forwarded");
    };
    assert_eq!(e.state, ConnState::Tcp(TcpState::Established));
    assert_eq!(counts(&ipvs, 1), (1, 0, 0));
    let stranger = ReplyKey { dport: 81, ..reply };
    assert!(ipvs.out_packet(at(0), &stranger, TcpFlags::ACK).is_none());
    assert_eq!(
        ipvs.in_packet(
            at(0),
            &key(Protocol::Tcp, client(9, 9), 1, 80),
            TcpFlags::ACK
        ),
        Delivery::NoConn
    );
    ok(&ipvs);
}

#[test]
fn inbound_combines_lookup_and_scheduling() {
    let (mut ipvs, _) = setup(SchedulerKind::Rr, None, 1);
    let flow = syn(client(100, 1), 1000);
    assert!(matches!(ipvs.inbound(at(0), &flow), Inbound::New(_)));
    let mut ack = flow;
    ack.tcp_flags = TcpFlags::ACK;
    assert!(matches!(
        ipvs.inbound(at(0), &ack),
        Inbound::Existing(Delivery::Forward(_))
    ));
    let mut stray = ack;
    stray.key.cport = 1;
    assert_eq!(
        ipvs.inbound(at(0), &stray),
        Inbound::Refused(Refusal::NotSyn)
    );
}

#[test]
fn timeouts_drive_the_sweep_and_scheduler_housekeeping() {
    let mut ipvs = Ipvs::new(IpvsConfig::default());
    assert_eq!(ipvs.poll_timeout(), None);
    let sk = ServiceKey::tcp(VIP, 80);
    ipvs.add_service(sk, SchedulerKind::Lblc, &[], None)
        .expect("new");
    ipvs.add_dest(&sk, rs(1)).expect("new");
    let sched_deadline = ipvs.services().poll_timeout();
    assert_eq!(ipvs.poll_timeout(), sched_deadline);
    let f = open(&mut ipvs, at(0), &syn(client(100, 1), 1000));
    assert_eq!(ipvs.poll_timeout(), Some(Instant::ZERO), "sweep due now");
    ipvs.handle_timeout(at(0));
    let next = ipvs.poll_timeout().expect("conn pending");
    assert!(next > at(0) && next <= at(1));
    // SYN_RECV, 60 s: swept at 61, counters released.
    ipvs.handle_timeout(at(61));
    assert!(ipvs.conns().lookup_in(at(61), &f.conn).is_none());
    assert_eq!(counts(&ipvs, 1), (0, 0, 0));
    assert_eq!(ipvs.conns().stats().conns, 0);
    assert_eq!(ipvs.poll_timeout(), ipvs.services().poll_timeout());
    ok(&ipvs);
}

#[test]
fn direct_routing_uses_the_input_only_table_and_the_service_port() {
    let mut ipvs = Ipvs::new(IpvsConfig::default());
    let sk = ServiceKey::tcp(VIP, 80);
    ipvs.add_service(sk, SchedulerKind::Rr, &[], None)
        .expect("new");
    ipvs.add_dest(
        &sk,
        DestConfig::new(Ipv4Addr::new(10, 0, 0, 1), 80, ForwardMethod::Route),
    )
    .expect("new");
    let f = open(&mut ipvs, at(0), &syn(client(100, 1), 1000));
    assert_eq!((f.method, f.dport), (ForwardMethod::Route, 80));
    let Delivery::Forward(e) = ipvs.in_packet(at(0), &f.conn, TcpFlags::ACK) else {
        panic!("forwarded");
    };
    assert_eq!(e.state, ConnState::Tcp(TcpState::Established));
    // Input-only FIN: ESTABLISHED -> FIN_WAIT (inactive).
    ipvs.in_packet(at(1), &f.conn, TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(counts(&ipvs, 1), (0, 1, 0));
    ok(&ipvs);
}

#[test]
fn admin_errors_and_timeouts_pass_through() {
    let (mut ipvs, sk) = setup(SchedulerKind::Rr, None, 1);
    assert!(matches!(
        ipvs.add_service(sk, SchedulerKind::Rr, &[], None),
        Err(IpvsError::Service(ServiceError::ServiceExists(_)))
    ));
    assert!(matches!(
        ipvs.remove_dest(&sk, Ipv4Addr::new(10, 9, 9, 9), 80),
        Err(IpvsError::Service(ServiceError::NoSuchDestAddr { .. }))
    ));
    assert!(matches!(
        ipvs.edit_service(&ServiceKey::tcp(VIP, 1), SchedulerKind::Rr, &[], None),
        Err(IpvsError::Service(ServiceError::NoSuchService(_)))
    ));
    ipvs.edit_service(
        &sk,
        SchedulerKind::Wlc,
        &[],
        persist(60, Ipv4Addr::BROADCAST),
    )
    .expect("edit");
    assert!(
        ipvs.services()
            .get(&sk)
            .is_some_and(|s| s.persistence().is_some())
    );
    ipvs.set_timeouts(TimeoutUpdate {
        tcp: 60,
        tcpfin: 0,
        udp: 0,
    })
    .expect("in range");
    assert_eq!(ipvs.conns().timeouts().ipvsadm_triple(), (60, 120, 300));
    assert!(matches!(
        ipvs.set_timeouts(TimeoutUpdate {
            tcp: u32::MAX,
            tcpfin: 0,
            udp: 0
        }),
        Err(IpvsError::Conn(_))
    ));
}

#[test]
fn a_syn_reusing_a_closed_connections_port_is_scheduled_anew() {
    let (mut ipvs, _) = setup(SchedulerKind::Rr, None, 2);
    let c = client(100, 1);
    let f = open(&mut ipvs, at(0), &syn(c, 1000));
    let first = f.daddr.octets()[3];
    // Established, then reset: the entry sits in CLOSE (10 s).
    ipvs.in_packet(at(1), &f.conn, TcpFlags::ACK);
    ipvs.in_packet(at(1), &f.conn, TcpFlags::RST);
    // A second connection takes the next server.
    assert_ne!(server(&mut ipvs, at(2), c, 1001), first);
    // The client reuses port 1000: the SYN expires the CLOSE entry and is scheduled (rr
    // is back at the first server); it does not ride the dead connection.
    assert_eq!(
        ipvs.in_packet(at(3), &f.conn, TcpFlags::SYN),
        Delivery::NoConn
    );
    assert_eq!(ipvs.stats().reused, 1);
    assert_eq!(server(&mut ipvs, at(3), c, 1000), first);
    // An established connection is not touched by a stray SYN.
    let g = open(&mut ipvs, at(4), &syn(c, 2000));
    ipvs.in_packet(at(4), &g.conn, TcpFlags::ACK);
    assert!(matches!(
        ipvs.in_packet(at(5), &g.conn, TcpFlags::SYN),
        Delivery::Forward(_)
    ));
    assert_eq!(ipvs.stats().reused, 1);
    ok(&ipvs);
}

#[test]
fn a_syn_reusing_a_port_under_a_template_keeps_its_server() {
    let (mut ipvs, _) = setup(SchedulerKind::Rr, persist(300, Ipv4Addr::BROADCAST), 2);
    let c = client(100, 1);
    let f = open(&mut ipvs, at(0), &syn(c, 1000));
    ipvs.in_packet(at(1), &f.conn, TcpFlags::ACK);
    ipvs.in_packet(at(1), &f.conn, TcpFlags::RST);
    // Controlled by the template: the kernel does not reschedule it.
    assert!(matches!(
        ipvs.in_packet(at(2), &f.conn, TcpFlags::SYN),
        Delivery::Forward(_)
    ));
    assert_eq!(ipvs.stats().reused, 0);
    ok(&ipvs);
}
