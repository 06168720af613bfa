//! `nanny` binary: thin shell over the library (see `docs/ARCHITECTURE.md`).

use clap::Parser;

/// probes one real server and asks lvsd to take it out of service or bring it back.
#[derive(Debug, Parser)]
#[command(name = "nanny", version)]
struct Args {
    /// Arguments for the future implementation; accepted so that Piranha-style command
    /// lines reach the "not implemented" message instead of a usage error.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let _args = Args::parse();
    match nanny::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::from(1)
        }
    }
}
