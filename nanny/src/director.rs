//! Reporting to lvsd: nanny never touches IPVS itself, it asks lvsd to change its server.
//!
//! Contract v1 (lvsd's control API over its Unix socket, HTTP/JSON):
//!
//! ```text
//! PATCH /v1/services/{service}/servers/{rip}:{rport}
//! {"state": "up" | "down" | "quiesced", "weight": <u32>, "reason": "<text>"}   (all optional)
//! ```
//!
//! `{service}` is `tcp:VIP:VPORT`, `udp:VIP:VPORT` or `fwmark:MARK`. 200 = applied (body: the
//! server's JSON); 404 = unknown service or server; 400 = malformed; 503 = lvsd shutting down.
//! Piranha's `ipvsadm -a` becomes `{"state":"up","weight":W}`, `-d` `{"state":"down"}`, the
//! quiesce `-e -w 0` `{"state":"quiesced"}` and a weight change `{"weight":W}`.
//!
//! [`Director`] hides the transport so the shell and the tests need no lvsd. [`LvsdClient`]
//! uses lvsd's own blocking client (`lvsd::control::client::Client`: one request per
//! connection over the Unix socket, bounded by a timeout, no runtime). [`DryRun`] serves
//! `--test-start`: it logs the call and reports success.

use std::net::SocketAddrV4;
use std::path::Path;
use std::time::Duration;

use lvsd::control::api::{self, ServerPatch, ServiceId};
use lvsd::control::client::{Client, ClientError};

/// The state nanny asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// In service.
    Up,
    /// Removed.
    Down,
    /// Present with weight 0.
    Quiesced,
}

impl ServerState {
    /// The JSON word.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Up => "up",
            ServerState::Down => "down",
            ServerState::Quiesced => "quiesced",
        }
    }
}

/// One change requested from lvsd; absent fields are left alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    /// New state.
    pub state: Option<ServerState>,
    /// New weight.
    pub weight: Option<u32>,
    /// Why (for lvsd's log and API).
    pub reason: Option<String>,
}

impl Patch {
    /// The API body.
    pub fn to_api(&self) -> ServerPatch {
        ServerPatch {
            state: self.state.map(|s| match s {
                ServerState::Up => api::ServerState::Up,
                ServerState::Down => api::ServerState::Down,
                ServerState::Quiesced => api::ServerState::Quiesced,
            }),
            weight: self.weight,
            reason: self.reason.clone(),
        }
    }

    /// The JSON body, as sent.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_api()).unwrap_or_default()
    }

    /// Folds a newer patch into one not yet delivered: a newer state replaces everything,
    /// a newer weight alone updates the weight.
    pub fn merge(self, newer: Patch) -> Patch {
        if newer.state.is_some() {
            return newer;
        }
        Patch {
            state: self.state,
            weight: newer.weight.or(self.weight),
            reason: newer.reason.or(self.reason),
        }
    }
}

/// Why lvsd did not take a patch.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DirectorError(#[from] pub ClientError);

impl DirectorError {
    /// Whether sending the same patch later may succeed: not when lvsd called the request
    /// itself wrong (400, 422), which only a bug in nanny causes.
    pub fn retry(&self) -> bool {
        !matches!(self.0.status(), Some(400 | 422))
    }
}

/// Where nanny's reports go.
pub trait Director {
    /// Applies `patch` to this nanny's server.
    fn set_server(&mut self, patch: &Patch) -> Result<(), DirectorError>;
}

/// The request path of a server: `/v1/services/{service}/servers/{rip}:{rport}`.
pub fn server_path(service: &ServiceId, server: SocketAddrV4) -> String {
    api::server_path(service, server)
}

/// lvsd's control socket, through lvsd's client.
#[derive(Debug, Clone)]
pub struct LvsdClient {
    client: Client,
    service: ServiceId,
    server: SocketAddrV4,
}

impl LvsdClient {
    /// A client for `server` of `service` through `socket`, each call bounded by `timeout`.
    pub fn new(socket: &Path, service: ServiceId, server: SocketAddrV4, timeout: Duration) -> Self {
        Self {
            client: Client::new(socket).timeout(timeout),
            service,
            server,
        }
    }
}

impl Director for LvsdClient {
    fn set_server(&mut self, patch: &Patch) -> Result<(), DirectorError> {
        let body = patch.to_api();
        // Any JSON answer will do: a 2xx means lvsd applied the change.
        self.client
            .call::<ServerPatch, serde_json::Value>(
                "PATCH",
                &api::server_path(&self.service, self.server),
                Some(&body),
            )
            .map(drop)
            .map_err(DirectorError)
    }
}

/// `--test-start`: logs what would be sent and succeeds.
#[derive(Debug, Clone)]
pub struct DryRun {
    path: String,
}

impl DryRun {
    /// A dry-run director for the server at `path`.
    pub fn new(path: String) -> Self {
        Self { path }
    }
}

impl Director for DryRun {
    fn set_server(&mut self, patch: &Patch) -> Result<(), DirectorError> {
        tracing::info!("test-start: would PATCH {} {}", self.path, patch.to_json());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies() {
        let up = Patch {
            state: Some(ServerState::Up),
            weight: Some(3),
            reason: None,
        };
        assert_eq!(up.to_json(), r#"{"state":"up","weight":3}"#);
        let down = Patch {
            state: Some(ServerState::Down),
            weight: None,
            reason: Some("CONNECT to 10.0.0.1:80 timed out".into()),
        };
        assert_eq!(
            down.to_json(),
            r#"{"state":"down","reason":"CONNECT to 10.0.0.1:80 timed out"}"#
        );
        let weight = Patch {
            weight: Some(6),
            ..Patch::default()
        };
        assert_eq!(weight.to_json(), r#"{"weight":6}"#);
        assert_eq!(
            server_path(
                &"tcp:10.0.0.80:80".parse().expect("service id"),
                "10.0.0.1:8080".parse().expect("server")
            ),
            "/v1/services/tcp:10.0.0.80:80/servers/10.0.0.1:8080"
        );
    }

    #[test]
    fn merge_keeps_the_latest_state() {
        let up = Patch {
            state: Some(ServerState::Up),
            weight: Some(3),
            reason: None,
        };
        let w = Patch {
            weight: Some(6),
            ..Patch::default()
        };
        let merged = up.clone().merge(w);
        assert_eq!(merged.state, Some(ServerState::Up));
        assert_eq!(merged.weight, Some(6));
        let down = Patch {
            state: Some(ServerState::Down),
            ..Patch::default()
        };
        assert_eq!(up.merge(down.clone()), down);
    }

    #[test]
    fn unreachable_socket_is_an_error_not_a_panic() {
        let mut d = LvsdClient::new(
            Path::new("/nonexistent/lvsd.sock"),
            "tcp:10.0.0.80:80".parse().expect("service id"),
            "10.0.0.1:80".parse().expect("server"),
            Duration::from_secs(1),
        );
        let e = d.set_server(&Patch::default()).expect_err("no socket");
        assert!(e.retry());
        assert!(e.to_string().contains("cannot reach lvsd"), "{e}");
    }
}
