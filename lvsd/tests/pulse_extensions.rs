//! The pulse extension keywords of the global section: `heartbeat_key`, `cluster_id`,
//! `arp_count` and `arp_interval`.

mod common;

use std::path::PathBuf;

use common::{err, parse};

#[test]
fn defaults_are_no_key_and_cluster_zero() {
    let g = parse("serial_no = 0\n").global;
    assert_eq!(g.heartbeat_key, None);
    assert_eq!(g.cluster_id, 0);
}

#[test]
fn values_are_parsed() {
    let g = parse("heartbeat_key = /etc/sysconfig/ha/pulse.key\ncluster_id = 4294967295\n").global;
    assert_eq!(
        g.heartbeat_key,
        Some(PathBuf::from("/etc/sysconfig/ha/pulse.key"))
    );
    assert_eq!(g.cluster_id, u32::MAX);
    assert_eq!(g.lines.get("heartbeat_key"), Some(&1));
    assert_eq!(parse("cluster_id = 0x10\n").global.cluster_id, 16);
}

#[test]
fn relative_or_blank_key_paths_are_refused() {
    assert_eq!(
        err("heartbeat_key = pulse.key\n"),
        "t.cf:1: expected an absolute file path without blanks for \"heartbeat_key\", found \"pulse.key\""
    );
    assert_eq!(
        err("heartbeat_key = \"/etc/my key\"\n"),
        "t.cf:1: expected an absolute file path without blanks for \"heartbeat_key\", found \"/etc/my key\""
    );
}

#[test]
fn cluster_id_out_of_range_or_not_a_number() {
    assert_eq!(
        err("cluster_id = 4294967296\n"),
        "t.cf:1: expected an integer in 0..=4294967295 for \"cluster_id\", found \"4294967296\""
    );
    assert_eq!(
        err("cluster_id = -1\n"),
        "t.cf:1: expected an integer in 0..=4294967295 for \"cluster_id\", found \"-1\""
    );
    assert_eq!(
        err("cluster_id = pair1\n"),
        "t.cf:1: expected an integer for \"cluster_id\", found \"pair1\""
    );
}

#[test]
fn extensions_are_global_keywords_only() {
    let e = err(&common::vs("    cluster_id = 1"));
    assert!(e.contains("cluster_id"), "{e}");
}

#[test]
fn arp_count_and_interval_default_to_piranhas_five_one_second_apart() {
    let g = parse("serial_no = 1\n").global;
    assert_eq!(g.arp_count, 5);
    assert_eq!(g.arp_interval, std::time::Duration::from_secs(1));
    let g = parse("arp_count = 3\narp_interval = 0.2\n").global;
    assert_eq!(g.arp_count, 3);
    assert_eq!(g.arp_interval, std::time::Duration::from_millis(200));
}

#[test]
fn arp_count_out_of_range_and_a_zero_interval_are_refused() {
    assert_eq!(
        err("arp_count = 0\n"),
        "t.cf:1: expected an integer in 1..=100 for \"arp_count\", found \"0\""
    );
    assert_eq!(
        err("arp_count = 101\n"),
        "t.cf:1: expected an integer in 1..=100 for \"arp_count\", found \"101\""
    );
    assert!(
        err("arp_interval = 0\n").starts_with("t.cf:1: expected"),
        "{}",
        err("arp_interval = 0\n")
    );
}
