//! Connection sync, the quick check: a pulse pair with `syncdaemon = 1` and a key; the
//! standby's lvsd holds the connections the active one made, and each lvsd completed a
//! bulk resync at start. (The failover cases are in `sync_failover.rs`.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use lvsd::control::client::Client;
use tests::lab::{Lab, Mode, Proc, Role, privileged, wait_until};
use tests::lvsd::{Cf, Virtual};

const C0: Role = Role::Client(0);
const D0: Role = Role::Director(0);
const D1: Role = Role::Director(1);

fn socket(lab: &Lab, director: Role) -> PathBuf {
    lab.dir().join(format!("lvsd-{}.sock", director.short()))
}

fn start_pulse<'l>(lab: &'l Lab, director: Role, cf: &Path) -> Proc<'l> {
    let argv = [
        tests::bin("pulse").to_string_lossy().into_owned(),
        "-c".to_owned(),
        cf.to_string_lossy().into_owned(),
        "--nodaemon".to_owned(),
        "--lvsd".to_owned(),
        tests::bin("lvsd").to_string_lossy().into_owned(),
        "--socket".to_owned(),
        socket(lab, director).to_string_lossy().into_owned(),
    ];
    lab.spawn(director, &argv).expect("pulse starts")
}

#[test]
fn standby_holds_the_active_directors_connections() {
    if !privileged("sync_standby_holds_the_active_directors_connections") {
        return;
    }
    Lab::builder()
        .directors(2)
        .floating_on(None)
        .real_servers(Mode::Nat, 2)
        .run(|lab| {
            let _http = lab.start_http(80).expect("http servers");
            let key = {
                use std::os::unix::fs::PermissionsExt as _;
                let path = lab.dir().join("pair.key");
                std::fs::write(&path, b"0123456789abcdef0123456789abcdef").expect("key");
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .expect("chmod");
                path
            };
            let cf = Cf::new("nat")
                .virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1]))
                .render(lab);
            let pair = format!(
                "backup = {}\nbackup_active = 1\nkeepalive = 0.1\ndeadtime = 0.5\n\
                 syncdaemon = 1\nheartbeat_key = {}\n",
                lab.addr(D1),
                key.display()
            );
            let cf = cf.replacen("network = nat\n", &format!("network = nat\n{pair}"), 1);
            let cf = tests::lvsd::write_cf(lab, &cf).expect("lvs.cf");
            let _p0 = start_pulse(lab, D0, &cf);
            let _p1 = start_pulse(lab, D1, &cf);
            let vip = format!("{}:80", lab.vip());
            let ok = wait_until(Duration::from_secs(15), Duration::from_millis(200), || {
                lab.http_client(
                    C0,
                    &["--to", &vip, "--requests", "5"],
                    Duration::from_secs(10),
                )
                .is_ok_and(|t| t.ok == 5)
            });
            if !ok {
                lab.dump_logs();
                panic!("requests through the VIP");
            }
            let standby = Client::new(socket(lab, D1));
            let active_client = Client::new(socket(lab, D0));
            // Synced: the standby holds every connection the active holds (at least the 5
            // just made), and both start-up resyncs are done. (Counting the standby's
            // `created` was not enough: an entry that came first by resync is `updated`
            // by the stream, and the active's resync retries until the standby is up.)
            let key =
                |c: &lvsd::control::api::ConnView| (c.proto.clone(), c.client, c.vaddr, c.server);
            let synced = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
                let (Ok(a), Ok(b)) = (active_client.connections(), standby.connections()) else {
                    return false;
                };
                let held: std::collections::BTreeSet<_> = b.iter().map(key).collect();
                let live: Vec<_> = a.iter().filter(|c| c.state != "NONE").collect();
                let resynced = |c: &Client| c.sync().is_ok_and(|v| v.resync.completed >= 1);
                live.len() >= 5
                    && live.iter().all(|c| held.contains(&key(c)))
                    && resynced(&standby)
                    && resynced(&active_client)
            });
            let view = standby.sync();
            let active = active_client.sync();
            if !synced {
                lab.dump_logs();
                panic!("standby imported the connections: {view:?}\nactive: {active:?}");
            }
            let view = view.expect("standby answers");
            let active = active.expect("active answers");
            assert!(view.enabled && !view.streaming, "{view:?}");
            assert!(active.enabled && active.streaming, "{active:?}");
            assert!(view.resync.completed >= 1, "{view:?}");
            assert!(active.resync.completed >= 1, "{active:?}");
            assert_eq!(view.received.bad_mac, 0, "{view:?}");
            let standby_conns = standby.status().expect("status").connections;
            assert!(standby_conns >= 5, "standby holds {standby_conns} entries");
        });
}
