//! Building a lab from a [`LabBuilder`], and tearing it down.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::{
    DEFAULT_TIMEOUT, Host, Iface, Lab, LabBuilder, LabError, MAX_CLIENTS, MAX_DIRECTORS,
    MAX_REAL_SERVERS, Mode, NAT_ROUTER, NEXT_LAB, PREFIX, Role, Segment, cmd,
};

/// Prefix of every lab namespace name.
const NS_PREFIX: &str = "lvs-";

fn in_benchmark_range(a: Ipv4Addr) -> bool {
    let [x, y, _, _] = a.octets();
    x == 198 && (y == 18 || y == 19)
}

fn validate(b: &LabBuilder) -> Result<(), LabError> {
    let bad = |m: String| Err(LabError::Topology(m));
    if b.clients > MAX_CLIENTS {
        return bad(format!("{} clients (at most {MAX_CLIENTS})", b.clients));
    }
    if b.directors > MAX_DIRECTORS {
        return bad(format!(
            "{} directors (at most {MAX_DIRECTORS})",
            b.directors
        ));
    }
    if b.real.len() > MAX_REAL_SERVERS {
        return bad(format!(
            "{} real servers (at most {MAX_REAL_SERVERS})",
            b.real.len()
        ));
    }
    for d in [b.vip_on, b.nat_router_on].into_iter().flatten() {
        if d >= b.directors {
            return bad(format!(
                "floating addresses on director {d}, but the lab has {} (use floating_on(None))",
                b.directors
            ));
        }
    }
    for vip in &b.vips {
        if !in_benchmark_range(*vip) {
            return bad(format!("VIP {vip} is outside 198.18.0.0/15"));
        }
    }
    Ok(())
}

fn iface(name: &str, segment: Segment, host: u8, port: String) -> Iface {
    let addr = segment.addr(host);
    let [a, b, c, d] = addr.octets();
    Iface {
        name: name.to_owned(),
        addr,
        mac: [0x02, 0x00, a, b, c, d],
        segment,
        switch_port: port,
    }
}

/// Offsets of the address plan within a segment (see the module doc and `tests/README.md`).
fn plan(b: &LabBuilder, id: &str) -> Vec<Host> {
    let host = |role: Role, ifaces: Vec<Iface>, mode: Option<Mode>| Host {
        role,
        ns: format!("{id}-{}", role.short()),
        ifaces,
        mode,
    };
    let mut hosts = vec![host(Role::Switch, Vec::new(), None)];
    for i in 0..b.clients {
        let r = Role::Client(i);
        let a = 200 + u8::try_from(i).expect("validated: at most 50 clients");
        hosts.push(host(
            r,
            vec![iface("eth0", Segment::Public, a, r.short())],
            None,
        ));
    }
    for j in 0..b.directors {
        let r = Role::Director(j);
        let a = 2 + u8::try_from(j).expect("validated: at most 2 directors");
        let ifaces = vec![
            iface("eth0", Segment::Public, a, format!("{}p", r.short())),
            iface("eth1", Segment::Private, a, format!("{}q", r.short())),
        ];
        hosts.push(host(r, ifaces, None));
    }
    for (k, mode) in b.real.iter().enumerate() {
        let r = Role::Real(k);
        let k = u8::try_from(k).expect("validated: at most 40 real servers");
        let i = match mode {
            Mode::Nat => iface("eth0", Segment::Private, 11 + k, r.short()),
            Mode::Dr | Mode::Tun => iface("eth0", Segment::Public, 51 + k, r.short()),
        };
        hosts.push(host(r, vec![i], Some(*mode)));
    }
    hosts
}

fn sysctls_for(host: &Host) -> Vec<(&'static str, &'static str)> {
    let mut s = vec![
        // Quiet segments: no router solicitations or MLD in captures.
        ("net.ipv6.conf.all.disable_ipv6", "1"),
        ("net.ipv6.conf.default.disable_ipv6", "1"),
    ];
    if host.role == Role::Switch {
        return s;
    }
    // Before the interfaces exist, so that `default` reaches them: a director answers for
    // addresses it does not own, a TUN real server receives on tun0 what routes via eth0.
    s.extend([
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.default.rp_filter", "0"),
    ]);
    match (host.role, host.mode) {
        (Role::Director(_), _) => s.extend([
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv4.conf.all.send_redirects", "0"),
            ("net.ipv4.conf.default.send_redirects", "0"),
        ]),
        (_, Some(Mode::Dr | Mode::Tun)) => s.extend([
            // The VIP sits on lo: never answer ARP for it, never announce it.
            ("net.ipv4.conf.all.arp_ignore", "1"),
            ("net.ipv4.conf.all.arp_announce", "2"),
        ]),
        _ => {}
    }
    s
}

pub(super) fn build(b: LabBuilder) -> Result<Lab, LabError> {
    validate(&b)?;
    static REAP: Once = Once::new();
    REAP.call_once(reap_stale);

    let n = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
    let id = format!("{NS_PREFIX}{}-{n}", std::process::id());
    let dir = std::env::temp_dir().join(&id);
    std::fs::create_dir_all(&dir).map_err(|source| LabError::Io {
        what: format!("create {}", dir.display()),
        source,
    })?;
    let mut lab = Lab {
        hosts: plan(&b, &id),
        id,
        vips: b.vips.clone(),
        dir,
        created: Vec::new(),
        own: Default::default(),
        next_log: AtomicUsize::new(0),
        keep_dir: AtomicBool::new(false),
    };
    // From here on, an error return drops `lab`, which deletes what was created.
    let hosts = lab.hosts.clone();
    for h in &hosts {
        ip(&["netns", "add", &h.ns])?;
        lab.created.push(h.ns.clone());
        lab.ip(h.role, ["link", "set", "lo", "up"])?;
        lab.sysctls(h.role, &sysctls_for(h))?;
    }
    for seg in [Segment::Public, Segment::Private] {
        let br = seg.bridge();
        lab.ip(
            Role::Switch,
            [
                "link",
                "add",
                br,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
                "mcast_snooping",
                "0",
            ],
        )?;
        lab.ip(Role::Switch, ["link", "set", br, "up"])?;
    }
    for h in &hosts {
        for i in &h.ifaces {
            plug(&lab, h, i)?;
        }
    }
    for h in &hosts {
        configure_host(&lab, &b, h)?;
    }
    if !b.offloads {
        for h in &hosts {
            for i in &h.ifaces {
                lab.disable_offloads(h.role, i.segment)?;
            }
        }
    }
    start_decaps(&lab, &b)?;
    Ok(lab)
}

/// One veth pair: created in the switch namespace, its peer born in the host namespace.
fn plug(lab: &Lab, h: &Host, i: &Iface) -> Result<(), LabError> {
    let mac = i
        .mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let port = i.switch_port.as_str();
    lab.ip(
        Role::Switch,
        [
            "link", "add", port, "type", "veth", "peer", "name", &i.name, "netns", &h.ns,
        ],
    )?;
    lab.ip(
        Role::Switch,
        ["link", "set", port, "master", i.segment.bridge(), "up"],
    )?;
    lab.ip(
        h.role,
        ["link", "set", "dev", &i.name, "address", &mac, "up"],
    )?;
    let cidr = format!("{}/{PREFIX}", i.addr);
    lab.add_address(h.role, &i.name, &cidr)
}

fn configure_host(lab: &Lab, b: &LabBuilder, h: &Host) -> Result<(), LabError> {
    match (h.role, h.mode) {
        (Role::Director(j), _) => {
            // As an operator's director (and pulse) holds them: on alias labels, in the
            // interface's subnet (`address = VIP eth0:1`, `nat_router = IP eth1:1`).
            if b.vip_on == Some(j) {
                for (k, vip) in b.vips.iter().enumerate() {
                    lab.add_label(h.role, "eth0", k + 1, &format!("{vip}/{PREFIX}"))?;
                }
            }
            if b.nat_router_on == Some(j) {
                lab.add_label(h.role, "eth1", 1, &format!("{NAT_ROUTER}/{PREFIX}"))?;
            }
        }
        (_, Some(Mode::Nat)) => {
            let gw = NAT_ROUTER.to_string();
            lab.ip(h.role, ["route", "add", "default", "via", &gw])?;
        }
        (_, Some(mode @ (Mode::Dr | Mode::Tun))) => {
            for vip in &b.vips {
                lab.add_address(h.role, "lo", &format!("{vip}/32"))?;
            }
            if mode == Mode::Tun {
                lab.ip(h.role, ["tuntap", "add", "mode", "tun", "dev", "tun0"])?;
                lab.ip(h.role, ["link", "set", "tun0", "up"])?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn start_decaps(lab: &Lab, b: &LabBuilder) -> Result<(), LabError> {
    let tun: Vec<Role> = lab
        .hosts
        .iter()
        .filter(|h| h.mode == Some(Mode::Tun))
        .map(|h| h.role)
        .collect();
    if tun.is_empty() {
        return Ok(());
    }
    let decap = b.decap.clone().unwrap_or_else(|| crate::bin("lab-decap"));
    for role in tun {
        // Verbose: the first packets are logged, so a test can tell that lab-decap delivered.
        let args = [
            decap.as_os_str(),
            "--tun".as_ref(),
            "tun0".as_ref(),
            "--verbose".as_ref(),
        ];
        let mut p = lab.spawn_inner(role, args)?;
        let ready = p.wait_for_log("ready", DEFAULT_TIMEOUT);
        lab.own
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(p);
        ready?;
    }
    Ok(())
}

/// `ip ARGS` in the root namespace's `ip` binary: only `netns add|del|pids`, which manage
/// namespaces and configure nothing in the root namespace.
fn ip(args: &[&str]) -> Result<String, LabError> {
    let out = cmd::run_ok(Command::new("ip").args(args), DEFAULT_TIMEOUT)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Kills every process in namespace `ns`; bounded.
pub(super) fn kill_all_in(ns: &str) {
    let me = std::process::id().to_string();
    for _ in 0..50 {
        let pids: Vec<String> = match ip(&["netns", "pids", ns]) {
            Ok(text) => text
                .split_whitespace()
                .filter(|p| *p != me)
                .map(str::to_owned)
                .collect(),
            Err(_) => return,
        };
        if pids.is_empty() {
            return;
        }
        let mut c = Command::new("sh");
        c.args(["-c", "kill -s KILL \"$@\" 2>/dev/null", "sh"])
            .args(&pids);
        let _ = cmd::run(&mut c, DEFAULT_TIMEOUT);
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("lab teardown: processes still alive in {ns} after SIGKILL");
}

fn delete_ns(ns: &str) {
    kill_all_in(ns);
    if let Err(e) = ip(&["netns", "del", ns]) {
        eprintln!("lab teardown: {e}");
    }
}

pub(super) fn teardown(lab: &mut Lab) {
    // A test that panicked with a lab it built itself (not through `LabBuilder::run`, which
    // has printed them already): show what its processes said.
    if std::thread::panicking() && !lab.keep_dir.load(Ordering::Relaxed) {
        lab.dump_logs();
    }
    // 1. The processes the lab started itself (tests' own `Proc`s were dropped before the
    //    lab: they borrow it).
    lab.own
        .get_mut()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    // 2. Whatever else still lives in a lab namespace (children of daemons), then 3. the
    //    namespaces; their veths and bridges go with them.
    for ns in lab.created.iter().rev() {
        delete_ns(ns);
    }
    lab.created.clear();
    if std::thread::panicking() || lab.keep_dir.load(Ordering::Relaxed) {
        eprintln!("lab {}: logs kept in {}", lab.id, lab.dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&lab.dir);
    }
}

/// Parses `lvs-<pid>-<n>-<role>` into the pid.
fn lab_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NS_PREFIX)?;
    let mut parts = rest.splitn(3, '-');
    let pid = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u64>().ok()?;
    parts.next().filter(|r| !r.is_empty())?;
    Some(pid)
}

/// Deletes namespaces of labs whose test process no longer exists (killed before its
/// teardown ran).
fn reap_stale() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    let me = std::process::id();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = lab_pid(&name)
            && pid != me
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            eprintln!("lab: reaping stale namespace {name} (pid {pid} is gone)");
            delete_ns(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_names_parse() {
        assert_eq!(lab_pid("lvs-123-4-rs0"), Some(123));
        assert_eq!(lab_pid("lvs-123-4-"), None);
        assert_eq!(lab_pid("lvs-123-x-sw"), None);
        assert_eq!(lab_pid("lvs-abc-4-sw"), None);
        assert_eq!(lab_pid("other-123-4-sw"), None);
    }

    #[test]
    fn plan_follows_the_address_plan() {
        let b = Lab::builder()
            .clients(2)
            .directors(2)
            .real_servers(Mode::Nat, 2)
            .real_servers(Mode::Dr, 1)
            .real_servers(Mode::Tun, 1);
        validate(&b).unwrap();
        let hosts = plan(&b, "lvs-1-0");
        let addr = |r: Role| hosts.iter().find(|h| h.role == r).unwrap().ifaces[0].addr;
        assert_eq!(addr(Role::Client(1)), Ipv4Addr::new(198, 18, 0, 201));
        assert_eq!(addr(Role::Director(1)), Ipv4Addr::new(198, 18, 0, 3));
        assert_eq!(addr(Role::Real(1)), Ipv4Addr::new(198, 19, 0, 12));
        assert_eq!(addr(Role::Real(2)), Ipv4Addr::new(198, 18, 0, 53));
        assert_eq!(addr(Role::Real(3)), Ipv4Addr::new(198, 18, 0, 54));
        let d1 = hosts.iter().find(|h| h.role == Role::Director(1)).unwrap();
        assert_eq!(d1.ifaces[1].addr, Ipv4Addr::new(198, 19, 0, 3));
        assert_eq!(d1.ifaces[1].mac, [2, 0, 198, 19, 0, 3]);
        for h in &hosts {
            for i in &h.ifaces {
                assert!(i.switch_port.len() <= 15 && i.name.len() <= 15);
                assert!(in_benchmark_range(i.addr));
            }
        }
    }

    #[test]
    fn bad_topologies_are_refused() {
        assert!(validate(&Lab::builder().directors(3)).is_err());
        assert!(validate(&Lab::builder().directors(0)).is_err());
        assert!(validate(&Lab::builder().directors(0).floating_on(None)).is_ok());
        assert!(validate(&Lab::builder().vips(&[Ipv4Addr::new(10, 0, 0, 1)])).is_err());
        assert!(validate(&Lab::builder().real_servers(Mode::Nat, 41)).is_err());
    }
}
