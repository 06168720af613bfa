//! `pulse` binary: thin shell over the library (see `docs/ARCHITECTURE.md`).

use clap::Parser;

/// heartbeats with the partner director, decides who is active, brings the VIPs up and supervises lvsd.
#[derive(Debug, Parser)]
#[command(name = "pulse", version)]
struct Args {
    /// Arguments for the future implementation; accepted so that Piranha-style command
    /// lines reach the "not implemented" message instead of a usage error.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let _args = Args::parse();
    match pulse::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::from(1)
        }
    }
}
