//! The demo target over real loopback HTTP: knobs show in headers, reloads take effect, and a bad
//! config keeps the old one serving.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use smart_demo_target::{DemoTarget, SAMPLE_CONFIG};

fn get(addr: SocketAddr, headers: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knobs_show_and_reload_applies_or_keeps_the_old_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.toml");
    std::fs::write(&path, SAMPLE_CONFIG).unwrap();
    let target = DemoTarget::start(&path, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = target.addr();

    let plain = tokio::task::spawn_blocking(move || get(addr, ""))
        .await
        .unwrap();
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");
    assert!(plain.contains("x-demo-cache: false"), "{plain}");
    assert!(
        plain.contains("<table>"),
        "uncompressed without Accept-Encoding"
    );

    let level0 = tokio::task::spawn_blocking(move || get(addr, "Accept-Encoding: gzip\r\n"))
        .await
        .unwrap();
    assert!(
        !level0.contains("content-encoding"),
        "level 0 sends plain: {level0}"
    );

    std::fs::write(&path, "cache = true\ncompression_level = 6\nnoop = \"b\"\n").unwrap();
    target.reload().unwrap();
    let after = tokio::task::spawn_blocking(move || get(addr, ""))
        .await
        .unwrap();
    assert!(after.contains("x-demo-cache: true"), "{after}");
    assert!(after.contains("x-demo-compression-level: 6"), "{after}");
    assert!(after.contains("x-demo-noop: b"), "{after}");
    let zipped = tokio::task::spawn_blocking(move || get(addr, "Accept-Encoding: gzip\r\n"))
        .await
        .unwrap();
    assert!(zipped.contains("content-encoding: gzip"), "{zipped}");

    std::fs::write(&path, "cache = maybe\n").unwrap();
    assert!(target.reload().is_err());
    let kept = tokio::task::spawn_blocking(move || get(addr, ""))
        .await
        .unwrap();
    assert!(
        kept.contains("x-demo-cache: true"),
        "old config keeps serving: {kept}"
    );
    target.shutdown().await;
}

/// `link_kbps` holds each page for at least the time its body takes over the link (a sleep's
/// lower bound, whatever the machine's load): the bytes of a higher gzip level cost less time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_link_holds_each_page_for_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.toml");
    // 170 KB plain would take over 2 s at 512 kbit/s; gzipped about 0.35 s.
    std::fs::write(
        &path,
        "cache = true\ncompression_level = 1\nlink_kbps = 512\n",
    )
    .unwrap();
    let target = DemoTarget::start(&path, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = target.addr();
    let started = std::time::Instant::now();
    let zipped = tokio::task::spawn_blocking(move || get(addr, "Accept-Encoding: gzip\r\n"))
        .await
        .unwrap();
    let took = started.elapsed();
    let body = zipped.split("\r\n\r\n").nth(1).unwrap_or("").len() as u64;
    let length: u64 = zipped
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(body > 0 && length > 10_000, "{length}");
    let hold = std::time::Duration::from_micros(length * 8 * 1000 / 512);
    assert!(took >= hold, "took {took:?}, the link needs {hold:?}");
    target.shutdown().await;
}
