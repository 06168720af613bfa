//! Running the real `lvsd` in a lab: an `lvs.cf` builder for the lab's address plan and a
//! starter that waits until lvsd forwards.
//!
//! ```no_run
//! # use tests::lab::{Lab, Mode};
//! # use tests::lvsd::{Cf, Virtual};
//! # fn f(lab: &Lab) {
//! let cf = Cf::new("nat")
//!     .virtual_(Virtual::http(lab, "rr").servers(lab, &[3, 2, 1]))
//!     .render(lab);
//! let lvsd = tests::lvsd::start(lab, &cf).expect("lvsd forwards");
//! # }
//! ```

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::lab::{Lab, LabError, NAT_ROUTER, Proc, Role};
use crate::tools::tally::Tally;

/// The line lvsd logs once its data path is attached and steered.
pub const READY: &str = "lvsd: forwarding";

/// How long lvsd may take to attach (debug builds, a loaded 2-core machine).
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// One `server` section.
#[derive(Debug, Clone)]
pub struct Server {
    /// Section name (`rs0`, ...).
    pub name: String,
    /// Its address.
    pub addr: Ipv4Addr,
    /// `weight`.
    pub weight: u32,
    /// `active`.
    pub active: bool,
}

/// One `virtual` section.
#[derive(Debug, Clone)]
pub struct Virtual {
    /// Section name.
    pub name: String,
    /// The VIP (on d0 `eth0`, alias `eth0:1`).
    pub addr: Ipv4Addr,
    /// Virtual port.
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: &'static str,
    /// `scheduler`.
    pub scheduler: String,
    /// `persistent` seconds, if any.
    pub persistent: Option<u32>,
    /// Real servers.
    pub servers: Vec<Server>,
    /// More `key = value` lines for the section (`sorry_server`, `send`, `timeout`, …).
    pub lines: Vec<String>,
}

impl Virtual {
    /// TCP port 80 on the lab's first VIP with `scheduler`, no servers yet.
    pub fn http(lab: &Lab, scheduler: &str) -> Self {
        Self {
            name: "web".to_owned(),
            addr: lab.vip(),
            port: 80,
            protocol: "tcp",
            scheduler: scheduler.to_owned(),
            persistent: None,
            servers: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// UDP `port` on the lab's first VIP with `scheduler`, no servers yet.
    pub fn udp(lab: &Lab, port: u16, scheduler: &str) -> Self {
        Self {
            name: "dns".to_owned(),
            port,
            protocol: "udp",
            ..Self::http(lab, scheduler)
        }
    }

    /// Every real server of the lab, with `weights[i]` (1 past the end of `weights`).
    pub fn servers(mut self, lab: &Lab, weights: &[u32]) -> Self {
        for (i, rs) in lab.real_servers().into_iter().enumerate() {
            self.servers.push(Server {
                name: rs.short(),
                addr: lab.addr(rs),
                weight: weights.get(i).copied().unwrap_or(1),
                active: true,
            });
        }
        self
    }

    /// Only the lab's real servers `indices` (`rs<i>`), each with weight 1.
    pub fn only_servers(mut self, lab: &Lab, indices: &[usize]) -> Self {
        let all = lab.real_servers();
        for &i in indices {
            let rs = all[i];
            self.servers.push(Server {
                name: rs.short(),
                addr: lab.addr(rs),
                weight: 1,
                active: true,
            });
        }
        self
    }

    /// One more `key = value` line in the section.
    pub fn line(mut self, line: &str) -> Self {
        self.lines.push(line.to_owned());
        self
    }

    /// `persistent = secs`.
    pub fn persistent(mut self, secs: u32) -> Self {
        self.persistent = Some(secs);
        self
    }
}

/// A whole `lvs.cf`.
#[derive(Debug, Clone)]
pub struct Cf {
    /// `network` (`nat`, `direct`, `tunnel`).
    pub network: &'static str,
    /// Virtual services.
    pub virtuals: Vec<Virtual>,
}

impl Cf {
    /// An empty file for `network` (`nat`, `direct`, `tunnel`).
    pub fn new(network: &'static str) -> Self {
        Self {
            network,
            virtuals: Vec::new(),
        }
    }

    /// Adds a virtual service.
    pub fn virtual_(mut self, v: Virtual) -> Self {
        self.virtuals.push(v);
        self
    }

    /// The file's text. `primary` is director 0; NAT files name the lab's NAT router.
    pub fn render(&self, lab: &Lab) -> String {
        let mut cf = format!(
            "service = lvs\nprimary = {}\nnetwork = {}\n",
            lab.addr(Role::Director(0)),
            self.network
        );
        if self.network == "nat" {
            cf.push_str(&format!("nat_router = {NAT_ROUTER} eth1:1\n"));
        }
        for v in &self.virtuals {
            cf.push_str(&format!(
                "virtual {} {{\n    active = 1\n    address = {} eth0:1\n    port = {}\n    \
                 protocol = {}\n    scheduler = {}\n",
                v.name, v.addr, v.port, v.protocol, v.scheduler
            ));
            if let Some(p) = v.persistent {
                cf.push_str(&format!("    persistent = {p}\n"));
            }
            for l in &v.lines {
                cf.push_str(&format!("    {l}\n"));
            }
            for s in &v.servers {
                cf.push_str(&format!(
                    "    server {} {{\n        address = {}\n        active = {}\n        \
                     weight = {}\n    }}\n",
                    s.name,
                    s.addr,
                    u8::from(s.active),
                    s.weight
                ));
            }
            cf.push_str("}\n");
        }
        cf
    }
}

/// Writes `cf` as `lvs.cf` in the lab's directory and returns its path.
pub fn write_cf(lab: &Lab, cf: &str) -> Result<std::path::PathBuf, LabError> {
    lab.write_file("lvs.cf", cf)
}

/// Starts `lvsd -c <lab dir>/lvs.cf --nodaemon --socket <lab dir>/lvsd.sock [extra...]` on
/// director 0 without waiting.
pub fn spawn<'l>(lab: &'l Lab, cf: &str, extra: &[&str]) -> Result<Proc<'l>, LabError> {
    let path = write_cf(lab, cf)?;
    let lvsd = crate::bin("lvsd");
    // Each lab's own control socket: labs share the file system, and parallel tests must
    // not meet at /run/lvsd/lvsd.sock.
    let socket = socket_path(lab);
    let mut argv = vec![
        lvsd.to_string_lossy().into_owned(),
        "-c".to_owned(),
        path.to_string_lossy().into_owned(),
        "--nodaemon".to_owned(),
        "--socket".to_owned(),
        socket.to_string_lossy().into_owned(),
    ];
    argv.extend(extra.iter().map(|s| (*s).to_owned()));
    lab.spawn(Role::Director(0), &argv)
}

/// The control socket of the lab's lvsd.
pub fn socket_path(lab: &Lab) -> std::path::PathBuf {
    lab.dir().join("lvsd.sock")
}

/// Starts lvsd on director 0 with `cf`, **without health checks** (`--no-nannies`), and
/// waits until it logs [`READY`]. For the forwarding tests: they pin exact splits of
/// requests by weight, which nanny's slow start (weight/32 first, doubling every 20 s, as
/// Piranha's nanny does) would change. Health checking as operators run it is tested with
/// [`start_with_health`] (`tests/tests/health.rs`).
pub fn start<'l>(lab: &'l Lab, cf: &str) -> Result<Proc<'l>, LabError> {
    let mut p = spawn(lab, cf, &["--no-nannies"])?;
    p.wait_for_log(READY, READY_TIMEOUT)?;
    Ok(p)
}

/// Starts lvsd on director 0 with `cf` as an operator runs it (one nanny per real server,
/// the `nanny` built beside `lvsd`) and waits until it logs [`READY`].
pub fn start_with_health<'l>(lab: &'l Lab, cf: &str) -> Result<Proc<'l>, LabError> {
    let mut p = spawn(lab, cf, &[])?;
    p.wait_for_log(READY, READY_TIMEOUT)?;
    Ok(p)
}

/// SIGTERM, then checks a clean exit (status 0) and that neither an XDP program nor the
/// kernel-side guard is left on director 0. Returns a description of what went wrong, if anything.
pub fn stop_clean(lab: &Lab, lvsd: &mut Proc<'_>) -> Result<(), String> {
    lvsd.signal("TERM").map_err(|e| e.to_string())?;
    let status = lvsd
        .wait(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("lvsd exited with {status}: {}", lvsd.log()));
    }
    let link = lab
        .ip(Role::Director(0), ["-d", "link", "show"])
        .map_err(|e| e.to_string())?;
    if link.contains("prog/xdp") {
        return Err(format!("XDP left attached: {link}"));
    }
    if let Ok(table) = lab.run(Role::Director(0), ["nft", "list", "table", "inet", GUARD]) {
        return Err(format!("the kernel-side guard was left behind: {table}"));
    }
    Ok(())
}

/// The nftables table of lvsd's kernel-side guard (`lvsd/src/daemon/guard.rs`).
pub const GUARD: &str = "lvsd_guard";

/// How long one `lab-client` / `lab-udp send` run of these tests may take in all.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(50);

/// Runs `lab-client ARGS` in `client` (with `--deadline-s` below [`CLIENT_TIMEOUT`]).
pub fn http(lab: &Lab, client: Role, args: &[&str]) -> Result<Tally, LabError> {
    let mut argv = args.to_vec();
    argv.extend(["--deadline-s", "45"]);
    lab.http_client(client, &argv, CLIENT_TIMEOUT)
}

/// Asserts that nothing failed and that real server `rs<i>` answered exactly `want[i]`
/// times (and no other server answered).
///
/// # Panics
/// When it does not hold; the message shows the whole tally.
pub fn assert_split(t: &Tally, want: &[u64]) {
    assert_eq!(t.failed, 0, "failures: {:?} (tally {t:?})", t.errors);
    let got: Vec<u64> = (0..want.len())
        .map(|i| t.servers.get(&format!("rs{i}")).copied().unwrap_or(0))
        .collect();
    assert_eq!(got, want, "answers per real server (tally {t:?})");
    assert_eq!(
        t.ok,
        want.iter().sum::<u64>(),
        "answers from other servers: {t:?}"
    );
}

/// Asserts that every server that answered saw only `client`'s address (the director kept
/// the client's source address).
///
/// # Panics
/// When a server saw another address.
pub fn assert_client_kept(lab: &Lab, t: &Tally, client: Role) {
    let want = lab.addr(client).to_string();
    assert!(!t.clients.is_empty(), "no server answered: {t:?}");
    for (server, seen) in &t.clients {
        assert!(
            seen.iter().all(|c| *c == want),
            "{server} saw {seen:?}, want only {want}"
        );
    }
}

/// The one server that answered all `n` requests of `t` (nothing failed).
///
/// # Panics
/// When more than one server answered, or anything failed.
pub fn only_server(t: &Tally, n: u64) -> String {
    assert_eq!(t.failed, 0, "failures: {:?} (tally {t:?})", t.errors);
    assert_eq!(t.servers.len(), 1, "one server answered all: {t:?}");
    let (server, count) = t.servers.iter().next().expect("one server answered");
    assert_eq!(*count, n, "{t:?}");
    server.clone()
}
