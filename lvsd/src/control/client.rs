//! A blocking client of lvsd's control API, for nanny, lvsadm and pulse.
//!
//! Hand-written HTTP/1.1 over a Unix socket, one request per connection
//! (`Connection: close`), instead of hyper's client: the callers are small synchronous
//! processes (a thousand nannies run at once), and a tokio runtime in each would cost more
//! memory and threads than these ~150 lines. The server is hyper.
//!
//! Every call is bounded by [`Client::timeout`] (connect, write and read).

use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::api::{
    self, ErrorBody, Role, RoleView, ServerPatch, ServerView, ServiceId, ServiceView, ServicesView,
    StatusView, SyncView,
};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached (lvsd not running, or no permission).
    #[error("cannot reach lvsd at {path}: {source} (is lvsd running?)")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing failed or timed out.
    #[error("talking to lvsd at {path}: {source}")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The answer was not HTTP or not the JSON expected.
    #[error("lvsd sent an answer that cannot be read: {0}")]
    BadAnswer(String),
    /// lvsd refused the request.
    #[error("lvsd answered {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// lvsd's message.
        message: String,
    },
}

impl ClientError {
    /// The HTTP status when lvsd refused the request.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client bound to one socket path.
#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
    timeout: Duration,
}

impl Client {
    /// A client of the socket at `path`, with a 5 s bound per call.
    pub fn new(path: impl Into<PathBuf>) -> Client {
        Client {
            path: path.into(),
            timeout: Duration::from_secs(5),
        }
    }

    /// The socket named by `LVSD_SOCKET`, else the default path.
    pub fn from_env() -> Client {
        Client::new(
            std::env::var_os(api::SOCKET_ENV)
                .map_or_else(|| PathBuf::from(api::DEFAULT_SOCKET), PathBuf::from),
        )
    }

    /// Sets the bound on each call.
    pub fn timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Result<StatusView, ClientError> {
        self.call::<(), _>("GET", &format!("/{}/status", api::VERSION), None)
    }

    /// `GET /v1/services`.
    pub fn services(&self) -> Result<Vec<ServiceView>, ClientError> {
        self.call::<(), ServicesView>("GET", &format!("/{}/services", api::VERSION), None)
            .map(|v| v.services)
    }

    /// `GET /v1/services/{service}`.
    pub fn service(&self, service: &ServiceId) -> Result<ServiceView, ClientError> {
        self.call::<(), _>(
            "GET",
            &format!("/{}/services/{service}", api::VERSION),
            None,
        )
    }

    /// `GET /v1/sync`.
    pub fn sync(&self) -> Result<SyncView, ClientError> {
        self.call::<(), _>("GET", &format!("/{}/sync", api::VERSION), None)
    }

    /// `GET /v1/connections`: templates, then connections.
    pub fn connections(&self) -> Result<Vec<api::ConnView>, ClientError> {
        self.call::<(), api::ConnectionsView>(
            "GET",
            &format!("/{}/connections", api::VERSION),
            None,
        )
        .map(|v| v.connections)
    }

    /// `GET /v1/role`.
    pub fn role(&self) -> Result<Role, ClientError> {
        self.call::<(), RoleView>("GET", &format!("/{}/role", api::VERSION), None)
            .map(|v| v.role)
    }

    /// `PUT /v1/role`: pulse switches the director between active and standby.
    pub fn set_role(&self, role: Role) -> Result<Role, ClientError> {
        self.set_role_because(role, None)
    }

    /// `PUT /v1/role` with the reason (shown on lvsd's status page).
    pub fn set_role_because(&self, role: Role, reason: Option<&str>) -> Result<Role, ClientError> {
        let body = RoleView {
            role,
            reason: reason.map(str::to_owned),
        };
        self.call::<_, RoleView>("PUT", &format!("/{}/role", api::VERSION), Some(&body))
            .map(|v| v.role)
    }

    /// `PATCH /v1/services/{service}/servers/{rip}:{rport}`.
    pub fn patch_server(
        &self,
        service: &ServiceId,
        server: SocketAddrV4,
        patch: &ServerPatch,
    ) -> Result<ServerView, ClientError> {
        self.call("PATCH", &api::server_path(service, server), Some(patch))
    }

    /// One request: connect, send, read to EOF, check the status, decode the JSON.
    pub fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let io = |source| ClientError::Io {
            path: self.path.clone(),
            source,
        };
        let body = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| ClientError::BadAnswer(e.to_string()))?,
            None => Vec::new(),
        };
        let mut stream =
            UnixStream::connect(&self.path).map_err(|source| ClientError::Connect {
                path: self.path.clone(),
                source,
            })?;
        stream.set_read_timeout(Some(self.timeout)).map_err(io)?;
        stream.set_write_timeout(Some(self.timeout)).map_err(io)?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: lvsd\r\nConnection: close\r\nAccept: application/json\r\n"
        );
        if !body.is_empty() {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).map_err(io)?;
        stream.write_all(&body).map_err(io)?;
        let mut answer = Vec::new();
        stream.take(16 << 20).read_to_end(&mut answer).map_err(io)?;
        let (status, body) = parse_response(&answer)?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_slice::<ErrorBody>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(ClientError::Refused { status, message });
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::BadAnswer(e.to_string()))
    }
}

/// Splits an HTTP/1.1 answer into status and body (`Content-Length` or chunked, or to EOF).
fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), ClientError> {
    let bad = |m: &str| ClientError::BadAnswer(m.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers are not text"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| bad("no HTTP status line"))?;
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(v.parse::<usize>().map_err(|_| bad("bad Content-Length"))?);
        } else if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or_else(|| bad("body shorter than Content-Length"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_with_length_chunks_or_eof() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(r).expect("ok"), (200, b"{}".to_vec()));
        let r = b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).expect("ok"), (404, b"abcde".to_vec()));
        let r = b"HTTP/1.0 200 OK\r\n\r\nxyz";
        assert_eq!(parse_response(r).expect("ok"), (200, b"xyz".to_vec()));
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"SSH-2.0\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{}").is_err());
    }

    #[test]
    fn a_missing_socket_is_a_clear_connect_error() {
        let c = Client::new("/nonexistent/lvsd.sock");
        let e = c.status().expect_err("no socket");
        assert!(e.to_string().contains("is lvsd running?"), "{e}");
    }
}
