//! The steering XDP program: its maps ([`Steering`]), loading, and attachment through a
//! bpf_link ([`XdpAttachment`]).
//!
//! Maps (created once per [`Steering`], shared by the programs of every interface):
//!
//! | map | type | key (8 bytes, wire order) | value (u32, host order) |
//! |---|---|---|---|
//! | `services` | hash | `{vip u32, port u16, proto u8, 0}` | flags [`prog::MATCH`], [`prog::ALL_PORTS`], [`prog::FRAGMENTS`]; `{addr, 0, 255, 0}` → [`prog::LOCAL`] for the director's own addresses |
//! | `replies` | hash | `{real server u32, port u16, proto u8, 0}` | 0 (presence is the match) |
//!
//! Fragments: a non-first fragment has no ports. While an address has a port service
//! ([`Steering::add_service`]) its port-0 `services` entry carries [`prog::FRAGMENTS`]; while
//! a real server has a reply entry ([`Steering::add_reply`]) a port-0 `replies` entry exists.
//! Both are reference-counted here, so the engine sees every fragment of the datagrams it
//! reassembles.
//! | `xsks` | xskmap, one per interface | rx queue index | AF_XDP socket fd |
//!
//! One program is loaded per interface because each refers to its own `xsks` map (queue 0 of
//! `eth0` and queue 0 of `eth1` are different sockets). Map updates are single syscalls on fds
//! and can be made from any thread while the data path runs; flag merges on the port-0 entry
//! are serialised by a mutex.
//!
//! Attachment uses `BPF_LINK_CREATE` (attach type `BPF_XDP`): the program is detached when the
//! link fd closes, also when the process dies. Native (driver) mode is tried first and generic
//! (SKB) mode only when the driver refuses native mode; "already attached" (`EBUSY`/`EEXIST`)
//! is never retried and becomes [`IoError::AlreadyAttached`].

pub mod asm;
pub mod prog;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use crate::io::IoError;
use crate::io::sys::bpf::{self as sys, Map};
use crate::types::Protocol;

use prog::{OnMatch, ProgramMaps};

fn key(addr: Ipv4Addr, port: u16, proto: u8) -> [u8; 8] {
    let a = addr.octets();
    let p = port.to_be_bytes();
    [a[0], a[1], a[2], a[3], p[0], p[1], proto, 0]
}

fn sys_err(op: &'static str) -> impl FnOnce(std::io::Error) -> IoError {
    move |source| IoError::Sys { op, source }
}

#[derive(Debug)]
struct Maps {
    services: Map,
    replies: Map,
    /// Serialises read-modify-write updates; holds the fragment-steering reference counts.
    merge: Mutex<FragRefs>,
}

/// How many port entries want each address's fragments steered.
#[derive(Debug, Default)]
struct FragRefs {
    /// `(vip, proto)` → port services (and `set_fragments` calls).
    services: HashMap<(Ipv4Addr, u8), u32>,
    /// `(real server, proto)` → reply entries with a port.
    replies: HashMap<(Ipv4Addr, u8), u32>,
}

/// Counts one up or down; true when the count went from 0 to 1 or from 1 to 0.
fn bump(map: &mut HashMap<(Ipv4Addr, u8), u32>, k: (Ipv4Addr, u8), up: bool) -> bool {
    let n = map.entry(k).or_insert(0);
    let was = *n;
    *n = if up { was + 1 } else { was.saturating_sub(1) };
    let now = *n;
    if now == 0 {
        map.remove(&k);
    }
    (was == 0) != (now == 0)
}

/// The `services` and `replies` maps: what the XDP program steers to userspace.
/// Cheap to clone; every clone refers to the same maps.
#[derive(Debug, Clone)]
pub struct Steering {
    maps: Arc<Maps>,
}

impl Steering {
    /// Creates both hash maps with room for `capacity` entries each.
    pub fn new(capacity: u32) -> Result<Steering, IoError> {
        let services = Map::create(sys::MAP_TYPE_HASH, 8, 4, capacity, "lvs_services")
            .map_err(sys_err("create the services map"))?;
        let replies = Map::create(sys::MAP_TYPE_HASH, 8, 4, capacity, "lvs_replies")
            .map_err(sys_err("create the replies map"))?;
        Ok(Steering {
            maps: Arc::new(Maps {
                services,
                replies,
                merge: Mutex::new(FragRefs::default()),
            }),
        })
    }

    fn program_maps(&self) -> ProgramMaps {
        ProgramMaps {
            services_fd: self.maps.services.fd().as_raw_fd(),
            replies_fd: self.maps.replies.fd().as_raw_fd(),
        }
    }

    /// Flags of the `services` entry for `addr:port/proto`, if any.
    pub fn service_flags(
        &self,
        addr: Ipv4Addr,
        port: u16,
        proto: Protocol,
    ) -> Result<Option<u32>, IoError> {
        let mut v = [0u8; 4];
        let found = self
            .maps
            .services
            .lookup(&key(addr, port, proto.number()), &mut v)
            .map_err(sys_err("look up a services entry"))?;
        Ok(found.then_some(u32::from_ne_bytes(v)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FragRefs> {
        self.maps
            .merge
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets and clears flags of one `services` entry; returns the old flags. Callers hold
    /// the merge lock.
    fn merge_flags(
        &self,
        addr: Ipv4Addr,
        port: u16,
        proto: Protocol,
        set: u32,
        clear: u32,
    ) -> Result<u32, IoError> {
        let old = self.service_flags(addr, port, proto)?.unwrap_or(0);
        let new = (old | set) & !clear;
        let k = key(addr, port, proto.number());
        if new == 0 {
            self.maps
                .services
                .delete(&k)
                .map_err(sys_err("delete a services entry"))?;
        } else if new != old {
            self.maps
                .services
                .update(&k, &new.to_ne_bytes(), sys::BPF_ANY)
                .map_err(sys_err("update a services entry (map full?)"))?;
        }
        Ok(old)
    }

    /// Steers packets to `vip:port/proto` to userspace. Port 0 is the catch-all for the
    /// address (every port, and non-first fragments).
    pub fn add_service(&self, vip: Ipv4Addr, port: u16, proto: Protocol) -> Result<(), IoError> {
        let mut refs = self.lock();
        if port == 0 {
            self.merge_flags(vip, 0, proto, prog::ALL_PORTS | prog::FRAGMENTS, 0)?;
            return Ok(());
        }
        let old = self.merge_flags(vip, port, proto, prog::MATCH, 0)?;
        if old & prog::MATCH == 0 {
            self.fragment_ref(&mut refs, vip, proto, true)?;
        }
        Ok(())
    }

    /// Stops steering `vip:port/proto`. Non-first fragments to `vip/proto` stay steered
    /// while another port service (or a [`Steering::set_fragments`]) of the address wants
    /// them.
    pub fn remove_service(&self, vip: Ipv4Addr, port: u16, proto: Protocol) -> Result<(), IoError> {
        let mut refs = self.lock();
        if port == 0 {
            let wanted = refs.services.contains_key(&(vip, proto.number()));
            let clear = if wanted {
                prog::ALL_PORTS
            } else {
                prog::ALL_PORTS | prog::FRAGMENTS
            };
            self.merge_flags(vip, 0, proto, 0, clear)?;
            return Ok(());
        }
        let old = self.merge_flags(vip, port, proto, 0, prog::MATCH)?;
        if old & prog::MATCH != 0 {
            self.fragment_ref(&mut refs, vip, proto, false)?;
        }
        Ok(())
    }

    /// Counts one more (or one fewer) reason to steer non-first fragments to `vip/proto`;
    /// sets or clears [`prog::FRAGMENTS`] on the port-0 entry at the first and the last.
    fn fragment_ref(
        &self,
        refs: &mut FragRefs,
        vip: Ipv4Addr,
        proto: Protocol,
        up: bool,
    ) -> Result<(), IoError> {
        if !bump(&mut refs.services, (vip, proto.number()), up) {
            return Ok(());
        }
        if up {
            self.merge_flags(vip, 0, proto, prog::FRAGMENTS, 0)?;
        } else {
            let catch_all = self.service_flags(vip, 0, proto)?.unwrap_or(0) & prog::ALL_PORTS;
            if catch_all == 0 {
                self.merge_flags(vip, 0, proto, 0, prog::FRAGMENTS)?;
            }
        }
        Ok(())
    }

    /// Steers (or stops steering) non-first IPv4 fragments to `vip/proto` to userspace.
    /// [`Steering::add_service`] already does this for the addresses of port services; this
    /// adds (or removes) one more reference.
    pub fn set_fragments(&self, vip: Ipv4Addr, proto: Protocol, on: bool) -> Result<(), IoError> {
        let mut refs = self.lock();
        self.fragment_ref(&mut refs, vip, proto, on)
    }

    /// Steers packets *from* real server `rs:port/proto` (NAT replies) to userspace, and
    /// the non-first fragments from `rs/proto`.
    pub fn add_reply(&self, rs: Ipv4Addr, port: u16, proto: Protocol) -> Result<(), IoError> {
        let mut refs = self.lock();
        let existed = self.has_reply(rs, port, proto)?;
        self.maps
            .replies
            .update(&key(rs, port, proto.number()), &[0; 4], sys::BPF_ANY)
            .map_err(sys_err("update a replies entry (map full?)"))?;
        if port != 0 && !existed && bump(&mut refs.replies, (rs, proto.number()), true) {
            self.maps
                .replies
                .update(&key(rs, 0, proto.number()), &[0; 4], sys::BPF_ANY)
                .map_err(sys_err("update a replies entry (map full?)"))?;
        }
        Ok(())
    }

    /// Stops steering NAT replies from `rs:port/proto` (and its fragments with the last
    /// such entry); false if there was no entry.
    pub fn remove_reply(&self, rs: Ipv4Addr, port: u16, proto: Protocol) -> Result<bool, IoError> {
        let mut refs = self.lock();
        let deleted = self
            .maps
            .replies
            .delete(&key(rs, port, proto.number()))
            .map_err(sys_err("delete a replies entry"))?;
        if port != 0 && deleted && bump(&mut refs.replies, (rs, proto.number()), false) {
            self.maps
                .replies
                .delete(&key(rs, 0, proto.number()))
                .map_err(sys_err("delete a replies entry"))?;
        }
        Ok(deleted)
    }

    /// Marks `addr` as one of the director's own addresses: packets from a NAT real server's
    /// service port *to* it are the director's own connections (health checks) and stay with
    /// the kernel instead of being steered as NAT replies.
    pub fn add_local(&self, addr: Ipv4Addr) -> Result<(), IoError> {
        self.maps
            .services
            .update(
                &key(addr, 0, prog::LOCAL_PROTO),
                &prog::LOCAL.to_ne_bytes(),
                sys::BPF_ANY,
            )
            .map_err(sys_err("update a services entry (map full?)"))
    }

    /// Undoes [`Steering::add_local`]; false if `addr` was not marked.
    pub fn remove_local(&self, addr: Ipv4Addr) -> Result<bool, IoError> {
        self.maps
            .services
            .delete(&key(addr, 0, prog::LOCAL_PROTO))
            .map_err(sys_err("delete a services entry"))
    }

    /// Whether a replies entry exists for `rs:port/proto`.
    pub fn has_reply(&self, rs: Ipv4Addr, port: u16, proto: Protocol) -> Result<bool, IoError> {
        let mut v = [0u8; 4];
        self.maps
            .replies
            .lookup(&key(rs, port, proto.number()), &mut v)
            .map_err(sys_err("look up a replies entry"))
    }
}

/// Loads the program for `on_match` against `steering`'s maps.
fn load(steering: &Steering, on_match: OnMatch) -> Result<OwnedFd, IoError> {
    let insns = prog::build(steering.program_maps(), on_match)?;
    let bytes: Vec<[u8; 8]> = insns.iter().map(asm::Insn::encode).collect();
    sys::prog_load(
        sys::PROG_TYPE_XDP,
        sys::ATTACH_TYPE_XDP,
        &bytes,
        "lvs_steer",
    )
    .map_err(|(source, log)| IoError::Verifier { source, log })
}

/// A classifier-only program (matches return `XDP_TX` instead of redirecting), for running the
/// parser under `BPF_PROG_TEST_RUN` without an interface.
#[derive(Debug)]
pub struct TestProgram {
    fd: OwnedFd,
}

impl TestProgram {
    /// Loads it.
    pub fn load(steering: &Steering) -> Result<TestProgram, IoError> {
        Ok(TestProgram {
            fd: load(steering, OnMatch::Return(prog::XDP_TX))?,
        })
    }

    /// Runs the program once on `frame`: true if it would steer the frame to userspace.
    pub fn steers(&self, frame: &[u8]) -> Result<bool, IoError> {
        let ret = sys::prog_test_run(self.fd.as_fd(), frame).map_err(sys_err("test-run"))?;
        Ok(ret == prog::XDP_TX as u32)
    }
}

/// Which XDP mode to attach in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpModeChoice {
    /// Native, falling back to generic when the driver refuses native mode.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode only.
    Generic,
}

/// The mode a program actually runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Driver mode (`XDP_FLAGS_DRV_MODE`).
    Native,
    /// SKB mode (`XDP_FLAGS_SKB_MODE`).
    Generic,
}

/// The program attached to one interface, with its XSKMAP. Dropping it closes the link
/// (the program is detached) and the map.
#[derive(Debug)]
pub struct XdpAttachment {
    // Drop order: the link first, so the program stops redirecting before the map goes.
    link: OwnedFd,
    prog: OwnedFd,
    xsks: Map,
    ifindex: u32,
    ifname: String,
    mode: XdpMode,
}

impl XdpAttachment {
    /// Creates the XSKMAP (`max_queues` entries), loads the program and attaches it.
    pub fn attach(
        steering: &Steering,
        ifname: &str,
        ifindex: u32,
        max_queues: u32,
        choice: XdpModeChoice,
    ) -> Result<XdpAttachment, IoError> {
        let xsks = Map::create(sys::MAP_TYPE_XSKMAP, 4, 4, max_queues.max(1), "lvs_xsks")
            .map_err(sys_err("create the xsks map"))?;
        let prog = load(
            steering,
            OnMatch::RedirectXsk {
                xsks_fd: xsks.fd().as_raw_fd(),
            },
        )?;
        let busy =
            |e: &std::io::Error| matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EEXIST));
        let try_mode = |mode: XdpMode| {
            let flags = match mode {
                XdpMode::Native => sys::XDP_FLAGS_DRV_MODE,
                XdpMode::Generic => sys::XDP_FLAGS_SKB_MODE,
            };
            sys::xdp_link_create(prog.as_fd(), ifindex, flags)
        };
        let attempt = |mode: XdpMode| -> Result<OwnedFd, IoError> {
            try_mode(mode).map_err(|e| {
                if busy(&e) {
                    IoError::AlreadyAttached {
                        ifname: ifname.to_owned(),
                    }
                } else {
                    IoError::Attach {
                        ifname: ifname.to_owned(),
                        mode,
                        source: e,
                    }
                }
            })
        };
        let (link, mode) = match choice {
            XdpModeChoice::Native => (attempt(XdpMode::Native)?, XdpMode::Native),
            XdpModeChoice::Generic => (attempt(XdpMode::Generic)?, XdpMode::Generic),
            XdpModeChoice::Auto => match attempt(XdpMode::Native) {
                Ok(l) => (l, XdpMode::Native),
                Err(e @ IoError::AlreadyAttached { .. }) => return Err(e),
                Err(_) => (attempt(XdpMode::Generic)?, XdpMode::Generic),
            },
        };
        Ok(XdpAttachment {
            link,
            prog,
            xsks,
            ifindex,
            ifname: ifname.to_owned(),
            mode,
        })
    }

    /// Puts AF_XDP socket `fd` in the XSKMAP slot of rx queue `queue`.
    pub fn register_socket(&self, queue: u32, fd: BorrowedFd<'_>) -> Result<(), IoError> {
        let v = (fd.as_raw_fd() as u32).to_ne_bytes();
        self.xsks
            .update(&queue.to_ne_bytes(), &v, sys::BPF_ANY)
            .map_err(sys_err("insert an AF_XDP socket into the xsks map"))
    }

    /// The mode the program runs in.
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// Interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The link fd (kept open for the lifetime of the attachment).
    pub fn link_fd(&self) -> BorrowedFd<'_> {
        self.link.as_fd()
    }

    /// The program fd.
    pub fn prog_fd(&self) -> BorrowedFd<'_> {
        self.prog.as_fd()
    }
}
