//! TUN-mode real servers without the kernel's `ipip` module: an IP-in-IP packet sent by the
//! director is decapsulated by `lab-decap` on the real server, delivered to a UDP service on
//! the VIP, and the reply goes straight to the client (not back through the director).

use std::time::Duration;

use tests::lab::{Lab, Mode, Role, privileged};

const UDP: &str = env!("CARGO_BIN_EXE_lab-udp");
const DECAP: &str = env!("CARGO_BIN_EXE_lab-decap");

const READY: Duration = Duration::from_secs(10);

#[test]
fn ip_in_ip_from_the_director_reaches_the_vip_and_the_reply_goes_straight_to_the_client() {
    if !privileged("ip_in_ip_from_the_director_reaches_the_vip") {
        return;
    }
    Lab::builder()
        .real_servers(Mode::Tun, 1)
        .decap_bin(DECAP)
        .run(|lab| {
            let (c, d, rs) = (Role::Client(0), Role::Director(0), Role::Real(0));
            let vip = lab.vip();
            let service = format!("{vip}:7");
            // Bound to the VIP itself, so that replies leave from the VIP.
            let mut server = lab
                .spawn(
                    rs,
                    [
                        UDP,
                        "serve",
                        "--name",
                        "rs0",
                        "--listen",
                        &service,
                        "--lifetime-s",
                        "60",
                    ],
                )
                .expect("spawn lab-udp serve");
            server
                .wait_for_log("ready", READY)
                .expect("lab-udp serve ready");
            let mut receiver = lab
                .spawn(
                    c,
                    [
                        UDP,
                        "recv",
                        "--listen",
                        "0.0.0.0:5555",
                        "--count",
                        "3",
                        "--timeout-ms",
                        "5000",
                    ],
                )
                .expect("spawn lab-udp recv");
            receiver
                .wait_for_log("ready", READY)
                .expect("lab-udp recv ready");

            let client = format!("{}:5555", lab.addr(c));
            let (outer_src, outer_dst) = (lab.addr(d).to_string(), lab.addr(rs).to_string());
            lab.run(
                d,
                [
                    DECAP,
                    "send",
                    "--src",
                    &outer_src,
                    "--dst",
                    &outer_dst,
                    "--inner-src",
                    &client,
                    "--inner-dst",
                    &service,
                    "--payload",
                    "hello",
                    "--count",
                    "3",
                ],
            )
            .expect("the director sends IP-in-IP");

            let status = receiver
                .wait(Duration::from_secs(10))
                .expect("lab-udp recv ends");
            let log = receiver.log();
            assert!(status.success(), "the client got no reply: {log}");
            let replies: Vec<&str> = log.lines().filter(|l| l.starts_with("{\"from\"")).collect();
            assert_eq!(replies.len(), 3, "{log}");
            for r in replies {
                assert!(
                    r.contains(&format!("\"from\":\"{service}\"")),
                    "reply not from the VIP: {r}"
                );
                assert!(
                    r.contains(&format!("server=rs0 client={client} data=hello")),
                    "the server must see the client's address: {r}"
                );
            }
            let decap = lab.log_of(rs, "lab-decap").expect("lab-decap's log");
            let line = format!("bytes {} -> {vip}", lab.addr(c));
            assert_eq!(
                decap.matches(&line).count(),
                3,
                "lab-decap did the delivery: {decap}"
            );
        });
}
