//! `nanny`: probes one real server and asks lvsd to take it out of service or bring it back.
//!
//! One nanny runs per active real server of each active virtual service, started by lvsd
//! with Piranha's argument list (`lvsd::nanny_args`), or by hand. The manual page is
//! `docs/nanny.md`.
//!
//! Map of modules:
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the command line (Piranha's options and this project's extensions) |
//! | [`settings`] | command line → validated [`settings::Settings`], exit codes of bad input |
//! | [`health`] | the sans-IO core: rise/fall, slow start, load weights, forced states |
//! | [`probe`] | TCP, send/expect, UDP, `send_program`, HTTP(S) probes |
//! | [`load`] | the load monitor (`rup`, `ruptime`, `rsh`/`ssh … uptime`) |
//! | [`text`] | escapes, expect matching, HTTP status lists, load-average parsing |
//! | [`director`] | reports to lvsd (`PATCH /v1/services/…/servers/…` over its Unix socket) |
//! | [`shell`] | the I/O loop: threads, signals, retries |
//!
//! The binary (`src/main.rs`) parses the command line, sets up logging and calls [`run`].
#![forbid(unsafe_code)]

pub mod cli;
pub mod director;
pub mod health;
pub mod load;
pub mod probe;
pub mod settings;
pub mod shell;
pub mod text;

use std::time::Instant;

use tracing::{error, info, info_span, warn};

use crate::director::{Director, DryRun, LvsdClient, server_path};
use crate::health::{Health, HealthConfig};
use crate::load::LoadMonitor;
use crate::settings::{Check, Settings};
use crate::shell::{ShellError, ShellParts};

/// How long one report to lvsd may take.
pub const REPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs nanny until SIGTERM/SIGINT.
pub fn run(settings: Settings) -> Result<(), ShellError> {
    let server = settings.server_key();
    let service = settings.service_key();
    let span = info_span!("nanny", service = %service, server = %server);
    let _entered = span.enter();
    info!(
        "starting LVS client monitor for {} -> {server}",
        settings.virtual_label()
    );
    match &settings.check {
        Check::Stream {
            builtin_http: true, ..
        } => info!("nanny: no monitor configured, assuming web service on port 80"),
        Check::Program { command, .. } => {
            if let Some(send) = &settings.ignored_send {
                info!(
                    "External program use requested: ({command}), IGNORING send string option ({send})"
                );
            }
        }
        Check::Http { tls, .. } => {
            if let Some(reason) = &tls.ca_error {
                error!("{reason}; every probe fails until it is fixed and nanny restarted");
            }
        }
        _ => {}
    }
    let load = match settings.loadcmd.as_deref() {
        Some(spec) => match LoadMonitor::new(spec, &settings.rip.to_string()) {
            Ok(load) => load,
            Err(e) => {
                error!("{e}");
                None
            }
        },
        None => None,
    };
    let health = Health::new(
        HealthConfig {
            load_monitor: load.is_some(),
            ..settings.health.clone()
        },
        Instant::now(),
    );
    let path = server_path(&settings.service_id(), settings.server_addr());
    let mut director: Box<dyn Director> = if settings.test_start {
        warn!("test-start: reports to lvsd are logged, not sent");
        Box::new(DryRun::new(path))
    } else {
        Box::new(LvsdClient::new(
            &settings.socket,
            settings.service_id(),
            settings.server_addr(),
            REPORT_TIMEOUT,
        ))
    };
    let parts = ShellParts {
        server,
        timeout: settings.probe_timeout,
        probe: settings.probe(),
        load,
    };
    shell::run(health, parts, director.as_mut())
}
