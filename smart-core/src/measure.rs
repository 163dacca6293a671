//! The `measure` section of the experiment format: where each block's figures come from.
//!
//! The default source is smart's own open-loop HTTP probe (the `target` section). Other sources
//! measure what the server really does without smart sending the load itself: a `command` run
//! once per block (a benchmark such as pgbench, or a team's own script) that prints the block's
//! latencies or quantiles and counts as JSON. Whatever the source, the engine receives the same
//! [`crate::engine::BlockMeasurement`] per block, and the judge decides from raw latencies where
//! the source has them and from block quantiles otherwise.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the figures of each block come from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// Which source measures: `probe` (the default: smart's own requests to `target.urls`) or
    /// `command` (an argv run once per block that prints the block's figures as JSON).
    #[serde(default)]
    pub source: SourceKind,
    /// The command of the `command` source; required with it, refused with any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<MeasureCommand>,
    /// The log of the `access_log` source; required with it, refused with any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<AccessLog>,
    /// The server and queries of the `prometheus` source; required with it, refused with any
    /// other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<Prometheus>,
}

impl Measure {
    /// Whether this is the default (the probe, nothing else set), which is left out when the
    /// definition is serialized, so every existing experiment keeps its definition hash.
    pub fn is_default(&self) -> bool {
        *self == Measure::default()
    }
}

/// The kinds of metric source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// smart's own open-loop HTTP probe against `target.urls`, the default.
    #[default]
    Probe,
    /// An argv run once per block that prints the block's figures as JSON on stdout.
    Command,
    /// The requests a web server logged during each block, read from its access log (no load
    /// added).
    AccessLog,
    /// PromQL queries over each block's window, answered by a Prometheus server.
    Prometheus,
}

impl SourceKind {
    /// The name as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Probe => "probe",
            SourceKind::Command => "command",
            SourceKind::AccessLog => "access_log",
            SourceKind::Prometheus => "prometheus",
        }
    }
}

/// A measuring command: run once per block, without a shell, with the block's timing in its
/// environment (`SMART_ARM`, `SMART_WARMUP_S`, `SMART_BLOCK_S`); it sends the load for
/// `SMART_WARMUP_S + SMART_BLOCK_S` seconds and prints the figures of the last `SMART_BLOCK_S`
/// seconds as one JSON object (see `docs/experiment-format.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasureCommand {
    /// The program and its arguments, e.g. `["/usr/local/bin/smart-pgbench", "-c", "4"]`.
    #[schemars(length(min = 1))]
    pub argv: Vec<String>,
    /// Extra environment variables for the command (e.g. `PGPORT`); the command otherwise runs
    /// with a cleared environment (`PATH`, `LANG=C` and the `SMART_*` variables).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// How long the command may run past the block's planned end (warm-up plus block) before it
    /// is killed and the block fails, in seconds.
    #[serde(default = "default_grace_s")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 3600.0))]
    pub grace_s: f64,
}

/// An access log in the `smart_timing` format (`deploy/nginx/smart-log-format.conf`): the
/// combined format followed by `$msec $request_time`, so each request's end time (to the
/// millisecond) and duration are known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessLog {
    /// Absolute path of the log, e.g. `/var/log/nginx/access.log`; followed across logrotate's
    /// rename and copytruncate.
    #[schemars(regex(pattern = r"^/"))]
    pub path: String,
    /// Only requests whose path starts with this, e.g. `/api/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Only requests with this method, e.g. `GET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// For thin traffic: smart's probe sends this many requests per second to `target.urls`
    /// during every block (both arms alike), and the web server logs them like visitors'
    /// requests, so each block has answers even when few visitors come. Measured through the
    /// log like every other request; `target.urls` is required with it and must pass the
    /// filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 100.0))]
    pub fill_rps: Option<f64>,
}

/// A Prometheus server and the PromQL that gives each block's figures. Every expression holds
/// `$window`, which becomes the block's length (`[10s]`) and is evaluated at the block's end, so
/// it covers exactly the block; latencies are in seconds, as Prometheus histograms keep them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Prometheus {
    /// The server's base URL, e.g. `http://127.0.0.1:9090` (no credentials in it).
    pub url: String,
    /// A latency quantile in seconds, with `$quantile` (0.5, 0.9, 0.99) and `$window`, e.g.
    /// `histogram_quantile($quantile, sum by (le) (rate(http_request_duration_seconds_bucket[$window])))`.
    pub latency_quantile: String,
    /// The mean latency in seconds over `$window`, e.g.
    /// `sum(rate(http_request_duration_seconds_sum[$window])) / sum(rate(http_request_duration_seconds_count[$window]))`.
    pub latency_mean: String,
    /// The number of requests in `$window`, e.g. `sum(increase(http_requests_total[$window]))`.
    pub requests: String,
    /// The share of those requests that failed, 0 to 1, e.g.
    /// `sum(increase(http_requests_total{code=~"5.."}[$window])) / sum(increase(http_requests_total[$window]))`.
    pub error_ratio: String,
    /// How often Prometheus scrapes the target, in seconds: a block must last at least four
    /// scrapes, and each block's queries wait one scrape past its end.
    #[serde(default = "default_scrape_interval_s")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 3600.0))]
    pub scrape_interval_s: f64,
    /// The environment variable holding the value of an `Authorization` header for the server
    /// (e.g. `Bearer ...`); read by `smart run`, never written anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_header_env: Option<String>,
}

fn default_scrape_interval_s() -> f64 {
    15.0
}

fn default_grace_s() -> f64 {
    30.0
}
