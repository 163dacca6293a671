//! The judge's input: what one measurement block saw, whoever measured it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smart_core::engine::HostPressure;
use smart_core::experiment::Metric;

use crate::stats::{mean, quantile_sorted};

/// Which arm a block measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Arm {
    /// The configuration as found (or as the experiment's baseline params render it).
    Baseline,
    /// The variant under test.
    Variant,
}

/// The samples of one measurement block, as the probe recorded them.
///
/// A cycle of the default design holds four blocks in ABBA or BAAB order; the judge pairs each
/// block with its neighbour of the other arm, so position and arm must be right.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BlockSample {
    /// The arm that was live.
    pub arm: Arm,
    /// The cycle this block belongs to, counted from 0 for each variant.
    pub cycle: u32,
    /// The block's position in its cycle, from 0, in the order measured.
    pub position: u32,
    /// Latency of every answered request, in microseconds, in the order measured.
    pub latencies_us: Vec<u64>,
    /// Requests sent in the block (answered or not).
    pub requests: u64,
    /// Requests that failed: a status outside `ok_status`, a timeout or a transport error.
    pub errors: u64,
    /// The block ended early (a guardrail, a signal, the time box); it is left out of the
    /// statistics but still checked against the guardrails.
    pub cut_short: bool,
    /// The block's latency quantiles, for a source that has no raw latencies (a Prometheus
    /// histogram): used when `latencies_us` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantiles: Option<BlockQuantiles>,
    /// What the host was doing during the block; a cycle whose partner blocks saw very different
    /// host pressure is left out of the keep test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostPressure>,
}

/// A block summarised by its quantiles, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BlockQuantiles {
    /// Answered requests the quantiles were computed from.
    pub answered: u64,
    /// Median latency.
    pub p50_us: f64,
    /// 90th percentile latency.
    pub p90_us: f64,
    /// 99th percentile latency.
    pub p99_us: f64,
    /// Mean latency.
    pub mean_us: f64,
}

/// A block boiled down to the figures the statistics use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BlockStats {
    pub(crate) arm: Arm,
    pub(crate) position: u32,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) answered: usize,
    pub(crate) cut_short: bool,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) mean: f64,
    /// The block's location on the log scale, from its raw latencies: the mean of the logs of
    /// the middle [`1 − 2·LOCATION_TRIM`] of its answers (see [`trimmed_log_mean`]). `None` for a
    /// block known only by its quantiles.
    pub(crate) location: Option<f64>,
    pub(crate) host: Option<HostPressure>,
}

/// The share of a block's answers cut from each end before [`trimmed_log_mean`] averages the
/// logs: enough to drop the slow tail (timeouts, a 2 % Pareto tail, a GC pause) and as many fast
/// outliers, while the middle 60 % carries about 1.45 times the information of the median alone
/// (asymptotic variance 1.09 σ²/n of a 20 % trimmed mean against 1.57 σ²/n, normal logs).
pub(crate) const LOCATION_TRIM: f64 = 0.2;

/// The location the judge compares blocks by for the `p50` metric, from a block's raw latencies
/// in µs: the mean of their logs between the 20 % and the 80 % quantile.
/// Public so that `smart calibrate` measures the noise of the very figure the judge compares.
/// `None` without answers.
pub fn block_location(latencies_us: &[u64]) -> Option<f64> {
    let mut sorted: Vec<f64> = latencies_us.iter().map(|&x| x as f64).collect();
    sorted.sort_by(f64::total_cmp);
    trimmed_log_mean(&sorted)
}

/// The mean of `ln(latency)` over the sorted answers between the [`LOCATION_TRIM`] and the
/// `1 − LOCATION_TRIM` quantile. A multiplicative change of every latency by `f` moves it by
/// exactly `ln f`, as it moves the log median, so it estimates the same shift with less noise.
pub(crate) fn trimmed_log_mean(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    let cut = (n as f64 * LOCATION_TRIM).floor() as usize;
    let middle = sorted.get(cut..n - cut)?;
    let logs: Vec<f64> = middle.iter().map(|x| x.max(1.0).ln()).collect();
    mean(&logs)
}

impl BlockStats {
    /// Summarises one block (the latencies are sorted once here).
    pub(crate) fn of(block: &BlockSample) -> Self {
        if let (true, Some(q)) = (block.latencies_us.is_empty(), block.quantiles) {
            return BlockStats {
                arm: block.arm,
                position: block.position,
                requests: block.requests,
                errors: block.errors.min(block.requests),
                answered: q.answered as usize,
                cut_short: block.cut_short,
                p50: q.p50_us,
                p90: q.p90_us,
                p99: q.p99_us,
                mean: q.mean_us,
                location: None,
                host: block.host,
            };
        }
        let mut sorted: Vec<f64> = block.latencies_us.iter().map(|&x| x as f64).collect();
        sorted.sort_by(f64::total_cmp);
        let q = |p| quantile_sorted(&sorted, p).unwrap_or(f64::NAN);
        BlockStats {
            arm: block.arm,
            position: block.position,
            requests: block.requests,
            errors: block.errors.min(block.requests),
            answered: sorted.len(),
            cut_short: block.cut_short,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            mean: mean(&sorted).unwrap_or(f64::NAN),
            location: trimmed_log_mean(&sorted),
            host: block.host,
        }
    }

    /// The block's value of a latency statistic.
    pub(crate) fn metric(&self, metric: Metric) -> f64 {
        match metric {
            Metric::P50 => self.p50,
            Metric::P90 => self.p90,
            Metric::P99 => self.p99,
            Metric::Mean => self.mean,
        }
    }

    /// The block's error rate as a fraction (0 when it sent nothing).
    pub(crate) fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}
