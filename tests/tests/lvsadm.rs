//! `lvsadm` against a live lvsd in a NAT lab (VIP on an alias label, the kernel's default veth
//! offloads): the classic ipvsadm command lines build the table that `-L -n` prints byte for
//! byte, traffic follows a service added at run time, the listings (`--stats`, `--rate`,
//! `-c`, `--timeout`) show what the engine did, `-S | -C | -R` restores the same table,
//! the listing is the engine's table (servers taken out absent, quiesced ones at weight 0),
//! refused commands print ipvsadm's words with its exit status, racing commands all land, and
//! a reload puts lvs.cf's table back (the file wins over run-time changes).
//!
//! lvsd runs with `--no-nannies`: health is not what is tested here.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lvsd::control::api::{ServerPatch, ServerState, ServiceId};
use lvsd::control::client::Client;
use tests::lab::{Lab, Mode, Role, privileged};
use tests::lvsd::{Cf, READY, READY_TIMEOUT, Virtual, http, only_server, socket_path, spawn};

const C0: Role = Role::Client(0);

/// Runs `lvsadm ARGS` against the lab's lvsd, with `stdin` if given.
fn lvsadm(lab: &Lab, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(tests::bin("lvsadm"));
    cmd.args(args)
        .env("LVSD_SOCKET", socket_path(lab))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("lvsadm runs");
    if let Some(text) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin piped");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("lvsadm ends")
}

/// `lvsadm ARGS` must succeed; returns its stdout.
fn ok(lab: &Lab, args: &[&str]) -> String {
    let out = lvsadm(lab, args, None);
    assert!(
        out.status.success(),
        "lvsadm {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `lvsadm ARGS` must fail with `code` and exactly `message` on stderr.
fn refused(lab: &Lab, args: &[&str], code: i32, message: &str) {
    let out = lvsadm(lab, args, None);
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned()
        ),
        (Some(code), format!("{message}\n")),
        "lvsadm {args:?}"
    );
}

/// One `-L -n` server line, as ipvsadm prints it.
fn dest_line(addr: Ipv4Addr, port: u16, fwd: &str, weight: u32) -> String {
    format!(
        "  -> {:<28} {:<7} {:<6} {:<10} {:<10}\n",
        format!("{addr}:{port}"),
        fwd,
        weight,
        0,
        0
    )
}

/// The `--stats`/`--rate` figures of the line naming `what` (a service or server address).
fn figures(listing: &str, what: &str) -> Vec<String> {
    listing
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == what))
        .unwrap_or_else(|| panic!("no line for {what} in:\n{listing}"))
        .split_whitespace()
        .skip_while(|w| *w != what)
        .skip(1)
        .map(str::to_owned)
        .collect()
}

#[test]
fn classic_command_lines_drive_a_live_director() {
    if !privileged("classic_command_lines_drive_a_live_director") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 3).run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let rs: Vec<Ipv4Addr> = lab.real_servers().iter().map(|r| lab.addr(*r)).collect();
        let vip = lab.vip();
        let cf = Cf::new("nat").virtual_(Virtual::http(lab, "wlc").only_servers(lab, &[0, 1]));
        let mut lvsd = spawn(lab, &cf.render(lab), &["--no-nannies"]).expect("spawn");
        lvsd.wait_for_log(READY, READY_TIMEOUT)
            .expect("lvsd forwards");
        let size = Client::new(socket_path(lab))
            .status()
            .expect("status")
            .conn_capacity;
        let svc = format!("{vip}:8080");
        let (r0, r1, r2) = (format!("{}:80", rs[0]), format!("{}:80", rs[1]), format!("{}:80", rs[2]));

        // The seeds' classic lines: a service and a NAT server with weight 2.
        ok(lab, &["-A", "-t", &svc, "-s", "rr"]);
        ok(lab, &["-a", "-t", &svc, "-r", &r2, "-m", "-w", "2"]);
        let want = format!(
            "IP Virtual Server version 1.2.1 (size={size})\n\
             Prot LocalAddress:Port Scheduler Flags\n  \
             -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  {vip}:80 wlc\n{}{}TCP  {vip}:8080 rr\n{}",
            dest_line(rs[0], 80, "Masq", 1),
            dest_line(rs[1], 80, "Masq", 1),
            dest_line(rs[2], 80, "Masq", 2),
        );
        assert_eq!(ok(lab, &["-L", "-n"]), want);
        assert_eq!(ok(lab, &["-Ln"]), want, "clustered options");

        // Traffic follows the run-time service at once.
        let t = http(lab, C0, &["--to", &svc, "--requests", "20"]).expect("lab-client");
        assert_eq!(only_server(&t, 20), "rs2");
        let stats = ok(lab, &["-L", "-n", "--stats", "-t", &svc]);
        assert_eq!(figures(&stats, &r2)[0], "20", "Conns of rs2:\n{stats}");
        let conns = ok(lab, &["-L", "-n", "-c"]);
        assert!(conns.starts_with("IPVS connection entries\npro expire state"), "{conns}");
        assert!(
            conns.lines().any(|l| l.contains(&svc) && l.contains(&r2)),
            "no entry of {svc} -> {r2}:\n{conns}"
        );

        // --rate: the 2-second estimator sees the traffic (polled, bounded).
        let deadline = Instant::now() + Duration::from_secs(12);
        let mut cps = String::from("0");
        while cps == "0" && Instant::now() < deadline {
            http(lab, C0, &["--to", &svc, "--requests", "20"]).expect("lab-client");
            std::thread::sleep(Duration::from_millis(500));
            let rate = ok(lab, &["-L", "-n", "--rate"]);
            cps = figures(&rate, &svc)[0].clone();
        }
        assert_ne!(cps, "0", "--rate never showed connections per second");

        // -Z zeroes one service; --set / --timeout.
        ok(lab, &["-Z", "-t", &svc]);
        let stats = ok(lab, &["-L", "-n", "--stats", "--exact"]);
        assert_eq!(figures(&stats, &svc)[0], "0", "{stats}");
        ok(lab, &["--set", "100", "20", "30"]);
        assert_eq!(
            ok(lab, &["-L", "--timeout"]),
            "Timeout (tcp tcpfin udp): 100 20 30\n"
        );

        // Refusals: ipvsadm's words and exit codes; nothing changes.
        let before = ok(lab, &["-S", "-n"]);
        refused(lab, &["-A", "-t", &svc, "-s", "rr"], 255, "Service already exists");
        refused(
            lab,
            &["-a", "-t", &format!("{vip}:9999"), "-r", &r0, "-m"],
            255,
            "Service not defined",
        );
        refused(lab, &["-a", "-t", &svc, "-r", &r2, "-m"], 255, "Destination already exists");
        refused(lab, &["-d", "-t", &svc, "-r", &r1], 255, "No such destination");
        refused(lab, &["-D", "-t", &format!("{vip}:9999")], 255, "No such service");
        refused(lab, &["-L", "-n", "-t", &format!("{vip}:9999")], 1, "No such service");
        refused(
            lab,
            &["-A", "-t", &format!("{vip}:8081"), "-s", "nosuch"],
            255,
            "Scheduler or persistence engine not found",
        );
        refused(
            lab,
            &["-a", "-t", &svc, "-r", &r1, "-w", "70000"],
            2,
            "illegal weight specified",
        );
        assert_eq!(ok(lab, &["-S", "-n"]), before, "a refused command changed the table");

        // The listing is the engine's table: a server taken out is absent, a quiesced one
        // has weight 0 (as ipvsadm shows the kernel's table under Piranha's nanny).
        let api = Client::new(socket_path(lab));
        let web: ServiceId = format!("tcp:{vip}:80").parse().expect("id");
        let set = |i: usize, state: ServerState| {
            let patch = ServerPatch {
                state: Some(state),
                weight: None,
                reason: Some("lvsadm test".into()),
            };
            api.patch_server(&web, SocketAddrV4::new(rs[i], 80), &patch)
                .expect("patch");
        };
        set(0, ServerState::Down);
        set(1, ServerState::Quiesced);
        let listed = ok(lab, &["-L", "-n", "-t", &format!("{vip}:80")]);
        assert!(!listed.contains(&r0), "a server taken out is listed:\n{listed}");
        assert_eq!(figures(&listed, &r1)[1], "0", "quiesced weight:\n{listed}");
        set(0, ServerState::Up);
        set(1, ServerState::Up);
        assert_eq!(ok(lab, &["-S", "-n"]), before);

        // Two lvsadm racing on the same server: every command lands, the table is whole.
        std::thread::scope(|s| {
            for w in [3, 4] {
                let (svc, r2) = (&svc, &r2);
                s.spawn(move || {
                    for _ in 0..10 {
                        ok(lab, &["-e", "-t", svc, "-r", r2, "-m", "-w", &w.to_string()]);
                    }
                });
            }
        });
        let after = ok(lab, &["-L", "-n", "-t", &svc]);
        let weight = figures(&after, &r2)[1].clone();
        assert!(weight == "3" || weight == "4", "{after}");

        // -S | -C | -R restores the same table, and traffic flows again.
        let saved = ok(lab, &["-S", "-n"]);
        assert!(saved.contains(&format!("-a -t {svc} -r {r2} -m -w")), "{saved}");
        ok(lab, &["-C"]);
        assert_eq!(ok(lab, &["-S", "-n"]), "");
        let out = lvsadm(lab, &["-R"], Some(&saved));
        assert!(out.status.success(), "-R: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(ok(lab, &["-S", "-n"]), saved);
        let t = http(lab, C0, &["--to", &svc, "--requests", "5"]).expect("lab-client");
        assert_eq!(only_server(&t, 5), "rs2");

        // A reload puts lvs.cf's table back and says what it undid.
        lvsd.signal("HUP").expect("SIGHUP");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !lvsd.log().contains("reloaded") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = lvsd.log();
        assert!(log.contains("lvs.cf wins over the"), "{log}");
        assert!(
            log.lines().any(|l| l.contains("reload:") && l.contains("8080")),
            "no reload line naming the run-time service:\n{log}"
        );
        assert_eq!(
            ok(lab, &["-S", "-n"]),
            format!(
                "-A -t {vip}:80 -s wlc\n-a -t {vip}:80 -r {r0} -m -w 1\n-a -t {vip}:80 -r {r1} -m -w 1\n"
            )
        );
    });
}
