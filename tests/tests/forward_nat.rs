//! lvsd forwards through the lab in NAT mode: the real `lvsd` binary, started in the director
//! namespace with an `lvs.cf`, balances HTTP across NAT real servers exactly as the scheduler
//! says, carries a bulk transfer, keeps the client's address visible at the real server, and
//! the director's own stack never answers for the virtual service.

use std::time::Duration;

use tests::lab::{Lab, Mode, Proc, Role, privileged};
use tests::tools::tally::Tally;

const READY: &str = "lvsd: forwarding";

/// An lvs.cf for the lab: one HTTP service on the VIP over every real server.
fn nat_cf(lab: &Lab, scheduler: &str, weights: &[u32], extra: &str) -> String {
    let mut cf = format!(
        "network = nat\nnat_router = 198.19.0.254 eth1:1\nvirtual web {{\n    active = 1\n    \
         address = {} eth0:1\n    port = 80\n    scheduler = {scheduler}\n{extra}",
        lab.vip()
    );
    for (i, rs) in lab.real_servers().into_iter().enumerate() {
        let w = weights.get(i).copied().unwrap_or(1);
        cf.push_str(&format!(
            "    server {} {{\n        address = {}\n        active = 1\n        weight = {w}\n    }}\n",
            rs.short(),
            lab.addr(rs)
        ));
    }
    cf.push_str("}\n");
    cf
}

fn start_lvsd<'l>(lab: &'l Lab, cf: &str) -> Proc<'l> {
    let path = lab.write_file("lvs.cf", cf).expect("write lvs.cf");
    let lvsd = tests::bin("lvsd");
    let mut p = lab
        .spawn(
            Role::Director(0),
            [
                lvsd.as_os_str(),
                "-c".as_ref(),
                path.as_os_str(),
                "--nodaemon".as_ref(),
            ],
        )
        .expect("spawn lvsd");
    p.wait_for_log(READY, Duration::from_secs(15))
        .expect("lvsd forwarding");
    p
}

fn get(lab: &Lab, args: &[&str]) -> Tally {
    lab.http_client(Role::Client(0), args, Duration::from_secs(120))
        .expect("lab-client runs")
}

#[test]
fn nat_round_robin_splits_exactly_and_keeps_the_client_address() {
    if !privileged("nat_round_robin") {
        return;
    }
    Lab::builder()
        .real_servers(Mode::Nat, 3)
        .offloads(false)
        .run(|lab| {
            let _http = lab.start_http(80).expect("http servers");
            let mut lvsd = start_lvsd(lab, &nat_cf(lab, "rr", &[1, 1, 1], ""));
            let vip = format!("{}:80", lab.vip());
            let t = get(lab, &["--to", &vip, "--requests", "600"]);
            assert_eq!(t.failed, 0, "errors: {:?}", t.errors);
            for rs in ["rs0", "rs1", "rs2"] {
                assert_eq!(t.servers.get(rs).copied(), Some(200), "{:?}", t.servers);
                let client = lab.addr(Role::Client(0)).to_string();
                assert!(
                    t.clients[rs].iter().all(|c| c == &client),
                    "client address preserved at {rs}: {:?}",
                    t.clients[rs]
                );
            }
            lvsd.signal("TERM").expect("SIGTERM");
            let status = lvsd.wait(Duration::from_secs(10)).expect("lvsd exits");
            assert!(status.success(), "clean exit: {}", lvsd.log());
            let link = lab
                .ip(Role::Director(0), ["-d", "link", "show"])
                .expect("ip link");
            assert!(!link.contains("prog/xdp"), "XDP detached: {link}");
        });
}
