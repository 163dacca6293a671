//! An in-process HTTP/1.1 server on 127.0.0.1:0 whose answers the test controls: a delay, a
//! status code, and a freeze that holds every response until a given instant.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How the server answers right now.
#[derive(Debug, Clone)]
pub(crate) struct Behaviour {
    /// Added to every response.
    pub(crate) delay: Duration,
    /// The status of every response.
    pub(crate) status: u16,
    /// Responses are held until this instant (a stall of the whole server).
    pub(crate) frozen_until: Option<Instant>,
    /// Until this instant the status is 503 instead of `status`.
    pub(crate) unavailable_until: Option<Instant>,
}

impl Default for Behaviour {
    fn default() -> Behaviour {
        Behaviour {
            delay: Duration::ZERO,
            status: 200,
            frozen_until: None,
            unavailable_until: None,
        }
    }
}

/// The running server; it stops when dropped.
pub(crate) struct TestServer {
    addr: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Starts the server on the current tokio runtime.
    pub(crate) async fn start(behaviour: Behaviour) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let behaviour = Arc::new(Mutex::new(behaviour));
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (b, r, c) = (
            Arc::clone(&behaviour),
            Arc::clone(&requests),
            Arc::clone(&connections),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                c.fetch_add(1, Ordering::Relaxed);
                let (b, r) = (Arc::clone(&b), Arc::clone(&r));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        answer(req, Arc::clone(&b), Arc::clone(&r))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestServer {
            addr,
            behaviour,
            requests,
            connections,
            task,
        }
    }

    /// `http://127.0.0.1:PORT/`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Changes how the server answers from now on.
    pub(crate) fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.behaviour.lock().unwrap());
    }

    /// Requests received so far.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub(crate) fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    _req: Request<Incoming>,
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    requests.fetch_add(1, Ordering::Relaxed);
    let now = Instant::now();
    let b = behaviour.lock().unwrap().clone();
    if !b.delay.is_zero() {
        tokio::time::sleep(b.delay).await;
    }
    if let Some(until) = b.frozen_until {
        tokio::time::sleep_until(until).await;
    }
    let status = match b.unavailable_until {
        Some(until) if now < until => 503,
        _ => b.status,
    };
    let response = Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(
            b"hello from the test server\n",
        )))
        .unwrap();
    Ok(response)
}
