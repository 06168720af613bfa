//! `lvsd` library: the `lvs.cf` model and parser (reused by `pulse`), the desired IPVS table
//! and `lvsd --check`.
//!
//! Map of modules:
//!
//! | module | what |
//! |---|---|
//! | [`lvscf`] | `lvs.cf` lexer, raw structure, validation into a typed [`lvscf::Config`], lookups, errors |
//! | [`desired`] | typed config → [`desired::DesiredTable`] (what lvsd programs; diffed later) |
//! | [`check`] | `lvsd --check`: render the desired table in `ipvsadm -S -n` format |
//! | [`daemon`] | the forwarding daemon: engine + XDP data path, signals, reload, neighbours |
//! | [`program`] | `diff(current, desired) -> Vec<Change>` and `apply` to the engine (start-up, reload, commands) |
//! | [`model`] | the one model of the running director ([`model::Director`]): lvs.cf ∧ health → desired table; changed only by [`model::Command`]s |
//! | [`control`] | the control API: JSON types, the hyper server (in lvsd), a blocking client (nanny, lvsadm, pulse) |
//! | [`supervise`] | nanny supervision: one process per real server, restarts with backoff, `hard_shutdown` |
//! | [`nanny_args`] | the nanny command line in Piranha's order, then nanny's extension options |
//! | [`fuzzing`] | the body shared by the fuzz target and the seed-corpus test |
//! | [`lvsadm`] | ipvsadm's command language and output formats, pure: parser, table types, renderers, rate estimator |
//!
//! The binaries `lvsd` (`src/main.rs`) and `lvsadm` (`src/bin/lvsadm.rs`) are thin shells.
#![forbid(unsafe_code)]
// `LvsCfError` carries file, line, keyword and found text in each variant so messages are
// precise; it is returned once per parse (cold path), so its size does not matter.
#![allow(clippy::result_large_err)]

pub mod check;
pub mod control;
pub mod daemon;
pub mod desired;
pub mod fuzzing;
pub mod key;
pub mod lvsadm;
pub mod lvscf;
pub mod model;
pub mod nanny_args;
pub mod program;
pub mod supervise;
pub mod systemd;

/// Default configuration path (Piranha's compile-time default).
pub const DEFAULT_CONFIG: &str = "/etc/sysconfig/ha/lvs.cf";
