//! Command line → validated [`Settings`]: defaults, Piranha's start-up rules (§3.2 of the
//! reference: `rport` defaults to the port, `send_program` overrides `send`, the built-in
//! HTTP probe on virtual port 80, escape translation) and every check that can fail before
//! the first probe. Errors say which option is wrong and map to exit 2 (usage) or 1.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Args, DEFAULT_SOCKET};
use crate::health::HealthConfig;
use crate::probe::Probe;
use crate::probe::http::{BodyMatch, HttpProbe, TlsSettings};
use crate::probe::program::ProgramProbe;
use crate::probe::stream::StreamProbe;
use crate::text::{Expect, StatusList, translate_escapes, translate_send};

/// Piranha's re-entry time when `-a` is absent.
pub const DEFAULT_REENTRY: Duration = Duration::from_secs(180);

/// Piranha's built-in HTTP probe.
pub const BUILTIN_SEND: &str = "GET / HTTP/1.0\r\n\r\n";
/// Its expect string.
pub const BUILTIN_EXPECT: &str = "HTTP";

/// What is wrong with the command line or the files it names.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A usage error (exit 2).
    #[error("nanny: {0}")]
    Usage(String),
    /// `--fos` (exit 1).
    #[error("nanny: --fos (failover services mode) is not implemented; use --lvs")]
    FosNotImplemented,
    /// `-x` does not compile as a regex (exit 1).
    #[error("nanny: expect regex {pattern:?} does not compile: {detail}")]
    BadRegex {
        /// The pattern as given (after escape translation).
        pattern: String,
        /// The compiler's message.
        detail: String,
    },
}

impl SettingsError {
    /// The documented exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            SettingsError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// The check, resolved.
#[derive(Debug, Clone)]
pub enum Check {
    /// TCP/UDP connect, send, expect.
    Stream {
        /// Bytes to send.
        send: Option<Vec<u8>>,
        /// Expect string (translated) and whether it is a regex.
        expect: Option<(String, bool)>,
        /// Piranha's built-in HTTP probe was chosen.
        builtin_http: bool,
    },
    /// `send_program`.
    Program {
        /// The command line as given.
        command: String,
        /// Expected output (translated).
        expect: Option<String>,
    },
    /// `--http-get`.
    Http {
        /// URL.
        url: String,
        /// Host header.
        host: Option<String>,
        /// Accepted statuses.
        statuses: StatusList,
        /// Body match: text and whether it is a regex.
        body: Option<(String, bool)>,
        /// TLS.
        tls: TlsSettings,
    },
}

/// Everything nanny needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Real server.
    pub rip: Ipv4Addr,
    /// Virtual address (`None` only for fwmark services).
    pub vip: Option<Ipv4Addr>,
    /// Virtual port.
    pub vport: u16,
    /// Real port.
    pub rport: u16,
    /// Firewall mark.
    pub fwmark: Option<u32>,
    /// UDP service.
    pub udp: bool,
    /// Probe timeout.
    pub probe_timeout: Duration,
    /// Health-core settings.
    pub health: HealthConfig,
    /// Re-entry time as given (for the start-up log).
    pub reentry: Duration,
    /// The check.
    pub check: Check,
    /// `-U` as given.
    pub loadcmd: Option<String>,
    /// lvsd's control socket.
    pub socket: PathBuf,
    /// `--test-start`.
    pub test_start: bool,
    /// `-v`.
    pub verbose: bool,
    /// `-e` and `-s` were both given: `-s` is ignored (logged at start).
    pub ignored_send: Option<String>,
}

fn usage(msg: impl Into<String>) -> SettingsError {
    SettingsError::Usage(msg.into())
}

impl Settings {
    /// Validates `args`; `env_socket` is `LVSD_SOCKET`.
    pub fn from_args(args: &Args, env_socket: Option<PathBuf>) -> Result<Self, SettingsError> {
        if args.fos {
            return Err(SettingsError::FosNotImplemented);
        }
        if !args.lvs {
            return Err(usage("unknown service type: give --lvs"));
        }
        let server = args
            .server
            .as_deref()
            .ok_or_else(|| usage("the real server is required: -h IP"))?;
        let rip: Ipv4Addr = server
            .parse()
            .map_err(|_| usage(format!("-h expects an IPv4 address, found {server:?}")))?;
        let vip = match &args.virtaddress {
            Some(v) => Some(
                v.parse::<Ipv4Addr>()
                    .map_err(|_| usage(format!("-V expects an IPv4 address, found {v:?}")))?,
            ),
            None => None,
        };
        let fwmark = (args.fwmark != 0).then_some(args.fwmark);
        if vip.is_none() && fwmark.is_none() {
            return Err(usage(
                "the virtual address is required: -V VIP (or -f MARK for a firewall-mark service)",
            ));
        }
        if args.interval == 0 {
            return Err(usage("-t 0: the probe interval must be at least 1 second"));
        }
        if args.probe_timeout == Some(0) {
            return Err(usage(
                "--probe-timeout 0: the timeout must be at least 1 second",
            ));
        }
        if args.rise == Some(0) || args.fall == 0 {
            return Err(usage("--rise and --fall must be at least 1"));
        }
        let interval = Duration::from_secs(args.interval);
        let reentry = args.reentry.map_or(DEFAULT_REENTRY, Duration::from_secs);
        let rport = args.rport.unwrap_or(args.port);
        let translate = |s: &str| {
            if args.suppress {
                s.to_owned()
            } else {
                translate_escapes(s)
            }
        };
        let expect = args.expect.as_deref().map(translate);
        if let (Some(pattern), true) = (&expect, args.regex) {
            regex::bytes::Regex::new(pattern).map_err(|e| SettingsError::BadRegex {
                pattern: pattern.clone(),
                detail: e.to_string(),
            })?;
        }
        let mut ignored_send = None;
        let check = if let Some(path) = &args.http_get {
            if args.send_program.is_some() || args.send.is_some() || args.udp {
                return Err(usage("--http-get cannot be combined with -e, -s or -u"));
            }
            http_check(args, rip, rport, path, expect)?
        } else if let Some(command) = &args.send_program {
            if command.split(' ').all(str::is_empty) {
                return Err(usage("-e: the send_program command is empty"));
            }
            ignored_send = args.send.clone();
            Check::Program {
                command: command.clone(),
                expect,
            }
        } else if args.port == 80 && !args.udp && args.send.is_none() && expect.is_none() {
            Check::Stream {
                send: Some(BUILTIN_SEND.as_bytes().to_vec()),
                expect: Some((BUILTIN_EXPECT.to_owned(), false)),
                builtin_http: true,
            }
        } else {
            Check::Stream {
                send: args.send.as_deref().map(|s| {
                    if args.suppress {
                        s.as_bytes().to_vec()
                    } else {
                        translate_send(s)
                    }
                }),
                expect: expect.map(|e| (e, args.regex)),
                builtin_http: false,
            }
        };
        let load_monitor = args
            .loadcmd
            .as_deref()
            .is_some_and(|c| !matches!(c.trim(), "" | "none"));
        let health = HealthConfig {
            interval,
            weight: args.weight,
            scale: args.scale,
            quiesce: args.quiesce,
            rise: args
                .rise
                .unwrap_or_else(|| HealthConfig::default_rise(interval, reentry)),
            fall: args.fall,
            load_monitor,
        };
        Ok(Settings {
            rip,
            vip,
            vport: args.port,
            rport,
            fwmark,
            udp: args.udp,
            probe_timeout: args.probe_timeout.map_or(interval, Duration::from_secs),
            health,
            reentry,
            check,
            loadcmd: args.loadcmd.clone(),
            socket: args
                .socket
                .clone()
                .or(env_socket)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
            test_start: args.test_start,
            verbose: args.verbose,
            ignored_send,
        })
    }

    /// `tcp:VIP:VPORT`, `udp:VIP:VPORT` or `fwmark:MARK`.
    pub fn service_key(&self) -> String {
        match (self.fwmark, self.vip) {
            (Some(mark), _) => format!("fwmark:{mark}"),
            (None, Some(vip)) => {
                let proto = if self.udp { "udp" } else { "tcp" };
                format!("{proto}:{}", SocketAddrV4::new(vip, self.vport))
            }
            (None, None) => unreachable!("from_args requires -V or -f"),
        }
    }

    /// The service as lvsd's API names it.
    pub fn service_id(&self) -> lvsd::control::api::ServiceId {
        self.service_key()
            .parse()
            .expect("service_key renders a valid service id")
    }

    /// `RIP:RPORT`, the server in logs and in lvsd's path.
    pub fn server_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.rip, self.rport)
    }

    /// `RIP:RPORT` as text.
    pub fn server_key(&self) -> String {
        self.server_addr().to_string()
    }

    /// `VIP:PORT` (or `fwmark MARK`) for the start-up line.
    pub fn virtual_label(&self) -> String {
        match (self.fwmark, self.vip) {
            (Some(mark), _) => format!("fwmark {mark}"),
            (_, Some(vip)) => SocketAddrV4::new(vip, self.vport).to_string(),
            (None, None) => String::new(),
        }
    }

    /// Builds the probe. Cannot fail: everything was checked by [`Settings::from_args`].
    pub fn probe(&self) -> Probe {
        let addr = SocketAddr::V4(self.server_addr());
        let compile = |(text, regex): &(String, bool)| {
            Expect::new(text, *regex).expect("the regex was compiled in from_args")
        };
        match &self.check {
            Check::Stream { send, expect, .. } => Probe::Stream(StreamProbe {
                addr,
                send: send.clone(),
                expect: expect.as_ref().map(compile),
                udp: self.udp,
            }),
            Check::Program { command, expect } => Probe::Program(ProgramProbe::new(
                command,
                &self.rip.to_string(),
                self.rport,
                expect.clone(),
            )),
            Check::Http {
                url,
                host,
                statuses,
                body,
                tls,
            } => {
                let body = body.as_ref().map(|(text, regex)| {
                    if *regex {
                        BodyMatch::Regex(
                            regex::bytes::Regex::new(text)
                                .expect("the regex was compiled in from_args"),
                        )
                    } else {
                        BodyMatch::Substring(text.clone())
                    }
                });
                Probe::Http(Box::new(HttpProbe::new(
                    url.clone(),
                    host.clone(),
                    statuses.clone(),
                    body,
                    tls.clone(),
                )))
            }
        }
    }
}

fn http_check(
    args: &Args,
    rip: Ipv4Addr,
    rport: u16,
    path: &str,
    expect: Option<String>,
) -> Result<Check, SettingsError> {
    let scheme = if args.https { "https" } else { "http" };
    let path = path.strip_prefix('/').unwrap_or(path);
    let url = format!("{scheme}://{}/{path}", SocketAddrV4::new(rip, rport));
    reqwest::Url::parse(&url).map_err(|e| usage(format!("--http-get {path:?}: {e}")))?;
    let statuses = match &args.http_status {
        Some(list) => {
            StatusList::parse(list).map_err(|e| usage(format!("--http-status {list:?}: {e}")))?
        }
        None => StatusList::default(),
    };
    let mut tls = TlsSettings {
        no_verify: args.tls_no_verify,
        ..TlsSettings::default()
    };
    if let Some(path) = &args.tls_ca {
        match read_pem_bundle(path) {
            Ok(roots) => tls.extra_roots = roots,
            Err(e) => tls.ca_error = Some(e),
        }
    }
    Ok(Check::Http {
        url,
        host: args.http_host.clone(),
        statuses,
        body: expect.map(|e| (e, args.regex)),
        tls,
    })
}

/// Reads the certificates of a PEM bundle; the error is the probe-failure reason
/// (`--tls-ca FILE: why`).
fn read_pem_bundle(path: &PathBuf) -> Result<Vec<reqwest::Certificate>, String> {
    let err = |detail: String| format!("--tls-ca {}: {detail}", path.display());
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| err(crate::probe::error_chain(&e)))?;
    if certs.is_empty() {
        return Err(err("no \"BEGIN CERTIFICATE\" block found".to_owned()));
    }
    Ok(certs)
}
