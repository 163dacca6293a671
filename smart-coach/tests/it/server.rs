//! A real HTTP coach server on 127.0.0.1:0 (hyper) that records every request it receives and
//! answers from a script: JSON, a status, a 429 with `Retry-After`, a body that is not JSON or
//! is huge, or no answer at all (the connection is accepted and left hanging).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// How the server answers one request.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// 200 with this JSON.
    Json(serde_json::Value),
    /// This status with a short text body.
    Status(u16),
    /// 429 with `Retry-After: seconds`.
    RetryAfter(u64),
    /// 200 with a body that is not JSON.
    NotJson,
    /// 200 with a body of this many bytes (the start of JSON advice), with its Content-Length.
    Huge(usize),
    /// 200 with a body of this many bytes sent in chunks, without a Content-Length.
    HugeChunked(usize),
    /// Accept, read the request, never answer.
    Hang,
}

/// One request as received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) authorization: Option<String>,
    pub(crate) body: serde_json::Value,
}

#[derive(Debug)]
struct State {
    received: Vec<Received>,
    script: VecDeque<Reply>,
    default: Reply,
}

/// The server; it stops when the test's runtime shuts down.
#[derive(Debug, Clone)]
pub(crate) struct CoachServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl CoachServer {
    /// Starts a server that answers `default` unless a scripted reply is queued.
    pub(crate) async fn start(default: Reply) -> CoachServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            received: Vec::new(),
            script: VecDeque::new(),
            default,
        }));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(&state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        CoachServer { addr, state }
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues replies to give before the default one.
    pub(crate) fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Changes the default reply.
    pub(crate) fn set_default(&self, reply: Reply) {
        self.state.lock().unwrap().default = reply;
    }

    /// Everything received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

/// A body of `left` bytes sent in 16 KiB chunks, its size not announced (chunked encoding).
struct Chunks {
    left: usize,
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        let n = self.left.min(16 * 1024);
        self.left -= n;
        std::task::Poll::Ready(
            (n > 0).then(|| Ok(hyper::body::Frame::data(Bytes::from(vec![b'x'; n])))),
        )
    }
}

/// The body of any reply.
type Body = http_body_util::Either<Full<Bytes>, Chunks>;

async fn answer(state: &Mutex<State>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    let reply = {
        let mut state = state.lock().unwrap();
        state.received.push(Received {
            path,
            authorization,
            body,
        });
        state
            .script
            .pop_front()
            .unwrap_or_else(|| state.default.clone())
    };
    let response = Response::builder();
    let full = |r: Result<Response<Full<Bytes>>, hyper::http::Error>| {
        r.unwrap().map(http_body_util::Either::Left)
    };
    if let Reply::HugeChunked(bytes) = reply {
        return response
            .body(http_body_util::Either::Right(Chunks { left: bytes }))
            .unwrap();
    }
    full(match reply {
        Reply::Json(value) => response
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(value.to_string()))),
        Reply::Status(code) => response
            .status(code)
            .body(Full::new(Bytes::from_static(b"no"))),
        Reply::RetryAfter(seconds) => response
            .status(429)
            .header("retry-after", seconds.to_string())
            .body(Full::new(Bytes::from_static(b"slow down"))),
        Reply::NotJson => response
            .header("content-type", "text/html")
            .body(Full::new(Bytes::from_static(b"<html>coach</html>"))),
        Reply::Huge(bytes) => {
            let mut body = b"{\"action\":\"keep\",\"reason\":\"".to_vec();
            body.resize(bytes, b'x');
            response.body(Full::new(Bytes::from(body)))
        }
        Reply::Hang => std::future::pending().await,
        Reply::HugeChunked(_) => unreachable!("answered above"),
    })
}
