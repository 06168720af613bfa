//! IPv4 fragments through lvsd, as kernel IPVS handles them (`ip_vs_gather_frags`): UDP
//! datagrams larger than the MTU cross the director in both directions in NAT, and inbound
//! in DR and TUN. The director reassembles the fragments (the XDP program steers the
//! non-first ones, which carry no ports), forwards the datagram, and fragments it again for
//! the output MTU (TUN: the outer IP-in-IP packet). All with the kernel's default veth
//! offloads.

use tests::lab::{Lab, Mode, Role, Segment, privileged};
use tests::lvsd::{Cf, Virtual, assert_client_kept, assert_split, start};

const C0: Role = Role::Client(0);

/// `lab-udp send` to the VIP's port 53 with `args`; every datagram must be answered.
fn udp(lab: &Lab, args: &[&str]) -> tests::tools::tally::Tally {
    let vip = format!("{}:53", lab.vip());
    let mut argv = vec!["--to", vip.as_str()];
    argv.extend(args);
    lab.udp_client(C0, &argv, tests::lvsd::CLIENT_TIMEOUT)
        .expect("lab-udp send")
}

#[test]
fn nat_udp_3000_byte_request_and_3000_byte_reply() {
    if !privileged("nat_udp_3000_byte_request_and_3000_byte_reply") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 3).run(|lab| {
        let _udp = lab.start_udp(53).expect("udp servers");
        let cf = Cf::new("nat").virtual_(Virtual::udp(lab, 53, "rr").servers(lab, &[1, 1, 1]));
        let _lvsd = start(lab, &cf.render(lab)).expect("lvsd forwards");
        // A 3000-byte request (three fragments in, three out to the real server); the echo
        // comes back as large, fragmented by the real server and again by the director.
        let t = udp(lab, &["--count", "30", "--new-socket", "--size", "3000"]);
        assert_split(&t, &[10, 10, 10]);
        assert_client_kept(lab, &t, C0);
        // A small request and a 3000-byte reply.
        let t = udp(
            lab,
            &["--count", "30", "--new-socket", "--reply-size", "3000"],
        );
        assert_split(&t, &[10, 10, 10]);
        // One socket, many large datagrams both ways: one connection.
        let t = udp(
            lab,
            &["--count", "20", "--size", "3000", "--reply-size", "5000"],
        );
        assert_eq!(t.failed, 0, "{t:?}");
        assert_eq!(t.total, 20);
    });
}

fn inbound_3000(mode: Mode, network: &'static str) {
    Lab::builder().real_servers(mode, 3).run(|lab| {
        if mode == Mode::Tun {
            // Room for the outer header of full-size fragments; the reassembled and
            // encapsulated datagram is fragmented again for this MTU.
            lab.set_mtu(Role::Director(0), Segment::Public, 1600)
                .expect("director MTU");
            for rs in lab.real_servers() {
                lab.set_mtu(rs, Segment::Public, 1600)
                    .expect("real server MTU");
            }
        }
        let _udp = lab.start_udp(53).expect("udp servers");
        let cf = Cf::new(network).virtual_(Virtual::udp(lab, 53, "rr").servers(lab, &[1, 1, 1]));
        let _lvsd = start(lab, &cf.render(lab)).expect("lvsd forwards");
        let t = udp(lab, &["--count", "30", "--new-socket", "--size", "3000"]);
        assert_split(&t, &[10, 10, 10]);
        assert_client_kept(lab, &t, C0);
    });
}

#[test]
fn dr_udp_3000_byte_request() {
    if privileged("dr_udp_3000_byte_request") {
        inbound_3000(Mode::Dr, "direct");
    }
}

#[test]
fn tun_udp_3000_byte_request() {
    if privileged("tun_udp_3000_byte_request") {
        inbound_3000(Mode::Tun, "tunnel");
    }
}
