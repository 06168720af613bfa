//! lvsd forwards through the lab in NAT mode: the real `lvsd` binary, started in the director
//! namespace with an `lvs.cf`, balances HTTP across NAT real servers exactly as the scheduler
//! says (rr, wrr), carries a bulk transfer and keep-alive requests, keeps the client's address
//! visible at the real server, honours persistence, and detaches its XDP program on SIGTERM.

use tests::lab::{Lab, Mode, Role, privileged};
use tests::lvsd::{
    Cf, Virtual, assert_client_kept, assert_split, http, only_server, start, stop_clean,
};

const C0: Role = Role::Client(0);

/// A NAT lab with the kernel's default veth offloads: the client's and the real servers'
/// segments reach the engine with partial checksums, which it completes (`engine::csum`).
fn nat_lab() -> tests::lab::LabBuilder {
    Lab::builder().real_servers(Mode::Nat, 3)
}

/// The one forwarding test with veth offloads off (`ethtool -K .. tx off ..` on every veth):
/// this is what a director behind a physical NIC sees, complete checksums and nothing for
/// the engine to complete. Every other forwarding test runs with the default offloads.
#[test]
fn nat_with_offloads_off() {
    if !privileged("nat_with_offloads_off") {
        return;
    }
    nat_lab().offloads(false).run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = Cf::new("nat").virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1, 1]));
        let _lvsd = start(lab, &cf.render(lab)).expect("lvsd forwards");
        let vip = format!("{}:80", lab.vip());
        let t = http(lab, C0, &["--to", &vip, "--requests", "30"]).expect("lab-client");
        assert_split(&t, &[10, 10, 10]);
        let t = http(lab, C0, &["--to", &vip, "--bulk", "5000000"]).expect("lab-client bulk");
        only_server(&t, 1);
    });
}

#[test]
fn nat_round_robin_splits_exactly_and_keeps_the_client_address() {
    if !privileged("nat_round_robin") {
        return;
    }
    nat_lab().run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = Cf::new("nat").virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1, 1]));
        let mut lvsd = start(lab, &cf.render(lab)).expect("lvsd forwards");
        let vip = format!("{}:80", lab.vip());
        let t = http(lab, C0, &["--to", &vip, "--requests", "600"]).expect("lab-client");
        assert_split(&t, &[200, 200, 200]);
        assert_client_kept(lab, &t, C0);
        stop_clean(lab, &mut lvsd).expect("clean exit, XDP detached");
    });
}

#[test]
fn nat_weighted_round_robin_3_2_1() {
    if !privileged("nat_weighted_round_robin_3_2_1") {
        return;
    }
    nat_lab().run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = Cf::new("nat").virtual_(Virtual::http(lab, "wrr").servers(lab, &[3, 2, 1]));
        let _lvsd = start(lab, &cf.render(lab)).expect("lvsd forwards");
        let vip = format!("{}:80", lab.vip());
        let t = http(lab, C0, &["--to", &vip, "--requests", "600"]).expect("lab-client");
        assert_split(&t, &[300, 200, 100]);
        assert_client_kept(lab, &t, C0);
    });
}

#[test]
fn nat_bulk_transfer_and_keep_alive() {
    if !privileged("nat_bulk_transfer_and_keep_alive") {
        return;
    }
    nat_lab().run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = Cf::new("nat").virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1, 1]));
        let _lvsd = start(lab, &cf.render(lab)).expect("lvsd forwards");
        let vip = format!("{}:80", lab.vip());

        // 50 MB through the director both ways (requests in, every data segment back out
        // through the NAT rewrite); lab-client checks the length and the byte pattern.
        let t = http(
            lab,
            C0,
            &["--to", &vip, "--bulk", "50000000", "--timeout-ms", "10000"],
        )
        .expect("lab-client bulk");
        let bulk_server = only_server(&t, 1);

        // 100 requests on one kept-alive connection: one connection, one real server (rr
        // moved on to the next one), every request answered.
        let t = http(
            lab,
            C0,
            &["--to", &vip, "--requests", "100", "--keep-alive"],
        )
        .expect("lab-client keep-alive");
        let ka_server = only_server(&t, 100);
        assert_ne!(
            bulk_server, ka_server,
            "rr moved on after the bulk connection"
        );
        assert_client_kept(lab, &t, C0);

        // And the scheduler carries on from there with new connections.
        let t = http(lab, C0, &["--to", &vip, "--requests", "3"]).expect("lab-client");
        assert_split(&t, &[1, 1, 1]);
    });
}

#[test]
fn nat_persistence_keeps_each_client_on_one_server() {
    if !privileged("nat_persistence") {
        return;
    }
    nat_lab().clients(2).run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = Cf::new("nat").virtual_(
            Virtual::http(lab, "rr")
                .servers(lab, &[1, 1, 1])
                .persistent(300),
        );
        let _lvsd = start(lab, &cf.render(lab)).expect("lvsd forwards");
        let vip = format!("{}:80", lab.vip());
        let args = ["--to", vip.as_str(), "--requests", "30"];

        // Client 0: the first connection picks a server (rr), the template keeps the other
        // 29 there.
        let t0 = http(lab, C0, &args).expect("client 0");
        let s0 = only_server(&t0, 30);
        assert_client_kept(lab, &t0, C0);
        // Client 1 has no template: rr gives it the next server, and it stays there.
        let c1 = Role::Client(1);
        let t1 = http(lab, c1, &args).expect("client 1");
        let s1 = only_server(&t1, 30);
        assert_ne!(s0, s1, "rr moved on for the second client");
        assert_client_kept(lab, &t1, c1);
        // Client 0 comes back within the persistence timeout: still its server.
        let t0 = http(lab, C0, &args).expect("client 0 again");
        assert_eq!(only_server(&t0, 30), s0, "client 0 kept its server");
    });
}

#[test]
fn nat_udp_request_response() {
    if !privileged("nat_udp_request_response") {
        return;
    }
    nat_lab().run(|lab| {
        let _udp = lab.start_udp(53).expect("udp servers");
        let cf = Cf::new("nat").virtual_(Virtual::udp(lab, 53, "rr").servers(lab, &[1, 1, 1]));
        let _lvsd = start(lab, &cf.render(lab)).expect("lvsd forwards");
        let vip = format!("{}:53", lab.vip());
        let send = |args: &[&str]| {
            let mut argv = vec!["--to", vip.as_str()];
            argv.extend(args);
            lab.udp_client(C0, &argv, tests::lvsd::CLIENT_TIMEOUT)
                .expect("lab-udp send")
        };
        // A new source port per datagram: each is a new UDP connection, scheduled anew.
        let t = send(&["--count", "30", "--new-socket"]);
        assert_split(&t, &[10, 10, 10]);
        assert_client_kept(lab, &t, C0);
        // One socket: one UDP connection, one real server.
        let t = send(&["--count", "20"]);
        only_server(&t, 20);
        assert_client_kept(lab, &t, C0);
    });
}
