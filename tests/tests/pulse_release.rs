//! `pulse --release-addresses` (the unit's `ExecStopPost=`): the floating addresses a pulse
//! left on the interfaces when it died (VIP on its alias label, the NAT router address) are
//! removed, nothing else is touched, and a second run finds nothing to do.

use tests::lab::{Lab, Mode, Role, privileged};
use tests::lvsd::{Cf, Virtual, write_cf};

const D0: Role = Role::Director(0);

#[test]
fn release_addresses_removes_what_a_dead_pulse_left() {
    if !privileged("release_addresses_removes_what_a_dead_pulse_left") {
        return;
    }
    // The VIP is not put on the director by the lab: this test puts it there itself, on
    // the label pulse uses, as a pulse killed while active leaves it.
    Lab::builder()
        .real_servers(Mode::Nat, 1)
        .floating_on(None)
        .run(|lab| {
            let cf = Cf::new("nat")
                .virtual_(Virtual::http(lab, "rr").servers(lab, &[1]))
                .render(lab);
            let path = write_cf(lab, &cf).expect("lvs.cf");
            let vip = lab.vip();
            lab.add_label(D0, "eth0", 1, &format!("{vip}/24"))
                .expect("VIP left behind");
            let own = lab.addr(D0);
            let pulse = tests::bin("pulse");
            let run = || {
                lab.exec(
                    D0,
                    [
                        pulse.to_string_lossy().as_ref(),
                        "-c",
                        path.to_string_lossy().as_ref(),
                        "--release-addresses",
                    ],
                )
                .expect("pulse runs")
            };
            let out = run();
            let log = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "{log}");
            assert!(log.contains(&format!("removed a floating address left from a previous run; it comes back on takeover vip={vip} label=eth0:1")), "{log}");
            let addrs = lab.ip(D0, ["-4", "addr", "show", "dev", "eth0"]).expect("ip");
            assert!(!addrs.contains(&format!("{vip}/")), "{addrs}");
            assert!(addrs.contains(&format!("{own}/")), "its own address stays: {addrs}");
            let again = run();
            assert!(again.status.success());
            assert!(
                String::from_utf8_lossy(&again.stderr).contains("released 0 floating address"),
                "{}",
                String::from_utf8_lossy(&again.stderr)
            );
        });
}
