//! `lab-conns` against one director running the real `lvsd` (no failover): the tools that
//! `sync_failover.rs` relies on must report a healthy run as healthy and a broken one as
//! broken.
//!
//! - `hold`: 200 keep-alive connections through the VIP (NAT), two trigger rounds: every
//!   connection answers each round from its round-0 real server. Then lvsd is stopped and
//!   the VIP's traffic reaches the director's own stack, which resets the connections: the
//!   next round counts resets, not answers.
//! - `stream`: a paced 4 MB download through the VIP arrives whole; one from a stopped
//!   director fails with an error and exit 1.

use std::path::Path;
use std::time::Duration;

use tests::lab::{Lab, Mode, Proc, Role, privileged, wait_until};
use tests::lvsd::{Cf, Virtual, start};
use tests::tools::conns::{Round, Stream};

const C0: Role = Role::Client(0);

fn spawn_tool<'l>(lab: &'l Lab, args: &[&str]) -> Proc<'l> {
    let mut argv = vec![tests::bin("lab-conns").to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|s| (*s).to_owned()));
    lab.spawn(C0, &argv).expect("lab-conns starts")
}

/// Creates the trigger and waits for round `n`'s report.
fn round(lab: &Lab, holder: &Proc<'_>, trigger: &Path, n: u64) -> Round {
    std::fs::write(trigger, b"go").expect("write the trigger");
    let mut got = None;
    let ok = wait_until(Duration::from_secs(40), Duration::from_millis(50), || {
        got = Round::all(&holder.log()).into_iter().find(|r| r.round == n);
        got.is_some()
    });
    if !ok {
        lab.dump_logs();
        panic!("no round {n} from lab-conns hold:\n{}", holder.log());
    }
    got.expect("found above")
}

#[test]
fn hold_counts_answers_and_resets() {
    if !privileged("lab_conns_hold_counts_answers_and_resets") {
        return;
    }
    Lab::builder()
        .directors(1)
        .real_servers(Mode::Nat, 2)
        .run(|lab| {
            let _http = lab.start_http(80).expect("http servers");
            let cf = Cf::new("nat")
                .virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1]))
                .render(lab);
            let mut lvsd = start(lab, &cf).expect("lvsd forwards");
            let to = format!("{}:80", lab.vip());
            let trigger = lab.dir().join("hold.trigger");
            let trigger_s = trigger.to_string_lossy().into_owned();
            let mut holder = spawn_tool(
                lab,
                &[
                    "hold",
                    "--to",
                    &to,
                    "--conns",
                    "200",
                    "--trigger",
                    &trigger_s,
                    "--rounds",
                    "3",
                    "--round-s",
                    "5",
                ],
            );
            holder
                .wait_for_log("ready", Duration::from_secs(60))
                .expect("holder ready");
            let r0 = Round::all(&holder.log())
                .into_iter()
                .next()
                .expect("round 0");
            assert!(r0.all_answered_unmoved(), "{r0:?}");
            assert_eq!(r0.servers.get("rs0"), Some(&100), "{r0:?}");
            assert_eq!(r0.servers.get("rs1"), Some(&100), "{r0:?}");
            let r1 = round(lab, &holder, &trigger, 1);
            assert!(r1.all_answered_unmoved(), "{r1:?}");

            // The director's stack owns the VIP once lvsd is gone: it resets.
            lvsd.signal("TERM").expect("SIGTERM lvsd");
            lvsd.wait(Duration::from_secs(10)).expect("lvsd exits");
            let r2 = round(lab, &holder, &trigger, 2);
            assert_eq!(r2.answered, 0, "{r2:?}");
            assert_eq!(r2.reset, 200, "{r2:?}");
            let r3 = round(lab, &holder, &trigger, 3);
            assert_eq!(r3.dead, 200, "{r3:?}");
            let status = holder.wait(Duration::from_secs(10)).expect("holder exits");
            assert_eq!(status.code(), Some(1), "{}", holder.log());
        });
}

#[test]
fn stream_checks_every_byte() {
    if !privileged("lab_conns_stream_checks_every_byte") {
        return;
    }
    Lab::builder()
        .directors(1)
        .real_servers(Mode::Nat, 2)
        .run(|lab| {
            let _http = lab.start_http(80).expect("http servers");
            let cf = Cf::new("nat")
                .virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1]))
                .render(lab);
            let mut lvsd = start(lab, &cf).expect("lvsd forwards");
            let to = format!("{}:80", lab.vip());
            let mut s = spawn_tool(
                lab,
                &[
                    "stream",
                    "--to",
                    &to,
                    "--bytes",
                    "4194304",
                    "--rate-kbps",
                    "2048",
                ],
            );
            let status = s.wait(Duration::from_secs(30)).expect("stream ends");
            let report = Stream::parse(&s.log()).expect("a stream report");
            assert!(status.success(), "{}", s.log());
            assert!(report.complete(), "{report:?}");
            assert!(report.server.starts_with("rs"), "{report:?}");
            // Paced: 4 MiB at 2 MiB/s takes about 2 s.
            assert!(s.log().contains("progress "), "{}", s.log());

            lvsd.signal("TERM").expect("SIGTERM lvsd");
            lvsd.wait(Duration::from_secs(10)).expect("lvsd exits");
            let mut s = spawn_tool(
                lab,
                &[
                    "stream",
                    "--to",
                    &to,
                    "--bytes",
                    "1000",
                    "--timeout-ms",
                    "2000",
                ],
            );
            let status = s.wait(Duration::from_secs(30)).expect("stream ends");
            let report = Stream::parse(&s.log()).expect("a stream report");
            assert_eq!(status.code(), Some(1), "{}", s.log());
            assert!(!report.complete(), "{report:?}");
            assert!(!report.error.is_empty(), "{report:?}");
        });
}
