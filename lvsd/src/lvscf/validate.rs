//! Stage 2: raw structure → typed [`Config`].
//!
//! Types every value (integers like `strtol` base 0, booleans, hosts through the injected
//! [`Lookup`], dotted quads, contiguous netmasks, ports or tcp service names, durations),
//! range-checks it, and enforces the cross-field rules: an active section has an address,
//! port 0 only on persistent or fwmark services, no duplicate active virtual service (same
//! protocol/address/port or same fwmark), no duplicate active real server (same address and
//! *effective* port) in one service, scheduler flags accepted by the scheduler. Applies
//! Piranha's `primary_private`/`backup_private` post-processing.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use ipvs_core::types::{ForwardMethod, Protocol, SchedFlag, SchedulerKind};

use super::error::{Location, LvsCfError, LvsCfWarning, SectionKind};
use super::lookup::Lookup;
use super::model::{
    AddressOnDevice, Config, Global, RealServer, ReservationConflictAction, ServiceMode,
    SyncTransport, VirtualService,
};
use super::raw::{RawFile, RawItem, RawSection, RawStmt};
use super::value::{self, IntError};

/// Longest time IPVS accepts (31 days), for timeouts and persistence.
pub const MAX_SECONDS: u32 = 2_678_400;

struct Ctx<'a> {
    file: &'a str,
    lookup: &'a dyn Lookup,
}

impl Ctx<'_> {
    fn at(&self, line: usize) -> Location {
        Location {
            file: self.file.to_owned(),
            line,
        }
    }

    /// The single value of a `Shape::One` statement, unquoted.
    fn text<'s>(&self, s: &'s RawStmt) -> &'s str {
        s.values.first().map_or("", |t| t.value())
    }

    fn string(&self, s: &RawStmt) -> String {
        self.text(s).to_owned()
    }

    fn int(&self, s: &RawStmt, min: i64, max: i64, range: &'static str) -> Result<i64, LvsCfError> {
        let text = self.text(s);
        let out_of_range = || LvsCfError::OutOfRange {
            at: self.at(s.line),
            keyword: s.keyword.clone(),
            range,
            found: text.to_owned(),
        };
        match value::parse_c_long(text) {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            Ok(_) | Err(IntError::Overflow) => Err(out_of_range()),
            Err(IntError::Syntax) => Err(LvsCfError::NotAnInteger {
                at: self.at(s.line),
                keyword: s.keyword.clone(),
                found: text.to_owned(),
            }),
        }
    }

    fn boolean(&self, s: &RawStmt) -> Result<bool, LvsCfError> {
        let text = self.text(s);
        match value::parse_c_long(text) {
            Ok(0) => Ok(false),
            Ok(1) => Ok(true),
            Ok(_) | Err(IntError::Overflow) => Err(LvsCfError::NotABoolean {
                at: self.at(s.line),
                keyword: s.keyword.clone(),
                found: text.to_owned(),
            }),
            Err(IntError::Syntax) => Err(LvsCfError::NotAnInteger {
                at: self.at(s.line),
                keyword: s.keyword.clone(),
                found: text.to_owned(),
            }),
        }
    }

    fn seconds(&self, s: &RawStmt, min: u32, range: &'static str) -> Result<u32, LvsCfError> {
        let n = self.int(s, i64::from(min), i64::from(MAX_SECONDS), range)?;
        Ok(u32::try_from(n).expect("range-checked to 0..=MAX_SECONDS"))
    }

    /// `keepalive`/`deadtime`: whole or fractional seconds, > 0 and <= `MAX_SECONDS`.
    fn fractional_seconds(&self, s: &RawStmt) -> Result<Duration, LvsCfError> {
        let text = self.text(s);
        match value::parse_seconds(text) {
            Some(d) if !d.is_zero() && d <= Duration::from_secs(u64::from(MAX_SECONDS)) => Ok(d),
            _ => Err(LvsCfError::BadDuration {
                at: self.at(s.line),
                keyword: s.keyword.clone(),
                expected: "seconds greater than 0 and at most 2678400, such as 6 or 0.5",
                found: text.to_owned(),
            }),
        }
    }

    fn host_value(&self, s: &RawStmt, text: &str) -> Result<Ipv4Addr, LvsCfError> {
        value::parse_dotted_quad(text)
            .or_else(|| self.lookup.host_v4(text))
            .ok_or_else(|| LvsCfError::BadHost {
                at: self.at(s.line),
                keyword: s.keyword.clone(),
                found: text.to_owned(),
            })
    }

    fn host(&self, s: &RawStmt) -> Result<Ipv4Addr, LvsCfError> {
        self.host_value(s, self.text(s))
    }

    fn quad(&self, s: &RawStmt) -> Result<Ipv4Addr, LvsCfError> {
        let text = self.text(s);
        value::parse_dotted_quad(text).ok_or_else(|| LvsCfError::BadAddress {
            at: self.at(s.line),
            keyword: s.keyword.clone(),
            found: text.to_owned(),
        })
    }

    fn netmask(&self, s: &RawStmt) -> Result<Ipv4Addr, LvsCfError> {
        let text = self.text(s);
        value::parse_dotted_quad(text)
            .filter(|m| value::is_contiguous_mask(*m))
            .ok_or_else(|| LvsCfError::BadNetmask {
                at: self.at(s.line),
                keyword: s.keyword.clone(),
                found: text.to_owned(),
            })
    }

    /// A port number, or (when `names`) a tcp service name.
    fn port(&self, s: &RawStmt, names: bool) -> Result<u16, LvsCfError> {
        let text = self.text(s);
        let expected = if names {
            "a port number 0..=65535 or a tcp service name"
        } else {
            "a port number 0..=65535"
        };
        let port = match value::parse_c_long(text) {
            Ok(n) => u16::try_from(n).ok(),
            Err(IntError::Overflow) => None,
            Err(IntError::Syntax) if names => self.lookup.tcp_service(text),
            Err(IntError::Syntax) => None,
        };
        port.ok_or_else(|| LvsCfError::BadPort {
            at: self.at(s.line),
            keyword: s.keyword.clone(),
            expected,
            found: text.to_owned(),
        })
    }

    fn choice<T: Copy>(&self, s: &RawStmt, options: &[(&str, T)]) -> Result<T, LvsCfError> {
        let text = self.text(s);
        options
            .iter()
            .find(|(name, _)| *name == text)
            .map(|&(_, v)| v)
            .ok_or_else(|| LvsCfError::BadChoice {
                at: self.at(s.line),
                keyword: s.keyword.clone(),
                expected: options
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
                found: text.to_owned(),
            })
    }

    fn address_on_device(&self, s: &RawStmt) -> Result<AddressOnDevice, LvsCfError> {
        let (ip, dev) = match s.values.as_slice() {
            [ip, dev] => (ip.value(), dev.value()),
            _ => unreachable!("the raw stage checks that a pair has two values"),
        };
        Ok(AddressOnDevice {
            addr: self.host_value(s, ip)?,
            device: dev.to_owned(),
        })
    }
}

/// Validates a raw file.
pub fn validate(file: &str, raw: &RawFile, lookup: &dyn Lookup) -> Result<Config, LvsCfError> {
    let ctx = Ctx { file, lookup };
    let mut warnings = Vec::new();
    let global = global(&ctx, &raw.globals, &mut warnings)?;
    let mut virtuals = Vec::new();
    let mut failovers = Vec::new();
    for section in &raw.sections {
        let vs = virtual_section(&ctx, section, global.network)?;
        match section.kind {
            SectionKind::Failover => failovers.push(vs),
            _ => virtuals.push(vs),
        }
    }
    check_duplicate_virtuals(&ctx, &virtuals)?;
    if global.service == ServiceMode::Lvs && !virtuals.iter().any(|v| v.active) {
        warnings.push(LvsCfWarning {
            at: ctx.at(global.lines.get("service").copied().unwrap_or(1)),
            message: "no active virtual service: pulse would refuse to start".to_owned(),
        });
    }
    Ok(Config {
        global,
        virtuals,
        failovers,
        warnings,
    })
}

fn global(
    ctx: &Ctx<'_>,
    stmts: &[RawStmt],
    warnings: &mut Vec<LvsCfWarning>,
) -> Result<Global, LvsCfError> {
    let mut g = Global::default();
    for s in stmts {
        g.lines.insert(s.keyword.clone(), s.line);
        match s.keyword.as_str() {
            "serial_no" => {
                let n = ctx.int(s, 0, i64::MAX, "a non-negative integer")?;
                g.serial_no = u64::try_from(n).expect("range-checked to be non-negative");
            }
            "service" => {
                g.service =
                    ctx.choice(s, &[("lvs", ServiceMode::Lvs), ("fos", ServiceMode::Fos)])?;
            }
            "primary" => g.primary = ctx.host(s)?,
            "primary_private" => g.primary_private = ctx.host(s)?,
            "primary_shared" => g.primary_shared = Some(ctx.string(s)),
            "backup_active" => g.backup_active = ctx.boolean(s)?,
            "backup" => g.backup = ctx.host(s)?,
            "backup_private" => g.backup_private = ctx.host(s)?,
            "backup_shared" => g.backup_shared = Some(ctx.string(s)),
            "heartbeat" => g.heartbeat = ctx.boolean(s)?,
            "heartbeat_port" => g.heartbeat_port = ctx.port(s, true)?,
            "keepalive" => g.keepalive = ctx.fractional_seconds(s)?,
            "deadtime" => g.deadtime = ctx.fractional_seconds(s)?,
            "network" => {
                g.network = ctx.choice(
                    s,
                    &[
                        ("direct", ForwardMethod::Route),
                        ("nat", ForwardMethod::Masq),
                        ("tunnel", ForwardMethod::Tunnel),
                    ],
                )?;
            }
            "nat_router" => g.nat_router = Some(ctx.address_on_device(s)?),
            "nat_nmask" => g.nat_nmask = ctx.netmask(s)?,
            "debug_level" => g.debug_level = ctx.string(s),
            "rsh_command" => g.rsh_command = ctx.string(s),
            "monitor_links" => g.monitor_links = ctx.int(s, i64::MIN, i64::MAX, "an integer")? != 0,
            "syncdaemon" => g.syncdaemon = ctx.boolean(s)?,
            "syncd_iface" => g.syncd_iface = ctx.string(s),
            "syncd_id" => {
                let n = ctx.int(s, 0, 255, "an integer in 0..=255")?;
                g.syncd_id = u8::try_from(n).expect("range-checked to 0..=255");
            }
            "tcp_timeout" => {
                g.tcp_timeout = ctx.seconds(s, 0, "seconds in 0..=2678400 (0 = unchanged)")?
            }
            "tcpfin_timeout" => {
                g.tcpfin_timeout = ctx.seconds(s, 0, "seconds in 0..=2678400 (0 = unchanged)")?;
            }
            "udp_timeout" => {
                g.udp_timeout = ctx.seconds(s, 0, "seconds in 0..=2678400 (0 = unchanged)")?
            }
            "active_cmd" => g.active_cmd = Some(ctx.string(s)),
            "inactive_cmd" => g.inactive_cmd = Some(ctx.string(s)),
            "hard_shutdown" => g.hard_shutdown = ctx.boolean(s)?,
            "ipvsadm" => g.ipvsadm = PathBuf::from(ctx.text(s)),
            "reservation_conflict_action" => {
                g.reservation_conflict_action = Some(ctx.choice(
                    s,
                    &[
                        ("nothing", ReservationConflictAction::Nothing),
                        ("preempt", ReservationConflictAction::Preempt),
                    ],
                )?);
            }
            "sync" => g.sync = ctx.boolean(s)?,
            "heartbeat_key" => {
                let path = no_blanks(ctx, s, "an absolute file path without blanks")?;
                if !path.starts_with('/') {
                    return Err(bad_value(ctx, s, "an absolute file path without blanks"));
                }
                g.heartbeat_key = Some(PathBuf::from(path));
            }
            "cluster_id" => {
                let n = ctx.int(s, 0, i64::from(u32::MAX), "an integer in 0..=4294967295")?;
                g.cluster_id = u32::try_from(n).expect("range-checked to 0..=u32::MAX");
            }
            "arp_count" => {
                let n = ctx.int(s, 1, 100, "an integer in 1..=100")?;
                g.arp_count = u32::try_from(n).expect("range-checked to 1..=100");
            }
            "arp_interval" => g.arp_interval = ctx.fractional_seconds(s)?,
            "sync_peer" => g.sync_peer = Some(ctx.host(s)?),
            "sync_port" => {
                let n = ctx.int(s, 1, 65535, "a port number 1..=65535")?;
                g.sync_port = u16::try_from(n).expect("range-checked to 1..=65535");
            }
            "sync_transport" => {
                g.sync_transport = ctx.choice(
                    s,
                    &[
                        ("unicast", SyncTransport::Unicast),
                        ("multicast", SyncTransport::Multicast),
                    ],
                )?;
            }
            "sync_group" => {
                let group = ctx.quad(s)?;
                if !group.is_multicast() {
                    return Err(bad_value(
                        ctx,
                        s,
                        "a multicast address (224.0.0.0/4), such as 224.0.0.81",
                    ));
                }
                g.sync_group = group;
            }
            "status_address" => {
                const WANT: &str = "an IPv4 address and port, such as 127.0.0.1:9180";
                let text = no_blanks(ctx, s, WANT)?;
                let addr = text
                    .parse::<std::net::SocketAddrV4>()
                    .map_err(|_| bad_value(ctx, s, WANT))?;
                if addr.port() == 0 {
                    return Err(bad_value(ctx, s, WANT));
                }
                g.status_address = Some(addr);
            }
            other => unreachable!("keyword {other:?} is in keywords::GLOBAL but not handled"),
        }
    }
    // Piranha: primary given, primary_private not → both private addresses follow the
    // public ones, overwriting a backup_private that was given.
    if g.lines.contains_key("primary") && !g.lines.contains_key("primary_private") {
        if let Some(&line) = g.lines.get("backup_private")
            && g.backup_private != g.backup
        {
            warnings.push(LvsCfWarning {
                at: ctx.at(line),
                message: format!(
                    "backup_private {} is replaced by backup {} because primary_private is not set (Piranha behaviour); set primary_private to keep it",
                    g.backup_private, g.backup
                ),
            });
        }
        g.primary_private = g.primary;
        g.backup_private = g.backup;
    }
    if g.deadtime <= g.keepalive {
        let line = g
            .lines
            .get("deadtime")
            .or(g.lines.get("keepalive"))
            .copied();
        warnings.push(LvsCfWarning {
            at: ctx.at(line.unwrap_or(1)),
            message: format!(
                "deadtime ({:?}) is not longer than keepalive ({:?}): the partner will be declared dead between two heartbeats",
                g.deadtime, g.keepalive
            ),
        });
    }
    Ok(g)
}

const SCHEDULERS: [(&str, SchedulerKind); 14] = {
    let mut out = [("", SchedulerKind::Rr); 14];
    let mut i = 0;
    while i < 14 {
        out[i] = (SchedulerKind::ALL[i].name(), SchedulerKind::ALL[i]);
        i += 1;
    }
    out
};

fn virtual_section(
    ctx: &Ctx<'_>,
    section: &RawSection,
    network: ForwardMethod,
) -> Result<VirtualService, LvsCfError> {
    let mut v = VirtualService::new(&section.name, section.line);
    let mut sched_flags: Option<&RawStmt> = None;
    for item in &section.items {
        let s = match item {
            RawItem::Section(server) => {
                v.servers.push(server_section(ctx, server, v.port)?);
                continue;
            }
            RawItem::Stmt(s) => s,
        };
        v.lines.insert(s.keyword.clone(), s.line);
        match s.keyword.as_str() {
            "active" => v.active = ctx.boolean(s)?,
            "address" => v.address = Some(ctx.address_on_device(s)?),
            "vip_nmask" => v.vip_nmask = ctx.netmask(s)?,
            "port" => v.port = ctx.port(s, true)?,
            "protocol" => {
                v.protocol = ctx.choice(s, &[("tcp", Protocol::Tcp), ("udp", Protocol::Udp)])?
            }
            "fwmark" => {
                // 0 means "no firewall mark", as in Piranha (its parser default).
                let n = ctx.int(
                    s,
                    0,
                    i64::from(u32::MAX),
                    "a firewall mark in 0..=4294967295 (0 = off)",
                )?;
                let mark = u32::try_from(n).expect("range-checked to fit u32");
                v.fwmark = (mark != 0).then_some(mark);
            }
            "scheduler" => v.scheduler = ctx.choice(s, &SCHEDULERS)?,
            "sched_flags" => sched_flags = Some(s),
            "persistent" => {
                v.persistent = ctx.seconds(s, 0, "0 or seconds in 1..=2678400")?;
            }
            "pmask" => v.pmask = ctx.netmask(s)?,
            "send" => v.send = Some(ctx.string(s)),
            "expect" => v.expect = Some(ctx.string(s)),
            "use_regex" => v.use_regex = ctx.boolean(s)?,
            "send_program" => {
                // nanny refuses an empty command (it would be restarted until lvsd gives up).
                if ctx.text(s).split(' ').all(str::is_empty) {
                    return Err(bad_value(
                        ctx,
                        s,
                        "a command such as \"/usr/local/bin/check %h %p\"",
                    ));
                }
                v.send_program = Some(ctx.string(s));
            }
            "load_monitor" => v.load_monitor = Some(ctx.string(s)),
            "timeout" => {
                let n = ctx.seconds(s, 1, "seconds in 1..=2678400")?;
                v.timeout = Duration::from_secs(u64::from(n));
            }
            "reentry" => {
                let n = ctx.seconds(s, 0, "seconds in 0..=2678400")?;
                v.reentry = Duration::from_secs(u64::from(n));
            }
            "quiesce_server" => v.quiesce_server = ctx.boolean(s)?,
            "sorry_server" => v.sorry_server = Some(ctx.quad(s)?).filter(|a| !a.is_unspecified()),
            "client_monitor" => v.client_monitor = PathBuf::from(ctx.text(s)),
            "start_cmd" => v.start_cmd = Some(ctx.string(s)),
            "stop_cmd" => v.stop_cmd = Some(ctx.string(s)),
            "master" => v.master = Some(ctx.host(s)?),
            "dirs" => v.dirs = s.values.iter().map(|t| t.value().to_owned()).collect(),
            "rise" | "fall" => {
                let n = ctx.int(s, 1, 65535, "an integer in 1..=65535")?;
                let n = Some(u32::try_from(n).expect("range-checked to 1..=65535"));
                if s.keyword == "rise" {
                    v.health.rise = n;
                } else {
                    v.health.fall = n;
                }
            }
            "probe_timeout" => {
                let n = ctx.seconds(s, 1, "seconds in 1..=2678400")?;
                v.health.probe_timeout = Some(Duration::from_secs(u64::from(n)));
            }
            "http_path" => v.health.http_path = Some(http_path(ctx, s)?),
            "https" => v.health.https = ctx.boolean(s)?,
            "http_host" => {
                v.health.http_host = Some(no_blanks(ctx, s, "a host name without blanks")?)
            }
            "http_status" => v.health.http_status = Some(http_status(ctx, s)?),
            "tls_ca" => v.health.tls_ca = Some(PathBuf::from(no_blanks(ctx, s, "a file path")?)),
            "tls_verify" => v.health.tls_verify = ctx.boolean(s)?,
            other => unreachable!("keyword {other:?} is in keywords::VIRTUAL but not handled"),
        }
    }
    if let Some(s) = sched_flags {
        v.sched_flags = parse_sched_flags(ctx, s, v.scheduler)?;
    }
    if v.active {
        if v.address.as_ref().is_none_or(|a| a.addr.is_unspecified()) {
            return Err(LvsCfError::MissingAddress {
                at: ctx.at(section.line),
                section: section.as_ref(),
                expected: "\"address = IP DEVICE\"",
            });
        }
        if section.kind == SectionKind::Virtual
            && v.port == 0
            && v.fwmark.is_none()
            && v.persistent == 0
        {
            return Err(LvsCfError::ZeroPort {
                at: ctx.at(v.lines.get("port").copied().unwrap_or(section.line)),
                section: section.as_ref(),
            });
        }
    }
    check_health_extensions(ctx, &v)?;
    check_expect_regex(ctx, &v)?;
    check_duplicate_servers(ctx, section, &v, network)?;
    Ok(v)
}

fn bad_value(ctx: &Ctx<'_>, s: &RawStmt, expected: &str) -> LvsCfError {
    LvsCfError::BadValue {
        at: ctx.at(s.line),
        keyword: s.keyword.clone(),
        expected: expected.to_owned(),
        found: ctx.string(s),
    }
}

fn no_blanks(ctx: &Ctx<'_>, s: &RawStmt, expected: &str) -> Result<String, LvsCfError> {
    let text = ctx.text(s);
    if text.is_empty() || text.chars().any(char::is_whitespace) {
        return Err(bad_value(ctx, s, expected));
    }
    Ok(text.to_owned())
}

/// `http_path`: `/` followed by printable characters without blanks.
fn http_path(ctx: &Ctx<'_>, s: &RawStmt) -> Result<String, LvsCfError> {
    let text = ctx.text(s);
    if !text.starts_with('/') || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad_value(
            ctx,
            s,
            "a URL path starting with \"/\" without blanks, such as /health",
        ));
    }
    Ok(text.to_owned())
}

/// `http_status`: `CODE` or `LOW-HIGH` items (100..=599) separated by commas.
fn http_status(ctx: &Ctx<'_>, s: &RawStmt) -> Result<String, LvsCfError> {
    let text = ctx.text(s);
    let code = |t: &str| t.parse::<u16>().ok().filter(|c| (100..=599).contains(c));
    let ok = text.split(',').all(|item| match item.split_once('-') {
        Some((lo, hi)) => matches!((code(lo), code(hi)), (Some(lo), Some(hi)) if lo <= hi),
        None => code(item).is_some(),
    });
    if !ok {
        return Err(bad_value(
            ctx,
            s,
            "HTTP status codes 100-599 as CODE or LOW-HIGH separated by commas, such as 200,300-399",
        ));
    }
    Ok(text.to_owned())
}

/// With `use_regex = 1`, `expect` must compile as nanny will compile it (after escape
/// translation, Rust `regex` syntax): a nanny that cannot start would be restarted until lvsd
/// gives up, so the file is refused here instead (on reload the old configuration stays).
fn check_expect_regex(ctx: &Ctx<'_>, v: &VirtualService) -> Result<(), LvsCfError> {
    let (true, Some(expect)) = (v.use_regex, &v.expect) else {
        return Ok(());
    };
    let Err(e) = regex::bytes::Regex::new(&value::translate_escapes(expect)) else {
        return Ok(());
    };
    let detail = e.to_string();
    let detail = detail.lines().last().unwrap_or_default().trim().to_owned();
    Err(LvsCfError::BadValue {
        at: ctx.at(v.lines.get("expect").copied().unwrap_or(v.line)),
        keyword: "expect".to_owned(),
        expected: format!("a regular expression, as use_regex = 1 ({detail})"),
        found: expect.clone(),
    })
}

/// The HTTP keywords need `http_path`, and `http_path` replaces send/expect-style probes
/// that nanny cannot combine with it.
fn check_health_extensions(ctx: &Ctx<'_>, v: &VirtualService) -> Result<(), LvsCfError> {
    let line = |kw: &str| v.lines.get(kw).copied().unwrap_or(v.line);
    let found = |kw: &str| match kw {
        "https" => u8::from(v.health.https).to_string(),
        "tls_verify" => u8::from(v.health.tls_verify).to_string(),
        "http_host" => v.health.http_host.clone().unwrap_or_default(),
        "http_status" => v.health.http_status.clone().unwrap_or_default(),
        "tls_ca" => v
            .health
            .tls_ca
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        "send" => v.send.clone().unwrap_or_default(),
        "send_program" => v.send_program.clone().unwrap_or_default(),
        _ => "udp".to_owned(),
    };
    let http_only = ["https", "http_host", "http_status", "tls_ca", "tls_verify"];
    if v.health.http_path.is_none() {
        if let Some(kw) = http_only.iter().find(|k| v.lines.contains_key(**k)) {
            return Err(LvsCfError::BadValue {
                at: ctx.at(line(kw)),
                keyword: (*kw).to_owned(),
                expected: "\"http_path\" in the same section (it applies to the HTTP probe)"
                    .to_owned(),
                found: found(kw),
            });
        }
        return Ok(());
    }
    let clash = ["send", "send_program", "protocol"]
        .into_iter()
        .find(|kw| match *kw {
            "protocol" => v.protocol == Protocol::Udp,
            _ => v.lines.contains_key(*kw),
        });
    if let Some(kw) = clash {
        return Err(LvsCfError::BadValue {
            at: ctx.at(line(kw)),
            keyword: kw.to_owned(),
            expected: "no send, send_program or protocol = udp with \"http_path\" (the HTTP probe replaces them)".to_owned(),
            found: found(kw),
        });
    }
    Ok(())
}

fn parse_sched_flags(
    ctx: &Ctx<'_>,
    s: &RawStmt,
    scheduler: SchedulerKind,
) -> Result<Vec<SchedFlag>, LvsCfError> {
    let mut flags = Vec::new();
    for name in ctx.text(s).split(',') {
        let flag = SchedFlag::from_name(name).ok_or_else(|| LvsCfError::UnknownSchedFlag {
            at: ctx.at(s.line),
            expected: SchedFlag::ALL.map(SchedFlag::name).join(", "),
            found: name.to_owned(),
        })?;
        if !scheduler.accepts_flag(flag) {
            return Err(LvsCfError::IncompatibleSchedFlag {
                at: ctx.at(s.line),
                flag: name.to_owned(),
                scheduler: scheduler.name().to_owned(),
            });
        }
        flags.push(flag);
    }
    Ok(flags)
}

fn server_section(
    ctx: &Ctx<'_>,
    section: &RawSection,
    default_port: u16,
) -> Result<RealServer, LvsCfError> {
    let mut rs = RealServer {
        name: section.name.clone(),
        line: section.line,
        address: Ipv4Addr::UNSPECIFIED,
        active: false,
        weight: 1,
        port: default_port,
        lines: BTreeMap::new(),
    };
    for item in &section.items {
        let RawItem::Stmt(s) = item else {
            unreachable!("the raw stage opens no section inside a server");
        };
        rs.lines.insert(s.keyword.clone(), s.line);
        match s.keyword.as_str() {
            "address" => rs.address = ctx.host(s)?,
            "active" => rs.active = ctx.boolean(s)?,
            "weight" => {
                let n = ctx.int(s, 0, 65535, "an integer in 0..=65535")?;
                rs.weight = u32::try_from(n).expect("range-checked to 0..=65535");
            }
            "port" => rs.port = ctx.port(s, false)?,
            other => unreachable!("keyword {other:?} is in keywords::SERVER but not handled"),
        }
    }
    if rs.active && rs.address.is_unspecified() {
        return Err(LvsCfError::MissingAddress {
            at: ctx.at(section.line),
            section: section.as_ref(),
            expected: "\"address = IP\"",
        });
    }
    Ok(rs)
}

/// The port IPVS will use for a real server: with direct routing or tunnelling on a
/// non-fwmark service, ipvsadm forces it to the virtual port.
pub fn effective_port(v: &VirtualService, rs: &RealServer, network: ForwardMethod) -> u16 {
    if network != ForwardMethod::Masq && v.fwmark.is_none() {
        v.port
    } else {
        rs.port
    }
}

fn check_duplicate_servers(
    ctx: &Ctx<'_>,
    section: &RawSection,
    v: &VirtualService,
    network: ForwardMethod,
) -> Result<(), LvsCfError> {
    let mut seen: BTreeMap<(Ipv4Addr, u16), &RealServer> = BTreeMap::new();
    for rs in v.active_servers() {
        let port = effective_port(v, rs, network);
        if let Some(first) = seen.insert((rs.address, port), rs) {
            return Err(LvsCfError::DuplicateServer {
                at: ctx.at(rs.line),
                section: section.as_ref(),
                server: format!("{}:{port}", rs.address),
                name: rs.name.clone(),
                first_name: first.name.clone(),
                first_line: first.line,
                note: if first.port == rs.port {
                    ""
                } else {
                    " (direct routing and tunnelling give every real server the virtual port)"
                },
            });
        }
    }
    Ok(())
}

/// What identifies an IPVS service, for duplicate detection and messages.
fn service_key(v: &VirtualService) -> String {
    match (v.fwmark, &v.address) {
        (Some(mark), _) => format!("fwmark {mark}"),
        (None, Some(a)) => format!("{} {}:{}", v.protocol.name().to_lowercase(), a.addr, v.port),
        (None, None) => unreachable!("active virtual services have an address"),
    }
}

fn check_duplicate_virtuals(ctx: &Ctx<'_>, virtuals: &[VirtualService]) -> Result<(), LvsCfError> {
    let mut seen: BTreeMap<String, &VirtualService> = BTreeMap::new();
    for v in virtuals.iter().filter(|v| v.active) {
        let key = service_key(v);
        if let Some(first) = seen.get(&key) {
            return Err(LvsCfError::DuplicateVirtual {
                at: ctx.at(v.line),
                section: super::error::SectionRef {
                    kind: SectionKind::Virtual,
                    name: v.name.clone(),
                },
                service: key,
                first_name: first.name.clone(),
                first_line: first.line,
            });
        }
        seen.insert(key, v);
    }
    Ok(())
}
