//! The kernel-side guard: an nftables table that drops, in the director's own stack, what
//! the XDP steering takes from it while lvsd runs.
//!
//! While lvsd runs, packets of virtual services and NAT replies never reach the kernel's
//! stack: the XDP program steers them to the engine. The program is held by a bpf_link that
//! dies with the process. If lvsd dies without cleaning up (SIGKILL, a crash, pulse
//! SIGKILLed and lvsd with it through `PR_SET_PDEATHSIG`), the host still holds the VIPs
//! on its alias labels, and until the partner's gratuitous ARPs move the clients, their
//! next segments reach this kernel, which answers them with resets: every established
//! connection dies although the partner holds it in its synced table. With the guard, the
//! kernel drops those segments instead; the clients retransmit, their retransmissions reach
//! the partner after its ARPs, and the connections carry on.
//!
//! The table (`inet lvsd_guard`) holds three sets, written whole in one nft transaction
//! whenever the services change (from a thread of its own: nft never stalls forwarding):
//!
//! - `services`: VIP . protocol . port of every virtual service, dropped on input;
//! - `vips`: VIP . protocol of services on every port (fwmark services), dropped on input;
//! - `replies`: real server . protocol . port of every NAT real server, dropped when the
//!   kernel would forward them (untranslated, they would make the client reset the
//!   connection at the real server).
//!
//! Loopback traffic is left alone. The sets list every configured service whatever the
//! role: a standby does not hold the VIPs, so no such packet reaches it. A clean exit
//! removes the table (pulse releases the VIPs and makes lvsd standby before it stops it);
//! after a death, the next lvsd replaces it. When `nft` is missing or refuses the table,
//! lvsd says so once at error level and forwards as before, without the guard.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use ipvs_core::types::Protocol;
use tracing::{error, info};

use super::state::Steer;

/// The nftables table lvsd owns.
pub const TABLE: &str = "lvsd_guard";

/// What the guard thread is asked to do.
enum Ask {
    /// Shared with the worker's copy: a big set is neither cloned nor freed on the worker.
    Install(Arc<BTreeSet<Steer>>),
    Remove,
}

/// The worker's handle on the guard thread.
#[derive(Debug)]
pub struct Guard {
    tx: Option<mpsc::Sender<Ask>>,
    last: Option<Arc<BTreeSet<Steer>>>,
    thread: Option<JoinHandle<()>>,
}

impl Guard {
    /// Starts the guard thread (nothing is installed until [`Guard::want`]).
    pub fn start() -> Guard {
        let (tx, rx) = mpsc::channel();
        match std::thread::Builder::new()
            .name("lvsd-guard".into())
            .spawn(move || run(&rx))
        {
            Ok(h) => Guard {
                tx: Some(tx),
                last: None,
                thread: Some(h),
            },
            Err(e) => {
                error!("cannot start the kernel-side guard's thread: {e}; running without it");
                Guard {
                    tx: None,
                    last: None,
                    thread: None,
                }
            }
        }
    }

    /// Asks for the guard to cover `set` (the steering entries of every configured
    /// service); nothing happens when it already does.
    pub fn want(&mut self, set: BTreeSet<Steer>) {
        if self.last.as_deref() == Some(&set) {
            return;
        }
        let set = Arc::new(set);
        if let Some(tx) = &self.tx {
            let _ = tx.send(Ask::Install(Arc::clone(&set)));
        }
        // The set replaced is freed by the guard thread, which holds it until it has
        // installed this one.
        self.last = Some(set);
    }

    /// Stops the thread; removes the table first unless `keep`.
    pub fn shutdown(&mut self, keep: bool) {
        if let Some(tx) = self.tx.take() {
            if !keep {
                let _ = tx.send(Ask::Remove);
            }
            drop(tx);
        }
        if let Some(h) = self.thread.take()
            && h.join().is_err()
        {
            error!("the kernel-side guard's thread panicked");
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // An unplanned drop (an error path) keeps the table: it is what protects the
        // connections when lvsd stops without a clean shutdown.
        self.shutdown(true);
    }
}

fn run(rx: &mpsc::Receiver<Ask>) {
    let mut failing: Option<String> = None;
    let mut installed = false;
    // The last set asked for, kept until the next one comes: the worker then drops its
    // own reference and this thread frees the set.
    let mut _held: Option<Ask> = None;
    while let Ok(mut ask) = rx.recv() {
        // Only the latest wish matters.
        while let Ok(next) = rx.try_recv() {
            ask = next;
        }
        let (text, what) = match &ask {
            Ask::Install(set) => (script(set), "install"),
            Ask::Remove if installed => (remove_script(), "remove"),
            Ask::Remove => continue,
        };
        match nft(&text) {
            Ok(()) => {
                if let Ask::Install(set) = &ask {
                    if !installed || failing.is_some() {
                        info!(
                            table = TABLE,
                            entries = set.len(),
                            "kernel-side guard in place: if lvsd dies, this kernel drops \
                             virtual-service packets instead of resetting them"
                        );
                    }
                    installed = true;
                } else {
                    installed = false;
                }
                failing = None;
            }
            Err(e) => {
                // Once per distinct failure: the same error on every reload says nothing new.
                if failing.as_deref() != Some(e.as_str()) {
                    error!(
                        table = TABLE,
                        "cannot {what} the kernel-side guard (nftables): {e}; forwarding \
                         goes on, but if lvsd dies while this director holds the VIPs, its \
                         kernel will answer the clients with resets"
                    );
                }
                failing = Some(e);
            }
        }
        _held = Some(ask);
    }
}

/// Runs `nft -f -` with `text`; the error is nft's own message.
fn nft(text: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "nft not found (install nftables)".to_string(),
            _ => format!("cannot run nft: {e}"),
        })?;
    // A write error (nft quit early) is reported by nft's own status and message below.
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        written
            .transpose()
            .map(drop)
            .map_err(|e| format!("cannot write to nft: {e}"))
    } else {
        let msg = String::from_utf8_lossy(&out.stderr);
        let first = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        Err(format!("nft failed ({}): {first}", out.status))
    }
}

fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// The nft script that replaces the guard table with one covering `set`, in one
/// transaction (`table` first so that `delete` never fails on a missing table).
pub fn script(set: &BTreeSet<Steer>) -> String {
    let mut services = Vec::new();
    let mut vips = Vec::new();
    let mut replies = Vec::new();
    for e in set {
        match *e {
            Steer::Service(a, 0, p) => vips.push(format!("{a} . {}", proto(p))),
            Steer::Service(a, port, p) => services.push(format!("{a} . {} . {port}", proto(p))),
            Steer::Reply(a, port, p) => replies.push(format!("{a} . {} . {port}", proto(p))),
        }
    }
    let elements = |v: &[String]| {
        if v.is_empty() {
            String::new()
        } else {
            format!("\t\telements = {{ {} }}\n", v.join(", "))
        }
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "table inet {TABLE}\n\
         delete table inet {TABLE}\n\
         table inet {TABLE} {{\n\
         \tset services {{\n\t\ttype ipv4_addr . inet_proto . inet_service\n{}\t}}\n\
         \tset vips {{\n\t\ttype ipv4_addr . inet_proto\n{}\t}}\n\
         \tset replies {{\n\t\ttype ipv4_addr . inet_proto . inet_service\n{}\t}}\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority filter - 10; policy accept;\n\
         \t\tiifname \"lo\" accept\n\
         \t\tip daddr . meta l4proto . th dport @services counter drop\n\
         \t\tip daddr . meta l4proto @vips counter drop\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter - 10; policy accept;\n\
         \t\tip saddr . meta l4proto . th sport @replies counter drop\n\
         \t}}\n\
         }}\n",
        elements(&services),
        elements(&vips),
        elements(&replies),
    );
    s
}

/// The nft script that removes the guard table (and does not fail when it is gone).
pub fn remove_script() -> String {
    format!("table inet {TABLE}\ndelete table inet {TABLE}\n")
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn script_lists_each_kind_in_its_set() {
        let vip = Ipv4Addr::new(198, 18, 1, 10);
        let rs = Ipv4Addr::new(198, 19, 0, 2);
        let set = BTreeSet::from([
            Steer::Service(vip, 80, Protocol::Tcp),
            Steer::Service(vip, 53, Protocol::Udp),
            Steer::Service(vip, 0, Protocol::Tcp),
            Steer::Reply(rs, 8080, Protocol::Tcp),
        ]);
        let s = script(&set);
        assert!(s.starts_with("table inet lvsd_guard\ndelete table inet lvsd_guard\n"));
        assert!(s.contains("elements = { 198.18.1.10 . udp . 53, 198.18.1.10 . tcp . 80 }"));
        assert!(s.contains("elements = { 198.18.1.10 . tcp }"));
        assert!(s.contains("elements = { 198.19.0.2 . tcp . 8080 }"));
        assert!(s.contains("iifname \"lo\" accept"));
    }

    #[test]
    fn empty_sets_have_no_elements_line() {
        let s = script(&BTreeSet::new());
        assert!(!s.contains("elements"));
        assert_eq!(s.matches("set ").count(), 3);
    }
}
