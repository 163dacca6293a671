//! A small HTTP service whose config file has knobs with real effects, so `smart` has something
//! honest to tune on a laptop or in CI: `smart demo` embeds it, and `cargo run -p
//! smart-demo-target` runs it on its own.
//!
//! The knobs, read from a TOML file (see [`SAMPLE_CONFIG`]):
//! - `cache`: keep the rendered page in memory instead of rendering it (real CPU work) on every
//!   request. Turning it on really cuts latency.
//! - `compression_level`: gzip level 0–9 for clients that send `Accept-Encoding: gzip`. Higher
//!   levels really cost CPU on every request.
//! - `noop`: a string that changes nothing but the `X-Demo-Noop` header (an A/A control).
//! - `delay_ms`: milliseconds every page request waits before it is answered (default 0): an
//!   injected delay, an effect far larger than timing noise for tests of the metric sources.
//! - `link_kbps`: the clients' link, in kilobits a second (default 0: no limit). Each page
//!   response is held for as long as its body takes over that link, so bytes cost time the way
//!   they do for clients behind a slow link: with it, fewer bytes (a higher gzip level) win until
//!   the CPU of compressing costs more than the bytes it saves, an interior optimum.
//!
//! `/metrics` serves a Prometheus histogram of the page requests' durations
//! (`demo_request_duration_seconds`) and their count by status class (`demo_requests_total`).
//!
//! Every response names the live values in `X-Demo-Cache`, `X-Demo-Compression-Level`,
//! `X-Demo-Delay-Ms` and `X-Demo-Noop`, so a live check can confirm which config is serving. Like nginx, a reload
//! ([`DemoTarget::reload`], or SIGHUP with [`DemoTarget::reload_on_sighup`]) that fails to parse
//! keeps the old config serving.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use http_body_util::Full;
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

mod metrics;

/// A commented config file with every knob at its baseline value.
pub const SAMPLE_CONFIG: &str = "\
# smart demo target config: edit a knob, then reload (SIGHUP) and watch the latency move.
# Keep the rendered page in memory instead of rendering it for every request.
cache = false
# gzip level 0-9 for clients that accept gzip (0 = send uncompressed).
compression_level = 0
# Changes nothing but the X-Demo-Noop response header.
noop = \"a\"
";

/// The knobs of the demo target, as read from its config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// Serve the page from memory instead of rendering it per request.
    pub cache: bool,
    /// gzip level 0–9 for clients that accept gzip; 0 sends the page uncompressed.
    pub compression_level: u32,
    /// A value that only shows in the `X-Demo-Noop` header.
    #[serde(default)]
    pub noop: String,
    /// Milliseconds every page request waits before it is answered.
    #[serde(default)]
    pub delay_ms: u64,
    /// The clients' link in kilobits a second (0: no limit): a page response is held for the
    /// time its body takes over that link.
    #[serde(default)]
    pub link_kbps: u64,
}

impl DemoConfig {
    /// Parses a config file's text, checking that `compression_level` is 0–9.
    pub fn parse(text: &str) -> Result<DemoConfig, DemoError> {
        let config: DemoConfig =
            toml::from_str(text).map_err(|e| DemoError::Config(e.to_string()))?;
        if config.compression_level > 9 {
            return Err(DemoError::Config(format!(
                "compression_level: {} is out of range; use 0 to 9",
                config.compression_level
            )));
        }
        Ok(config)
    }

    /// Reads and parses the config file at `path`.
    pub fn load(path: &Path) -> Result<DemoConfig, DemoError> {
        let text = std::fs::read_to_string(path).map_err(|source| DemoError::Read {
            path: path.to_owned(),
            source,
        })?;
        DemoConfig::parse(&text).map_err(|e| match e {
            DemoError::Config(message) => {
                DemoError::Config(format!("{}: {message}", path.display()))
            }
            other => other,
        })
    }
}

/// What can go wrong when starting or reloading the demo target.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The config file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The config file is not valid; the message names the field and the fix.
    #[error("invalid demo config: {0}")]
    Config(String),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        source: io::Error,
    },
}

struct State {
    config_path: PathBuf,
    config: RwLock<Arc<DemoConfig>>,
    page: OnceLock<Bytes>,
    metrics: metrics::Metrics,
}

impl State {
    fn config(&self) -> Arc<DemoConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A running demo target: an HTTP/1.1 server on a loopback address.
///
/// Dropping it stops the server.
pub struct DemoTarget {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl DemoTarget {
    /// Reads `config_path` and starts serving on `addr` (use port 0 for a free port).
    pub async fn start(config_path: &Path, addr: SocketAddr) -> Result<DemoTarget, DemoError> {
        let config = DemoConfig::load(config_path)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| DemoError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| DemoError::Bind { addr, source })?;
        let state = Arc::new(State {
            config_path: config_path.to_owned(),
            config: RwLock::new(Arc::new(config)),
            page: OnceLock::new(),
            metrics: metrics::Metrics::default(),
        });
        let (shutdown, stop) = oneshot::channel();
        let task = tokio::spawn(serve(listener, Arc::clone(&state), stop));
        Ok(DemoTarget {
            addr,
            state,
            shutdown: Some(shutdown),
            task,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The config now serving.
    pub fn config(&self) -> DemoConfig {
        DemoConfig::clone(&self.state.config())
    }

    /// Re-reads the config file; on error the old config keeps serving (as nginx does).
    pub fn reload(&self) -> Result<(), DemoError> {
        reload(&self.state)
    }

    /// Reloads the config whenever the process receives SIGHUP, until the server stops.
    ///
    /// Reload errors are kept out of the way like nginx's: the old config keeps serving.
    pub fn reload_on_sighup(&self) -> io::Result<JoinHandle<()>> {
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let state = Arc::clone(&self.state);
        Ok(tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                // A bad config keeps the old one serving; the live check of whoever changed it
                // will notice that the new values never appeared.
                let _ = reload(&state);
            }
        }))
    }

    /// Stops accepting connections, closes open ones and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for DemoTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reload(state: &State) -> Result<(), DemoError> {
    let config = DemoConfig::load(&state.config_path)?;
    *state.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    Ok(())
}

async fn serve(listener: TcpListener, state: Arc<State>, mut stop: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = Arc::clone(&state);
                connections.spawn(async move {
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(&state, &request).await) }
                    });
                    // A client that goes away mid-request is not our error to report.
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// Answers one request: `/metrics`, or a page (after the configured delay), timed into the
/// histogram.
async fn answer(state: &State, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if path == "/metrics" {
        let mut response = Response::new(Full::new(Bytes::from(state.metrics.render())));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        return response;
    }
    let started = std::time::Instant::now();
    let delay_ms = state.config().delay_ms;
    if delay_ms > 0 && path != "/healthz" {
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
    }
    let response = respond(state, request);
    let link_kbps = state.config().link_kbps;
    if link_kbps > 0 && path != "/healthz" {
        let bits = response.body().size_hint().exact().unwrap_or(0) * 8;
        tokio::time::sleep(std::time::Duration::from_micros(bits * 1000 / link_kbps)).await;
    }
    if path != "/healthz" {
        state
            .metrics
            .record(started.elapsed(), response.status().as_u16());
    }
    response
}

fn respond(state: &State, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let config = state.config();
    if request.uri().path() == "/healthz" {
        return with_knobs(
            Response::new(Full::new(Bytes::from_static(b"ok\n"))),
            &config,
        );
    }
    let page = if config.cache {
        state
            .page
            .get_or_init(|| Bytes::from(render_page()))
            .clone()
    } else {
        Bytes::from(render_page())
    };
    let wants_gzip = request
        .headers()
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    let mut response = if wants_gzip && config.compression_level > 0 {
        let mut response = Response::new(Full::new(Bytes::from(gzip(
            &page,
            config.compression_level,
        ))));
        response
            .headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response
    } else {
        Response::new(Full::new(page))
    };
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    *response.status_mut() = StatusCode::OK;
    with_knobs(response, &config)
}

fn with_knobs(mut response: Response<Full<Bytes>>, config: &DemoConfig) -> Response<Full<Bytes>> {
    let headers = response.headers_mut();
    headers.insert(
        "x-demo-cache",
        HeaderValue::from_static(if config.cache { "true" } else { "false" }),
    );
    headers.insert(
        "x-demo-compression-level",
        HeaderValue::from(config.compression_level),
    );
    headers.insert("x-demo-delay-ms", HeaderValue::from(config.delay_ms));
    if let Ok(noop) = HeaderValue::from_str(&config.noop) {
        headers.insert("x-demo-noop", noop);
    }
    response
}

/// How many catalogue rows the page has, and how many hashing rounds each row costs: together
/// a few milliseconds of CPU in a release build, so the cache has something real to save.
const ROWS: u64 = 1200;
const ROUNDS_PER_ROW: u64 = 2000;

/// Renders the demo page: a product table whose prices come from real (if pointless) hashing, so
/// rendering costs CPU the way a template engine or a database round trip would.
pub fn render_page() -> String {
    let mut page = String::with_capacity(64 * 1024);
    page.push_str("<!doctype html><html><head><title>Demo shop</title></head><body><table>\n");
    for row in 0..ROWS {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ row;
        for round in 0..ROUNDS_PER_ROW {
            hash ^= round;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        let _ = writeln!(
            page,
            "<tr><td>item {row}</td><td>sku-{hash:016x}</td><td>{}.{:02} EUR</td>\
             <td>In stock at the warehouse nearest to you, ships in {} days.</td></tr>",
            hash % 500,
            hash % 100,
            1 + hash % 5
        );
    }
    page.push_str("</table></body></html>\n");
    page
}

fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .expect("gzip into a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sample_and_rejects_bad_values() {
        let config = DemoConfig::parse(SAMPLE_CONFIG).unwrap();
        assert_eq!(
            config,
            DemoConfig {
                cache: false,
                compression_level: 0,
                noop: "a".to_owned(),
                delay_ms: 0,
                link_kbps: 0,
            }
        );
        for bad in [
            "cache = false\ncompression_level = 10\n",
            "cache = \"yes\"\ncompression_level = 1\n",
            "cache = false\ncompression_level = 1\ntypo = 1\n",
        ] {
            assert!(DemoConfig::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_page_is_deterministic_and_compresses() {
        let page = render_page();
        assert_eq!(page, render_page());
        assert!(page.len() > 32 * 1024, "{}", page.len());
        let small = gzip(page.as_bytes(), 9);
        assert!(small.len() < page.len() / 3);
    }
}
