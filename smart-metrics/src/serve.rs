//! `/metrics` on a loopback address while a long-running `smart run` works: every scrape reads
//! the state dir afresh (the same figures as `smart metrics`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use smart_core::records::{RunState, read_status};

use crate::collect::{audit_families, collect_with};
use crate::{Facts, Family, MetricsError, render};

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
        let source = Arc::new(Source {
            state_dir: state_dir.to_owned(),
            facts,
            audit: Mutex::new(None),
        });
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let source = Arc::clone(&source);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let source = Arc::clone(&source);
                        async move { Ok::<_, Infallible>(answer(&request, source).await) }
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

/// What every scrape reads.
#[derive(Debug)]
struct Source {
    state_dir: PathBuf,
    facts: Facts,
    /// The audit chain's families as last verified. While a run is under way a scrape reuses
    /// them (verifying hashes the whole log; a scrape every few seconds would compete with the
    /// run's measurements); otherwise it verifies afresh.
    audit: Mutex<Option<Vec<Family>>>,
}

impl Source {
    fn render(&self) -> Result<String, MetricsError> {
        let running = read_status(&self.state_dir)
            .map_err(MetricsError::records)?
            .is_some_and(|s| s.state == RunState::Running);
        let audit = {
            let mut cached = self.audit.lock().unwrap_or_else(PoisonError::into_inner);
            match (&*cached, running) {
                (Some(families), true) => families.clone(),
                _ => cached.insert(audit_families(&self.state_dir)).clone(),
            }
        };
        let families = collect_with(&self.state_dir, self.facts, SystemTime::now(), audit)?;
        Ok(render(&families))
    }
}

/// `GET /metrics`: the text format; anything else: 404 or 405.
async fn answer(request: &Request<Incoming>, source: Arc<Source>) -> Response<Full<Bytes>> {
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
    let read = tokio::task::spawn_blocking(move || source.render()).await;
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
