//! `io`: the only part of `ipvs-core` that touches sockets, rings and BPF. It moves frames
//! between interfaces and a user callback; it knows nothing of services, connections or
//! verdict logic (that is the engine's job, which plugs in as a [`FrameHandler`]).
//!
//! | module | job |
//! |---|---|
//! | [`bpf`] | the XDP steering program: an eBPF assembler ([`bpf::asm`]), the program ([`bpf::prog`]), its maps ([`Steering`]) and bpf_link attachment ([`bpf::XdpAttachment`]) |
//! | [`xdp`] | the AF_XDP data path ([`Datapath`]): sockets, UMEMs, batched ring I/O, poll(2) |
//! | [`frame`] | what the callback sees: [`FrameBuf`], [`Ingress`]; what it returns: [`Verdict`] (the engine's types) |
//! | `lab` | (feature `testing`) helpers for tests and benchmarks: run a closure inside a network namespace, a raw AF_PACKET socket, thread CPU time |
//! | `sys` | every `unsafe` block of the crate: bpf(2), AF_XDP rings, mmap, poll, setns, AF_PACKET |
//!
//! # How an engine plugs in
//!
//! ```no_run
//! # use ipvs_core::io::{Datapath, DatapathConfig, FrameBuf, Ingress, Verdict};
//! # use ipvs_core::types::Protocol;
//! # use std::time::Duration;
//! # fn main() -> Result<(), ipvs_core::io::IoError> {
//! let mut dp = Datapath::new(&DatapathConfig::new(["eth0"]))?;
//! dp.steering().add_service("198.18.0.10".parse().unwrap(), 80, Protocol::Tcp)?;
//! dp.steering().add_reply("198.19.0.2".parse().unwrap(), 8080, Protocol::Tcp)?; // NAT
//! loop {
//!     let timeout = Some(Duration::from_millis(100)); // engine.poll_timeout() - now
//!     dp.poll(timeout, &mut |ingress: Ingress, frame: &mut FrameBuf<'_>| {
//!         // engine.handle_frame(now, ingress.ifindex, frame) rewrites in place and decides:
//!         Verdict::Tx { ifindex: ingress.ifindex }
//!     })?;
//!     // engine.drain_outbox(|ifindex, f| { dp.send(ifindex, f); }); dp.flush()?;
//!     // engine.handle_timeout(now) when its deadline passed
//! #   break;
//! }
//! # Ok(()) }
//! ```
//!
//! [`Steering`] is `Clone + Send + Sync`: the control plane (lvsd) keeps a clone and updates
//! the maps while the worker thread runs `poll`.
//!
//! # Decisions and measured numbers
//!
//! * **AF_XDP, not the AF_PACKET fallback.** AF_XDP works on veth (Linux 6.18) in native XDP
//!   mode with copy-mode sockets (veth has no zero-copy), so the TPACKET_V3 + nftables fallback
//!   was not built. `Datapath::modes` reports the mode per interface; generic mode is used only
//!   when a driver refuses native mode.
//! * **"Pass to kernel" is count-and-drop** ([`Verdict::NotMine`]): an AF_XDP frame cannot be
//!   handed back to the stack; the program steers only service and NAT-reply traffic, so this
//!   is rare. Re-injection (AF_PACKET or TAP) can be added behind the same verdict if needed.
//! * **fwmark services** cannot be classified in XDP (marks are set later, by netfilter): the
//!   port-0 catch-all entry of an address ([`Steering::add_service`] with port 0) stands in.
//! * **One worker per director** polls every (interface, queue) socket. To scale out, build one
//!   `Datapath`-like worker per queue (each owning the sockets of its queue, so flows stay on
//!   the worker whose queue RSS chose) sharing one [`Steering`]; the XSKMAP is already indexed
//!   by queue.
//! * **Measured** with `examples/xdp_bench.rs` (veth pair between two namespaces, 60-byte
//!   UDP frames to VIP:9 dropped in the callback, one copy-mode socket on queue 0, release
//!   build). The 2-core VM was loaded by concurrent compilations (load average 7-8), so the
//!   figures are lower bounds and vary from run to run:
//!
//!   | sender (client namespace) | XDP mode | offered | received by the callback |
//!   |---|---|---|---|
//!   | AF_PACKET, one `send` per frame | native | 150-235 kpps | 99.7-100 % |
//!   | AF_PACKET | generic | 230 kpps | 99.7 % |
//!   | AF_XDP tx (`Datapath::send`, batches of 64) | native | 400-570 kpps | 390-490 kpps (87-97 %) |
//!   | AF_XDP tx | generic | 490 kpps | 465 kpps (95 %) |
//!
//!   Losses show up as `fill_ring_empty` in [`Datapath::kernel_drops`]: the worker was
//!   descheduled while sender, softirq and worker shared two cores. **Idle cost**: a worker in
//!   `poll` with a 100 ms timeout (50 wake-ups in 5 s) used 0-10 ms of CPU over 5 s, which is
//!   0 or 1 clock tick of `/proc/self/task/TID/stat` (≤ 0.2 %, the resolution of the measure).
//!
//! # Contracts
//!
//! * Nothing here panics on packet content: frames are byte windows with checked bounds.
//! * A [`Datapath`] is used by one thread (it is `Send`, not shared); the caller chooses the
//!   network namespace by creating it in a thread that is in that namespace.
//! * Dropping a [`Datapath`] detaches its programs and frees everything; so does process death
//!   (bpf_link semantics).

pub mod bpf;
pub mod frame;
#[cfg(any(test, feature = "testing"))]
pub mod lab;
#[allow(unsafe_code)]
mod sys;
pub mod xdp;

use std::io;

use thiserror::Error;

pub use bpf::{Steering, XdpMode, XdpModeChoice};
pub use frame::{FrameBuf, FrameHandler, Ingress, Verdict};
/// A raw AF_PACKET socket on one interface (send-arp's gratuitous ARP; lab capture).
pub use sys::net::PacketSocket;
/// `SCHED_RR` for the calling process (pulse's heartbeat loop).
pub use sys::net::set_realtime;
pub use xdp::{Datapath, DatapathConfig, DatapathStats, Queues, Waker};

/// Errors of the I/O layer.
#[derive(Debug, Error)]
pub enum IoError {
    /// The interface does not exist in the calling thread's network namespace.
    #[error("no interface named {ifname:?} in this network namespace")]
    NoSuchInterface {
        /// Interface name.
        ifname: String,
    },
    /// An XDP program is already attached (another director instance, or a leftover).
    #[error(
        "interface {ifname} already has an XDP program attached (another lvsd running? \
         check `ip link show dev {ifname}`)"
    )]
    AlreadyAttached {
        /// Interface name.
        ifname: String,
    },
    /// The kernel refused the XDP attachment.
    #[error("attaching the XDP program to {ifname} in {mode:?} mode failed: {source}")]
    Attach {
        /// Interface name.
        ifname: String,
        /// Mode tried last.
        mode: XdpMode,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// The verifier rejected the program; `log` is its explanation.
    #[error("the kernel rejected the XDP program: {source}; verifier log:\n{log}")]
    Verifier {
        /// The load error.
        #[source]
        source: io::Error,
        /// Verifier log.
        log: String,
    },
    /// The program could not be assembled (a bug in `bpf::prog`).
    #[error("assembling the XDP program: {0}")]
    Asm(#[from] bpf::asm::AsmError),
    /// An AF_XDP socket could not be set up.
    #[error("AF_XDP socket on {ifname} queue {queue}: {source}")]
    Xsk {
        /// Interface name.
        ifname: String,
        /// Queue.
        queue: u32,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// Another system call failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was being done.
        op: &'static str,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// Invalid configuration.
    #[error("invalid data path configuration: {0}")]
    Config(String),
}

impl IoError {
    /// What the kernel lacks (or the process may not do), when the error says so: an
    /// operator's next step rather than an errno. `None` for other errors.
    pub fn kernel_hint(&self) -> Option<&'static str> {
        let errno = match self {
            IoError::Xsk { source, .. }
            | IoError::Sys { source, .. }
            | IoError::Attach { source, .. } => source.raw_os_error()?,
            _ => return None,
        };
        Some(match (self, errno) {
            (_, libc::EPERM | libc::EACCES) => {
                "not permitted: lvsd needs CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF (run it as \
                 root or with the capabilities of systemd/lvsd.service)"
            }
            (_, libc::ENOSYS) => {
                "this kernel has no bpf() system call: lvsd needs CONFIG_BPF_SYSCALL=y"
            }
            (IoError::Xsk { .. }, libc::EAFNOSUPPORT) => {
                "this kernel has no AF_XDP sockets: lvsd needs CONFIG_XDP_SOCKETS=y (Linux 5.4 \
                 or later)"
            }
            (IoError::Xsk { .. }, libc::ENOBUFS) => {
                "cannot lock the AF_XDP buffer memory: lvsd needs CAP_IPC_LOCK (or a higher \
                 locked-memory limit, LimitMEMLOCK= in the unit)"
            }
            (IoError::Attach { .. }, libc::EINVAL | libc::EOPNOTSUPP) => {
                "this kernel cannot attach XDP programs through BPF links: lvsd needs Linux 5.9 \
                 or later with XDP (CONFIG_BPF_SYSCALL, CONFIG_XDP_SOCKETS)"
            }
            _ => return None,
        })
    }
}

// The worker owns a `Datapath` (moved into its thread); the control plane shares `Steering`.
const _: () = {
    const fn send<T: Send>() {}
    const fn send_sync<T: Send + Sync>() {}
    send::<Datapath>();
    send_sync::<Steering>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_hints_name_what_is_missing() {
        let xsk = |errno| IoError::Xsk {
            ifname: "eth0".into(),
            queue: 0,
            source: io::Error::from_raw_os_error(errno),
        };
        let hint = |e: IoError| e.kernel_hint().unwrap_or_default();
        assert!(hint(xsk(libc::EAFNOSUPPORT)).contains("CONFIG_XDP_SOCKETS"));
        assert!(hint(xsk(libc::EPERM)).contains("CAP_BPF"));
        assert!(hint(xsk(libc::ENOBUFS)).contains("CAP_IPC_LOCK"));
        let attach = IoError::Attach {
            ifname: "eth0".into(),
            mode: XdpMode::Native,
            source: io::Error::from_raw_os_error(libc::EOPNOTSUPP),
        };
        assert!(hint(attach).contains("Linux 5.9"));
        let sys = IoError::Sys {
            op: "bpf(BPF_PROG_LOAD)",
            source: io::Error::from_raw_os_error(libc::ENOSYS),
        };
        assert!(hint(sys).contains("CONFIG_BPF_SYSCALL"));
        assert_eq!(xsk(libc::EBUSY).kernel_hint(), None);
        assert_eq!(IoError::Config("x".into()).kernel_hint(), None);
    }
}
