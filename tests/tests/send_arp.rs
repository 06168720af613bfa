//! The real `send-arp` binary in director 0's namespace; what arrives in the client's.
//!
//! - The short form `send-arp -i eth0:1 VIP --count 3 --interval 0.2` sends three broadcast
//!   frames, each byte for byte Piranha's (written out below, independently of the
//!   library), with the director's `eth0` MAC, and they move the client's neighbour entry
//!   for the VIP to that MAC.
//! - Piranha's form sends one frame to TARG_MAC carrying SRC_MAC, whatever the interface's
//!   own address, and the client's neighbour entry follows it.
//! - `--request` sends the RFC 5227 announcement: opcode 1, target MAC zero.
//! - A missing interface exits 1, naming it.
//!
//! Needs root; skips otherwise. Run `cargo build -p send-arp` first (see `tests::bin`).

use std::net::Ipv4Addr;
use std::process::Output;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipvs_core::io::lab::{PacketSocket, enter_netns};
use tests::lab::{Lab, Role, privileged, wait_until};

const C0: Role = Role::Client(0);
const D0: Role = Role::Director(0);
/// A MAC nobody in the lab has (locally administered).
const OTHER_MAC: [u8; 6] = [0x02, 0x00, 0xc6, 0x12, 0x00, 0xee];

/// Piranha's frame (`piranha-daemons.md` §4): ARP reply, target = sender, 18 zero bytes.
fn piranha_frame(dst: [u8; 6], mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend(dst);
    f.extend(mac);
    f.extend([0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02]);
    f.extend(mac);
    f.extend(ip.octets());
    f.extend(mac);
    f.extend(ip.octets());
    f.extend([0u8; 18]);
    f
}

fn colon_mac(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

/// Runs `send-arp ARGS` in the director's namespace while capturing, in the client's, the ARP
/// frames whose sender IP is `ip`. Returns the binary's output and the frames.
fn send_and_capture(lab: &Lab, ip: Ipv4Addr, args: &[&str]) -> (Output, Vec<Vec<u8>>) {
    let ifindex = lab.ifindex(C0, "eth0").expect("client ifindex");
    let ns = lab.ns(C0).to_owned();
    let (ready_tx, ready_rx) = mpsc::channel();
    let capture = std::thread::spawn(move || -> std::io::Result<Vec<Vec<u8>>> {
        enter_netns(&ns)?;
        let sock = PacketSocket::bind(ifindex)?;
        ready_tx.send(()).expect("the test waits for the capture");
        let mut frames = Vec::new();
        let mut buf = vec![0u8; 2048];
        let end = Instant::now() + Duration::from_secs(3);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if let Some(n) = sock.recv(&mut buf, left)? {
                let f = &buf[..n];
                if n >= 42 && f[12..14] == [0x08, 0x06] && f[28..32] == ip.octets() {
                    frames.push(f.to_vec());
                }
            }
        }
        Ok(frames)
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("capture ready in the client namespace");
    let mut cmd = vec![tests::bin("send-arp").display().to_string()];
    cmd.extend(args.iter().map(|a| (*a).to_owned()));
    let out = lab
        .exec(D0, &cmd)
        .expect("send-arp runs in the director namespace");
    let frames = capture
        .join()
        .expect("capture thread")
        .expect("capture in the client namespace");
    (out, frames)
}

/// The client's neighbour entry for `ip`: its lladdr, if any.
fn neighbour_mac(lab: &Lab, ip: Ipv4Addr) -> Option<String> {
    let text = lab
        .ip(C0, ["neigh", "show", &ip.to_string(), "dev", "eth0"])
        .expect("ip neigh");
    let mut words = text.split_whitespace();
    words.find(|w| *w == "lladdr")?;
    words.next().map(str::to_owned)
}

fn assert_sent(out: &Output) {
    assert!(
        out.status.success(),
        "send-arp failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn send_arp_short_and_piranha_forms_reach_the_client() {
    if !privileged("send_arp_short_and_piranha_forms_reach_the_client") {
        return;
    }
    Lab::builder().run(|lab| {
        let vip = lab.vip();
        let vip_s = vip.to_string();
        let director_mac = lab.mac(D0, "eth0").expect("director MAC");
        let client_mac = lab.mac(C0, "eth0").expect("client MAC");

        // A stale neighbour entry for the VIP pointing elsewhere, older than the kernel's
        // locktime (1 s), as a client that talked to the other director would have.
        lab.ip(
            C0,
            [
                "neigh",
                "replace",
                &vip_s,
                "lladdr",
                &colon_mac(OTHER_MAC),
                "dev",
                "eth0",
                "nud",
                "stale",
            ],
        )
        .expect("neighbour entry");
        std::thread::sleep(Duration::from_millis(1200));

        // Short form on the alias label: three broadcast replies with the director's MAC.
        let (out, frames) = send_and_capture(
            lab,
            vip,
            &["-i", "eth0:1", &vip_s, "--count", "3", "--interval", "0.2"],
        );
        assert_sent(&out);
        let want = piranha_frame([0xff; 6], director_mac, vip);
        assert_eq!(frames.len(), 3, "three frames: {frames:02x?}");
        for f in &frames {
            assert_eq!(f, &want, "Piranha's frame with the director's MAC");
        }
        assert!(
            wait_until(Duration::from_secs(2), Duration::from_millis(50), || {
                neighbour_mac(lab, vip) == Some(colon_mac(director_mac))
            }),
            "client's entry for the VIP moved to the director: {:?}",
            neighbour_mac(lab, vip)
        );
        std::thread::sleep(Duration::from_millis(1200));

        // Piranha's form, as pulse called it but unicast to the client: SRC_MAC is sent as
        // given, TARG_MAC is the Ethernet destination, TARG_IP is not in the frame.
        let (out, frames) = send_and_capture(
            lab,
            vip,
            &[
                "-i",
                "eth0",
                &vip_s,
                "0200C61200EE",
                "198.18.0.255",
                &colon_mac(client_mac),
            ],
        );
        assert_sent(&out);
        assert_eq!(frames, vec![piranha_frame(client_mac, OTHER_MAC, vip)]);
        assert!(
            wait_until(Duration::from_secs(2), Duration::from_millis(50), || {
                neighbour_mac(lab, vip) == Some(colon_mac(OTHER_MAC))
            }),
            "client's entry follows the announced MAC: {:?}",
            neighbour_mac(lab, vip)
        );

        // --request: the RFC 5227 announcement (opcode 1, target MAC zero).
        let (out, frames) = send_and_capture(lab, vip, &["-i", "eth0", &vip_s, "--request"]);
        assert_sent(&out);
        let mut want = piranha_frame([0xff; 6], director_mac, vip);
        want[21] = 1;
        want[32..38].fill(0);
        assert_eq!(frames, vec![want]);

        // No such interface: exit 1, the interface named.
        let out = lab
            .exec(
                D0,
                [
                    tests::bin("send-arp").display().to_string().as_str(),
                    "-i",
                    "nosuch0",
                    &vip_s,
                ],
            )
            .expect("send-arp runs");
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch0"));
    });
}
