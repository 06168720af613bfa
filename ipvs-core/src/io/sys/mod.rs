//! The only place in `ipvs-core` with `unsafe` code: raw syscalls (bpf(2), AF_XDP socket
//! options, mmap, poll, setns, AF_PACKET) and the shared-memory rings of AF_XDP.
//!
//! Contract: every item exported from here is safe to call with any arguments; the invariants
//! the kernel needs (buffer lengths, pointer lifetimes, ring ownership) are checked or
//! guaranteed inside, and every `unsafe` block names them in a `// SAFETY:` comment.
//! Nothing here knows about services, engines or verdicts.
//!
//! | file | job |
//! |---|---|
//! | `bpf` | bpf(2): map create/lookup/update/delete, program load (with verifier log), XDP link create, test run |
//! | `xsk` | AF_XDP socket, UMEM area, the four rings (fill, completion, rx, tx) with acquire/release ordering |
//! | `net` | interface index, poll(2), setns(2) into a network namespace, a raw AF_PACKET socket, real-time scheduling |

pub mod bpf;
pub mod net;
pub mod xsk;

use std::io;

/// Converts a `-1 / errno` return into `io::Result`.
fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`cvt`] for `c_int` returns.
fn cvt_int(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
