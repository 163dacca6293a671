//! The `/metrics` server: the text format on loopback, nothing else, and never beyond loopback.

use std::io::{Read, Write};
use std::net::TcpStream;

use smart_metrics::{Facts, MetricsServer};

/// A raw HTTP/1.0 request; the whole response.
fn request(addr: std::net::SocketAddr, line: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "{line} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serves_the_metrics_on_loopback_only() {
    let state = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let facts = Facts {
        recovery_needed: Some(false),
    };
    let server = runtime
        .block_on(MetricsServer::start(
            "127.0.0.1:0".parse().unwrap(),
            state.path(),
            facts,
        ))
        .unwrap();
    let addr = server.local_addr();
    let answer = runtime.block_on(async {
        tokio::task::spawn_blocking(move || {
            (
                request(addr, "GET /metrics"),
                request(addr, "GET /"),
                request(addr, "POST /metrics"),
            )
        })
        .await
        .unwrap()
    });
    let (metrics, other, post) = answer;
    assert!(metrics.starts_with("HTTP/1.0 200"), "{metrics}");
    assert!(
        metrics.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{metrics}"
    );
    assert!(metrics.contains("\nsmart_running 0\n"), "{metrics}");
    assert!(metrics.contains("\nsmart_recovery_needed 0\n"), "{metrics}");
    assert!(other.starts_with("HTTP/1.0 404"), "{other}");
    assert!(post.starts_with("HTTP/1.0 405"), "{post}");
    drop(server);

    let refused = runtime
        .block_on(MetricsServer::start(
            "0.0.0.0:0".parse().unwrap(),
            state.path(),
            facts,
        ))
        .unwrap_err();
    assert!(
        refused.to_string().contains("is not a loopback address"),
        "{refused}"
    );
}
