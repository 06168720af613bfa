//! ipvsadm 1.31's command language, parsed into [`Command`]s.
//!
//! This follows `parse_options` and `process_options` in ipvsadm.c step by step: the first
//! option must be a command; options are validated in argv order (the first fault wins);
//! then the `--set` values, leftover words and `-b`; then the legality table
//! (`commands_v_options`, checked in `optnames[]` order); then the service, real-server and
//! list rules. Defaults are ipvsadm's: scheduler `wlc`, bare `-p` 360 s, weight 1, method
//! `-g`, full netmask; `-g`/`-i` on an address service force the real-server port to the
//! service port. Errors carry ipvsadm's texts and exit codes ([`CliError`]).
//!
//! Differences, all documented in docs/lvsadm.md: host and service *names* are not resolved
//! (a name is refused as an unresolvable one is by ipvsadm); `-h` and `-v` are returned as
//! commands for the binary to answer; `-R` input is parsed by [`parse_restore`].
//!
//! No input can make this module panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::CliError;
use super::popt::{Event, Scanner, inet_aton, string_to_number, strtol_whole};
use super::table::{DaemonState, Method, Netmask, SchedFlags, ServiceKey, Tunnel};

/// `-A`/`-E`: a complete service as ipvsadm sends it (omitted options are defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The service.
    pub key: ServiceKey,
    /// `-s`, default `wlc`, cut to 15 characters.
    pub scheduler: String,
    /// `-b`.
    pub sched_flags: SchedFlags,
    /// `-p [timeout]` (bare: 360).
    pub persistent: Option<u32>,
    /// `-M`.
    pub netmask: Netmask,
    /// `--pe`.
    pub pe_name: Option<String>,
    /// `-o`.
    pub ops: bool,
}

/// `-a`/`-e`: a complete real server as ipvsadm sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestSpec {
    /// `-r` address.
    pub addr: IpAddr,
    /// `-r` port (forced to the service port for `-g`/`-i` on address services).
    pub port: u16,
    /// `-g` (default), `-m`, `-i`.
    pub method: Method,
    /// `--tun-type` and friends (only with `-i`).
    pub tunnel: Tunnel,
    /// `-w`, default 1.
    pub weight: u16,
    /// `-x`.
    pub upper: u32,
    /// `-y`.
    pub lower: u32,
}

/// `-L`/`-l` options. The layout is chosen by [`ListOptions::mode`] and, for service
/// listings, by the first of `--stats`, `--rate`, `--thresholds`, `--persistent-conn`,
/// `--tun-info` that is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// `-n` (lvsadm is always numeric; kept for `-S -n` and scripts).
    pub numeric: bool,
    /// `-c`.
    pub connections: bool,
    /// `-L -t VIP:PORT`: one service, without the version line.
    pub service: Option<ServiceKey>,
    /// `--timeout`.
    pub timeout: bool,
    /// `--daemon`.
    pub daemon: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--nosort`.
    pub nosort: bool,
    /// `--exact` / `-X`.
    pub exact: bool,
    /// `--tun-info`.
    pub tun_info: bool,
}

/// What a `-L` command lists, hence what the caller must fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMode {
    /// `-c`: connection entries.
    Connections,
    /// `-L -t|-u|-f …`: one service.
    Service(ServiceKey),
    /// `--timeout`.
    Timeout,
    /// `--daemon`.
    Daemon,
    /// The whole table.
    All,
}

impl ListOptions {
    /// The branch `process_options` takes, in its order.
    pub fn mode(&self) -> ListMode {
        if self.connections {
            ListMode::Connections
        } else if let Some(key) = self.service {
            ListMode::Service(key)
        } else if self.timeout {
            ListMode::Timeout
        } else if self.daemon {
            ListMode::Daemon
        } else {
            ListMode::All
        }
    }
}

/// `--start-daemon` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    /// `master` or `backup`.
    pub state: DaemonState,
    /// `--mcast-interface`, default `eth0`, cut to 15 characters.
    pub mcast_ifn: String,
    /// `--syncid`, default 0.
    pub syncid: u8,
    /// `--sync-maxlen`.
    pub sync_maxlen: Option<u16>,
    /// `--mcast-group`.
    pub mcast_group: Option<IpAddr>,
    /// `--mcast-port`.
    pub mcast_port: Option<u16>,
    /// `--mcast-ttl`.
    pub mcast_ttl: Option<u8>,
}

/// One ipvsadm command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `-A`.
    AddService(ServiceSpec),
    /// `-E` (full replacement).
    EditService(ServiceSpec),
    /// `-D`.
    DeleteService(ServiceKey),
    /// `-C`.
    Clear,
    /// `-R`: read [`parse_restore`] input from stdin.
    Restore,
    /// `-S [-n]`.
    Save {
        /// `-n`.
        numeric: bool,
    },
    /// `-a`.
    AddDest {
        /// The service.
        service: ServiceKey,
        /// The server.
        dest: DestSpec,
    },
    /// `-e` (full replacement).
    EditDest {
        /// The service.
        service: ServiceKey,
        /// The server.
        dest: DestSpec,
    },
    /// `-d`.
    DeleteDest {
        /// The service.
        service: ServiceKey,
        /// Server address.
        addr: IpAddr,
        /// Server port.
        port: u16,
    },
    /// `-L`/`-l`, and ipvsadm without arguments.
    List(ListOptions),
    /// `-Z [service]`.
    Zero(Option<ServiceKey>),
    /// `--set tcp tcpfin udp` (0 keeps the current value).
    SetTimeouts {
        /// TCP ESTABLISHED.
        tcp: u32,
        /// TCP FIN_WAIT.
        tcpfin: u32,
        /// UDP.
        udp: u32,
    },
    /// `--start-daemon`.
    StartDaemon(DaemonSpec),
    /// `--stop-daemon`.
    StopDaemon {
        /// Which daemon.
        state: DaemonState,
        /// `--syncid` if given.
        syncid: Option<u8>,
    },
    /// `-h`: print usage, exit 0.
    Help,
    /// `-v`: print the version, exit 0.
    Version,
}

mod options;
use options::*;

/// Bare `-p` (`IPVS_SVC_PERSISTENT_TIMEOUT`, libipvs.h; the man page says 300).
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;
/// `MAX_TIMEOUT`: 31 days.
pub const MAX_TIMEOUT: i64 = 86400 * 31;
/// Scheduler when `-s` is omitted (`DEF_SCHED`).
pub const DEFAULT_SCHEDULER: &str = "wlc";
/// Interface when `--mcast-interface` is omitted (`DEF_MCAST_IFN`).
pub const DEFAULT_MCAST_IFN: &str = "eth0";

mod state;
use state::Entry;

/// Parses one command line; `argv[0]` is the program name used in `Try …` messages.
pub fn parse_args<S: AsRef<str>>(argv: &[S]) -> Result<Command, CliError> {
    let program = argv.first().map_or("lvsadm", |s| s.as_ref()).to_string();
    let args: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|s| s.as_ref().to_string())
        .collect();
    if args.is_empty() {
        // `ipvsadm` alone lists the table, names resolved.
        return Ok(Command::List(ListOptions::default()));
    }
    let mut scan = Scanner::new(&OPTIONS, &args);
    let tryhelp = || CliError::TryHelp {
        program: program.clone(),
    };
    let mut e = Entry::new();
    match scan.next_event() {
        Some(Event::Opt { tag, arg, .. }) => match tag {
            T::Cmd(c) => e.cmd = c,
            T::StartDaemon | T::StopDaemon => {
                let state = match arg.as_deref() {
                    Some("master") => DaemonState::Master,
                    Some("backup") => DaemonState::Backup,
                    _ if tag == T::StartDaemon => return Err(CliError::IllegalStartDaemon),
                    _ => return Err(CliError::IllegalStopDaemon),
                };
                e.daemon_state = state;
                e.cmd = if tag == T::StartDaemon { STARTD } else { STOPD };
            }
            T::Help => return Ok(Command::Help),
            T::Version => return Ok(Command::Version),
            _ => return Err(tryhelp()),
        },
        _ => return Err(tryhelp()),
    }
    while let Some(ev) = scan.next_event() {
        match ev {
            Event::Error { word, error } => {
                return Err(CliError::Popt {
                    option: word,
                    error,
                });
            }
            Event::Opt { tag, arg, word } => e.option(tag, arg, word)?,
        }
    }
    let mut leftovers = scan.leftovers.into_iter();
    if e.cmd == TIMEOUT {
        let (Some(a), Some(b), Some(c)) = (leftovers.next(), leftovers.next(), leftovers.next())
        else {
            return Err(CliError::SetNeedsThree);
        };
        e.timeouts = [timeout(&a, 0)?, timeout(&b, 0)?, timeout(&c, 0)?];
    }
    if let Some(word) = leftovers.next() {
        return Err(CliError::UnexpectedArgument(word));
    }
    e.finish()
}

/// `parse_timeout(buf, min, MAX_TIMEOUT)`.
fn timeout(s: &str, min: i64) -> Result<u32, CliError> {
    string_to_number(s, min, MAX_TIMEOUT)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| CliError::InvalidTimeout(s.to_string()))
}

/// `parse_fwmark`: `strtol`, whole string, 1..=UINT_MAX.
fn fwmark(s: &str) -> Result<u32, CliError> {
    strtol_whole(s)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| CliError::InvalidFwmark(s.to_string()))
}

/// What `parse_service` found: an address, and a port if the text had one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parsed {
    addr: IpAddr,
    port: Option<u16>,
}

/// ipvsadm's `parse_service`, numeric only: `None` for `SERVICE_NONE`.
fn parse_service(buf: &str) -> Option<Parsed> {
    if buf.bytes().all(|b| b.is_ascii_digit()) {
        return None; // str_is_digit, also true for ""
    }
    let (host, mut portp): (&str, Option<&str>) = match buf.strip_prefix('[') {
        Some(inner) => {
            let (h, rest) = inner.split_once(']')?;
            (h, Some(rest.strip_prefix(':')?))
        }
        None => (buf, None),
    };
    let addr = if let Ok(a6) = host.parse::<Ipv6Addr>() {
        IpAddr::V6(a6)
    } else {
        // The IPv4 branch looks for the port again inside `host` (a bracketed IPv4 address
        // thus loses the port written after the bracket, as in ipvsadm).
        let (h, p) = match host.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        };
        portp = p;
        IpAddr::V4(inet_aton(h)?)
    };
    let port = match portp {
        None => None,
        Some(p) => Some(u16::try_from(string_to_number(p, 0, 65535)?).ok()?),
    };
    Some(Parsed { addr, port })
}

/// `parse_netmask` for IPv4 services (no names).
fn parse_netmask(s: &str) -> Option<Ipv4Addr> {
    inet_aton(s)
}

/// `strncpy(dst, src, max)`: at most `max` bytes, cut on a character boundary.
fn cut(s: &str, max: usize) -> String {
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if i + c.len_utf8() > max {
            break;
        }
        end = i + c.len_utf8();
    }
    s.get(..end).unwrap_or_default().to_string()
}

/// Every non-empty line of `-R` input parsed as a command line, with its 1-based number.
///
/// Lines are split on spaces, tabs and CRs; every `ipvsadm` token is dropped; lines left
/// empty are skipped (`config_stream_read`). A nested `-R` is refused with the `Try …`
/// message, as ipvsadm does. `#` is not a comment (a `#` line gets the `Try …` message).
pub fn parse_restore_lines(text: &str, program: &str) -> Vec<(usize, Result<Command, CliError>)> {
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let mut argv = vec![program.to_string()];
        argv.extend(
            line.split([' ', '\t', '\r'])
                .filter(|t| !t.is_empty() && *t != "ipvsadm")
                .map(str::to_string),
        );
        if argv.len() < 2 {
            continue;
        }
        let parsed = match parse_args(&argv) {
            Ok(Command::Restore) => Err(CliError::TryHelp {
                program: program.to_string(),
            }),
            other => other,
        };
        out.push((i + 1, parsed));
    }
    out
}

/// `-R` input as commands; the first refused line stops parsing and is returned with its
/// 1-based line number. (ipvsadm itself goes on after popt errors; see
/// [`parse_restore_lines`] to reproduce that.)
pub fn parse_restore(text: &str) -> Result<Vec<Command>, (usize, CliError)> {
    parse_restore_lines(text, "lvsadm")
        .into_iter()
        .map(|(line, r)| r.map_err(|e| (line, e)))
        .collect()
}

#[cfg(test)]
mod tests;
