//! `lvsd` binary: thin shell over the library. Only `--check` works so far.
//!
//! Exit codes: 0 = file valid (table on stdout); 1 = invalid file, unreadable file, or
//! not implemented (message on stderr); 2 = bad command line (clap).

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
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.check {
        eprintln!("{}", lvsd::NOT_IMPLEMENTED);
        return ExitCode::from(1);
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
