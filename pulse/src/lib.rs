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
//! - [`time`]: the [`time::Instant`] that callers pass in.
//!
//! Not built yet: the daemon around them (poll loop, signals, lvsd supervision, calling
//! [`addresses`] on takeover and release). Until it
//! arrives [`run`] refuses with [`NotImplemented`] so that nothing pretends to work.
#![forbid(unsafe_code)]

pub mod addresses;
pub mod config;
pub mod floating;
pub mod key;
pub mod machine;
pub mod time;
pub mod transport;
pub mod wire;

/// The error every entry point of this crate returns until the feature is built.
#[derive(Debug, thiserror::Error)]
#[error("pulse: not implemented yet ({what})")]
pub struct NotImplemented {
    /// What is missing, in words an operator can act on.
    pub what: &'static str,
}

/// Entry point of the `pulse` binary.
pub fn run() -> Result<(), NotImplemented> {
    Err(NotImplemented {
        what: "heartbeat, failover and VIP takeover come with the high-availability issue",
    })
}
