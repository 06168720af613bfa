//! Health checking as operators run it: the real `lvsd` starts one real `nanny` per real
//! server (Piranha's argument list), the nannies probe the real servers in the lab and
//! report over lvsd's control API, and lvsd moves traffic accordingly.
//!
//! - A real server whose service stops is out of the table within its probe interval plus
//!   its timeout, the client sees no failed request after that, and it is back after
//!   `reentry` once its service returns.
//! - The sorry server takes over when every real server is down and leaves when one returns.
//! - `send_program` probes drive health (a script the test switches between OK and failing).
//! - A nanny killed with SIGKILL is restarted by lvsd.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use lvsd::control::api::{ServerState, ServiceId, ServiceView};
use lvsd::control::client::Client;
use tests::lab::{Lab, Mode, Proc, Role, privileged};
use tests::lvsd::{Cf, Virtual, assert_split, http, socket_path, start_with_health};

const C0: Role = Role::Client(0);

fn lab() -> tests::lab::LabBuilder {
    Lab::builder().real_servers(Mode::Nat, 3)
}

fn svc(lab: &Lab) -> ServiceId {
    format!("tcp:{}:80", lab.vip()).parse().expect("id")
}

fn rs(lab: &Lab, i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(lab.addr(lab.real_servers()[i]), 80)
}

/// Polls the service every 20 ms until `cond` holds; at most `limit`. Returns the time
/// it took.
fn until(
    api: &Client,
    id: &ServiceId,
    limit: Duration,
    what: &str,
    cond: impl Fn(&ServiceView) -> bool,
) -> Duration {
    let t0 = Instant::now();
    let mut last = None;
    while t0.elapsed() < limit {
        if let Ok(v) = api.service(id) {
            if cond(&v) {
                return t0.elapsed();
            }
            last = Some(v);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: not within {limit:?}; last view {last:#?}");
}

fn state_of(v: &ServiceView, a: SocketAddrV4) -> (ServerState, bool) {
    let s = v
        .servers
        .iter()
        .find(|s| s.address == a)
        .expect("server listed");
    (s.state, s.in_table)
}

fn checked(v: &ServiceView) -> bool {
    v.servers
        .iter()
        .filter(|s| !s.sorry)
        .all(|s| s.reason != "not checked yet")
}

/// lvsd with its nannies, once every nanny has reported on its server.
fn start_checked<'l>(lab: &'l Lab, cf: &Cf, id: &ServiceId) -> (Proc<'l>, Client) {
    let lvsd = start_with_health(lab, &cf.render(lab)).expect("lvsd forwards");
    let api = Client::new(socket_path(lab));
    until(
        &api,
        id,
        Duration::from_secs(15),
        "every nanny reported",
        checked,
    );
    (lvsd, api)
}

fn start_http_on<'l>(lab: &'l Lab, i: usize) -> Proc<'l> {
    let rs = lab.real_servers()[i];
    let http = tests::bin("lab-http").to_string_lossy().into_owned();
    let name = rs.short();
    let mut p = lab
        .spawn(
            rs,
            [http.as_str(), "--name", &name, "--listen", "0.0.0.0:80"],
        )
        .expect("spawn lab-http");
    p.wait_for_log("ready", Duration::from_secs(10))
        .expect("lab-http ready");
    p
}

#[test]
fn a_dead_server_leaves_within_interval_plus_timeout_and_returns_after_reentry() {
    if !privileged("a_dead_server_leaves_within_interval_plus_timeout") {
        return;
    }
    lab().run(|lab| {
        let mut servers: Vec<Option<Proc<'_>>> =
            (0..3).map(|i| Some(start_http_on(lab, i))).collect();
        // One-second probes (timeout = interval, as in Piranha), back after 2 s of health.
        let cf = Cf::new("nat").virtual_(
            Virtual::http(lab, "rr")
                .servers(lab, &[1, 1, 1])
                .line("timeout = 1")
                .line("reentry = 2"),
        );
        let id: ServiceId = svc(lab);
        let (mut lvsd, api) = start_checked(lab, &cf, &id);

        // rs1's service stops.
        if let Some(mut p) = servers[1].take() {
            p.stop(Duration::from_secs(2));
        }
        let took = until(&api, &id, Duration::from_secs(8), "rs1 taken out", |v| {
            state_of(v, rs(lab, 1)) == (ServerState::Down, false)
        });
        println!(
            "a stopped real server was out of the table after {took:?} (interval 1 s + timeout 1 s)"
        );
        let vip = format!("{}:80", lab.vip());
        let t = http(lab, C0, &["--to", &vip, "--requests", "40"]).expect("client");
        assert_split(&t, &[20, 0, 20]);

        // Its service returns: back after reentry (2 s of good probes), not at once.
        servers[1] = Some(start_http_on(lab, 1));
        let back = until(&api, &id, Duration::from_secs(15), "rs1 back", |v| {
            state_of(v, rs(lab, 1)) == (ServerState::Up, true)
        });
        println!("the returning real server was back after {back:?} (reentry 2 s)");
        assert!(
            back >= Duration::from_millis(1500),
            "re-entry waits for reentry seconds of good probes, took {back:?}"
        );
        let t = http(lab, C0, &["--to", &vip, "--requests", "30"]).expect("client");
        assert_eq!(t.failed, 0, "{t:?}");
        assert!(
            t.servers.get("rs1").copied().unwrap_or(0) > 0,
            "rs1 serves again: {t:?}"
        );
        let log = lvsd.log();
        assert!(log.contains("create_monitor for web/rs0"), "{log}");
        tests::lvsd::stop_clean(lab, &mut lvsd).expect("clean exit");
    });
}

#[test]
fn the_sorry_server_takes_over_when_all_are_down() {
    if !privileged("the_sorry_server_takes_over_when_all_are_down") {
        return;
    }
    lab().run(|lab| {
        let mut servers: Vec<Option<Proc<'_>>> =
            (0..3).map(|i| Some(start_http_on(lab, i))).collect();
        let sorry = lab.addr(lab.real_servers()[2]);
        let cf = Cf::new("nat").virtual_(
            Virtual::http(lab, "rr")
                .only_servers(lab, &[0, 1])
                .line(&format!("sorry_server = {sorry}"))
                .line("timeout = 1")
                .line("reentry = 1"),
        );
        let id: ServiceId = svc(lab);
        let (_lvsd, api) = start_checked(lab, &cf, &id);
        for i in [0, 1] {
            if let Some(mut p) = servers[i].take() {
                p.stop(Duration::from_secs(2));
            }
        }
        until(&api, &id, Duration::from_secs(8), "sorry server in", |v| {
            v.sorry_active
        });
        let vip = format!("{}:80", lab.vip());
        let t = http(lab, C0, &["--to", &vip, "--requests", "10"]).expect("client");
        assert_split(&t, &[0, 0, 10]);
        servers[0] = Some(start_http_on(lab, 0));
        until(
            &api,
            &id,
            Duration::from_secs(10),
            "sorry server out",
            |v| !v.sorry_active,
        );
        let t = http(lab, C0, &["--to", &vip, "--requests", "10"]).expect("client");
        assert_split(&t, &[10, 0, 0]);
    });
}

#[test]
fn send_program_drives_health_and_a_killed_nanny_is_restarted() {
    if !privileged("send_program_drives_health") {
        return;
    }
    lab().run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        // The check prints OK unless a file named after the server exists (no shell is
        // involved in running it: nanny execs it with %h replaced).
        let flag = lab.dir().join("down");
        let script = lab
            .write_file(
                "check.sh",
                &format!(
                    "#!/bin/sh\nif [ -e {}-$1 ]; then echo FAIL; exit 1; fi\necho OK\n",
                    flag.display()
                ),
            )
            .expect("script");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let cf = Cf::new("nat").virtual_(
            Virtual::http(lab, "rr")
                .servers(lab, &[1, 1, 1])
                .line(&format!("send_program = \"{} %h\"", script.display()))
                .line("expect = \"OK\"")
                .line("timeout = 1")
                .line("reentry = 1"),
        );
        let id: ServiceId = svc(lab);
        let (mut lvsd, api) = start_checked(lab, &cf, &id);
        let down = format!("{}-{}", flag.display(), rs(lab, 2).ip());
        std::fs::write(&down, "").expect("flag");
        until(
            &api,
            &id,
            Duration::from_secs(8),
            "rs2 out by send_program",
            |v| state_of(v, rs(lab, 2)).0 == ServerState::Down,
        );
        std::fs::remove_file(&down).expect("unflag");
        until(&api, &id, Duration::from_secs(10), "rs2 back", |v| {
            state_of(v, rs(lab, 2)) == (ServerState::Up, true)
        });

        // SIGKILL one nanny: lvsd restarts it (and logs so).
        // Its nanny: a child of this lab's lvsd (other labs run nannies for the same
        // addresses) whose command line says `-h RIP`.
        let out = std::process::Command::new("pgrep")
            .args(["-P", &lvsd.pid().to_string()])
            .output()
            .expect("pgrep");
        let children = String::from_utf8_lossy(&out.stdout).to_string();
        let needle = format!("-h\0{}\0", rs(lab, 0).ip());
        let pid = children
            .lines()
            .find(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
            })
            .unwrap_or_else(|| panic!("a nanny for rs0 among lvsd's children {children:?}"))
            .to_owned();
        std::process::Command::new("kill")
            .args(["-9", &pid])
            .status()
            .expect("kill");
        lvsd.wait_for_log("restarting in", Duration::from_secs(5))
            .expect("lvsd notices the death");
        let t0 = Instant::now();
        loop {
            let log = lvsd.log();
            if log.matches("create_monitor for web/rs0").count() >= 2 {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "restarted: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let vip = format!("{}:80", lab.vip());
        let t = http(lab, C0, &["--to", &vip, "--requests", "30"]).expect("client");
        assert_split(&t, &[10, 10, 10]);

        // lvsd killed outright: its nannies do not outlive it.
        let out = std::process::Command::new("pgrep")
            .args(["-P", &lvsd.pid().to_string()])
            .output()
            .expect("pgrep");
        let nannies: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(nannies.len(), 3, "three nannies: {nannies:?}");
        lvsd.signal("KILL").expect("SIGKILL");
        let alive = |pid: &String| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
                let state = st.rsplit_once(')').map_or("", |(_, r)| r.trim_start());
                !state.starts_with('Z') && !state.starts_with('X')
            })
        };
        let t0 = Instant::now();
        while nannies.iter().any(alive) {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "nannies outlived lvsd: {:?}",
                nannies.iter().filter(|p| alive(p)).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

fn openssl(args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate authority `<name>.crt` / `<name>.key` in the lab directory.
fn make_ca(lab: &Lab, name: &str) -> (String, String) {
    let crt = lab.dir().join(format!("{name}.crt")).display().to_string();
    let key = lab.dir().join(format!("{name}.key")).display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        &key,
        "-out",
        &crt,
    ]);
    (crt, key)
}

/// A server certificate for `ip` (an IP subjectAltName, as a client that connects by
/// address checks) signed by `ca`.
fn make_leaf(
    lab: &Lab,
    ca: &(String, String),
    name: &str,
    ip: std::net::Ipv4Addr,
) -> (String, String) {
    let path = |ext: &str| {
        lab.dir()
            .join(format!("{name}.{ext}"))
            .display()
            .to_string()
    };
    let (crt, key, csr) = (path("crt"), path("key"), path("csr"));
    let ext = lab
        .write_file(
            &format!("{name}.ext"),
            &format!("subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\n"),
        )
        .expect("ext file")
        .display()
        .to_string();
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        &format!("/CN={ip}"),
        "-keyout",
        &key,
        "-out",
        &csr,
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca.0,
        "-CAkey",
        &ca.1,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &ext,
        "-out",
        &crt,
    ]);
    (crt, key)
}

#[test]
fn https_probes_verify_the_certificate() {
    if !privileged("https_probes_verify_the_certificate") {
        return;
    }
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIP https_probes_verify_the_certificate: no openssl (apt-get install -y openssl)"
        );
        return;
    }
    lab().run(|lab| {
        // rs0 and rs1 present certificates of the CA lvs.cf trusts (`tls_ca`); rs2 one of
        // another CA.
        let trusted = make_ca(lab, "trusted-ca");
        let other = make_ca(lab, "other-ca");
        let mut servers = Vec::new();
        for (i, rs) in lab.real_servers().into_iter().enumerate() {
            let ca = if i < 2 { &trusted } else { &other };
            let (crt, key) = make_leaf(lab, ca, &rs.short(), lab.addr(rs));
            let mut p = lab
                .spawn(
                    rs,
                    [
                        "openssl", "s_server", "-accept", "443", "-www", "-cert", &crt, "-key",
                        &key,
                    ],
                )
                .expect("s_server");
            p.wait_for_log("ACCEPT", Duration::from_secs(10))
                .expect("s_server ready");
            servers.push(p);
        }
        let ca = std::path::PathBuf::from(&trusted.0);
        let mut v = Virtual::http(lab, "rr")
            .servers(lab, &[1, 1, 1])
            .line("http_path = /")
            .line("https = 1")
            .line(&format!("tls_ca = {}", ca.display()))
            .line("timeout = 1");
        v.port = 443;
        let cf = Cf::new("nat").virtual_(v);
        let id: ServiceId = format!("tcp:{}:443", lab.vip()).parse().expect("id");
        let (_lvsd, api) = start_checked(lab, &cf, &id);
        let rs443 = |i: usize| SocketAddrV4::new(lab.addr(lab.real_servers()[i]), 443);
        let view = until(
            &api,
            &id,
            Duration::from_secs(10),
            "rs2 out, rs0 and rs1 in",
            |v| {
                state_of(v, rs443(0)) == (ServerState::Up, true)
                    && state_of(v, rs443(1)) == (ServerState::Up, true)
                    && state_of(v, rs443(2)) == (ServerState::Down, false)
            },
        );
        let _ = view;
        let v = api.service(&id).expect("GET");
        let rs2 = v
            .servers
            .iter()
            .find(|s| s.address == rs443(2))
            .expect("rs2");
        assert!(
            rs2.reason.to_lowercase().contains("certificate"),
            "the reason names the certificate: {:?}",
            rs2.reason
        );
        drop(servers);
    });
}
