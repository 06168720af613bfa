//! `pulse`: heartbeats with the partner director, decides who is active, brings the VIPs up and supervises lvsd.
//!
//! Map of the crate:
//! - [`wire`]: heartbeat formats (Piranha's 4-byte magic; the authenticated format with a
//!   replay window). Pure parsing and emitting.
//! - [`machine`]: the sans-IO failover state machine (Piranha's LVS-mode table plus
//!   deterministic split-brain resolution, a last "stopped" heartbeat on shutdown, reload).
//! - [`config`]: lvs.cf and the host's addresses → role, paths, port, machine settings, key.
//! - [`key`]: reads and checks the shared heartbeat key file (`heartbeat_key` in lvs.cf).
//! - [`transport`]: the heartbeat sockets (public and private paths), drop reasons, counters.
//! - [`floating`]: lvs.cf → the floating addresses (VIPs, NAT router) held while active. Pure.
//! - [`addresses`]: takeover and release: those addresses added and removed over rtnetlink,
//!   labels (`eth0:1`) kept, idempotent.
//! - [`links`]: `monitor_links`: link state of the public and private interfaces, over
//!   rtnetlink, with a notification socket for the poll set.
//! - [`time`]: the [`time::Instant`] that callers pass in.
//!
//! - [`daemon`]: the daemon around them: poll loop, signals, lvsd supervision, takeover and
//!   release (addresses, gratuitous ARPs, lvsd's role, `active_cmd`/`inactive_cmd`).
#![forbid(unsafe_code)]

pub mod addresses;
pub mod config;
pub mod daemon;
pub mod floating;
pub mod key;
pub mod links;
pub mod machine;
pub mod time;
pub mod transport;
pub mod wire;
