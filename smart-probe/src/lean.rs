//! The lean path for plain-HTTP targets on one host: hyper HTTP/1.1 connections with no tower
//! layers or URL re-parsing on the way, as load tools (oha, wrk) use. In the closed loop each
//! worker owns one connection; the open loop shares a [`LeanPool`] of them. HTTPS and several
//! hosts go through reqwest.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, HOST, HeaderMap, HeaderValue, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::outcome::Answer;
use crate::{Outcome, ProbeConfig};

/// What a lean worker needs to build its requests: one host and port, paths per URL.
#[derive(Debug, Clone)]
pub(crate) struct LeanTarget {
    host: String,
    port: u16,
    paths: Vec<Uri>,
    headers: HeaderMap,
}

impl LeanTarget {
    /// The lean target of `config`, when every URL is plain `http://` on the same host and port.
    pub(crate) fn of(config: &ProbeConfig) -> Option<LeanTarget> {
        let first = config.urls.first()?;
        let (host, port) = (first.host_str()?.to_owned(), first.port_or_known_default()?);
        let mut paths = Vec::with_capacity(config.urls.len());
        for url in &config.urls {
            if url.scheme() != "http"
                || url.host_str() != Some(&host)
                || url.port_or_known_default() != Some(port)
            {
                return None;
            }
            let path = match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            };
            paths.push(path.parse().ok()?);
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("smart-probe/", env!("CARGO_PKG_VERSION"))),
        );
        let host_header = match first.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        headers.insert(HOST, HeaderValue::from_str(&host_header).ok()?);
        headers.extend(config.headers.clone());
        // An IPv6 literal is bracketed in URLs and Host headers, not in a lookup.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Some(LeanTarget {
            host,
            port,
            paths,
            headers,
        })
    }
}

/// One worker's connection, opened on first use and again after any failure.
#[derive(Debug, Default)]
pub(crate) struct LeanConnection {
    sender: Option<SendRequest<Empty<Bytes>>>,
}

impl LeanConnection {
    /// Sends one request for `target.paths[url]` and reads the whole body (no timeout here: the
    /// caller bounds it). A request whose kept-alive connection was closed under it is retried
    /// once on a new connection, as the pooled path does.
    pub(crate) async fn send(
        &mut self,
        config: &ProbeConfig,
        target: &LeanTarget,
        url: usize,
    ) -> Answer {
        let mut retried = false;
        loop {
            let reused = self.sender.is_some();
            match self.try_send(config, target, url).await {
                Ok(answer) => return Answer { retried, ..answer },
                Err(outcome) => {
                    self.sender = None;
                    if reused && !retried && outcome == Outcome::Other {
                        retried = true;
                        continue;
                    }
                    return Answer {
                        outcome,
                        status: None,
                        retried,
                    };
                }
            }
        }
    }

    async fn try_send(
        &mut self,
        config: &ProbeConfig,
        target: &LeanTarget,
        url: usize,
    ) -> Result<Answer, Outcome> {
        let sender = match &mut self.sender {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.sender.insert(connect(target).await?),
        };
        sender.ready().await.map_err(|_| Outcome::Other)?;
        let mut request = Request::new(Empty::new());
        *request.method_mut() = config.method.clone();
        *request.uri_mut() = target.paths[url].clone();
        *request.headers_mut() = target.headers.clone();
        let response = sender
            .send_request(request)
            .await
            .map_err(|_| Outcome::Other)?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame.map_err(|_| Outcome::Other)?;
        }
        let outcome = if config.ok_status.contains(&status) {
            Outcome::Ok
        } else {
            Outcome::BadStatus
        };
        Ok(Answer {
            outcome,
            status: Some(status),
            retried: false,
        })
    }
}

/// The open loop's connections to a lean target: a request takes the most recently used idle
/// one (or opens one) and puts it back once its answer is complete. A connection the server
/// closed while idle is dropped when it is taken, one idle for [`LeanPool::IDLE_TIMEOUT`] when
/// the next is put back; one closed under a request is replaced by [`LeanConnection::send`]'s
/// retry. There are at most as many as there were requests in flight at once.
#[derive(Debug, Default)]
pub(crate) struct LeanPool {
    /// Idle connections and when they were put back, oldest first.
    idle: Mutex<VecDeque<(SendRequest<Empty<Bytes>>, Instant)>>,
}

impl LeanPool {
    /// How long a connection may stay idle before the pool closes it (reqwest's default).
    const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

    /// Sends one request for `target.paths[url]` on a pooled connection and reads the whole body
    /// (no timeout here: the caller bounds it).
    pub(crate) async fn send(
        &self,
        config: &ProbeConfig,
        target: &LeanTarget,
        url: usize,
    ) -> Answer {
        let mut connection = LeanConnection {
            sender: self.take(),
        };
        let answer = connection.send(config, target, url).await;
        if let Some(sender) = connection.sender.filter(|s| !s.is_closed()) {
            let now = Instant::now();
            let mut idle = self.lock();
            while idle
                .front()
                .is_some_and(|(_, since)| now - *since >= LeanPool::IDLE_TIMEOUT)
            {
                idle.pop_front();
            }
            idle.push_back((sender, now));
        }
        answer
    }

    fn take(&self) -> Option<SendRequest<Empty<Bytes>>> {
        let mut idle = self.lock();
        std::iter::from_fn(|| idle.pop_back())
            .map(|(sender, _)| sender)
            .find(|sender| !sender.is_closed())
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<(SendRequest<Empty<Bytes>>, Instant)>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn connect(target: &LeanTarget) -> Result<SendRequest<Empty<Bytes>>, Outcome> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|_| Outcome::Connect)?
        .collect();
    let mut last = Outcome::Connect;
    for addr in addrs {
        let Ok(stream) = TcpStream::connect(addr).await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok((sender, connection)) => {
                tokio::spawn(connection);
                return Ok(sender);
            }
            Err(_) => last = Outcome::Other,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use smart_core::experiment::Target;

    use super::*;

    fn lean(urls: &[&str]) -> Option<LeanTarget> {
        let target: Target = serde_json::from_value(serde_json::json!({ "urls": urls })).unwrap();
        LeanTarget::of(&ProbeConfig::builder(&target).build().unwrap())
    }

    #[test]
    fn only_plain_http_on_one_host_takes_the_lean_path() {
        let one = lean(&["http://127.0.0.1:8080/a?x=1", "http://127.0.0.1:8080/b"]).unwrap();
        assert_eq!((one.host.as_str(), one.port), ("127.0.0.1", 8080));
        assert_eq!(one.paths[0], "/a?x=1");
        assert_eq!(one.headers[HOST], "127.0.0.1:8080");
        let v6 = lean(&["http://[::1]/"]).unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 80));
        assert_eq!(v6.headers[HOST], "[::1]");
        assert!(lean(&["https://127.0.0.1/"]).is_none());
        assert!(lean(&["http://127.0.0.1:1/", "http://127.0.0.1:2/"]).is_none());
    }
}
