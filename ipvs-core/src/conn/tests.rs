//! Unit tests of the table: packet sequences with their accounting, deadlines, the bound,
//! templates.

use core::net::Ipv4Addr;
use core::time::Duration;

use super::*;
use crate::time::Instant;
use crate::types::{DestId, ForwardMethod, Protocol};

const SYN: TcpFlags = TcpFlags::SYN;
const ACK: TcpFlags = TcpFlags::ACK;
const FIN: TcpFlags = TcpFlags::FIN;
const RST: TcpFlags = TcpFlags::RST;

const D1: DestId = DestId(1);
const RIP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);

fn table(max: usize) -> ConnTable {
    ConnTable::new(ConnTableConfig {
        max_entries: max,
        initial_capacity: 16,
        ..ConnTableConfig::default()
    })
}

fn key(proto: Protocol, cport: u16) -> ConnKey {
    ConnKey {
        proto,
        caddr: Ipv4Addr::new(192, 168, 0, 10),
        cport,
        vaddr: Ipv4Addr::new(10, 0, 0, 1),
        vport: 80,
    }
}

fn reply(k: &ConnKey) -> ReplyKey {
    ReplyKey {
        proto: k.proto,
        daddr: RIP,
        dport: 8080,
        caddr: k.caddr,
        cport: k.cport,
    }
}

fn resolve(d: DestId) -> Option<(Ipv4Addr, u16)> {
    (d == D1).then_some((RIP, 8080))
}

fn new_conn(k: ConnKey, fwd: ForwardMethod) -> NewConn {
    NewConn {
        key: k,
        dest: D1,
        fwd,
        template: None,
    }
}

fn t(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

fn ev(from: Option<ConnClass>, to: Option<ConnClass>) -> Option<Accounting> {
    Some(Accounting { dest: D1, from, to })
}

use ConnClass::{Active, Inactive, Template};

#[test]
fn nat_handshake_data_close_with_accounting() {
    let mut tab = table(16);
    let k = key(Protocol::Tcp, 40000);
    let ins = tab
        .insert(t(0), new_conn(k, ForwardMethod::Masq), SYN)
        .expect("room");
    // SYN_RECV is active (kernel `tcp_state_active_table`, Linux 4.8+).
    assert_eq!(ins.created, ev(None, Some(Active)).expect("some"));
    assert_eq!(ins.info.state, ConnState::Tcp(TcpState::SynRecv));
    assert_eq!(ins.info.expires, t(60));
    assert!(!ins.info.no_output);

    let o = tab
        .out_packet(t(1), &reply(&k), SYN | ACK, resolve)
        .expect("reply matches");
    assert_eq!(o.info.state, ConnState::Tcp(TcpState::SynRecv));
    assert_eq!(o.accounting, None);

    let o = tab.in_packet(t(1), &k, ACK).expect("live");
    assert_eq!(o.info.state, ConnState::Tcp(TcpState::Established));
    assert_eq!(o.accounting, None, "SYN_RECV -> ESTABLISHED stays active");
    assert_eq!(o.info.expires, t(901));

    let o = tab
        .out_packet(t(2), &reply(&k), ACK, resolve)
        .expect("data");
    assert_eq!(o.accounting, None);
    assert_eq!(o.info.expires, t(902));

    let o = tab.in_packet(t(3), &k, FIN | ACK).expect("live");
    assert_eq!(o.info.state, ConnState::Tcp(TcpState::CloseWait));
    assert_eq!(o.accounting, ev(Some(Active), Some(Inactive)));
    assert_eq!(o.info.expires, t(63));

    let o = tab
        .out_packet(t(3), &reply(&k), FIN | ACK, resolve)
        .expect("live");
    assert_eq!(o.info.state, ConnState::Tcp(TcpState::TimeWait));
    let o = tab.in_packet(t(4), &k, ACK).expect("live");
    assert_eq!(o.info.state, ConnState::Tcp(TcpState::TimeWait));
    assert_eq!(o.info.expires, t(124));
    assert_eq!(tab.dest_counts()[&D1], [0, 1, 0]);

    // Gone at the deadline, for lookups at once and for the sweep.
    assert!(tab.lookup_in(t(124), &k).is_none());
    assert!(tab.lookup_in(t(123), &k).is_some());
    let mut removed = vec![];
    let r = tab.expire(t(124), |a| removed.push(a));
    assert_eq!(r.conns, 1);
    assert_eq!(
        removed,
        vec![Accounting {
            dest: D1,
            from: Some(Inactive),
            to: None
        }]
    );
    assert!(tab.is_empty());
    assert_eq!(tab.stats().expired, 1);
}

#[test]
fn reset_closes_established() {
    let mut tab = table(16);
    let k = key(Protocol::Tcp, 1);
    tab.insert(t(0), new_conn(k, ForwardMethod::Masq), SYN)
        .expect("room");
    tab.in_packet(t(0), &k, ACK).expect("live");
    let o = tab.in_packet(t(1), &k, RST).expect("live");
    assert_eq!(o.info.state, ConnState::Tcp(TcpState::Close));
    assert_eq!(o.accounting, ev(Some(Active), Some(Inactive)));
    assert_eq!(o.info.expires, t(11));
}

#[test]
fn direct_routing_uses_input_only_until_a_reply() {
    let mut tab = table(16);
    let k = key(Protocol::Tcp, 2);
    let ins = tab
        .insert(t(0), new_conn(k, ForwardMethod::Route), SYN)
        .expect("room");
    assert!(ins.info.no_output);
    tab.in_packet(t(0), &k, ACK).expect("live");
    // A client FIN on an input-only path is FIN_WAIT (input would give CLOSE_WAIT).
    let o = tab.in_packet(t(1), &k, FIN | ACK).expect("live");
    assert_eq!(o.info.state, ConnState::Tcp(TcpState::FinWait));
    assert_eq!(o.info.expires, t(121));

    // Non-NAT replies match on the virtual address, and clear the input-only mark.
    let k2 = key(Protocol::Tcp, 3);
    tab.insert(t(0), new_conn(k2, ForwardMethod::Tunnel), SYN)
        .expect("room");
    let r = ReplyKey {
        daddr: k2.vaddr,
        dport: k2.vport,
        ..reply(&k2)
    };
    assert!(tab.lookup_out(t(0), &reply(&k2), resolve).is_none());
    let o = tab
        .out_packet(t(0), &r, SYN | ACK, resolve)
        .expect("vip reply");
    assert!(!o.info.no_output);
    tab.in_packet(t(0), &k2, ACK).expect("live");
    let o = tab.in_packet(t(1), &k2, FIN).expect("live");
    assert_eq!(o.info.state, ConnState::Tcp(TcpState::CloseWait));
}

#[test]
fn udp_is_inactive_with_udp_timeout() {
    let mut tab = table(16);
    let k = key(Protocol::Udp, 5353);
    let ins = tab
        .insert(t(0), new_conn(k, ForwardMethod::Masq), TcpFlags::NONE)
        .expect("room");
    assert_eq!(ins.info.state, ConnState::Udp);
    assert_eq!(ins.created.to, Some(Inactive));
    assert_eq!(ins.info.expires, t(300));
    let o = tab.in_packet(t(10), &k, SYN).expect("live");
    assert_eq!(o.accounting, None);
    assert_eq!(o.info.expires, t(310));
    // A TCP key with the same numbers is a different connection.
    assert!(tab.lookup_in(t(10), &key(Protocol::Tcp, 5353)).is_none());
}

#[test]
fn set_timeouts_applies_at_next_packet() {
    let mut tab = table(16);
    let k = key(Protocol::Tcp, 7);
    tab.insert(t(0), new_conn(k, ForwardMethod::Masq), SYN)
        .expect("room");
    tab.in_packet(t(0), &k, ACK).expect("live");
    tab.set_timeouts(TimeoutUpdate {
        tcp: 30,
        tcpfin: 0,
        udp: 0,
    })
    .expect("ok");
    assert_eq!(tab.timeouts().ipvsadm_triple(), (30, 120, 300));
    assert_eq!(tab.lookup_in(t(1), &k).expect("live").expires, t(900));
    let o = tab.in_packet(t(1), &k, ACK).expect("live");
    assert_eq!(o.info.expires, t(31));
    assert!(matches!(
        tab.set_timeouts(TimeoutUpdate {
            tcp: 0,
            tcpfin: 2_678_401,
            udp: 0
        }),
        Err(ConnError::Timeout(_))
    ));
}

#[test]
fn every_state_gets_its_timeout() {
    let mut tab = table(16);
    tab.set_timeouts(TimeoutUpdate {
        tcp: 0,
        tcpfin: 0,
        udp: 0,
    })
    .expect("no-op");
    for s in TcpState::ALL {
        let k = key(Protocol::Tcp, 100 + s.index() as u16);
        let c = new_conn(k, ForwardMethod::Masq);
        let ins = tab
            .insert_synced(t(0), c, ConnState::Tcp(s), Duration::from_secs(5))
            .expect("room");
        assert_eq!(ins.info.expires, t(5));
        assert_eq!(
            ins.created.to,
            Some(if s.is_active() { Active } else { Inactive })
        );
        // An output RST moves each state as the table says; the refresh must use the new
        // state's timeout.
        let o = tab
            .out_packet(t(1), &reply(&k), RST, resolve)
            .expect("live");
        let ConnState::Tcp(now_state) = o.info.state else {
            panic!("tcp")
        };
        let secs = u64::from(tab.timeouts().tcp_secs(now_state));
        assert_eq!(o.info.expires, t(1 + secs), "{s} -> {now_state}");
    }
    let bad = tab.insert_synced(
        t(0),
        new_conn(key(Protocol::Udp, 1), ForwardMethod::Masq),
        ConnState::Tcp(TcpState::Established),
        Duration::from_secs(1),
    );
    assert!(matches!(bad, Err(ConnError::StateMismatch { .. })));
}

#[test]
fn full_table_refuses_and_counts() {
    let mut tab = table(2);
    tab.insert(
        t(0),
        new_conn(key(Protocol::Tcp, 1), ForwardMethod::Masq),
        SYN,
    )
    .expect("1");
    tab.insert(
        t(0),
        new_conn(key(Protocol::Tcp, 2), ForwardMethod::Masq),
        SYN,
    )
    .expect("2");
    let err = tab
        .insert(
            t(0),
            new_conn(key(Protocol::Tcp, 3), ForwardMethod::Masq),
            SYN,
        )
        .expect_err("full");
    assert_eq!(err, ConnError::TableFull { max: 2 });
    assert_eq!(tab.stats().refused_full, 1);
    assert_eq!(tab.len(), 2);
    // Expired but unswept entries still hold room...
    assert!(
        tab.insert(
            t(100),
            new_conn(key(Protocol::Tcp, 3), ForwardMethod::Masq),
            SYN
        )
        .is_err()
    );
    assert_eq!(tab.stats().refused_full, 2);
    // ...except for their own key, which an insert replaces.
    let ins = tab
        .insert(
            t(100),
            new_conn(key(Protocol::Tcp, 1), ForwardMethod::Masq),
            SYN,
        )
        .expect("replaces expired");
    assert_eq!(ins.replaced, ev(Some(Active), None), "it was in SYN_RECV");
    assert_eq!(tab.stats().expired, 1);
    // Duplicate live key.
    assert!(matches!(
        tab.insert(
            t(100),
            new_conn(key(Protocol::Tcp, 1), ForwardMethod::Masq),
            SYN
        ),
        Err(ConnError::Exists { .. })
    ));
    let mut n = 0;
    tab.expire(t(100), |_| n += 1);
    assert_eq!(n, 1);
    tab.insert(
        t(100),
        new_conn(key(Protocol::Tcp, 3), ForwardMethod::Masq),
        SYN,
    )
    .expect("room");
}

#[test]
fn remove_reports_class() {
    let mut tab = table(4);
    let k = key(Protocol::Tcp, 1);
    tab.insert(t(0), new_conn(k, ForwardMethod::Masq), ACK)
        .expect("sloppy: NONE+ACK");
    assert_eq!(tab.lookup_in(t(0), &k).expect("live").class(), Active);
    assert_eq!(tab.remove(&k), ev(Some(Active), None));
    assert_eq!(tab.remove(&k), None);
}

#[test]
fn fwmark_dest_port_zero_matches_vport() {
    let mut tab = table(4);
    let k = key(Protocol::Tcp, 9);
    tab.insert(t(0), new_conn(k, ForwardMethod::Masq), SYN)
        .expect("room");
    let r = ReplyKey {
        dport: k.vport,
        ..reply(&k)
    };
    assert!(tab.lookup_out(t(0), &r, |_| Some((RIP, 0))).is_some());
    assert!(tab.lookup_out(t(0), &r, |_| None).is_none());
}

fn tkey(last: u8) -> TemplateKey {
    TemplateKey::new(
        Ipv4Addr::new(192, 168, 0, last),
        Ipv4Addr::new(255, 255, 255, 0),
        TemplateService::Port {
            proto: Protocol::Tcp,
            vaddr: Ipv4Addr::new(10, 0, 0, 1),
            vport: 0,
        },
    )
}

#[test]
fn template_outlives_controlled_connections() {
    let mut tab = table(16);
    let ti = tab
        .insert_template(t(0), tkey(10), D1, Duration::from_secs(360))
        .expect("room");
    assert_eq!(ti.created, ev(None, Some(Template)).expect("some"));
    // Same /24: same template.
    let hit = tab.lookup_template(t(1), &tkey(77)).expect("masked key");
    assert_eq!(hit.id, ti.id);
    assert!(matches!(
        tab.insert_template(t(1), tkey(20), D1, Duration::from_secs(1)),
        Err(ConnError::TemplateExists { .. })
    ));
    let k = key(Protocol::Tcp, 1);
    let c = NewConn {
        template: Some(ti.id),
        ..new_conn(k, ForwardMethod::Masq)
    };
    tab.insert(t(300), c, SYN).expect("room");
    tab.in_packet(t(300), &k, ACK).expect("live");
    // Refreshed by the new connection.
    assert_eq!(tab.template(t(300), ti.id).expect("live").expires, t(660));
    assert_eq!(tab.template(t(300), ti.id).expect("live").n_control, 1);
    // Past its deadline the template stays while the connection lives, and is re-armed.
    let r = tab.expire(t(700), |_| {});
    assert_eq!((r.conns, r.templates, r.rearmed), (0, 0, 1));
    assert_eq!(
        tab.lookup_template(t(700), &tkey(10))
            .expect("rearmed")
            .expires,
        t(760)
    );
    // Connection ends; the template goes at the same sweep once its own deadline passed.
    tab.in_packet(t(710), &k, RST).expect("live");
    let mut removed = vec![];
    let r = tab.expire(t(760), |a| removed.push(a));
    assert_eq!((r.conns, r.templates), (1, 1));
    assert_eq!(
        removed[1],
        Accounting {
            dest: D1,
            from: Some(Template),
            to: None
        }
    );
    assert!(tab.lookup_template(t(760), &tkey(10)).is_none());
    assert!(tab.template(t(760), ti.id).is_none());
    assert!(matches!(
        tab.touch_template(t(760), ti.id),
        Err(ConnError::UnknownTemplate { .. })
    ));
    assert!(tab.is_empty());
}

#[test]
fn invalidated_template_lingers_for_its_connections() {
    let mut tab = table(16);
    let a = tab
        .insert_template(t(0), tkey(10), D1, Duration::from_secs(360))
        .expect("room");
    let k = key(Protocol::Tcp, 1);
    let c = NewConn {
        template: Some(a.id),
        ..new_conn(k, ForwardMethod::Masq)
    };
    tab.insert(t(0), c, SYN).expect("room");
    tab.invalidate_template(a.id).expect("live");
    assert!(tab.lookup_template(t(0), &tkey(10)).is_none());
    let b = tab
        .insert_template(t(0), tkey(10), DestId(2), Duration::from_secs(360))
        .expect("room");
    assert_ne!(a.id, b.id);
    assert_eq!(tab.stats().templates, 2);
    assert_eq!(tab.templates(t(0)).count(), 2);
    assert_eq!(tab.expire(t(1), |_| {}).templates, 0);
    tab.remove(&k).expect("present");
    assert_eq!(tab.expire(t(1), |_| {}).templates, 1);
    assert_eq!(
        tab.lookup_template(t(1), &tkey(10)).expect("new one").dest,
        DestId(2)
    );
    // A stale handle cannot be used for a new connection.
    let c = NewConn {
        template: Some(a.id),
        ..new_conn(k, ForwardMethod::Masq)
    };
    assert!(matches!(
        tab.insert(t(1), c, SYN),
        Err(ConnError::UnknownTemplate { .. })
    ));
}

#[test]
fn templates_count_against_the_bound() {
    let mut tab = table(1);
    tab.insert_template(t(0), tkey(1), D1, Duration::from_secs(10))
        .expect("room");
    assert!(matches!(
        tab.insert(
            t(0),
            new_conn(key(Protocol::Tcp, 1), ForwardMethod::Masq),
            SYN
        ),
        Err(ConnError::TableFull { max: 1 })
    ));
    // An expired template with the same key is replaced in place.
    let r = tab
        .insert_template(t(10), tkey(1), D1, Duration::from_secs(10))
        .expect("replace");
    assert_eq!(r.replaced, ev(Some(Template), None));
}

#[test]
fn poll_timeout_follows_sweeps() {
    let mut tab = table(4);
    assert_eq!(tab.poll_timeout(), None);
    tab.insert(
        t(5),
        new_conn(key(Protocol::Udp, 1), ForwardMethod::Masq),
        ACK,
    )
    .expect("room");
    assert_eq!(tab.poll_timeout(), Some(Instant::ZERO));
    tab.expire(t(5), |_| {});
    assert_eq!(tab.poll_timeout(), Some(t(6)));
    assert_eq!(tab.conns(t(5)).count(), 1);
    assert_eq!(tab.conns(t(305)).count(), 0);
}

#[test]
fn memory_is_reported() {
    let mut tab = table(1000);
    for p in 0..500 {
        tab.insert(
            t(0),
            new_conn(key(Protocol::Tcp, p), ForwardMethod::Masq),
            SYN,
        )
        .expect("room");
    }
    let per = tab.conn_memory_bytes() / 500;
    assert!((24..=64).contains(&per), "{per} bytes per entry");
    assert!(tab.memory_bytes() >= tab.conn_memory_bytes());
    tab.check_invariants().expect("consistent");
}

#[test]
fn debug_check_skips_presized_tables() {
    // A full check walks every bucket: a table pre-sized like lvsd's (65536) would pay it
    // per packet in debug builds, so only small tables are checked after each mutation.
    assert!(table(1 << 20).debug_check_due());
    let big = ConnTable::new(ConnTableConfig {
        max_entries: 1 << 20,
        initial_capacity: 1 << 16,
        ..ConnTableConfig::default()
    });
    assert!(!big.debug_check_due());
}
