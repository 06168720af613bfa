//! Where connection sync runs, from lvs.cf and the host's addresses: pure, tested without
//! a network.
//!
//! - `syncdaemon = 0` (the default): off.
//! - A key is required: the pair's `heartbeat_key` signs every datagram. Without one, sync
//!   is off and lvsd says why at error level but keeps forwarding: a director that refused
//!   to start over its sync settings would lose every connection, not just the failover's.
//! - The partner: lvs.cf's `primary` and `backup` say which one this host is (the one whose
//!   address is local, as pulse decides). The partner's private address is used when both
//!   directors have one (as pulse's heartbeats), else its public one. `sync_peer` overrides
//!   that; it is then also the only source accepted.
//! - Unicast: the socket is bound to this director's own address on that path and
//!   `sync_port`, so the partner sees a source it expects; an explicit `syncd_iface` binds
//!   it to that device as well.
//! - Multicast: bound to `sync_port` on every address, joined to `sync_group` on
//!   `syncd_iface` (whose address must be local), sending there with TTL 1 and no loopback.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::key::{KeyError, KeyMaterial};
use crate::lvscf::{Global, SyncTransport};

/// Everything the sync thread needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// Unicast or multicast.
    pub transport: SyncTransport,
    /// Where the socket is bound.
    pub bind: SocketAddrV4,
    /// Where datagrams go: the partner, or the group.
    pub dest: SocketAddrV4,
    /// Sources accepted (the partner's addresses).
    pub sources: Vec<Ipv4Addr>,
    /// `SO_BINDTODEVICE` (unicast with an explicit `syncd_iface`) or the multicast interface.
    pub device: Option<String>,
    /// Multicast: the group and the address of `syncd_iface` that joins it.
    pub multicast: Option<(Ipv4Addr, Ipv4Addr)>,
    /// `syncd_id`.
    pub syncd_id: u8,
    /// The shared key.
    pub key: KeyMaterial,
}

/// Why sync does not run.
#[derive(Debug, thiserror::Error)]
pub enum SyncOff {
    /// `syncdaemon = 0`.
    #[error("syncdaemon = 0")]
    Disabled,
    /// No `heartbeat_key`.
    #[error(
        "syncdaemon = 1 needs heartbeat_key (the pair's shared key signs every sync \
         datagram); connection sync is off"
    )]
    NoKey,
    /// The key file was refused.
    #[error("{0}; connection sync is off")]
    Key(#[from] KeyError),
    /// Neither `primary` nor `backup` is a local address, and no `sync_peer`.
    #[error(
        "this host is neither primary ({primary}) nor backup ({backup}) and sync_peer is \
         not set: no partner to sync with; connection sync is off"
    )]
    NotADirector {
        /// `primary`.
        primary: Ipv4Addr,
        /// `backup`.
        backup: Ipv4Addr,
    },
    /// A lone primary (`backup = 0.0.0.0`) without `sync_peer`.
    #[error(
        "backup = 0.0.0.0 and sync_peer is not set: no partner to sync with; connection sync is off"
    )]
    NoPartner,
    /// Multicast on an interface without a local address.
    #[error(
        "syncd_iface {0} has no IPv4 address here: cannot join the sync group; connection sync is off"
    )]
    NoInterfaceAddress(String),
}

/// The lvs.cf keywords connection sync is started with whose value differs between `old`
/// and `new`. The sync thread reads them once at start: a reload cannot change them.
pub fn changed_keywords(old: &Global, new: &Global) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            out.push(name);
        }
    };
    check("syncdaemon", old.syncdaemon != new.syncdaemon);
    check("syncd_iface", old.syncd_iface != new.syncd_iface);
    check("syncd_id", old.syncd_id != new.syncd_id);
    check("heartbeat_key", old.heartbeat_key != new.heartbeat_key);
    check("sync_peer", old.sync_peer != new.sync_peer);
    check("sync_port", old.sync_port != new.sync_port);
    check("sync_transport", old.sync_transport != new.sync_transport);
    check("sync_group", old.sync_group != new.sync_group);
    check("primary", old.primary != new.primary);
    check(
        "primary_private",
        old.primary_private != new.primary_private,
    );
    check("backup", old.backup != new.backup);
    check("backup_private", old.backup_private != new.backup_private);
    out
}

/// The host facts the settings depend on.
#[derive(Debug, Clone, Default)]
pub struct HostView {
    /// Every local IPv4 address (floating ones included: they are not the director's).
    pub addrs: Vec<Ipv4Addr>,
    /// Addresses of each interface (labels folded into their base device).
    pub interface_addrs: Vec<(String, Ipv4Addr)>,
}

/// Decides where sync runs. `read_key` reads the key file (the real one in lvsd, a stub in
/// tests).
pub fn resolve(
    g: &Global,
    host: &HostView,
    read_key: impl FnOnce(&std::path::Path) -> Result<KeyMaterial, KeyError>,
) -> Result<SyncSettings, SyncOff> {
    if !g.syncdaemon {
        return Err(SyncOff::Disabled);
    }
    let key = read_key(g.heartbeat_key.as_deref().ok_or(SyncOff::NoKey)?)?;
    let private = |public: Ipv4Addr, private: Ipv4Addr| {
        (!private.is_unspecified() && private != public).then_some(private)
    };
    let primary = (g.primary, private(g.primary, g.primary_private));
    let backup = (g.backup, private(g.backup, g.backup_private));
    let both_private = primary.1.is_some() && backup.1.is_some();
    let path = |(public, private): (Ipv4Addr, Option<Ipv4Addr>)| {
        if both_private {
            private.unwrap_or(public)
        } else {
            public
        }
    };
    let is_local = |a: Ipv4Addr| !a.is_unspecified() && host.addrs.contains(&a);
    let (local, partner) = if is_local(g.primary) {
        (
            Some(primary),
            (!g.backup.is_unspecified()).then_some(backup),
        )
    } else if is_local(g.backup) {
        (Some(backup), Some(primary))
    } else {
        (None, None)
    };
    let explicit_iface = g.lines.contains_key("syncd_iface");
    let (sources, peer) = match (g.sync_peer, partner) {
        (Some(peer), _) => (vec![peer], peer),
        (None, Some(p)) => {
            let mut s = vec![p.0];
            s.extend(p.1);
            (s, path(p))
        }
        (None, None) if local.is_some() => return Err(SyncOff::NoPartner),
        (None, None) => {
            return Err(SyncOff::NotADirector {
                primary: g.primary,
                backup: g.backup,
            });
        }
    };
    let port = g.sync_port;
    let settings = match g.sync_transport {
        SyncTransport::Unicast => {
            // With an explicit peer the route decides the source; bind every address.
            let bind = match (g.sync_peer, local) {
                (None, Some(l)) => path(l),
                _ => Ipv4Addr::UNSPECIFIED,
            };
            SyncSettings {
                transport: SyncTransport::Unicast,
                bind: SocketAddrV4::new(bind, port),
                dest: SocketAddrV4::new(peer, port),
                sources,
                device: explicit_iface.then(|| g.syncd_iface.clone()),
                multicast: None,
                syncd_id: g.syncd_id,
                key,
            }
        }
        SyncTransport::Multicast => {
            let base = super::super::base_device(&g.syncd_iface);
            let iface_addr = host
                .interface_addrs
                .iter()
                .find(|(n, _)| super::super::base_device(n) == base)
                .map(|(_, a)| *a)
                .ok_or_else(|| SyncOff::NoInterfaceAddress(g.syncd_iface.clone()))?;
            SyncSettings {
                transport: SyncTransport::Multicast,
                bind: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
                dest: SocketAddrV4::new(g.sync_group, port),
                sources,
                device: Some(base.to_owned()),
                multicast: Some((g.sync_group, iface_addr)),
                syncd_id: g.syncd_id,
                key,
            }
        }
    };
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
    const PP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
    const BP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 3);

    fn global(extra: &str) -> Global {
        let text = format!(
            "primary = {P}\nbackup = {B}\nbackup_active = 1\nsyncdaemon = 1\n\
             heartbeat_key = /k\n{extra}"
        );
        crate::lvscf::parse_str("t.cf", &text, &crate::lvscf::StaticLookup::default())
            .expect("valid")
            .global
    }

    fn key(_: &std::path::Path) -> Result<KeyMaterial, KeyError> {
        Ok(crate::key::test_material())
    }

    fn host(addrs: &[Ipv4Addr]) -> HostView {
        HostView {
            addrs: addrs.to_vec(),
            interface_addrs: addrs.iter().map(|a| ("eth0".to_owned(), *a)).collect(),
        }
    }

    #[test]
    fn the_primary_sends_to_the_backup_from_its_own_address() {
        let s = resolve(&global(""), &host(&[P]), key).expect("on");
        assert_eq!(s.transport, SyncTransport::Unicast);
        assert_eq!(s.bind, SocketAddrV4::new(P, 8848));
        assert_eq!(s.dest, SocketAddrV4::new(B, 8848));
        assert_eq!(s.sources, vec![B]);
        assert_eq!(s.device, None, "syncd_iface not given: no SO_BINDTODEVICE");
        let s = resolve(&global(""), &host(&[B]), key).expect("on");
        assert_eq!(s.bind, SocketAddrV4::new(B, 8848));
        assert_eq!(s.dest, SocketAddrV4::new(P, 8848));
    }

    #[test]
    fn a_reload_names_the_sync_keywords_it_cannot_apply() {
        let old = global("");
        assert!(changed_keywords(&old, &global("")).is_empty());
        let new = global("sync_port = 9000\nsyncd_id = 3\nkeepalive = 1\n");
        assert_eq!(changed_keywords(&old, &new), vec!["syncd_id", "sync_port"]);
    }

    #[test]
    fn private_addresses_are_used_when_both_directors_have_one() {
        let g = global(&format!("primary_private = {PP}\nbackup_private = {BP}\n"));
        let s = resolve(&g, &host(&[P, PP]), key).expect("on");
        assert_eq!(s.bind, SocketAddrV4::new(PP, 8848));
        assert_eq!(s.dest, SocketAddrV4::new(BP, 8848));
        assert_eq!(s.sources, vec![B, BP]);
    }

    #[test]
    fn sync_peer_port_and_iface_override() {
        let peer = Ipv4Addr::new(198, 18, 5, 5);
        let g = global(&format!(
            "sync_peer = {peer}\nsync_port = 9000\nsyncd_iface = eth1\n"
        ));
        let s = resolve(&g, &host(&[P]), key).expect("on");
        assert_eq!(s.bind, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 9000));
        assert_eq!(s.dest, SocketAddrV4::new(peer, 9000));
        assert_eq!(s.sources, vec![peer]);
        assert_eq!(s.device.as_deref(), Some("eth1"));
        // With a peer, a host that is neither director syncs too (lvsd without pulse).
        assert!(resolve(&g, &host(&[Ipv4Addr::new(198, 18, 9, 9)]), key).is_ok());
    }

    #[test]
    fn multicast_joins_the_group_on_syncd_iface() {
        let g = global("sync_transport = multicast\nsyncd_iface = eth0:1\n");
        let s = resolve(&g, &host(&[P]), key).expect("on");
        assert_eq!(
            s.dest,
            SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 81), 8848)
        );
        assert_eq!(s.multicast, Some((Ipv4Addr::new(224, 0, 0, 81), P)));
        assert_eq!(s.device.as_deref(), Some("eth0"));
        let e = resolve(
            &global("sync_transport = multicast\nsyncd_iface = eth9\n"),
            &host(&[P]),
            key,
        )
        .expect_err("no such interface");
        assert!(matches!(e, SyncOff::NoInterfaceAddress(_)), "{e}");
    }

    #[test]
    fn reasons_to_stay_off_are_named() {
        let mut g = global("");
        g.syncdaemon = false;
        assert!(matches!(
            resolve(&g, &host(&[P]), key),
            Err(SyncOff::Disabled)
        ));
        let mut g = global("");
        g.heartbeat_key = None;
        let e = resolve(&g, &host(&[P]), key).expect_err("no key");
        assert!(e.to_string().contains("needs heartbeat_key"), "{e}");
        let e = resolve(&global(""), &host(&[Ipv4Addr::new(198, 18, 9, 9)]), key)
            .expect_err("not a director");
        assert!(matches!(e, SyncOff::NotADirector { .. }), "{e}");
        let mut g = global("");
        g.backup = Ipv4Addr::UNSPECIFIED;
        assert!(matches!(
            resolve(&g, &host(&[P]), key),
            Err(SyncOff::NoPartner)
        ));
        let e = resolve(&global(""), &host(&[P]), |p| {
            Err(KeyError::Missing { path: p.to_owned() })
        })
        .expect_err("missing key");
        assert!(e.to_string().contains("no such file"), "{e}");
    }
}
