//! lvsadm: ipvsadm's command language and output formats, as a pure library.
//!
//! The `lvsadm` binary parses its arguments with [`cli::parse_args`] (or `-R` input with
//! [`cli::parse_restore`]), asks lvsd's API for what the command needs, fills a
//! [`table::Table`] (and, for `-c`/`--timeout`/`--daemon`, [`table::Conn`]s,
//! [`table::Timeouts`], [`table::DaemonInfo`]s) and prints what [`format`] renders. Nothing
//! in this module does I/O, reads a clock or resolves names; nothing panics on any input.
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | argv / `-R` lines → [`cli::Command`], with ipvsadm 1.31's checks and defaults |
//! | [`error`] | [`error::CliError`] and [`error::OpError`]: ipvsadm's texts and exit codes |
//! | [`table`] | plain data: services, servers, counters, rates, connections, timeouts, daemons |
//! | [`format`] | `-L` (all layouts), `-c`, `--timeout`, `--daemon`, `-S`: byte-identical text |
//! | [`api`] | to and from lvsd's API: request bodies, the table from its views, refusals |
//! | [`rate`] | the kernel's 2-second EWMA rate estimator (`ip_vs_est.c`), time passed in |
//!
//! The reference is ipvsadm 1.31 (`ipvsadm.c`, `libipvs/libipvs.c`, `config_stream.c`);
//! docs/lvsadm.md lists where lvsadm differs.

pub mod api;
pub mod cli;
pub mod error;
pub mod format;
mod popt;
pub mod rate;
pub mod table;

pub use cli::{Command, ListMode, ListOptions, parse_args, parse_restore};
pub use error::{CliError, OpError};
pub use rate::RateEstimator;
pub use table::Table;
