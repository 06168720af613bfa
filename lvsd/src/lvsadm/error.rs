//! lvsadm's errors, each printing ipvsadm 1.31's exact text.
//!
//! [`CliError`] covers what ipvsadm rejects before talking to the kernel (`fail(2, …)`,
//! `tryhelp_exit`, popt errors); [`OpError`] covers the kernel's refusals as `ipvs_strerror`
//! words them. The binary prints `Display` plus a newline on stderr and exits with
//! `exit_code()`.

use thiserror::Error;

/// A popt error after the command option (`poptStrerror`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoptError {
    /// `POPT_ERROR_BADOPT`.
    UnknownOption,
    /// `POPT_ERROR_NOARG`.
    MissingArgument,
    /// `POPT_ERROR_UNWANTEDARG` (`--stats=1`).
    UnwantedArgument,
}

impl PoptError {
    /// popt's text.
    pub fn text(self) -> &'static str {
        match self {
            PoptError::UnknownOption => "unknown option",
            PoptError::MissingArgument => "missing argument",
            PoptError::UnwantedArgument => "option does not take an argument",
        }
    }
}

/// A command line ipvsadm would refuse, with ipvsadm's message (`Display`) and exit status.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CliError {
    /// No command, or an option before the command (`tryhelp_exit`, status 255).
    #[error("Try `{program} -h' or '{program} --help' for more information.")]
    TryHelp {
        /// argv\[0\] as typed.
        program: String,
    },
    /// Unknown option or missing argument after the command (status 255).
    #[error("{option}: {}", .error.text())]
    Popt {
        /// The option as typed.
        option: String,
        /// What popt found wrong.
        error: PoptError,
    },
    /// A second command or `-h`/`-v` after the command.
    #[error("invalid option `{0}'")]
    InvalidOption(String),
    /// `set_option` on an option given twice.
    #[error("multiple '{0}' options specified")]
    MultipleOptions(&'static str),
    /// `-t/-u/--sctp-service` argument.
    #[error("illegal virtual server address[:port] specified")]
    IllegalVirtualAddress,
    /// `-r` argument.
    #[error("illegal real server address[:port] specified")]
    IllegalRealAddress,
    /// `-w` outside 0..=65535.
    #[error("illegal weight specified")]
    IllegalWeight,
    /// `-x` outside 0..=INT_MAX.
    #[error("illegal u_threshold specified")]
    IllegalUThreshold,
    /// `-y` outside 0..=INT_MAX.
    #[error("illegal l_threshold specified")]
    IllegalLThreshold,
    /// `--syncid` outside 0..=255.
    #[error("illegal syncid specified")]
    IllegalSyncid,
    /// `-p` or `--set` value.
    #[error("invalid timeout value `{0}' specified")]
    InvalidTimeout(String),
    /// `-f` value.
    #[error("invalid fwmark value `{0}' specified")]
    InvalidFwmark(String),
    /// `-M` for an IPv4 service.
    #[error("illegal virtual server persistent mask specified")]
    IllegalNetmask,
    /// `-M` for an IPv6 service.
    #[error("illegal ipv6 netmask specified")]
    IllegalIpv6Netmask,
    /// `-6` without a preceding `-f`; ipvsadm's format already ends in a newline.
    #[error("-6 used before -f\n")]
    Ipv6BeforeFwmark,
    /// A `-b` flag for another scheduler.
    #[error("incompatible scheduler flag `{0}'")]
    IncompatibleSchedFlag(String),
    /// An unknown `-b` flag.
    #[error("invalid scheduler flag `{0}'")]
    InvalidSchedFlag(String),
    /// `-A/-E` on port 0 without `-p`.
    #[error("Zero port specified for non-persistent service")]
    ZeroPort,
    /// `-o` on a TCP/SCTP service.
    #[error("One-Packet Scheduling is only for UDP virtual services")]
    OpsNotUdp,
    /// Real server family differs from the service's without `-i`.
    #[error("Different address family is allowed only for tunneling servers")]
    DifferentFamily,
    /// Tunnel options without `-i`.
    #[error("Tunnel options conflict with forward method")]
    TunnelOptionsConflict,
    /// A leftover word.
    #[error("unexpected argument {0}")]
    UnexpectedArgument(String),
    /// `--set` without three values.
    #[error("--set option requires 3 timeout values")]
    SetNeedsThree,
    /// `--start-daemon` value.
    #[error("illegal start-daemon parameter specified")]
    IllegalStartDaemon,
    /// `--stop-daemon` value (ipvsadm's text, sic).
    #[error("illegal start_daemon specified")]
    IllegalStopDaemon,
    /// `--mcast-port` value.
    #[error("illegal mcast-port specified")]
    IllegalMcastPort,
    /// `--mcast-ttl` value.
    #[error("illegal mcast-ttl specified")]
    IllegalMcastTtl,
    /// `--sync-maxlen` value.
    #[error("illegal sync-maxlen specified")]
    IllegalSyncMaxlen,
    /// `--mcast-group` IPv4 value.
    #[error("invalid IPv4 mcast-group `{0}'")]
    InvalidMcastGroup4(String),
    /// `--mcast-group` IPv6 value.
    #[error("invalid IPv6 mcast-group `{0}'")]
    InvalidMcastGroup6(String),
    /// `--tun-type` value.
    #[error("illegal tunnel type specified")]
    IllegalTunnelType,
    /// `--tun-port` value.
    #[error("illegal tunnel port specified")]
    IllegalTunnelPort,
    /// `-L` with `-c/--timeout/--daemon` and a per-service layout.
    #[error("options conflicts in the list command")]
    ListConflict,
    /// `generic_opt_check`: a compulsory option is missing.
    #[error("You need to supply the '{option}' option for the '{command}' command")]
    MissingOption {
        /// Option name (`optnames[]`).
        option: &'static str,
        /// Command name (`cmdnames[]`).
        command: &'static str,
    },
    /// `generic_opt_check`: an option the command does not take.
    #[error("Illegal '{option}' option with the '{command}' command")]
    IllegalOption {
        /// Option name.
        option: &'static str,
        /// Command name.
        command: &'static str,
    },
    /// `generic_opt_check`: two exclusive options.
    #[error("The option '{option}' conflicts with the '{other}' option in the '{command}' command")]
    ConflictingOptions {
        /// The later option in `optnames[]` order.
        option: &'static str,
        /// The earlier one.
        other: &'static str,
        /// Command name.
        command: &'static str,
    },
    /// `tunnel_opt_check`: `--tun-port` missing for gue.
    #[error("You need to supply the '{option}' option for the '{tunnel}' tunnel type")]
    MissingTunnelOption {
        /// Option name.
        option: &'static str,
        /// Tunnel type.
        tunnel: &'static str,
    },
    /// `tunnel_opt_check`: an option the tunnel type does not take.
    #[error("Illegal '{option}' option with the '{tunnel}' tunnel type")]
    IllegalTunnelOption {
        /// Option name.
        option: &'static str,
        /// Tunnel type.
        tunnel: &'static str,
    },
    /// `tunnel_opt_check`: two checksum options.
    #[error(
        "The option '{option}' conflicts with the '{other}' option in the '{tunnel}' tunnel type"
    )]
    ConflictingTunnelOptions {
        /// The later option.
        option: &'static str,
        /// The earlier one.
        other: &'static str,
        /// Tunnel type.
        tunnel: &'static str,
    },
}

impl CliError {
    /// ipvsadm's exit status: 255 for `tryhelp_exit` and popt errors, 2 for `fail(2, …)`.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::TryHelp { .. } | CliError::Popt { .. } => 255,
            _ => 2,
        }
    }
}

/// The kernel's (here: lvsd's) refusal of a request, worded by `ipvs_strerror`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OpError {
    /// `-A`, EEXIST.
    #[error("Service already exists")]
    ServiceExists,
    /// `-A/-E`, ENOENT.
    #[error("Scheduler or persistence engine not found")]
    SchedulerNotFound,
    /// `-E/-D/-Z/-L service`, ESRCH.
    #[error("No such service")]
    NoSuchService,
    /// `-a/-e/-d`, ESRCH.
    #[error("Service not defined")]
    ServiceNotDefined,
    /// `-a`, EEXIST.
    #[error("Destination already exists")]
    DestExists,
    /// `-e/-d`, ENOENT.
    #[error("No such destination")]
    NoSuchDest,
    /// `--start-daemon`, EEXIST.
    #[error("Daemon has already run")]
    DaemonRunning,
    /// `--stop-daemon`, ESRCH.
    #[error("No daemon is running")]
    NoDaemon,
    /// EPERM.
    #[error("Permission denied (you must be root)")]
    PermissionDenied,
    /// EINVAL.
    #[error("Invalid operation.  Possibly wrong module version, address not unicast, ...")]
    InvalidOperation,
    /// ENOPROTOOPT.
    #[error("Protocol not available")]
    ProtocolNotAvailable,
    /// ENOMEM.
    #[error("Memory allocation problem")]
    NoMemory,
    /// EOPNOTSUPP.
    #[error("Operation not supported with IPv6")]
    Ipv6NotSupported,
    /// EAFNOSUPPORT.
    #[error("Operation not supported with specified address family")]
    FamilyNotSupported,
    /// EMSGSIZE.
    #[error("Module is wrong version")]
    WrongVersion,
    /// Anything else, as `strerror` (or lvsd) words it.
    #[error("{0}")]
    Other(String),
}

impl OpError {
    /// ipvsadm's exit status after a refused request: 1 when listing (`-L`, `-S`; ipvsadm
    /// `exit(1)`s in `list_all`/`list_service`), 255 for commands that change state
    /// (`process_options` returns -1).
    pub fn exit_code(&self, listing: bool) -> u8 {
        if listing { 1 } else { 255 }
    }
}
