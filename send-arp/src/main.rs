//! `send-arp` binary: parses the command line and calls the library (`docs/send-arp.md`).
//!
//! Exit status: 0 frames sent, 1 failure (interface, socket, send), 2 usage error.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, error::ErrorKind};
use send_arp::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse(); // exits 2 with the usage on a malformed command line
    let invocation = match cli.invocation() {
        Ok(invocation) => invocation,
        Err(e) => Cli::command().error(ErrorKind::ValueValidation, e).exit(),
    };
    match send_arp::run(&invocation) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("send-arp: {e}");
            ExitCode::from(1)
        }
    }
}
