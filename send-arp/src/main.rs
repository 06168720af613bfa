//! `send-arp` binary: thin shell over the library (see `docs/ARCHITECTURE.md`).

use clap::Parser;

/// sends gratuitous ARP for a floating address; accepts Piranha's send_arp arguments.
#[derive(Debug, Parser)]
#[command(name = "send-arp", version)]
struct Args {
    /// Arguments for the future implementation; accepted so that Piranha-style command
    /// lines reach the "not implemented" message instead of a usage error.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let _args = Args::parse();
    match send_arp::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::from(1)
        }
    }
}
