//! The judge's output: per-variant reports with the numbers behind every decision.
//!
//! These are stored by the engine and shown by the dashboard and `smart history --json`, so their
//! field names are a contract (each type derives a JSON Schema for the published schemas). Every relative change follows one sign convention:
//! `(variant − baseline) / baseline × 100`, so a negative latency change is faster.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smart_core::engine::{Bounds, Estimates};
use smart_core::experiment::Metric;

/// The answer for one variant: the engine's own verdict type, so a judge's answer needs no
/// translation on its way into the run records.
pub use smart_core::engine::Verdict;

/// The judge's answer after a cycle: go on measuring, or stop with a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", tag = "step", content = "verdict")]
pub enum Step {
    /// Measure another cycle of this variant.
    Continue,
    /// This variant's test is over. With several variants a `Keep` here means "a candidate":
    /// [`crate::Judge::conclude`] keeps at most the best one.
    Stop(Verdict),
}

/// An estimate with its confidence bounds, in the unit its field names.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Interval {
    /// The point estimate.
    pub estimate: f64,
    /// The lower confidence bound.
    pub lower: f64,
    /// The upper confidence bound.
    pub upper: f64,
}

/// What one arm saw, pooled over its blocks that ran to their end (cut-short blocks left out).
///
/// The percentiles come from a bounded histogram of the pooled latencies (smart-core's
/// `LatencyDistribution`): exact below 512 µs, within 0.2 % above; the mean is exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ArmSummary {
    /// Blocks measured (including blocks cut short).
    pub blocks: u32,
    /// Requests sent in those blocks.
    pub requests: u64,
    /// Failed requests among them.
    pub errors: u64,
    /// `errors / requests × 100`; `null` when nothing was sent.
    pub error_rate_pct: Option<f64>,
    /// Median latency of the answered requests, in microseconds.
    pub p50_us: Option<f64>,
    /// 90th percentile latency, in microseconds.
    pub p90_us: Option<f64>,
    /// 99th percentile latency, in microseconds.
    pub p99_us: Option<f64>,
    /// Mean latency, in microseconds.
    pub mean_us: Option<f64>,
}

/// One variant compared with the baseline: figures, verdict and reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VariantReport {
    /// The variant's name.
    pub variant: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The statistic the decision is made on.
    pub metric: Metric,
    /// ABBA cycles measured.
    pub cycles: u32,
    /// The most cycles the schedule allows.
    pub max_cycles: u32,
    /// Adjacent (baseline, variant) block pairs the latency statistics used: the `n` of the test.
    pub pairs: u32,
    /// The baseline arm's figures.
    pub baseline: ArmSummary,
    /// The variant arm's figures.
    pub candidate: ArmSummary,
    /// Relative change of the decision metric in percent, with its sequential confidence bounds;
    /// `null` when there was too little data.
    pub metric_change_pct: Option<Interval>,
    /// Relative change of the median in percent (the point estimate, whatever the metric).
    pub p50_change_pct: Option<f64>,
    /// Relative change of the 99th percentile in percent (what the p99 guardrail checks).
    pub p99_change_pct: Option<f64>,
    /// Two-sided p-value of "no change in the metric" from the paired t-test on the block pairs,
    /// for orientation only: not adjusted for the repeated looks or the number of variants, and
    /// not what the decision uses.
    pub p_value: Option<f64>,
    /// Error-rate difference in percentage points (variant − baseline), with its sequential bounds.
    pub error_rate_change_pp: Option<Interval>,
    /// The one-sided confidence level of each bound above, after adjusting for several variants
    /// (repeated looks are accounted for by the group-sequential boundary, not by this number).
    pub bound_confidence: f64,
    /// The guardrail that fired, if any, in words.
    pub guardrail: Option<String>,
    /// For an inconclusive variant: a coach may keep it (no guardrail fired, the error-rate bound
    /// is within `max_error_increase_pp`, and the estimate is not a regression). Always false for
    /// keep and revert.
    pub coach_may_keep: bool,
    /// Why, in plain English with the numbers.
    pub reasons: Vec<String>,
}

impl VariantReport {
    /// The report's figures as records, status, the dashboard and the coach show them: the one
    /// place a report becomes smart-core's [`Estimates`] (the report keeps its own JSON shape,
    /// an interval per figure, for `docs/statistics.md`'s readers).
    pub fn estimates(&self) -> Estimates {
        let bounds = |i: &Interval| Bounds {
            lower: i.lower,
            upper: i.upper,
        };
        Estimates {
            // With the median as the decision metric, the estimate its bounds are centred on, so
            // the figure and its bounds shown side by side (history, dashboard) are one interval
            // and agree with the reasons' (issue 16 saw "-24.8 % [-39.8, +9.4]" beside a
            // reason's "-13.8 % (bounds -39.8 % to +9.4 %)").
            p50_change_pct: match (self.metric, &self.metric_change_pct) {
                (Metric::P50, Some(interval)) => Some(interval.estimate),
                _ => self.p50_change_pct,
            },
            // The sequential bounds are computed for the decision metric only.
            p50_change_bounds_pct: match self.metric {
                Metric::P50 => self.metric_change_pct.as_ref().map(bounds),
                _ => None,
            },
            error_rate_change_pp: self.error_rate_change_pp.map(|i| i.estimate),
            error_rate_change_bounds_pp: self.error_rate_change_pp.as_ref().map(bounds),
            p_value: self.p_value,
        }
    }
}

/// The judgement of a whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Outcome {
    /// The variant to keep, if any: at most one.
    pub kept: Option<String>,
    /// One report per variant, in the order the variants were given.
    pub variants: Vec<VariantReport>,
}
