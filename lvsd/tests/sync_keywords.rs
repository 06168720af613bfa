//! The connection-sync keywords of the global section: Piranha's `syncdaemon`,
//! `syncd_iface`, `syncd_id`, and the extensions `sync_peer`, `sync_port`,
//! `sync_transport` and `sync_group`.

mod common;

use std::net::Ipv4Addr;

use common::{err, parse};
use lvsd::lvscf::SyncTransport;

#[test]
fn defaults_are_the_kernels_port_and_group_unicast_to_the_partner() {
    let g = parse("serial_no = 0\n").global;
    assert!(!g.syncdaemon);
    assert_eq!(g.syncd_iface, "eth0");
    assert_eq!(g.syncd_id, 0);
    assert_eq!(g.sync_peer, None);
    assert_eq!(g.sync_port, 8848);
    assert_eq!(g.sync_transport, SyncTransport::Unicast);
    assert_eq!(g.sync_group, Ipv4Addr::new(224, 0, 0, 81));
}

#[test]
fn values_are_parsed() {
    let g = parse(
        "syncdaemon = 1\nsyncd_iface = eth1\nsyncd_id = 7\nsync_peer = 198.18.0.3\n\
         sync_port = 9000\nsync_transport = multicast\nsync_group = 239.1.2.3\n",
    )
    .global;
    assert!(g.syncdaemon);
    assert_eq!(g.syncd_iface, "eth1");
    assert_eq!(g.syncd_id, 7);
    assert_eq!(g.sync_peer, Some(Ipv4Addr::new(198, 18, 0, 3)));
    assert_eq!(g.sync_port, 9000);
    assert_eq!(g.sync_transport, SyncTransport::Multicast);
    assert_eq!(g.sync_group, Ipv4Addr::new(239, 1, 2, 3));
    assert_eq!(g.lines.get("syncd_iface"), Some(&2));
}

#[test]
fn bad_values_name_line_and_expectation() {
    assert_eq!(
        err("sync_port = 0\n"),
        "t.cf:1: expected a port number 1..=65535 for \"sync_port\", found \"0\""
    );
    assert_eq!(
        err("sync_port = 65536\n"),
        "t.cf:1: expected a port number 1..=65535 for \"sync_port\", found \"65536\""
    );
    let e = err("serial_no = 1\nsync_transport = broadcast\n");
    assert!(e.starts_with("t.cf:2:"), "{e}");
    assert!(e.contains("unicast, multicast"), "{e}");
    assert_eq!(
        err("sync_group = 198.18.0.1\n"),
        "t.cf:1: expected a multicast address (224.0.0.0/4), such as 224.0.0.81 for \
         \"sync_group\", found \"198.18.0.1\""
    );
    let e = err("sync_peer = not..an..address\n");
    assert!(e.starts_with("t.cf:1:") && e.contains("sync_peer"), "{e}");
    let e = err("syncd_id = 256\n");
    assert!(e.contains("0..=255"), "{e}");
}
