//! What lvsd must not disturb, and how it refuses to run twice.
//!
//! - The director's own stack never answers for a virtual service: a SYN to VIP:80 of a
//!   service with no active real server gets the engine's ICMP port unreachable (as kernel
//!   IPVS's `ip_vs_leave`), and a stray ACK to VIP:80 gets nothing; no TCP RST ever leaves
//!   the director for VIP:80 (a raw capture in the client namespace watches, with a positive
//!   control: an ACK to a closed port of the director's own address is RST as usual).
//! - Meanwhile the director's kernel still answers ping to the VIP (XDP passes ICMP echo)
//!   and serves TCP on its own address (an "ssh-like" `lab-http` on port 2222).
//! - An lvsd SIGKILLed (no clean-up: its XDP programs go with it) leaves its kernel-side
//!   guard: a stray ACK to VIP:80 is dropped by the director's kernel, not reset; the next
//!   lvsd replaces the guard and its clean stop removes it.
//! - A second lvsd on the same interfaces exits 1 with a message naming the interface and
//!   the XDP program already attached, and the first one keeps forwarding.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ipvs_core::io::lab::{PacketSocket, enter_netns};
use tests::lab::{Lab, Mode, Role, privileged};
use tests::lvsd::{Cf, GUARD, Virtual, assert_split, http, spawn, start, stop_clean};

const C0: Role = Role::Client(0);
const CLIENT_PORT: u16 = 40_000;
const CLOSED_PORT: u16 = 2223;
const ECHO_ID: u16 = 0x4c56;

// ----- crafted frames -----

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for chunk in chunks {
        for pair in chunk.chunks(2) {
            let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
            sum += u32::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("small packet");
    let mut h = vec![0x45, 0];
    h.extend(total.to_be_bytes());
    h.extend([0x12, 0x34, 0x40, 0, 64, proto, 0, 0]);
    h.extend(src.octets());
    h.extend(dst.octets());
    let c = checksum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend(payload);
    h
}

const ACK: u8 = 0x10;
const RST: u8 = 0x04;
const SYN: u8 = 0x02;

fn tcp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = Vec::with_capacity(20);
    t.extend(sport.to_be_bytes());
    t.extend(dport.to_be_bytes());
    t.extend(0x0102_0304u32.to_be_bytes()); // seq
    t.extend(0x0a0b_0c0du32.to_be_bytes()); // ack
    t.extend([0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend(src.octets());
    pseudo.extend(dst.octets());
    pseudo.extend([0, 6, 0, 20]);
    let c = checksum(&[&pseudo, &t]);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 6, &t)
}

fn echo_request(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0];
    m.extend(ECHO_ID.to_be_bytes());
    m.extend(1u16.to_be_bytes());
    m.extend(b"lvsd guard");
    let c = checksum(&[&m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 1, &m)
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + ip.len());
    f.extend(dst);
    f.extend(src);
    f.extend([0x08, 0x00]);
    f.extend(ip);
    f
}

// ----- the capture -----

/// What reached the client from the VIP and from the director's own address.
#[derive(Debug, Default)]
struct Seen {
    /// TCP RSTs from VIP:80: must stay 0.
    rst_from_vip: u32,
    /// SYN-ACKs from VIP:80 (there is no real server to send one).
    synack_from_vip: u32,
    /// ICMP port unreachable from the VIP (the engine's answer to a SYN).
    unreachable_from_vip: u32,
    /// ICMP echo replies from the VIP with our id.
    echo_replies_from_vip: u32,
    /// RSTs from the director's own address, closed port (the control).
    rst_from_director: u32,
}

fn note(seen: &mut Seen, frame: &[u8], vip: Ipv4Addr, director: Ipv4Addr) {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ihl < 20 || ip.len() < ihl + 8 {
        return;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let l4 = &ip[ihl..];
    match ip[9] {
        6 if l4.len() >= 14 => {
            let sport = u16::from_be_bytes([l4[0], l4[1]]);
            let flags = l4[13];
            if src == vip && sport == 80 && flags & RST != 0 {
                seen.rst_from_vip += 1;
            }
            if src == vip && sport == 80 && flags & (SYN | ACK) == SYN | ACK {
                seen.synack_from_vip += 1;
            }
            if src == director && sport == CLOSED_PORT && flags & RST != 0 {
                seen.rst_from_director += 1;
            }
        }
        1 if src == vip => match (l4[0], l4[1]) {
            (3, 3) => seen.unreachable_from_vip += 1,
            (0, 0) if u16::from_be_bytes([l4[4], l4[5]]) == ECHO_ID => {
                seen.echo_replies_from_vip += 1;
            }
            _ => {}
        },
        _ => {}
    }
}

/// Sends the frames `frames(client, director)` builds from the client to director 0, and
/// notes what comes back to the client for `secs`, from a thread in the client's namespace.
fn capture(
    lab: &Lab,
    secs: Duration,
    frames: impl FnOnce(Ipv4Addr, Ipv4Addr) -> Vec<Vec<u8>> + Send + 'static,
) -> std::thread::JoinHandle<std::io::Result<Seen>> {
    let vip = lab.vip();
    let client = lab.addr(C0);
    let director = lab.addr(Role::Director(0));
    let client_mac = lab.mac(C0, "eth0").expect("client MAC");
    let director_mac = lab.mac(Role::Director(0), "eth0").expect("director MAC");
    let ifindex = lab.ifindex(C0, "eth0").expect("client ifindex");
    let ns = lab.ns(C0).to_owned();
    std::thread::spawn(move || -> std::io::Result<Seen> {
        enter_netns(&ns)?;
        let sock = PacketSocket::bind(ifindex)?;
        for ip in frames(client, director) {
            sock.send(&ethernet(director_mac, client_mac, &ip))?;
        }
        let mut seen = Seen::default();
        let mut buf = vec![0u8; 2048];
        let end = Instant::now() + secs;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if let Some(n) = sock.recv(&mut buf, left)? {
                note(&mut seen, &buf[..n], vip, director);
            }
        }
        Ok(seen)
    })
}

#[test]
fn director_stack_never_answers_for_the_service() {
    if !privileged("director_stack_never_answers_for_the_service") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 2).run(|lab| {
        // The service exists, but no real server is active: no destination at all.
        let mut v = Virtual::http(lab, "rr").servers(lab, &[1, 1]);
        for s in &mut v.servers {
            s.active = false;
        }
        let _lvsd = start(lab, &Cf::new("nat").virtual_(v).render(lab)).expect("lvsd");

        // "ssh" on the director's own address.
        let director = lab.addr(Role::Director(0));
        let mut ssh = lab
            .spawn(
                Role::Director(0),
                [
                    tests::bin("lab-http").to_string_lossy().as_ref(),
                    "--name",
                    "d0",
                    "--listen",
                    &format!("{director}:2222"),
                ],
            )
            .expect("lab-http on the director");
        ssh.wait_for_log("ready", Duration::from_secs(10))
            .expect("lab-http ready");

        // The capture (and the crafted frames) run in a thread inside the client's
        // namespace, for a bounded time.
        let vip = lab.vip();
        let capture = capture(lab, Duration::from_secs(4), move |client, director| {
            vec![
                // A stray ACK to the service (no connection): kernel IPVS would hand it to
                // the stack, which RSTs it; lvsd's engine must not let the kernel see it.
                tcp(client, vip, CLIENT_PORT, 80, ACK),
                // The control: the same ACK to a closed port of the director's own address.
                tcp(client, director, CLIENT_PORT, CLOSED_PORT, ACK),
                // Ping the VIP.
                echo_request(client, vip),
            ]
        });

        // SYNs to the service (the client's kernel makes them): refused by ICMP, never
        // answered by a SYN-ACK or a RST.
        std::thread::sleep(Duration::from_millis(200));
        let to = format!("{vip}:80");
        let t = http(
            lab,
            C0,
            &["--to", &to, "--requests", "5", "--timeout-ms", "500"],
        )
        .expect("lab-client to the VIP");
        assert_eq!(t.ok, 0, "nothing answers VIP:80: {t:?}");
        assert_eq!(t.failed, 5, "{t:?}");

        // The director's own TCP service works while lvsd runs.
        let t = http(
            lab,
            C0,
            &["--to", &format!("{director}:2222"), "--requests", "5"],
        )
        .expect("lab-client to the director");
        assert_eq!((t.ok, t.servers.get("d0").copied()), (5, Some(5)), "{t:?}");

        let seen = capture
            .join()
            .expect("capture thread")
            .expect("capture in the client namespace");
        assert_eq!(
            seen.rst_from_director, 1,
            "the control RST was seen: {seen:?}"
        );
        assert_eq!(seen.rst_from_vip, 0, "no RST for VIP:80: {seen:?}");
        assert_eq!(seen.synack_from_vip, 0, "{seen:?}");
        assert!(
            seen.unreachable_from_vip >= 1,
            "ICMP port unreachable: {seen:?}"
        );
        assert_eq!(seen.echo_replies_from_vip, 1, "ping to the VIP: {seen:?}");
    });
}

#[test]
fn a_second_lvsd_is_refused_and_the_first_keeps_forwarding() {
    if !privileged("a_second_lvsd_is_refused") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 2).run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = Cf::new("nat")
            .virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1]))
            .render(lab);
        let mut first = start(lab, &cf).expect("first lvsd forwards");

        let mut second = spawn(lab, &cf, &[]).expect("spawn the second lvsd");
        let status = second
            .wait(Duration::from_secs(15))
            .expect("the second lvsd exits by itself");
        let log = second.log();
        assert_eq!(status.code(), Some(1), "exit code 1; log: {log}");
        assert!(
            log.contains("already has an XDP program"),
            "clear message: {log}"
        );
        assert!(
            log.contains("interface eth0") || log.contains("interface eth1"),
            "the message names the interface: {log}"
        );

        // The refused start detached nothing of the first lvsd's.
        let vip = format!("{}:80", lab.vip());
        let t = http(lab, C0, &["--to", &vip, "--requests", "10"]).expect("lab-client");
        assert_split(&t, &[5, 5]);
        stop_clean(lab, &mut first).expect("clean exit, XDP detached");
    });
}

#[test]
fn a_killed_lvsd_leaves_the_kernel_dropping_not_resetting() {
    if !privileged("a_killed_lvsd_leaves_the_kernel_dropping") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 2).run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = Cf::new("nat")
            .virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1]))
            .render(lab);
        let d0 = Role::Director(0);
        let lvsd = start(lab, &cf).expect("lvsd forwards");
        let guard = ["nft", "list", "table", "inet", GUARD];
        let table = lab.run(d0, guard).expect("the guard is installed");
        assert!(
            table.contains(&format!("{} . tcp . 80", lab.vip())),
            "{table}"
        );

        // No clean-up at all: the bpf_link goes with the process, the guard stays.
        lvsd.signal("KILL").expect("SIGKILL lvsd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while lab
            .ip(d0, ["-d", "link", "show"])
            .is_ok_and(|l| l.contains("prog/xdp"))
        {
            assert!(
                Instant::now() < deadline,
                "XDP still attached after SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let vip = lab.vip();
        let seen = capture(lab, Duration::from_secs(2), move |client, director| {
            vec![
                tcp(client, vip, CLIENT_PORT, 80, ACK),
                tcp(client, director, CLIENT_PORT, CLOSED_PORT, ACK),
            ]
        })
        .join()
        .expect("capture thread")
        .expect("capture in the client namespace");
        assert_eq!(seen.rst_from_director, 1, "the control RST: {seen:?}");
        assert_eq!(seen.rst_from_vip, 0, "the kernel dropped the ACK: {seen:?}");

        // The next lvsd replaces the table, and its clean stop removes it.
        let mut next = start(lab, &cf).expect("lvsd starts again");
        let t =
            http(lab, C0, &["--to", &format!("{vip}:80"), "--requests", "4"]).expect("lab-client");
        assert_split(&t, &[2, 2]);
        stop_clean(lab, &mut next).expect("clean exit: XDP detached, guard removed");
    });
}
