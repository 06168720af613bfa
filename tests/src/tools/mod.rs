//! Code shared by the lab tools (`src/bin/lab-*.rs`) and by the tests that read their output.
//!
//! - [`args`]: a tiny `--flag value` parser (the tools need nothing beyond std and libc).
//! - [`conns`]: the reports of `lab-conns` (held connections, a long download) and their
//!   parsers.
//! - [`http`]: HTTP/1.1 framing for `lab-http` and `lab-client`.
//! - [`ipip`]: IPv4/UDP packet building and IP-in-IP parsing for `lab-decap`.
//! - [`tally`]: the line format in which `lab-client` and `lab-udp` report which server
//!   answered how often, and its parser.
//! - [`lifetime`]: every tool exits by itself after a bounded time, so that nothing a lab
//!   started can outlive a test for long.

pub mod args;
pub mod conns;
pub mod http;
pub mod ipip;
pub mod tally;

use std::time::Duration;

/// Default bound on a lab tool's life (`--lifetime-s` changes it).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);

/// Exits the process with status 3 after `limit`, whatever it is doing.
pub fn lifetime(tool: &'static str, limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("{tool}: lifetime of {limit:?} reached, exiting");
        std::process::exit(3);
    });
}
