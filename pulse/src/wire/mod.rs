//! Heartbeat wire formats. Pure functions over byte slices: no sockets, no clocks.
//!
//! - [`piranha`]: Piranha's unauthenticated 4-byte magic, for running next to (and replacing,
//!   one router at a time) a Piranha director.
//! - [`auth`]: this project's versioned, HMAC-SHA256-authenticated heartbeat with a cluster id,
//!   a 64-bit sequence number and a replay window. Used whenever a key is configured.
//!
//! The two never collide: every Piranha frame is shorter than an authenticated one and none
//! starts with the authenticated magic `LVSH`. [`classify`] tells the shell which parser to use.
//!
//! Contract: no function in this module panics on any input; every rejection is a distinct
//! error variant so that the shell can count and rate-limit it.

pub mod auth;
pub mod piranha;

/// What a peer announces about itself: the only fact the failover machine needs from a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// The sender owns the VIPs ("running").
    Active,
    /// The sender does not own the VIPs ("stopped").
    Standby,
}

/// A director's configured role: the one whose address is `primary` in lvs.cf, or the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// This node's address is `primary`.
    Primary,
    /// This node's address is `backup`.
    Backup,
}

impl Role {
    /// The partner's role.
    pub const fn other(self) -> Role {
        match self {
            Role::Primary => Role::Backup,
            Role::Backup => Role::Primary,
        }
    }
}

/// Which format a received datagram claims to be, judged by length and leading bytes only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Starts with [`auth::MAGIC`]: parse with [`auth::Receiver`].
    Authenticated,
    /// Anything else: Piranha's format (which itself rejects what it does not know).
    Piranha,
}

/// Classifies a datagram. A node configured with a key must accept only
/// [`Format::Authenticated`]; the classification only picks the error counter otherwise.
pub fn classify(datagram: &[u8]) -> Format {
    if datagram.starts_with(&auth::MAGIC) {
        Format::Authenticated
    } else {
        Format::Piranha
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_by_leading_bytes() {
        assert_eq!(classify(&[0xda, 0xdb, 0xad, 0xbd]), Format::Piranha);
        assert_eq!(classify(b"LVSH\x01"), Format::Authenticated);
        assert_eq!(classify(b""), Format::Piranha);
    }
}
