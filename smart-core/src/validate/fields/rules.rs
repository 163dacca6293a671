//! The rules of a run: the `schedule`, the `decision` and the `guardrails` sections.

use serde_json::{Map, Value};

use super::{DECISION_KEYS, GUARDRAILS_KEYS, SCHEDULE_KEYS, key_home, typed};
use crate::experiment::{Confidence, Decision, Guardrails, Improvement, Percent, Schedule};
use crate::reader::{Range, Reader, describe, join};

/// The longest duration field, in seconds (a day; `max_duration_s` may be up to 30 days).
const MAX_SECONDS: f64 = 86_400.0;

/// The `schedule` section (at `field`: it is also read from `smart.toml`'s `[defaults]`).
pub(crate) fn schedule(r: &mut Reader, value: &Value, field: &str) -> Option<Schedule> {
    let start = r.count();
    let map = r.object(value, field, SCHEDULE_KEYS, &key_home)?;
    seconds(r, map, field, "cooldown_s", MAX_SECONDS);
    seconds(r, map, field, "block_s", MAX_SECONDS);
    seconds(r, map, field, "soak_s", MAX_SECONDS);
    seconds(r, map, field, "max_duration_s", 30.0 * MAX_SECONDS);
    if let Some(cycles) = map.get("max_cycles") {
        r.integer(cycles, &join(field, "max_cycles"), 1, 1000);
    }
    if let Some(interleave) = map.get("interleave") {
        r.boolean(interleave, &join(field, "interleave"));
    }
    typed(r, start, value, field)
}

/// A duration in seconds: greater than 0.
fn seconds(r: &mut Reader, map: &Map<String, Value>, parent: &str, key: &str, max: f64) {
    if let Some(value) = map.get(key) {
        r.number(
            value,
            &join(parent, key),
            Range::positive(max).hint("a duration in seconds"),
        );
    }
}

/// The `decision` section.
pub(crate) fn decision(r: &mut Reader, value: &Value, field: &str) -> Option<Decision> {
    let start = r.count();
    let map = r.object(value, field, DECISION_KEYS, &key_home)?;
    if let Some(metric) = map.get("metric") {
        let path = join(field, "metric");
        if let Some(m) = r.string(metric, &path, "one of \"p50\", \"p90\", \"p99\", \"mean\"")
            && !matches!(m, "p50" | "p90" | "p99" | "mean")
        {
            r.problem(
                &path,
                format!("expected one of \"p50\", \"p90\", \"p99\", \"mean\", found \"{m}\""),
            );
        }
    }
    if let Some(v) = map.get("min_improvement_pct") {
        r.number(
            v,
            &join(field, "min_improvement_pct"),
            Improvement::range()
                .hint("an improvement of 100 % or more would mean zero latency; 5 to 20 is usual"),
        );
    }
    if let Some(v) = map.get("max_error_increase_pp") {
        r.number(
            v,
            &join(field, "max_error_increase_pp"),
            Percent::range().hint("percentage points of error rate, e.g. 2"),
        );
    }
    if let Some(v) = map.get("max_error_ratio") {
        r.number(
            v,
            &join(field, "max_error_ratio"),
            Range::closed(1.0, 1_000_000.0)
                .hint("a multiple of the baseline's error rate, e.g. 1.5 (1 allows no rise)"),
        );
    }
    if let Some(v) = map.get("confidence") {
        r.number(
            v,
            &join(field, "confidence"),
            Confidence::range().hint("write a fraction: 0.95 means 95 %"),
        );
    }
    typed(r, start, value, field)
}

/// The `guardrails` section.
pub(crate) fn guardrails(r: &mut Reader, value: &Value, field: &str) -> Option<Guardrails> {
    let start = r.count();
    let map = r.object(value, field, GUARDRAILS_KEYS, &key_home)?;
    if let Some(v) = map.get("abort_error_rate_pct") {
        r.number(
            v,
            &join(field, "abort_error_rate_pct"),
            Percent::range()
                .above_min()
                .hint("a percentage of requests, e.g. 20"),
        );
    }
    seconds(r, map, field, "abort_window_s", 3600.0);
    if let Some(v) = map.get("max_p99_increase_pct")
        && !v.is_null()
    {
        let path = join(field, "max_p99_increase_pct");
        if v.is_number() {
            r.number(
                v,
                &path,
                Range::positive(10_000.0).hint("e.g. 50, or null to turn it off"),
            );
        } else {
            r.problem(
                &path,
                format!(
                    "expected a number greater than 0 (or null to turn the check off), found {}",
                    describe(v)
                ),
            );
        }
    }
    typed(r, start, value, field)
}
