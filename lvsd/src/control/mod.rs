//! lvsd's control API: HTTP/JSON on a Unix socket.
//!
//! | module | what |
//! |---|---|
//! | [`api`] | paths, service ids, JSON bodies (shared by server and clients) |
//! | [`client`] | a small blocking client (nanny, lvsadm, pulse) |
//! | [`server`] | the hyper server inside lvsd: requests → [`crate::model::Command`]s for the worker |

pub mod api;
pub mod client;
pub mod server;
