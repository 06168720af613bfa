//! `nanny` binary: thin shell over the library (see `docs/nanny.md`).
//!
//! Exit status: 0 after SIGTERM/SIGINT, 1 run-time failure (including `--fos`, an expect
//! regex that does not compile, an unreadable `--tls-ca`), 2 usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nanny::cli::Args;
use nanny::settings::Settings;
use tracing_subscriber::EnvFilter;

/// Set by lvsd to its own pid in every nanny it starts.
const SUPERVISOR_ENV: &str = "LVSD_SUPERVISOR_PID";

/// A nanny started by lvsd dies with it (Piranha's lvsd set `PR_SET_PDEATHSIG` in the
/// child; here the child does it for itself), so that an lvsd killed outright leaves no
/// nannies behind to report to nobody, or twice after a restart. A nanny run by hand is not
/// tied to its shell.
fn die_with_supervisor() -> Result<(), String> {
    let Some(pid) = std::env::var(SUPERVISOR_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return Ok(());
    };
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
        .map_err(|e| format!("cannot tie nanny to lvsd (prctl): {e}"))?;
    // lvsd may have died between fork and prctl: then the signal never comes.
    if nix::unistd::getppid().as_raw() != pid {
        return Err(format!("lvsd (pid {pid}) is gone; not starting"));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = die_with_supervisor() {
        eprintln!("nanny: {e}");
        return ExitCode::from(1);
    }
    let filter = EnvFilter::try_from_env("NANNY_LOG").unwrap_or_else(|_| {
        EnvFilter::new(if args.verbose {
            "info,nanny=debug"
        } else {
            "info"
        })
    });
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_env_filter(filter)
        .init();
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
