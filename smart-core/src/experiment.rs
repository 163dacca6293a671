//! The experiment file format: the types one JSON file deserializes into.
//!
//! These types are the user-facing contract (see `docs/experiment-format.md`) and the source of the
//! committed JSON Schema. They hold what the user wrote, with defaults filled in; they are not yet
//! checked. Validation (every problem at once, with file, field and fix) turns them into a checked
//! experiment that the engine can trust.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod bounded;
mod search;
pub use crate::measure::{AccessLog, Measure, MeasureCommand, Prometheus, SourceKind};
pub use bounded::{Confidence, Improvement, OutOfRange, Percent};
pub use search::{
    Budget, Choices, Comparison, Constraint, Domain, IntRange, MAX_LEVELS, Scale, SearchSpec,
};

/// The only `format_version` this build reads.
pub const FORMAT_VERSION: u32 = 1;

/// A parameter value: a string or an integer (floats and booleans render ambiguously).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(untagged)]
pub enum ParamValue {
    /// An integer, rendered in decimal.
    Int(i64),
    /// A string, rendered verbatim (no newline or other control character allowed).
    Str(String),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(n) => write!(f, "{n}"),
            ParamValue::Str(s) => f.write_str(s),
        }
    }
}

/// Parameters by name (`[a-z][a-z0-9_]*`), in a stable order.
pub type Params = BTreeMap<String, ParamValue>;

/// One experiment file, as written, with defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// The file format's version; this build reads version 1.
    #[serde(default = "default_format_version")]
    pub format_version: u32,
    /// A short name, unique in the experiments dir: `[a-z0-9_-]`, used in paths and history.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9_-]+$"))]
    pub name: String,
    /// What the experiment asks, in a sentence, for the dashboard and history.
    #[serde(default)]
    pub description: String,
    /// What the probe measures: the URLs it sends requests to. Required with the probe source
    /// (the default); optional with any other `measure.source`.
    #[serde(default)]
    pub target: Target,
    /// Where each block's figures come from; the probe (`target`) by default.
    #[serde(default, skip_serializing_if = "Measure::is_default")]
    pub measure: Measure,
    /// What the experiment changes, and how to validate, reload and check it.
    pub apply: Apply,
    /// Params that render the baseline from the templates; when absent, the baseline is the
    /// configuration as found (each owned file's bytes, or its absence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Params>,
    /// The variants to try against the baseline (or give `matrix` instead).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantSpec>,
    /// Values per param whose cartesian product becomes the variants, with generated names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<BTreeMap<String, Vec<ParamValue>>>,
    /// A space smart searches by itself, one judged candidate at a time (instead of `variants`
    /// or `matrix`; see docs/search.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchSpec>,
    /// How long to measure, in which order, and the time box.
    #[serde(default)]
    pub schedule: Schedule,
    /// When a variant is kept.
    #[serde(default)]
    pub decision: Decision,
    /// Limits that abort a variant at once, whatever the statistics say.
    #[serde(default)]
    pub guardrails: Guardrails,
}

/// The JSON Schema of the experiment file format, generated from these types (committed as
/// `docs/experiment.schema.json`, which a test keeps up to date), for editors and other tools.
pub fn schema() -> schemars::Schema {
    schemars::schema_for!(ExperimentSpec)
}

fn default_format_version() -> u32 {
    FORMAT_VERSION
}

/// What the probe measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// http(s) URLs, requested in round-robin; required with the probe source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 100))]
    pub urls: Vec<String>,
    /// GET or HEAD: a probe must never change server state.
    #[serde(default)]
    pub method: Method,
    /// Extra request headers (`Authorization` and `Cookie` values are redacted when shown).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Requests per second, sent on a fixed schedule (open loop).
    #[serde(default = "default_rate_per_s")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 100_000.0))]
    pub rate_per_s: f64,
    /// How long one request may take before it counts as a timeout, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 600_000))]
    pub timeout_ms: u64,
    /// Status codes that count as success.
    #[serde(default = "default_ok_status")]
    #[schemars(length(min = 1))]
    pub ok_status: Vec<u16>,
}

impl Default for Target {
    /// No URLs and the default load: what `target` means when a non-probe source leaves it out.
    fn default() -> Self {
        Target {
            urls: Vec::new(),
            method: Method::default(),
            headers: BTreeMap::new(),
            rate_per_s: default_rate_per_s(),
            timeout_ms: default_timeout_ms(),
            ok_status: default_ok_status(),
        }
    }
}

fn default_rate_per_s() -> f64 {
    50.0
}
fn default_timeout_ms() -> u64 {
    2000
}
fn default_ok_status() -> Vec<u16> {
    vec![200]
}

/// The request method of the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum Method {
    /// `GET`, the default.
    #[default]
    #[serde(rename = "GET")]
    Get,
    /// `HEAD`, for targets whose body is large or irrelevant.
    #[serde(rename = "HEAD")]
    Head,
}

impl Method {
    /// The method as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
        }
    }
}

/// What the experiment changes and how a change is validated, made live and checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Apply {
    /// Config files the experiment owns or edits; applied and reverted together, as one change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileSpec>,
    /// A setting that is not a file (a sysctl, a runtime API), read, set and reverted by commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandSpec>,
    /// Checks the written config before it goes live, e.g. `["nginx", "-t"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<Vec<String>>,
    /// Makes the written config live, e.g. `["systemctl", "reload", "nginx"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<Vec<String>>,
    /// Polled after a reload until it answers OK or its timeout passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Confirms that the new config is really serving (a reload can succeed while the old one
    /// keeps serving).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_check: Option<LiveCheck>,
    /// How long any one of these commands may run before it is killed, in seconds.
    #[serde(default = "default_command_timeout_s")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 3600.0))]
    pub command_timeout_s: f64,
}

fn default_command_timeout_s() -> f64 {
    30.0
}

/// One config file and how each arm's content is made.
///
/// Exactly one of `template`, `template_file` and `edit` is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Absolute path of the file on the server.
    #[schemars(regex(pattern = r"^/"))]
    pub path: String,
    /// The file's whole content, with `{{ param }}` placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// A file holding the template, relative to the experiment file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_file: Option<String>,
    /// A single-line edit of an existing file the experiment does not own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<Edit>,
}

/// Replaces the one line of a found file that matches `pattern`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    /// A regex that must match exactly one line of the found file, e.g. `^worker_processes .*;$`.
    #[schemars(length(min = 1))]
    pub pattern: String,
    /// The replacement line, with `{{ param }}` placeholders.
    pub replace: String,
}

/// A setting changed by commands (argv vectors, never a shell string).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// Prints the current value; its trimmed output is journalled before the first `set`.
    #[schemars(length(min = 1))]
    pub read: Vec<String>,
    /// Sets the value, with `{{ param }}` placeholders in its elements.
    #[schemars(length(min = 1))]
    pub set: Vec<String>,
    /// Puts the captured value back, with `{{ original }}` standing for `read`'s output; when
    /// absent, `set` is run with its one param replaced by the captured value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert: Option<Vec<String>>,
}

/// An HTTP health check polled after every reload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// The URL to request (GET).
    pub url: String,
    /// How long to keep polling for an OK answer, in seconds.
    #[serde(default = "default_health_timeout_s")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 600.0))]
    pub timeout_s: f64,
    /// Status codes that count as healthy.
    #[serde(default = "default_ok_status")]
    #[schemars(length(min = 1))]
    pub ok_status: Vec<u16>,
}

fn default_health_timeout_s() -> f64 {
    10.0
}

/// Confirms, through a response header, which config is serving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveCheck {
    /// The URL to request (GET).
    pub url: String,
    /// The response header to read, e.g. `X-Smart-Variant`.
    pub header: String,
    /// The value it must equal once the arm is live, with placeholders (`{{ variant }}`).
    pub equals: String,
}

/// One variant: a name and the params its templates render with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// `[a-z0-9_-]`, unique within the experiment, not `baseline`.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9_-]+$"))]
    pub name: String,
    /// Values for the placeholders of the templates, edits and commands.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": "^[a-z][a-z0-9_]*$"}))]
    pub params: Params,
}

/// How long to measure and in which order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Seconds to wait after every switch before measuring; probes in it are discarded.
    #[serde(default = "default_cooldown_s")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 86_400.0))]
    pub cooldown_s: f64,
    /// Seconds one measurement block lasts.
    #[serde(default = "default_block_s")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 86_400.0))]
    pub block_s: f64,
    /// The most ABBA cycles (four blocks each) per variant.
    #[serde(default = "default_max_cycles")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_cycles: u32,
    /// ABBA interleaving (`true`) or the seed's baseline-then-variant design (`false`).
    #[serde(default = "default_interleave")]
    pub interleave: bool,
    /// Seconds to watch a kept variant under the guardrails before declaring it kept.
    #[serde(default = "default_soak_s")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 86_400.0))]
    pub soak_s: f64,
    /// The time box for the whole experiment, all variants, in seconds.
    #[serde(default = "default_max_duration_s")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 2_592_000.0))]
    pub max_duration_s: f64,
}

fn default_cooldown_s() -> f64 {
    5.0
}
fn default_block_s() -> f64 {
    10.0
}
fn default_max_cycles() -> u32 {
    14
}
fn default_interleave() -> bool {
    true
}
fn default_soak_s() -> f64 {
    120.0
}
fn default_max_duration_s() -> f64 {
    3600.0
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            cooldown_s: default_cooldown_s(),
            block_s: default_block_s(),
            max_cycles: default_max_cycles(),
            interleave: default_interleave(),
            soak_s: default_soak_s(),
            max_duration_s: default_max_duration_s(),
        }
    }
}

/// The latency statistic a decision is made on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// The median, the default.
    #[default]
    P50,
    /// The 90th percentile.
    P90,
    /// The 99th percentile.
    P99,
    /// The arithmetic mean.
    Mean,
}

/// When a variant is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The statistic compared between arms.
    #[serde(default)]
    pub metric: Metric,
    /// The reduction of the metric, in percent, that we must be confident of to keep a variant.
    #[serde(default = "default_min_improvement_pct")]
    #[schemars(range(min = 0), extend("exclusiveMaximum" = 100))]
    pub min_improvement_pct: Improvement,
    /// The most the error rate may rise, in percentage points, at the confidence bound.
    #[serde(default = "default_max_error_increase_pp")]
    #[schemars(range(min = 0, max = 100))]
    pub max_error_increase_pp: Percent,
    /// The most the error rate may grow relative to the baseline's, as a multiple (1.5: at most
    /// half as many errors again), at the confidence bound. Increases smaller than a quarter of
    /// `max_error_increase_pp` are not held to it: with almost no errors in either arm no sample
    /// can prove a ratio.
    #[serde(default = "default_max_error_ratio")]
    #[schemars(range(min = 1))]
    pub max_error_ratio: f64,
    /// The confidence level of the decision, in (0, 1).
    #[serde(default = "default_confidence")]
    #[schemars(extend("exclusiveMinimum" = 0), extend("exclusiveMaximum" = 1))]
    pub confidence: Confidence,
}

fn default_min_improvement_pct() -> Improvement {
    Improvement(10.0)
}
fn default_max_error_increase_pp() -> Percent {
    Percent(2.0)
}
fn default_max_error_ratio() -> f64 {
    1.5
}
fn default_confidence() -> Confidence {
    Confidence(0.95)
}

impl Default for Decision {
    fn default() -> Self {
        Decision {
            metric: Metric::default(),
            min_improvement_pct: default_min_improvement_pct(),
            max_error_increase_pp: default_max_error_increase_pp(),
            max_error_ratio: default_max_error_ratio(),
            confidence: default_confidence(),
        }
    }
}

/// Limits that abort a variant at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Guardrails {
    /// Abort when the error rate over the last `abort_window_s` passes this percentage.
    #[serde(default = "default_abort_error_rate_pct")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 100.0))]
    pub abort_error_rate_pct: Percent,
    /// The window, in seconds, over which the abort error rate is measured.
    #[serde(default = "default_abort_window_s")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 3600.0))]
    pub abort_window_s: f64,
    /// Revert when the variant's p99 is this many percent above the baseline's; `null` turns the
    /// check off.
    #[serde(default = "default_max_p99_increase_pct")]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub max_p99_increase_pct: Option<f64>,
}

fn default_abort_error_rate_pct() -> Percent {
    Percent(20.0)
}
fn default_abort_window_s() -> f64 {
    5.0
}
fn default_max_p99_increase_pct() -> Option<f64> {
    Some(50.0)
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            abort_error_rate_pct: default_abort_error_rate_pct(),
            abort_window_s: default_abort_window_s(),
            max_p99_increase_pct: default_max_p99_increase_pct(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_with_defaults() {
        let json = r#"{
            "name": "nginx-file-cache",
            "target": {"urls": ["http://127.0.0.1/"]},
            "apply": {"files": [{"path": "/etc/nginx/smart.d/c.conf", "template": "x {{ max }};\n"}]},
            "variants": [{"name": "a", "params": {"max": 1000, "inactive": "20s"}}]
        }"#;
        let spec: ExperimentSpec = serde_json::from_str(json).unwrap();
        assert_eq!(spec.format_version, 1);
        assert_eq!(spec.target.rate_per_s, 50.0);
        assert_eq!(spec.target.method, Method::Get);
        assert_eq!(spec.schedule, Schedule::default());
        assert_eq!(spec.decision.min_improvement_pct.get(), 10.0);
        assert_eq!(spec.variants[0].params["max"], ParamValue::Int(1000));
        assert_eq!(spec.variants[0].params["inactive"].to_string(), "20s");
    }
}
