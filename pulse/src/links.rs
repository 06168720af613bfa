//! `monitor_links`: the link state of the interfaces that hold this director's public and
//! private addresses (Piranha's `check_links`, reference §1.8), read over rtnetlink instead
//! of the ethtool and MII ioctls.
//!
//! - [`LinkWatch`] is the sans-IO part: the watched interfaces, what was last seen, and the
//!   edge "all links up" ↔ "a link failed" that the daemon hands to
//!   [`crate::machine::Machine::handle_link`].
//! - [`LinkNotifier`] is a netlink socket subscribed to link notifications (`RTMGRP_LINK`):
//!   its descriptor sits in the daemon's poll set, so a pulled cable is seen at once rather
//!   than at the next periodic check.
//!
//! A link counts as up when the interface is administratively up and has carrier
//! (`IFF_UP` and `IFF_LOWER_UP`). A missing interface or a failed query counts as down, as
//! any ioctl error did in Piranha. Piranha's reading of the wrong interface's flags
//! (reference §1.8) is not reproduced: an administratively down interface is down here.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd};

use rtnetlink::sys::protocols::NETLINK_ROUTE;
use rtnetlink::sys::{Socket, SocketAddr};

/// `RTMGRP_LINK`: the multicast group of link notifications.
const RTMGRP_LINK: u32 = 1;

/// What a link query found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Administratively up, with carrier.
    Up,
    /// Down, or without carrier.
    Down,
    /// No such interface.
    Missing,
    /// The query failed (counted as down).
    Unknown,
}

impl LinkState {
    fn is_up(self) -> bool {
        self == LinkState::Up
    }
}

/// One watched interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watched {
    /// What it carries, as Piranha logs it: `Primary NIC` (the public address) or
    /// `Private NIC`.
    pub what: &'static str,
    /// The interface (label stripped: `eth0:1` → `eth0`).
    pub ifname: String,
}

/// A change of the aggregate link state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkChange {
    /// A watched link went down (the ones that are down, with what they found).
    Failed(Vec<(Watched, LinkState)>),
    /// Every watched link is up again.
    Restored,
}

/// The watched interfaces and what was last seen on them. Sans-IO.
#[derive(Debug)]
pub struct LinkWatch {
    watched: Vec<Watched>,
    failed: bool,
}

impl LinkWatch {
    /// Watches `watched`, assuming at first that every link is up (the first
    /// [`LinkWatch::update`] reports a failure that is already there).
    pub fn new(watched: Vec<Watched>) -> LinkWatch {
        LinkWatch {
            watched,
            failed: false,
        }
    }

    /// The watched interfaces.
    pub fn watched(&self) -> &[Watched] {
        &self.watched
    }

    /// Whether a watched link is down, as of the last update.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Feeds fresh states (`state(ifname)`); returns the change of the aggregate, if any.
    pub fn update(&mut self, mut state: impl FnMut(&str) -> LinkState) -> Option<LinkChange> {
        let down: Vec<(Watched, LinkState)> = self
            .watched
            .iter()
            .map(|w| (w.clone(), state(&w.ifname)))
            .filter(|(_, s)| !s.is_up())
            .collect();
        match (self.failed, down.is_empty()) {
            (false, false) => {
                self.failed = true;
                Some(LinkChange::Failed(down))
            }
            (true, true) => {
                self.failed = false;
                Some(LinkChange::Restored)
            }
            _ => None,
        }
    }
}

/// The interfaces holding `addrs` (`(what, address)` pairs), from `(interface or label,
/// address)` pairs such as getifaddrs(3) lists; an address found nowhere is skipped.
pub fn watched_interfaces(
    addrs: &[(&'static str, Ipv4Addr)],
    local: &[(String, Ipv4Addr)],
) -> Vec<Watched> {
    let mut out: Vec<Watched> = Vec::new();
    for &(what, addr) in addrs {
        let Some((name, _)) = local.iter().find(|(_, a)| *a == addr) else {
            continue;
        };
        let ifname = crate::floating::base_device(name).to_owned();
        if !out.iter().any(|w| w.ifname == ifname) {
            out.push(Watched { what, ifname });
        }
    }
    out
}

/// A netlink socket that becomes readable when any link changes.
#[derive(Debug)]
pub struct LinkNotifier {
    socket: Socket,
}

impl LinkNotifier {
    /// Subscribes to link notifications in the calling thread's network namespace.
    pub fn new() -> io::Result<LinkNotifier> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
        socket.set_non_blocking(true)?;
        Ok(LinkNotifier { socket })
    }

    /// For the poll set.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Reads every pending notification; true when there was at least one (or the socket
    /// overflowed, which means some were lost: look again).
    pub fn drain(&self) -> bool {
        let mut any = false;
        let mut buf = vec![0u8; 16 * 1024];
        // Bounded: a burst of link changes is at most a few hundred messages.
        for _ in 0..1024 {
            buf.clear();
            match self.socket.recv(&mut buf, 0) {
                Ok(_) => any = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    // ENOBUFS: notifications were dropped; the caller re-reads every link.
                    any = true;
                    break;
                }
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(what: &'static str, ifname: &str) -> Watched {
        Watched {
            what,
            ifname: ifname.to_owned(),
        }
    }

    #[test]
    fn a_failure_and_its_recovery_are_reported_once_each() {
        let mut watch = LinkWatch::new(vec![w("Primary NIC", "eth0"), w("Private NIC", "eth2")]);
        assert_eq!(watch.update(|_| LinkState::Up), None);
        let change = watch.update(|i| {
            if i == "eth2" {
                LinkState::Down
            } else {
                LinkState::Up
            }
        });
        assert_eq!(
            change,
            Some(LinkChange::Failed(vec![(
                w("Private NIC", "eth2"),
                LinkState::Down
            )]))
        );
        assert!(watch.is_failed());
        // Still down, or another one down too: no new edge.
        assert_eq!(watch.update(|_| LinkState::Down), None);
        assert_eq!(watch.update(|_| LinkState::Up), Some(LinkChange::Restored));
        assert_eq!(watch.update(|_| LinkState::Up), None);
    }

    #[test]
    fn missing_interfaces_and_failed_queries_count_as_down() {
        for state in [LinkState::Missing, LinkState::Unknown, LinkState::Down] {
            let mut watch = LinkWatch::new(vec![w("Primary NIC", "eth0")]);
            assert!(matches!(
                watch.update(|_| state),
                Some(LinkChange::Failed(_))
            ));
        }
    }

    #[test]
    fn nothing_watched_never_fails() {
        let mut watch = LinkWatch::new(Vec::new());
        assert_eq!(watch.update(|_| LinkState::Down), None);
    }

    #[test]
    fn interfaces_are_found_by_address_with_labels_stripped() {
        let local = vec![
            ("lo".to_owned(), Ipv4Addr::LOCALHOST),
            ("eth0".to_owned(), Ipv4Addr::new(198, 18, 0, 2)),
            ("eth0:1".to_owned(), Ipv4Addr::new(198, 18, 0, 100)),
            ("eth1:hb".to_owned(), Ipv4Addr::new(198, 19, 0, 2)),
        ];
        let addrs = [
            ("Primary NIC", Ipv4Addr::new(198, 18, 0, 100)),
            ("Private NIC", Ipv4Addr::new(198, 19, 0, 2)),
            ("Private NIC", Ipv4Addr::new(203, 0, 113, 1)),
        ];
        assert_eq!(
            watched_interfaces(&addrs, &local),
            vec![w("Primary NIC", "eth0"), w("Private NIC", "eth1")]
        );
        // The same interface twice is watched once.
        let same = [
            ("Primary NIC", Ipv4Addr::new(198, 18, 0, 2)),
            ("Private NIC", Ipv4Addr::new(198, 18, 0, 100)),
        ];
        assert_eq!(
            watched_interfaces(&same, &local),
            vec![w("Primary NIC", "eth0")]
        );
    }
}
