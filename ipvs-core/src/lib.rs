//! `ipvs-core`: the userspace IPVS engine.
//!
//! Layers, bottom up (see `docs/ARCHITECTURE.md`):
//!
//! | module | job |
//! |---|---|
//! | [`time`] | [`time::Instant`], the engine's notion of "now"; always passed in, never read from a clock |
//! | [`types`] | small shared vocabulary: [`types::Protocol`], [`types::DestId`], [`types::ForwardMethod`], [`types::SchedulerKind`], [`types::ConnClass`] |
//! | [`dest`] | one destination: [`dest::Dest`] (weight, thresholds, OVERLOAD, counters) and its accounting; below both `sched` and `service` |
//! | [`service`] | virtual services and their destinations (weights, thresholds, counters); re-exports [`dest`]'s types |
//! | [`sched`] | the fourteen kernel schedulers, one file each |
//! | [`conn`] | the connection table: states, timeouts, persistence templates, size bound |
//! | [`ipvs`] | [`ipvs::Ipvs`]: services + schedulers + connections glued (scheduling, persistence, accounting, expiry); the engine side of connection sync (change feed, export, import) |
//! | [`sync`] | connection sync between the directors: the signed wire format, the batching [`sync::Sender`] and the authenticating [`sync::Receiver`] |
//! | [`wire`] | zero-copy packet views and validated representations: Ethernet/802.1Q, ARP, IPv4, TCP, UDP, ICMP, IP-in-IP, checksums |
//! | [`frame`] | [`frame::FrameBuf`]: the frame buffer the io layer lends and the engine rewrites (the io/engine seam, with [`engine::Verdict`]) |
//! | [`engine`] | [`engine::Engine`]: frames in, verdicts out — NAT/DR/TUN forwarding, NAT replies, ICMP errors that follow connections, neighbours, counters |
//! | [`io`] | the only I/O: XDP steering program emitted from Rust, AF_XDP sockets and rings, poll; `unsafe` only in `io::sys` |
//!
//! Everything except [`io`] is sans-IO: no clock reads, no sockets, no threads, no unseeded
//! randomness. `unsafe` is denied crate-wide and allowed only in the private `io::sys` module.

#![deny(unsafe_code)]

pub mod conn;
pub mod dest;
pub mod engine;
pub mod frame;
pub mod io;
pub mod ipvs;
pub mod sched;
pub mod service;
pub mod sync;
pub mod time;
pub mod types;
pub mod wire;
