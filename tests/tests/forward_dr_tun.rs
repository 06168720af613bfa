//! lvsd forwards in the two modes where real servers answer the client straight:
//!
//! - **direct routing** (`network = direct`): the director rewrites only the MAC addresses;
//!   the real servers hold the VIP on `lo` (ARP-silent);
//! - **tunnelling** (`network = tunnel`): the director wraps each packet in an outer IPv4
//!   header (IP-in-IP) to the real server, whose `lab-decap` unwraps it into `tun0` (this
//!   kernel has no `ipip` module); the public segment's MTU is raised to 1600 on the director
//!   and the real servers so that a full-size client segment plus the 20-byte outer header
//!   fits.
//!
//! In both, HTTP is balanced exactly, a bulk transfer completes (replies bypass the director,
//! which carries only the client's ACK stream), UDP is balanced too, and each real server
//! sees the client's own address.

use tests::lab::{Lab, Mode, Role, Segment, privileged};
use tests::lvsd::{Cf, Virtual, assert_client_kept, assert_split, http, start, stop_clean};

const C0: Role = Role::Client(0);

/// How a mode differs: its `network` value, its real servers, and lab preparation.
#[derive(Clone, Copy)]
struct Method {
    network: &'static str,
    mode: Mode,
    prepare: fn(&Lab),
}

const DR: Method = Method {
    network: "direct",
    mode: Mode::Dr,
    prepare: |_| {},
};

const TUN: Method = Method {
    network: "tunnel",
    mode: Mode::Tun,
    prepare: tun_mtu,
};

fn tun_mtu(lab: &Lab) {
    lab.set_mtu(Role::Director(0), Segment::Public, 1600)
        .expect("director MTU");
    for rs in lab.real_servers() {
        lab.set_mtu(rs, Segment::Public, 1600)
            .expect("real server MTU");
    }
}

fn round_robin_http_and_bulk(m: Method) {
    Lab::builder().real_servers(m.mode, 3).run(|lab| {
        (m.prepare)(lab);
        let _http = lab.start_http(80).expect("http servers");
        let cf = Cf::new(m.network).virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1, 1]));
        let mut lvsd = start(lab, &cf.render(lab)).expect("lvsd forwards");
        let vip = format!("{}:80", lab.vip());

        let t = http(lab, C0, &["--to", &vip, "--requests", "300"]).expect("lab-client");
        assert_split(&t, &[100, 100, 100]);
        assert_client_kept(lab, &t, C0);

        // 20 MB from each real server, straight to the client.
        let bulk = [
            "--to",
            &vip,
            "--requests",
            "3",
            "--bulk",
            "20000000",
            "--timeout-ms",
            "10000",
        ];
        let t = http(lab, C0, &bulk).expect("lab-client bulk");
        assert_split(&t, &[1, 1, 1]);

        stop_clean(lab, &mut lvsd).expect("clean exit, XDP detached");
    });
}

fn udp_round_robin(m: Method) {
    Lab::builder().real_servers(m.mode, 3).run(|lab| {
        (m.prepare)(lab);
        let _udp = lab.start_udp(53).expect("udp servers");
        let cf = Cf::new(m.network).virtual_(Virtual::udp(lab, 53, "rr").servers(lab, &[1, 1, 1]));
        let _lvsd = start(lab, &cf.render(lab)).expect("lvsd forwards");
        let vip = format!("{}:53", lab.vip());
        // A new source port per datagram: each is a new UDP connection, scheduled anew.
        let t = lab
            .udp_client(
                C0,
                &["--to", &vip, "--count", "30", "--new-socket"],
                tests::lvsd::CLIENT_TIMEOUT,
            )
            .expect("lab-udp send");
        assert_split(&t, &[10, 10, 10]);
        assert_client_kept(lab, &t, C0);
    });
}

#[test]
fn dr_round_robin_http_and_bulk() {
    if privileged("dr_round_robin_http_and_bulk") {
        round_robin_http_and_bulk(DR);
    }
}

#[test]
fn dr_udp_round_robin() {
    if privileged("dr_udp_round_robin") {
        udp_round_robin(DR);
    }
}

#[test]
fn tun_round_robin_http_and_bulk() {
    if privileged("tun_round_robin_http_and_bulk") {
        round_robin_http_and_bulk(TUN);
    }
}

#[test]
fn tun_udp_round_robin() {
    if privileged("tun_udp_round_robin") {
        udp_round_robin(TUN);
    }
}
