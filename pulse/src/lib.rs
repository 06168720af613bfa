//! `pulse`: heartbeats with the partner director, decides who is active, brings the VIPs up and supervises lvsd.
//!
//! Not built yet: this crate's state machine and I/O shell arrive with a later issue.
//! Until then [`run`] refuses with [`NotImplemented`] so that nothing pretends to work.
#![forbid(unsafe_code)]

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
