//! lvsd on a director configured the way operators configure one: the VIP and the NAT router
//! address on alias labels (`eth0:1`, `eth1:1`), which are not interfaces.
//!
//! - lvsd starts before the floating addresses exist (pulse adds them on takeover) and
//!   forwards as soon as they are added, with no restart;
//! - `--interface eth0:1` means the interface `eth0`;
//! - lvsd attaches to the interfaces lvs.cf names (`eth0` for the VIP, `eth1` for
//!   `nat_router`), found from the labels, and to the one on its real servers' subnet when
//!   lvs.cf has no `nat_router`.

use std::time::Duration;

use tests::lab::{Lab, Mode, NAT_ROUTER, PREFIX, Role, privileged};
use tests::lvsd::{Cf, READY, READY_TIMEOUT, Virtual, assert_split, http, spawn};

const C0: Role = Role::Client(0);
const D0: Role = Role::Director(0);

#[test]
fn lvsd_starts_before_the_floating_addresses_and_forwards_once_they_are_added() {
    if !privileged("lvsd_starts_before_the_floating_addresses") {
        return;
    }
    Lab::builder()
        .real_servers(Mode::Nat, 2)
        .floating_on(None)
        .run(|lab| {
            let _http = lab.start_http(80).expect("http servers");
            let cf = Cf::new("nat").virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1]));
            let mut lvsd = spawn(lab, &cf.render(lab), &["--no-nannies"]).expect("spawn");
            lvsd.wait_for_log(READY, READY_TIMEOUT)
                .expect("lvsd forwards");
            let log = lvsd.log();
            assert!(
                log.contains("forwarding on eth0") && log.contains("eth1"),
                "attached to the base interfaces of eth0:1 and eth1:1: {log}"
            );
            // What pulse does on takeover.
            lab.add_label(D0, "eth0", 1, &format!("{}/{PREFIX}", lab.vip()))
                .expect("VIP");
            lab.add_label(D0, "eth1", 1, &format!("{NAT_ROUTER}/{PREFIX}"))
                .expect("NAT router");
            let vip = format!("{}:80", lab.vip());
            let t = http(lab, C0, &["--to", &vip, "--requests", "20"]).expect("client");
            assert_split(&t, &[10, 10]);
            tests::lvsd::stop_clean(lab, &mut lvsd).expect("clean exit");
        });
}

#[test]
fn an_interface_given_as_a_label_means_its_interface() {
    if !privileged("an_interface_given_as_a_label_means_its_interface") {
        return;
    }
    Lab::builder().real_servers(Mode::Dr, 2).run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = Cf::new("direct").virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1]));
        let mut lvsd = spawn(
            lab,
            &cf.render(lab),
            &["--no-nannies", "--interface", "eth0:1"],
        )
        .expect("spawn");
        lvsd.wait_for_log(READY, READY_TIMEOUT)
            .expect("lvsd forwards");
        assert!(!lvsd.log().contains("eth1"), "only eth0: {}", lvsd.log());
        let vip = format!("{}:80", lab.vip());
        let t = http(lab, C0, &["--to", &vip, "--requests", "20"]).expect("client");
        assert_split(&t, &[10, 10]);
        tests::lvsd::stop_clean(lab, &mut lvsd).expect("clean exit");
        // A device that does not exist is a clear error naming it.
        let mut bad = spawn(
            lab,
            &cf.render(lab),
            &["--no-nannies", "--interface", "eth7:1"],
        )
        .expect("spawn");
        let status = bad.wait(Duration::from_secs(10)).expect("exits");
        assert_eq!(status.code(), Some(1), "{}", bad.log());
        assert!(
            bad.log().contains("interface eth7 does not exist"),
            "{}",
            bad.log()
        );
    });
}

#[test]
fn a_nat_director_without_nat_router_attaches_to_its_real_servers_interface() {
    if !privileged("a_nat_director_without_nat_router") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 2).run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        // A single director: no nat_router line (the real servers' gateway is simply the
        // director's address on their subnet); lvs.cf then names only eth0.
        let cf: String = Cf::new("nat")
            .virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1]))
            .render(lab)
            .lines()
            .filter(|l| !l.starts_with("nat_router"))
            .map(|l| format!("{l}\n"))
            .collect();
        let mut lvsd = spawn(lab, &cf, &["--no-nannies"]).expect("spawn");
        lvsd.wait_for_log(READY, READY_TIMEOUT)
            .expect("lvsd forwards");
        assert!(lvsd.log().contains("eth1"), "{}", lvsd.log());
        let vip = format!("{}:80", lab.vip());
        let t = http(lab, C0, &["--to", &vip, "--requests", "20"]).expect("client");
        assert_split(&t, &[10, 10]);
        tests::lvsd::stop_clean(lab, &mut lvsd).expect("clean exit");
    });
}
