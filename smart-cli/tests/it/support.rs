//! Set-up shared by the tests that run `smart`: the binary itself, and the demo target.

use std::fs;
use std::path::Path;

use smart_demo_target::DemoTarget;

/// Starts the demo target on a free loopback port with `config`, reloading on SIGHUP (the
/// experiments' reload argv is `kill -HUP <this test process>`), on a runtime of its own so the
/// target keeps serving while the test blocks on the `smart` child process.
pub(crate) fn demo_target(config: &Path) -> (tokio::runtime::Runtime, DemoTarget) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let target = runtime.block_on(async {
        let target = DemoTarget::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        target.reload_on_sighup().unwrap();
        target
    });
    (runtime, target)
}

/// The agent config the real-server tests write beside their experiments: `experiments/`,
/// `state/` and `dashboard/` in the same temp dir.
pub(crate) const SMART_TOML: &str =
    "experiments_dir = \"experiments\"\nstate_dir = \"state\"\ndashboard_dir = \"dashboard\"\n";

/// A temp dir holding an empty `experiments/` and a `smart.toml` ([`SMART_TOML`]) that names it.
pub(crate) fn smart_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("experiments")).unwrap();
    fs::write(dir.path().join("smart.toml"), SMART_TOML).unwrap();
    dir
}

/// Runs the real `smart` binary with `args` in `cwd` and returns what it did.
pub(crate) fn smart(cwd: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_smart"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run the smart binary")
}

/// The committed schema `docs/NAME.schema.json` accepts `value`.
pub(crate) fn assert_schema(name: &str, value: &serde_json::Value) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(root.join(format!("docs/{name}.schema.json"))).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{value:#}");
}

/// The decisions recorded under `dir/state`, oldest first, as (variant, decision).
pub(crate) fn decisions(dir: &Path) -> Vec<(String, smart_core::records::DecisionKind)> {
    smart_core::records::history(&dir.join("state"))
        .unwrap()
        .into_iter()
        .map(|d| (d.variant, d.decision))
        .collect()
}

/// A finished command's stdout and stderr, for assertion messages.
pub(crate) fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Makes `name` the only experiment in `dir`: every other file there is removed first, so the
/// queue runs exactly this one.
pub(crate) fn only_experiment(dir: &Path, name: &str, experiment: &serde_json::Value) {
    for old in fs::read_dir(dir).unwrap() {
        fs::remove_file(old.unwrap().path()).unwrap();
    }
    fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(experiment).unwrap(),
    )
    .unwrap();
}

/// `GET path` over HTTP/1.0 on a loopback port: the whole answer (status line, headers, body), or
/// `None` when nothing answers within 5 s. For the tests' visitors and readiness checks.
pub(crate) fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: t\r\n\r\n").as_bytes())
        .ok()?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

/// A real Prometheus (Debian's package) started by a test: its config, data dir and log under
/// the test's own dir, a free loopback port, scraping every 500 ms; killed when dropped.
pub(crate) struct Prometheus {
    child: std::process::Child,
    /// The loopback port its HTTP API listens on.
    pub(crate) port: u16,
}

impl Prometheus {
    /// Starts it with one scrape job, `demo`, whose `static_configs:` list is
    /// `static_configs` (YAML lines indented by six spaces), and waits until it says it is
    /// ready (at most 60 s; a panic with its log otherwise).
    pub(crate) fn start(dir: &Path, static_configs: &str) -> Prometheus {
        use std::process::{Command, Stdio};
        let config = dir.join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 500ms\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: demo\n    static_configs:\n{static_configs}"
            ),
        )
        .unwrap();
        let port = smart_testkit::free_port();
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let prometheus = Prometheus { child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if http_get(port, "/-/ready").is_some_and(|r| r.contains("Ready")) {
                return prometheus;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "prometheus did not get ready within 60 s: {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Visitors of a test's service: threads in a closed loop (`GET /`, then a 10 ms pause) until the
/// value is dropped, which stops and joins them. Load that smart itself does not send, for the
/// sources that measure a server's own traffic.
pub(crate) struct Visitors {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Visitors {
    /// `per_port` visitors for each loopback port in `ports`.
    pub(crate) fn start(ports: &[u16], per_port: usize) -> Visitors {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut threads = Vec::new();
        for &port in ports {
            for _ in 0..per_port {
                let stop = stop.clone();
                threads.push(std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let _ = http_get(port, "/");
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                }));
            }
        }
        Visitors { stop, threads }
    }
}

impl Drop for Visitors {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A plain HTTP/1.0 GET of `path` on a loopback port: the status code, the value of response
/// header `header` (when sent) and the body. Panics when nothing answers within 10 s.
pub(crate) fn get_with_header(
    port: u16,
    path: &str,
    header: &str,
) -> (u16, Option<String>, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let prefix = format!("{header}: ");
    let value = head
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()).map(|v| v.trim().to_owned()));
    (status, value, response[split + 4..].to_vec())
}

/// Asserts that `smart calibrate --json` succeeded through `source` with at most the `pairs` pairs
/// asked for (those a neighbour's burst disturbed are left out, at least 2 stay), that its
/// output matches docs/calibrate.schema.json, and that the file it names stores the same noise;
/// returns the output for the caller's own checks.
pub(crate) fn assert_calibrated(
    out: &std::process::Output,
    source: &str,
    pairs: u64,
) -> serde_json::Value {
    assert!(out.status.success(), "{}", output_text(out));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_schema("calibrate", &value);
    assert_eq!(value["source"], source, "{value}");
    let used = value["pairs"].as_u64().unwrap();
    assert!((2..=pairs).contains(&used), "{value}");
    assert!(
        value["pair_sd"]
            .as_f64()
            .is_some_and(|sd| sd.is_finite() && sd >= 0.0),
        "{value}"
    );
    let stored: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(value["file"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(
        (&stored["source"], &stored["pair_sd"]),
        (&value["source"], &value["pair_sd"])
    );
    value
}
