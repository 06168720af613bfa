//! Helpers shared by the integration tests: parse with a deterministic lookup.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use lvsd::lvscf::{Config, StaticLookup, parse_str};

/// Hosts the fake resolver knows.
pub fn lookup() -> StaticLookup {
    StaticLookup::new()
        .host("director1", Ipv4Addr::new(198, 18, 0, 2))
        .host("director2", Ipv4Addr::new(198, 18, 0, 3))
        .host("rs1.example", Ipv4Addr::new(198, 19, 0, 11))
        .host("vip.example", Ipv4Addr::new(198, 18, 0, 10))
}

/// Parses `text` as `t.cf`; panics with the message on error.
pub fn parse(text: &str) -> Config {
    parse_str("t.cf", text, &lookup()).unwrap_or_else(|e| panic!("{e}"))
}

/// Parses `text` as `t.cf` and returns the error message; panics if it parses.
pub fn err(text: &str) -> String {
    match parse_str("t.cf", text, &lookup()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// A minimal active virtual service around `body` (lines 1-3 before the body).
pub fn vs(body: &str) -> String {
    format!("network = nat\nvirtual v {{\n    address = 198.18.0.10 eth0:1\n{body}\n}}\n")
}
