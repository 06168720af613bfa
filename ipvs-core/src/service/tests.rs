//! Service and table behaviour: list order, edits, accounting, scheduling glue.

use super::*;
use crate::types::ForwardMethod;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

fn rs(last: u8) -> DestConfig {
    DestConfig::new(Ipv4Addr::new(10, 0, 0, last), 80, ForwardMethod::Masq)
}

fn input(k: u32) -> SchedInput {
    SchedInput {
        src: Ipv4Addr::from(0xC633_6400 + k),
        sport: 40_000,
        dst: VIP,
        dport: 80,
    }
}

fn svc(kind: SchedulerKind) -> Service {
    Service::new(ServiceKey::tcp(VIP, 80), kind, &[], None, 1).expect("valid")
}

#[test]
fn new_dests_go_to_the_head_like_the_kernel_list() {
    let mut s = svc(SchedulerKind::Rr);
    for (id, n) in [(1, 1), (2, 2), (3, 3)] {
        s.add_dest(DestId(id), rs(n)).expect("new");
    }
    let order: Vec<u8> = s.dests().iter().map(|d| d.addr().octets()[3]).collect();
    assert_eq!(order, [3, 2, 1]);
    // rr from the head walks newest first.
    let got: Vec<u32> = (0..4)
        .map(|k| s.schedule(&input(k), Instant::ZERO).expect("up").0)
        .collect();
    assert_eq!(got, [3, 2, 1, 3]);
}

#[test]
fn add_edit_remove_errors_and_ids() {
    let mut s = svc(SchedulerKind::Wlc);
    s.add_dest(DestId(7), rs(1)).expect("new");
    assert_eq!(
        s.add_dest(DestId(8), rs(1)),
        Err(ServiceError::DestExists {
            addr: Ipv4Addr::new(10, 0, 0, 1),
            port: 80
        })
    );
    assert_eq!(
        s.add_dest(DestId(7), rs(2)),
        Err(ServiceError::DestIdInUse(DestId(7)))
    );
    assert!(matches!(
        s.add_dest(DestId(9), rs(3).with_weight(70_000)),
        Err(ServiceError::Dest(DestError::WeightOutOfRange {
            weight: 70_000
        }))
    ));
    s.add_dest(DestId(9), rs(3)).expect("new");
    // Edit keeps id and position.
    assert_eq!(s.edit_dest(rs(1).with_weight(5)), Ok(DestId(7)));
    assert_eq!(s.dests()[1].weight(), 5);
    assert_eq!(s.dest(DestId(7)).map(Dest::weight), Some(5));
    assert!(matches!(
        s.edit_dest(rs(4)),
        Err(ServiceError::NoSuchDestAddr { .. })
    ));
    let gone = s
        .remove_dest(Ipv4Addr::new(10, 0, 0, 1), 80)
        .expect("exists");
    assert_eq!(gone.id(), DestId(7));
    assert!(s.dest(DestId(7)).is_none());
    assert_eq!(
        s.bind(DestId(7), ConnClass::Active),
        Err(ServiceError::NoSuchDest(DestId(7)))
    );
    assert_eq!(
        s.dest(DestId(9)).map(Dest::id),
        Some(DestId(9)),
        "index rebuilt"
    );
}

#[test]
fn thresholds_through_the_service_stop_scheduling() {
    let mut s = svc(SchedulerKind::Wlc);
    s.add_dest(DestId(1), rs(1).with_thresholds(2, 0))
        .expect("new");
    s.add_dest(DestId(2), rs(2)).expect("new");
    // List: [2, 1]. wlc with bind-per-pick as Inactive: 2, 1, then 1 reaches u=2 ...
    let mut got = Vec::new();
    for k in 0..6 {
        let id = s.schedule(&input(k), Instant::ZERO).expect("some");
        s.bind(id, ConnClass::Inactive).expect("live");
        got.push(id.0);
    }
    // Inactive loads (d2, d1) before each pick: (0,0) tie -> 2 | (1,0) -> 1 |
    // (1,1) tie -> 2 | (2,1) -> 1, which reaches u = 2: OVERLOAD | then only 2.
    assert_eq!(got, [2, 1, 2, 1, 2, 2]);
    assert!(s.dest(DestId(1)).expect("live").is_overloaded());
    // u=2, l=0: clears when total*4 < 6, i.e. total <= 1.
    s.unbind(DestId(1), ConnClass::Inactive).expect("bound");
    assert!(!s.dest(DestId(1)).expect("live").is_overloaded());
    assert_eq!(s.schedule(&input(9), Instant::ZERO), Some(DestId(1)));
}

#[test]
fn scheduler_change_and_flag_checks() {
    let key = ServiceKey::udp(VIP, 53);
    assert_eq!(
        Service::new(key, SchedulerKind::Rr, &[SchedFlag::ShPort], None, 0).err(),
        Some(ServiceError::IncompatibleFlag {
            kind: SchedulerKind::Rr,
            flag: SchedFlag::ShPort
        })
    );
    let mut s = Service::new(key, SchedulerKind::Sh, &[SchedFlag::ShPort], None, 0).expect("ok");
    s.add_dest(DestId(1), rs(1)).expect("new");
    assert_eq!(s.schedule(&input(1), Instant::ZERO), Some(DestId(1)));
    s.set_scheduler(SchedulerKind::Sh, &[], 0)
        .expect("flags-only change");
    assert_eq!(s.sched_flags(), &[] as &[SchedFlag]);
    s.set_scheduler(SchedulerKind::Mh, &[SchedFlag::MhFallback], 0)
        .expect("switch");
    assert_eq!(s.scheduler_kind(), SchedulerKind::Mh);
    assert_eq!(
        s.schedule(&input(1), Instant::ZERO),
        Some(DestId(1)),
        "table rebuilt"
    );
}

#[test]
fn persistence_template_mask() {
    let mut p = Persistence::default();
    assert_eq!(p.timeout, Duration::from_secs(360));
    let c = Ipv4Addr::new(198, 51, 100, 77);
    assert_eq!(p.template_client(c), c);
    p.netmask = Ipv4Addr::new(255, 255, 255, 0);
    assert_eq!(p.template_client(c), Ipv4Addr::new(198, 51, 100, 0));
}

#[test]
fn table_allocates_unique_ids_and_resolves_them() {
    let mut t = ServiceTable::new();
    let (k1, k2) = (ServiceKey::tcp(VIP, 80), ServiceKey::Fwmark(5));
    t.add_service(k1, SchedulerKind::Wlc, &[], None, 1)
        .expect("new");
    t.add_service(k2, SchedulerKind::Rr, &[], Some(Persistence::default()), 2)
        .expect("new");
    assert_eq!(
        t.add_service(k1, SchedulerKind::Rr, &[], None, 0),
        Err(ServiceError::ServiceExists(k1))
    );
    let a = t.add_dest(&k1, rs(1)).expect("new");
    let b = t.add_dest(&k2, rs(1)).expect("same address, other service");
    assert_ne!(a, b);
    assert_eq!(t.dest_with_service(b).map(|(s, _)| s.key()), Some(k2));
    assert_eq!(t.schedule(&k2, &input(1), Instant::ZERO), Some(b));
    t.bind(b, ConnClass::Template).expect("live");
    t.bind(b, ConnClass::Inactive).expect("live");
    t.state_changed(b, false, true).expect("inactive -> active");
    assert_eq!(
        t.dest(b).map(|d| (d.active_conns(), d.persist_conns())),
        Some((1, 1))
    );
    t.edit_dest(&k2, rs(1).with_weight(3)).expect("exists");
    assert_eq!(t.dest(b).map(Dest::weight), Some(3), "id survives edits");
    t.remove_dest(&k1, Ipv4Addr::new(10, 0, 0, 1), 80, Instant::ZERO)
        .expect("exists");
    assert!(t.dest(a).is_none());
    assert_eq!(t.trashed(a).map(|(k, _)| k), Some(k1), "in the trash");
    assert!(matches!(
        t.unbind(a, ConnClass::Active),
        Err(ServiceError::Dest(DestError::CounterUnderflow { .. }))
    ));
    let c = t.add_dest(&k1, rs(1)).expect("re-add");
    assert_eq!(c, a, "revived from the trash: the same id");
    assert!(t.trashed(a).is_none());
    t.remove_service(&k2, Instant::ZERO).expect("exists");
    assert!(t.dest(b).is_none());
    assert_eq!(t.trashed(b).map(|(k, _)| k), Some(k2));
    assert_eq!(t.iter().count(), 1);
    assert_eq!(t.schedule(&k2, &input(1), Instant::ZERO), None);
    let d = t.add_dest(&k1, rs(2)).expect("new");
    assert!(
        d != a && d != b,
        "ids of live and trashed destinations are not reused"
    );
}

/// `__ip_vs_del_dest` arms the trash timer `IP_VS_DEST_TRASH_PERIOD / 2` after the trash
/// becomes non-empty; `ip_vs_dest_trash_expire` marks a destination nothing refers to idle,
/// frees it `IP_VS_DEST_TRASH_PERIOD` later, and re-arms every half period while the trash
/// is not empty. Until then `ip_vs_trash_get_dest` can bring it back.
#[test]
fn trash_keeps_an_unreferenced_destination_two_to_three_minutes() {
    let mut t = ServiceTable::new();
    let k = ServiceKey::tcp(VIP, 80);
    t.add_service(k, SchedulerKind::Wlc, &[], None, 1)
        .expect("new");
    let a = t.add_dest(&k, rs(1)).expect("new");
    let at = Instant::from_secs;
    t.remove_dest(&k, Ipv4Addr::new(10, 0, 0, 1), 80, at(10))
        .expect("exists");
    assert_eq!(t.poll_timeout(), Some(at(70)));
    t.handle_timeout(at(70)); // idle from 70
    assert_eq!(t.poll_timeout(), Some(at(130)));
    t.handle_timeout(at(130));
    assert!(t.trashed(a).is_some(), "130 < 70 + 120");
    assert_eq!(t.poll_timeout(), Some(at(190)));
    t.handle_timeout(at(190));
    assert!(t.trashed(a).is_none(), "freed at 190");
    assert_eq!(t.poll_timeout(), None, "empty trash, no timer");
    let b = t.add_dest(&k, rs(1)).expect("new");
    assert_ne!(b, a, "a new destination");

    // Just before the free, the same address:port is the same destination.
    t.remove_dest(&k, Ipv4Addr::new(10, 0, 0, 1), 80, at(200))
        .expect("exists");
    t.handle_timeout(at(260));
    t.handle_timeout(at(320));
    assert_eq!(t.add_dest(&k, rs(1)), Ok(b));
}

/// The kernel frees a trashed destination only when its `refcnt` is back to 1: a
/// connection counted on it, or an lblc cache entry (`ip_vs_lblc_new` takes a reference),
/// keeps it in the trash however long that takes.
#[test]
fn trash_keeps_a_destination_while_connections_or_lblc_entries_refer_to_it() {
    let mut t = ServiceTable::new();
    let k = ServiceKey::tcp(VIP, 3128);
    t.add_service(k, SchedulerKind::Lblc, &[], None, 1)
        .expect("new");
    let b = t.add_dest(&k, rs(2)).expect("new");
    let a = t.add_dest(&k, rs(1)).expect("new");
    let at = Instant::from_secs;
    assert_eq!(t.schedule(&k, &input(1), at(0)), Some(a), "cached for VIP");
    t.bind(a, ConnClass::Inactive).expect("live");
    t.remove_dest(&k, Ipv4Addr::new(10, 0, 0, 1), 80, at(0))
        .expect("exists");
    for s in 1..=10 {
        t.handle_timeout(at(60 * s));
    }
    assert!(t.trashed(a).is_some(), "a connection refers to it");
    t.unbind(a, ConnClass::Inactive)
        .expect("counted on the trashed destination");
    for s in 11..=20 {
        t.handle_timeout(at(60 * s));
    }
    assert!(
        t.trashed(a).is_some(),
        "the lblc entry for VIP refers to it"
    );
    // The next connection to VIP finds the entry unavailable and replaces it with B.
    assert_eq!(t.schedule(&k, &input(2), at(1201)), Some(b));
    t.handle_timeout(at(1260)); // idle from 1260
    t.handle_timeout(at(1320));
    assert!(t.trashed(a).is_some());
    t.handle_timeout(at(1380));
    assert!(t.trashed(a).is_none());
}

#[test]
fn table_timeouts_come_from_lblc() {
    let mut t = ServiceTable::new();
    let k = ServiceKey::tcp(VIP, 3128);
    t.add_service(k, SchedulerKind::Lblc, &[], None, 0)
        .expect("new");
    t.add_dest(&k, rs(1)).expect("new");
    assert_eq!(t.poll_timeout(), None, "armed on first use");
    t.schedule(&k, &input(1), Instant::from_secs(5))
        .expect("up");
    assert_eq!(t.poll_timeout(), Some(Instant::from_secs(65)));
    t.handle_timeout(Instant::from_secs(65));
    assert_eq!(t.poll_timeout(), Some(Instant::from_secs(125)));
}

/// mh with more destinations than its 4093 slots (default `CONFIG_IP_VS_MH_TAB_INDEX`):
/// binding the scheduler fails as `ip_vs_mh_init_svc` does; once bound, a destination
/// added beyond the table size is accepted but `ip_vs_mh_reassign` refuses the rebuild and
/// the old table keeps scheduling (`__ip_vs_update_dest` ignores the scheduler's error).
#[test]
fn mh_with_more_dests_than_slots_refuses_the_rebuild_and_keeps_scheduling() {
    let addr = |i: u32| Ipv4Addr::from(0x0A01_0000 + i);
    let cfg = |i: u32| DestConfig::new(addr(i), 80, ForwardMethod::Route);
    let mut s = svc(SchedulerKind::Wlc);
    for i in 0..4094 {
        s.add_dest(DestId(i), cfg(i)).expect("new");
    }
    assert_eq!(
        s.set_scheduler(SchedulerKind::Mh, &[], 1),
        Err(ServiceError::TooManyDests {
            kind: SchedulerKind::Mh,
            dests: 4094
        })
    );
    assert_eq!(s.scheduler_kind(), SchedulerKind::Wlc, "old scheduler kept");

    s.remove_dest(addr(0), 80).expect("exists");
    s.set_scheduler(SchedulerKind::Mh, &[], 1)
        .expect("4093 fit in 4093 slots");
    assert_eq!(s.sched_refused_updates(), 0);
    let picks = |s: &mut Service| -> Vec<Option<DestId>> {
        (0..200)
            .map(|k| s.schedule(&input(k), Instant::ZERO))
            .collect()
    };
    let before = picks(&mut s);
    assert!(before.iter().all(Option::is_some));

    s.add_dest(DestId(9999), cfg(9999))
        .expect("the kernel adds the destination anyway");
    assert_eq!(s.dests().len(), 4094);
    assert_eq!(s.sched_refused_updates(), 1);
    assert_eq!(picks(&mut s), before, "the old table is still in force");
    // Quiescing a destination is an update too: still refused, still scheduling.
    let quiet = before[0].expect("scheduled");
    let q = s.dest(quiet).expect("live").addr();
    s.edit_dest(DestConfig::new(q, 80, ForwardMethod::Route).with_weight(0))
        .expect("exists");
    assert_eq!(s.sched_refused_updates(), 2);
    let after = picks(&mut s);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(*a, if *b == Some(quiet) { None } else { *b });
    }
}
