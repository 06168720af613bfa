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
//! [`Director`] hides the transport so the shell and the tests need no lvsd. [`LvsdSocket`]
//! is a deliberately tiny blocking HTTP/1.1 client (one request per connection,
//! `Connection: close`, timeouts on every step): nanny runs by the thousand and must stay
//! small, and lvsd's own client (`lvsd::control::client`) was not yet available when nanny
//! was written; switching to it only needs another `Director` implementation. [`DryRun`]
//! serves `--test-start`: it logs the call and reports success.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// The JSON body.
    pub fn to_json(&self) -> String {
        let mut map = serde_json::Map::new();
        if let Some(s) = self.state {
            map.insert("state".into(), s.as_str().into());
        }
        if let Some(w) = self.weight {
            map.insert("weight".into(), w.into());
        }
        if let Some(r) = &self.reason {
            map.insert("reason".into(), r.clone().into());
        }
        serde_json::Value::Object(map).to_string()
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
pub enum DirectorError {
    /// The socket could not be reached or the exchange failed mid-way.
    #[error("lvsd at {socket} unreachable: {source}")]
    Unreachable {
        /// The socket path.
        socket: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// lvsd answered with an error status.
    #[error("lvsd refused {path}: {status} {body}")]
    Refused {
        /// The request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// The body lvsd sent (its message).
        body: String,
    },
    /// The answer was not HTTP.
    #[error("lvsd at {socket} sent a malformed response: {detail}")]
    Malformed {
        /// The socket path.
        socket: PathBuf,
        /// What was wrong.
        detail: String,
    },
}

impl DirectorError {
    /// Whether sending the same patch later may succeed (not for 400: our request is wrong).
    pub fn retry(&self) -> bool {
        !matches!(self, DirectorError::Refused { status: 400, .. })
    }
}

/// Where nanny's reports go.
pub trait Director {
    /// Applies `patch` to this nanny's server.
    fn set_server(&mut self, patch: &Patch) -> Result<(), DirectorError>;
}

/// The request path of a server: `/v1/services/{service}/servers/{rip}:{rport}`.
pub fn server_path(service: &str, server: &str) -> String {
    format!("/v1/services/{service}/servers/{server}")
}

/// lvsd's control socket.
#[derive(Debug, Clone)]
pub struct LvsdSocket {
    socket: PathBuf,
    path: String,
    timeout: Duration,
}

/// Largest response read.
const RESPONSE_LIMIT: u64 = 64 * 1024;

impl LvsdSocket {
    /// A client for the server at `path` (see [`server_path`]) through `socket`.
    pub fn new(socket: &Path, path: String, timeout: Duration) -> Self {
        Self {
            socket: socket.to_owned(),
            path,
            timeout,
        }
    }

    fn exchange(&self, request: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut stream = UnixStream::connect(&self.socket)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        stream.write_all(request)?;
        let mut response = Vec::new();
        stream.take(RESPONSE_LIMIT).read_to_end(&mut response)?;
        Ok(response)
    }
}

impl Director for LvsdSocket {
    fn set_server(&mut self, patch: &Patch) -> Result<(), DirectorError> {
        let body = patch.to_json();
        let request = format!(
            "PATCH {} HTTP/1.1\r\nHost: lvsd\r\nUser-Agent: nanny\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.path,
            body.len()
        );
        let response =
            self.exchange(request.as_bytes())
                .map_err(|source| DirectorError::Unreachable {
                    socket: self.socket.clone(),
                    source,
                })?;
        let (status, body) = parse_response(&response).ok_or_else(|| DirectorError::Malformed {
            socket: self.socket.clone(),
            detail: format!(
                "{:?}",
                String::from_utf8_lossy(&response[..response.len().min(80)])
            ),
        })?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(DirectorError::Refused {
                path: self.path.clone(),
                status,
                body: body.trim().to_owned(),
            })
        }
    }
}

/// Splits an HTTP/1.x response into its status code and body.
pub fn parse_response(response: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next()?;
    let mut parts = status_line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    Some((status, body.to_owned()))
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
        tracing::info!(path = %self.path, body = %patch.to_json(), "test-start: would PATCH {} {}", self.path, patch.to_json());
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
            r#"{"reason":"CONNECT to 10.0.0.1:80 timed out","state":"down"}"#
        );
        let weight = Patch {
            weight: Some(6),
            ..Patch::default()
        };
        assert_eq!(weight.to_json(), r#"{"weight":6}"#);
        assert_eq!(
            server_path("tcp:10.0.0.80:80", "10.0.0.1:8080"),
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
    fn responses() {
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
            Some((200, "{}".into()))
        );
        assert_eq!(
            parse_response(b"HTTP/1.0 404 Not Found\r\n\r\nno such server"),
            Some((404, "no such server".into()))
        );
        assert_eq!(parse_response(b"garbage"), None);
        assert_eq!(parse_response(b""), None);
    }

    #[test]
    fn unreachable_socket_is_an_error_not_a_panic() {
        let mut d = LvsdSocket::new(
            Path::new("/nonexistent/lvsd.sock"),
            "/v1/x".into(),
            Duration::from_secs(1),
        );
        let e = d.set_server(&Patch::default()).expect_err("no socket");
        assert!(e.retry());
        assert!(e.to_string().contains("unreachable"), "{e}");
    }
}
