//! The control API server: hyper (HTTP/1.1) on a Unix socket, inside lvsd's control thread.
//!
//! The server never touches the engine. Each request becomes an [`Op`] sent to the worker
//! over a bounded channel, followed by a wake-up of the worker's `poll(2)` ([`Waker`]); the
//! worker answers through a oneshot channel between two batches of frames. So forwarding
//! never waits on the API, and the API never waits on a lock.
//!
//! Limits, so that no client can hurt the daemon: one request per connection (no
//! keep-alive), headers within [`HEADER_TIMEOUT`], the body within [`BODY_TIMEOUT`] and
//! [`api::MAX_BODY`] bytes, at most [`MAX_CONNECTIONS`] connections at once, the worker's
//! answer within [`WORKER_TIMEOUT`]. Refused requests are counted ([`ApiCounters`]) and
//! logged at most once per [`LOG_EVERY`].

use std::convert::Infallible;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use ipvs_core::io::Waker;
use tokio::net::UnixListener;
use tokio::sync::{Semaphore, oneshot};
use tracing::warn;

use super::api::{
    self, ConnectionsView, ErrorBody, EventsView, ReloadView, RoleView, ServerPatch, ServerSpec,
    ServerView, ServiceId, ServiceSpec, ServiceView, ServicesView, StatusView, SyncView, TableView,
    TimeoutsView, ZeroRequest,
};

/// Longest wait for a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the worker's answer.
pub const WORKER_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// Requests queued for the worker at most.
pub const QUEUE: usize = 1024;
/// At most one log line per this interval about refused requests.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// What the API asks the worker.
#[derive(Debug)]
pub enum Op {
    /// `GET /v1/status`.
    Status,
    /// `GET /v1/services`.
    Services,
    /// `GET /v1/table`, with counters and rates when asked (`?counters=1`).
    Table {
        /// Include counters and rates.
        counters: bool,
    },
    /// `GET /v1/services/{id}`.
    Service(ServiceId),
    /// `GET /v1/services/{id}/servers/{addr}`.
    Server(ServiceId, SocketAddrV4),
    /// `PATCH /v1/services/{id}/servers/{addr}`.
    Patch(ServiceId, SocketAddrV4, ServerPatch),
    /// `GET /v1/role`.
    Role,
    /// `PUT /v1/role`, with pulse's reason.
    SetRole(RoleView),
    /// `GET /v1/events`.
    Events,
    /// `GET /v1/sync`.
    Sync,
    /// `POST /v1/services` (`-A`).
    AddService(ServiceSpec),
    /// `PUT /v1/services/{id}` (`-E`).
    EditService(ServiceSpec),
    /// `DELETE /v1/services/{id}` (`-D`).
    DeleteService(ServiceId),
    /// `DELETE /v1/services` (`-C`).
    Clear,
    /// `POST /v1/services/{id}/servers` (`-a`).
    AddServer(ServiceId, ServerSpec),
    /// `PUT /v1/services/{id}/servers/{addr}` (`-e`).
    EditServer(ServiceId, ServerSpec),
    /// `DELETE /v1/services/{id}/servers/{addr}` (`-d`).
    DeleteServer(ServiceId, SocketAddrV4),
    /// `POST /v1/zero` (`-Z`).
    Zero(ZeroRequest),
    /// `GET /v1/timeouts`.
    Timeouts,
    /// `PUT /v1/timeouts` (`--set`).
    SetTimeouts(TimeoutsView),
    /// `GET /v1/connections` (`-L -c`).
    Connections,
    /// `POST /v1/reload`.
    Reload,
}

impl Op {
    /// Whether the operation may change the services (a run-time verb): the worker then
    /// brings the guard, the nannies and the neighbour list up to date.
    pub fn changes_services(&self) -> bool {
        matches!(
            self,
            Op::AddService(_)
                | Op::EditService(_)
                | Op::DeleteService(_)
                | Op::Clear
                | Op::AddServer(..)
                | Op::EditServer(..)
                | Op::DeleteServer(..)
        )
    }
}

/// The worker's answer.
#[derive(Debug)]
pub enum Reply {
    /// Status.
    Status(StatusView),
    /// All services.
    Services(ServicesView),
    /// The engine's table.
    Table(Box<TableView>),
    /// Recent events.
    Events(Box<EventsView>),
    /// One service.
    Service(Box<ServiceView>),
    /// One server.
    Server(Box<ServerView>),
    /// The role.
    Role(RoleView),
    /// Connection sync.
    Sync(Box<SyncView>),
    /// Done; nothing to show (`{}`).
    Done,
    /// The timeouts.
    Timeouts(TimeoutsView),
    /// The connection table.
    Connections(Box<ConnectionsView>),
    /// What a reload changed.
    Reload(ReloadView),
}

/// Why the worker refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// Unknown service or server.
    #[error("{0}")]
    NotFound(String),
    /// A value out of range.
    #[error("{0}")]
    Invalid(String),
    /// The service or server exists already.
    #[error("{0}")]
    Conflict(String),
    /// A malformed request (a configuration file that does not load).
    #[error("{0}")]
    BadRequest(String),
    /// lvsd is shutting down.
    #[error("lvsd is shutting down")]
    ShuttingDown,
}

/// One request to the worker, with where to answer.
#[derive(Debug)]
pub struct WorkerRequest {
    /// What is asked.
    pub op: Op,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Reply, OpError>>,
}

/// The API's side of the worker: a bounded queue plus the worker's waker.
#[derive(Debug, Clone)]
pub struct WorkerHandle {
    tx: SyncSender<WorkerRequest>,
    waker: Waker,
}

impl WorkerHandle {
    /// A handle that sends on `tx` and wakes the worker with `waker`.
    pub fn new(tx: SyncSender<WorkerRequest>, waker: Waker) -> WorkerHandle {
        WorkerHandle { tx, waker }
    }

    /// Queues `op` for the worker and waits for its answer (bounded).
    pub(crate) async fn ask(&self, op: Op) -> Result<Result<Reply, OpError>, (StatusCode, String)> {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(WorkerRequest { op, reply }) {
            Ok(()) => self.waker.wake(),
            Err(TrySendError::Full(_)) => {
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    "lvsd is busy: too many requests queued".into(),
                ));
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    "lvsd is shutting down".into(),
                ));
            }
        }
        match tokio::time::timeout(WORKER_TIMEOUT, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "lvsd is shutting down".into(),
            )),
            Err(_) => Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "lvsd's worker did not answer in time".into(),
            )),
        }
    }
}

/// Counters of the API, shared with the worker for `/v1/status`.
#[derive(Debug, Default)]
pub struct ApiCounters {
    /// Requests answered with 2xx.
    pub ok: AtomicU64,
    /// Requests refused (4xx, 5xx) or abandoned (timeouts, broken connections).
    pub errors: AtomicU64,
    last_log: Mutex<Option<Instant>>,
    unlogged: AtomicU64,
}

impl ApiCounters {
    fn refused(&self, status: StatusCode, what: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            *last = Some(Instant::now());
            let n = self.unlogged.swap(0, Ordering::Relaxed);
            warn!(status = status.as_u16(), refused = n, "control API: {what}");
        }
    }
}

/// Serves the API on `listener` until the task is dropped.
pub async fn serve(listener: UnixListener, worker: WorkerHandle, counters: Arc<ApiCounters>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                warn!("control API: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let worker = worker.clone();
        let counters = Arc::clone(&counters);
        tokio::spawn(async move {
            let _permit = permit;
            let conn_counters = Arc::clone(&counters);
            let svc = hyper::service::service_fn(move |req| {
                let worker = worker.clone();
                let counters = Arc::clone(&conn_counters);
                async move { Ok::<_, Infallible>(handle(req, &worker, &counters).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc);
            // A client that stalls after its headers is cut off here.
            let limit = HEADER_TIMEOUT + BODY_TIMEOUT + WORKER_TIMEOUT;
            match tokio::time::timeout(limit, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let status = if e.is_timeout() {
                        StatusCode::REQUEST_TIMEOUT
                    } else {
                        StatusCode::BAD_REQUEST
                    };
                    counters.refused(status, &format!("connection dropped: {e}"));
                }
                Err(_) => counters.refused(StatusCode::REQUEST_TIMEOUT, "connection too slow"),
            }
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    worker: &WorkerHandle,
    counters: &ApiCounters,
) -> Response<Full<Bytes>> {
    let (status, body) = match route(req, worker).await {
        Ok((status, body)) => {
            counters.ok.fetch_add(1, Ordering::Relaxed);
            (status, body)
        }
        Err((status, message)) => {
            counters.refused(status, &message);
            let body = serde_json::to_vec(&ErrorBody { error: message }).unwrap_or_default();
            (status, body)
        }
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

type Routed = Result<(StatusCode, Vec<u8>), (StatusCode, String)>;

async fn route(req: Request<Incoming>, worker: &WorkerHandle) -> Routed {
    let path = req.uri().path().to_owned();
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    let not_found = || (StatusCode::NOT_FOUND, format!("no such resource: {path}"));
    let method = req.method().clone();
    let op = match segs.as_slice() {
        [v, rest @ ..] if *v == api::VERSION => match rest {
            ["status"] => get_only(&method, Op::Status)?,
            ["table"] => {
                let counters = req
                    .uri()
                    .query()
                    .is_some_and(|q| q.split('&').any(|kv| kv == "counters=1"));
                get_only(&method, Op::Table { counters })?
            }
            ["role"] if method == Method::PUT => Op::SetRole(read_json::<RoleView>(req).await?),
            ["role"] => get_only(&method, Op::Role)?,
            ["sync"] => get_only(&method, Op::Sync)?,
            ["events"] => get_only(&method, Op::Events)?,
            ["connections"] => get_only(&method, Op::Connections)?,
            ["timeouts"] if method == Method::PUT => Op::SetTimeouts(read_json(req).await?),
            ["timeouts"] => get_only(&method, Op::Timeouts)?,
            ["zero"] => Op::Zero(post_json(&method, req).await?),
            ["reload"] if method == Method::POST => Op::Reload,
            ["reload"] => return Err(not_allowed(&method)),
            ["services"] => match method {
                Method::GET => Op::Services,
                Method::POST => Op::AddService(read_json(req).await?),
                Method::DELETE => Op::Clear,
                _ => return Err(not_allowed(&method)),
            },
            ["services", id] => {
                let id = service_id(id)?;
                match method {
                    Method::GET => Op::Service(id),
                    Method::PUT => {
                        let spec: ServiceSpec = read_json(req).await?;
                        if spec.id != id {
                            return Err(mismatch(&spec.id.to_string(), &id.to_string()));
                        }
                        Op::EditService(spec)
                    }
                    Method::DELETE => Op::DeleteService(id),
                    _ => return Err(not_allowed(&method)),
                }
            }
            ["services", id, "servers"] => {
                let id = service_id(id)?;
                Op::AddServer(id, post_json(&method, req).await?)
            }
            ["services", id, "servers", addr] => {
                let (id, addr) = (service_id(id)?, server_addr(addr)?);
                match method {
                    Method::GET => Op::Server(id, addr),
                    Method::PATCH => Op::Patch(id, addr, read_json::<ServerPatch>(req).await?),
                    Method::PUT => {
                        let spec: ServerSpec = read_json(req).await?;
                        if spec.address != addr {
                            return Err(mismatch(&spec.address.to_string(), &addr.to_string()));
                        }
                        Op::EditServer(id, spec)
                    }
                    Method::DELETE => Op::DeleteServer(id, addr),
                    _ => return Err(not_allowed(&method)),
                }
            }
            _ => return Err(not_found()),
        },
        _ => return Err(not_found()),
    };
    let answer = worker.ask(op).await?;
    let value = match answer {
        Ok(Reply::Status(v)) => serde_json::to_vec(&v),
        Ok(Reply::Services(v)) => serde_json::to_vec(&v),
        Ok(Reply::Service(v)) => serde_json::to_vec(&v),
        Ok(Reply::Server(v)) => serde_json::to_vec(&v),
        Ok(Reply::Role(v)) => serde_json::to_vec(&v),
        Ok(Reply::Sync(v)) => serde_json::to_vec(&v),
        Ok(Reply::Done) => Ok(b"{}".to_vec()),
        Ok(Reply::Timeouts(v)) => serde_json::to_vec(&v),
        Ok(Reply::Connections(v)) => serde_json::to_vec(&v),
        Ok(Reply::Reload(v)) => serde_json::to_vec(&v),
        Ok(Reply::Table(v)) => serde_json::to_vec(&v),
        Ok(Reply::Events(v)) => serde_json::to_vec(&v),
        Err(OpError::NotFound(m)) => return Err((StatusCode::NOT_FOUND, m)),
        Err(OpError::Invalid(m)) => return Err((StatusCode::UNPROCESSABLE_ENTITY, m)),
        Err(OpError::Conflict(m)) => return Err((StatusCode::CONFLICT, m)),
        Err(OpError::BadRequest(m)) => return Err((StatusCode::BAD_REQUEST, m)),
        Err(OpError::ShuttingDown) => {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "lvsd is shutting down".into(),
            ));
        }
    };
    value
        .map(|b| (StatusCode::OK, b))
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn get_only(method: &Method, op: Op) -> Result<Op, (StatusCode, String)> {
    if *method == Method::GET {
        Ok(op)
    } else {
        Err(not_allowed(method))
    }
}

/// The body of a POST.
async fn post_json<T: serde::de::DeserializeOwned>(
    method: &Method,
    req: Request<Incoming>,
) -> Result<T, (StatusCode, String)> {
    if *method == Method::POST {
        read_json(req).await
    } else {
        Err(not_allowed(method))
    }
}

fn mismatch(body: &str, path: &str) -> (StatusCode, String) {
    (
        StatusCode::BAD_REQUEST,
        format!("the body names {body} but the path {path}"),
    )
}

fn not_allowed(method: &Method) -> (StatusCode, String) {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} not allowed here"),
    )
}

fn service_id(s: &str) -> Result<ServiceId, (StatusCode, String)> {
    s.parse()
        .map_err(|e: api::BadServiceId| (StatusCode::BAD_REQUEST, e.to_string()))
}

fn server_addr(s: &str) -> Result<SocketAddrV4, (StatusCode, String)> {
    s.parse().map_err(|_| {
        (
            StatusCode::BAD_REQUEST,
            format!("bad real server {s:?}: expected RIP:PORT"),
        )
    })
}

async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
) -> Result<T, (StatusCode, String)> {
    let body = Limited::new(req.into_body(), api::MAX_BODY);
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, body.collect()).await {
        Err(_) => {
            return Err((
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time".into(),
            ));
        }
        Ok(Err(e)) => {
            let too_big = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return Err(if too_big {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body larger than {} bytes", api::MAX_BODY),
                )
            } else {
                (StatusCode::BAD_REQUEST, format!("reading the body: {e}"))
            });
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    serde_json::from_slice(&bytes).map_err(|e| (StatusCode::BAD_REQUEST, format!("bad JSON: {e}")))
}
