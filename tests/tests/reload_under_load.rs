//! Reload under load (issue 9): lvsd re-reads lvs.cf 40 times while keep-alive and
//! new-connection HTTP traffic and a long checked download flow through the VIP, and no
//! client notices.
//!
//! The two files differ only in the weights of two real servers, the scheduler of the web
//! service and an unrelated extra service (VIP:8080) that one has and the other has not;
//! `rs0`'s settings are the same in both. Load, from two clients:
//! - 100 held keep-alive connections (`lab-conns hold`), each asked once more at the moment
//!   of every reload (the trigger is written together with the signal): every answer must
//!   come, from the real server that answered first (a scheduler change must not move an
//!   established connection);
//! - two `lab-client --keep-alive` loops (one connection each for the whole run) and two
//!   new-connection loops (`lab-client` without keep-alive), stopped by a file;
//! - one `lab-conns stream` download that checks every byte against the pattern.
//!
//! Counted: zero failed requests, zero lost or corrupted bytes, zero resets (the tools'
//! errors, and the kernel's `Tcp: EstabResets` and `AttemptFails` in the clients'
//! namespaces); every reload applied (`reloaded …` once per reload, and the change lines
//! lvsd logs are exactly the difference between the two files).
//!
//! NAT reloads by SIGHUP; the DR variant by `POST /v1/reload`. Both run without nannies so
//! that the weights in force are the files' (nanny's slow start would change them); the
//! health side is [`an_unchanged_server_held_down_stays_down_across_reloads`]: a server
//! nanny holds down stays down across a reload, and only the nannies whose arguments
//! changed are restarted.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use lvsd::control::api::{ReloadView, ServerState, ServiceId, ServiceView};
use lvsd::control::client::Client;
use tests::lab::{Lab, Mode, Proc, Role, privileged, wait_until};
use tests::lvsd::{Cf, Virtual, socket_path, start, write_cf};
use tests::tools::conns::{Round, Stream};
use tests::tools::tally::Tally;

const RELOADS: usize = 40;
const HELD: u64 = 100;
const C0: Role = Role::Client(0);
const C1: Role = Role::Client(1);
/// Bytes of the checked download (at 4 MiB/s: 12 s, longer than the 40 reloads take).
const STREAM_BYTES: u64 = 48 << 20;

fn bin(name: &str) -> String {
    tests::bin(name).to_string_lossy().into_owned()
}

/// The two files: A (wlc, weights 2 1 3, the extra service) and B (wrr, weights 2 3 1).
fn files(lab: &Lab, network: &'static str) -> (String, String) {
    let extra = Virtual {
        name: "extra".to_owned(),
        port: 8080,
        ..Virtual::http(lab, "rr").servers(lab, &[1, 1, 1])
    };
    let a = Cf::new(network)
        .virtual_(Virtual::http(lab, "wlc").servers(lab, &[2, 1, 3]))
        .virtual_(extra)
        .render(lab);
    let b = Cf::new(network)
        .virtual_(Virtual::http(lab, "wrr").servers(lab, &[2, 3, 1]))
        .render(lab);
    (a, b)
}

/// The change lines a reload A → B and B → A must log (ipvsadm's words).
fn expected_changes(lab: &Lab, m: &str) -> (Vec<String>, Vec<String>) {
    let vip = lab.vip();
    let rs: Vec<_> = lab.real_servers().iter().map(|r| lab.addr(*r)).collect();
    let to_b = vec![
        format!("-D -t {vip}:8080"),
        format!("-E -t {vip}:80 -s wrr"),
        format!("-e -t {vip}:80 -r {}:80 {m} -w 3", rs[1]),
        format!("-e -t {vip}:80 -r {}:80 {m} -w 1", rs[2]),
    ];
    let mut to_a = vec![
        format!("-E -t {vip}:80 -s wlc"),
        format!("-e -t {vip}:80 -r {}:80 {m} -w 1", rs[1]),
        format!("-e -t {vip}:80 -r {}:80 {m} -w 3", rs[2]),
        format!("-A -t {vip}:8080 -s rr"),
    ];
    to_a.extend(
        rs.iter()
            .map(|r| format!("-a -t {vip}:8080 -r {r}:8080 {m} -w 1")),
    );
    (to_b, to_a)
}

/// The kernel's `Tcp:` counters (`/proc/net/snmp`) in `role`'s namespace.
fn tcp_counters(lab: &Lab, role: Role) -> BTreeMap<String, i64> {
    let text = lab
        .run(role, ["cat", "/proc/net/snmp"])
        .expect("read /proc/net/snmp");
    let mut lines = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (lines.next(), lines.next());
    let (Some(names), Some(values)) = (names, values) else {
        panic!("no Tcp lines in {text}");
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .skip(1)
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect()
}

fn delta(before: &BTreeMap<String, i64>, after: &BTreeMap<String, i64>, k: &str) -> i64 {
    after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0)
}

/// The test's own nftables table in the director's namespace: counters, at the first hook
/// of the director's stack (prerouting, before the kernel-side guard), of the web service's
/// packets that reach the kernel instead of the XDP steering, and of NAT replies of its real
/// servers that do. Steered packets never meet nftables, so both must stay 0: the guard
/// would drop such packets silently (no reset; the client retransmits), so a steering gap
/// shows here and not in the clients' counters.
const PROBE: &str = "reload_probe";

fn install_probe(lab: &Lab) {
    let rips: Vec<String> = lab
        .real_servers()
        .iter()
        .map(|r| lab.addr(*r).to_string())
        .collect();
    let rules = format!(
        "table inet {PROBE} {{\n\tchain pre {{\n\t\ttype filter hook prerouting priority -400; \
         policy accept;\n\t\tip daddr {} tcp dport 80 counter comment \"service\"\n\t\t\
         ip saddr {{ {} }} tcp sport 80 counter comment \"replies\"\n\t}}\n}}\n",
        lab.vip(),
        rips.join(", ")
    );
    let path = lab
        .write_file("probe.nft", &rules)
        .expect("write probe.nft");
    lab.run(Role::Director(0), ["nft", "-f", &path.to_string_lossy()])
        .expect("nft -f probe.nft");
}

/// `(service, replies)` packets counted by [`install_probe`]'s rules.
fn probe_counts(lab: &Lab) -> (u64, u64) {
    let text = lab
        .run(Role::Director(0), ["nft", "list", "table", "inet", PROBE])
        .expect("nft list");
    let count = |tag: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("comment \"{tag}\"")))
            .unwrap_or_else(|| panic!("no {tag} rule in {text}"));
        let after = &line[line.find("packets ").expect("counter") + 8..];
        after
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("packet count")
    };
    (count("service"), count("replies"))
}

/// The tally and the `{"connects":N}` line of a finished `lab-client`.
fn client_result(p: &mut Proc<'_>) -> (Tally, u64) {
    p.wait(Duration::from_secs(30)).expect("lab-client stops");
    let log = p.log();
    let tally = Tally::parse(&log).unwrap_or_else(|e| panic!("{}: {e}", p.label()));
    let connects = log
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("{\"connects\":")?
                .strip_suffix('}')?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no connects line: {log}"));
    (tally, connects)
}

/// How a reload is asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    Sighup,
    Api,
}

fn reload_under_load(mode: Mode, network: &'static str, how: How) {
    Lab::builder().clients(2).real_servers(mode, 3).run(|lab| {
        let _web = lab.start_http(80).expect("http servers on :80");
        let _extra = lab.start_http(8080).expect("http servers on :8080");
        let (a, b) = files(lab, network);
        let m = if mode == Mode::Nat { "-m" } else { "-g" };
        let (to_b, to_a) = expected_changes(lab, m);
        let mut lvsd = start(lab, &a).expect("lvsd forwards");
        let api = Client::new(socket_path(lab));
        let vip = format!("{}:80", lab.vip());
        let trigger = lab.dir().join("round");
        let stop = lab.dir().join("stop");

        install_probe(lab);
        let before: Vec<_> = [C0, C1].iter().map(|r| tcp_counters(lab, *r)).collect();
        let trig = trigger.to_string_lossy().into_owned();
        let stop_s = stop.to_string_lossy().into_owned();
        let mut hold = lab
            .spawn(
                C0,
                [
                    bin("lab-conns").as_str(),
                    "hold",
                    "--to",
                    &vip,
                    "--conns",
                    &HELD.to_string(),
                    "--trigger",
                    &trig,
                    "--rounds",
                    &RELOADS.to_string(),
                    "--round-s",
                    "10",
                    "--wait-s",
                    "60",
                    "--lifetime-s",
                    "300",
                ],
            )
            .expect("lab-conns hold");
        hold.wait_for_log("ready", Duration::from_secs(30))
            .expect("held connections open");
        let mut stream = lab
            .spawn(
                C1,
                [
                    bin("lab-conns").as_str(),
                    "stream",
                    "--to",
                    &vip,
                    "--bytes",
                    &STREAM_BYTES.to_string(),
                    "--rate-kbps",
                    "4096",
                    "--timeout-ms",
                    "5000",
                    "--lifetime-s",
                    "300",
                ],
            )
            .expect("lab-conns stream");
        stream
            .wait_for_log("started", Duration::from_secs(10))
            .expect("download started");
        let loop_args = |keep: bool| {
            let mut v = vec![
                bin("lab-client"),
                "--to".into(),
                vip.clone(),
                "--requests".into(),
                "1000000".into(),
                "--interval-ms".into(),
                "2".into(),
                "--timeout-ms".into(),
                "5000".into(),
                "--deadline-s".into(),
                "200".into(),
                "--until-file".into(),
                stop_s.clone(),
            ];
            if keep {
                v.push("--keep-alive".into());
            }
            v
        };
        let mut keepers: Vec<Proc<'_>> = (0..2)
            .map(|_| lab.spawn(C0, loop_args(true)).expect("keep-alive loop"))
            .collect();
        let mut newconns: Vec<Proc<'_>> = (0..2)
            .map(|_| {
                lab.spawn(C1, loop_args(false))
                    .expect("new-connection loop")
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));

        // 40 reloads, alternating B and A; each one together with a round on the held
        // connections.
        let mut took = Vec::new();
        let t_all = Instant::now();
        for i in 0..RELOADS {
            let (text, want) = if i % 2 == 0 { (&b, &to_b) } else { (&a, &to_a) };
            write_cf(lab, text).expect("write lvs.cf");
            let n = lvsd.log().matches("reloaded ").count();
            std::fs::write(&trigger, "").expect("trigger a round");
            let t0 = Instant::now();
            match how {
                How::Sighup => lvsd.signal("HUP").expect("SIGHUP"),
                How::Api => {
                    let v: ReloadView = api
                        .call::<(), _>("POST", "/v1/reload", None)
                        .expect("POST /v1/reload");
                    let mut got = v.changes.clone();
                    let mut w = want.clone();
                    got.sort();
                    w.sort();
                    assert_eq!(got, w, "reload {i}: the changes answered");
                }
            }
            assert!(
                wait_until(Duration::from_secs(10), Duration::from_millis(2), || {
                    lvsd.log().matches("reloaded ").count() > n
                }),
                "reload {i} not logged: {}",
                lvsd.log()
            );
            took.push(t0.elapsed());
            let round = u64::try_from(i + 1).expect("small");
            assert!(
                wait_until(Duration::from_secs(15), Duration::from_millis(10), || {
                    Round::all(&hold.log()).iter().any(|r| r.round == round)
                }),
                "round {round} of the held connections: {}",
                hold.log()
            );
            std::thread::sleep(Duration::from_millis(150));
        }
        let reload_phase = t_all.elapsed();
        std::fs::write(&stop, "").expect("stop the loops");

        // Every loop: no failure, the keep-alive ones on their first connection.
        let mut requests = 0;
        for p in &mut keepers {
            let (t, connects) = client_result(p);
            assert_eq!(t.failed, 0, "{}: {t:?}", p.label());
            assert!(t.ok > 100, "{}: {t:?}", p.label());
            assert_eq!(
                connects,
                1,
                "{}: one connection for the whole run",
                p.label()
            );
            requests += t.ok;
        }
        let mut fresh = 0;
        for p in &mut newconns {
            let (t, connects) = client_result(p);
            assert_eq!(t.failed, 0, "{}: {t:?}", p.label());
            assert!(t.ok > 100, "{}: {t:?}", p.label());
            assert_eq!(connects, t.ok, "{}: a connection per request", p.label());
            fresh += t.ok;
        }
        hold.wait(Duration::from_secs(30))
            .expect("lab-conns hold ends");
        let rounds = Round::all(&hold.log());
        assert_eq!(rounds.len(), RELOADS + 1, "{}", hold.log());
        for r in &rounds {
            assert!(r.all_answered_unmoved(), "held connections, {r:?}");
        }
        stream.wait(Duration::from_secs(60)).expect("download ends");
        let s = Stream::parse(&stream.log()).expect("stream report");
        assert!(s.complete(), "download: {s:?}");

        // No packet of the web service reached the director's stack.
        let (leaked, replies) = probe_counts(lab);
        assert_eq!(
            (leaked, replies),
            (0, 0),
            "packets of the web service (to the VIP, from its real servers) that reached \
             the director's kernel instead of the engine"
        );
        // The kernels saw no reset.
        for (role, before) in [C0, C1].iter().zip(&before) {
            let after = tcp_counters(lab, *role);
            for k in ["EstabResets", "AttemptFails"] {
                assert_eq!(delta(before, &after, k), 0, "{k} in {role:?}: {after:?}");
            }
        }

        // Every reload applied, with exactly the changes between the files.
        let log = lvsd.log();
        assert_eq!(log.matches("reloaded ").count(), RELOADS, "{log}");
        for (want, times) in [(&to_b, RELOADS / 2), (&to_a, RELOADS / 2)] {
            for c in want {
                let n = log
                    .lines()
                    .filter(|l| {
                        l.contains(&format!("reload: {c} ")) || l.ends_with(&format!("reload: {c}"))
                    })
                    .count();
                assert_eq!(n, times, "{c:?} logged {n} times: {log}");
            }
        }
        let lines = log.lines().filter(|l| l.contains("reload: -")).count();
        assert_eq!(lines, RELOADS / 2 * (to_a.len() + to_b.len()), "{log}");
        assert!(lvsd.exited().is_none(), "lvsd runs: {log}");
        took.sort();
        println!(
            "{RELOADS} reloads ({}) in {reload_phase:?} under load: {requests} keep-alive \
                 requests on 2 connections, {fresh} new-connection requests, {HELD} held \
                 connections x {RELOADS} rounds, {STREAM_BYTES} bytes streamed (longest \
                 stall {} ms); 0 failures, 0 resets. Signal to `reloaded` logged: median \
                 {:?}, max {:?}",
            if how == How::Sighup {
                "SIGHUP"
            } else {
                "POST /v1/reload"
            },
            s.max_stall_ms,
            took[took.len() / 2],
            took[took.len() - 1]
        );
        tests::lvsd::stop_clean(lab, &mut lvsd).expect("clean exit");
        // Positive control of the probe: without lvsd, a SYN to the VIP meets the kernel.
        let _ = tests::lvsd::http(lab, C0, &["--to", &vip, "--timeout-ms", "300"]);
        assert!(
            probe_counts(lab).0 > 0,
            "the probe counts what reaches the kernel"
        );
    });
}

#[test]
fn nat_reloads_by_sighup_under_load_lose_nothing() {
    if !privileged("nat_reloads_by_sighup_under_load_lose_nothing") {
        return;
    }
    reload_under_load(Mode::Nat, "nat", How::Sighup);
}

#[test]
fn dr_reloads_by_api_under_load_lose_nothing() {
    if !privileged("dr_reloads_by_api_under_load_lose_nothing") {
        return;
    }
    reload_under_load(Mode::Dr, "direct", How::Api);
}

// ----- health across reloads -----

fn state_of(v: &ServiceView, a: SocketAddrV4) -> (ServerState, bool) {
    let s = v
        .servers
        .iter()
        .find(|s| s.address == a)
        .expect("server listed");
    (s.state, s.in_table)
}

fn until(api: &Client, id: &ServiceId, what: &str, cond: impl Fn(&ServiceView) -> bool) {
    let t0 = Instant::now();
    let mut last = None;
    while t0.elapsed() < Duration::from_secs(15) {
        if let Ok(v) = api.service(id) {
            if cond(&v) {
                return;
            }
            last = Some(v);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: not within 15 s; last view {last:#?}");
}

fn http_on<'l>(lab: &'l Lab, i: usize) -> Proc<'l> {
    let rs = lab.real_servers()[i];
    let name = rs.short();
    let mut p = lab
        .spawn(
            rs,
            [
                bin("lab-http").as_str(),
                "--name",
                &name,
                "--listen",
                "0.0.0.0:80",
            ],
        )
        .expect("spawn lab-http");
    p.wait_for_log("ready", Duration::from_secs(10))
        .expect("lab-http ready");
    p
}

fn log_count(p: &Proc<'_>, needle: &str) -> usize {
    p.log().matches(needle).count()
}

#[test]
fn an_unchanged_server_held_down_stays_down_across_reloads() {
    if !privileged("an_unchanged_server_held_down_stays_down_across_reloads") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 3).run(|lab| {
        // rs2 has no service: its nanny holds it down.
        let _servers: Vec<Proc<'_>> = (0..2).map(|i| http_on(lab, i)).collect();
        let cf = |w0: u32| {
            Cf::new("nat")
                .virtual_(
                    Virtual::http(lab, "rr")
                        .servers(lab, &[w0, 1, 1])
                        .line("timeout = 1"),
                )
                .render(lab)
        };
        let mut lvsd = tests::lvsd::start_with_health(lab, &cf(1)).expect("lvsd forwards");
        let api = Client::new(socket_path(lab));
        let id: ServiceId = format!("tcp:{}:80", lab.vip()).parse().expect("id");
        let rs = |i: usize| SocketAddrV4::new(lab.addr(lab.real_servers()[i]), 80);
        until(&api, &id, "rs2 down, rs0 and rs1 checked", |v| {
            state_of(v, rs(2)) == (ServerState::Down, false)
                && v.servers
                    .iter()
                    .filter(|s| !s.sorry)
                    .take(2)
                    .all(|s| s.reason != "not checked yet")
        });

        // Two reloads (SIGHUP, then the API), each changing rs0's weight only.
        for (round, w0) in [(1usize, 2u32), (2, 3)] {
            write_cf(lab, &cf(w0)).expect("new file");
            let n = log_count(&lvsd, "reloaded ");
            if round == 1 {
                lvsd.signal("HUP").expect("SIGHUP");
            } else {
                let v: ReloadView = api
                    .call::<(), _>("POST", "/v1/reload", None)
                    .expect("POST /v1/reload");
                assert!(
                    v.changes
                        .iter()
                        .all(|c| c.contains(&rs(0).ip().to_string())),
                    "only rs0 changes: {v:?}"
                );
            }
            assert!(
                wait_until(Duration::from_secs(10), Duration::from_millis(5), || {
                    log_count(&lvsd, "reloaded ") > n
                }),
                "reload {round}: {}",
                lvsd.log()
            );
            // At once after the reload, and for the next second: rs2 is down and out.
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(1) {
                let v = api.service(&id).expect("service");
                assert_eq!(
                    state_of(&v, rs(2)),
                    (ServerState::Down, false),
                    "rs2 after reload {round}: {v:#?}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            let t = tests::lvsd::http(
                lab,
                C0,
                &["--to", &format!("{}:80", lab.vip()), "--requests", "30"],
            )
            .expect("lab-client");
            assert_eq!(t.failed, 0, "{t:?}");
            assert_eq!(t.count("rs2"), 0, "{t:?}");
        }
        // rs0's nanny was replaced (its -w changed), rs1's and rs2's never.
        assert!(
            wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
                log_count(&lvsd, "create_monitor for web/rs0") >= 3
            }),
            "{}",
            lvsd.log()
        );
        let log = lvsd.log();
        for rsn in ["rs1", "rs2"] {
            assert_eq!(
                log.matches(&format!("create_monitor for web/{rsn}"))
                    .count(),
                1,
                "{rsn}'s nanny started once: {log}"
            );
            assert!(
                !log.contains(&format!("stopping nanny for web/{rsn}")),
                "{log}"
            );
        }
        tests::lvsd::stop_clean(lab, &mut lvsd).expect("clean exit");
    });
}

// ----- firewall-mark services added by a reload -----

/// A `fwmark` service that only the reloaded file has: lvsd marks packets itself from the
/// service's `address` (no kernel mark reaches userspace), so the reload must give the engine
/// the new mark rule along with the new service, and take it away with it.
#[test]
fn a_reload_brings_and_takes_a_fwmark_service() {
    if !privileged("a_reload_brings_and_takes_a_fwmark_service") {
        return;
    }
    let vip2 = std::net::Ipv4Addr::new(198, 18, 0, 11);
    Lab::builder()
        .vips(&[tests::lab::VIP, vip2])
        .real_servers(Mode::Nat, 2)
        .run(|lab| {
            let _http = lab.start_http(80).expect("http servers");
            let web = || Virtual::http(lab, "rr").servers(lab, &[1, 1]);
            let marked = Virtual {
                name: "marked".to_owned(),
                addr: vip2,
                ..Virtual::http(lab, "rr").only_servers(lab, &[1])
            }
            .line("fwmark = 7");
            let without = Cf::new("nat").virtual_(web()).render(lab);
            let with = Cf::new("nat").virtual_(web()).virtual_(marked).render(lab);
            let lvsd = start(lab, &without).expect("lvsd forwards");
            let reload = |text: &str| {
                write_cf(lab, text).expect("write lvs.cf");
                let n = log_count(&lvsd, "reloaded ");
                lvsd.signal("HUP").expect("SIGHUP");
                assert!(
                    wait_until(Duration::from_secs(10), Duration::from_millis(5), || {
                        log_count(&lvsd, "reloaded ") > n
                    }),
                    "{}",
                    lvsd.log()
                );
            };
            let get = |to: &str, n: &str| {
                tests::lvsd::http(
                    lab,
                    C0,
                    &["--to", to, "--requests", n, "--timeout-ms", "500"],
                )
                .expect("lab-client")
            };
            let web_vip = format!("{}:80", lab.vip());
            let marked_vip = format!("{vip2}:80");

            reload(&with);
            let t = get(&marked_vip, "10");
            assert_eq!(
                (t.ok, t.count("rs1")),
                (10, 10),
                "the new fwmark service: {t:?}"
            );
            let t = get(&web_vip, "10");
            assert_eq!(t.ok, 10, "web: {t:?}");

            reload(&without);
            let t = get(&marked_vip, "2");
            assert_eq!(t.ok, 0, "the removed fwmark service answers no more: {t:?}");
            let t = get(&web_vip, "10");
            assert_eq!(t.ok, 10, "web: {t:?}");
        });
}

// ----- the API's reloads -----

/// Several `POST /v1/reload` at once are all answered (the reloads asked for while one is
/// prepared are merged into one more), the changes are applied once, and a broken file is
/// answered 400 with its line while the table in force keeps forwarding.
#[test]
fn concurrent_api_reloads_are_all_answered_and_a_broken_file_changes_nothing() {
    if !privileged("concurrent_api_reloads_are_all_answered_and_a_broken_file_changes_nothing") {
        return;
    }
    Lab::builder().real_servers(Mode::Nat, 2).run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = |w: u32| {
            Cf::new("nat")
                .virtual_(Virtual::http(lab, "wrr").servers(lab, &[1, w]))
                .render(lab)
        };
        let lvsd = start(lab, &cf(1)).expect("lvsd forwards");
        write_cf(lab, &cf(3)).expect("new file");
        let answers: Vec<Result<ReloadView, String>> = std::thread::scope(|s| {
            let calls: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        Client::new(socket_path(lab))
                            .call::<(), ReloadView>("POST", "/v1/reload", None)
                            .map_err(|e| e.to_string())
                    })
                })
                .collect();
            calls
                .into_iter()
                .map(|c| c.join().expect("caller thread"))
                .collect()
        });
        let rs1 = lab.addr(lab.real_servers()[1]);
        let want = format!("-e -t {}:80 -r {rs1}:80 -m -w 3", lab.vip());
        let mut applied = 0;
        for a in &answers {
            let v = a
                .as_ref()
                .unwrap_or_else(|e| panic!("every caller answered: {e}"));
            assert!(
                v.changes.is_empty() || v.changes == [want.clone()],
                "{answers:?}"
            );
            applied += usize::from(!v.changes.is_empty());
        }
        assert_eq!(applied, 1, "the change is applied once: {answers:?}");
        let log = lvsd.log();
        assert_eq!(log.matches(&format!("reload: {want}")).count(), 1, "{log}");
        let t = tests::lvsd::http(
            lab,
            C0,
            &["--to", &format!("{}:80", lab.vip()), "--requests", "40"],
        )
        .expect("lab-client");
        tests::lvsd::assert_split(&t, &[10, 30]);

        // A broken file: 400 with the line, nothing changes.
        write_cf(
            lab,
            "network = nat\nvirtual web {\n    active = 1\n    port = notaport\n}\n",
        )
        .expect("break lvs.cf");
        let e = Client::new(socket_path(lab))
            .call::<(), ReloadView>("POST", "/v1/reload", None)
            .expect_err("a broken file is refused");
        let e = e.to_string();
        assert!(e.contains("400") && e.contains("lvs.cf:4:"), "{e}");
        let t = tests::lvsd::http(
            lab,
            C0,
            &["--to", &format!("{}:80", lab.vip()), "--requests", "40"],
        )
        .expect("lab-client");
        tests::lvsd::assert_split(&t, &[10, 30]);
    });
}
