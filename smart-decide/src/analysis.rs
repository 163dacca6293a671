//! The statistics of one variant at one look: pairs of adjacent blocks, their log ratios and
//! error-rate differences, and the confidence bounds for a given sequential boundary.

use smart_core::experiment::Metric;

use crate::host::{Disturbance, cycle_disturbance};
use crate::sample::{Arm, BlockStats};
use crate::stats::{mean, mover_difference, norm_sf, sd, t_two_sided_p, t_upper_critical};

/// A block needs at least this many answered requests for its latency figures to count.
pub(crate) const MIN_ANSWERED: usize = 30;
/// A look needs at least this many usable block pairs (3 degrees of freedom).
pub(crate) const MIN_PAIRS: usize = 4;

/// One adjacent (baseline, variant) block pair whose latencies both count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LatencyPair {
    /// `ln(variant / baseline)` of the decision metric.
    pub(crate) metric: f64,
    /// `ln(variant / baseline)` of the block medians.
    pub(crate) p50: f64,
    /// `ln(variant / baseline)` of the block 99th percentiles.
    pub(crate) p99: f64,
}

/// `(requests, errors)` of one arm.
pub(crate) type Counts = (u64, u64);

/// One adjacent (baseline, variant) block pair whose request counts both count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ErrorPair {
    /// Variant error rate minus baseline error rate, as fractions.
    pub(crate) diff: f64,
    pub(crate) baseline: (u64, u64),
    pub(crate) variant: (u64, u64),
}

/// One cycle split into pairs: latency pairs, error pairs, and why host interference leaves the
/// cycle out of the keep test, if it does.
pub(crate) struct CyclePairs {
    pub(crate) latency: Vec<LatencyPair>,
    pub(crate) errors: Vec<ErrorPair>,
    pub(crate) disturbed: Option<Disturbance>,
}

/// Splits one cycle's blocks (sorted by position) into adjacent pairs of opposite arms, left to
/// right without overlap: ABBA gives (A,B) and (B,A); AB gives one pair; AABB gives the middle one.
pub(crate) fn pairs(blocks: &[BlockStats], metric: Metric) -> CyclePairs {
    let (mut lat, mut err) = (Vec::new(), Vec::new());
    let mut partners: Vec<(&BlockStats, &BlockStats)> = Vec::new();
    let mut i = 0;
    while i + 1 < blocks.len() {
        let (a, b) = (&blocks[i], &blocks[i + 1]);
        if a.arm == b.arm {
            i += 1;
            continue;
        }
        let (base, var) = if a.arm == Arm::Baseline {
            (a, b)
        } else {
            (b, a)
        };
        i += 2;
        if base.cut_short || var.cut_short {
            continue;
        }
        partners.push((base, var));
        if base.requests > 0 && var.requests > 0 {
            err.push(ErrorPair {
                diff: var.error_rate() - base.error_rate(),
                baseline: (base.requests, base.errors),
                variant: (var.requests, var.errors),
            });
        }
        if base.answered >= MIN_ANSWERED && var.answered >= MIN_ANSWERED {
            let ratio = |v: f64, b: f64| (v.max(1.0) / b.max(1.0)).ln();
            // The median is compared through the blocks' trimmed log means when both blocks
            // have raw latencies: the same shift, estimated from more of each block.
            let metric = match (metric, var.location, base.location) {
                (Metric::P50, Some(v), Some(b)) => v - b,
                _ => ratio(var.metric(metric), base.metric(metric)),
            };
            lat.push(LatencyPair {
                metric,
                p50: ratio(var.p50, base.p50),
                p99: ratio(var.p99, base.p99),
            });
        }
    }
    CyclePairs {
        latency: lat,
        errors: err,
        disturbed: cycle_disturbance(&partners),
    }
}

/// Mean, standard error and count of a sample of pair differences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Moments {
    pub(crate) n: usize,
    pub(crate) mean: f64,
    pub(crate) se: f64,
}

impl Moments {
    pub(crate) fn of(xs: &[f64]) -> Option<Self> {
        let m = mean(xs)?;
        let s = sd(xs)?;
        Some(Moments {
            n: xs.len(),
            mean: m,
            se: s / (xs.len() as f64).sqrt(),
        })
    }

    pub(crate) fn df(&self) -> f64 {
        (self.n - 1) as f64
    }
}

/// What the data said at one look, before any boundary is applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Look {
    /// The cycle (count, from 1) after which the look was taken.
    pub(crate) cycle: u32,
    /// The information fraction spent by this look.
    pub(crate) fraction: f64,
    /// Log ratios of the decision metric over the pairs.
    pub(crate) metric: Moments,
    /// Mean log ratio of the medians.
    pub(crate) p50: f64,
    /// Mean log ratio of the 99th percentiles.
    pub(crate) p99: f64,
    /// Error-rate differences over the pairs, and the pooled (requests, errors) of the baseline
    /// and the variant; `None` below two error pairs.
    pub(crate) errors: Option<(Moments, Counts, Counts)>,
}

impl Look {
    /// Summarises all pairs so far.
    pub(crate) fn new(
        cycle: u32,
        fraction: f64,
        lat: &[LatencyPair],
        err: &[ErrorPair],
    ) -> Option<Self> {
        let metric = Moments::of(&lat.iter().map(|p| p.metric).collect::<Vec<_>>())?;
        let errors = error_moments(err).map(|m| {
            let (baseline, variant) = error_counts(err);
            (m, baseline, variant)
        });
        Some(Look {
            cycle,
            fraction,
            metric,
            p50: mean(&lat.iter().map(|p| p.p50).collect::<Vec<_>>())?,
            p99: mean(&lat.iter().map(|p| p.p99).collect::<Vec<_>>())?,
            errors,
        })
    }

    /// The two-sided, unadjusted p-value of "no change in the metric".
    pub(crate) fn p_value(&self) -> f64 {
        if self.metric.se <= 0.0 {
            return if self.metric.mean == 0.0 { 1.0 } else { 0.0 };
        }
        t_two_sided_p(self.metric.mean / self.metric.se, self.metric.df())
    }

    /// The bounds at this look for the one-sided normal boundary `z` (∞: no bound reachable).
    pub(crate) fn bounds(&self, z: f64) -> Bounds {
        let upper_tail = if z.is_finite() { norm_sf(z) } else { 0.0 };
        let c = t_upper_critical(self.metric.df(), upper_tail);
        let m = &self.metric;
        let metric = (m.mean - c * m.se, m.mean + c * m.se);
        let errors = self
            .errors
            .map(|(pairs, baseline, variant)| error_interval(&pairs, baseline, variant, z));
        let unbounded = (f64::NEG_INFINITY, f64::INFINITY);
        Bounds {
            metric: if c.is_finite() { metric } else { unbounded },
            errors: if z.is_finite() {
                errors
            } else {
                errors.map(|_| unbounded)
            },
        }
    }
}

/// The pooled error counts at a look: `(requests, errors)` of the baseline and of the variant.
pub(crate) fn error_counts(err: &[ErrorPair]) -> ((u64, u64), (u64, u64)) {
    let sum = |f: fn(&ErrorPair) -> (u64, u64)| {
        err.iter()
            .map(f)
            .fold((0u64, 0u64), |(n, x), (a, b)| (n + a, x + b))
    };
    (sum(|p| p.baseline), sum(|p| p.variant))
}

/// Bounds of the error-rate difference (fractions) at normal quantile `z`: the wider of the paired
/// t interval over the blocks' differences `pairs` (robust to bursts of errors) and Newcombe's
/// hybrid score interval of the pooled `(requests, errors)` counts (sensible at zero errors).
pub(crate) fn error_interval(
    pairs: &Moments,
    baseline: (u64, u64),
    variant: (u64, u64),
    z: f64,
) -> (f64, f64) {
    let c = t_upper_critical(pairs.df(), norm_sf(z));
    let (lo, hi) = mover_difference(variant, baseline, 1.0, z);
    (
        (pairs.mean - c * pairs.se).min(lo),
        (pairs.mean + c * pairs.se).max(hi),
    )
}

/// The error pairs' differences summarised, for [`error_interval`]; `None` below two pairs.
pub(crate) fn error_moments(err: &[ErrorPair]) -> Option<Moments> {
    Moments::of(&err.iter().map(|p| p.diff).collect::<Vec<_>>())
}

/// Confidence bounds at one look for one boundary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bounds {
    /// Lower and upper bound of the metric's log ratio.
    pub(crate) metric: (f64, f64),
    /// Lower and upper bound of the error-rate difference (fractions); `None` without data.
    pub(crate) errors: Option<(f64, f64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(arm: Arm, position: u32, p50: f64, answered: usize, cut_short: bool) -> BlockStats {
        BlockStats {
            arm,
            position,
            requests: 500,
            errors: 5,
            answered,
            cut_short,
            p50,
            p90: p50 * 2.0,
            p99: p50 * 4.0,
            mean: p50 * 1.2,
            location: None,
            host: None,
        }
    }

    fn check(blocks: &[BlockStats], want_ratios: &[f64], want_error_pairs: usize) {
        let CyclePairs {
            latency: lat,
            errors: err,
            ..
        } = pairs(blocks, Metric::P50);
        let got: Vec<f64> = lat
            .iter()
            .map(|p| (p.metric.exp() * 1000.0).round() / 1000.0)
            .collect();
        assert_eq!(got, want_ratios);
        assert_eq!(err.len(), want_error_pairs);
    }

    #[test]
    fn pairs_follow_the_design() {
        use Arm::{Baseline as A, Variant as B};
        // ABBA and BAAB give two pairs, each variant / baseline.
        check(
            &[
                block(A, 0, 100.0, 500, false),
                block(B, 1, 80.0, 500, false),
                block(B, 2, 90.0, 500, false),
                block(A, 3, 120.0, 500, false),
            ],
            &[0.8, 0.75],
            2,
        );
        check(
            &[
                block(B, 0, 50.0, 500, false),
                block(A, 1, 100.0, 500, false),
                block(A, 2, 100.0, 500, false),
                block(B, 3, 200.0, 500, false),
            ],
            &[0.5, 2.0],
            2,
        );
        // The seed's design: one pair per cycle.
        check(
            &[
                block(A, 0, 100.0, 500, false),
                block(B, 1, 110.0, 500, false),
            ],
            &[1.1],
            1,
        );
        // AABB: only the middle blocks are neighbours of opposite arms.
        check(
            &[
                block(A, 0, 1.0, 500, false),
                block(A, 1, 100.0, 500, false),
                block(B, 2, 90.0, 500, false),
                block(B, 3, 1.0, 500, false),
            ],
            &[0.9],
            1,
        );
        // A block cut short drops its pair; a block with too few answers drops only latency.
        check(
            &[
                block(A, 0, 100.0, 500, true),
                block(B, 1, 80.0, 500, false),
                block(B, 2, 90.0, 10, false),
                block(A, 3, 120.0, 500, false),
            ],
            &[],
            1,
        );
    }

    #[test]
    fn bounds_widen_with_the_boundary_and_use_t_quantiles() {
        let lat: Vec<LatencyPair> = [-0.2, -0.1, -0.3, -0.2]
            .iter()
            .map(|&x| LatencyPair {
                metric: x,
                p50: x,
                p99: x,
            })
            .collect();
        let look = Look::new(2, 0.25, &lat, &[]).unwrap();
        // mean −0.2, sd 0.08165, se 0.040825; t(3) upper 2.5 % is 3.182.
        let b = look.bounds(1.959_964);
        assert!(
            (b.metric.0 - (-0.2 - 3.182 * 0.040_825)).abs() < 1e-3,
            "{b:?}"
        );
        assert!(
            (b.metric.1 - (-0.2 + 3.182 * 0.040_825)).abs() < 1e-3,
            "{b:?}"
        );
        assert!(b.errors.is_none());
        let none = look.bounds(f64::INFINITY);
        assert!(none.metric.0 == f64::NEG_INFINITY && none.metric.1 == f64::INFINITY);
        // t = −0.2 / 0.040825 = −4.899 with 3 df: two-sided p = 0.0163.
        assert!((look.p_value() - 0.0163).abs() < 5e-4, "{}", look.p_value());
    }

    #[test]
    fn the_error_interval_is_the_wider_of_the_paired_and_the_pooled_one() {
        let lat: Vec<LatencyPair> = [0.01, -0.01, 0.02, -0.02]
            .iter()
            .map(|&x| LatencyPair {
                metric: x,
                p50: x,
                p99: x,
            })
            .collect();
        let pair = |xb: u64, xv: u64| ErrorPair {
            diff: (xv as f64 - xb as f64) / 500.0,
            baseline: (500, xb),
            variant: (500, xv),
        };
        let check = |err: &[ErrorPair], pooled_wider: bool| {
            let look = Look::new(2, 0.25, &lat, err).unwrap();
            let (m, baseline, variant) = look.errors.unwrap();
            let z = 2.0;
            let (lo, hi) = look.bounds(z).errors.unwrap();
            let c = t_upper_critical(m.df(), norm_sf(z));
            let paired = (m.mean - c * m.se, m.mean + c * m.se);
            let pooled = mover_difference(variant, baseline, 1.0, z);
            assert_eq!(lo, paired.0.min(pooled.0));
            assert_eq!(hi, paired.1.max(pooled.1));
            let wider = if pooled_wider { pooled } else { paired };
            assert!(
                (lo, hi) == wider,
                "{err:?}: got ({lo}, {hi}), paired {paired:?}, pooled {pooled:?}"
            );
        };
        // Steady error counts: block-to-block spread is small, the binomial interval is wider.
        check(&[pair(5, 10), pair(5, 10), pair(6, 11), pair(5, 10)], true);
        // Bursty errors: one block pair carries them all, the paired interval is wider.
        check(&[pair(0, 0), pair(0, 60), pair(0, 0), pair(0, 0)], false);
    }
}
