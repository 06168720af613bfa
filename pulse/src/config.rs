//! From a validated lvs.cf and this host's addresses to what pulse runs with.
//!
//! [`PulseConfig::new`] is the whole mapping. The caller passes the host's IPv4 addresses
//! (the daemon reads them from the kernel; tests pass lists), so the mapping touches no
//! interface; it reads only the key file named by `heartbeat_key`.
//!
//! Mapping (Piranha's start-up, reference `piranha-daemons.md` §1.2, with its silent cases
//! turned into errors):
//! - role: primary when a local address equals `primary`, backup when one equals `backup`;
//!   neither, both, or `primary == backup` is an error naming the addresses.
//! - paths: the public addresses, and the private ones when they differ from the public
//!   ones (Piranha: `primary != primary_private`). Both directors must then have one.
//! - a lone primary (`backup = 0.0.0.0`) has no partner and sends no heartbeats; a backup
//!   with `backup_active = 0` does not run (Piranha exits).
//! - `machine::Settings`: `keepalive`, `deadtime`, `backup_active` → `send_heartbeats`,
//!   `monitor_links`, and `force_active` from the command line; checked by
//!   [`Settings::validate`].
//! - `heartbeat_key` → the authenticated format (the file is read by [`crate::key`]);
//!   without it Piranha's format, and the daemon logs [`UNAUTHENTICATED_WARNING`] at every
//!   start. `cluster_id` is carried in authenticated heartbeats.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use lvsd::lvscf::{Config, ServiceMode};

use crate::key::{KeyError, read_key_file};
use crate::machine::{Settings, SettingsError};
use crate::wire::Role;
use crate::wire::auth::AuthKey;

/// Logged by the daemon at every start while no `heartbeat_key` is configured.
pub const UNAUTHENTICATED_WARNING: &str = "heartbeats are NOT authenticated (no heartbeat_key \
in lvs.cf): anyone who can send UDP from the partner's address can force a failover; \
configure heartbeat_key (and cluster_id) on both directors";

/// One director's heartbeat addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addresses {
    /// `primary` or `backup`.
    pub public: Ipv4Addr,
    /// `primary_private` or `backup_private`, when it differs from the public address.
    pub private: Option<Ipv4Addr>,
}

/// The authenticated format's parameters, present when `heartbeat_key` is configured.
#[derive(Clone, Debug)]
pub struct Keyed {
    /// The shared key, read from `file`.
    pub key: AuthKey,
    /// The `heartbeat_key` path, for messages.
    pub file: PathBuf,
    /// `cluster_id`.
    pub cluster_id: u32,
}

/// Everything pulse takes from lvs.cf and its command line.
#[derive(Clone, Debug)]
pub struct PulseConfig {
    /// Our role, from the local addresses.
    pub role: Role,
    /// Our addresses (bound for heartbeats).
    pub local: Addresses,
    /// The partner's addresses; `None` for a lone primary (`backup = 0.0.0.0`).
    pub partner: Option<Addresses>,
    /// `heartbeat_port`, on both directors.
    pub port: u16,
    /// The failover machine's settings.
    pub settings: Settings,
    /// Key and cluster id; `None`: Piranha's unauthenticated format.
    pub auth: Option<Keyed>,
}

/// Why pulse cannot run with this configuration on this host.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `service = fos` (legacy failover services) is not implemented.
    #[error("service = fos is not supported by this pulse; use service = lvs")]
    FosMode,
    /// `primary` is missing or 0.0.0.0.
    #[error("primary is not set in lvs.cf: pulse needs the primary director's address")]
    NoPrimary,
    /// `primary` and `backup` are the same address.
    #[error("primary and backup are both {addr}: they must be the two directors' addresses")]
    SameAddress {
        /// The address.
        addr: Ipv4Addr,
    },
    /// Neither configured address is on this host.
    #[error(
        "this host is neither primary ({primary}) nor backup ({backup}): its addresses are {}",
        list(local)
    )]
    NotADirector {
        /// `primary`.
        primary: Ipv4Addr,
        /// `backup`.
        backup: Ipv4Addr,
        /// The addresses of this host.
        local: Vec<Ipv4Addr>,
    },
    /// Both configured addresses are on this host.
    #[error("this host has both primary ({primary}) and backup ({backup}): cannot tell its role")]
    BothRoles {
        /// `primary`.
        primary: Ipv4Addr,
        /// `backup`.
        backup: Ipv4Addr,
    },
    /// Piranha: "We are backup node and backup is marked inactive -- exiting pulse".
    #[error("this host is the backup ({backup}) and backup_active = 0: nothing to do")]
    BackupInactive {
        /// `backup`.
        backup: Ipv4Addr,
    },
    /// One director has a private heartbeat address and the other has none.
    #[error(
        "{given} is set but {missing} is not: private heartbeats need both directors' \
         private addresses"
    )]
    HalfPrivate {
        /// The keyword that is set.
        given: &'static str,
        /// The keyword that is missing.
        missing: &'static str,
    },
    /// `heartbeat_port = 0`.
    #[error("heartbeat_port = 0: the partner could not send to us")]
    ZeroPort,
    /// `keepalive`/`deadtime` the machine refuses.
    #[error("lvs.cf: {0}")]
    Settings(#[from] SettingsError),
    /// The key file was refused.
    #[error(transparent)]
    Key(#[from] KeyError),
}

fn list(addrs: &[Ipv4Addr]) -> String {
    if addrs.is_empty() {
        return "none".to_owned();
    }
    addrs
        .iter()
        .map(Ipv4Addr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl PulseConfig {
    /// Maps `config` for a host with the addresses `local_addrs`; `force_active` is the
    /// `--forceactive` flag. Reads the key file when `heartbeat_key` is set.
    pub fn new(
        config: &Config,
        local_addrs: &[Ipv4Addr],
        force_active: bool,
    ) -> Result<PulseConfig, ConfigError> {
        let g = &config.global;
        if g.service == ServiceMode::Fos {
            return Err(ConfigError::FosMode);
        }
        if g.primary.is_unspecified() {
            return Err(ConfigError::NoPrimary);
        }
        if g.primary == g.backup {
            return Err(ConfigError::SameAddress { addr: g.primary });
        }
        let is_local = |a: Ipv4Addr| local_addrs.contains(&a);
        let role = match (is_local(g.primary), is_local(g.backup)) {
            (true, false) => Role::Primary,
            (false, true) => Role::Backup,
            (true, true) => {
                return Err(ConfigError::BothRoles {
                    primary: g.primary,
                    backup: g.backup,
                });
            }
            (false, false) => {
                return Err(ConfigError::NotADirector {
                    primary: g.primary,
                    backup: g.backup,
                    local: local_addrs.to_vec(),
                });
            }
        };
        if role == Role::Backup && !g.backup_active {
            return Err(ConfigError::BackupInactive { backup: g.backup });
        }
        if g.heartbeat_port == 0 {
            return Err(ConfigError::ZeroPort);
        }

        let primary_private = private(g.primary, g.primary_private);
        let backup_private = private(g.backup, g.backup_private);
        let lone = g.backup.is_unspecified();
        if !lone {
            match (primary_private, backup_private) {
                (Some(_), None) => {
                    return Err(ConfigError::HalfPrivate {
                        given: "primary_private",
                        missing: "backup_private",
                    });
                }
                (None, Some(_)) => {
                    return Err(ConfigError::HalfPrivate {
                        given: "backup_private",
                        missing: "primary_private",
                    });
                }
                _ => {}
            }
        }
        let primary = Addresses {
            public: g.primary,
            private: primary_private,
        };
        let backup = Addresses {
            public: g.backup,
            private: backup_private,
        };
        let (local, partner) = match role {
            Role::Primary => (primary, (!lone).then_some(backup)),
            Role::Backup => (backup, Some(primary)),
        };
        let local = Addresses {
            // A lone primary has no private path to use.
            private: local.private.filter(|_| partner.is_some()),
            ..local
        };

        let settings = Settings {
            role,
            keepalive: g.keepalive,
            deadtime: g.deadtime,
            // Piranha clears backup_active when backup is 0.0.0.0 (§1.2 step 3).
            send_heartbeats: g.backup_active && !lone,
            monitor_links: g.monitor_links,
            force_active,
        };
        settings.validate()?;

        let auth = match &g.heartbeat_key {
            None => None,
            Some(file) => Some(Keyed {
                key: read_key_file(file)?,
                file: file.clone(),
                cluster_id: g.cluster_id,
            }),
        };

        Ok(PulseConfig {
            role,
            local,
            partner,
            port: g.heartbeat_port,
            settings,
            auth,
        })
    }

    /// Warnings the daemon logs at every start (today: [`UNAUTHENTICATED_WARNING`] when no
    /// key is configured and there is a partner to exchange heartbeats with).
    pub fn startup_warnings(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.auth.is_none() && self.partner.is_some() {
            out.push(UNAUTHENTICATED_WARNING);
        }
        out
    }
}

/// The private address when it is set and differs from the public one.
fn private(public: Ipv4Addr, private: Ipv4Addr) -> Option<Ipv4Addr> {
    (!private.is_unspecified() && private != public).then_some(private)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
