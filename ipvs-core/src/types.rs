//! Small vocabulary shared by every layer of the engine.

use core::fmt;

/// Transport protocol of a virtual service or connection.
///
/// Firewall-mark services match several protocols; their connections still carry the
/// packet's own protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
}

impl Protocol {
    /// The IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }

    /// `TCP` / `UDP`, as ipvsadm prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How packets reach a destination (ipvsadm `-m` / `-g` / `-i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ForwardMethod {
    /// NAT ("Masq", `-m`): destination rewritten in, source rewritten out.
    Masq,
    /// Direct routing ("Route", `-g`): only the destination MAC is rewritten.
    Route,
    /// IP-in-IP tunnelling ("Tunnel", `-i`).
    Tunnel,
}

impl ForwardMethod {
    /// The ipvsadm flag: `-m`, `-g` or `-i`.
    pub const fn ipvsadm_flag(self) -> &'static str {
        match self {
            ForwardMethod::Masq => "-m",
            ForwardMethod::Route => "-g",
            ForwardMethod::Tunnel => "-i",
        }
    }

    /// The `Forward` column of `ipvsadm -L`: `Masq`, `Route` or `Tunnel`.
    pub const fn listing_name(self) -> &'static str {
        match self {
            ForwardMethod::Masq => "Masq",
            ForwardMethod::Route => "Route",
            ForwardMethod::Tunnel => "Tunnel",
        }
    }
}

/// Identifies one destination (real server) inside the engine. Stable for the life of the
/// destination; the connection table stores it instead of the address to stay small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DestId(pub u32);
