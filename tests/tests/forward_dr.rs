//! lvsd forwards in direct-routing mode (`network = direct`): the director rewrites only
//! the MAC addresses, the real servers hold the VIP on `lo` (ARP-silent) and answer the client
//! straight. HTTP is balanced exactly, a bulk transfer (replies bypass the director, the
//! director sees the client's ACK stream) completes, UDP is balanced too, and each real server
//! sees the client's own address.

use tests::lab::{Lab, Mode, Role, privileged};
use tests::lvsd::{Cf, Virtual, assert_client_kept, assert_split, http, start, stop_clean};

const C0: Role = Role::Client(0);

#[test]
fn dr_round_robin_http_and_bulk() {
    if !privileged("dr_round_robin_http_and_bulk") {
        return;
    }
    Lab::builder()
        .real_servers(Mode::Dr, 3)
        .offloads(false)
        .run(|lab| {
            let _http = lab.start_http(80).expect("http servers");
            let cf = Cf::new("direct").virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1, 1]));
            let mut lvsd = start(lab, &cf.render(lab)).expect("lvsd forwards");
            let vip = format!("{}:80", lab.vip());

            let t = http(lab, C0, &["--to", &vip, "--requests", "300"]).expect("lab-client");
            assert_split(&t, &[100, 100, 100]);
            assert_client_kept(lab, &t, C0);

            // 20 MB from each real server, straight to the client.
            let t = http(
                lab,
                C0,
                &[
                    "--to",
                    &vip,
                    "--requests",
                    "3",
                    "--bulk",
                    "20000000",
                    "--timeout-ms",
                    "10000",
                ],
            )
            .expect("lab-client bulk");
            assert_split(&t, &[1, 1, 1]);

            stop_clean(lab, &mut lvsd).expect("clean exit, XDP detached");
        });
}

#[test]
fn dr_udp_round_robin() {
    if !privileged("dr_udp_round_robin") {
        return;
    }
    Lab::builder()
        .real_servers(Mode::Dr, 3)
        .offloads(false)
        .run(|lab| {
            let _udp = lab.start_udp(53).expect("udp servers");
            let cf =
                Cf::new("direct").virtual_(Virtual::udp(lab, 53, "rr").servers(lab, &[1, 1, 1]));
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
