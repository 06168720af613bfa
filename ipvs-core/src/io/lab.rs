//! Helpers for privileged tests and benchmarks (network-namespace labs). Safe wrappers around
//! `sys`; nothing here is used by the data path itself.

use std::path::Path;
use std::time::Duration;

use crate::io::sys::net;
pub use crate::io::sys::net::PacketSocket;

/// Whether the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    net::euid() == 0
}

/// Interface index of `name` in the calling thread's network namespace.
pub fn ifindex(name: &str) -> Option<u32> {
    net::ifindex(name)
}

/// Interface name of `index` in the calling thread's network namespace.
pub fn ifname(index: u32) -> Option<String> {
    net::ifname(index)
}

/// Receive queues of `name` as the driver reports them.
pub fn rx_queue_count(name: &str) -> Option<u32> {
    net::rx_queue_count(name)
}

/// Moves the calling thread into the named network namespace (`/run/netns/NAME`). Call it
/// first thing in a thread dedicated to that namespace.
pub fn enter_netns(name: &str) -> std::io::Result<()> {
    net::enter_netns(&Path::new("/run/netns").join(name))
}

/// User + system CPU time consumed so far by the thread `tid` of this process, from
/// `/proc/self/task/TID/stat` (clock ticks converted at 100 Hz, the Linux USER_HZ).
pub fn thread_cpu_time(tid: u32) -> std::io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| std::io::Error::other("malformed stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> std::io::Result<u64> {
        f.get(i)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("malformed stat"))
    };
    // `rest` starts at field 3 (state), so field n is index n - 3.
    let t = ticks(14 - 3)? + ticks(15 - 3)?;
    Ok(Duration::from_millis(t * 10))
}

/// The calling thread's kernel thread id.
pub fn gettid() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|s| s.parse().ok())
        })
        .unwrap_or(0)
}

/// A network namespace created with `ip netns add` and deleted (with everything in it) when
/// dropped, also when a test fails.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `name` (pick a unique one: pid + counter).
    pub fn new(name: &str) -> std::io::Result<Netns> {
        run("ip", &["netns", "add", name])?;
        let ns = Netns {
            name: name.to_owned(),
        };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `argv` inside the namespace (`ip netns exec`), failing on a non-zero exit;
    /// returns stdout.
    pub fn exec(&self, argv: &[&str]) -> std::io::Result<String> {
        let mut full = vec!["netns", "exec", self.name.as_str()];
        full.extend_from_slice(argv);
        run("ip", &full)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// Two namespaces joined by a veth pair: `client` (`vc`, 198.18.0.1/24) and `director`
/// (`vd`, 198.18.0.2/24 plus the VIP 198.18.0.10/32), both up. Used by the io lab tests and
/// `examples/xdp_bench.rs`; dropping it deletes both namespaces (and so the pair).
#[derive(Debug)]
pub struct VethPair {
    /// The client side.
    pub client: Netns,
    /// The director side (where the XDP program goes, on `vd`).
    pub director: Netns,
    /// MAC of `vc`.
    pub client_mac: [u8; 6],
    /// MAC of `vd`.
    pub director_mac: [u8; 6],
}

impl VethPair {
    /// Builds the pair in namespaces `<id>c` and `<id>d` (pick a unique `id`).
    pub fn new(id: &str) -> std::io::Result<VethPair> {
        let client = Netns::new(&format!("{id}c"))?;
        let director = Netns::new(&format!("{id}d"))?;
        let veth = [
            "ip", "link", "add", "vc", "type", "veth", "peer", "name", "vd",
        ];
        client.exec(&[&veth[..], &["netns", director.name()]].concat())?;
        client.exec(&["ip", "addr", "add", "198.18.0.1/24", "dev", "vc"])?;
        client.exec(&["ip", "link", "set", "vc", "up"])?;
        director.exec(&["ip", "addr", "add", "198.18.0.2/24", "dev", "vd"])?;
        director.exec(&["ip", "addr", "add", "198.18.0.10/32", "dev", "vd"])?;
        director.exec(&["ip", "link", "set", "vd", "up"])?;
        let client_mac = parse_mac(&client.exec(&["cat", "/sys/class/net/vc/address"])?)?;
        let director_mac = parse_mac(&director.exec(&["cat", "/sys/class/net/vd/address"])?)?;
        Ok(VethPair {
            client,
            director,
            client_mac,
            director_mac,
        })
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` as found in `/sys/class/net/IF/address`.
pub fn parse_mac(s: &str) -> std::io::Result<[u8; 6]> {
    let bad = || std::io::Error::other(format!("bad MAC {s:?}"));
    let mut m = [0u8; 6];
    let mut parts = s.trim().split(':');
    for o in &mut m {
        *o = u8::from_str_radix(parts.next().ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(m)
}

/// Runs a command, failing with its stderr on a non-zero exit; returns stdout.
pub fn run(prog: &str, args: &[&str]) -> std::io::Result<String> {
    let out = std::process::Command::new(prog).args(args).output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "{prog} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `f` on a fresh thread inside namespace `ns` and returns its result.
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    in_netns_spawn(ns, f)
        .join()
        .map_err(|_| std::io::Error::other("namespace thread panicked"))?
}

/// Like [`in_netns`] but returns the thread handle at once; joining yields the result, or an
/// error if the namespace could not be entered.
pub fn in_netns_spawn<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<std::io::Result<T>> {
    let ns = ns.to_owned();
    std::thread::spawn(move || -> std::io::Result<T> {
        enter_netns(&ns)?;
        Ok(f())
    })
}
