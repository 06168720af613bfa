//! The command line: Piranha 0.8.6 nanny's options (with the man page's spellings as
//! aliases) plus this project's extensions, documented in `docs/nanny.md`.
//!
//! `-h` is `--server` and `-V` is `--virtaddress` as in Piranha, so help and version are
//! long-only (`--help`, `--usage`, `--version`).

use std::path::PathBuf;

use clap::{ArgAction, Parser};

/// Default control socket when neither `--socket` nor `LVSD_SOCKET` is given (lvsd's).
pub const DEFAULT_SOCKET: &str = lvsd::control::api::DEFAULT_SOCKET;

/// The environment variable lvsd sets for its nannies.
pub const SOCKET_ENV: &str = lvsd::control::api::SOCKET_ENV;

/// nanny: probes one real server and asks lvsd to take it out of service or bring it back.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "nanny",
    version,
    disable_help_flag = true,
    disable_version_flag = true,
    after_help = "Exit status: 0 stopped by SIGTERM/SIGINT, 1 run-time failure, 2 usage error. See docs/nanny.md."
)]
pub struct Args {
    /// Real server to monitor (required).
    #[arg(short = 'h', long = "server", value_name = "IP")]
    pub server: Option<String>,

    /// Virtual address of the service (required unless -f).
    #[arg(short = 'V', long = "virtaddress", value_name = "IP")]
    pub virtaddress: Option<String>,

    /// Virtual port.
    #[arg(short = 'p', long = "port", value_name = "N", default_value_t = 80)]
    pub port: u16,

    /// Port probed on the real server (default: the virtual port).
    #[arg(short = 'r', long = "rport", value_name = "N")]
    pub rport: Option<u16>,

    /// Firewall-mark service.
    #[arg(short = 'f', long = "fwmark", value_name = "MARK", default_value_t = 0)]
    pub fwmark: u32,

    /// Seconds between probes (and the probe timeout unless --probe-timeout).
    #[arg(
        short = 't',
        long = "interval",
        value_name = "SECS",
        default_value_t = 10
    )]
    pub interval: u64,

    /// Seconds a failed server must stay healthy before re-entry (absent: 180).
    #[arg(short = 'a', long = "reentrytime", value_name = "SECS")]
    pub reentry: Option<u64>,

    /// Configured weight.
    #[arg(short = 'w', long = "weight", value_name = "N", default_value_t = 1)]
    pub weight: u32,

    /// Load-based weights stay at or below weight × scale.
    #[arg(short = 'S', long = "scale", value_name = "N", default_value_t = 10)]
    pub scale: u32,

    /// Forwarding method m|g|i (lvsd owns the table; accepted for compatibility).
    #[arg(
        short = 'M',
        long = "method",
        value_name = "m|g|i",
        allow_hyphen_values = true
    )]
    pub method: Option<String>,

    /// ipvsadm path (accepted and ignored: nanny reports to lvsd).
    #[arg(short = 'I', long = "ipvsadm", value_name = "PATH")]
    pub ipvsadm: Option<String>,

    /// Load monitor: none, rup, ruptime, rsh, ssh or a program.
    #[arg(short = 'U', long = "loadcmd", value_name = "CMD")]
    pub loadcmd: Option<String>,

    /// Text to send after connecting.
    #[arg(
        short = 's',
        long = "send_string",
        visible_alias = "send_str",
        value_name = "STR",
        allow_hyphen_values = true
    )]
    pub send: Option<String>,

    /// Expected reply (prefix; "*" = anything; a regex with --regex).
    #[arg(
        short = 'x',
        long = "expect_string",
        visible_alias = "expect_str",
        value_name = "STR",
        allow_hyphen_values = true
    )]
    pub expect: Option<String>,

    /// External check program (%h = real server, %p = port); overrides -s.
    #[arg(
        short = 'e',
        long = "send_program",
        value_name = "CMD",
        allow_hyphen_values = true
    )]
    pub send_program: Option<String>,

    /// -x is a regular expression.
    #[arg(long = "regex")]
    pub regex: bool,

    /// Do not translate \n \r \t \\ \' \" in -s and -x.
    #[arg(short = 'T', long = "suppress")]
    pub suppress: bool,

    /// Weight 0 instead of removal on failure.
    #[arg(short = 'q', long = "quiesce_server", visible_alias = "quiesce-server")]
    pub quiesce: bool,

    /// Probe over UDP.
    #[arg(short = 'u', long = "udp", visible_alias = "UDP")]
    pub udp: bool,

    /// Stay in the foreground (nanny always does).
    #[arg(short = 'n', long = "nodaemon")]
    pub nodaemon: bool,

    /// Do not fork (nanny never does).
    #[arg(short = 'c', long = "nofork")]
    pub nofork: bool,

    /// Log the calls to lvsd instead of making them.
    #[arg(long = "test-start", visible_alias = "norun")]
    pub test_start: bool,

    /// Debug logging.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Monitor a real server of an LVS virtual service.
    #[arg(long = "lvs")]
    pub lvs: bool,

    /// Failover-services mode (legacy; not implemented).
    #[arg(long = "fos")]
    pub fos: bool,

    /// lvsd's control socket [env: LVSD_SOCKET; default /run/lvsd/lvsd.sock].
    #[arg(long = "socket", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Consecutive good probes that re-admit a failed server (default max(1, reentry/interval)).
    #[arg(long = "rise", value_name = "N")]
    pub rise: Option<u32>,

    /// Consecutive failed probes that take a server out (default 1).
    #[arg(long = "fall", value_name = "N", default_value_t = 1)]
    pub fall: u32,

    /// Probe with an HTTP GET of this path instead of -s/-x (body matched against -x).
    #[arg(long = "http-get", value_name = "PATH")]
    pub http_get: Option<String>,

    /// Use HTTPS for --http-get.
    #[arg(long = "https")]
    pub https: bool,

    /// Host header for --http-get (default: the real server's address).
    #[arg(long = "http-host", value_name = "HOST")]
    pub http_host: Option<String>,

    /// Accepted HTTP statuses, e.g. 200,204,300-399 (default 200-399).
    #[arg(long = "http-status", value_name = "LIST")]
    pub http_status: Option<String>,

    /// PEM bundle of extra trusted CA certificates for --https.
    #[arg(long = "tls-ca", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// Do not verify the server certificate for --https.
    #[arg(long = "tls-no-verify")]
    pub tls_no_verify: bool,

    /// Probe timeout in seconds (default: the interval, as Piranha).
    #[arg(long = "probe-timeout", value_name = "SECS")]
    pub probe_timeout: Option<u64>,

    /// Print help.
    #[arg(long = "help", visible_alias = "usage", action = ArgAction::Help)]
    pub help: Option<bool>,

    /// Print version.
    #[arg(long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
}
