//! A director pair in a lab: both directors run the real `pulse`, which starts its own
//! `lvsd` with a control socket per director. The helpers of `tests/tests/sync_failover.rs`
//! (`pulse_ha.rs` and `pulse_failover.rs` keep their own copies of the few they share).
//!
//! ```no_run
//! # use tests::lab::{Lab, Role};
//! # use tests::lvsd::{Cf, Virtual};
//! # fn f(lab: &Lab) {
//! let cf = Cf::new("nat").virtual_(Virtual::http(lab, "rr").servers(lab, &[1, 1])).render(lab);
//! let cf = tests::pair::with_pair(lab, &cf, tests::pair::FAST);
//! let path = lab.write_file("lvs.cf", &cf).expect("lvs.cf");
//! let p0 = tests::pair::start_pulse(lab, Role::Director(0), &path, &[]);
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lvsd::control::api::{StatusView, SyncView};
use lvsd::control::client::Client;

use crate::lab::{Lab, Proc, Role, wait_until};

/// Director 0, the primary.
pub const D0: Role = Role::Director(0);
/// Director 1, the backup.
pub const D1: Role = Role::Director(1);
/// Bound for a takeover or a step-down (not a performance assertion).
pub const TAKEOVER: Duration = Duration::from_secs(10);
/// Fast heartbeats (as in `pulse_failover.rs`).
pub const FAST: &str = "keepalive = 0.1\ndeadtime = 0.5\n";

/// `cf` (a rendered [`crate::lvsd::Cf`]) with director 1 as an active backup and `lines`
/// (timing, keys, sync) inserted after its `network = ...` line.
///
/// # Panics
/// If `cf` has no `network = ` line.
pub fn with_pair(lab: &Lab, cf: &str, lines: &str) -> String {
    let at = cf
        .find("network = ")
        .expect("a rendered lvs.cf names its network");
    let eol = at + cf[at..].find('\n').expect("the network line ends") + 1;
    format!(
        "{}backup = {}\nbackup_active = 1\n{lines}{}",
        &cf[..eol],
        lab.addr(D1),
        &cf[eol..]
    )
}

/// The control socket of the lvsd that `director`'s pulse starts.
pub fn socket(lab: &Lab, director: Role) -> PathBuf {
    lab.dir().join(format!("lvsd-{}.sock", director.short()))
}

/// Starts `pulse -c CF --nodaemon --lvsd <lvsd> --socket <socket> [extra...]` on `director`.
///
/// # Panics
/// If it cannot be spawned.
pub fn start_pulse<'l>(lab: &'l Lab, director: Role, cf: &Path, extra: &[&str]) -> Proc<'l> {
    let mut argv = vec![
        crate::bin("pulse").to_string_lossy().into_owned(),
        "-c".to_owned(),
        cf.to_string_lossy().into_owned(),
        "--nodaemon".to_owned(),
        "--lvsd".to_owned(),
        crate::bin("lvsd").to_string_lossy().into_owned(),
        "--socket".to_owned(),
        socket(lab, director).to_string_lossy().into_owned(),
    ];
    argv.extend(extra.iter().map(|s| (*s).to_owned()));
    lab.spawn(director, &argv).expect("pulse starts")
}

/// A client of `director`'s lvsd (2 s timeout), for the calls without a helper here.
pub fn client(lab: &Lab, director: Role) -> Client {
    Client::new(socket(lab, director)).timeout(Duration::from_secs(2))
}

/// `GET /v1/sync` of `director`'s lvsd; `None` while it does not answer.
pub fn sync(lab: &Lab, director: Role) -> Option<SyncView> {
    client(lab, director).sync().ok()
}

/// `GET /v1/connections` of `director`'s lvsd; `None` while it does not answer.
pub fn connections(lab: &Lab, director: Role) -> Option<Vec<lvsd::control::api::ConnView>> {
    client(lab, director).connections().ok()
}

/// `GET /v1/status` of `director`'s lvsd; `None` while it does not answer.
pub fn status(lab: &Lab, director: Role) -> Option<StatusView> {
    client(lab, director).status().ok()
}

/// Whether `director` holds the lab's VIP on `eth0:1`.
pub fn holds(lab: &Lab, director: Role) -> bool {
    let vip = lab.vip();
    lab.ip(director, ["-4", "-o", "addr", "show"])
        .map(|out| {
            out.lines()
                .any(|l| l.contains(&format!("inet {vip}/")) && l.contains(" eth0:1"))
        })
        .unwrap_or(false)
}

/// Whether `director`, and not its partner, holds the VIP.
pub fn only(lab: &Lab, director: Role) -> bool {
    let other = if director == D0 { D1 } else { D0 };
    holds(lab, director) && !holds(lab, other)
}

/// Whether a short burst of requests through the VIP from `client` all succeed.
pub fn requests_succeed(lab: &Lab, client: Role) -> bool {
    let vip = format!("{}:80", lab.vip());
    let args = ["--to", vip.as_str(), "--requests", "6", "--deadline-s", "3"];
    lab.http_client(client, &args, Duration::from_secs(10))
        .is_ok_and(|t| t.failed == 0 && t.ok == 6)
}

/// Waits for `cond` (checked every 50 ms) at most `within`; dumps the logs and panics
/// naming `what` when it does not come.
pub fn wait_for(what: &str, lab: &Lab, within: Duration, cond: impl FnMut() -> bool) {
    if !wait_until(within, Duration::from_millis(50), cond) {
        lab.dump_logs();
        panic!("{what} within {within:?}");
    }
}

/// Checks `cond` every 100 ms for `time`; dumps the logs and panics at the first miss.
pub fn stays(what: &str, lab: &Lab, time: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + time;
    while Instant::now() < end {
        if !cond() {
            lab.dump_logs();
            panic!("{what} did not hold for {time:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A key file in the lab's directory, mode 0600 as pulse and lvsd require.
///
/// # Panics
/// If it cannot be written.
pub fn write_key(lab: &Lab, name: &str, key: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = lab.dir().join(name);
    std::fs::write(&path, key).expect("write the key file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .expect("chmod 600 the key file");
    path
}
