//! Takeover and release: [`FloatingAddr`]s added to and removed from the kernel over
//! rtnetlink, with their alias label (`eth0:1`) kept.
//!
//! Contract:
//! - [`Addresses::new`] opens the rtnetlink socket in the **calling thread's** network
//!   namespace; every later call acts in that namespace, whichever thread makes it.
//! - Calls block: each runs a private current-thread tokio runtime until the kernel has
//!   answered. They are quick (one link lookup, one address dump, at most one change), so
//!   pulse's poll loop calls them directly.
//! - [`Addresses::add`] is idempotent: an address already on its interface is left alone and
//!   reported as [`AddOutcome::AlreadyHeld`] (with a warning when its prefix or label differ
//!   from lvs.cf's). [`Addresses::remove`] is idempotent: an absent address is
//!   [`RemoveOutcome::NotHeld`]. Both count what they did ([`Counters`]).
//! - A new address carries `IFA_LABEL` = the lvs.cf device and the broadcast address
//!   `(addr & mask) | !mask` for prefixes below /31, as `ifconfig DEV IP netmask M broadcast B`
//!   gave under Piranha.
//! - Release removes every entry of the address on its base interface, whatever its prefix or
//!   label, so that a standby director holds none of them. As with Piranha's `ifconfig DEV
//!   down`, removing a subnet's primary address also removes its secondaries unless the
//!   interface has `promote_secondaries` set; a later `remove` of those is then `NotHeld`.
//! - No gratuitous ARP here: that is `send-arp`'s, after a takeover.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt as _;
use rtnetlink::Handle;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::LinkFlags;
use tokio::runtime::Runtime;

use crate::floating::FloatingAddr;

/// Linux errno values the kernel answers with (negated in netlink error messages).
const ENOENT: i32 = 2;
const EEXIST: i32 = 17;
const ENODEV: i32 = 19;
const EADDRNOTAVAIL: i32 = 99;
/// Interface names and labels are at most `IFNAMSIZ - 1` bytes; the kernel would silently
/// truncate a longer label.
const MAX_LABEL: usize = 15;

/// What [`Addresses::add`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    /// The address was added.
    Added,
    /// The address was on the interface already; nothing changed.
    AlreadyHeld,
}

/// What [`Addresses::remove`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// The address was removed.
    Removed,
    /// The address was not on the interface; nothing changed.
    NotHeld,
}

/// Counts of what [`Addresses`] did, for the daemon's status output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Addresses added.
    pub added: u64,
    /// `add` calls for an address that was already held.
    pub already_held: u64,
    /// Addresses removed.
    pub removed: u64,
    /// `remove` calls for an address that was not held.
    pub not_held: u64,
    /// Calls that failed.
    pub failed: u64,
}

/// The operation that failed, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Looking the address up.
    Query,
    /// Adding it.
    Add,
    /// Removing it.
    Remove,
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Op::Query => "cannot look up",
            Op::Add => "cannot add",
            Op::Remove => "cannot remove",
        })
    }
}

/// Why a floating address could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    /// The tokio runtime or the rtnetlink socket could not be created.
    #[error("cannot open the rtnetlink socket: {0}")]
    Socket(#[source] io::Error),
    /// The base interface does not exist in this network namespace.
    #[error("{addr}/{prefix_len} (label {label}): no interface {ifname}")]
    NoSuchInterface {
        /// The address.
        addr: Ipv4Addr,
        /// Its prefix length.
        prefix_len: u8,
        /// The missing interface.
        ifname: String,
        /// The label from lvs.cf.
        label: String,
    },
    /// The label is not the interface name optionally followed by `:ALIAS`, or is too long.
    #[error(
        "{addr}: label {label:?} must be {ifname:?} or {ifname:?} followed by ':' and an \
         alias, at most {MAX_LABEL} characters"
    )]
    BadLabel {
        /// The address.
        addr: Ipv4Addr,
        /// The interface.
        ifname: String,
        /// The label.
        label: String,
    },
    /// The kernel refused a request.
    #[error("{op} {addr}/{prefix_len} on {ifname} (label {label}): {source}")]
    Netlink {
        /// What was attempted.
        op: Op,
        /// The address.
        addr: Ipv4Addr,
        /// Its prefix length.
        prefix_len: u8,
        /// The interface.
        ifname: String,
        /// The label.
        label: String,
        /// The netlink error.
        #[source]
        source: rtnetlink::Error,
    },
}

impl AddressError {
    fn netlink(op: Op, a: &FloatingAddr, source: rtnetlink::Error) -> AddressError {
        AddressError::Netlink {
            op,
            addr: a.addr,
            prefix_len: a.prefix_len,
            ifname: a.ifname.clone(),
            label: a.label.clone(),
            source,
        }
    }
}

/// The kernel's errno in a netlink error, positive; `None` for other errors.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

/// Adds, removes and looks up floating addresses in one network namespace.
#[derive(Debug)]
pub struct Addresses {
    runtime: Runtime,
    handle: Handle,
    counters: Counters,
}

impl Addresses {
    /// Opens an rtnetlink socket in the calling thread's network namespace.
    pub fn new() -> Result<Addresses, AddressError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(AddressError::Socket)?;
        // The socket is registered with the runtime's reactor, so it is created inside it.
        let handle = runtime.block_on(async {
            let (connection, handle, _) = rtnetlink::new_connection()?;
            // Runs whenever `block_on` drives the runtime; ends when the runtime is dropped.
            tokio::spawn(connection);
            Ok::<_, io::Error>(handle)
        });
        Ok(Addresses {
            runtime,
            handle: handle.map_err(AddressError::Socket)?,
            counters: Counters::default(),
        })
    }

    /// What was done so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Whether `a.addr` is on `a.ifname` (whatever its prefix and label).
    pub fn held(&mut self, a: &FloatingAddr) -> Result<bool, AddressError> {
        let result = self.runtime.block_on(async {
            let index = link_index(&self.handle, a).await?;
            Ok::<_, AddressError>(!entries(&self.handle, a, index).await?.is_empty())
        });
        self.count_failure(result)
    }

    /// Puts `a` on its interface with its label; [`AddOutcome::AlreadyHeld`] if it is there.
    pub fn add(&mut self, a: &FloatingAddr) -> Result<AddOutcome, AddressError> {
        let result = check_label(a).and_then(|()| self.runtime.block_on(add(&self.handle, a)));
        let outcome = self.count_failure(result)?;
        match outcome {
            AddOutcome::Added => {
                self.counters.added += 1;
                tracing::info!(vip = %a.addr, prefix_len = a.prefix_len, label = %a.label, "floating address added");
            }
            AddOutcome::AlreadyHeld => {
                self.counters.already_held += 1;
                tracing::info!(vip = %a.addr, label = %a.label, "floating address already held");
            }
        }
        Ok(outcome)
    }

    /// Takes `a.addr` off its interface; [`RemoveOutcome::NotHeld`] if it is not there.
    pub fn remove(&mut self, a: &FloatingAddr) -> Result<RemoveOutcome, AddressError> {
        let result = self.runtime.block_on(remove(&self.handle, a));
        let outcome = self.count_failure(result)?;
        match outcome {
            RemoveOutcome::Removed => {
                self.counters.removed += 1;
                tracing::info!(vip = %a.addr, label = %a.label, "floating address removed");
            }
            RemoveOutcome::NotHeld => {
                self.counters.not_held += 1;
                tracing::debug!(vip = %a.addr, label = %a.label, "floating address was not held");
            }
        }
        Ok(outcome)
    }

    /// The link of `ifname`, for `monitor_links`: `Some(true)` when it is administratively up
    /// and has carrier (`IFF_UP` and `IFF_LOWER_UP`), `Some(false)` otherwise, `None` when
    /// there is no such interface.
    pub fn link_up(&mut self, ifname: &str) -> Result<Option<bool>, rtnetlink::Error> {
        let handle = &self.handle;
        self.runtime.block_on(async {
            let mut links = handle.link().get().match_name(ifname.to_owned()).execute();
            match links.try_next().await {
                Ok(Some(link)) => Ok(Some(
                    link.header
                        .flags
                        .contains(LinkFlags::Up | LinkFlags::LowerUp),
                )),
                Ok(None) => Ok(None),
                Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn count_failure<T>(&mut self, r: Result<T, AddressError>) -> Result<T, AddressError> {
        if r.is_err() {
            self.counters.failed += 1;
        }
        r
    }
}

/// The label the kernel would store unchanged and iproute2 would accept: the interface name,
/// alone or followed by `:` and an alias.
fn check_label(a: &FloatingAddr) -> Result<(), AddressError> {
    let fits = a.label.len() <= MAX_LABEL
        && a.label
            .strip_prefix(a.ifname.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'));
    if fits {
        Ok(())
    } else {
        Err(AddressError::BadLabel {
            addr: a.addr,
            ifname: a.ifname.clone(),
            label: a.label.clone(),
        })
    }
}

async fn add(handle: &Handle, a: &FloatingAddr) -> Result<AddOutcome, AddressError> {
    let index = link_index(handle, a).await?;
    let existing = entries(handle, a, index).await?;
    if !existing.is_empty() {
        for m in &existing {
            let label = label_of(m).unwrap_or("");
            if m.header.prefix_len != a.prefix_len || label != a.label {
                tracing::warn!(
                    vip = %a.addr,
                    held = %format!("{}/{} label {label}", a.addr, m.header.prefix_len),
                    wanted = %a,
                    "floating address held with another prefix or label; left as it is"
                );
            }
        }
        return Ok(AddOutcome::AlreadyHeld);
    }
    let mut request = handle
        .address()
        .add(index, IpAddr::V4(a.addr), a.prefix_len);
    request
        .message_mut()
        .attributes
        .push(AddressAttribute::Label(a.label.clone()));
    match request.execute().await {
        Ok(()) => Ok(AddOutcome::Added),
        // Added by someone else between the dump and the request.
        Err(e) if errno(&e) == Some(EEXIST) => Ok(AddOutcome::AlreadyHeld),
        Err(e) => Err(AddressError::netlink(Op::Add, a, e)),
    }
}

async fn remove(handle: &Handle, a: &FloatingAddr) -> Result<RemoveOutcome, AddressError> {
    let index = link_index(handle, a).await?;
    let mut outcome = RemoveOutcome::NotHeld;
    for m in entries(handle, a, index).await? {
        match handle.address().del(m).execute().await {
            Ok(()) => outcome = RemoveOutcome::Removed,
            // Gone meanwhile (removed by someone else, or with the primary of its subnet).
            Err(e) if matches!(errno(&e), Some(EADDRNOTAVAIL | ENOENT)) => {}
            Err(e) => return Err(AddressError::netlink(Op::Remove, a, e)),
        }
    }
    Ok(outcome)
}

/// The index of `a.ifname`.
async fn link_index(handle: &Handle, a: &FloatingAddr) -> Result<u32, AddressError> {
    let no_such = || AddressError::NoSuchInterface {
        addr: a.addr,
        prefix_len: a.prefix_len,
        ifname: a.ifname.clone(),
        label: a.label.clone(),
    };
    let mut links = handle.link().get().match_name(a.ifname.clone()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        Ok(None) => Err(no_such()),
        Err(e) if errno(&e) == Some(ENODEV) => Err(no_such()),
        Err(e) => Err(AddressError::netlink(Op::Query, a, e)),
    }
}

/// The kernel's entries for `a.addr` on the interface `index`.
async fn entries(
    handle: &Handle,
    a: &FloatingAddr,
    index: u32,
) -> Result<Vec<AddressMessage>, AddressError> {
    let wanted = IpAddr::V4(a.addr);
    handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_filter(|m| {
            let local = m.attributes.iter().any(|at| match at {
                AddressAttribute::Local(ip) => *ip == wanted,
                _ => false,
            });
            std::future::ready(local)
        })
        .try_collect()
        .await
        .map_err(|e| AddressError::netlink(Op::Query, a, e))
}

fn label_of(m: &AddressMessage) -> Option<&str> {
    m.attributes.iter().find_map(|at| match at {
        AddressAttribute::Label(l) => Some(l.as_str()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fa(ifname: &str, label: &str) -> FloatingAddr {
        FloatingAddr {
            addr: Ipv4Addr::new(198, 18, 0, 10),
            prefix_len: 24,
            ifname: ifname.to_owned(),
            label: label.to_owned(),
        }
    }

    #[test]
    fn labels_the_kernel_keeps() {
        assert!(check_label(&fa("eth0", "eth0")).is_ok());
        assert!(check_label(&fa("eth0", "eth0:1")).is_ok());
        assert!(check_label(&fa("eth0", "eth0:vip")).is_ok());
        assert!(check_label(&fa("eth0", "eth01")).is_err());
        assert!(check_label(&fa("eth0", "eth1:1")).is_err());
        let long = fa("enp0s31f6", "enp0s31f6:123456");
        assert!(check_label(&long).is_err());
        let err = check_label(&long).expect_err("16 bytes");
        assert!(err.to_string().contains("enp0s31f6:123456"), "{err}");
    }

    #[test]
    fn errors_name_address_interface_and_cause() {
        let a = fa("eth0", "eth0:1");
        let e = AddressError::netlink(Op::Add, &a, rtnetlink::Error::InvalidNla("test".to_owned()));
        let text = e.to_string();
        assert!(
            text.starts_with("cannot add 198.18.0.10/24 on eth0 (label eth0:1): "),
            "{text}"
        );
    }
}
