//! smart in a real monitoring stack: after a real run against the demo target, Debian's
//! prometheus-node-exporter (textfile collector only) reads the file `smart run` wrote, Debian's
//! Prometheus scrapes it on loopback, and a query over Prometheus' HTTP API returns the run's
//! decision. `promtool check metrics` must find nothing wrong with `smart metrics`.
//!
//! Every process runs on a free loopback port with its own directories; the machine's own
//! exporters and Prometheus (if any) are never touched.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use smart_testkit::{free_port, require_tool};

use crate::run::Site;

/// A child process killed (and reaped) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `promtool check metrics` on `text`: its exit status and what it said.
fn promtool_check_metrics(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// A plain HTTP/1.0 GET on loopback: the body, when the status is 200.
fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_owned()))
}

/// Polls `probe` every 250 ms for up to `limit`.
fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(value) = probe() {
            return Some(value);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    None
}

/// The `smart_decisions_total` samples Prometheus holds: (experiment, variant, decision, value).
fn decisions_in_prometheus(port: u16) -> Vec<(String, String, String, String)> {
    let Some(body) = get(port, "/api/v1/query?query=smart_decisions_total") else {
        return Vec::new();
    };
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let Some(results) = answer["data"]["result"].as_array() else {
        return Vec::new();
    };
    results
        .iter()
        .map(|r| {
            let label = |name: &str| r["metric"][name].as_str().unwrap_or("").to_owned();
            (
                label("experiment"),
                label("variant"),
                label("decision"),
                r["value"][1].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn prometheus_scrapes_the_decision_of_a_real_run_through_node_exporter() {
    if !require_tool("promtool", "the real-Prometheus test")
        || !require_tool("prometheus", "the real-Prometheus test")
        || !require_tool("prometheus-node-exporter", "the real-Prometheus test")
    {
        return;
    }
    let site = Site::start();
    let textfiles = site.path("textfile");
    fs::create_dir(&textfiles).unwrap();
    let mut config = fs::read_to_string(site.path("smart.toml")).unwrap();
    config.push_str("\n[prometheus]\ntextfile = \"textfile/smart.prom\"\n");
    fs::write(site.path("smart.toml"), config).unwrap();
    site.experiment(
        "levels",
        "cache = true\ncompression_level = {{ level }}\nnoop = \"a\"\n",
        json!([{"name": "level-1", "params": {"level": 1}}]),
        json!({}),
    );

    let out = site.run(&["run", "--once"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 3),
        "smart run: {stderr}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");
    let decisions = site.decisions();
    assert_eq!(
        decisions.len(),
        1,
        "one variant, one decision: {decisions:?}"
    );
    let (variant, decision) = &decisions[0];

    // What smart run wrote and what smart metrics prints both pass promtool's lint.
    let written = fs::read_to_string(textfiles.join("smart.prom")).unwrap();
    let (clean, said) = promtool_check_metrics(&written);
    assert!(
        clean && said.trim().is_empty(),
        "the textfile: {said}\n{written}"
    );
    let printed = site.run(&["metrics"]);
    assert!(printed.status.success());
    let printed = String::from_utf8(printed.stdout).unwrap();
    let (clean, said) = promtool_check_metrics(&printed);
    assert!(
        clean && said.trim().is_empty(),
        "smart metrics: {said}\n{printed}"
    );
    let sample = format!(
        "smart_decisions_total{{experiment=\"levels\",variant=\"{variant}\",decision=\"{}\"}} 1\n",
        decision.as_str()
    );
    assert!(printed.contains(&sample), "{sample} in\n{printed}");

    // node_exporter with the textfile collector alone, on a free loopback port.
    let exporter_port = free_port();
    let _exporter = Killed(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!(
                "--collector.textfile.directory={}",
                textfiles.display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let scraped = wait_for(Duration::from_secs(30), || {
        get(exporter_port, "/metrics").filter(|m| m.contains("smart_decisions_total"))
    })
    .expect("node_exporter serves the textfile's metrics");
    // node_exporter re-emits the labels in name order.
    let relabelled = format!(
        "smart_decisions_total{{decision=\"{}\",experiment=\"levels\",variant=\"{variant}\"}} 1\n",
        decision.as_str()
    );
    assert!(scraped.contains(&relabelled), "{relabelled} in\n{scraped}");
    assert!(
        scraped.contains("node_textfile_scrape_error 0"),
        "node_exporter read the file without error"
    );

    // Prometheus with its own config and data dir, scraping it every second.
    let prometheus_port = free_port();
    let prometheus_dir = site.path("prometheus");
    fs::create_dir(&prometheus_dir).unwrap();
    let config = prometheus_dir.join("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n",
            rules_file().display()
        ),
    )
    .unwrap();
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                prometheus_dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let found = wait_for(Duration::from_secs(90), || {
        let held = decisions_in_prometheus(prometheus_port);
        (!held.is_empty()).then_some(held)
    })
    .expect("Prometheus returns smart_decisions_total within 90 s");
    assert_eq!(
        found,
        [(
            "levels".to_owned(),
            variant.clone(),
            decision.as_str().to_owned(),
            "1".to_owned()
        )]
    );
    // The shipped rules load into the real Prometheus.
    let rules = get(prometheus_port, "/api/v1/rules").expect("the rules API answers");
    assert!(rules.contains("SmartRevertFailed"), "{rules}");
}

/// deploy/prometheus/smart-rules.yml in the repository.
fn rules_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/smart-rules.yml")
}

/// `smart metrics` on a state dir with no runs yet is valid exposition text too.
#[test]
fn smart_metrics_on_a_fresh_state_dir_passes_promtool() {
    if !require_tool("promtool", "smart metrics | promtool check metrics") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("smart.toml"),
        "experiments_dir = \"experiments\"\nstate_dir = \"state\"\n",
    )
    .unwrap();
    let out = crate::support::smart(dir.path(), &["metrics"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\nsmart_running 0\n"), "{text}");
    assert!(text.contains("\nsmart_recovery_needed 0\n"), "{text}");
    let (clean, said) = promtool_check_metrics(&text);
    assert!(clean && said.trim().is_empty(), "{said}\n{text}");
}

/// A long-running `smart run` with `[prometheus] listen` serves `/metrics` on loopback while it
/// waits for work (it holds the run lock: `smart_lock_held 1`), writes its textfile at the
/// start, and stops serving when SIGTERM ends it; a non-loopback address is refused up front.
#[test]
fn a_long_running_smart_run_serves_metrics_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("experiments")).unwrap();
    let port = free_port();
    let config = format!(
        "experiments_dir = \"experiments\"\nstate_dir = \"state\"\ndashboard_dir = \"dashboard\"\n\
         [prometheus]\nlisten = \"127.0.0.1:{port}\"\ntextfile = \"smart.prom\"\n"
    );
    fs::write(dir.path().join("smart.toml"), &config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_smart"))
        .arg("run")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut run = Killed(child);
    let served = wait_for(Duration::from_secs(30), || get(port, "/metrics"));
    // The textfile is written just after the server starts.
    let textfile = wait_for(Duration::from_secs(30), || {
        fs::read_to_string(dir.path().join("smart.prom")).ok()
    })
    .unwrap_or_default();
    let stopped = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(stopped.success());
    let status = run.0.wait().unwrap();
    let mut stderr = String::new();
    run.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let served = served.unwrap_or_else(|| panic!("no /metrics on port {port}: {stderr}"));
    assert!(served.contains("\nsmart_lock_held 1\n"), "{served}");
    assert!(served.contains("\nsmart_running 0\n"), "{served}");
    assert!(textfile.contains("\nsmart_lock_held 1\n"), "{textfile}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "serving metrics on http://127.0.0.1:{port}/metrics"
        )),
        "{stderr}"
    );
    assert!(
        get(port, "/metrics").is_none(),
        "still serving after the run ended"
    );

    fs::write(
        dir.path().join("smart.toml"),
        config.replace("127.0.0.1:", "0.0.0.0:"),
    )
    .unwrap();
    let refused = crate::support::smart(dir.path(), &["run", "--once"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(said.contains("is not a loopback address"), "{said}");
}
