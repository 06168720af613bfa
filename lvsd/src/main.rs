//! `lvsd` binary: thin shell over the library.
//!
//! `lvsd --check -c FILE` validates and prints the table; `lvsd -c FILE` forwards until
//! SIGTERM (it never forks: run it under systemd or pulse).
//!
//! Exit codes: 0 = file valid / clean shutdown; 1 = invalid or unreadable file, or the
//! daemon could not start or failed (message on stderr); 2 = bad command line (clap).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The lvs daemon: forwards the virtual services of lvs.cf with its own IPVS engine (XDP +
/// AF_XDP), runs one nanny health checker per real server, and serves a control API.
#[derive(Debug, Parser)]
#[command(name = "lvsd", version)]
struct Args {
    /// Configuration file.
    #[arg(short = 'c', long = "configfile", visible_alias = "config", value_name = "FILE", default_value = lvsd::DEFAULT_CONFIG)]
    config: PathBuf,
    /// Validate the file and print the IPVS table lvsd would program (ipvsadm -S -n format).
    #[arg(long)]
    check: bool,
    /// Piranha flag, accepted: lvsd always stays in the foreground and logs to stderr; the
    /// nannies get `--nodaemon` too.
    #[arg(short = 'n', long)]
    nodaemon: bool,
    /// Piranha flag, accepted: lvsd never forks.
    #[arg(long)]
    nofork: bool,
    /// Dry run (Piranha flag): print the interfaces, the IPVS table and the nanny command
    /// lines lvsd would use, and exit without touching anything.
    #[arg(short = 't', long = "test-start")]
    test_start: bool,
    /// Debug logging; also passes -v to the nannies.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Interface to forward on (repeatable; a label such as eth0:1 means eth0); default:
    /// the interfaces of the `address` and `nat_router` lines of lvs.cf, and those on the
    /// real servers' subnets.
    #[arg(short = 'i', long = "interface", value_name = "IF")]
    interfaces: Vec<String>,
    /// The control API's Unix socket (mode 0600). Also passed to the nannies as LVSD_SOCKET.
    #[arg(long, value_name = "PATH", env = "LVSD_SOCKET", default_value = lvsd::control::api::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// The nanny program; default: lvs.cf's `client_monitor` (/usr/sbin/nanny), or the
    /// nanny beside this lvsd when that does not exist.
    #[arg(long, value_name = "PATH")]
    nanny: Option<PathBuf>,
    /// Start no health checkers: every active real server counts as up.
    #[arg(long)]
    no_nannies: bool,
    /// Start as the standby of a director pair: the table is programmed and the nannies
    /// probe, but nothing is steered to the engine until `PUT /v1/role {"role":"active"}`
    /// (what pulse does on takeover).
    #[arg(long)]
    standby: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.check {
        return daemon(&args);
    }
    let lookup = lvsd::lvscf::SystemLookup::default();
    match lvsd::check::check_file(&args.config, &lookup) {
        Ok(report) => {
            for w in &report.warnings {
                eprintln!("lvsd: warning: {w}");
            }
            print!("{}", report.table);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lvsd: {e}");
            ExitCode::from(1)
        }
    }
}

/// Set by pulse to its own pid in the lvsd it starts.
const SUPERVISOR_ENV: &str = "PULSE_SUPERVISOR_PID";

fn daemon(args: &Args) -> ExitCode {
    // An lvsd started by pulse stops with it (SIGTERM, a clean stop that removes the
    // steering), so that a pulse restarted after a crash starts its own lvsd on a free
    // interface instead of finding the old one still attached.
    if let Err(e) = lvsd::supervise::die_with_supervisor(SUPERVISOR_ENV, "pulse") {
        eprintln!("lvsd: {e}");
        return ExitCode::from(1);
    }
    let opts = lvsd::daemon::Options {
        config: args.config.clone(),
        interfaces: args.interfaces.clone(),
        socket: args.socket.clone(),
        nanny: args.nanny.clone(),
        no_nannies: args.no_nannies,
        verbose: args.verbose,
        nodaemon: args.nodaemon,
        standby: args.standby,
    };
    if args.test_start {
        return match lvsd::daemon::test_start(&opts) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("lvsd: {e}");
                ExitCode::from(1)
            }
        };
    }
    let level = if args.verbose { "debug" } else { "info" };
    lvsd::systemd::init_logging("lvsd", "RUST_LOG", level, false);
    match lvsd::daemon::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("lvsd: {e}");
            if let lvsd::daemon::DaemonError::Io(io) = &e
                && let Some(hint) = io.kernel_hint()
            {
                tracing::error!("lvsd: {hint}");
            }
            ExitCode::from(1)
        }
    }
}
