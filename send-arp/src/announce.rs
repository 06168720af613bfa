//! The I/O shell: finds the interface, opens a raw packet socket on it and sends frames.
//!
//! The interface's MAC address and index are read from `/sys/class/net/IF/`, which shows
//! the network namespace `/sys` was mounted in: a process started with `ip netns exec`
//! (which remounts `/sys`) or in its own namespace sees its own interfaces. A thread that
//! moved itself with `setns(2)` does not, and must not call this module.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use ipvs_core::io::PacketSocket;
use ipvs_core::wire::EthernetAddress;

use crate::frame::{FRAME_LEN, Kind, gratuitous_frame};
use crate::mac::{MacError, parse_mac};

/// Errors of finding an interface and sending on it; each names the interface.
#[derive(Debug, thiserror::Error)]
pub enum SendArpError {
    /// The name cannot be an interface name (empty, too long, `/` or whitespace in it).
    #[error("{ifname:?} is not a valid interface name")]
    BadInterfaceName {
        /// The name given.
        ifname: String,
    },
    /// A `/sys/class/net` attribute could not be read: usually no such interface here.
    #[error(
        "interface {ifname}: cannot read {}: {source} (no such interface in this network namespace?)",
        path.display()
    )]
    NoSuchInterface {
        /// Interface name (alias label removed).
        ifname: String,
        /// The attribute file.
        path: PathBuf,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// A `/sys/class/net` attribute held something unexpected.
    #[error("interface {ifname}: {} holds {text:?}: {why}", path.display())]
    BadAttribute {
        /// Interface name.
        ifname: String,
        /// The attribute file.
        path: PathBuf,
        /// Its contents.
        text: String,
        /// What was wrong.
        why: String,
    },
    /// The raw socket could not be opened or bound.
    #[error("interface {ifname}: cannot open a packet socket: {source} (needs CAP_NET_RAW)")]
    Socket {
        /// Interface name.
        ifname: String,
        /// The kernel's error.
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused a frame.
    #[error("interface {ifname}: sending the ARP frame failed: {source}")]
    Send {
        /// Interface name.
        ifname: String,
        /// The kernel's error.
        #[source]
        source: std::io::Error,
    },
}

/// The base interface of `ifname`: an alias label such as `eth0:1` means `eth0` (ARP goes
/// out of the device, labels only name addresses).
pub fn base_interface(ifname: &str) -> &str {
    ifname.split_once(':').map_or(ifname, |(base, _)| base)
}

/// An interface as seen from this process's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Device name, without alias label.
    pub name: String,
    /// Kernel interface index.
    pub index: u32,
    /// Hardware address.
    pub mac: EthernetAddress,
}

impl Interface {
    /// Looks up `ifname` (an alias label is stripped) in `/sys/class/net`.
    pub fn lookup(ifname: &str) -> Result<Interface, SendArpError> {
        let name = base_interface(ifname);
        if name.is_empty()
            || name.len() > 15
            || name == "."
            || name == ".."
            || name.contains(|c: char| c == '/' || c.is_whitespace())
        {
            return Err(SendArpError::BadInterfaceName {
                ifname: ifname.to_owned(),
            });
        }
        let mac_text = read_attr(name, "address")?;
        let mac = parse_mac(&mac_text.text).map_err(|e: MacError| mac_text.bad(e.to_string()))?;
        let index_text = read_attr(name, "ifindex")?;
        let index = index_text
            .text
            .parse()
            .map_err(|e: std::num::ParseIntError| index_text.bad(e.to_string()))?;
        Ok(Interface {
            name: name.to_owned(),
            index,
            mac,
        })
    }
}

struct Attr {
    ifname: String,
    path: PathBuf,
    text: String,
}

impl Attr {
    fn bad(self, why: String) -> SendArpError {
        SendArpError::BadAttribute {
            ifname: self.ifname,
            path: self.path,
            text: self.text,
            why,
        }
    }
}

fn read_attr(ifname: &str, attr: &str) -> Result<Attr, SendArpError> {
    let path = PathBuf::from("/sys/class/net").join(ifname).join(attr);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Attr {
            ifname: ifname.to_owned(),
            path,
            text: text.trim().to_owned(),
        }),
        Err(source) => Err(SendArpError::NoSuchInterface {
            ifname: ifname.to_owned(),
            path,
            source,
        }),
    }
}

/// A send-only raw socket on one interface. Keep it open to announce repeatedly.
#[derive(Debug)]
pub struct ArpSender {
    interface: Interface,
    socket: PacketSocket,
}

impl ArpSender {
    /// Opens a packet socket on `ifname` (alias label stripped). Needs CAP_NET_RAW.
    pub fn open(ifname: &str) -> Result<ArpSender, SendArpError> {
        let interface = Interface::lookup(ifname)?;
        let socket =
            PacketSocket::sender(interface.index).map_err(|source| SendArpError::Socket {
                ifname: interface.name.clone(),
                source,
            })?;
        Ok(ArpSender { interface, socket })
    }

    /// The interface the socket is bound to.
    pub fn interface(&self) -> &Interface {
        &self.interface
    }

    /// Sends one complete frame as it is.
    pub fn send(&self, frame: &[u8; FRAME_LEN]) -> Result<(), SendArpError> {
        self.socket
            .send(frame)
            .map_err(|source| SendArpError::Send {
                ifname: self.interface.name.clone(),
                source,
            })
    }
}

/// How to announce an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announce {
    /// Frames to send (at least one is sent).
    pub count: u32,
    /// Pause between two frames.
    pub interval: Duration,
    /// ARP operation.
    pub kind: Kind,
}

impl Default for Announce {
    /// One broadcast reply, Piranha's frame.
    fn default() -> Self {
        Announce {
            count: 1,
            interval: Duration::from_secs(1),
            kind: Kind::Reply,
        }
    }
}

impl Announce {
    /// What pulse did on takeover: 5 frames 1 second apart (Piranha's `sendArps`).
    pub const PULSE: Announce = Announce {
        count: 5,
        interval: Duration::from_secs(1),
        kind: Kind::Reply,
    };
}

/// What [`announce`] sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The device the frames left from (alias label stripped).
    pub ifname: String,
    /// The MAC address announced for the IP.
    pub mac: EthernetAddress,
    /// Frames sent.
    pub frames: u32,
}

/// Announces that `ip` is at `ifname`'s MAC address: `opts.count` broadcast gratuitous ARP
/// frames, `opts.interval` apart. Blocks for `(count - 1) * interval`; pulse calls it from a
/// thread of its own. Stops at the first error.
pub fn announce(ifname: &str, ip: Ipv4Addr, opts: &Announce) -> Result<Sent, SendArpError> {
    let sender = ArpSender::open(ifname)?;
    let mac = sender.interface().mac;
    let frame = gratuitous_frame(opts.kind, ip, mac, EthernetAddress::BROADCAST);
    let count = opts.count.max(1);
    for n in 0..count {
        if n > 0 {
            std::thread::sleep(opts.interval);
        }
        sender.send(&frame)?;
    }
    Ok(Sent {
        ifname: sender.interface().name.clone(),
        mac,
        frames: count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_labels_mean_the_device() {
        assert_eq!(base_interface("eth0:1"), "eth0");
        assert_eq!(base_interface("eth0"), "eth0");
        assert_eq!(base_interface("bond0.12:vip"), "bond0.12");
    }

    #[test]
    fn bad_names_are_refused_before_any_lookup() {
        for name in [
            "",
            ":1",
            "../eth0",
            "a/b",
            "eth 0",
            "sixteen-bytes-xx",
            "..",
        ] {
            assert!(
                matches!(
                    Interface::lookup(name),
                    Err(SendArpError::BadInterfaceName { .. })
                ),
                "{name:?}"
            );
        }
    }

    #[test]
    fn missing_interface_is_named() {
        let err = Interface::lookup("nosuch0:3").expect_err("no such interface");
        assert!(
            matches!(err, SendArpError::NoSuchInterface { ref ifname, .. } if ifname == "nosuch0")
        );
        assert!(err.to_string().contains("nosuch0"), "{err}");
    }
}
