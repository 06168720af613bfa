//! The engine side of sync: the change feed, export and import (with every refusal), and
//! the whole chain from the active's feed through sender and receiver into the standby.

use core::net::Ipv4Addr;
use core::time::Duration;

use super::tests::{VIP, receiver, sender, tmpl_rec};
use super::*;
use crate::conn::{ConnState, TcpFlags, TcpState, TemplateService};
use crate::ipvs::{Delivery, ImportRefusal, Imported, Ipvs, IpvsConfig, NewFlow, SyncFeedConfig};
use crate::service::{DestConfig, Persistence, ServiceKey};
use crate::time::Instant;
use crate::types::{ForwardMethod, Protocol, SchedulerKind};

pub(super) const RS1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub(super) const RS2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// A TCP service on VIP:80 (rr, optional persistence) with two NAT real servers added in
/// `order`, and a UDP service on VIP:53 with RS1.
pub(super) fn engine(order: [Ipv4Addr; 2], p: Option<Persistence>) -> Ipvs {
    let mut ipvs = Ipvs::new(IpvsConfig::default());
    let sk = ServiceKey::tcp(VIP, 80);
    ipvs.add_service(sk, SchedulerKind::Rr, &[], p)
        .expect("service");
    for a in order {
        ipvs.add_dest(&sk, DestConfig::new(a, 80, ForwardMethod::Masq))
            .expect("dest");
    }
    let uk = ServiceKey::udp(VIP, 53);
    ipvs.add_service(uk, SchedulerKind::Rr, &[], None)
        .expect("service");
    ipvs.add_dest(&uk, DestConfig::new(RS1, 53, ForwardMethod::Masq))
        .expect("dest");
    ipvs
}

fn ck(cport: u16) -> ConnKey {
    ConnKey {
        proto: Protocol::Tcp,
        caddr: Ipv4Addr::new(198, 51, 100, (cport % 250) as u8 + 1),
        cport,
        vaddr: VIP,
        vport: 80,
    }
}

fn syn(cport: u16) -> NewFlow {
    NewFlow {
        key: ck(cport),
        fwmark: 0,
        tcp_flags: TcpFlags::SYN,
    }
}

fn drain(ipvs: &mut Ipvs, now: Instant) -> Vec<SyncRecord> {
    let mut v = Vec::new();
    ipvs.drain_sync_feed(now, usize::MAX, |r| v.push(r));
    v
}

#[test]
fn export_then_import_forwards_to_the_same_server_without_scheduling() {
    let t0 = Instant::from_secs(10);
    let mut a = engine([RS1, RS2], None);
    let mut sent_to = Vec::new();
    for p in 1000..1010 {
        let f = a.new_connection(t0, &syn(p)).expect("scheduled").forward;
        assert!(matches!(
            a.in_packet(t0, &ck(p), TcpFlags::ACK),
            Delivery::Forward(_)
        ));
        sent_to.push(f.daddr);
    }
    let t1 = Instant::from_secs(70);
    let recs: Vec<SyncRecord> = a.sync_export(t1).collect();
    assert_eq!(recs.len(), 10);

    // The standby's servers were added the other way round: its rr would pick
    // differently, so a wrong "schedule anew" would show.
    let mut b = engine([RS2, RS1], None);
    for r in &recs {
        assert_eq!(b.sync_import(t1, r), Ok(Imported::Created));
    }
    b.check_invariants().expect("counters follow imports");
    assert_eq!(b.conns().stats().conns, 10);
    for (p, want) in (1000..1010).zip(sent_to) {
        let info = b.conns().lookup_in(t1, &ck(p)).expect("imported");
        assert_eq!(info.state, ConnState::Tcp(TcpState::Established));
        // The remaining time travelled: 900 s from t0, seen at t1.
        assert_eq!(info.expires, Instant::from_secs(910));
        match b.in_packet(t1, &ck(p), TcpFlags::ACK) {
            Delivery::Forward(f) => assert_eq!(f.daddr, want),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(b.stats().conns_created, 0);
    let d1 = b
        .services()
        .iter()
        .flat_map(|s| s.dests())
        .find(|d| d.addr() == RS1 && d.port() == 80)
        .expect("RS1");
    assert_eq!(d1.active_conns(), 5);
    assert_eq!(b.sync_import_counts().created, 10);
}

#[test]
fn persistence_survives_export_and_import() {
    let p = Some(Persistence::new(Duration::from_secs(300)));
    let t0 = Instant::from_secs(1);
    let mut a = engine([RS1, RS2], p);
    let first = a.new_connection(t0, &syn(2000)).expect("scheduled").forward;
    let recs: Vec<SyncRecord> = a.sync_export(t0).collect();
    assert!(
        matches!(recs[0], SyncRecord::Template(_)),
        "templates first"
    );
    let mut b = engine([RS2, RS1], p);
    for r in &recs {
        b.sync_import(t0, r).expect("imported");
    }
    b.check_invariants().expect("counters follow imports");
    let tinfo = b.conns().templates(t0).next().expect("template imported");
    assert_eq!(
        tinfo.n_control, 1,
        "the connection is linked to its template"
    );
    // The same client on another port sticks to the same real server on the standby.
    let mut other = syn(2000);
    other.key.cport = 2001;
    let s = b.new_connection(t0, &other).expect("scheduled");
    assert_eq!(s.forward.daddr, first.daddr);
    assert!(matches!(s.placement, crate::ipvs::Placement::Template(_)));
}

#[test]
fn export_keys_in_slices_give_the_same_records_as_export() {
    let p = Some(Persistence::new(Duration::from_secs(300)));
    let t0 = Instant::from_secs(1);
    let mut a = engine([RS1, RS2], p);
    for port in 3000..3020 {
        a.new_connection(t0, &syn(port)).expect("scheduled");
    }
    let whole: Vec<SyncRecord> = a.sync_export(t0).collect();
    let keys = a.sync_export_keys(t0);
    assert_eq!(keys.len(), whole.len());
    let sliced: Vec<SyncRecord> = keys
        .iter()
        .filter_map(|k| a.sync_record_of(t0, k))
        .collect();
    assert_eq!(sliced, whole);
    // A connection gone between the snapshot and its slice is skipped, not sent stale
    // (its template lives on while it still controls the unreaped connection, as in the
    // kernel).
    let late = Instant::from_secs(100_000);
    let left: Vec<SyncRecord> = keys
        .iter()
        .filter_map(|k| a.sync_record_of(late, k))
        .filter(|r| matches!(r, SyncRecord::Conn(_)))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn feed_queues_new_connections_state_changes_and_refreshes() {
    let mut a = engine([RS1, RS2], Some(Persistence::default()));
    a.enable_sync_feed(SyncFeedConfig {
        capacity: 3,
        refresh: Some(Duration::from_secs(60)),
    });
    let t0 = Instant::from_secs(0);
    a.new_connection(t0, &syn(1)).expect("scheduled");
    let recs = drain(&mut a, t0);
    assert_eq!(recs.len(), 2);
    assert!(matches!(recs[0], SyncRecord::Template(_)));
    let SyncRecord::Conn(c) = recs[1] else {
        panic!("connection second")
    };
    assert_eq!(c.state, ConnState::Tcp(TcpState::SynRecv));
    // Into ESTABLISHED: synced; another ACK in the same period: not.
    a.in_packet(t0, &ck(1), TcpFlags::ACK);
    let recs = drain(&mut a, t0);
    assert!(matches!(
        recs[..],
        [SyncRecord::Conn(ConnRecord {
            state: ConnState::Tcp(TcpState::Established),
            ..
        })]
    ));
    a.in_packet(Instant::from_millis(10), &ck(1), TcpFlags::ACK);
    assert!(drain(&mut a, t0).is_empty());
    // Within 60 s a packet enters the connection's next refresh period.
    let mut refreshed = 0;
    for s in 1..=61 {
        a.in_packet(Instant::from_secs(s), &ck(1), TcpFlags::ACK);
        refreshed += drain(&mut a, Instant::from_secs(s)).len();
    }
    assert_eq!(refreshed, 1);
    // FIN: closing state, synced.
    a.in_packet(Instant::from_secs(62), &ck(1), TcpFlags::FIN);
    assert_eq!(drain(&mut a, Instant::from_secs(62)).len(), 1);
    // The queue is bounded: two new persistent connections need four places.
    a.new_connection(Instant::from_secs(63), &syn(2))
        .expect("scheduled");
    a.new_connection(Instant::from_secs(63), &syn(3))
        .expect("scheduled");
    let st = a.sync_feed_stats();
    assert_eq!((st.queued, st.dropped), (3, 1));
    a.disable_sync_feed();
    assert_eq!(a.sync_feed_stats().queued, 0);
    a.in_packet(Instant::from_secs(64), &ck(2), TcpFlags::ACK);
    assert_eq!(a.sync_feed_stats().queued, 0, "off means off");
}

#[test]
fn import_refusals_are_counted() {
    let now = Instant::from_secs(5);
    let mut b = engine([RS1, RS2], None);
    let est = ConnState::Tcp(TcpState::Established);
    let mut rec = ConnRecord {
        key: ck(7),
        fwmark: 0,
        daddr: RS1,
        dport: 80,
        fwd: ForwardMethod::Masq,
        state: est,
        timeout: Duration::from_secs(100),
    };
    let imp = |b: &mut Ipvs, r: ConnRecord| b.sync_import(now, &SyncRecord::Conn(r));
    let mut r = rec;
    r.key.vport = 81;
    assert!(matches!(
        imp(&mut b, r),
        Err(ImportRefusal::UnknownService { .. })
    ));
    let mut r = rec;
    r.fwmark = 5;
    assert!(matches!(
        imp(&mut b, r),
        Err(ImportRefusal::UnknownService { .. })
    ));
    let mut r = rec;
    r.daddr = Ipv4Addr::new(10, 0, 0, 9);
    assert!(matches!(
        imp(&mut b, r),
        Err(ImportRefusal::UnknownDest { .. })
    ));
    assert_eq!(imp(&mut b, rec), Ok(Imported::Created));
    // The state tables lead from ESTABLISHED to FIN_WAIT and (SYN) back to SYN_RECV;
    // nothing leads into LAST_ACK or NONE.
    rec.state = ConnState::Tcp(TcpState::FinWait);
    assert_eq!(imp(&mut b, rec), Ok(Imported::Updated));
    rec.state = ConnState::Tcp(TcpState::SynRecv);
    assert_eq!(imp(&mut b, rec), Ok(Imported::Updated));
    for bad in [TcpState::LastAck, TcpState::None] {
        let mut r = rec;
        r.state = ConnState::Tcp(bad);
        assert!(matches!(
            imp(&mut b, r),
            Err(ImportRefusal::StateCannotFollow { .. })
        ));
    }
    // Another real server: a new connection on the same addresses and ports.
    let mut r = rec;
    r.daddr = RS2;
    r.state = est;
    assert_eq!(imp(&mut b, r), Ok(Imported::Replaced));
    assert_eq!(
        b.conns().lookup_in(now, &rec.key).map(|c| c.state),
        Some(est)
    );
    // A bulk resync record is authoritative: LAST_ACK is taken.
    r.state = ConnState::Tcp(TcpState::LastAck);
    assert_eq!(
        b.sync_import_resync(now, &SyncRecord::Conn(r)),
        Ok(Imported::Updated)
    );
    // A template for a service that is not persistent.
    assert!(matches!(
        b.sync_import(
            now,
            &tmpl_rec(TemplateService::Port {
                proto: Protocol::Tcp,
                vaddr: VIP,
                vport: 80
            })
        ),
        Err(ImportRefusal::NotPersistent(_))
    ));
    let c = b.sync_import_counts();
    assert_eq!(
        [
            c.created,
            c.updated,
            c.replaced,
            c.unknown_service,
            c.unknown_dest,
            c.not_persistent,
            c.state_cannot_follow
        ],
        [1, 3, 1, 2, 1, 1, 2]
    );
    b.check_invariants().expect("counters follow imports");
}

#[test]
fn import_respects_the_table_bound() {
    let mut cfg = IpvsConfig::default();
    cfg.conn_table.max_entries = 2;
    let mut b = Ipvs::new(cfg);
    let sk = ServiceKey::tcp(VIP, 80);
    b.add_service(sk, SchedulerKind::Rr, &[], None)
        .expect("service");
    b.add_dest(&sk, DestConfig::new(RS1, 80, ForwardMethod::Masq))
        .expect("dest");
    let now = Instant::from_secs(1);
    for p in 0..3u16 {
        let r = SyncRecord::Conn(ConnRecord {
            key: ck(p),
            fwmark: 0,
            daddr: RS1,
            dport: 80,
            fwd: ForwardMethod::Masq,
            state: ConnState::Tcp(TcpState::Established),
            timeout: Duration::from_secs(10),
        });
        let res = b.sync_import(now, &r);
        if p < 2 {
            assert_eq!(res, Ok(Imported::Created));
        } else {
            assert_eq!(res, Err(ImportRefusal::TableFull { max: 2 }));
        }
    }
    assert_eq!(b.sync_import_counts().table_full, 1);
}

/// The whole chain: the active's feed through a sender, the bytes through a receiver, into
/// the standby.
#[test]
fn feed_sender_receiver_import() {
    let mut a = engine([RS1, RS2], None);
    a.enable_sync_feed(SyncFeedConfig::default());
    let mut b = engine([RS2, RS1], None);
    let mut tx = sender();
    let mut rx = receiver();
    let t0 = Instant::from_secs(1);
    for p in 0..100 {
        a.new_connection(t0, &syn(p)).expect("scheduled");
        a.in_packet(t0, &ck(p), TcpFlags::ACK);
    }
    a.drain_sync_feed(t0, usize::MAX, |r| tx.push(t0, &r));
    let t1 = t0 + Duration::from_millis(20);
    let mut imported = 0;
    while let Some(d) = tx.poll_transmit(t1) {
        if let Received::Update(entries) = rx.handle_datagram(&d).expect("valid") {
            for r in entries {
                b.sync_import(t1, &r).expect("imported");
                imported += 1;
            }
        }
    }
    assert_eq!(imported, 200, "new and established, per connection");
    let c = b.sync_import_counts();
    assert_eq!((c.created, c.updated), (100, 100));
    for p in 0..100 {
        let want = a.conns().lookup_in(t1, &ck(p)).expect("on a").dest;
        let want = a.services().dest(want).expect("live").addr();
        match b.in_packet(t1, &ck(p), TcpFlags::ACK) {
            Delivery::Forward(f) => assert_eq!(f.daddr, want),
            other => panic!("{other:?}"),
        }
    }
    b.check_invariants().expect("consistent");
}
