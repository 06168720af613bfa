//! `nanny` binary: thin shell over the library (see `docs/nanny.md`).
//!
//! Exit status: 0 after SIGTERM/SIGINT, 1 run-time failure (including `--fos`, an expect
//! regex that does not compile, an unreadable `--tls-ca`), 2 usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nanny::cli::Args;
use nanny::settings::Settings;

/// Set by lvsd to its own pid in every nanny it starts.
const SUPERVISOR_ENV: &str = "LVSD_SUPERVISOR_PID";

fn main() -> ExitCode {
    let args = Args::parse();
    // A nanny started by lvsd dies with it (Piranha's lvsd set PR_SET_PDEATHSIG in the
    // child; here the child does it for itself), so that an lvsd killed outright leaves no
    // nannies behind to report to nobody, or twice after a restart.
    if let Err(e) = lvsd::supervise::die_with_supervisor(SUPERVISOR_ENV, "lvsd") {
        eprintln!("nanny: {e}");
        return ExitCode::from(1);
    }
    let filter = if args.verbose {
        "info,nanny=debug"
    } else {
        "info"
    };
    lvsd::systemd::init_logging("nanny", "NANNY_LOG", filter, false);
    if let Some(ipvsadm) = &args.ipvsadm {
        tracing::debug!(ipvsadm = %ipvsadm, "-I ignored: nanny reports to lvsd instead of running ipvsadm");
    }
    if let Some(method) = &args.method {
        tracing::debug!(method = %method, "-M ignored: lvsd knows the forwarding method");
    }
    let settings = match Settings::from_args(
        &args,
        std::env::var_os(nanny::cli::SOCKET_ENV).map(PathBuf::from),
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(e.exit_code());
        }
    };
    match nanny::run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("nanny: {e}");
            ExitCode::from(1)
        }
    }
}
