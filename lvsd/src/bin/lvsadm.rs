//! `lvsadm` binary: the control client. Not implemented yet: it refuses every command line.

use std::process::ExitCode;

use clap::Parser;

/// Admin CLI: the ipvsadm command language and output formats, against lvsd's engine.
#[derive(Debug, Parser)]
#[command(name = "lvsadm", version)]
struct Args {
    /// Arguments for the future implementation; accepted so that any command line reaches
    /// the "not implemented" message instead of a usage error.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

fn main() -> ExitCode {
    let _args = Args::parse();
    eprintln!("lvsadm: not implemented yet (the control API comes with a later issue)");
    ExitCode::from(1)
}
