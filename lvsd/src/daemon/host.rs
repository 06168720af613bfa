//! What lvsd learns from the host it runs on: its interfaces (index, MAC, MTU, IPv4
//! addresses) and its neighbour (ARP) table.
//!
//! Read from `getifaddrs(3)`, `/sys/class/net/<if>/` and `/proc/net/arp`: plain files and one
//! libc call, no netlink session to keep. The kernel stays the owner of addresses and ARP;
//! lvsd only reads them (and, to resolve a real server the kernel has not met yet, sends one
//! UDP datagram to its discard port so that the kernel ARPs for it).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

use ipvs_core::engine::{Interface, Ipv4Cidr};
use ipvs_core::wire::EthernetAddress;

/// Why the host could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// `getifaddrs` failed.
    #[error("cannot list interfaces: {0}")]
    Ifaddrs(#[source] nix::Error),
    /// A file under `/sys/class/net` could not be read or understood.
    #[error("interface {ifname}: cannot read {what}")]
    Sysfs {
        /// Interface name.
        ifname: String,
        /// What was being read.
        what: &'static str,
    },
    /// An interface named on the command line or in lvs.cf does not exist or has no IPv4
    /// address of its own.
    #[error(
        "interface {0} does not exist or has no IPv4 address of its own (a VIP or the \
         nat_router address does not count: they float between directors)"
    )]
    NoSuchInterface(String),
}

fn sysfs(ifname: &str, file: &str, what: &'static str) -> Result<String, HostError> {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/{file}"))
        .map(|s| s.trim().to_owned())
        .map_err(|_| HostError::Sysfs {
            ifname: ifname.to_owned(),
            what,
        })
}

fn parse_mac(text: &str) -> Option<EthernetAddress> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(EthernetAddress(mac))
}

/// The interface an address label belongs to: `eth0:1` → `eth0`. A label is not an
/// interface (`ip addr add VIP/24 dev eth0 label eth0:1`); the kernel reports labelled
/// addresses under the label's name, so everything lvsd reads is keyed by the base name.
pub fn base_device(dev: &str) -> &str {
    dev.split_once(':').map_or(dev, |(base, _)| base)
}

/// Every local IPv4 address with its interface's name (labels kept), floating ones included.
pub fn addresses() -> Result<Vec<(String, Ipv4Addr)>, HostError> {
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(HostError::Ifaddrs)? {
        if let Some(a) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
            out.push((ifa.interface_name.clone(), a.ip()));
        }
    }
    Ok(out)
}

/// Every interface with an IPv4 address of its own, except loopback, by (base) name.
/// Addresses in `floating` (the VIPs and the NAT router address, which pulse moves between
/// directors) are not the director's own: they are left out, so lvsd starts the same way
/// whether or not they are present, and an interface holding only floating addresses is
/// not listed.
pub fn interfaces(
    floating: &std::collections::BTreeSet<Ipv4Addr>,
) -> Result<BTreeMap<String, Interface>, HostError> {
    let mut addrs: BTreeMap<String, Vec<Ipv4Cidr>> = BTreeMap::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(HostError::Ifaddrs)? {
        let (Some(addr), Some(mask)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let (Some(a), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) else {
            continue;
        };
        if floating.contains(&a.ip()) {
            continue;
        }
        let prefix_len = u8::try_from(u32::from(m.ip()).count_ones()).unwrap_or(32);
        let list = addrs
            .entry(base_device(&ifa.interface_name).to_owned())
            .or_default();
        let cidr = Ipv4Cidr::new(a.ip(), prefix_len);
        if !list.contains(&cidr) {
            list.push(cidr);
        }
    }
    let mut out = BTreeMap::new();
    for (name, cidrs) in addrs {
        if name == "lo" || cidrs.iter().all(|c| c.addr.is_loopback()) {
            continue;
        }
        let ifindex =
            sysfs(&name, "ifindex", "ifindex")?
                .parse()
                .map_err(|_| HostError::Sysfs {
                    ifname: name.clone(),
                    what: "ifindex",
                })?;
        let mac = parse_mac(&sysfs(&name, "address", "MAC address")?).ok_or(HostError::Sysfs {
            ifname: name.clone(),
            what: "MAC address",
        })?;
        let mtu = sysfs(&name, "mtu", "mtu")?
            .parse::<u32>()
            .ok()
            .map(|m| u16::try_from(m).unwrap_or(u16::MAX))
            .ok_or(HostError::Sysfs {
                ifname: name.clone(),
                what: "mtu",
            })?;
        out.insert(
            name,
            Interface {
                ifindex,
                vlan: None,
                mac,
                addrs: cidrs,
                mtu,
                gateway: None,
            },
        );
    }
    Ok(out)
}

/// Complete entries of the kernel's ARP table: (device, address) → MAC.
pub fn arp_table() -> BTreeMap<(String, Ipv4Addr), EthernetAddress> {
    let text = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
    let mut out = BTreeMap::new();
    // IP address  HW type  Flags  HW address  Mask  Device
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [ip, _hw, flags, mac, _mask, dev] = f.as_slice() else {
            continue;
        };
        let complete =
            u32::from_str_radix(flags.trim_start_matches("0x"), 16).is_ok_and(|fl| fl & 0x2 != 0);
        if let (true, Ok(ip), Some(mac)) = (complete, ip.parse(), parse_mac(mac)) {
            out.insert(((*dev).to_owned(), ip), mac);
        }
    }
    out
}

/// Makes the kernel resolve `ip`: one empty UDP datagram to its discard port (9). The kernel
/// ARPs for the next hop; [`arp_table`] shows the answer.
pub fn probe(ip: Ipv4Addr) {
    if let Ok(sock) = UdpSocket::bind("0.0.0.0:0") {
        let _ = sock.send_to(&[], SocketAddrV4::new(ip, 9));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_not_interfaces() {
        assert_eq!(base_device("eth0:1"), "eth0");
        assert_eq!(base_device("eth0"), "eth0");
        assert_eq!(base_device("bond0.12:3"), "bond0.12");
    }

    #[test]
    fn macs_parse_strictly() {
        assert_eq!(
            parse_mac("02:00:c6:12:00:02"),
            Some(EthernetAddress([2, 0, 0xc6, 0x12, 0, 2]))
        );
        assert_eq!(parse_mac("02:00:c6:12:00"), None);
        assert_eq!(parse_mac("02:00:c6:12:00:02:00"), None);
    }
}
