//! Loopback only: every socket is bound to 127.0.0.1 with a port the kernel picks.

use std::time::Duration as StdDuration;

use super::*;
use crate::wire::auth::AuthKey;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const CLUSTER: u32 = 7;

fn socket() -> (UdpSocket, SocketAddrV4) {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind loopback");
    let addr = match s.local_addr().expect("local addr") {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => unreachable!("bound to an IPv4 address"),
    };
    (s, addr)
}

fn keyed(key: &[u8]) -> Keyed {
    Keyed {
        key: AuthKey::new(key).expect("long enough"),
        file: "/test/key".into(),
        cluster_id: CLUSTER,
    }
}

fn codec(role: Role, key: Option<&[u8]>) -> Codec {
    Codec::new(key.map(keyed).as_ref(), role, 1)
}

/// A primary and a backup transport on one path each.
fn pair(key: Option<&[u8]>) -> (Transport, Transport) {
    let (sp, ap) = socket();
    let (sb, ab) = socket();
    let p = Transport::with_sockets((sp, ab), None, codec(Role::Primary, key)).expect("primary");
    let b = Transport::with_sockets((sb, ap), None, codec(Role::Backup, key)).expect("backup");
    (p, b)
}

/// Calls `recv_all` until `done` holds (loopback delivery is quick but not instantaneous).
fn recv_until(t: &mut Transport, done: impl Fn(&Counters) -> bool) -> Vec<Received> {
    let mut got = Vec::new();
    for _ in 0..200 {
        got.extend(t.recv_all(Instant::ZERO));
        if done(t.counters()) {
            return got;
        }
        std::thread::sleep(StdDuration::from_millis(5));
    }
    panic!("timed out; counters {:?}, got {got:?}", t.counters());
}

fn addr_of(t: &Transport, path: Path) -> SocketAddrV4 {
    match t.local_addrs().into_iter().find(|(p, _)| *p == path) {
        Some((_, Ok(SocketAddr::V4(a)))) => a,
        other => panic!("no {path:?} address: {other:?}"),
    }
}

fn exchange(key: Option<&[u8]>) {
    let (mut p, mut b) = pair(key);
    assert_eq!(p.send(Instant::ZERO, PeerState::Active), 1);
    let got = recv_until(&mut b, |c| c.accepted == 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].state, PeerState::Active);
    assert_eq!(got[0].path, Path::Public);
    assert_eq!(got[0].from, addr_of(&p, Path::Public));

    assert_eq!(b.send(Instant::ZERO, PeerState::Standby), 1);
    let got = recv_until(&mut p, |c| c.accepted == 1);
    assert_eq!(got[0].state, PeerState::Standby);
    assert_eq!(p.counters().total_dropped(), 0);
    assert_eq!(b.counters().total_dropped(), 0);
    assert_eq!(p.counters().sent, 1);
}

#[test]
fn piranha_heartbeats_go_both_ways() {
    exchange(None);
}

#[test]
fn authenticated_heartbeats_go_both_ways() {
    exchange(Some(KEY));
}

#[test]
fn two_paths_deliver_once_when_keyed_and_twice_in_piranha_format() {
    for key in [Some(KEY), None] {
        let ((sp1, ap1), (sp2, ap2)) = (socket(), socket());
        let ((sb1, ab1), (sb2, ab2)) = (socket(), socket());
        let mut p =
            Transport::with_sockets((sp1, ab1), Some((sp2, ab2)), codec(Role::Primary, key))
                .expect("primary");
        let mut b = Transport::with_sockets((sb1, ap1), Some((sb2, ap2)), codec(Role::Backup, key))
            .expect("backup");
        assert_eq!(p.fds().count(), 2);
        assert_eq!(p.send(Instant::ZERO, PeerState::Active), 2);
        let got = if key.is_some() {
            recv_until(&mut b, |c| c.accepted + c.duplicate == 2)
        } else {
            recv_until(&mut b, |c| c.accepted == 2)
        };
        let c = b.counters();
        if key.is_some() {
            assert_eq!((got.len(), c.accepted, c.duplicate), (1, 1, 1), "{c:?}");
        } else {
            assert_eq!(got.len(), 2);
            assert_ne!(got[0].path, got[1].path);
        }
        assert_eq!(c.total_dropped() - c.duplicate, 0, "{c:?}");
    }
}

#[test]
fn a_spoofed_source_is_dropped_and_counted() {
    for key in [Some(KEY), None] {
        let (_p, mut b) = pair(key);
        let (intruder, _) = socket();
        let b_addr = addr_of(&b, Path::Public);
        // A well-formed heartbeat, from the wrong port: never acted on.
        let frame: Vec<u8> = match key {
            Some(k) => auth::Sender::new(AuthKey::new(k).expect("key"), Role::Primary, CLUSTER, 1)
                .heartbeat(PeerState::Active)
                .to_vec(),
            None => piranha::Repr::lvs(PeerState::Active).to_bytes().to_vec(),
        };
        intruder.send_to(&frame, b_addr).expect("send");
        let got = recv_until(&mut b, |c| c.unexpected_source == 1);
        assert!(got.is_empty());
        assert_eq!(b.counters().accepted, 0);
        assert_eq!(b.counters().dropped(DropReason::UnexpectedSource), 1);
    }
}

/// The backup's transport with a raw socket standing in for the primary.
fn backup_and_raw_primary(key: Option<&[u8]>) -> (Transport, UdpSocket, SocketAddrV4) {
    let (raw, raw_addr) = socket();
    let (sb, b_addr) = socket();
    let b = Transport::with_sockets((sb, raw_addr), None, codec(Role::Backup, key)).expect("b");
    (b, raw, b_addr)
}

#[test]
fn a_replayed_heartbeat_is_dropped_and_counted() {
    let (mut b, raw, to) = backup_and_raw_primary(Some(KEY));
    let mut tx = auth::Sender::new(AuthKey::new(KEY).expect("key"), Role::Primary, CLUSTER, 9);
    let frame = tx.heartbeat(PeerState::Active);
    raw.send_to(&frame, to).expect("send");
    let got = recv_until(&mut b, |c| c.accepted == 1);
    assert_eq!(got.len(), 1);
    raw.send_to(&frame, to).expect("replay");
    let got = recv_until(&mut b, |c| c.replayed == 1);
    assert!(got.is_empty());
    assert_eq!(
        b.counters().duplicate,
        0,
        "same path: a replay, not a duplicate"
    );
}

#[test]
fn a_wrong_key_or_cluster_is_dropped() {
    let (mut b, raw, to) = backup_and_raw_primary(Some(KEY));
    let other = AuthKey::new(b"another key, also long enough").expect("key");
    let mut tx = auth::Sender::new(other, Role::Primary, CLUSTER, 1);
    raw.send_to(&tx.heartbeat(PeerState::Standby), to)
        .expect("send");
    let got = recv_until(&mut b, |c| c.bad_mac == 1);
    assert!(got.is_empty());
    let mut tx = auth::Sender::new(AuthKey::new(KEY).expect("key"), Role::Primary, 8, 1);
    raw.send_to(&tx.heartbeat(PeerState::Standby), to)
        .expect("send");
    assert!(recv_until(&mut b, |c| c.wrong_cluster == 1).is_empty());
    assert_eq!(b.counters().accepted, 0);
}

#[test]
fn a_keyed_node_never_accepts_piranha_frames() {
    let (mut b, raw, to) = backup_and_raw_primary(Some(KEY));
    raw.send_to(&piranha::Repr::lvs(PeerState::Standby).to_bytes(), to)
        .expect("send");
    assert!(recv_until(&mut b, |c| c.unauthenticated == 1).is_empty());
}

#[test]
fn an_unkeyed_node_drops_authenticated_frames() {
    let (mut b, raw, to) = backup_and_raw_primary(None);
    let mut tx = auth::Sender::new(AuthKey::new(KEY).expect("key"), Role::Primary, CLUSTER, 1);
    raw.send_to(&tx.heartbeat(PeerState::Standby), to)
        .expect("send");
    assert!(recv_until(&mut b, |c| c.no_key == 1).is_empty());
}

#[test]
fn truncated_oversized_and_garbage_are_counted() {
    let (mut b, raw, to) = backup_and_raw_primary(Some(KEY));
    let good = auth::Sender::new(AuthKey::new(KEY).expect("key"), Role::Primary, CLUSTER, 1)
        .heartbeat(PeerState::Active);
    raw.send_to(&good[..30], to).expect("send");
    raw.send_to(b"ab", to).expect("send");
    let mut long = good.to_vec();
    long.push(0);
    raw.send_to(&long, to).expect("send");
    raw.send_to(&[0x55; 1000], to).expect("send");
    raw.send_to(b"garbage that is not a heartbeat", to)
        .expect("send");
    let got = recv_until(&mut b, |c| c.total_dropped() == 5);
    assert!(got.is_empty());
    let c = b.counters();
    assert_eq!((c.truncated, c.oversized, c.garbled), (2, 1, 2), "{c:?}");

    let (mut b, raw, to) = backup_and_raw_primary(None);
    raw.send_to(b"abc", to).expect("send");
    raw.send_to(&[0u8; 4], to).expect("send");
    let got = recv_until(&mut b, |c| c.total_dropped() == 2);
    assert!(got.is_empty());
    assert_eq!((b.counters().truncated, b.counters().incompatible), (1, 1));
}

#[test]
fn the_log_is_limited_to_one_line_per_reason_per_interval() {
    let mut log = RateLimit::default();
    let t0 = Instant::from_millis(1_000);
    assert_eq!(log.admit("bad_mac", t0), Some(0));
    assert_eq!(log.admit("bad_mac", t0 + StdDuration::from_secs(1)), None);
    assert_eq!(log.admit("stale", t0 + StdDuration::from_secs(1)), Some(0));
    assert_eq!(log.admit("bad_mac", t0 + StdDuration::from_secs(9)), None);
    assert_eq!(
        log.admit("bad_mac", t0 + StdDuration::from_secs(10)),
        Some(2)
    );
    assert_eq!(log.admit("bad_mac", t0 + StdDuration::from_secs(11)), None);
}

#[test]
fn every_reason_has_its_own_counter_and_name() {
    let mut c = Counters::default();
    for (i, r) in DropReason::ALL.iter().enumerate() {
        for _ in 0..=i {
            *c.slot(*r) += 1;
        }
    }
    for (i, r) in DropReason::ALL.iter().enumerate() {
        assert_eq!(c.dropped(*r), i as u64 + 1, "{r:?}");
    }
    let names: std::collections::BTreeSet<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(names.len(), DropReason::ALL.len());
}

#[test]
fn paths_follow_the_configuration() {
    use crate::config::Addresses;
    use crate::machine::Settings;
    let cfg = PulseConfig {
        role: Role::Backup,
        local: Addresses {
            public: Ipv4Addr::new(192, 0, 2, 2),
            private: Some(Ipv4Addr::new(10, 0, 0, 2)),
        },
        partner: Some(Addresses {
            public: Ipv4Addr::new(192, 0, 2, 1),
            private: Some(Ipv4Addr::new(10, 0, 0, 1)),
        }),
        port: 539,
        settings: Settings {
            role: Role::Backup,
            keepalive: Duration::from_secs(2),
            deadtime: Duration::from_secs(5),
            send_heartbeats: true,
            monitor_links: false,
            force_active: false,
        },
        auth: None,
    };
    let paths = Paths::from_config(&cfg).expect("a partner");
    assert_eq!(paths.public.local, "192.0.2.2:539".parse().expect("addr"));
    assert_eq!(paths.public.partner, "192.0.2.1:539".parse().expect("addr"));
    let private = paths.private.expect("private path");
    assert_eq!(private.local, "10.0.0.2:539".parse().expect("addr"));
    assert_eq!(private.partner, "10.0.0.1:539".parse().expect("addr"));
    assert_eq!(
        Paths::from_config(&PulseConfig {
            partner: None,
            ..cfg
        }),
        None
    );
}

#[test]
fn binding_an_address_this_host_lacks_names_it() {
    let paths = Paths {
        public: PathAddrs {
            local: "192.0.2.250:0".parse().expect("addr"),
            partner: "127.0.0.1:9".parse().expect("addr"),
        },
        private: None,
    };
    let e = Transport::bind(&paths, Codec::Piranha).expect_err("not local");
    assert!(e.to_string().contains("192.0.2.250:0"), "{e}");
}
