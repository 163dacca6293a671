//! One variant's report: the bounds of the look that decided, the error interval, the estimates
//! and the reasons.

use crate::analysis::{Look, error_counts, error_interval, error_moments};
use crate::reasons;
use crate::report::{ArmSummary, Interval, VariantReport, Verdict};
use crate::sample::Arm;
use crate::signflip::{Patterns, SignLook, Units, weights};
use crate::stats::{mean, mover_difference, norm_quantile};

use super::keep::{MIN_KEEP_REQUESTS, RATIO_FLOOR_SHARE};
use super::{Cause, Judge, Status, VariantState, arm_index, pct};

impl Judge {
    pub(super) fn report(
        &self,
        state: &VariantState,
        verdict: Verdict,
        decisive: Option<usize>,
        level: f64,
        winner: Option<(&str, f64)>,
    ) -> VariantReport {
        let k = self.variants.len();
        let settings = self.settings();
        let sign_index = decisive.or(state.sign_looks.len().checked_sub(1));
        let sign = sign_index.map(|j| (j, &state.sign_looks[j]));
        // The normal-theory look of the same cycle (or the last one before), for the p-value and
        // the p50 and p99 estimates.
        let decided_cycle = sign.map_or(state.cycles, |(_, at)| at.cycle);
        let look_index = state
            .looks
            .iter()
            .rposition(|l| l.cycle <= decided_cycle)
            .or(state.looks.len().checked_sub(1));
        let look = look_index.map(|j| &state.looks[j]);
        let z = look_index.map(|j| self.bounds_at(state, level, k)[j]);
        let used = sign.map_or(0, |(_, at)| at.look.units);
        let units = Units {
            d: &state.units[..used],
            v: &state.spreads[..used],
        };
        // The estimate the weighted test is centred on: the weighted mean contrast.
        let w = weights(units.v);
        let total: f64 = w.iter().sum();
        let estimate = (!units.d.is_empty() && total > 0.0)
            .then(|| units.d.iter().zip(&w).map(|(d, w)| d * w).sum::<f64>() / total);
        let exact_change = sign.and_then(|(j, _)| {
            let looks: Vec<SignLook> = state.sign_looks[..=j].iter().map(|l| l.look).collect();
            let (lower, upper) = Patterns::new(self.max_cycles).bounds(&units, &looks, level);
            Some(Interval {
                estimate: pct(estimate?),
                lower: pct(lower?),
                upper: pct(upper?),
            })
        });
        // Before the exact test can bound anything, the normal-theory repeated confidence
        // interval of the same look is shown (it decides reverts and the futility stop).
        let metric_change = exact_change.or_else(|| {
            let (l, z) = look.zip(z)?;
            let b = l.bounds(z);
            Some(Interval {
                estimate: pct(l.metric.mean),
                lower: pct(b.metric.0),
                upper: pct(b.metric.1),
            })
            .filter(|i| i.lower.is_finite() && i.upper.is_finite())
        });
        let error_pairs = sign.map_or(&state.error_pairs[..], |(_, at)| {
            &state.error_pairs[..at.error_pairs]
        });
        let error_z = sign
            .and_then(|(j, _)| settings.error_z(state, level, j))
            .or(z)
            .filter(|z| z.is_finite())
            .unwrap_or_else(|| norm_quantile(1.0 - level));
        let (baseline_counts, variant_counts) = error_counts(error_pairs);
        let error_change = error_moments(error_pairs).map(|m| {
            let (lo, hi) = error_interval(&m, baseline_counts, variant_counts, error_z);
            Interval {
                estimate: m.mean * 100.0,
                lower: lo * 100.0,
                upper: hi * 100.0,
            }
        });
        let ratio_excess_pp = error_change.map(|_| {
            mover_difference(
                variant_counts,
                baseline_counts,
                self.max_error_ratio,
                error_z,
            )
            .1 * 100.0
        });
        let p99_change = mean(&state.p99_units).map(pct).or(look.map(|l| pct(l.p99)));
        let cause = match &state.status {
            Status::Stopped(_, cause) => Some(cause.clone()),
            Status::Running => None,
        };
        let facts = reasons::Facts {
            metric: self.metric,
            verdict,
            min_improvement_pct: self.min_improvement_pct,
            max_error_increase_pp: self.max_error_increase * 100.0,
            max_p99_increase_pct: self.max_p99_increase_pct,
            metric_change,
            exact: exact_change.is_some(),
            metric_estimate: estimate.map(pct),
            usable_cycles: used,
            first_possible: crate::signflip::first_possible(level, self.max_cycles),
            error_change,
            max_error_ratio: self.max_error_ratio,
            ratio_excess_pp,
            ratio_floor_pp: self.max_error_increase * RATIO_FLOOR_SHARE * 100.0,
            requests: (baseline_counts.0, variant_counts.0),
            min_requests: MIN_KEEP_REQUESTS,
            disturbed: state.disturbed.clone(),
            p99_change,
            guardrail: state.guardrail.clone(),
            cycles: state.cycles,
            decided_at: sign.map(|(_, at)| at.cycle).or(look.map(|l| l.cycle)),
            max_cycles: self.max_cycles,
            pairs: state.latency_pairs.len(),
            planned_pairs: (self.pairs_per_cycle * self.max_cycles) as usize,
            confidence: 1.0 - level,
            stopped_equivalent: cause == Some(Cause::Equivalent),
            stopped_max: cause == Some(Cause::MaxCycles),
            running: cause.is_none(),
            winner,
        };
        VariantReport {
            variant: state.name.clone(),
            verdict,
            metric: self.metric,
            cycles: state.cycles,
            max_cycles: self.max_cycles,
            pairs: state.latency_pairs.len() as u32,
            baseline: arm_summary(state, Arm::Baseline),
            candidate: arm_summary(state, Arm::Variant),
            metric_change_pct: metric_change,
            p50_change_pct: look.map(|l| pct(l.p50)),
            p99_change_pct: p99_change,
            p_value: look.map(Look::p_value),
            error_rate_change_pp: error_change,
            bound_confidence: 1.0 - level,
            guardrail: state.guardrail.clone(),
            coach_may_keep: verdict == Verdict::Inconclusive
                && state.guardrail.is_none()
                && error_change.is_some_and(|e| e.upper <= self.max_error_increase * 100.0)
                && estimate.is_some_and(|m| m <= 0.0),
            reasons: reasons::explain(&facts),
        }
    }
}

fn arm_summary(state: &VariantState, arm: Arm) -> ArmSummary {
    let i = arm_index(arm);
    let latencies = &state.latencies[i];
    let (requests, errors) = state.counts[i];
    ArmSummary {
        blocks: state.blocks[i],
        requests,
        errors,
        error_rate_pct: (requests > 0).then(|| errors as f64 / requests as f64 * 100.0),
        p50_us: latencies.quantile(0.5),
        p90_us: latencies.quantile(0.9),
        p99_us: latencies.quantile(0.99),
        mean_us: latencies.mean(),
    }
}
