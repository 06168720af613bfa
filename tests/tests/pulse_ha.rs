//! Two directors, each running the real `pulse` (which starts its own `lvsd`), one NAT
//! service, the floating addresses left to pulse (the VIP on `eth0:1`): the high-availability
//! cases beyond a plain failover (`pulse_failover.rs` has SIGKILL and SIGTERM of the
//! primary).
//!
//! - `--forceactive`: a returning primary started with it takes the VIP back and the backup
//!   steps down.
//! - A heartbeat partition (nftables in the backup's namespace) gives split brain; when it
//!   heals, exactly one director (the primary) keeps the VIP.
//! - Spoofed Piranha heartbeats, heartbeats signed with a wrong key, tampered and replayed
//!   real heartbeats, all sent from the client's namespace with the primary's address forged,
//!   change no role on a pair with `heartbeat_key`; the backup's pulse logs the drops. The
//!   control: without a key, one forged Piranha "stopped" makes the backup activate.
//! - lvsd SIGKILLed on the active director: the partner takes over (the client's ARP entry
//!   names it); the restarted lvsd is killed again, so that pulse waits out its restart
//!   pause; the director whose lvsd pulse restarted must not pull the VIP back.
//! - `monitor_links`: carrier loss on the active director's public interface (its switch port
//!   set down) fails over while heartbeats still flow over the private path; without
//!   `monitor_links` the same link loss changes nothing.
//! - SIGTERM with a long `deadtime`: the backup holds the VIP long before `deadtime`, so the
//!   last "stopped" heartbeat is what moved it.
//!
//! Every wait is bounded; the lab tears itself down. The tests skip (and pass) when not root.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pulse::wire::{PeerState, Role as PulseRole};
use tests::heartbeat::{self, PORT};
use tests::lab::{Lab, Mode, Proc, Role, Segment, privileged, wait_until};
use tests::lvsd::{Cf, Virtual};

const C0: Role = Role::Client(0);
const D0: Role = Role::Director(0);
const D1: Role = Role::Director(1);
/// Bound for a takeover or a step-down (not a performance assertion).
const TAKEOVER: Duration = Duration::from_secs(10);
/// How long a settled state is watched to show that it stays.
const SETTLED: Duration = Duration::from_secs(2);

/// The lab's NAT service with both directors and an active backup; `pair` holds the
/// director-pair lines beyond `backup` and `backup_active` (timing, keys, links).
fn lvs_cf(lab: &Lab, pair: &str) -> String {
    let cf = Cf::new("nat")
        .virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1]))
        .render(lab);
    let lines = format!("backup = {}\nbackup_active = 1\n{pair}", lab.addr(D1));
    cf.replacen("network = nat\n", &format!("network = nat\n{lines}"), 1)
}

/// Fast heartbeats, as in `pulse_failover.rs`.
const FAST: &str = "keepalive = 0.1\ndeadtime = 0.5\n";

fn start_pulse<'l>(lab: &'l Lab, director: Role, cf: &Path, extra: &[&str]) -> Proc<'l> {
    let socket = lab.dir().join(format!("lvsd-{}.sock", director.short()));
    let mut argv = vec![
        tests::bin("pulse").to_string_lossy().into_owned(),
        "-c".to_owned(),
        cf.to_string_lossy().into_owned(),
        "--nodaemon".to_owned(),
        "--lvsd".to_owned(),
        tests::bin("lvsd").to_string_lossy().into_owned(),
        "--socket".to_owned(),
        socket.to_string_lossy().into_owned(),
    ];
    argv.extend(extra.iter().map(|s| (*s).to_owned()));
    lab.spawn(director, &argv).expect("pulse starts")
}

/// Whether `director` holds the VIP on `eth0:1`.
fn holds(lab: &Lab, director: Role) -> bool {
    let vip = lab.vip();
    lab.ip(director, ["-4", "-o", "addr", "show"])
        .map(|out| {
            out.lines()
                .any(|l| l.contains(&format!("inet {vip}/")) && l.contains(" eth0:1"))
        })
        .unwrap_or(false)
}

/// Whether `director`, and not its partner, holds the VIP.
fn only(lab: &Lab, director: Role) -> bool {
    let other = if director == D0 { D1 } else { D0 };
    holds(lab, director) && !holds(lab, other)
}

/// Whether a short burst of requests through the VIP all succeed.
fn requests_succeed(lab: &Lab) -> bool {
    let vip = format!("{}:80", lab.vip());
    let args = ["--to", vip.as_str(), "--requests", "6", "--deadline-s", "3"];
    lab.http_client(C0, &args, Duration::from_secs(10))
        .is_ok_and(|t| t.failed == 0 && t.ok == 6)
}

/// Whether the client's ARP entry for the VIP names `director`'s public MAC.
fn client_arp_points_at(lab: &Lab, director: Role) -> bool {
    let mac = lab
        .iface(director, Segment::Public)
        .expect("a director has eth0")
        .mac
        .map(|b| format!("{b:02x}"))
        .join(":");
    let vip = lab.vip().to_string();
    lab.ip(C0, ["neigh", "show", vip.as_str(), "dev", "eth0"])
        .is_ok_and(|out| out.contains(&format!("lladdr {mac}")))
}

fn wait_for(what: &str, lab: &Lab, within: Duration, cond: impl FnMut() -> bool) {
    if !wait_until(within, Duration::from_millis(50), cond) {
        lab.dump_logs();
        panic!("{what} within {within:?}");
    }
}

/// Checks `cond` every 100 ms for `time`; panics at the first miss.
fn stays(what: &str, lab: &Lab, time: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + time;
    while Instant::now() < end {
        if !cond() {
            lab.dump_logs();
            panic!("{what} did not hold for {time:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts both pulses and waits for the steady state: director 0 (primary) alone holds the
/// VIP and requests through it succeed.
fn start_pair<'l>(lab: &'l Lab, cf: &Path) -> (Proc<'l>, Proc<'l>) {
    let p0 = start_pulse(lab, D0, cf, &[]);
    let p1 = start_pulse(lab, D1, cf, &[]);
    wait_for("director 0 alone holds the VIP", lab, TAKEOVER, || {
        only(lab, D0)
    });
    wait_for("requests through the VIP succeed", lab, TAKEOVER, || {
        requests_succeed(lab)
    });
    (p0, p1)
}

fn nat_lab() -> tests::lab::LabBuilder {
    Lab::builder()
        .directors(2)
        .floating_on(None)
        .real_servers(Mode::Nat, 2)
}

/// What a log gained since `mark` (its length then).
fn since(log: &str, mark: usize) -> &str {
    log.get(mark..).unwrap_or("")
}

#[test]
fn forceactive_primary_takes_back_the_vip() {
    if !privileged("pulse_forceactive_primary_takes_back_the_vip") {
        return;
    }
    nat_lab().run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = lab
            .write_file("lvs.cf", &lvs_cf(lab, FAST))
            .expect("lvs.cf");
        let (mut p0, p1) = start_pair(lab, &cf);

        p0.signal("TERM").expect("SIGTERM pulse");
        let status = p0.wait(TAKEOVER).expect("pulse exits after SIGTERM");
        assert!(
            status.success(),
            "pulse exited with {status}:\n{}",
            p0.log()
        );
        wait_for("director 1 alone holds the VIP", lab, TAKEOVER, || {
            only(lab, D1)
        });

        // The primary returns with --forceactive: it activates at once, and the backup,
        // hearing an active primary, steps down.
        let _p0 = start_pulse(lab, D0, &cf, &["--forceactive"]);
        wait_for(
            "the forced primary alone holds the VIP",
            lab,
            TAKEOVER,
            || only(lab, D0),
        );
        wait_for(
            "requests succeed through the primary",
            lab,
            TAKEOVER,
            || requests_succeed(lab),
        );
        stays("director 0 alone holds the VIP", lab, SETTLED, || {
            only(lab, D0)
        });
        assert!(requests_succeed(lab), "requests fail after the take-back");
        assert!(
            p1.log().contains("stepping down"),
            "the backup's log does not say it stepped down:\n{}",
            p1.log()
        );
    });
}

/// nftables in `role`'s namespace dropping pulse's heartbeats to and from `peer`.
fn cut_heartbeats(lab: &Lab, role: Role, peer: Ipv4Addr) {
    let peer = peer.to_string();
    let port = PORT.to_string();
    let nft = |args: &[&str]| {
        let mut argv = vec!["nft"];
        argv.extend(args);
        lab.run(role, &argv)
            .expect("nft (apt-get install -y nftables)");
    };
    nft(&["add", "table", "ip", "labcut"]);
    nft(&[
        "add",
        "chain",
        "ip",
        "labcut",
        "in",
        "{ type filter hook input priority 0 ; policy accept ; }",
    ]);
    nft(&[
        "add",
        "chain",
        "ip",
        "labcut",
        "out",
        "{ type filter hook output priority 0 ; policy accept ; }",
    ]);
    nft(&[
        "add", "rule", "ip", "labcut", "in", "ip", "saddr", &peer, "udp", "dport", &port, "drop",
    ]);
    nft(&[
        "add", "rule", "ip", "labcut", "out", "ip", "daddr", &peer, "udp", "dport", &port, "drop",
    ]);
}

fn heal_heartbeats(lab: &Lab, role: Role) {
    lab.run(role, ["nft", "delete", "table", "ip", "labcut"])
        .expect("nft delete table");
}

#[test]
fn partition_heals_to_exactly_one_active() {
    if !privileged("pulse_partition_heals_to_exactly_one_active") {
        return;
    }
    nat_lab().run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = lab
            .write_file("lvs.cf", &lvs_cf(lab, FAST))
            .expect("lvs.cf");
        let (_p0, p1) = start_pair(lab, &cf);

        // Only the heartbeats are cut (both directions, in the backup's namespace): the
        // backup declares the primary dead and activates while the primary stays active.
        cut_heartbeats(lab, D1, lab.addr(D0));
        wait_for(
            "both directors hold the VIP (split brain)",
            lab,
            TAKEOVER,
            || holds(lab, D0) && holds(lab, D1),
        );
        let mark = p1.log().len();

        heal_heartbeats(lab, D1);
        let healed = Instant::now();
        wait_for(
            "exactly one director (the primary) holds the VIP after the heal",
            lab,
            Duration::from_secs(5),
            || only(lab, D0),
        );
        eprintln!("split brain resolved {:?} after the heal", healed.elapsed());
        wait_for("requests succeed after the heal", lab, TAKEOVER, || {
            requests_succeed(lab)
        });
        wait_for(
            "the client's ARP entry names director 0",
            lab,
            TAKEOVER,
            || client_arp_points_at(lab, D0),
        );
        stays("director 0 alone holds the VIP", lab, SETTLED, || {
            only(lab, D0)
        });
        assert!(requests_succeed(lab), "requests fail after the heal");
        assert!(
            since(&p1.log(), mark).contains("stepping down"),
            "the backup's log does not say it stepped down:\n{}",
            p1.log()
        );
    });
}

/// A key file in the lab's directory, mode 0600 as pulse requires.
fn write_key(lab: &Lab, name: &str, key: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = lab.dir().join(name);
    std::fs::write(&path, key).expect("write the key file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .expect("chmod 600 the key file");
    path
}

#[test]
fn spoofed_and_replayed_heartbeats_change_nothing() {
    if !privileged("pulse_spoofed_and_replayed_heartbeats_change_nothing") {
        return;
    }
    nat_lab().run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let key = b"lab-pulse-ha-shared-key-0123456789";
        let key_file = write_key(lab, "pulse.key", key);
        let pair = format!("{FAST}heartbeat_key = {}\n", key_file.display());
        let cf = lab
            .write_file("lvs.cf", &lvs_cf(lab, &pair))
            .expect("lvs.cf");
        let primary = SocketAddrV4::new(lab.addr(D0), PORT);
        let backup = SocketAddrV4::new(lab.addr(D1), PORT);

        // Watch the primary's real heartbeats arrive at the backup, from before either
        // pulse starts: the first one the primary sends announces "standby".
        let capture =
            heartbeat::start_capture(lab, D1, primary, backup, 500).expect("capture starts");
        let (p0, p1) = start_pair(lab, &cf);
        let real = heartbeat::captured(&capture);
        let states: Vec<_> = real
            .iter()
            .filter_map(|f| heartbeat::announced(f))
            .collect();
        let standby = real
            .iter()
            .find(|f| matches!(heartbeat::announced(f), Some((PeerState::Standby, ..))))
            .cloned()
            .unwrap_or_else(|| {
                panic!("no authenticated \"standby\" heartbeat captured: {states:?}")
            });
        assert!(
            states.iter().any(|(s, ..)| *s == PeerState::Active),
            "no authenticated \"active\" heartbeat captured: {states:?}"
        );
        assert!(
            p1.log().contains("STARTING PULSE AS BACKUP"),
            "{}",
            p1.log()
        );
        let mark0 = p0.log().len();
        let mark1 = p1.log().len();
        let send = |to: SocketAddrV4, from: SocketAddrV4, frames: &[Vec<u8>], count: u16| {
            heartbeat::send_spoofed(lab, C0, from, to, frames, count, Duration::from_millis(20))
                .expect("lab-heartbeat send");
        };
        let steady = || only(lab, D0);

        // (a) Piranha heartbeats "from the primary": stopped (would make a Piranha backup
        // activate) and running.
        send(
            backup,
            primary,
            &[
                heartbeat::piranha(PeerState::Standby),
                heartbeat::piranha(PeerState::Active),
            ],
            10,
        );
        assert!(steady(), "roles changed after spoofed Piranha heartbeats");

        // (b) Authenticated heartbeats signed with a wrong key, from a boot far in the
        // future: "the primary stopped" to the backup, "the backup is active" to the primary.
        let wrong = b"not-the-pair-key-but-long-enough!!";
        let boot = u64::MAX / 2;
        let forged_standby: Vec<Vec<u8>> = (0..10)
            .map(|seq| {
                heartbeat::authenticated(
                    wrong,
                    PulseRole::Primary,
                    PeerState::Standby,
                    0,
                    boot,
                    seq,
                )
            })
            .collect();
        send(backup, primary, &forged_standby, 1);
        let forged_active: Vec<Vec<u8>> = (0..10)
            .map(|seq| {
                heartbeat::authenticated(wrong, PulseRole::Backup, PeerState::Active, 0, boot, seq)
            })
            .collect();
        send(primary, backup, &forged_active, 1);
        assert!(steady(), "roles changed after wrong-key heartbeats");

        // (c) Replays of the primary's real heartbeats: its old "standby", its latest
        // "active" (sent again at once), and that "active" tampered into a "standby"
        // (state byte 6 = 2).
        let latest_active = heartbeat::captured(&capture)
            .into_iter()
            .rev()
            .find(|f| matches!(heartbeat::announced(f), Some((PeerState::Active, ..))))
            .expect("an active heartbeat was captured");
        let mut tampered = latest_active.clone();
        tampered[6] = 2;
        send(
            backup,
            primary,
            &[latest_active.clone(), standby.clone(), tampered],
            5,
        );
        // The same real standby from an address that is not the partner's.
        let stranger = SocketAddrV4::new(lab.addr(C0), PORT);
        send(backup, stranger, std::slice::from_ref(&standby), 3);

        stays(
            "director 0 alone holds the VIP under attack",
            lab,
            SETTLED,
            steady,
        );
        assert!(requests_succeed(lab), "requests fail after the attack");
        stays(
            "director 0 alone holds the VIP after the attack",
            lab,
            SETTLED,
            steady,
        );

        let log1 = p1.log();
        let after1 = since(&log1, mark1);
        let log0 = p0.log();
        let after0 = since(&log0, mark0);
        for line in after1.lines().chain(after0.lines()) {
            if line.contains("heartbeat dropped") {
                eprintln!("{line}");
            }
        }
        // Each reason was hit several times within pulse's 10 s log interval: one line each.
        for reason in ["unauthenticated", "bad_mac", "unexpected_source"] {
            let lines = after1
                .lines()
                .filter(|l| {
                    l.contains("heartbeat dropped") && l.contains(&format!("reason=\"{reason}\""))
                })
                .count();
            assert_eq!(
                lines, 1,
                "the backup's log should show one rate-limited {reason} drop:\n{after1}"
            );
        }
        assert!(
            ["stale", "replayed", "reordered"]
                .iter()
                .any(|r| after1.contains(r)),
            "the backup's log shows no replay drop:\n{after1}"
        );
        assert!(
            !after1.contains("activating"),
            "the backup acted on a forged heartbeat:\n{after1}"
        );
        assert!(
            after0.contains("bad_mac"),
            "the primary's log shows no bad_mac drop:\n{after0}"
        );
        assert!(
            !after0.contains("partner active"),
            "the primary acted on a forged \"active\":\n{after0}"
        );
    });
}

/// The control for the test above: without `heartbeat_key` (Piranha's format, which pulse
/// warns about at every start) the same forged "stopped" heartbeat from the client's
/// namespace does make the backup activate. This shows that the forged frames reach pulse,
/// and why the key matters.
#[test]
fn unauthenticated_pair_is_moved_by_a_spoofed_heartbeat() {
    if !privileged("pulse_unauthenticated_pair_is_moved_by_a_spoofed_heartbeat") {
        return;
    }
    nat_lab().run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = lab
            .write_file("lvs.cf", &lvs_cf(lab, FAST))
            .expect("lvs.cf");
        let (_p0, p1) = start_pair(lab, &cf);
        assert!(
            p1.log().contains("NOT authenticated"),
            "no start-up warning:\n{}",
            p1.log()
        );
        let mark = p1.log().len();
        let primary = SocketAddrV4::new(lab.addr(D0), PORT);
        let backup = SocketAddrV4::new(lab.addr(D1), PORT);
        heartbeat::send_spoofed(
            lab,
            C0,
            primary,
            backup,
            &[heartbeat::piranha(PeerState::Standby)],
            1,
            Duration::ZERO,
        )
        .expect("lab-heartbeat send");
        // The real primary's next "active" makes the backup step down again at once, so the
        // backup's log, not a snapshot of its addresses, is the evidence.
        wait_for(
            "the backup activates on a forged \"stopped\"",
            lab,
            TAKEOVER,
            || since(&p1.log(), mark).contains("primary inactive: activating"),
        );
    });
}

/// Pids of the children of `pid`, from `/proc/*/stat` (its 4th field is the parent).
fn children(pid: u32) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                // "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// The pid of the lvsd that the pulse `pulse` started.
fn lvsd_of(pulse: &Proc<'_>) -> u32 {
    children(pulse.pid())
        .into_iter()
        .find(|c| {
            std::fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|n| n.trim() == "lvsd")
        })
        .unwrap_or_else(|| panic!("pulse {} has no lvsd child", pulse.pid()))
}

#[test]
fn lvsd_killed_on_the_active_hands_over() {
    if !privileged("pulse_lvsd_killed_on_the_active_hands_over") {
        return;
    }
    nat_lab().run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = lab
            .write_file("lvs.cf", &lvs_cf(lab, FAST))
            .expect("lvs.cf");
        let (p0, _p1) = start_pair(lab, &cf);

        kill_lvsd(&p0);
        wait_for("director 1 alone holds the VIP", lab, TAKEOVER, || {
            only(lab, D1)
        });
        wait_for("requests succeed after the takeover", lab, TAKEOVER, || {
            requests_succeed(lab)
        });
        wait_for(
            "the client's ARP entry names director 1",
            lab,
            TAKEOVER,
            || client_arp_points_at(lab, D1),
        );

        // pulse restarts its lvsd. The new one dies soon too (on the standby now), once
        // pulse has seen it answer: pulse then waits out its restart pause (1 s from the
        // last start, longer than deadtime) before the next start, while the partner's
        // heartbeats keep arriving. The director must stay standby all the same (no
        // fail-back), however long the restart took.
        let socket = lab.dir().join(format!("lvsd-{}.sock", D0.short()));
        let answers = || {
            lvsd::control::client::Client::new(&socket)
                .timeout(Duration::from_millis(500))
                .status()
                .is_ok()
        };
        let ready = |n: usize| p0.log().matches(LVSD_READY).count() >= n;
        wait_for(
            "pulse on director 0 restarts its lvsd",
            lab,
            TAKEOVER,
            || ready(2) && answers(),
        );
        // pulse polls lvsd's socket every 50 ms: let it see the answer too.
        std::thread::sleep(Duration::from_millis(200));
        kill_lvsd(&p0);
        wait_for(
            "pulse on director 0 restarts its lvsd again",
            lab,
            TAKEOVER,
            || ready(3) && answers(),
        );
        stays(
            "director 1 alone holds the VIP after lvsd's restarts",
            lab,
            Duration::from_secs(3),
            || only(lab, D1),
        );
        assert!(requests_succeed(lab), "requests fail after lvsd's restarts");
    });
}

/// What lvsd logs once it forwards (pulse's lvsd shares pulse's log).
const LVSD_READY: &str = "lvsd: forwarding on";

/// SIGKILL to the lvsd that `pulse` started.
fn kill_lvsd(pulse: &Proc<'_>) {
    let lvsd = lvsd_of(pulse);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &lvsd.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -KILL {lvsd} failed");
}

/// Heartbeats also over the private segment (the directors' `eth1`), so that losing the
/// public link does not silence them.
fn private_pair(lab: &Lab, monitor_links: bool) -> String {
    let private = |d: Role| lab.iface(d, Segment::Private).expect("eth1").addr;
    format!(
        "{FAST}primary_private = {}\nbackup_private = {}\nmonitor_links = {}\n",
        private(D0),
        private(D1),
        u8::from(monitor_links)
    )
}

#[test]
fn monitor_links_link_down_fails_over() {
    if !privileged("pulse_monitor_links_link_down_fails_over") {
        return;
    }
    nat_lab().run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = lab
            .write_file("lvs.cf", &lvs_cf(lab, &private_pair(lab, true)))
            .expect("lvs.cf");
        let (_p0, _p1) = start_pair(lab, &cf);

        // The cable of director 0's eth0 is pulled: its switch port goes down, eth0 loses
        // carrier. Heartbeats still flow over eth1.
        lab.unplug(D0, Segment::Public).expect("unplug director 0");
        wait_for("director 1 alone holds the VIP", lab, TAKEOVER, || {
            only(lab, D1)
        });
        wait_for("requests succeed after the takeover", lab, TAKEOVER, || {
            requests_succeed(lab)
        });
        wait_for(
            "the client's ARP entry names director 1",
            lab,
            TAKEOVER,
            || client_arp_points_at(lab, D1),
        );

        // The cable back: the link is up again, the primary stays standby (no fail-back).
        lab.plug(D0, Segment::Public).expect("plug director 0");
        stays("director 1 alone holds the VIP", lab, SETTLED, || {
            only(lab, D1)
        });
        assert!(requests_succeed(lab), "requests fail after the re-plug");
    });
}

/// The control for the test above: with heartbeats over the private path and
/// `monitor_links = 0`, the same link loss changes no role (so the failover above is
/// `monitor_links`' doing, not a silenced partner).
#[test]
fn without_monitor_links_link_down_changes_nothing() {
    if !privileged("pulse_without_monitor_links_link_down_changes_nothing") {
        return;
    }
    nat_lab().run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let cf = lab
            .write_file("lvs.cf", &lvs_cf(lab, &private_pair(lab, false)))
            .expect("lvs.cf");
        let (_p0, _p1) = start_pair(lab, &cf);

        lab.unplug(D0, Segment::Public).expect("unplug director 0");
        stays(
            "director 0 alone holds the VIP with its public link down",
            lab,
            Duration::from_secs(3),
            || only(lab, D0),
        );
        lab.plug(D0, Segment::Public).expect("plug director 0");
    });
}

#[test]
fn sigterm_hand_over_beats_deadtime() {
    if !privileged("pulse_sigterm_hand_over_beats_deadtime") {
        return;
    }
    nat_lab().run(|lab| {
        let _http = lab.start_http(80).expect("http servers");
        let deadtime = Duration::from_secs(5);
        let pair = format!("keepalive = 0.1\ndeadtime = {}\n", deadtime.as_secs());
        let cf = lab
            .write_file("lvs.cf", &lvs_cf(lab, &pair))
            .expect("lvs.cf");
        let (mut p0, _p1) = start_pair(lab, &cf);

        p0.signal("TERM").expect("SIGTERM pulse");
        let sent = Instant::now();
        wait_for("director 1 holds the VIP", lab, TAKEOVER, || holds(lab, D1));
        let took = sent.elapsed();
        eprintln!("hand-over after SIGTERM: {took:?} (deadtime {deadtime:?})");
        // A generous bound, far below deadtime: only the "stopped" heartbeat explains it.
        assert!(
            took < Duration::from_secs(2),
            "the backup took {took:?} to take over: it waited for deadtime"
        );
        let status = p0.wait(TAKEOVER).expect("pulse exits after SIGTERM");
        assert!(
            status.success(),
            "pulse exited with {status}:\n{}",
            p0.log()
        );
        wait_for("director 1 alone holds the VIP", lab, TAKEOVER, || {
            only(lab, D1)
        });
        wait_for(
            "requests succeed after the hand-over",
            lab,
            TAKEOVER,
            || requests_succeed(lab),
        );
    });
}
