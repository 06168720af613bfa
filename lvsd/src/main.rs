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

/// The lvs daemon: programs IPVS from lvs.cf and runs a nanny per real server.
#[derive(Debug, Parser)]
#[command(name = "lvsd", version)]
struct Args {
    /// Configuration file.
    #[arg(short = 'c', long = "configfile", visible_alias = "config", value_name = "FILE", default_value = lvsd::DEFAULT_CONFIG)]
    config: PathBuf,
    /// Validate the file and print the IPVS table lvsd would program (ipvsadm -S -n format).
    #[arg(long)]
    check: bool,
    /// Stay in the foreground and log to stdout (Piranha flag).
    #[arg(short = 'n', long)]
    nodaemon: bool,
    /// Do not fork, but detach (Piranha flag; pulse uses it).
    #[arg(long)]
    nofork: bool,
    /// Log what would run without changing anything (Piranha flag).
    #[arg(short = 't', long = "test-start")]
    test_start: bool,
    /// Verbose logging, also passed to the nannies (Piranha flag).
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Interface to forward on (repeatable); default: every interface with an IPv4
    /// address except `lo`.
    #[arg(short = 'i', long = "interface", value_name = "IF")]
    interfaces: Vec<String>,
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

fn daemon(args: &Args) -> ExitCode {
    if args.test_start {
        eprintln!("lvsd: --test-start is not implemented yet; use --check to see the table");
        return ExitCode::from(1);
    }
    let level = if args.verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let opts = lvsd::daemon::Options {
        config: args.config.clone(),
        interfaces: args.interfaces.clone(),
    };
    match lvsd::daemon::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("lvsd: {e}");
            ExitCode::from(1)
        }
    }
}
