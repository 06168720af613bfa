//! Removed destinations: `expire_nodest_conn`, and the trash that revives a re-added real
//! server as the same destination (`ip_vs_trash_get_dest`, `__ip_vs_update_dest`,
//! `ip_vs_dest_trash_expire`).

use super::*;

#[test]
fn removed_destination_drops_silently_keeps_entry_and_revives_on_re_add() {
    let (mut ipvs, sk) = setup(SchedulerKind::Rr, None, 2);
    let f = open(&mut ipvs, at(0), &syn(client(100, 1), 1000));
    let n = f.daddr.octets()[3];
    ipvs.in_packet(at(0), &f.conn, TcpFlags::ACK);
    let before = ipvs.conns().lookup_in(at(0), &f.conn).expect("live");
    ipvs.remove_dest(&sk, f.daddr, 80).expect("exists");
    assert_eq!(
        ipvs.in_packet(at(5), &f.conn, TcpFlags::FIN),
        Delivery::DestGone {
            dest: f.dest,
            expired: false
        }
    );
    let after = ipvs.conns().lookup_in(at(5), &f.conn).expect("kept");
    assert_eq!((after.state, after.expires), (before.state, before.expires));
    assert_eq!(ipvs.stats().nodest_dropped, 1);
    // New flows avoid it.
    assert_ne!(server(&mut ipvs, at(5), client(100, 2), 1), n);
    // NAT replies are still translated.
    let reply = ReplyKey {
        proto: Protocol::Tcp,
        daddr: f.daddr,
        dport: 80,
        caddr: f.conn.caddr,
        cport: f.conn.cport,
    };
    assert!(ipvs.out_packet(at(6), &reply, TcpFlags::ACK).is_some());
    ok(&ipvs);
    // Re-adding the same address:port revives the same destination from the trash
    // (`ip_vs_trash_get_dest`): same id, its connection resumes.
    assert_eq!(ipvs.detached().count(), 1);
    let id = ipvs.add_dest(&sk, rs(n)).expect("re-add");
    assert_eq!(id, f.dest);
    assert_eq!(counts(&ipvs, n), (1, 0, 0), "revived with its connection");
    let Delivery::Forward(g) = ipvs.in_packet(at(7), &f.conn, TcpFlags::ACK) else {
        panic!("resumed");
    };
    assert_eq!((g.dest, g.daddr), (id, f.daddr));
    ipvs.in_packet(at(8), &f.conn, TcpFlags::RST);
    assert_eq!(counts(&ipvs, n), (0, 1, 0));
    ipvs.handle_timeout(at(30));
    assert_eq!(counts(&ipvs, n), (0, 0, 0));
    assert_eq!(ipvs.detached().count(), 0, "live again, not in the trash");
    ok(&ipvs);
}

#[test]
fn expire_nodest_conn_removes_the_entry_at_the_next_packet() {
    let (mut ipvs, sk) = setup(SchedulerKind::Rr, persist(300, Ipv4Addr::BROADCAST), 2);
    ipvs.set_expire_nodest_conn(true);
    let c = client(100, 1);
    let f = open(&mut ipvs, at(0), &syn(c, 1000));
    ipvs.remove_dest(&sk, f.daddr, 80).expect("exists");
    assert_eq!(
        ipvs.in_packet(at(1), &f.conn, TcpFlags::ACK),
        Delivery::DestGone {
            dest: f.dest,
            expired: true
        }
    );
    assert!(ipvs.conns().lookup_in(at(1), &f.conn).is_none());
    assert_eq!(ipvs.stats().nodest_expired, 1);
    // The template to the removed server is not honoured: invalidated, client rescheduled.
    let next = open(&mut ipvs, at(2), &syn(c, 1001));
    assert_ne!(next.daddr, f.daddr);
    assert_eq!(ipvs.stats().templates_invalidated, 1);
    ipvs.handle_timeout(at(3));
    let counts: Vec<[u32; 3]> = ipvs.detached().map(|(_, d)| d.counts).collect();
    assert_eq!(
        counts,
        [[0; 3]],
        "old template swept, destination still in the trash"
    );
    // ip_vs_dest_trash_expire: removed at 0, idle at the sweep at 60, freed at 180.
    ipvs.handle_timeout(at(60));
    ipvs.handle_timeout(at(120));
    assert_eq!(ipvs.detached().count(), 1);
    ipvs.handle_timeout(at(180));
    assert_eq!(ipvs.detached().count(), 0);
    ok(&ipvs);
}

#[test]
fn template_to_a_removed_then_re_added_server_is_honoured_again() {
    let (mut ipvs, sk) = setup(SchedulerKind::Rr, persist(300, Ipv4Addr::BROADCAST), 3);
    let c = client(100, 1);
    let f = open(&mut ipvs, at(0), &syn(c, 1000));
    let n = f.daddr.octets()[3];
    ipvs.remove_dest(&sk, f.daddr, 80).expect("exists");
    let id = ipvs.add_dest(&sk, rs(n)).expect("re-add");
    assert_eq!(
        counts(&ipvs, n),
        (1, 0, 1),
        "connection and template revived"
    );
    let g = ipvs
        .new_connection(at(1), &syn(c, 1001))
        .expect("scheduled");
    assert!(matches!(g.placement, Placement::Template(_)));
    assert_eq!((g.forward.dest, g.forward.daddr), (id, f.daddr));
    assert_eq!(ipvs.stats().templates_invalidated, 0);
    assert_eq!(counts(&ipvs, n), (2, 0, 1));
    ok(&ipvs);
}

#[test]
fn removed_service_detaches_and_a_re_added_one_revives() {
    let (mut ipvs, sk) = setup(SchedulerKind::Rr, None, 1);
    let f = open(&mut ipvs, at(0), &syn(client(100, 1), 1000));
    ipvs.remove_service(&sk).expect("exists");
    assert!(matches!(
        ipvs.in_packet(at(1), &f.conn, TcpFlags::ACK),
        Delivery::DestGone { expired: false, .. }
    ));
    assert_eq!(
        ipvs.new_connection(at(1), &syn(client(100, 1), 2)),
        Err(Refusal::NoService {
            proto: Protocol::Tcp,
            vaddr: VIP,
            vport: 80,
            fwmark: 0
        })
    );
    ipvs.add_service(sk, SchedulerKind::Wlc, &[], None)
        .expect("again");
    ipvs.add_dest(&sk, rs(1)).expect("again");
    assert_eq!(counts(&ipvs, 1), (1, 0, 0));
    assert!(matches!(
        ipvs.in_packet(at(2), &f.conn, TcpFlags::ACK),
        Delivery::Forward(_)
    ));
    ok(&ipvs);
    ipvs.clear();
    assert_eq!(ipvs.services().iter().count(), 0);
    ok(&ipvs);
}

/// A real server that a health checker removes and re-adds (`ipvsadm -d`, then `-a`):
/// `ip_vs_add_dest` finds it with `ip_vs_trash_get_dest` and `__ip_vs_update_dest` revives
/// the same destination. Its id, counters and OVERLOAD flag come back (the flag because the
/// upper threshold is not raised), and so does the lblc cache entry pointing at it: the
/// next connection to the cached address goes to it although wlc would pick the idle one.
#[test]
fn re_added_server_is_the_same_destination_with_lblc_entry_counters_and_overload() {
    let mut ipvs = Ipvs::new(IpvsConfig::default());
    let sk = ServiceKey::tcp(VIP, 80);
    ipvs.add_service(sk, SchedulerKind::Lblc, &[], None)
        .expect("new");
    let a_cfg = rs(1).with_weight(5).with_thresholds(2, 0);
    ipvs.add_dest(&sk, rs(2).with_weight(5)).expect("new");
    let a = ipvs.add_dest(&sk, a_cfg).expect("new");
    // Both connections to VIP go to the cached A (newest first, then cached).
    let f1 = open(&mut ipvs, at(0), &syn(client(100, 1), 1000));
    let f2 = open(&mut ipvs, at(0), &syn(client(100, 2), 1000));
    assert_eq!((f1.dest, f2.dest), (a, a));
    let dest_a = |ipvs: &Ipvs| ipvs.services().dest(a).cloned().expect("live");
    assert!(dest_a(&ipvs).is_overloaded(), "2 >= u_threshold 2");

    ipvs.remove_dest(&sk, a_cfg.addr, 80).expect("exists");
    assert!(matches!(
        ipvs.in_packet(at(1), &f1.conn, TcpFlags::ACK),
        Delivery::DestGone { .. }
    ));
    let (_, trashed) = ipvs.detached().next().expect("in the trash");
    assert_eq!(trashed.counts, [2, 0, 0]);

    assert_eq!(ipvs.add_dest(&sk, a_cfg), Ok(a), "the same destination");
    let d = dest_a(&ipvs);
    assert_eq!((d.active_conns(), d.inactive_conns()), (2, 0));
    assert!(d.is_overloaded(), "same upper threshold: OVERLOAD stays");
    assert!(matches!(
        ipvs.in_packet(at(2), &f1.conn, TcpFlags::ACK),
        Delivery::Forward(Forward { dest, .. }) if dest == a
    ));
    // The lblc entry for VIP is valid again (lblc ignores the OVERLOAD flag of a cached
    // destination): A again, where wlc would have picked the idle 10.0.0.2.
    let f3 = open(&mut ipvs, at(3), &syn(client(100, 3), 1000));
    assert_eq!(f3.dest, a);
    ok(&ipvs);

    // Flap again. In the trash, f2 (SYN_RECV since 0 s) expires and is unbound from A
    // there; 2 connections remain, 2*4 >= 2*3, so OVERLOAD stays (`ip_vs_unbind_dest`).
    ipvs.remove_dest(&sk, a_cfg.addr, 80).expect("exists");
    ipvs.handle_timeout(at(61));
    let (_, trashed) = ipvs.detached().next().expect("in the trash");
    assert_eq!(trashed.counts, [2, 0, 0]);
    assert!(
        ipvs.services()
            .trashed(a)
            .is_some_and(|(_, d)| d.is_overloaded())
    );
    ok(&ipvs);
    // Back with a raised upper threshold: OVERLOAD is cleared (`__ip_vs_update_dest`).
    let raised = a_cfg.with_thresholds(10, 0);
    assert_eq!(ipvs.add_dest(&sk, raised), Ok(a));
    assert!(!dest_a(&ipvs).is_overloaded());
    assert_eq!(dest_a(&ipvs).active_conns(), 2);
    assert_eq!(f2.dest, a);
    ok(&ipvs);
}

/// lblcr's server set keeps a removed member (the set element holds the destination in
/// the trash); when the server comes back, `ip_vs_dest_set_min` finds it in the set again.
#[test]
fn re_added_server_is_back_in_its_lblcr_sets() {
    let mut ipvs = Ipvs::new(IpvsConfig::default());
    let sk = ServiceKey::tcp(VIP, 80);
    ipvs.add_service(sk, SchedulerKind::Lblcr, &[], None)
        .expect("new");
    ipvs.add_dest(&sk, rs(2)).expect("new");
    let a = ipvs.add_dest(&sk, rs(1).with_weight(4)).expect("new");
    let f = open(&mut ipvs, at(0), &syn(client(100, 1), 1000));
    assert_eq!(f.dest, a);
    ipvs.remove_dest(&sk, rs(1).addr, 80).expect("exists");
    // While A is gone the set gains 10.0.0.2.
    let g = open(&mut ipvs, at(1), &syn(client(100, 2), 1000));
    assert_ne!(g.dest, a);
    assert_eq!(ipvs.add_dest(&sk, rs(1).with_weight(4)), Ok(a));
    // Set [B, A]: B 256/1 against A 256/4: A is the least loaded member.
    let h = open(&mut ipvs, at(2), &syn(client(100, 3), 1000));
    assert_eq!(h.dest, a);
    ok(&ipvs);
}

/// `ip_vs_dest_trash_expire` with time passed in: a removed destination with nothing
/// referring to it can be revived until the sweep frees it (idle at the first sweep, freed
/// `IP_VS_DEST_TRASH_PERIOD` = 120 s later); after that the same address:port is a new
/// destination with fresh counters.
#[test]
fn trash_frees_an_idle_removed_server_after_the_kernels_period() {
    let (mut ipvs, sk) = setup(SchedulerKind::Wlc, None, 2);
    let id = ipvs.services().get(&sk).expect("svc").dests()[0].id();
    ipvs.handle_timeout(at(1000));
    ipvs.remove_dest(&sk, rs(2).addr, 80).expect("exists");
    assert_eq!(ipvs.poll_timeout(), Some(at(1060)));
    ipvs.handle_timeout(at(1060));
    ipvs.handle_timeout(at(1120));
    assert_eq!(ipvs.detached().count(), 1);
    ipvs.handle_timeout(at(1180));
    assert_eq!(ipvs.detached().count(), 0, "freed");
    assert_ne!(ipvs.add_dest(&sk, rs(2)), Ok(id), "a new destination");
    ok(&ipvs);
}
