//! Which addresses the active director holds: lvs.cf → [`FloatingAddr`]s. Pure.
//!
//! Piranha's activation (reference `piranha-daemons.md` §1.5) brings up, in this order:
//! - in NAT mode (`network = nat`) the `nat_router` address on its device, with `nat_nmask`;
//! - the `address` of every active `virtual` section whose VIP was not brought up yet, with
//!   that section's `vip_nmask`.
//!
//! [`floating_addrs`] returns the same list, deduplicated by address (the first occurrence
//! wins, as in Piranha). Deactivation (§1.7) gives up the same addresses; the kernel side is
//! [`crate::addresses`].
//!
//! Netmask 0.0.0.0 means "no netmask given". Piranha then ran `ifconfig DEV IP up` without
//! `netmask`; ifconfig sets the address alone (`SIOCSIFADDR`) and the kernel gives a new
//! address its classful prefix: /8 for 1.0.0.0–127.255.255.255, /16 for 128.0.0.0–
//! 191.255.255.255, /24 for 192.0.0.0–223.255.255.255. [`classful_prefix`] reproduces that so
//! that a director running this pulse ends up with the addresses and subnet routes Piranha's
//! left; addresses outside classes A–C (never valid VIPs) get /32. Operators who want another
//! prefix write `vip_nmask`/`nat_nmask`.

use std::net::Ipv4Addr;

use ipvs_core::types::ForwardMethod;
use lvsd::lvscf::{AddressOnDevice, Config};

/// One address pulse adds on takeover and removes on release.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FloatingAddr {
    /// The address.
    pub addr: Ipv4Addr,
    /// Its prefix length (from the netmask, or classful when none was given).
    pub prefix_len: u8,
    /// The base interface the address goes on (`eth0` for the device `eth0:1`).
    pub ifname: String,
    /// The label the address carries, as written in lvs.cf (`eth0:1`); `ip addr` shows it
    /// and `ifconfig` lists the address as that alias, as under Piranha.
    pub label: String,
}

impl FloatingAddr {
    /// The address `on.addr` on `on.device` with `netmask` (0.0.0.0: classful).
    pub fn new(on: &AddressOnDevice, netmask: Ipv4Addr) -> FloatingAddr {
        let prefix_len = if netmask.is_unspecified() {
            classful_prefix(on.addr)
        } else {
            // lvs.cf validation accepts contiguous masks only, so the count is the prefix.
            u8::try_from(u32::from(netmask).leading_ones()).expect("at most 32")
        };
        FloatingAddr {
            addr: on.addr,
            prefix_len,
            ifname: base_device(&on.device).to_owned(),
            label: on.device.clone(),
        }
    }
}

impl std::fmt::Display for FloatingAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} on {}", self.addr, self.prefix_len, self.label)
    }
}

/// The addresses the active director holds under `config`, in Piranha's order (NAT router
/// first, then the VIPs in file order), each address once.
pub fn floating_addrs(config: &Config) -> Vec<FloatingAddr> {
    let g = &config.global;
    let nat_router = match (&g.network, &g.nat_router) {
        (ForwardMethod::Masq, Some(on)) => Some(FloatingAddr::new(on, g.nat_nmask)),
        _ => None,
    };
    let vips = config.virtuals.iter().filter(|v| v.active).filter_map(|v| {
        v.address
            .as_ref()
            .map(|on| FloatingAddr::new(on, v.vip_nmask))
    });

    let mut out: Vec<FloatingAddr> = Vec::new();
    for a in nat_router.into_iter().chain(vips) {
        if !out.iter().any(|held| held.addr == a.addr) {
            out.push(a);
        }
    }
    out
}

/// The prefix the kernel gives an address set without a netmask (`inet_abc_len`): 8, 16 or
/// 24 for classes A, B and C; 32 for anything else.
pub fn classful_prefix(addr: Ipv4Addr) -> u8 {
    match addr.octets()[0] {
        1..=127 => 8,
        128..=191 => 16,
        192..=223 => 24,
        _ => 32,
    }
}

/// `eth0:1` → `eth0`; a device without an alias suffix is its own base.
pub fn base_device(device: &str) -> &str {
    device.split_once(':').map_or(device, |(base, _)| base)
}

#[cfg(test)]
mod tests {
    use lvsd::lvscf::{StaticLookup, parse_str};

    use super::*;

    const HEAD: &str = "primary = 198.18.0.2\nbackup = 198.18.0.3\n";

    fn addrs(text: &str) -> Vec<FloatingAddr> {
        let config = parse_str("t.cf", &format!("{HEAD}{text}"), &StaticLookup::new())
            .unwrap_or_else(|e| panic!("{e}"));
        floating_addrs(&config)
    }

    fn fa(addr: [u8; 4], prefix_len: u8, label: &str) -> FloatingAddr {
        FloatingAddr {
            addr: Ipv4Addr::from(addr),
            prefix_len,
            ifname: base_device(label).to_owned(),
            label: label.to_owned(),
        }
    }

    fn virt(name: &str, active: u8, addr: &str, extra: &str) -> String {
        format!("virtual {name} {{\n active = {active}\n address = {addr}\n{extra}}}\n")
    }

    #[test]
    fn active_vips_with_their_netmask_in_file_order() {
        let text = [
            virt(
                "web",
                1,
                "198.18.0.10 eth0:1",
                " vip_nmask = 255.255.255.0\n",
            ),
            virt("off", 0, "198.18.0.11 eth0:2", ""),
            virt(
                "mail",
                1,
                "198.18.1.20 eth1:3",
                " vip_nmask = 255.255.255.255\n",
            ),
        ]
        .concat();
        assert_eq!(
            addrs(&text),
            [
                fa([198, 18, 0, 10], 24, "eth0:1"),
                fa([198, 18, 1, 20], 32, "eth1:3")
            ]
        );
    }

    #[test]
    fn nat_router_first_and_only_in_nat_mode() {
        let nat = "network = nat\nnat_router = 198.18.5.254 eth1:1\nnat_nmask = 255.255.255.0\n";
        let vip = virt(
            "web",
            1,
            "198.18.0.10 eth0:1",
            " vip_nmask = 255.255.255.0\n",
        );
        assert_eq!(
            addrs(&format!("{nat}{vip}")),
            [
                fa([198, 18, 5, 254], 24, "eth1:1"),
                fa([198, 18, 0, 10], 24, "eth0:1")
            ]
        );
        let direct = nat.replace("network = nat", "network = direct");
        assert_eq!(
            addrs(&format!("{direct}{vip}")),
            [fa([198, 18, 0, 10], 24, "eth0:1")]
        );
        // NAT mode without a nat_router: only the VIPs.
        assert_eq!(
            addrs(&format!("network = nat\n{vip}")),
            [fa([198, 18, 0, 10], 24, "eth0:1")]
        );
    }

    #[test]
    fn no_netmask_means_classful_as_ifconfig_did() {
        let text = [
            virt("c", 1, "198.18.0.10 eth0:1", ""),
            virt("b", 1, "172.16.9.9 eth0:2", ""),
            virt("a", 1, "10.1.2.3 eth0:3", ""),
        ]
        .concat();
        assert_eq!(
            addrs(&text),
            [
                fa([198, 18, 0, 10], 24, "eth0:1"),
                fa([172, 16, 9, 9], 16, "eth0:2"),
                fa([10, 1, 2, 3], 8, "eth0:3"),
            ]
        );
        assert_eq!(classful_prefix(Ipv4Addr::new(224, 0, 0, 1)), 32);
        assert_eq!(classful_prefix(Ipv4Addr::new(127, 0, 0, 1)), 8);
        assert_eq!(classful_prefix(Ipv4Addr::new(191, 255, 0, 1)), 16);
    }

    #[test]
    fn one_entry_per_address_first_wins() {
        // Two services (ports 80 and 443) on one VIP; and the NAT router equal to a VIP.
        let text = [
            "network = nat\nnat_router = 198.18.0.20 eth1:1\n".to_owned(),
            virt(
                "http",
                1,
                "198.18.0.10 eth0:1",
                " vip_nmask = 255.255.255.0\n",
            ),
            virt(
                "https",
                1,
                "198.18.0.10 eth0:9",
                " port = 443\n vip_nmask = 255.255.0.0\n",
            ),
            virt("odd", 1, "198.18.0.20 eth0:2", ""),
        ]
        .concat();
        assert_eq!(
            addrs(&text),
            [
                fa([198, 18, 0, 20], 24, "eth1:1"),
                fa([198, 18, 0, 10], 24, "eth0:1")
            ]
        );
    }

    #[test]
    fn device_without_alias_is_its_own_base() {
        let got = addrs(&virt("web", 1, "198.18.0.10 eth0", ""));
        assert_eq!(got, [fa([198, 18, 0, 10], 24, "eth0")]);
        assert_eq!(got[0].ifname, "eth0");
        assert_eq!(base_device("bond0.100:7"), "bond0.100");
        assert_eq!(got[0].to_string(), "198.18.0.10/24 on eth0");
    }

    #[test]
    fn no_virtuals_no_addresses() {
        assert_eq!(addrs(""), []);
    }
}
