//! lvsd's control API (HTTP/JSON on a Unix socket) and its read-only status page and
//! Prometheus metrics (HTTP on `status_address`).
//!
//! | module | what |
//! |---|---|
//! | [`api`] | paths, service ids, JSON bodies (shared by server and clients) |
//! | [`client`] | a small blocking client (nanny, lvsadm, pulse) |
//! | [`server`] | the hyper server inside lvsd: requests → [`crate::model::Command`]s for the worker |
//! | [`web`] | the status server: `/` and `/metrics` on TCP, read-only |
//! | [`page`] | the status page's HTML, from the views (pure) |
//! | [`metrics`] | the Prometheus exposition, from the views (pure) |

pub mod api;
pub mod client;
pub mod metrics;
pub mod page;
pub mod server;
pub mod web;
