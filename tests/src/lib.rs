//! Cross-process test support: the workspace's binaries, the network-namespace lab, and the
//! code shared by the lab's small tools.
//!
//! Map:
//! - [`bin`]: path of a workspace binary in `target/<profile>/`.
//! - [`lab`]: builds a lab of network namespaces (clients, directors, real servers, a switch
//!   namespace with two bridges), runs commands in it with deadlines, tears it down on drop.
//!   See `tests/README.md` for the topology and the address plan.
//! - [`lvsd`]: an `lvs.cf` builder for the lab's address plan, and starting the real `lvsd` on
//!   director 0 until it forwards.
//! - [`pair`]: a director pair running the real `pulse` (and its `lvsd`): the lvs.cf lines,
//!   starting pulse, who holds the VIP, each lvsd's sync and status views.
//! - [`tools`]: argument parsing, HTTP framing and the tally format shared by the lab tools
//!   (`src/bin/lab-http.rs`, `lab-client`, `lab-udp`, `lab-decap`) and by the tests that read
//!   their output.
//!
//! The library has no unsafe code; the only unsafe of the crate sits in the `sys` modules of
//! the `lab-decap` and `lab-heartbeat` tools (raw sockets, AF_PACKET, the TUN ioctl).
#![forbid(unsafe_code)]

pub mod heartbeat;
pub mod lab;
pub mod lvsd;
pub mod pair;
pub mod tools;

use std::path::PathBuf;

/// Path of a workspace binary (`lvsd`, `pulse`, `lab-http`, ...) in the same target directory
/// as the running test. `cargo test --workspace` builds every package's binaries before any
/// test runs, because every binary package has integration tests of its own; `cargo test -p
/// tests` builds this package's lab tools. Inside `tests/tests/*.rs`,
/// `env!("CARGO_BIN_EXE_lab-http")` names this package's own binaries just as well.
///
/// # Panics
/// If the binary has not been built: the message says how to build it.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    // Tests run from target/<profile>/deps/<test>; binaries such as lab-bench from
    // target/<profile>/<bin>. Either way the binaries sit in target/<profile>/.
    let mut dir = exe.parent().expect("an executable lives in a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().expect("deps/ lives in target/<profile>/");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --workspace` (or the README's test command) first",
        path.display()
    );
    path
}
