//! `pulse::addresses` against a real kernel, in a throw-away network namespace holding a
//! veth `eth0` with 198.18.0.2/24 (the director's own address):
//! - takeover adds 198.18.0.10/24 labelled `eth0:1`, as `ip addr` shows; adding again
//!   changes nothing; release removes it; removing again changes nothing;
//! - a classful VIP without a netmask (lvs.cf mapping) and a /32 one on the same interface;
//! - an address already held with another prefix and label is left alone by takeover and
//!   removed by release;
//! - a missing interface and a label of another interface are errors naming them.
//!
//! Needs root (creates namespaces); skips otherwise. Only 198.18.0.0/15 addresses, only in the
//! test's own namespace.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};

use ipvs_core::io::lab::{Netns, in_netns, is_root};
use pulse::addresses::{AddOutcome, AddressError, Addresses, Counters, RemoveOutcome};
use pulse::floating::{FloatingAddr, floating_addrs};

fn lab() -> Option<Netns> {
    if !is_root() {
        eprintln!("skipped: needs root to create network namespaces");
        return None;
    }
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "pulseaddr{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let ns = Netns::new(&name).expect("ip netns add");
    // A veth pair (no dummy module needed); the peer only keeps eth0 up.
    let veth = [
        "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ];
    ns.exec(&veth).expect("veth eth0");
    ns.exec(&["ip", "link", "set", "eth0p", "up"])
        .expect("eth0p up");
    ns.exec(&["ip", "addr", "add", "198.18.0.2/24", "dev", "eth0"])
        .expect("director address");
    ns.exec(&["ip", "link", "set", "eth0", "up"])
        .expect("eth0 up");
    Some(ns)
}

fn vip(last: u8, prefix_len: u8, label: &str) -> FloatingAddr {
    FloatingAddr {
        addr: Ipv4Addr::new(198, 18, 0, last),
        prefix_len,
        ifname: "eth0".to_owned(),
        label: label.to_owned(),
    }
}

/// `ip -n NS addr show dev eth0`: the lines of 198.18.0.0/15 addresses.
fn shown(ns: &Netns) -> Vec<String> {
    shown_in(ns.name())
}

fn shown_in(ns: &str) -> Vec<String> {
    ipvs_core::io::lab::run("ip", &["-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"])
        .expect("ip addr show")
        .lines()
        .filter(|l| l.contains("198.18."))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn line_of<'a>(lines: &'a [String], addr: &str) -> Option<&'a String> {
    lines.iter().find(|l| l.contains(&format!("inet {addr} ")))
}

#[test]
fn takeover_and_release_keep_the_label_and_are_idempotent() {
    let Some(ns) = lab() else { return };
    let a = vip(10, 24, "eth0:1");

    let (added, again, held, counters) = in_netns(ns.name(), {
        let a = a.clone();
        move || {
            let mut addrs = Addresses::new().expect("rtnetlink socket");
            let added = addrs.add(&a).expect("add");
            let again = addrs.add(&a).expect("add again");
            let held = addrs.held(&a).expect("held");
            (added, again, held, addrs.counters())
        }
    })
    .expect("enter namespace");
    assert_eq!(added, AddOutcome::Added);
    assert_eq!(again, AddOutcome::AlreadyHeld);
    assert!(held);
    assert_eq!(
        counters,
        Counters {
            added: 1,
            already_held: 1,
            ..Counters::default()
        }
    );

    let lines = shown(&ns);
    let line = line_of(&lines, "198.18.0.10/24").unwrap_or_else(|| panic!("VIP in {lines:?}"));
    assert!(line.contains("brd 198.18.0.255"), "{line}");
    assert!(line.contains("secondary"), "{line}");
    assert!(line.contains(" eth0:1"), "{line}");
    assert_eq!(
        lines.iter().filter(|l| l.contains("198.18.0.10/")).count(),
        1,
        "{lines:?}"
    );
    // The director's own address is untouched.
    assert!(line_of(&lines, "198.18.0.2/24").is_some(), "{lines:?}");

    let (removed, again, held, counters) = in_netns(ns.name(), move || {
        let mut addrs = Addresses::new().expect("rtnetlink socket");
        let removed = addrs.remove(&a).expect("remove");
        let again = addrs.remove(&a).expect("remove again");
        let held = addrs.held(&a).expect("held");
        (removed, again, held, addrs.counters())
    })
    .expect("enter namespace");
    assert_eq!(removed, RemoveOutcome::Removed);
    assert_eq!(again, RemoveOutcome::NotHeld);
    assert!(!held);
    assert_eq!(
        counters,
        Counters {
            removed: 1,
            not_held: 1,
            ..Counters::default()
        }
    );
    let lines = shown(&ns);
    assert!(line_of(&lines, "198.18.0.10/24").is_none(), "{lines:?}");
    assert!(line_of(&lines, "198.18.0.2/24").is_some(), "{lines:?}");
}

#[test]
fn addresses_from_lvs_cf_go_on_with_their_prefixes() {
    let Some(ns) = lab() else { return };
    let text = "primary = 198.18.0.2\n\
        virtual web {\n active = 1\n address = 198.18.0.10 eth0:1\n}\n\
        virtual mail {\n active = 1\n address = 198.18.0.11 eth0:2\n vip_nmask = 255.255.255.255\n}\n";
    let config = lvsd::lvscf::parse_str("t.cf", text, &lvsd::lvscf::StaticLookup::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let wanted = floating_addrs(&config);
    assert_eq!(wanted, [vip(10, 24, "eth0:1"), vip(11, 32, "eth0:2")]);

    let outcomes = in_netns(ns.name(), {
        let wanted = wanted.clone();
        move || {
            let mut addrs = Addresses::new().expect("rtnetlink socket");
            wanted
                .iter()
                .map(|a| addrs.add(a).expect("add"))
                .collect::<Vec<_>>()
        }
    })
    .expect("enter namespace");
    assert_eq!(outcomes, [AddOutcome::Added, AddOutcome::Added]);
    let lines = shown(&ns);
    let web = line_of(&lines, "198.18.0.10/24").unwrap_or_else(|| panic!("{lines:?}"));
    assert!(web.contains(" eth0:1"), "{web}");
    let mail = line_of(&lines, "198.18.0.11/32").unwrap_or_else(|| panic!("{lines:?}"));
    assert!(mail.contains(" eth0:2"), "{mail}");

    let outcomes = in_netns(ns.name(), move || {
        let mut addrs = Addresses::new().expect("rtnetlink socket");
        wanted
            .iter()
            .map(|a| addrs.remove(a).expect("remove"))
            .collect::<Vec<_>>()
    })
    .expect("enter namespace");
    assert_eq!(outcomes, [RemoveOutcome::Removed, RemoveOutcome::Removed]);
    let lines = shown(&ns);
    assert_eq!(
        lines.len(),
        1,
        "only the director's own address left: {lines:?}"
    );
}

#[test]
fn missing_interface_and_foreign_label_are_refused_by_name() {
    let Some(ns) = lab() else { return };
    let (missing, foreign) = in_netns(ns.name(), || {
        let mut addrs = Addresses::new().expect("rtnetlink socket");
        let mut missing = vip(10, 24, "eth9:1");
        missing.ifname = "eth9".to_owned();
        let missing = addrs.add(&missing).expect_err("no eth9");
        let foreign = addrs
            .add(&vip(10, 24, "eth1:1"))
            .expect_err("label of eth1");
        (missing, foreign)
    })
    .expect("enter namespace");
    assert!(
        matches!(&missing, AddressError::NoSuchInterface { ifname, .. } if ifname == "eth9"),
        "{missing:?}"
    );
    let text = missing.to_string();
    assert!(
        text.contains("198.18.0.10") && text.contains("eth9"),
        "{text}"
    );
    assert!(
        matches!(foreign, AddressError::BadLabel { .. }),
        "{foreign:?}"
    );
    assert!(shown(&ns).iter().all(|l| !l.contains("198.18.0.10")));
}

#[test]
fn an_address_held_otherwise_is_left_on_takeover_and_removed_on_release() {
    let Some(ns) = lab() else { return };
    // Put there by an operator (or an older pulse) with another prefix and label.
    ns.exec(&[
        "ip",
        "addr",
        "add",
        "198.18.0.10/32",
        "dev",
        "eth0",
        "label",
        "eth0:7",
    ])
    .expect("operator's address");
    let a = vip(10, 24, "eth0:1");
    let (added, removed) = in_netns(ns.name(), {
        let ns = ns.name().to_owned();
        move || {
            let mut addrs = Addresses::new().expect("rtnetlink socket");
            let added = addrs.add(&a).expect("add");
            let lines = shown_in(&ns);
            assert!(
                line_of(&lines, "198.18.0.10/32").is_some_and(|l| l.contains(" eth0:7")),
                "{lines:?}"
            );
            assert!(line_of(&lines, "198.18.0.10/24").is_none(), "{lines:?}");
            (added, addrs.remove(&a).expect("remove"))
        }
    })
    .expect("enter namespace");
    assert_eq!(added, AddOutcome::AlreadyHeld);
    assert_eq!(removed, RemoveOutcome::Removed);
    assert!(shown(&ns).iter().all(|l| !l.contains("198.18.0.10")));
}
