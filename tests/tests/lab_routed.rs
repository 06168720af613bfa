//! The lab without a load balancer: a director that only routes (ip_forward=1) carries HTTP,
//! a bulk transfer and UDP between a client and NAT-segment real servers, and the real
//! servers see the client's own address. Proves the harness and the tools, so that a failing
//! forwarding test points at the balancer, not at the lab.

use std::collections::BTreeSet;
use std::time::Duration;

use tests::lab::{Lab, Mode, PREFIX, PRIVATE_NET, Proc, Role, Segment, privileged};
use tests::tools::tally::Tally;

const HTTP: &str = env!("CARGO_BIN_EXE_lab-http");
const CLIENT: &str = env!("CARGO_BIN_EXE_lab-client");
const UDP: &str = env!("CARGO_BIN_EXE_lab-udp");

const READY: Duration = Duration::from_secs(10);

/// The client routes the private segment through director 0 (a plain router here).
fn route_client_via_director(lab: &Lab) {
    let via = lab.addr(Role::Director(0)).to_string();
    let net = format!("{PRIVATE_NET}/{PREFIX}");
    lab.ip(Role::Client(0), ["route", "add", &net, "via", &via])
        .expect("client route to the private segment");
}

fn http_server<'l>(lab: &'l Lab, rs: Role) -> Proc<'l> {
    let name = rs.short();
    let mut p = lab
        .spawn(
            rs,
            [
                HTTP,
                "--name",
                &name,
                "--listen",
                "0.0.0.0:80",
                "--lifetime-s",
                "120",
            ],
        )
        .expect("spawn lab-http");
    p.wait_for_log("ready", READY).expect("lab-http ready");
    p
}

fn client(lab: &Lab, args: &[&str], timeout: Duration) -> Tally {
    let mut argv = vec![CLIENT];
    argv.extend(args);
    let out = lab
        .exec_timeout(Role::Client(0), &argv, timeout)
        .expect("lab-client runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lab-client failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Tally::parse(&stdout).expect("a tally")
}

#[test]
fn http_through_a_routing_director_sees_the_real_client() {
    if !privileged("http_through_a_routing_director_sees_the_real_client") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 2).run(|lab| {
        route_client_via_director(lab);
        let _servers: Vec<Proc<'_>> = lab
            .real_servers()
            .into_iter()
            .map(|rs| http_server(lab, rs))
            .collect();
        let me = lab.addr(Role::Client(0)).to_string();
        for rs in lab.real_servers() {
            let to = format!("{}:80", lab.addr(rs));
            for keep_alive in [false, true] {
                let mut args = vec![
                    "--to",
                    to.as_str(),
                    "--requests",
                    "20",
                    "--timeout-ms",
                    "2000",
                ];
                if keep_alive {
                    args.push("--keep-alive");
                }
                let t = client(lab, &args, Duration::from_secs(30));
                assert_eq!((t.ok, t.failed), (20, 0));
                assert_eq!(t.count(&rs.short()), 20, "{t:?}");
                assert_eq!(
                    t.clients[&rs.short()],
                    BTreeSet::from([me.clone()]),
                    "the server must see the client's own address"
                );
            }
        }
    });
}

#[test]
fn bulk_transfer_of_50_mb_through_a_routing_director() {
    if !privileged("bulk_transfer_of_50_mb_through_a_routing_director") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 1).run(|lab| {
        route_client_via_director(lab);
        let rs = Role::Real(0);
        let _server = http_server(lab, rs);
        let to = format!("{}:80", lab.addr(rs));
        let bytes = (50 * 1024 * 1024).to_string();
        let t = client(
            lab,
            &[
                "--to",
                &to,
                "--bulk",
                &bytes,
                "--timeout-ms",
                "5000",
                "--deadline-s",
                "40",
            ],
            Duration::from_secs(45),
        );
        assert_eq!((t.ok, t.failed), (1, 0), "{t:?}");
        assert_eq!(t.count("rs0"), 1);
    });
}

#[test]
fn udp_echo_through_a_routing_director() {
    if !privileged("udp_echo_through_a_routing_director") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 1).run(|lab| {
        route_client_via_director(lab);
        let rs = Role::Real(0);
        let mut server = lab
            .spawn(
                rs,
                [
                    UDP,
                    "serve",
                    "--name",
                    "rs0",
                    "--listen",
                    "0.0.0.0:7",
                    "--lifetime-s",
                    "120",
                ],
            )
            .expect("spawn lab-udp");
        server.wait_for_log("ready", READY).expect("lab-udp ready");
        let to = format!("{}:7", lab.addr(rs));
        for extra in [None, Some("--new-socket")] {
            let mut argv = vec![
                UDP,
                "send",
                "--to",
                &to,
                "--count",
                "10",
                "--timeout-ms",
                "2000",
            ];
            argv.extend(extra);
            let out = lab
                .exec_timeout(Role::Client(0), &argv, Duration::from_secs(30))
                .expect("lab-udp send runs");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{stdout}");
            let t = Tally::parse(&stdout).expect("tally");
            assert_eq!(t.count("rs0"), 10);
            assert_eq!(
                t.clients["rs0"],
                BTreeSet::from([lab.addr(Role::Client(0)).to_string()])
            );
        }
    });
}

#[test]
fn dr_real_servers_hold_the_vip_on_lo_but_never_answer_arp_for_it() {
    if !privileged("dr_real_servers_hold_the_vip_on_lo_but_never_answer_arp_for_it") {
        return;
    }
    Lab::builder().real_servers(Mode::Dr, 2).run(|lab| {
        let vip = lab.vip().to_string();
        for rs in lab.real_servers() {
            let lo = lab
                .ip(rs, ["-4", "addr", "show", "dev", "lo"])
                .expect("ip addr");
            assert!(lo.contains(&format!("{vip}/32")), "{lo}");
        }
        // Nothing listens on VIP:81: the director refuses, but the client has resolved the
        // VIP by then, and the answer must have come from the director.
        let to = format!("{vip}:81");
        let out = lab
            .exec(
                Role::Client(0),
                [CLIENT, "--to", &to, "--timeout-ms", "1000"],
            )
            .expect("lab-client runs");
        assert!(!out.status.success(), "nobody listens on the VIP");
        let neigh = lab
            .ip(Role::Client(0), ["neigh", "show", &vip])
            .expect("ip neigh");
        let d0 = lab.mac(Role::Director(0), "eth0").expect("mac");
        assert_eq!(
            d0,
            lab.iface(Role::Director(0), Segment::Public)
                .expect("eth0")
                .mac
        );
        let d0 = d0
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        assert!(
            neigh.contains(&d0),
            "VIP resolved to {neigh:?}, director is {d0}"
        );
        assert!(lab.ifindex(Role::Director(0), "eth1").expect("ifindex") > 1);
    });
}

#[test]
fn offloads_can_be_turned_off_for_a_userspace_engine() {
    if !privileged("offloads_can_be_turned_off_for_a_userspace_engine") {
        return;
    }
    if std::process::Command::new("ethtool")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIP offloads_can_be_turned_off_for_a_userspace_engine: no ethtool (apt-get install -y ethtool)"
        );
        return;
    }
    Lab::builder()
        .real_servers(Mode::Nat, 1)
        .offloads(false)
        .run(|lab| {
            let k = lab
                .run(Role::Director(0), ["ethtool", "-k", "eth0"])
                .expect("ethtool -k");
            for feature in [
                "tx-checksumming: off",
                "generic-segmentation-offload: off",
                "generic-receive-offload: off",
            ] {
                assert!(k.contains(feature), "{feature} in {k}");
            }
            route_client_via_director(lab);
            let _server = http_server(lab, Role::Real(0));
            let to = format!("{}:80", lab.addr(Role::Real(0)));
            let bytes = (4 * 1024 * 1024).to_string();
            let t = client(
                lab,
                &["--to", &to, "--bulk", &bytes, "--timeout-ms", "5000"],
                Duration::from_secs(30),
            );
            assert_eq!((t.ok, t.failed), (1, 0), "{t:?}");
        });
}

#[test]
fn every_real_server_of_every_mode_answers_through_the_lab_helpers() {
    if !privileged("every_real_server_of_every_mode_answers_through_the_lab_helpers") {
        return;
    }
    Lab::builder()
        .directors(2)
        .real_servers(Mode::Nat, 2)
        .real_servers(Mode::Dr, 1)
        .real_servers(Mode::Tun, 1)
        .decap_bin(env!("CARGO_BIN_EXE_lab-decap"))
        .run(|lab| {
            route_client_via_director(lab);
            let _http = lab.start_http(80).expect("lab-http everywhere");
            let _udp = lab.start_udp(7).expect("lab-udp everywhere");
            let c = Role::Client(0);
            let t = Duration::from_secs(20);
            for rs in lab.real_servers() {
                let http = format!("{}:80", lab.addr(rs));
                let tally = lab
                    .http_client(c, &["--to", &http, "--requests", "3", "--keep-alive"], t)
                    .expect("lab-client");
                assert_eq!(
                    (tally.count(&rs.short()), tally.failed),
                    (3, 0),
                    "{tally:?}"
                );
                let udp = format!("{}:7", lab.addr(rs));
                let tally = lab
                    .udp_client(c, &["--to", &udp, "--count", "3"], t)
                    .expect("lab-udp send");
                assert_eq!(
                    (tally.count(&rs.short()), tally.failed),
                    (3, 0),
                    "{tally:?}"
                );
            }
            // Director 1 holds no floating address; director 0 holds both.
            let d1 = lab.ip(Role::Director(1), ["-4", "addr"]).expect("ip addr");
            assert!(!d1.contains(&lab.vip().to_string()), "{d1}");
            let d0 = lab.ip(Role::Director(0), ["-4", "addr"]).expect("ip addr");
            // On an alias label, as `address = VIP eth0:1` means.
            assert!(
                d0.contains(&format!("{}/24 scope global secondary eth0:1", lab.vip())),
                "{d0}"
            );
            assert!(d0.contains(&tests::lab::NAT_ROUTER.to_string()), "{d0}");
        });
}

#[test]
fn an_unplugged_host_is_cut_off_until_plugged_back_and_kill_all_empties_a_namespace() {
    if !privileged("an_unplugged_host_is_cut_off_until_plugged_back") {
        return;
    }
    Lab::builder().real_servers(Mode::Dr, 1).run(|lab| {
        let rs = Role::Real(0);
        let mut server = http_server(lab, rs);
        let to = format!("{}:80", lab.addr(rs));
        let args = ["--to", to.as_str(), "--timeout-ms", "500"];
        let t = Duration::from_secs(10);
        let ok = |lab: &Lab| {
            lab.http_client(Role::Client(0), &args, t)
                .expect("lab-client ran")
        };
        assert_eq!(ok(lab).count("rs0"), 1);
        lab.unplug(rs, Segment::Public).expect("unplug");
        assert_eq!(ok(lab).failed, 1, "an unplugged server must not answer");
        lab.plug(rs, Segment::Public).expect("plug");
        assert!(
            tests::lab::wait_until(Duration::from_secs(5), Duration::from_millis(50), || ok(
                lab
            )
            .failed
                == 0),
            "the server answers again once plugged back"
        );
        lab.kill_all(rs);
        assert!(
            server.wait(Duration::from_secs(5)).is_ok(),
            "kill_all killed lab-http"
        );
        assert_eq!(ok(lab).failed, 1);
    });
}
