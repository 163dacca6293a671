//! The data the engine exchanges with its ports: what a block should measure and what it saw, what
//! the judge is fed and answers, what an applier reports when it fails, and a coach's advice.
//!
//! These types belong to smart-core so that every port implementation (the real probe, judge and
//! applier crates, or an embedder's own) speaks the same language without depending on each other.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::experiment::Guardrails;

/// Which side of a comparison a block measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Arm {
    /// The baseline: the configuration as found, or as the experiment's baseline params render it.
    Baseline,
    /// The variant under test.
    Variant,
}

/// What one block should measure; the probe is already set up for the experiment's target.
#[derive(Debug, Clone, Copy)]
pub struct BlockRequest<'a> {
    /// The live arm's name: `baseline` or the variant's name (for labels; the probe measures
    /// whatever is live).
    pub arm: &'a str,
    /// Load sent first and not recorded: the cool-down after a switch (zero when nothing changed
    /// since the last block). It still counts for the guardrails.
    pub warmup: Duration,
    /// How long the recorded part lasts.
    pub duration: Duration,
    /// The limits that stop the block early.
    pub guardrails: &'a Guardrails,
}

/// A snapshot of a running block, for status files, progress bars and the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LiveProgress {
    /// Whether the block is still in its unrecorded warm-up (cool-down).
    pub warming_up: bool,
    /// Seconds since the block started, warm-up included.
    pub elapsed_s: f64,
    /// Requests recorded so far (after the warm-up).
    pub requests: u64,
    /// Recorded requests that failed.
    pub errors: u64,
    /// The rate the target sees now, in requests per second.
    pub rate_per_s: f64,
    /// The median latency of the answered requests so far, in microseconds.
    pub p50_us: Option<u64>,
}

/// What one block measured: counts, figures and a bounded sample of latencies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockMeasurement {
    /// Seconds the recorded part lasted (shorter than planned when it was stopped early).
    pub duration_s: f64,
    /// Requests whose outcome was recorded.
    pub requests: u64,
    /// Those that failed: a status outside `ok_status`, a timeout or a transport error.
    pub errors: u64,
    /// Requests per outcome (`ok`, `bad_status`, `timeout`, ...), as the probe names them.
    pub outcomes: BTreeMap<String, u64>,
    /// Latencies of the answered ok requests in microseconds, in the order measured: all of them
    /// or, past the probe's cap, a uniform subset.
    pub latencies_us: Vec<u64>,
    /// Median latency of the ok requests, in microseconds.
    pub p50_us: Option<u64>,
    /// 90th percentile latency, in microseconds.
    pub p90_us: Option<u64>,
    /// 99th percentile latency, in microseconds.
    pub p99_us: Option<u64>,
    /// Mean latency, in microseconds.
    pub mean_us: Option<f64>,
    /// The rate achieved, in requests per second.
    pub rate_per_s: f64,
    /// Why the block was stopped before its end by a guardrail, in plain English; `None` when it
    /// ran its course.
    pub aborted: Option<String>,
    /// What the host was doing during the block (pressure stall, load, steal), when the probe
    /// could read it; the judge keeps no cycle whose partner blocks saw very different pressure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostPressure>,
}

/// What the host was doing during one block, as plain numbers: Linux pressure stall information
/// (PSI, the share of the block's wall time in which some task waited for the resource, from the
/// `total` counters of `/proc/pressure/*`), the 1-minute load average at the block's end, the
/// share of CPU time stolen by the hypervisor and the number of CPUs (`/proc/stat`). Each figure
/// is `None` when the kernel does not offer it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostPressure {
    /// Percent of the block in which some task waited for a CPU.
    pub cpu_some_pct: Option<f64>,
    /// Percent of the block in which some task waited for memory (reclaim, swap-in).
    pub memory_some_pct: Option<f64>,
    /// Percent of the block in which some task waited for I/O.
    pub io_some_pct: Option<f64>,
    /// The 1-minute load average at the block's end.
    pub load1: Option<f64>,
    /// Percent of all CPU time in the block stolen by the hypervisor.
    pub steal_pct: Option<f64>,
    /// Online CPUs (the `cpuN` lines of `/proc/stat`), to read the load against: a load of 8
    /// starves a 2-CPU host and is light on a 32-CPU one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
}

impl BlockMeasurement {
    /// The error rate in percent (0 when nothing was recorded).
    pub fn error_rate_pct(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64 * 100.0
        }
    }
}

/// One finished block of a cycle, as the judge is fed it.
#[derive(Debug, Clone, Copy)]
pub struct CycleBlock<'a> {
    /// The arm that was live.
    pub arm: Arm,
    /// The cycle, counted from 0 for each variant.
    pub cycle: u32,
    /// The block's position in its cycle, from 0.
    pub position: u32,
    /// What it measured.
    pub measurement: &'a BlockMeasurement,
    /// Whether it ended early (left out of the statistics, still checked against guardrails).
    pub cut_short: bool,
}

/// The judge's verdict on one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Confidently better by the required margin, errors within bounds, no guardrail fired.
    Keep,
    /// Significantly worse, a guardrail fired, or another variant was better.
    Revert,
    /// Not enough evidence either way (the engine reverts: fail-safe).
    Inconclusive,
}

impl Verdict {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Keep => "keep",
            Verdict::Revert => "revert",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// The judge's answer after a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "step", content = "verdict")]
pub enum JudgeStep {
    /// Measure another cycle of this variant.
    Continue,
    /// This variant's test is over; with several variants a `Keep` is a candidate, and the
    /// conclusion keeps at most the best one.
    Stop(Verdict),
}

/// Lower and upper confidence bounds of an estimate, in the estimate's unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bounds {
    /// The lower bound.
    pub lower: f64,
    /// The upper bound.
    pub upper: f64,
}

/// The judge's estimates for one variant: the changes it measured, their confidence bounds and
/// its p-value. One type, shared by the engine's [`Judgement`], the run records
/// ([`DecisionRecord`](crate::records::DecisionRecord)) and every front end that shows them;
/// flattened into those, so their JSON keeps its fields where they always were.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Estimates {
    /// Relative change of the median latency in percent (negative is faster); `null` when there
    /// was too little data.
    pub p50_change_pct: Option<f64>,
    /// Confidence bounds of `p50_change_pct`, when the decision metric is the median.
    pub p50_change_bounds_pct: Option<Bounds>,
    /// Error-rate difference in percentage points (variant − baseline).
    pub error_rate_change_pp: Option<f64>,
    /// Confidence bounds of `error_rate_change_pp`.
    pub error_rate_change_bounds_pp: Option<Bounds>,
    /// The judge's p-value of "no change", for orientation (see `docs/statistics.md`).
    pub p_value: Option<f64>,
}

/// The judge's figures and verdict for one variant, in the form the engine records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// ABBA cycles fed.
    pub cycles: u32,
    /// Relative change of the decision metric, `(variant − baseline) / baseline × 100`.
    pub metric_change_pct: Option<f64>,
    /// The median's and the error rate's change, their bounds, the p-value.
    #[serde(flatten)]
    pub estimates: Estimates,
    /// The guardrail that fired, in words, if any.
    pub guardrail: Option<String>,
    /// Why, in plain English with the numbers.
    pub reasons: Vec<String>,
    /// The judge's whole report, as JSON, for records and the dashboard.
    pub report: serde_json::Value,
}

/// The judge's final word on an experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Conclusion {
    /// The index of the one variant to keep, if any.
    pub kept: Option<usize>,
    /// One judgement per variant, in the experiment's order.
    pub variants: Vec<Judgement>,
}

/// A failure reported by a probe or a judge: what failed, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortError {
    message: String,
}

impl PortError {
    /// A failure described by `message` (what failed, on what, and what to do).
    pub fn new(message: impl fmt::Display) -> PortError {
        PortError {
            message: message.to_string(),
        }
    }

    /// The description.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PortError {}

/// An applier's failure, and whether the original configuration is live afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyFailure {
    /// What failed (the step, the command, its stderr), without secrets.
    pub message: String,
    /// Whether the original configuration is in place and serving after the failure (the
    /// applier restores it itself when a switch fails). When `false`, the engine asks the applier
    /// to restore it once more and fails the run loudly if that fails too.
    pub original_live: bool,
    /// Whose failure it is: the configuration's (it failed a check) or smart's own (its state
    /// dir is full or read-only, the experiment does not fit the machine).
    pub cause: FailureCause,
}

/// Whose failure an [`ApplyFailure`] is, which decides what the engine concludes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// The configuration failed a check (`validate`, reload, the live check, health): on the
    /// configuration as found the baseline is unsound; on a switch the variant is reverted.
    Config,
    /// smart itself could not work (its state dir cannot be written, a command is missing):
    /// this says nothing about the configuration, so the run stops with nothing decided and the
    /// server is never blamed.
    Smart,
}

impl fmt::Display for ApplyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApplyFailure {}

/// What a coach advises on an inconclusive variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AdviceAction {
    /// Revert (the local fail-safe).
    Revert,
    /// Continue the same sequential test, up to `max_cycles`.
    Extend,
    /// Keep the variant; honoured only when no guardrail fired, the error bound holds and the
    /// estimate is not a regression.
    Keep,
}

/// A coach's answer, with its reason in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Advice {
    /// What to do.
    pub action: AdviceAction,
    /// Why.
    pub reason: String,
}

/// What a coach is asked about: one inconclusive variant.
#[derive(Debug, Clone, Copy)]
pub struct AdviceRequest<'a> {
    /// The run.
    pub run_id: &'a str,
    /// The experiment's name.
    pub experiment: &'a str,
    /// The variant's name.
    pub variant: &'a str,
    /// The judge's figures so far.
    pub judgement: &'a Judgement,
    /// The most cycles the schedule allows (an `extend` continues up to it).
    pub max_cycles: u32,
}
