//! Name lookups the parser needs: IPv4 host names and tcp service names.
//!
//! The parser takes a `&dyn Lookup`, so tests and the fuzz target stay deterministic and
//! offline ([`StaticLookup`]); daemons use [`SystemLookup`]. Dotted quads never reach a
//! lookup: the validator parses them first.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// Resolves names for the parser.
pub trait Lookup {
    /// The first IPv4 address of host `name`, or `None` if it has none or does not resolve.
    fn host_v4(&self, name: &str) -> Option<Ipv4Addr>;
    /// The port of tcp service `name` (as `/etc/services` lists it), or `None`.
    fn tcp_service(&self, name: &str) -> Option<u16>;
}

/// Well-known tcp service names used when `/etc/services` is missing (and by
/// [`StaticLookup`]). Names and numbers as in IANA's registry and Debian's `/etc/services`.
pub const BUILTIN_TCP_SERVICES: &[(&str, u16)] = &[
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("http", 80),
    ("www", 80),
    ("pop3", 110),
    ("nntp", 119),
    ("imap", 143),
    ("imap2", 143),
    ("snmp", 161),
    ("ldap", 389),
    ("https", 443),
    ("microsoft-ds", 445),
    ("submission", 587),
    ("ldaps", 636),
    ("rsync", 873),
    ("imaps", 993),
    ("pop3s", 995),
    ("ms-sql-s", 1433),
    ("mysql", 3306),
    ("postgresql", 5432),
    ("http-alt", 8080),
];

fn builtin_tcp_service(name: &str) -> Option<u16> {
    BUILTIN_TCP_SERVICES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, p)| p)
}

/// Finds tcp service `name` (or one of its aliases) in the text of a services(5) file.
pub fn find_in_services(text: &str, name: &str) -> Option<u16> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let official = words.next()?;
        let (port, proto) = words.next()?.split_once('/')?;
        if proto != "tcp" || !(official == name || words.any(|alias| alias == name)) {
            return None;
        }
        port.parse().ok()
    })
}

/// Real lookups: `getaddrinfo` through [`ToSocketAddrs`] (IPv4 results only) and a
/// services(5) file, falling back to [`BUILTIN_TCP_SERVICES`] when the file cannot be read.
#[derive(Debug, Clone)]
pub struct SystemLookup {
    /// The services file, `/etc/services` by default.
    pub services_path: PathBuf,
}

impl Default for SystemLookup {
    fn default() -> Self {
        Self {
            services_path: PathBuf::from("/etc/services"),
        }
    }
}

impl Lookup for SystemLookup {
    fn host_v4(&self, name: &str) -> Option<Ipv4Addr> {
        (name, 0).to_socket_addrs().ok()?.find_map(|a| match a {
            SocketAddr::V4(v4) => Some(*v4.ip()),
            SocketAddr::V6(_) => None,
        })
    }

    fn tcp_service(&self, name: &str) -> Option<u16> {
        match std::fs::read_to_string(&self.services_path) {
            Ok(text) => find_in_services(&text, name),
            Err(_) => builtin_tcp_service(name),
        }
    }
}

/// A fixed table of hosts plus the built-in service names; no DNS, no files.
#[derive(Debug, Clone, Default)]
pub struct StaticLookup {
    hosts: BTreeMap<String, Ipv4Addr>,
}

impl StaticLookup {
    /// An empty table: every host name fails to resolve.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `name` → `addr`.
    #[must_use]
    pub fn host(mut self, name: &str, addr: Ipv4Addr) -> Self {
        self.hosts.insert(name.to_owned(), addr);
        self
    }
}

impl Lookup for StaticLookup {
    fn host_v4(&self, name: &str) -> Option<Ipv4Addr> {
        self.hosts.get(name).copied()
    }

    fn tcp_service(&self, name: &str) -> Option<u16> {
        builtin_tcp_service(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_file_parsing() {
        let text = "# comment\nhttp\t\t80/tcp\t\twww # WorldWideWeb\nhttp 80/udp\ndomain 53/udp\n\nbogus\nx notaport/tcp\n";
        assert_eq!(find_in_services(text, "http"), Some(80));
        assert_eq!(find_in_services(text, "www"), Some(80));
        assert_eq!(find_in_services(text, "domain"), None, "udp only");
        assert_eq!(find_in_services(text, "WorldWideWeb"), None, "comment");
        assert_eq!(find_in_services(text, "x"), None);
    }

    #[test]
    fn missing_services_file_falls_back() {
        let l = SystemLookup {
            services_path: PathBuf::from("/nonexistent/services"),
        };
        assert_eq!(l.tcp_service("https"), Some(443));
        assert_eq!(l.tcp_service("nosuch"), None);
    }

    #[test]
    fn system_lookup_resolves_localhost_offline() {
        // `localhost` comes from /etc/hosts, no network needed.
        assert_eq!(
            SystemLookup::default().host_v4("localhost"),
            Some(Ipv4Addr::LOCALHOST)
        );
    }

    #[test]
    fn static_lookup() {
        let l = StaticLookup::new().host("rs1", Ipv4Addr::new(198, 19, 0, 1));
        assert_eq!(l.host_v4("rs1"), Some(Ipv4Addr::new(198, 19, 0, 1)));
        assert_eq!(l.host_v4("rs2"), None);
        assert_eq!(l.tcp_service("http"), Some(80));
    }
}
