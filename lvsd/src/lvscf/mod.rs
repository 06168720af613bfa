//! The `lvs.cf` configuration file: model and parser (shared by `lvsd` and `pulse`).
//!
//! Parsing runs in stages, each its own module:
//!
//! | stage | module | input → output | checks |
//! |---|---|---|---|
//! | 0 | [`lexer`] | bytes → lines of tokens | UTF-8, line endings, comments, quotes, `key=value` |
//! | 1 | [`raw`] | tokens → [`raw::RawFile`] | sections and braces, keyword names per section, `=`, value counts, repeated keywords |
//! | 2 | [`validate`] | raw → [`Config`] | value types and ranges, lookups, cross-field rules, Piranha post-processing |
//!
//! [`keywords`] holds the keyword tables, [`value`] the value syntaxes (C integers, netmasks,
//! fractional seconds), [`lookup`] the injectable name resolution, [`model`] the typed
//! result and [`error`] the error and warning types.
//!
//! Contract: the entry points never panic on any input (fuzzed by `fuzz/fuzz_targets/lvscf.rs`
//! and a proptest); they do no I/O other than what the [`Lookup`] does, except [`load`],
//! which reads the file. The format, its defaults and the deliberate differences from Piranha
//! are documented in `docs/lvs-cf.md`.

pub mod error;
pub mod keywords;
pub mod lexer;
pub mod lookup;
pub mod model;
pub mod raw;
pub mod validate;
pub mod value;

use std::path::Path;

pub use error::{Location, LvsCfError, LvsCfWarning, SectionKind, SectionRef};
pub use lookup::{Lookup, StaticLookup, SystemLookup};
pub use model::{
    AddressOnDevice, Config, Global, HealthExtensions, RealServer, ReservationConflictAction,
    ServiceMode, SyncTransport, VirtualService,
};

/// Parses file contents. `file` is the name used in messages (`FILE:LINE: ...`).
pub fn parse_str(file: &str, text: &str, lookup: &dyn Lookup) -> Result<Config, LvsCfError> {
    let lexed = lexer::lex(file, text)?;
    let raw = raw::parse(file, &lexed)?;
    validate::validate(file, &raw, lookup)
}

/// Parses raw bytes (they must be UTF-8). `file` is the name used in messages.
pub fn parse_bytes(file: &str, bytes: &[u8], lookup: &dyn Lookup) -> Result<Config, LvsCfError> {
    parse_str(file, &lexer::decode(file, bytes)?, lookup)
}

/// Reads and parses a file; messages name it as `path` was given.
pub fn load(path: &Path, lookup: &dyn Lookup) -> Result<Config, LvsCfError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| LvsCfError::Io {
        file: file.clone(),
        source,
    })?;
    parse_bytes(&file, &bytes, lookup)
}
