//! Cross-process test support: locating the workspace's binaries.
//!
//! The network-namespace lab (client, directors, real servers, a switch namespace) lands here
//! with the forwarding issue; for now this crate only finds the real binaries so that the
//! tests in `tests/tests/` run them as an operator would.
#![forbid(unsafe_code)]

use std::path::PathBuf;

/// Path of a workspace binary (`lvsd`, `pulse`, ...) in the same target directory as the
/// running test. `cargo test --workspace` builds every package's binaries before any test
/// runs, because every binary package has integration tests of its own.
///
/// # Panics
/// If the binary has not been built: the message says how to build it.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --workspace` (or the README's test command) first",
        path.display()
    );
    path
}
