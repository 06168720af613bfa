//! The read-only status server: `GET /` (the status page, [`super::page`]) and `GET /metrics`
//! (Prometheus, [`super::metrics`]) on the TCP address of lvs.cf's `status_address`. Off
//! unless that keyword is set.
//!
//! It asks the worker for the same views as the control API, through the same bounded
//! queue, so a scrape during a reload or a failover waits for the worker's next turn and
//! never touches the engine itself. It changes nothing: every other method is 405, every
//! other path 404. Connections are bounded in number and time, as the control API's.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use super::api::{EventsView, ServicesView, StatusView, SyncView};
use super::metrics;
use super::page::{self, PageData};
use super::server::{Op, Reply, WorkerHandle};

/// Most connections served at once (a browser or two and a Prometheus).
const MAX_CONNECTIONS: usize = 32;
/// Longest wait for a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a whole connection may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(20);

/// Binds `addr`. The error names the address and what the operator can do.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| {
        format!(
            "status page: cannot listen on {addr} (status_address in lvs.cf): {e}; the status \
             page and /metrics are off, forwarding goes on"
        )
    })
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, worker: WorkerHandle) {
    if let Ok(a) = listener.local_addr() {
        info!(address = %a, "status page on http://{a}/, Prometheus metrics on http://{a}/metrics");
    }
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                warn!("status page: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let worker = worker.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = hyper::service::service_fn(move |req| {
                let worker = worker.clone();
                async move { Ok::<_, Infallible>(handle(req, &worker).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc);
            // Slow or idle clients are cut off; nothing to count: the page is read-only.
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
        });
    }
}

fn answer(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    h.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    resp
}

const TEXT: &str = "text/plain; charset=utf-8";

async fn handle(req: Request<Incoming>, worker: &WorkerHandle) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    // Prometheus asks for OpenMetrics; a browser or curl gets the same text as plain text
    // (a browser would offer application/openmetrics-text as a download).
    let openmetrics = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let page = match path {
        "/" | "/index.html" => true,
        "/metrics" => false,
        _ => {
            return answer(
                StatusCode::NOT_FOUND,
                TEXT,
                format!("no such page: {path}\n"),
            );
        }
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return answer(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "read-only: GET only\n".into(),
        );
    }
    match gather(worker, page).await {
        Ok(v) if page => answer(
            StatusCode::OK,
            "text/html; charset=utf-8",
            page::render(&PageData {
                status: &v.status,
                services: &v.services.services,
                sync: &v.sync,
                events: &v.events,
                now_unix_ms: page::now_unix_ms(),
            }),
        ),
        Ok(v) => answer(
            StatusCode::OK,
            if openmetrics {
                metrics::CONTENT_TYPE
            } else {
                TEXT
            },
            metrics::render(&v.status, &v.services.services, &v.sync),
        ),
        Err(message) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            format!("{message}\n"),
        ),
    }
}

struct Views {
    status: StatusView,
    services: ServicesView,
    sync: SyncView,
    events: EventsView,
}

async fn ask(worker: &WorkerHandle, op: Op) -> Result<Reply, String> {
    match worker.ask(op).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(e.to_string()),
        Err((_, message)) => Err(message),
    }
}

async fn gather(worker: &WorkerHandle, events: bool) -> Result<Views, String> {
    let Reply::Status(status) = ask(worker, Op::Status).await? else {
        return Err("unexpected answer to status".into());
    };
    let Reply::Services(services) = ask(worker, Op::Services).await? else {
        return Err("unexpected answer to services".into());
    };
    let Reply::Sync(sync) = ask(worker, Op::Sync).await? else {
        return Err("unexpected answer to sync".into());
    };
    let events = if events {
        match ask(worker, Op::Events).await? {
            Reply::Events(e) => *e,
            _ => return Err("unexpected answer to events".into()),
        }
    } else {
        EventsView::default()
    };
    Ok(Views {
        status,
        services,
        sync: *sync,
        events,
    })
}
