//! The keys of each object in the format, and where an unknown key would belong.

/// The keys of each object in the format, by the JSON path of the object (`[]` for array items).
/// A test checks them against the serde types' JSON Schema, so they cannot drift.
pub(crate) const SECTIONS: &[(&str, &[&str])] = &[
    ("", ROOT_KEYS),
    ("target", TARGET_KEYS),
    ("apply", APPLY_KEYS),
    ("apply.files[]", FILE_KEYS),
    ("apply.files[].edit", EDIT_KEYS),
    ("apply.command", COMMAND_KEYS),
    ("apply.health", HEALTH_KEYS),
    ("apply.live_check", LIVE_CHECK_KEYS),
    ("variants[]", VARIANT_KEYS),
    ("schedule", SCHEDULE_KEYS),
    ("decision", DECISION_KEYS),
    ("guardrails", GUARDRAILS_KEYS),
    ("measure", MEASURE_KEYS),
    ("measure.command", MEASURE_COMMAND_KEYS),
    ("measure.access_log", MEASURE_ACCESS_LOG_KEYS),
    ("measure.prometheus", MEASURE_PROMETHEUS_KEYS),
];

/// The keys of `measure`.
pub(crate) const MEASURE_KEYS: &[&str] = &["source", "command", "access_log", "prometheus"];
/// The keys of `measure.command`.
pub(crate) const MEASURE_COMMAND_KEYS: &[&str] = &["argv", "env", "grace_s"];
/// The keys of `measure.access_log`.
pub(crate) const MEASURE_ACCESS_LOG_KEYS: &[&str] = &["path", "path_prefix", "method", "fill_rps"];

/// The keys of `measure.prometheus`.
pub(crate) const MEASURE_PROMETHEUS_KEYS: &[&str] = &[
    "url",
    "latency_quantile",
    "latency_mean",
    "requests",
    "error_ratio",
    "scrape_interval_s",
    "auth_header_env",
];

pub(crate) const ROOT_KEYS: &[&str] = &[
    "format_version",
    "name",
    "description",
    "target",
    "apply",
    "baseline",
    "variants",
    "matrix",
    "search",
    "schedule",
    "decision",
    "guardrails",
    "measure",
];
pub(crate) const TARGET_KEYS: &[&str] = &[
    "urls",
    "method",
    "headers",
    "rate_per_s",
    "timeout_ms",
    "ok_status",
];
pub(crate) const APPLY_KEYS: &[&str] = &[
    "files",
    "command",
    "validate",
    "reload",
    "health",
    "live_check",
    "command_timeout_s",
];
pub(crate) const FILE_KEYS: &[&str] = &["path", "template", "template_file", "edit"];
pub(crate) const EDIT_KEYS: &[&str] = &["pattern", "replace"];
pub(crate) const COMMAND_KEYS: &[&str] = &["read", "set", "revert"];
pub(crate) const HEALTH_KEYS: &[&str] = &["url", "timeout_s", "ok_status"];
pub(crate) const LIVE_CHECK_KEYS: &[&str] = &["url", "header", "equals"];
pub(crate) const VARIANT_KEYS: &[&str] = &["name", "params"];
pub(crate) const SCHEDULE_KEYS: &[&str] = &[
    "cooldown_s",
    "block_s",
    "max_cycles",
    "interleave",
    "soak_s",
    "max_duration_s",
];
pub(crate) const DECISION_KEYS: &[&str] = &[
    "metric",
    "min_improvement_pct",
    "max_error_increase_pp",
    "max_error_ratio",
    "confidence",
];
pub(crate) const GUARDRAILS_KEYS: &[&str] = &[
    "abort_error_rate_pct",
    "abort_window_s",
    "max_p99_increase_pct",
];

/// Where an unknown key would be known, for a "belongs in" hint (`None` when nowhere).
pub(crate) fn key_home(key: &str) -> Option<String> {
    SECTIONS
        .iter()
        .find(|(_, keys)| keys.contains(&key))
        .map(|(section, _)| {
            if section.is_empty() {
                "the top level".to_owned()
            } else {
                (*section).to_owned()
            }
        })
}
