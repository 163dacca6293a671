//! The `prometheus` metric source with a real Prometheus (Debian's package, its own config and
//! data dir, on loopback, scraping every 500 ms) scraping the demo target's `/metrics` histogram
//! while visitors (threads of this test) load it; smart sends nothing itself. The effect is far
//! larger than timing noise: `delay_ms = 50` against 0. A query without data fails the run with
//! the original back, never a zero.

use std::fs;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use serde_json::json;
use smart_core::records::DecisionKind;

use crate::support::{Prometheus, Visitors, decisions, output_text};
use smart_demo_target::DemoTarget;
use smart_testkit::require_tool;

const FOUND: &str = "cache = true\ncompression_level = 0\ndelay_ms = 0\n";

struct Site {
    dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    target: Option<DemoTarget>,
    prometheus: Prometheus,
    visitors: Option<Visitors>,
}

impl Site {
    fn start(test: &str) -> Option<Site> {
        if !require_tool("prometheus", test) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("demo.toml"), FOUND).unwrap();
        fs::create_dir(dir.path().join("experiments")).unwrap();
        fs::write(
            dir.path().join("smart.toml"),
            "experiments_dir = \"experiments\"\nstate_dir = \"state\"\ndashboard_dir = \"dashboard\"\n",
        )
        .unwrap();
        let (runtime, target) = crate::support::demo_target(&dir.path().join("demo.toml"));
        let prometheus = Prometheus::start(
            dir.path(),
            &format!("      - targets: ['{}']\n", target.addr()),
        );
        let mut site = Site {
            dir,
            runtime,
            target: Some(target),
            prometheus,
            visitors: None,
        };
        site.visit();
        // A few scrapes of traffic before the first block.
        std::thread::sleep(Duration::from_secs(3));
        Some(site)
    }

    /// Four visitors in a closed loop with a 10 ms pause.
    fn visit(&mut self) {
        let port = self.target.as_ref().unwrap().addr().port();
        self.visitors = Some(Visitors::start(&[port], 4));
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn experiment(&self, name: &str, requests: &str, baseline: u64, variant: u64) {
        let url = format!("http://{}/", self.target.as_ref().unwrap().addr());
        let experiment = json!({
            "name": name,
            "measure": {"source": "prometheus", "prometheus": {
                "url": format!("http://127.0.0.1:{}", self.prometheus.port),
                "latency_quantile": "histogram_quantile($quantile, sum by (le) (rate(demo_request_duration_seconds_bucket[$window])))",
                "latency_mean": "sum(rate(demo_request_duration_seconds_sum[$window])) / sum(rate(demo_request_duration_seconds_count[$window]))",
                "requests": requests,
                "error_ratio": "sum(increase(demo_requests_total{code=\"5xx\"}[$window])) / sum(increase(demo_requests_total[$window]))",
                "scrape_interval_s": 0.5,
            }},
            "apply": {
                "files": [{"path": self.path("demo.toml"),
                           "template": "cache = true\ncompression_level = 0\ndelay_ms = {{ delay }}\n"}],
                "reload": ["kill", "-HUP", std::process::id().to_string()],
                "health": {"url": format!("{url}healthz"), "timeout_s": 5},
                "live_check": {"url": url, "header": "X-Demo-Delay-Ms", "equals": "{{ delay }}"},
            },
            "baseline": {"delay": baseline},
            "variants": [{"name": format!("delay-{variant}"), "params": {"delay": variant}}],
            "schedule": {"cooldown_s": 0.5, "block_s": 2, "max_cycles": 12, "soak_s": 1,
                         "max_duration_s": 400},
        });
        crate::support::only_experiment(&self.path("experiments"), name, &experiment);
    }

    fn smart(&self, args: &[&str]) -> Output {
        crate::support::smart(self.dir.path(), args)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        drop(self.visitors.take());
        if let Some(target) = self.target.take() {
            self.runtime.block_on(target.shutdown());
        }
    }
}

/// A GET over HTTP/1.0; the whole response, or `None`.
const REQUESTS: &str = "sum(increase(demo_requests_total[$window]))";

#[test]
fn prometheus_histograms_keep_a_large_win_and_revert_a_large_loss() {
    let Some(site) = Site::start("prometheus_histograms_keep_a_large_win_and_revert_a_large_loss")
    else {
        return;
    };
    site.experiment("prom-slower", REQUESTS, 0, 50);
    let out = site.smart(&["run", "--once"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        decisions(site.dir.path()),
        [("delay-50".to_owned(), DecisionKind::Revert)],
        "{}",
        output_text(&out)
    );
    assert_eq!(fs::read_to_string(site.path("demo.toml")).unwrap(), FOUND);
    assert_eq!(site.target.as_ref().unwrap().config().delay_ms, 0);

    site.experiment("prom-faster", REQUESTS, 50, 0);
    let out = site.smart(&["run", "--once"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let all = decisions(site.dir.path());
    assert_eq!(
        all.last(),
        Some(&("delay-0".to_owned(), DecisionKind::Keep)),
        "{all:?}\n{}",
        output_text(&out)
    );
    assert_eq!(
        fs::read_to_string(site.path("demo.toml")).unwrap(),
        "cache = true\ncompression_level = 0\ndelay_ms = 0\n"
    );
    assert_eq!(site.target.as_ref().unwrap().config().delay_ms, 0);
}

#[test]
fn a_query_without_data_fails_the_run_with_the_original_back() {
    let Some(site) = Site::start("a_query_without_data_fails_the_run") else {
        return;
    };
    site.experiment(
        "prom-nodata",
        "sum(increase(no_such_metric_total[$window]))",
        0,
        50,
    );
    let out = site.smart(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(3), "{}", output_text(&out));
    let all = output_text(&out);
    assert!(all.contains("has no data for the block"), "{all}");
    assert_eq!(fs::read_to_string(site.path("demo.toml")).unwrap(), FOUND);
    assert_eq!(site.target.as_ref().unwrap().config().delay_ms, 0);
}
