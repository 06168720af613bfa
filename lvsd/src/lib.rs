//! `lvsd` library: the `lvs.cf` model and parser (reused by `pulse`).
#![forbid(unsafe_code)]
