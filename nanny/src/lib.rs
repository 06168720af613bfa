//! `nanny`: probes one real server and asks lvsd to take it out of service or bring it back.
//!
//! Not built yet: this crate's state machine and I/O shell arrive with a later issue.
//! Until then [`run`] refuses with [`NotImplemented`] so that nothing pretends to work.
#![forbid(unsafe_code)]

/// The error every entry point of this crate returns until the feature is built.
#[derive(Debug, thiserror::Error)]
#[error("nanny: not implemented yet ({what})")]
pub struct NotImplemented {
    /// What is missing, in words an operator can act on.
    pub what: &'static str,
}

/// Entry point of the `nanny` binary.
pub fn run() -> Result<(), NotImplemented> {
    Err(NotImplemented {
        what: "health checking comes with the health-check issue",
    })
}
