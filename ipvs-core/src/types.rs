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

/// Which per-destination counter a connection-table entry counts in (ipvsadm's
/// `ActiveConn`, `InActConn` and `PersistConn` columns). The connection table reports moves
/// between classes; the service layer applies them to the destination's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConnClass {
    /// A normal connection in an active state (TCP ESTABLISHED, SYN_SENT, SYN_RECV or
    /// SYNACK), counted in `ActiveConn`.
    Active,
    /// Any other normal connection (UDP included), counted in `InActConn`. New connections
    /// start here unless they arrive already established (sync).
    Inactive,
    /// A persistence template, counted in `PersistConn`.
    Template,
}

impl ConnClass {
    /// Index 0..3 for per-class arrays.
    pub const fn index(self) -> usize {
        match self {
            ConnClass::Active => 0,
            ConnClass::Inactive => 1,
            ConnClass::Template => 2,
        }
    }
}

/// Identifies one destination (real server) inside the engine. Stable for the life of the
/// destination; the connection table stores it instead of the address to stay small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DestId(pub u32);

/// The fourteen kernel schedulers, by their ipvsadm `-s` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SchedulerKind {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connection.
    Lc,
    /// Weighted least connection (ipvsadm's default).
    Wlc,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Locality-based least connection.
    Lblc,
    /// Locality-based least connection with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Maglev hashing.
    Mh,
    /// Weighted fail-over.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Power of two choices.
    Twos,
}

impl SchedulerKind {
    /// Every scheduler, in the order of the table in the project's docs.
    pub const ALL: [SchedulerKind; 14] = [
        SchedulerKind::Rr,
        SchedulerKind::Wrr,
        SchedulerKind::Lc,
        SchedulerKind::Wlc,
        SchedulerKind::Sed,
        SchedulerKind::Nq,
        SchedulerKind::Lblc,
        SchedulerKind::Lblcr,
        SchedulerKind::Dh,
        SchedulerKind::Sh,
        SchedulerKind::Mh,
        SchedulerKind::Fo,
        SchedulerKind::Ovf,
        SchedulerKind::Twos,
    ];

    /// The ipvsadm name (`rr`, `wlc`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            SchedulerKind::Rr => "rr",
            SchedulerKind::Wrr => "wrr",
            SchedulerKind::Lc => "lc",
            SchedulerKind::Wlc => "wlc",
            SchedulerKind::Sed => "sed",
            SchedulerKind::Nq => "nq",
            SchedulerKind::Lblc => "lblc",
            SchedulerKind::Lblcr => "lblcr",
            SchedulerKind::Dh => "dh",
            SchedulerKind::Sh => "sh",
            SchedulerKind::Mh => "mh",
            SchedulerKind::Fo => "fo",
            SchedulerKind::Ovf => "ovf",
            SchedulerKind::Twos => "twos",
        }
    }

    /// Looks a scheduler up by its ipvsadm name (exact, lower case).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether this scheduler accepts the ipvsadm `-b` flag `flag`
    /// (`sh-fallback`/`sh-port` for sh, `mh-fallback`/`mh-port` for mh,
    /// `flag-1`..`flag-3` for any).
    pub fn accepts_flag(self, flag: SchedFlag) -> bool {
        match flag {
            SchedFlag::Flag1 | SchedFlag::Flag2 | SchedFlag::Flag3 => true,
            SchedFlag::ShFallback | SchedFlag::ShPort => self == SchedulerKind::Sh,
            SchedFlag::MhFallback | SchedFlag::MhPort => self == SchedulerKind::Mh,
        }
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One ipvsadm `-b` scheduler flag. In the kernel, `sh-fallback`, `mh-fallback` and `flag-1`
/// are all `IP_VS_SVC_F_SCHED1`; `sh-port`, `mh-port` and `flag-2` are `SCHED2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SchedFlag {
    /// `sh-fallback` (SCHED1).
    ShFallback,
    /// `sh-port` (SCHED2).
    ShPort,
    /// `mh-fallback` (SCHED1).
    MhFallback,
    /// `mh-port` (SCHED2).
    MhPort,
    /// `flag-1` (SCHED1).
    Flag1,
    /// `flag-2` (SCHED2).
    Flag2,
    /// `flag-3` (SCHED3).
    Flag3,
}

impl SchedFlag {
    /// Every flag, in ipvsadm's order.
    pub const ALL: [SchedFlag; 7] = [
        SchedFlag::ShFallback,
        SchedFlag::ShPort,
        SchedFlag::MhFallback,
        SchedFlag::MhPort,
        SchedFlag::Flag1,
        SchedFlag::Flag2,
        SchedFlag::Flag3,
    ];

    /// The ipvsadm spelling.
    pub const fn name(self) -> &'static str {
        match self {
            SchedFlag::ShFallback => "sh-fallback",
            SchedFlag::ShPort => "sh-port",
            SchedFlag::MhFallback => "mh-fallback",
            SchedFlag::MhPort => "mh-port",
            SchedFlag::Flag1 => "flag-1",
            SchedFlag::Flag2 => "flag-2",
            SchedFlag::Flag3 => "flag-3",
        }
    }

    /// Looks a flag up by its ipvsadm spelling.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The kernel bit: 1 for SCHED1 (fallback), 2 for SCHED2 (port), 3 for SCHED3.
    pub const fn bit(self) -> u8 {
        match self {
            SchedFlag::ShFallback | SchedFlag::MhFallback | SchedFlag::Flag1 => 1,
            SchedFlag::ShPort | SchedFlag::MhPort | SchedFlag::Flag2 => 2,
            SchedFlag::Flag3 => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in SchedulerKind::ALL {
            assert_eq!(SchedulerKind::from_name(k.name()), Some(k));
        }
        for f in SchedFlag::ALL {
            assert_eq!(SchedFlag::from_name(f.name()), Some(f));
        }
        assert_eq!(SchedulerKind::from_name("WLC"), None);
        assert!(SchedulerKind::Sh.accepts_flag(SchedFlag::ShPort));
        assert!(!SchedulerKind::Mh.accepts_flag(SchedFlag::ShPort));
        assert!(SchedulerKind::Rr.accepts_flag(SchedFlag::Flag3));
    }
}
