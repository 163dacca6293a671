//! `/metrics` on a loopback address while a long-running `smart run` works: every scrape reads
//! the state dir afresh (the same figures as `smart metrics`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{Facts, MetricsError, collect, render};

/// A `/metrics` server on a loopback address; it stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Binds `addr` (loopback only: the metrics name experiments and variants) and serves the
    /// metrics of `state_dir` on the current tokio runtime.
    pub async fn start(
        addr: SocketAddr,
        state_dir: &Path,
        facts: Facts,
    ) -> Result<MetricsServer, MetricsError> {
        let path = PathBuf::from(format!("http://{addr}/metrics"));
        if !addr.ip().is_loopback() {
            return Err(MetricsError {
                action: "serving",
                path,
                source: format!(
                    "{addr} is not a loopback address; serve on 127.0.0.1 or [::1] and let Prometheus scrape node_exporter's textfile collector from elsewhere"
                )
                .into(),
            });
        }
        let listener = TcpListener::bind(addr).await.map_err(|e| MetricsError {
            action: "serving",
            path: path.clone(),
            source: format!(
                "cannot listen on {addr}: {e}; pick a free port for [prometheus] listen in smart.toml"
            )
            .into(),
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| MetricsError::io("serving", &path, e))?;
        let state_dir: Arc<Path> = Arc::from(state_dir);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state_dir = Arc::clone(&state_dir);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state_dir = Arc::clone(&state_dir);
                        async move { Ok::<_, Infallible>(answer(&request, state_dir, facts).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(MetricsServer { addr, task })
    }

    /// The address it listens on (the port the OS chose when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `GET /metrics`: the text format; anything else: 404 or 405.
async fn answer(
    request: &Request<Incoming>,
    state_dir: Arc<Path>,
    facts: Facts,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, text: String| {
        let mut response = Response::new(Full::new(Bytes::from(text)));
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "smart serves /metrics only\n".to_owned(),
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "use GET /metrics\n".to_owned(),
        );
        response
            .headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    // Reading the records is file I/O: off the async workers.
    let read = tokio::task::spawn_blocking(move || {
        collect(&state_dir, facts, SystemTime::now()).map(|f| render(&f))
    })
    .await;
    match read {
        Ok(Ok(text)) => {
            let mut response = reply(StatusCode::OK, text);
            response.headers_mut().insert(
                CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(crate::CONTENT_TYPE),
            );
            response
        }
        Ok(Err(e)) => reply(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}
