//! Property tests: random operation sequences against a plain `BTreeMap` model.
//!
//! The model keeps every stored entry (live or expired-unswept) with an exact millisecond
//! deadline; time moves in multiples of the 10 ms tick so both agree exactly. After every
//! operation we check: the table's own invariants; every key's lookup against the model
//! (so no live entry is lost and no expired one is returned); the accounting events summed
//! per destination equal both the table's and the model's counts; counters are exact; every
//! live connection's template is present.

use std::collections::BTreeMap;

use core::net::Ipv4Addr;
use core::time::Duration;

use proptest::prelude::*;

use super::tcp::next_state;
use super::*;
use crate::time::Instant;
use crate::types::{DestId, ForwardMethod, Protocol};

const CADDRS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 168, 0, 1),
    Ipv4Addr::new(192, 168, 0, 2),
    Ipv4Addr::new(192, 168, 1, 1),
];
const VADDRS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)];
const FWDS: [ForwardMethod; 3] = [
    ForwardMethod::Masq,
    ForwardMethod::Route,
    ForwardMethod::Tunnel,
];
const NKEYS: usize = 48;
const NTKEYS: usize = 12;

fn key_of(i: usize) -> ConnKey {
    let i = i % NKEYS;
    ConnKey {
        proto: if i & 1 == 0 {
            Protocol::Tcp
        } else {
            Protocol::Udp
        },
        cport: 1000 + ((i >> 1) & 1) as u16,
        vport: if (i >> 2) & 1 == 0 { 80 } else { 443 },
        vaddr: VADDRS[(i >> 3) & 1],
        caddr: CADDRS[(i >> 4) % 3],
    }
}

fn tkey_of(i: usize) -> TemplateKey {
    let i = i % NTKEYS;
    let mask = if i & 1 == 0 {
        Ipv4Addr::BROADCAST
    } else {
        Ipv4Addr::new(255, 255, 255, 0)
    };
    let service = match (i >> 1) % 3 {
        0 => TemplateService::Port {
            proto: Protocol::Tcp,
            vaddr: VADDRS[0],
            vport: 80,
        },
        1 => TemplateService::Port {
            proto: Protocol::Udp,
            vaddr: VADDRS[0],
            vport: 0,
        },
        _ => TemplateService::Fwmark(7),
    };
    TemplateKey::new(CADDRS[(i >> 1) % 2], mask, service)
}

fn dest_addr(d: DestId) -> Option<(Ipv4Addr, u16)> {
    // Dest 3 has port 0 (fwmark-style: keeps the virtual port); dest 4 is unknown.
    match d.0 {
        0..=2 => Some((Ipv4Addr::new(172, 16, 0, d.0 as u8), 8000 + d.0 as u16)),
        3 => Some((Ipv4Addr::new(172, 16, 0, 3), 0)),
        _ => None,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert {
        k: usize,
        dest: u32,
        fwd: usize,
        flags: u8,
        tpl: Option<usize>,
    },
    In {
        k: usize,
        flags: u8,
    },
    Out {
        k: usize,
        dest: u32,
        via_vip: bool,
        flags: u8,
    },
    Advance {
        ms: u64,
    },
    Expire,
    Remove {
        k: usize,
    },
    TplInsert {
        tk: usize,
        dest: u32,
        secs: u64,
    },
    TplLookup {
        tk: usize,
    },
    TplInvalidate {
        which: usize,
    },
    TplTouch {
        which: usize,
    },
    SetTimeouts {
        tcp: u32,
        tcpfin: u32,
        udp: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..NKEYS, 0u32..5, 0..3usize, any::<u8>(), proptest::option::weighted(0.4, 0..8usize))
            .prop_map(|(k, dest, fwd, flags, tpl)| Op::Insert { k, dest, fwd, flags, tpl }),
        6 => (0..NKEYS, any::<u8>()).prop_map(|(k, flags)| Op::In { k, flags }),
        3 => (0..NKEYS, 0u32..5, any::<bool>(), any::<u8>())
            .prop_map(|(k, dest, via_vip, flags)| Op::Out { k, dest, via_vip, flags }),
        4 => prop_oneof![0u64..300, 0u64..100_000].prop_map(|t| Op::Advance { ms: t * 10 }),
        2 => Just(Op::Expire),
        1 => (0..NKEYS).prop_map(|k| Op::Remove { k }),
        3 => (0..NTKEYS, 0u32..4, 1u64..400).prop_map(|(tk, dest, secs)| Op::TplInsert { tk, dest, secs }),
        2 => (0..NTKEYS).prop_map(|tk| Op::TplLookup { tk }),
        1 => (0..8usize).prop_map(|which| Op::TplInvalidate { which }),
        1 => (0..8usize).prop_map(|which| Op::TplTouch { which }),
        1 => (0u32..3, 0u32..3, 0u32..3).prop_map(|(a, b, c)| Op::SetTimeouts {
            tcp: a * 7, tcpfin: b * 5, udp: c * 11
        }),
    ]
}

#[derive(Debug, Clone)]
struct MConn {
    dest: DestId,
    fwd: ForwardMethod,
    state: ConnState,
    deadline: u64,
    tpl: Option<usize>,
    no_output: bool,
}

#[derive(Debug, Clone)]
struct MTpl {
    key: TemplateKey,
    dest: DestId,
    deadline: u64,
    timeout_ms: u64,
    n_control: u32,
    detached: bool,
}

#[derive(Debug, Default)]
struct Model {
    now: u64,
    max: usize,
    timeouts: Timeouts,
    conns: BTreeMap<ConnKey, MConn>,
    tpls: BTreeMap<usize, MTpl>,
    /// Every template handle ever issued, with its model id, in issue order.
    issued: Vec<(usize, TemplateId)>,
    next_mid: usize,
    refused_full: u64,
    expired: u64,
    /// Sum of every accounting event the table returned.
    tally: BTreeMap<DestId, [i64; 3]>,
}

type Acc = (DestId, Option<ConnClass>, Option<ConnClass>);

fn acc(a: Accounting) -> Acc {
    (a.dest, a.from, a.to)
}

impl Model {
    fn live(&self, c: &MConn) -> bool {
        self.now < c.deadline
    }
    fn tpl_live(&self, t: &MTpl) -> bool {
        !t.detached && (t.n_control > 0 || self.now < t.deadline)
    }
    fn secs_ms(s: u32) -> u64 {
        u64::from(s) * 1000
    }
    fn state_ms(&self, s: ConnState) -> u64 {
        match s {
            ConnState::Tcp(t) => Self::secs_ms(self.timeouts.tcp_secs(t)),
            ConnState::Udp => Self::secs_ms(self.timeouts.udp_secs()),
        }
    }
    fn len(&self) -> usize {
        self.conns.len() + self.tpls.len()
    }
    fn record(&mut self, a: Accounting) {
        a.apply_to(self.tally.entry(a.dest).or_default());
    }
    fn counts(&self) -> BTreeMap<DestId, [i64; 3]> {
        let mut m: BTreeMap<DestId, [i64; 3]> = BTreeMap::new();
        for c in self.conns.values() {
            m.entry(c.dest).or_default()[c.state.class().index()] += 1;
        }
        for t in self.tpls.values() {
            m.entry(t.dest).or_default()[ConnClass::Template.index()] += 1;
        }
        m
    }
    fn issued(&self, which: usize) -> Option<(usize, TemplateId)> {
        (!self.issued.is_empty()).then(|| self.issued[which % self.issued.len()])
    }
    fn indexed_tpl(&self, key: &TemplateKey) -> Option<usize> {
        self.tpls
            .iter()
            .find(|(_, t)| !t.detached && t.key == *key)
            .map(|(m, _)| *m)
    }
    fn step(&mut self, key: &ConnKey, dir: TcpDirection, flags: TcpFlags) -> (ConnState, MConn) {
        let c = self.conns.get(key).cloned().expect("caller checked");
        let old = c.state;
        let new = match old {
            ConnState::Tcp(s) => ConnState::Tcp(next_state(s, dir, flags)),
            ConnState::Udp => ConnState::Udp,
        };
        let deadline = self.now + self.state_ms(new);
        let c2 = MConn {
            state: new,
            deadline,
            ..c
        };
        self.conns.insert(*key, c2.clone());
        (old, c2)
    }
}

fn nonzero(m: &BTreeMap<DestId, [i64; 3]>) -> BTreeMap<DestId, [i64; 3]> {
    m.iter()
        .filter(|(_, c)| **c != [0; 3])
        .map(|(d, c)| (*d, *c))
        .collect()
}

fn check_outcome(m: &mut Model, o: PacketOutcome, old: ConnState, c: &MConn) {
    assert_eq!(o.old_state, old);
    assert_eq!(o.info.state, c.state);
    assert_eq!(o.info.dest, c.dest);
    assert_eq!(o.info.no_output, c.no_output);
    assert_eq!(o.info.expires.as_millis(), c.deadline);
    let want = (old.class() != c.state.class()).then_some(Accounting {
        dest: c.dest,
        from: Some(old.class()),
        to: Some(c.state.class()),
    });
    assert_eq!(o.accounting, want);
    if let Some(a) = o.accounting {
        m.record(a);
    }
}

fn apply(tab: &mut ConnTable, m: &mut Model, op: &Op) {
    let now = Instant::from_millis(m.now);
    match *op {
        Op::Insert {
            k,
            dest,
            fwd,
            flags,
            tpl,
        } => {
            let key = key_of(k);
            let flags = TcpFlags::from_header_byte(flags);
            let handle = tpl.and_then(|w| m.issued(w));
            let conn = NewConn {
                key,
                dest: DestId(dest),
                fwd: FWDS[fwd],
                template: handle.map(|h| h.1),
            };
            let res = tab.insert(now, conn, flags);
            // Expected, in the table's order of checks.
            if let Some((mid, _)) = handle
                && !m.tpls.contains_key(&mid)
            {
                assert!(
                    matches!(res, Err(ConnError::UnknownTemplate { .. })),
                    "{res:?}"
                );
                return;
            }
            let mut replaced = None;
            match m.conns.get(&key).cloned() {
                Some(c) if m.live(&c) => {
                    assert!(matches!(res, Err(ConnError::Exists { .. })), "{res:?}");
                    return;
                }
                Some(c) => {
                    m.conns.remove(&key);
                    if let Some(t) = c.tpl {
                        m.tpls.get_mut(&t).expect("controls").n_control -= 1;
                    }
                    m.expired += 1;
                    replaced = Some((c.dest, Some(c.state.class()), None));
                }
                None => {
                    if m.len() >= m.max {
                        assert_eq!(res, Err(ConnError::TableFull { max: m.max }));
                        m.refused_full += 1;
                        return;
                    }
                }
            }
            let ins = res.expect("model says insert succeeds");
            assert_eq!(ins.replaced.map(acc), replaced);
            if let Some(r) = ins.replaced {
                m.record(r);
            }
            let no_output = FWDS[fwd] != ForwardMethod::Masq;
            let state = match key.proto {
                Protocol::Udp => ConnState::Udp,
                Protocol::Tcp => {
                    let dir = if no_output {
                        TcpDirection::InputOnly
                    } else {
                        TcpDirection::Input
                    };
                    ConnState::Tcp(next_state(TcpState::None, dir, flags))
                }
            };
            let c = MConn {
                dest: DestId(dest),
                fwd: FWDS[fwd],
                state,
                deadline: m.now + m.state_ms(state),
                tpl: handle.map(|h| h.0),
                no_output,
            };
            if let Some((mid, _)) = handle {
                let t = m.tpls.get_mut(&mid).expect("checked");
                t.n_control += 1;
                t.deadline = m.now + t.timeout_ms;
            }
            assert_eq!(acc(ins.created), (c.dest, None, Some(state.class())));
            m.record(ins.created);
            assert_eq!(ins.info.expires.as_millis(), c.deadline);
            assert_eq!(ins.info.fwd, c.fwd);
            m.conns.insert(key, c);
        }
        Op::In { k, flags } => {
            let key = key_of(k);
            let flags = TcpFlags::from_header_byte(flags);
            let res = tab.in_packet(now, &key, flags);
            match m.conns.get(&key).cloned() {
                Some(c) if m.live(&c) => {
                    let dir = if c.no_output {
                        TcpDirection::InputOnly
                    } else {
                        TcpDirection::Input
                    };
                    let (old, c2) = m.step(&key, dir, flags);
                    check_outcome(m, res.expect("live in model"), old, &c2);
                }
                _ => assert!(res.is_none(), "{res:?}"),
            }
        }
        Op::Out {
            k,
            dest,
            via_vip,
            flags,
        } => {
            let ck = key_of(k);
            let (daddr, dport) = if via_vip {
                (ck.vaddr, ck.vport)
            } else {
                dest_addr(DestId(dest)).map_or((ck.vaddr, 1), |(a, p)| {
                    (a, if p == 0 { ck.vport } else { p })
                })
            };
            let reply = ReplyKey {
                proto: ck.proto,
                daddr,
                dport,
                caddr: ck.caddr,
                cport: ck.cport,
            };
            let candidates: Vec<ConnKey> = m
                .conns
                .iter()
                .filter(|(ck2, c)| {
                    ck2.proto == reply.proto
                        && ck2.caddr == reply.caddr
                        && ck2.cport == reply.cport
                        && m.live(c)
                        && match c.fwd {
                            ForwardMethod::Masq => dest_addr(c.dest).is_some_and(|(a, p)| {
                                a == daddr && (if p == 0 { ck2.vport } else { p }) == dport
                            }),
                            _ => ck2.vaddr == daddr && ck2.vport == dport,
                        }
                })
                .map(|(ck2, _)| *ck2)
                .collect();
            let flags = TcpFlags::from_header_byte(flags);
            let looked = tab.lookup_out(now, &reply, dest_addr);
            let res = tab.out_packet(now, &reply, flags, dest_addr);
            match res {
                None => assert!(candidates.is_empty() && looked.is_none(), "{candidates:?}"),
                Some(o) => {
                    let hit = o.info.key;
                    assert!(candidates.contains(&hit), "{hit:?} not in {candidates:?}");
                    assert_eq!(looked.map(|l| l.key), Some(hit));
                    m.conns.get_mut(&hit).expect("candidate").no_output = false;
                    let (old, c2) = m.step(&hit, TcpDirection::Output, flags);
                    check_outcome(m, o, old, &c2);
                }
            }
        }
        Op::Advance { ms } => m.now += ms,
        Op::Expire => {
            let mut got: Vec<Acc> = vec![];
            let rep = tab.expire(now, |a| got.push(acc(a)));
            let mut want: Vec<Acc> = vec![];
            let dead: Vec<ConnKey> = m
                .conns
                .iter()
                .filter(|(_, c)| !m.live(c))
                .map(|(k, _)| *k)
                .collect();
            for k in dead {
                let c = m.conns.remove(&k).expect("listed");
                if let Some(t) = c.tpl {
                    m.tpls.get_mut(&t).expect("controls").n_control -= 1;
                }
                want.push((c.dest, Some(c.state.class()), None));
            }
            let mut rearmed = 0;
            let now_ms = m.now;
            let mids: Vec<usize> = m.tpls.keys().copied().collect();
            for mid in mids {
                let t = m.tpls.get_mut(&mid).expect("listed");
                let due = now_ms >= t.deadline;
                if t.n_control == 0 && (due || t.detached) {
                    want.push((t.dest, Some(ConnClass::Template), None));
                    m.tpls.remove(&mid);
                } else if due && !t.detached {
                    t.deadline = now_ms + 60_000;
                    rearmed += 1;
                }
            }
            assert_eq!(rep.conns + rep.templates, want.len());
            assert_eq!(rep.rearmed, rearmed);
            m.expired += want.len() as u64;
            got.sort();
            want.sort();
            assert_eq!(got, want);
            for (dest, from, to) in got {
                m.record(Accounting { dest, from, to });
            }
        }
        Op::Remove { k } => {
            let key = key_of(k);
            let res = tab.remove(&key);
            match m.conns.remove(&key) {
                Some(c) => {
                    if let Some(t) = c.tpl {
                        m.tpls.get_mut(&t).expect("controls").n_control -= 1;
                    }
                    assert_eq!(res.map(acc), Some((c.dest, Some(c.state.class()), None)));
                    m.record(res.expect("checked"));
                }
                None => assert_eq!(res, None),
            }
        }
        Op::TplInsert { tk, dest, secs } => {
            let key = tkey_of(tk);
            let res = tab.insert_template(now, key, DestId(dest), Duration::from_secs(secs));
            let mut replaced = None;
            if let Some(mid) = m.indexed_tpl(&key) {
                let t = m.tpls[&mid].clone();
                if m.tpl_live(&t) {
                    assert!(
                        matches!(res, Err(ConnError::TemplateExists { .. })),
                        "{res:?}"
                    );
                    return;
                }
                m.tpls.remove(&mid);
                m.expired += 1;
                replaced = Some((t.dest, Some(ConnClass::Template), None));
            }
            if replaced.is_none() && m.len() >= m.max {
                assert_eq!(res, Err(ConnError::TableFull { max: m.max }));
                m.refused_full += 1;
                return;
            }
            let ins = res.expect("model says template insert succeeds");
            assert_eq!(ins.replaced.map(acc), replaced);
            if let Some(r) = ins.replaced {
                m.record(r);
            }
            assert_eq!(
                acc(ins.created),
                (DestId(dest), None, Some(ConnClass::Template))
            );
            m.record(ins.created);
            let mid = m.next_mid;
            m.next_mid += 1;
            m.issued.push((mid, ins.id));
            m.tpls.insert(
                mid,
                MTpl {
                    key,
                    dest: DestId(dest),
                    deadline: m.now + secs * 1000,
                    timeout_ms: secs * 1000,
                    n_control: 0,
                    detached: false,
                },
            );
        }
        Op::TplLookup { tk } => {
            let key = tkey_of(tk);
            let got = tab.lookup_template(now, &key);
            let want = m.indexed_tpl(&key).filter(|mid| m.tpl_live(&m.tpls[mid]));
            match (got, want) {
                (None, None) => {}
                (Some(g), Some(mid)) => {
                    let t = &m.tpls[&mid];
                    let id = m.issued.iter().find(|(x, _)| *x == mid).expect("issued").1;
                    assert_eq!((g.id, g.dest, g.n_control), (id, t.dest, t.n_control));
                    assert_eq!(g.expires.as_millis(), t.deadline);
                }
                (g, w) => panic!("template lookup {g:?} vs model {w:?}"),
            }
        }
        Op::TplInvalidate { which } => {
            let Some((mid, id)) = m.issued(which) else {
                return;
            };
            let res = tab.invalidate_template(id);
            match m.tpls.get_mut(&mid) {
                Some(t) => {
                    res.expect("model has it");
                    t.detached = true;
                }
                None => assert!(matches!(res, Err(ConnError::UnknownTemplate { .. }))),
            }
        }
        Op::TplTouch { which } => {
            let Some((mid, id)) = m.issued(which) else {
                return;
            };
            let res = tab.touch_template(now, id);
            let now_ms = m.now;
            match m.tpls.get_mut(&mid) {
                Some(t) => {
                    res.expect("model has it");
                    t.deadline = now_ms + t.timeout_ms;
                }
                None => assert!(matches!(res, Err(ConnError::UnknownTemplate { .. }))),
            }
        }
        Op::SetTimeouts { tcp, tcpfin, udp } => {
            let u = TimeoutUpdate { tcp, tcpfin, udp };
            tab.set_timeouts(u).expect("small values");
            m.timeouts.apply(u).expect("small values");
        }
    }
}

fn check_against_model(tab: &ConnTable, m: &Model) {
    tab.check_invariants().expect("table invariants");
    let now = Instant::from_millis(m.now);
    let st = tab.stats();
    assert_eq!(st.conns, m.conns.len(), "conn count");
    assert_eq!(st.templates, m.tpls.len(), "template count");
    assert_eq!(st.refused_full, m.refused_full);
    assert_eq!(st.expired, m.expired);
    assert!(tab.len() <= m.max);
    // Accounting: events reported == table's stored entries == model.
    assert_eq!(
        nonzero(&m.tally),
        nonzero(&tab.dest_counts()),
        "reported vs table"
    );
    assert_eq!(nonzero(&m.tally), nonzero(&m.counts()), "reported vs model");
    // Every key: live in model <=> returned by lookup, with the same fields.
    for i in 0..NKEYS {
        let k = key_of(i);
        let got = tab.lookup_in(now, &k);
        match m.conns.get(&k).filter(|c| m.live(c)) {
            None => assert!(got.is_none(), "expired or absent {k:?} returned: {got:?}"),
            Some(c) => {
                let g = got.expect("live entry lost");
                assert_eq!(
                    (g.dest, g.fwd, g.state, g.no_output),
                    (c.dest, c.fwd, c.state, c.no_output)
                );
                assert_eq!(g.expires.as_millis(), c.deadline);
                assert!(g.expires > now);
                // Templates outlive the connections they control.
                if let Some(id) = g.template {
                    let t = tab.template(now, id).expect("controlling template present");
                    assert!(t.n_control > 0);
                }
            }
        }
    }
    assert_eq!(
        tab.conns(now).count(),
        m.conns.values().filter(|c| m.live(c)).count()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn table_matches_model(max in 1usize..24, ops in proptest::collection::vec(op(), 1..160)) {
        let mut tab = ConnTable::new(ConnTableConfig {
            max_entries: max,
            initial_capacity: 4,
            ..ConnTableConfig::default()
        });
        let mut m = Model { max, ..Model::default() };
        for op in &ops {
            apply(&mut tab, &mut m, op);
            check_against_model(&tab, &m);
        }
    }

    #[test]
    fn full_table_never_evicts(n in 1usize..40, extra in 1usize..40) {
        let mut tab = ConnTable::new(ConnTableConfig { max_entries: n, ..ConnTableConfig::default() });
        let now = Instant::ZERO;
        let mk = |i: usize| ConnKey {
            proto: Protocol::Tcp,
            caddr: Ipv4Addr::from(0x0a00_0000 + i as u32),
            cport: i as u16,
            vaddr: VADDRS[0],
            vport: 80,
        };
        for i in 0..n {
            let c = NewConn { key: mk(i), dest: DestId(0), fwd: ForwardMethod::Masq, template: None };
            tab.insert(now, c, TcpFlags::SYN).expect("room");
        }
        for i in n..n + extra {
            let c = NewConn { key: mk(i), dest: DestId(0), fwd: ForwardMethod::Masq, template: None };
            prop_assert_eq!(tab.insert(now, c, TcpFlags::SYN), Err(ConnError::TableFull { max: n }));
        }
        prop_assert_eq!(tab.stats().refused_full, extra as u64);
        for i in 0..n {
            prop_assert!(tab.lookup_in(now, &mk(i)).is_some());
        }
    }
}
