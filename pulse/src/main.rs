//! `pulse` binary: thin shell over the library (see `docs/ARCHITECTURE.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Heartbeats with the partner director, decides who is active, brings the VIPs up and
/// supervises lvsd.
#[derive(Debug, Parser)]
#[command(name = "pulse", version)]
struct Args {
    /// The configuration file.
    #[arg(
        short = 'c',
        long = "configfile",
        default_value = "/etc/sysconfig/ha/lvs.cf"
    )]
    config: PathBuf,
    /// Stay in the foreground (accepted for Piranha's command lines: pulse never forks).
    #[arg(short = 'n', long = "nodaemon")]
    nodaemon: bool,
    /// Verbose logging (debug level).
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Print what would be done on this host (role, heartbeat paths, addresses, lvsd's
    /// command line) and exit, without doing any of it.
    #[arg(short = 't', long = "test-start")]
    test_start: bool,
    /// Become active at start-up without waiting for the partner.
    #[arg(long = "forceactive")]
    force_active: bool,
    /// Remove this file's floating addresses (VIPs, nat_router) from the interfaces and
    /// exit: for `ExecStopPost=`, so that a pulse that crashed leaves no VIP behind while
    /// the partner takes over.
    #[arg(long = "release-addresses")]
    release_addresses: bool,
    /// The lvsd binary (default: the `lvsd` beside pulse, else /usr/sbin/lvsd).
    #[arg(long = "lvsd")]
    lvsd: Option<PathBuf>,
    /// lvsd's control socket (passed to lvsd).
    #[arg(long = "socket", default_value = "/run/lvsd/lvsd.sock")]
    socket: PathBuf,
    /// Real-time (SCHED_RR) priority of the heartbeat loop, 1-99, so that a busy host cannot
    /// delay heartbeats; 0 keeps the normal scheduling policy.
    #[arg(long = "rt-priority", default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..=99))]
    rt_priority: i32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let level = if args.verbose { "debug" } else { "info" };
    lvsd::systemd::init_logging("pulse", "RUST_LOG", level, true);
    let opts = pulse::daemon::Options {
        config: args.config,
        force_active: args.force_active,
        lvsd: args.lvsd.unwrap_or_else(pulse::daemon::default_lvsd),
        socket: args.socket,
        realtime: (args.rt_priority > 0).then_some(args.rt_priority),
    };
    if args.test_start {
        return match pulse::daemon::test_start(&opts) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pulse: {e}");
                ExitCode::from(1)
            }
        };
    }
    if args.release_addresses {
        return match pulse::daemon::release_addresses(&opts) {
            Ok(n) => {
                tracing::info!(
                    released = n,
                    "released {n} floating address(es) left on the interfaces"
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::from(1)
            }
        };
    }
    match pulse::daemon::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("pulse: {e}");
            ExitCode::from(1)
        }
    }
}
