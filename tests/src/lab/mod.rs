//! The network-namespace lab: clients, directors and real servers, each in its own network
//! namespace, wired through two Linux bridges that live in a "switch" namespace.
//!
//! ```text
//!   switch namespace:      br-pub  198.18.0.0/24              br-priv  198.19.0.0/24
//!                            |                                   |
//!   client c<i>      eth0 198.18.0.200+i                         |
//!   director d<j>    eth0 198.18.0.2+j                 eth1 198.19.0.2+j
//!   DR/TUN rs<k>     eth0 198.18.0.51+k                          |
//!   NAT rs<k>                                          eth0 198.19.0.11+k
//!
//!   VIP 198.18.0.10 (/24 on d0 eth0, label eth0:1; /32 on lo of DR/TUN real servers)
//!   NAT router 198.19.0.254 (on d0 eth1): NAT real servers' default gateway
//! ```
//!
//! The directors' and the NAT real servers' addresses match `etc/nat.cf` (primary
//! 198.18.0.2, backup 198.18.0.3, real servers 198.19.0.11 and .12, VIP 198.18.0.10,
//! nat_router 198.19.0.254). Addresses 198.18.0.10 to .49 are free for more VIPs.
//!
//! Contract:
//! - Nothing is configured in the root namespace: every veth pair is created inside the switch
//!   namespace with its peer moved straight into the host namespace, and every command runs
//!   with `ip -n NS` or `ip netns exec NS`.
//! - Every external command has a deadline ([`DEFAULT_TIMEOUT`] unless said otherwise).
//! - Namespace names are `lvs-<pid>-<n>-<role>`: unique per lab, so tests run in parallel.
//!   Interface names are at most 15 bytes.
//! - Dropping the [`Lab`] kills the processes it started, then every process still in one of
//!   its namespaces, then deletes the namespaces; it runs on panic too. Labs left behind by a
//!   killed test process are reaped by the next lab built (their pid no longer exists).
//! - Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2's `ip`. [`privileged`] says whether
//!   the lab can run, so that tests skip with a message elsewhere.

mod build;
mod cmd;
mod proc;
mod tools;

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use proc::Proc;

use proc::Spawned;

/// Deadline of lab commands that do not name one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The public segment: clients, directors' `eth0`, DR and TUN real servers.
pub const PUBLIC_NET: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
/// The private segment: directors' `eth1` and NAT real servers.
pub const PRIVATE_NET: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
/// Prefix length of both segments.
pub const PREFIX: u8 = 24;
/// The default virtual IP (public segment).
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
/// The floating NAT router address on the private segment: NAT real servers' default gateway.
pub const NAT_ROUTER: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 254);

/// Most hosts of one kind: keeps every address inside its block of the plan.
pub const MAX_CLIENTS: usize = 50;
/// Most directors (a pair).
pub const MAX_DIRECTORS: usize = 2;
/// Most real servers (all modes together).
pub const MAX_REAL_SERVERS: usize = 40;

/// Errors of building or using a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The requested topology does not fit the address plan.
    #[error("bad lab topology: {0}")]
    Topology(String),
    /// A command could not be started.
    #[error("cannot run `{cmd}`: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    /// A command ran past its deadline and was killed.
    #[error("`{cmd}` did not finish within {after:?} and was killed")]
    Timeout { cmd: String, after: Duration },
    /// A command exited non-zero.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Failed {
        cmd: String,
        status: String,
        stderr: String,
    },
    /// A file operation of the lab failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A command's output could not be understood.
    #[error("cannot parse {what} from {text:?}")]
    Parse { what: String, text: String },
    /// A spawned process exited while something waited for it to become ready.
    #[error("{label} exited ({status}) before it was ready; its log:\n{log}")]
    ProcExited {
        label: String,
        status: String,
        log: String,
    },
    /// A spawned process did not print what was waited for in time.
    #[error("{label}: no {needle:?} within {after:?}; its log:\n{log}")]
    NotReady {
        label: String,
        needle: String,
        after: Duration,
        log: String,
    },
    /// A role that this lab does not have.
    #[error("this lab has no {0:?}")]
    NoSuchRole(Role),
}

/// A host of the lab. Indices count from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The namespace holding the bridges.
    Switch,
    /// Client `i`, on the public segment.
    Client(usize),
    /// Director `j`: `eth0` on the public segment, `eth1` on the private one.
    Director(usize),
    /// Real server `k` (NAT: private segment; DR and TUN: public segment).
    Real(usize),
}

impl Role {
    /// Short name used in namespace names and switch port names: `sw`, `c0`, `d1`, `rs2`.
    pub fn short(self) -> String {
        match self {
            Role::Switch => "sw".to_owned(),
            Role::Client(i) => format!("c{i}"),
            Role::Director(i) => format!("d{i}"),
            Role::Real(i) => format!("rs{i}"),
        }
    }
}

/// How a real server is reached from the directors (the LVS forwarding methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Masquerading: on the private segment, default route via [`NAT_ROUTER`]. Also the mode
    /// for "routed" tests where a director merely forwards.
    Nat,
    /// Direct routing: on the public segment, the VIPs on `lo`, `arp_ignore=1`,
    /// `arp_announce=2`.
    Dr,
    /// IP-in-IP tunnelling: like DR, plus a `tun0` device, `rp_filter=0`, and `lab-decap`
    /// running (this kernel has no `ipip` module: see `src/bin/lab-decap.rs`).
    Tun,
}

/// A network segment (one bridge in the switch namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// `br-pub`, 198.18.0.0/24.
    Public,
    /// `br-priv`, 198.19.0.0/24.
    Private,
}

impl Segment {
    /// Name of the bridge in the switch namespace.
    pub fn bridge(self) -> &'static str {
        match self {
            Segment::Public => "br-pub",
            Segment::Private => "br-priv",
        }
    }

    fn net(self) -> Ipv4Addr {
        match self {
            Segment::Public => PUBLIC_NET,
            Segment::Private => PRIVATE_NET,
        }
    }

    /// Address `host` of this segment.
    pub fn addr(self, host: u8) -> Ipv4Addr {
        let [a, b, c, _] = self.net().octets();
        Ipv4Addr::new(a, b, c, host)
    }
}

/// One interface of a host namespace, with the veth peer that plugs it into a bridge.
#[derive(Debug, Clone)]
pub struct Iface {
    /// Name inside the host namespace (`eth0`, `eth1`).
    pub name: String,
    /// Its address (prefix [`PREFIX`]).
    pub addr: Ipv4Addr,
    /// Its MAC: `02:00:` followed by the four bytes of [`Iface::addr`].
    pub mac: [u8; 6],
    /// The segment it is plugged into.
    pub segment: Segment,
    /// Name of the veth peer in the switch namespace.
    pub switch_port: String,
}

/// One namespace of the lab.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its role.
    pub role: Role,
    /// Its namespace name (`/run/netns/<ns>`).
    pub ns: String,
    /// Its interfaces besides `lo` (none for the switch).
    pub ifaces: Vec<Iface>,
    /// Forwarding mode, for real servers.
    pub mode: Option<Mode>,
}

/// What to build; see [`Lab::builder`].
#[derive(Debug, Clone)]
pub struct LabBuilder {
    clients: usize,
    directors: usize,
    real: Vec<Mode>,
    vips: Vec<Ipv4Addr>,
    vip_on: Option<usize>,
    nat_router_on: Option<usize>,
    offloads: bool,
    decap: Option<PathBuf>,
}

impl Default for LabBuilder {
    fn default() -> Self {
        Self {
            clients: 1,
            directors: 1,
            real: Vec::new(),
            vips: vec![VIP],
            vip_on: Some(0),
            nat_router_on: Some(0),
            offloads: true,
            decap: None,
        }
    }
}

impl LabBuilder {
    /// Number of clients (default 1).
    pub fn clients(mut self, n: usize) -> Self {
        self.clients = n;
        self
    }

    /// Number of directors, 1 or 2 (default 1).
    pub fn directors(mut self, n: usize) -> Self {
        self.directors = n;
        self
    }

    /// Adds `n` real servers of `mode`; real server indices follow the order of the calls.
    pub fn real_servers(mut self, mode: Mode, n: usize) -> Self {
        self.real.extend(std::iter::repeat_n(mode, n));
        self
    }

    /// The virtual IPs (default `[VIP]`): configured on DR/TUN real servers' `lo`, and on the
    /// director chosen by [`LabBuilder::floating_on`].
    pub fn vips(mut self, vips: &[Ipv4Addr]) -> Self {
        self.vips = vips.to_vec();
        self
    }

    /// Which director holds the floating addresses (the VIPs on the alias labels `eth0:1`,
    /// `eth0:2`, …, and [`NAT_ROUTER`] on `eth1:1`, as pulse puts them) when the lab starts: `Some(0)` by default, so that a single
    /// director works without `pulse`; `None` leaves them to `pulse`.
    pub fn floating_on(mut self, director: Option<usize>) -> Self {
        self.vip_on = director;
        self.nat_router_on = director;
        self
    }

    /// `false` turns off checksum, segmentation and receive offloads on every veth (both
    /// ends), so that packets seen by a userspace engine carry complete checksums and
    /// wire-sized segments. Needs `ethtool` (`apt-get install ethtool`). Default: kernel
    /// defaults (on).
    pub fn offloads(mut self, on: bool) -> Self {
        self.offloads = on;
        self
    }

    /// Path of `lab-decap`, started on each TUN real server. Default: `tests::bin("lab-decap")`.
    /// Integration tests of this crate pass `env!("CARGO_BIN_EXE_lab-decap")`.
    pub fn decap_bin(mut self, path: impl Into<PathBuf>) -> Self {
        self.decap = Some(path.into());
        self
    }

    /// Builds the lab. On error, whatever was created is torn down before returning.
    pub fn build(self) -> Result<Lab, LabError> {
        build::build(self)
    }

    /// Builds the lab, runs `f` with it and tears it down, also when `f` panics (the panic is
    /// caught, the lab is dropped, then the panic resumes).
    ///
    /// # Panics
    /// If the lab cannot be built, or if `f` panics.
    pub fn run<R>(self, f: impl FnOnce(&Lab) -> R) -> R {
        let lab = self.build().expect("the lab builds (are you root?)");
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&lab)));
        if result.is_err() {
            eprintln!("lab {}: the test panicked; tearing down", lab.id);
            lab.dump_logs();
            lab.keep_dir.store(true, Ordering::Relaxed);
        }
        drop(lab);
        match result {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Counter making lab ids unique within the process.
static NEXT_LAB: AtomicUsize = AtomicUsize::new(0);

/// A built lab; tears itself down on drop.
#[derive(Debug)]
pub struct Lab {
    id: String,
    hosts: Vec<Host>,
    vips: Vec<Ipv4Addr>,
    dir: PathBuf,
    /// Namespaces created so far, in creation order (teardown deletes exactly these).
    created: Vec<String>,
    /// Processes the lab started itself (lab-decap), killed first on teardown.
    own: Mutex<Vec<Spawned>>,
    next_log: AtomicUsize,
    /// Keep [`Lab::dir`] after teardown (set when a test failed).
    keep_dir: AtomicBool,
}

impl Lab {
    /// A builder with one client, one director, no real server, [`VIP`] on director 0.
    pub fn builder() -> LabBuilder {
        LabBuilder::default()
    }

    /// Unique id of this lab: `lvs-<pid>-<n>`; namespace names start with it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Every host, the switch first.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The host of `role`.
    ///
    /// # Panics
    /// If the lab has no such role (a bug in the test).
    pub fn host(&self, role: Role) -> &Host {
        self.try_host(role)
            .expect("the test asks for a role its lab has")
    }

    /// The host of `role`, if the lab has it.
    pub fn try_host(&self, role: Role) -> Result<&Host, LabError> {
        self.hosts
            .iter()
            .find(|h| h.role == role)
            .ok_or(LabError::NoSuchRole(role))
    }

    /// Namespace name of `role`.
    pub fn ns(&self, role: Role) -> &str {
        &self.host(role).ns
    }

    /// Path of `role`'s namespace (`/run/netns/<name>`), for `setns(2)` or `nsenter --net=`.
    pub fn ns_path(&self, role: Role) -> PathBuf {
        Path::new("/run/netns").join(self.ns(role))
    }

    /// Roles of the real servers, in index order.
    pub fn real_servers(&self) -> Vec<Role> {
        self.roles(|r| matches!(r, Role::Real(_)))
    }

    /// Roles of the clients.
    pub fn clients(&self) -> Vec<Role> {
        self.roles(|r| matches!(r, Role::Client(_)))
    }

    /// Roles of the directors.
    pub fn directors(&self) -> Vec<Role> {
        self.roles(|r| matches!(r, Role::Director(_)))
    }

    fn roles(&self, keep: impl Fn(Role) -> bool) -> Vec<Role> {
        self.hosts
            .iter()
            .map(|h| h.role)
            .filter(|r| keep(*r))
            .collect()
    }

    /// The VIPs of this lab (the first is [`Lab::vip`]).
    pub fn vips(&self) -> &[Ipv4Addr] {
        &self.vips
    }

    /// The first VIP.
    ///
    /// # Panics
    /// If the lab was built with no VIP.
    pub fn vip(&self) -> Ipv4Addr {
        *self.vips.first().expect("the lab was built with a VIP")
    }

    /// Address of `role` on its first interface (`eth0`): the public address of a director.
    pub fn addr(&self, role: Role) -> Ipv4Addr {
        self.host(role)
            .ifaces
            .first()
            .expect("the switch has no address; ask for a host")
            .addr
    }

    /// The interface of `role` on `segment`, if it has one.
    pub fn iface(&self, role: Role, segment: Segment) -> Option<&Iface> {
        self.host(role).ifaces.iter().find(|i| i.segment == segment)
    }

    /// The lab's scratch directory (logs, config files); removed on drop unless a test
    /// panicked. Namespaces share the file system, so paths in it work inside the lab.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `contents` to `name` in [`Lab::dir`] and returns its path (e.g. an `lvs.cf`).
    pub fn write_file(&self, name: &str, contents: &str) -> Result<PathBuf, LabError> {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).map_err(|source| LabError::Io {
            what: format!("write {}", path.display()),
            source,
        })?;
        Ok(path)
    }

    fn netns_exec<I, S>(&self, role: Role, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new("ip");
        c.args(["netns", "exec"]).arg(self.ns(role)).args(args);
        c
    }

    /// Runs a command in `role`'s namespace with [`DEFAULT_TIMEOUT`]; returns its output
    /// whatever its exit status.
    pub fn exec<I, S>(&self, role: Role, args: I) -> Result<Output, LabError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.exec_timeout(role, args, DEFAULT_TIMEOUT)
    }

    /// [`Lab::exec`] with an explicit deadline.
    pub fn exec_timeout<I, S>(
        &self,
        role: Role,
        args: I,
        timeout: Duration,
    ) -> Result<Output, LabError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        cmd::run(&mut self.netns_exec(role, args), timeout)
    }

    /// Runs a command in `role`'s namespace; fails unless it exits 0; returns its stdout.
    pub fn run<I, S>(&self, role: Role, args: I) -> Result<String, LabError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = cmd::run_ok(&mut self.netns_exec(role, args), DEFAULT_TIMEOUT)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `ip -n <ns> ARGS...`, checked; returns stdout. E.g.
    /// `lab.ip(Role::Client(0), ["route", "add", "198.19.0.0/24", "via", "198.18.0.2"])`.
    pub fn ip<I, S>(&self, role: Role, args: I) -> Result<String, LabError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new("ip");
        c.arg("-n").arg(self.ns(role)).args(args);
        let out = cmd::run_ok(&mut c, DEFAULT_TIMEOUT)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Adds `cidr` (`"198.18.0.20/32"`) to `ifname` in `role`'s namespace.
    pub fn add_address(&self, role: Role, ifname: &str, cidr: &str) -> Result<(), LabError> {
        self.ip(role, ["addr", "add", cidr, "dev", ifname])
            .map(drop)
    }

    /// Adds `cidr` to `ifname` in `role`'s namespace on the alias label `ifname:n`, as
    /// `address = VIP eth0:1` in lvs.cf means (`ip addr add VIP/24 dev eth0 label eth0:1`).
    pub fn add_label(
        &self,
        role: Role,
        ifname: &str,
        n: usize,
        cidr: &str,
    ) -> Result<(), LabError> {
        let label = format!("{ifname}:{n}");
        self.ip(role, ["addr", "add", cidr, "dev", ifname, "label", &label])
            .map(drop)
    }

    /// Removes `cidr` from `ifname` in `role`'s namespace.
    pub fn del_address(&self, role: Role, ifname: &str, cidr: &str) -> Result<(), LabError> {
        self.ip(role, ["addr", "del", cidr, "dev", ifname])
            .map(drop)
    }

    /// Sets sysctls in `role`'s namespace: keys in dotted form (`net.ipv4.ip_forward`).
    pub fn sysctls(&self, role: Role, settings: &[(&str, &str)]) -> Result<(), LabError> {
        if settings.is_empty() {
            return Ok(());
        }
        // One shell per namespace; the values travel as arguments, never as script text.
        let script = r#"for kv in "$@"; do printf '%s\n' "${kv#*=}" > "/proc/sys/${kv%%=*}" || exit 1; done"#;
        let mut args = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            script.to_owned(),
            "sh".to_owned(),
        ];
        args.extend(
            settings
                .iter()
                .map(|(k, v)| format!("{}={v}", k.replace('.', "/"))),
        );
        self.run(role, &args).map(drop)
    }

    /// Sets one sysctl in `role`'s namespace.
    pub fn sysctl(&self, role: Role, key: &str, value: &str) -> Result<(), LabError> {
        self.sysctls(role, &[(key, value)])
    }

    fn read_sys(&self, role: Role, ifname: &str, attr: &str) -> Result<String, LabError> {
        let path = format!("/sys/class/net/{ifname}/{attr}");
        Ok(self.run(role, ["cat", &path])?.trim().to_owned())
    }

    /// MAC address of `ifname` in `role`'s namespace.
    pub fn mac(&self, role: Role, ifname: &str) -> Result<[u8; 6], LabError> {
        let text = self.read_sys(role, ifname, "address")?;
        parse_mac(&text).ok_or(LabError::Parse {
            what: "MAC address".to_owned(),
            text,
        })
    }

    /// Interface index of `ifname` in `role`'s namespace.
    pub fn ifindex(&self, role: Role, ifname: &str) -> Result<u32, LabError> {
        let text = self.read_sys(role, ifname, "ifindex")?;
        text.parse().map_err(|_| LabError::Parse {
            what: "ifindex".to_owned(),
            text,
        })
    }

    /// Sets the MTU of `role`'s interface on `segment` and of its switch port (a bridge
    /// forwards only frames that fit the egress port). E.g. 1600 on a director and its TUN
    /// real servers leaves room for the 20-byte IP-in-IP header.
    pub fn set_mtu(&self, role: Role, segment: Segment, mtu: u32) -> Result<(), LabError> {
        let iface = self
            .iface(role, segment)
            .ok_or(LabError::NoSuchRole(role))?
            .clone();
        let mtu = mtu.to_string();
        self.ip(
            Role::Switch,
            ["link", "set", "dev", &iface.switch_port, "mtu", &mtu],
        )?;
        self.ip(role, ["link", "set", "dev", &iface.name, "mtu", &mtu])
            .map(drop)
    }

    /// Pulls `role`'s cable on `segment`: its switch port goes down, so the host sees no
    /// carrier (a dead link, as in a failover test). [`Lab::plug`] puts it back.
    pub fn unplug(&self, role: Role, segment: Segment) -> Result<(), LabError> {
        self.port_state(role, segment, "down")
    }

    /// Puts back a cable pulled by [`Lab::unplug`].
    pub fn plug(&self, role: Role, segment: Segment) -> Result<(), LabError> {
        self.port_state(role, segment, "up")
    }

    fn port_state(&self, role: Role, segment: Segment, state: &str) -> Result<(), LabError> {
        let port = self
            .iface(role, segment)
            .ok_or(LabError::NoSuchRole(role))?
            .switch_port
            .clone();
        self.ip(Role::Switch, ["link", "set", "dev", &port, state])
            .map(drop)
    }

    /// Kills (SIGKILL) every process in `role`'s namespace, whoever started it: a crashed
    /// host, e.g. a director dying with its `pulse`, `lvsd` and `nanny`s. The namespace and
    /// its addresses stay. `Proc` guards of killed processes just report them exited.
    pub fn kill_all(&self, role: Role) {
        build::kill_all_in(self.ns(role));
    }

    /// Turns off checksum, segmentation and receive offloads of `role`'s interface on
    /// `segment`, both veth ends. Needs `ethtool`.
    pub fn disable_offloads(&self, role: Role, segment: Segment) -> Result<(), LabError> {
        let iface = self
            .iface(role, segment)
            .ok_or(LabError::NoSuchRole(role))?
            .clone();
        let features = [
            "rx", "off", "tx", "off", "sg", "off", "tso", "off", "gso", "off", "gro", "off",
        ];
        for (r, dev) in [(Role::Switch, &iface.switch_port), (role, &iface.name)] {
            let mut args = vec!["ethtool", "-K", dev.as_str()];
            args.extend(features);
            self.run(r, &args).map_err(|e| match e {
                LabError::Spawn { cmd, source } => LabError::Spawn {
                    cmd: format!("{cmd} (ethtool missing? apt-get install -y ethtool)"),
                    source,
                },
                other => other,
            })?;
        }
        Ok(())
    }

    /// Starts `args` in `role`'s namespace; stdout and stderr go to a log file in
    /// [`Lab::dir`]. The returned guard kills the process on drop.
    pub fn spawn<I, S>(&self, role: Role, args: I) -> Result<Proc<'_>, LabError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.spawn_inner(role, args).map(Proc::new)
    }

    fn spawn_inner<I, S>(&self, role: Role, args: I) -> Result<Spawned, LabError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let command = self.netns_exec(role, args);
        let program = command
            .get_args()
            .nth(3)
            .map(|p| {
                Path::new(p)
                    .file_name()
                    .unwrap_or(p)
                    .to_string_lossy()
                    .into_owned()
            })
            .unwrap_or_default();
        let n = self.next_log.fetch_add(1, Ordering::Relaxed);
        let label = format!("{}:{program}", role.short());
        let log = self
            .dir
            .join(format!("{n:02}-{}-{program}.log", role.short()));
        Spawned::start(command, label, log)
    }

    /// Text of the latest log of `program` run in `role`'s namespace (processes the lab
    /// started itself, like `lab-decap` on TUN real servers, included).
    pub fn log_of(&self, role: Role, program: &str) -> Option<String> {
        let suffix = format!("-{}-{program}.log", role.short());
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(&suffix))
            .collect();
        paths.sort();
        let bytes = std::fs::read(paths.last()?).ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Prints the tail of every log in [`Lab::dir`] to stderr (the test harness shows it for
    /// a failing test).
    pub fn dump_logs(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths
            .iter()
            .filter(|p| p.extension() == Some(OsStr::new("log")))
        {
            let text = std::fs::read(path)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("--- {} (last {} lines)", path.display(), tail.len());
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        build::teardown(self);
    }
}

/// Calls `cond` every `every` until it returns true or `timeout` passes; returns the last
/// answer. The standard bounded wait of lab tests.
pub fn wait_until(timeout: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// Whether lab tests can run here: root and iproute2's `ip`. When they cannot, prints
/// `SKIP <test>: <why>` and returns false, so that the test returns early:
///
/// ```no_run
/// if !tests::lab::privileged("lab_routed") {
///     return;
/// }
/// ```
pub fn privileged(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false);
    if !root {
        eprintln!("SKIP {test}: the network lab needs root (CAP_NET_ADMIN); CI runs as root");
        return false;
    }
    let ip = cmd::run(Command::new("ip").arg("-V"), DEFAULT_TIMEOUT);
    if !matches!(ip, Ok(ref o) if o.status.success()) {
        eprintln!("SKIP {test}: iproute2's `ip` is missing (apt-get install -y iproute2)");
        return false;
    }
    true
}

/// Whether a namespace of this name exists.
pub fn ns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse() {
        assert_eq!(
            parse_mac("02:00:c6:12:00:0b"),
            Some([2, 0, 0xc6, 0x12, 0, 0x0b])
        );
        assert_eq!(parse_mac("02:00:c6:12:00"), None);
        assert_eq!(parse_mac("02:00:c6:12:00:0b:01"), None);
        assert_eq!(parse_mac("zz:00:c6:12:00:0b"), None);
    }

    #[test]
    fn role_names_fit_interface_names() {
        for r in [
            Role::Switch,
            Role::Client(49),
            Role::Director(1),
            Role::Real(39),
        ] {
            assert!(r.short().len() <= 4, "{r:?}");
        }
        assert_eq!(Segment::Private.addr(254), NAT_ROUTER);
    }
}
