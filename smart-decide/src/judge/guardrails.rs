//! The guardrails the judge checks itself: a variant block's error rate, and the p99 guardrail
//! on a confidence bound over tails pooled across blocks.

use crate::analysis::Moments;
use crate::sample::{BlockSample, BlockStats};
use crate::stats::{quantile_sorted, t_upper_critical};

use super::{VariantState, arm_index};

/// A block needs this many requests before its error rate can fire the error guardrail.
pub(super) const MIN_GUARD_REQUESTS: u64 = 20;
/// Answers per arm pooled before one p99 comparison: the p99 of fewer is the top one or two.
pub(crate) const P99_MIN_ANSWERS: usize = 200;
/// p99 comparisons needed before the p99 guardrail may fire on its bound.
const P99_MIN_UNITS: usize = 3;

/// Adds a cycle's answers to the p99 comparisons: answers of blocks that ran to their end are
/// pooled per arm until each arm has [`P99_MIN_ANSWERS`], then one comparison is made (so small
/// blocks pool their tails across cycles). Blocks known only by their quantiles compare the
/// cycle's block p99s when every block answered enough requests.
pub(super) fn record_p99(
    state: &mut VariantState,
    stats: &[(BlockStats, &BlockSample)],
    wanted: bool,
) {
    if !wanted {
        return;
    }
    let counted = stats.iter().filter(|(s, _)| !s.cut_short);
    if stats.iter().all(|(_, raw)| raw.latencies_us.is_empty()) {
        let (mut sums, mut counts) = ([0.0; 2], [0u32; 2]);
        for (s, _) in counted {
            if s.answered < P99_MIN_ANSWERS || s.p99.is_nan() || s.p99 <= 0.0 {
                return;
            }
            sums[arm_index(s.arm)] += s.p99.ln();
            counts[arm_index(s.arm)] += 1;
        }
        if counts[0] > 0 && counts[1] > 0 {
            state
                .p99_units
                .push(sums[1] / f64::from(counts[1]) - sums[0] / f64::from(counts[0]));
        }
        return;
    }
    for (s, raw) in counted {
        state.p99_pending[arm_index(s.arm)].extend(&raw.latencies_us);
    }
    if state.p99_pending.iter().all(|p| p.len() >= P99_MIN_ANSWERS) {
        let mut q = [0.0; 2];
        for (arm, pending) in state.p99_pending.iter_mut().enumerate() {
            let mut sorted: Vec<f64> = pending.drain(..).map(|x| x as f64).collect();
            sorted.sort_by(f64::total_cmp);
            q[arm] = quantile_sorted(&sorted, 0.99).unwrap_or(1.0).max(1.0);
        }
        state.p99_units.push((q[1] / q[0]).ln());
    }
}

/// The lower confidence bound of the p99 log ratio at the normal boundary `z` (Student-t on the
/// comparisons); `None` below [`P99_MIN_UNITS`] comparisons.
pub(super) fn p99_lower_bound(units: &[f64], z: f64) -> Option<f64> {
    if units.len() < P99_MIN_UNITS || !z.is_finite() {
        return None;
    }
    let m = Moments::of(units)?;
    let c = t_upper_critical(m.df(), crate::stats::norm_sf(z));
    Some(m.mean - c * m.se)
}
