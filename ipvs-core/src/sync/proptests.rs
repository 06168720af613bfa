//! Property tests: any records survive sender → bytes → receiver unchanged (timeouts at
//! millisecond resolution); no input makes the receiver panic; a valid datagram with any
//! byte changed is refused.

use core::net::Ipv4Addr;
use core::time::Duration;

use proptest::prelude::*;

use super::wire::{self, Header, Kind};
use super::*;
use crate::conn::{TcpState, TemplateService};
use crate::time::Instant;
use crate::types::Protocol;

fn key() -> SyncKey {
    SyncKey::new(b"proptest key, long enough").expect("long enough")
}

fn addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn timeout() -> impl Strategy<Value = Duration> {
    (0..=u64::from(wire::MAX_TIMEOUT_MS)).prop_map(Duration::from_millis)
}

fn conn() -> impl Strategy<Value = SyncRecord> {
    (
        any::<bool>(),
        (addr(), any::<u16>(), addr(), any::<u16>()),
        (any::<u32>(), addr(), any::<u16>()),
        0..3u8,
        0..TcpState::COUNT,
        timeout(),
    )
        .prop_map(
            |(tcp, (caddr, cport, vaddr, vport), (fwmark, daddr, dport), m, s, timeout)| {
                let (proto, state) = if tcp {
                    (
                        Protocol::Tcp,
                        ConnState::Tcp(TcpState::from_index(s).expect("in range")),
                    )
                } else {
                    (Protocol::Udp, ConnState::Udp)
                };
                SyncRecord::Conn(ConnRecord {
                    key: ConnKey {
                        proto,
                        caddr,
                        cport,
                        vaddr,
                        vport,
                    },
                    fwmark,
                    daddr,
                    dport,
                    fwd: [
                        ForwardMethod::Masq,
                        ForwardMethod::Route,
                        ForwardMethod::Tunnel,
                    ][usize::from(m)],
                    state,
                    timeout,
                })
            },
        )
}

fn template() -> impl Strategy<Value = SyncRecord> {
    let service = prop_oneof![
        (1..=u32::MAX).prop_map(TemplateService::Fwmark),
        (any::<bool>(), addr(), any::<u16>()).prop_map(|(tcp, vaddr, vport)| {
            TemplateService::Port {
                proto: if tcp { Protocol::Tcp } else { Protocol::Udp },
                vaddr,
                vport,
            }
        }),
    ];
    (addr(), service, addr(), any::<u16>(), timeout()).prop_map(
        |(client, service, daddr, dport, timeout)| {
            SyncRecord::Template(TemplateRecord {
                key: TemplateKey { client, service },
                daddr,
                dport,
                timeout,
            })
        },
    )
}

fn record() -> impl Strategy<Value = SyncRecord> {
    prop_oneof![conn(), template()]
}

proptest! {
    #[test]
    fn records_survive_sender_and_receiver(
        recs in prop::collection::vec(record(), 0..200),
        max_datagram in 96usize..3000,
    ) {
        let mut tx = Sender::new(key(), SenderConfig {
            max_datagram,
            max_queued: 10_000,
            ..SenderConfig::default()
        }).expect("valid");
        let now = Instant::from_secs(1);
        for r in &recs {
            tx.push(now, r);
        }
        let mut rx = Receiver::new(key(), ReceiverConfig::default());
        let mut got = Vec::new();
        let later = now + Duration::from_secs(1);
        while let Some(d) = tx.poll_transmit(later) {
            prop_assert!(d.len() <= max_datagram);
            match rx.handle_datagram(&d) {
                Ok(Received::Update(e)) => got.extend(e),
                other => prop_assert!(false, "{other:?}"),
            }
        }
        prop_assert_eq!(got, recs);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut rx = Receiver::new(key(), ReceiverConfig::default());
        let _ = rx.handle_datagram(&bytes);
        // The same bytes behind a valid-looking prefix reach the later checks.
        let mut b = b"LVSS\x01".to_vec();
        b.extend_from_slice(&bytes);
        prop_assert!(rx.handle_datagram(&b).is_err());
    }

    /// The fuzz body's structured part: records aimed at the lab's services imported with
    /// time passing, invariants after every step, then exported into a second engine
    /// that must take every record.
    #[test]
    fn import_then_export_into_another_engine(data in prop::collection::vec(any::<u8>(), 0..600)) {
        super::fuzzing::records_body(&data);
    }

    #[test]
    fn any_changed_byte_is_refused(
        recs in prop::collection::vec(record(), 1..5),
        at in any::<prop::sample::Index>(),
        flip in 1..=255u8,
    ) {
        let h = Header {
            kind: Kind::Update,
            syncd_id: 1,
            boot_id: 1,
            sequence: 1,
            session: 0,
            count: 0,
            end_total: 0,
        };
        let mut b = wire::to_bytes(&h, &recs, &key());
        let i = at.index(b.len());
        b[i] ^= flip;
        let mut rx = Receiver::new(key(), ReceiverConfig::default());
        prop_assert!(rx.handle_datagram(&b).is_err());
    }
}
