//! The stopping rule as a pure state machine: feed it each finished cycle of a variant, it answers
//! continue or stop; at the end it picks at most one variant to keep.

use smart_core::experiment::{Decision, Guardrails, Metric, Schedule};
use smart_core::records::LatencyDistribution;

use crate::analysis::{
    ErrorPair, LatencyPair, Look, MIN_PAIRS, Moments, error_counts, error_interval, error_moments,
    pairs,
};
use crate::error::{DecideError, Kind};
use crate::host::LeftOut;
use crate::reasons;
use crate::report::{ArmSummary, Interval, Outcome, Step, VariantReport, Verdict};
use crate::sample::{Arm, BlockSample, BlockStats};
use crate::sequential::{Boundaries, Spending};
use crate::signflip::{Patterns, Sequential, SignLook, Units, spent, weights};
use crate::stats::{mean, mover_difference, norm_quantile, quantile_sorted, t_upper_critical};

/// The alpha-spending function of the normal-theory looks that only ever stop without a keep (a
/// revert, the futility stop) and of the p99 guardrail (see docs/statistics.md).
pub(crate) const SPENDING: Spending = Spending::Pocock;
/// A block needs this many requests before its error rate can fire the error guardrail.
const MIN_GUARD_REQUESTS: u64 = 20;
/// Each arm needs this many requests (in blocks that count) before a variant can be kept: fewer
/// cannot say anything useful about its error rate.
pub(crate) const MIN_KEEP_REQUESTS: u64 = 1000;
/// The relative error limit is not applied to increases smaller than this share of the absolute
/// limit (`max_error_increase_pp`): below it the arms' error rates are too small to compare as a
/// ratio (no count of requests can prove "at most 1.5×" when neither arm has errors).
pub(crate) const RATIO_FLOOR_SHARE: f64 = 0.25;
/// Answers per arm pooled before one p99 comparison: the p99 of fewer is the top one or two.
pub(crate) const P99_MIN_ANSWERS: usize = 200;
/// p99 comparisons needed before the p99 guardrail may fire on its bound.
const P99_MIN_UNITS: usize = 3;

/// Why a variant's test stopped.
#[derive(Debug, Clone, PartialEq)]
enum Cause {
    /// The keep bound was reached.
    Keep,
    /// Significantly slower, or significantly more errors than allowed.
    Harm,
    /// A guardrail fired.
    Guardrail,
    /// Confidently within ± the threshold: no win of the required size (futility).
    Equivalent,
    /// All cycles used.
    MaxCycles,
}

#[derive(Debug, Clone, PartialEq)]
enum Status {
    Running,
    Stopped(Verdict, Cause),
}

/// Everything the judge knows about one variant.
#[derive(Debug, Clone)]
struct VariantState {
    name: String,
    cycles: u32,
    last_cycle: Option<u32>,
    extended: bool,
    status: Status,
    guardrail: Option<String>,
    latency_pairs: Vec<LatencyPair>,
    error_pairs: Vec<ErrorPair>,
    /// The keep test's units: one contrast of the metric per cycle (the mean log ratio of its
    /// usable pairs), for the cycles whose partner blocks saw similar host pressure.
    units: Vec<f64>,
    /// Each unit's within-cycle spread (see `signflip::weights`).
    spreads: Vec<Option<f64>>,
    /// The keep test's looks, one per cycle that added a unit (and the last cycle).
    sign_looks: Vec<SignLookAt>,
    /// The two sequential sign-flip tests at the variant's own level, "the win is smaller than
    /// required" and "no win at all", advanced at every keep look.
    keep_tests: [Sequential; 2],
    /// Whether the keep test passed at each keep look, at the variant's own level.
    keep_at: Vec<bool>,
    /// The sequential sign-flip test of "it is not slower" (`δ ≤ 0`), on the same units, weights
    /// and spending as the keep tests: rejecting it is the latency revert.
    slower_test: Sequential,
    /// Whether the "it is slower" test rejected at the latest keep look.
    slower: bool,
    /// Cycles left out of the keep test for host interference.
    disturbed: LeftOut,
    /// p99 comparisons: log ratio of the arms' p99 over answers pooled until each arm has
    /// [`P99_MIN_ANSWERS`].
    p99_units: Vec<f64>,
    /// Answers waiting for the next p99 comparison, per arm.
    p99_pending: [Vec<u64>; 2],
    /// Blocks measured per arm (baseline, variant), cut short or not.
    blocks: [u32; 2],
    /// Answered latencies of the blocks that ran to their end, pooled per arm in bounded memory
    /// (the arm summaries' percentiles and means), not kept one by one: a test of many cycles
    /// would otherwise hold every sample it measured.
    latencies: [LatencyDistribution; 2],
    /// Requests and errors of the blocks that ran to their end, per arm.
    counts: [(u64, u64); 2],
    looks: Vec<Look>,
    boundaries: Boundaries,
}

/// One look of the keep test and where the data stood at it.
#[derive(Debug, Clone, Copy)]
struct SignLookAt {
    /// The cycle (count, from 1) after which it was taken.
    cycle: u32,
    look: SignLook,
    /// Error pairs recorded by then.
    error_pairs: usize,
}

/// The statistical judge of one experiment: a state machine over finished ABBA cycles.
///
/// The engine feeds each variant's cycles with [`Judge::record_cycle`] and stops measuring that
/// variant when it answers [`Step::Stop`]; after the last variant, [`Judge::conclude`] gives the
/// reports and the single variant to keep, if any. The simulator drives the same methods.
///
/// ```
/// use smart_core::experiment::{Decision, Guardrails, Schedule};
/// use smart_decide::{Arm, BlockSample, Judge, Step};
///
/// let mut judge = Judge::new(
///     &Decision::default(),
///     &Guardrails::default(),
///     &Schedule::default(),
///     &["gzip-on".to_string()],
/// )?;
/// let block = |arm, cycle, position, ms: u64| BlockSample {
///     arm,
///     cycle,
///     position,
///     latencies_us: (0..500).map(|i| ms * 1000 + (i * 37 + cycle as u64 * 11) % 400).collect(),
///     requests: 500,
///     errors: 0,
///     cut_short: false,
///     quantiles: None,
///     host: None,
/// };
/// for cycle in 0..12 {
///     let blocks = [
///         block(Arm::Baseline, cycle, 0, 20),
///         block(Arm::Variant, cycle, 1, 14),
///         block(Arm::Variant, cycle, 2, 14 + (cycle % 2) as u64),
///         block(Arm::Baseline, cycle, 3, 21),
///     ];
///     if let Step::Stop(verdict) = judge.record_cycle(0, &blocks)? {
///         println!("stopped after cycle {cycle}: {}", verdict.as_str());
///         break;
///     }
/// }
/// let outcome = judge.conclude();
/// assert_eq!(outcome.kept.as_deref(), Some("gzip-on"));
/// # Ok::<(), smart_decide::DecideError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Judge {
    metric: Metric,
    /// ln(1 − min_improvement_pct / 100): the metric's log ratio must be confidently below it.
    margin: f64,
    min_improvement_pct: f64,
    /// max_error_increase_pp as a fraction.
    max_error_increase: f64,
    abort_error_rate: f64,
    max_p99_increase_pct: Option<f64>,
    /// 1 − confidence: the family-wise false-keep rate.
    alpha: f64,
    max_cycles: u32,
    /// Usable pairs one full cycle gives (2 for ABBA, 1 for the seed's AB).
    pairs_per_cycle: u32,
    /// The most the variant's error rate may be, as a multiple of the baseline's.
    max_error_ratio: f64,
    variants: Vec<VariantState>,
}

impl Judge {
    /// A judge for the named variants, with the experiment's decision rule, guardrails and
    /// schedule. Fails on settings no test can honour (confidence outside (0, 1), …).
    pub fn new(
        decision: &Decision,
        guardrails: &Guardrails,
        schedule: &Schedule,
        variant_names: &[String],
    ) -> Result<Self, DecideError> {
        check_settings(decision, guardrails, schedule)?;
        if variant_names.is_empty() {
            return Err(Kind::NoVariants.into());
        }
        Ok(Judge::checked(
            decision,
            guardrails,
            schedule,
            variant_names,
        ))
    }

    /// [`Judge::new`] for settings known to be sound: a validated `Experiment`'s, which
    /// validation checked against the same bounds (so the engine's judge port cannot fail).
    pub(crate) fn checked(
        decision: &Decision,
        guardrails: &Guardrails,
        schedule: &Schedule,
        variant_names: &[String],
    ) -> Judge {
        let alpha = 1.0 - decision.confidence;
        let per_variant = alpha / variant_names.len() as f64;
        let variants = variant_names
            .iter()
            .map(|name| VariantState {
                name: name.clone(),
                cycles: 0,
                last_cycle: None,
                extended: false,
                status: Status::Running,
                guardrail: None,
                latency_pairs: Vec::new(),
                error_pairs: Vec::new(),
                units: Vec::new(),
                spreads: Vec::new(),
                sign_looks: Vec::new(),
                keep_tests: [
                    Sequential::new(Patterns::new(schedule.max_cycles), per_variant),
                    Sequential::new(Patterns::new(schedule.max_cycles), per_variant),
                ],
                keep_at: Vec::new(),
                slower_test: Sequential::new(Patterns::new(schedule.max_cycles), per_variant),
                slower: false,
                disturbed: LeftOut::default(),
                p99_units: Vec::new(),
                p99_pending: [Vec::new(), Vec::new()],
                blocks: [0, 0],
                latencies: [LatencyDistribution::new(), LatencyDistribution::new()],
                counts: [(0, 0), (0, 0)],
                looks: Vec::new(),
                boundaries: Boundaries::new(per_variant, SPENDING),
            })
            .collect();
        Judge {
            metric: decision.metric,
            margin: (1.0 - decision.min_improvement_pct / 100.0).ln(),
            min_improvement_pct: decision.min_improvement_pct,
            max_error_increase: decision.max_error_increase_pp / 100.0,
            abort_error_rate: guardrails.abort_error_rate_pct / 100.0,
            max_p99_increase_pct: guardrails.max_p99_increase_pct,
            alpha,
            max_cycles: schedule.max_cycles,
            pairs_per_cycle: if schedule.interleave { 2 } else { 1 },
            max_error_ratio: decision.max_error_ratio,
            variants,
        }
    }

    /// Feeds one finished cycle of variant `variant` (its index in the names given to
    /// [`Judge::new`]) and answers whether to measure another.
    ///
    /// A cycle whose blocks were cut short may be fed too: those blocks are checked against the
    /// guardrails but left out of the statistics.
    pub fn record_cycle(
        &mut self,
        variant: usize,
        blocks: &[BlockSample],
    ) -> Result<Step, DecideError> {
        let judge = self.settings();
        let max_cycles = self.max_cycles;
        let state = self.state_mut(variant)?;
        let Some(first) = blocks.first() else {
            return Err(Kind::EmptyCycle {
                variant: state.name.clone(),
            }
            .into());
        };
        if let Some(other) = blocks.iter().find(|b| b.cycle != first.cycle) {
            return Err(Kind::MixedCycles {
                variant: state.name.clone(),
                first: first.cycle,
                other: other.cycle,
            }
            .into());
        }
        if let Status::Stopped(verdict, _) = &state.status {
            return Err(Kind::Stopped {
                variant: state.name.clone(),
                verdict: verdict.as_str(),
            }
            .into());
        }
        if state.cycles >= max_cycles {
            return Err(Kind::TooManyCycles {
                variant: state.name.clone(),
                max: max_cycles,
            }
            .into());
        }
        if let Some(last) = state.last_cycle.filter(|&last| first.cycle <= last) {
            return Err(Kind::CycleOrder {
                variant: state.name.clone(),
                got: first.cycle,
                last,
            }
            .into());
        }
        state.last_cycle = Some(first.cycle);
        state.cycles += 1;

        let mut stats: Vec<(BlockStats, &BlockSample)> =
            blocks.iter().map(|b| (BlockStats::of(b), b)).collect();
        stats.sort_by_key(|(s, _)| s.position);
        for (s, raw) in &stats {
            let arm = arm_index(s.arm);
            state.blocks[arm] += 1;
            if s.arm == Arm::Variant
                && state.guardrail.is_none()
                && s.requests >= MIN_GUARD_REQUESTS
                && s.error_rate() > judge.abort_error_rate
            {
                state.guardrail = Some(reasons::error_guardrail(s, judge.abort_error_rate));
            }
            if !s.cut_short {
                state.latencies[arm].extend(raw.latencies_us.iter().copied());
                state.counts[arm].0 += s.requests;
                state.counts[arm].1 += s.errors;
            }
        }
        record_p99(state, &stats, judge.max_p99_increase_pct.is_some());
        let stats: Vec<BlockStats> = stats.into_iter().map(|(s, _)| s).collect();
        let cycle = pairs(&stats, judge.metric);
        let new_info = !cycle.latency.is_empty();
        let ratios: Vec<f64> = cycle.latency.iter().map(|p| p.metric).collect();
        let contrast = mean(&ratios);
        let spread = match ratios[..] {
            [d1, d2] => Some(((d1 - d2) / 2.0).powi(2)),
            _ => None,
        };
        state.latency_pairs.extend(cycle.latency);
        state.error_pairs.extend(cycle.errors);

        let last_cycle = state.cycles == max_cycles;
        // The keep test: one unit per cycle, left out when a block ran on a starved host or
        // partner blocks' host pressure differed.
        let mut new_unit = false;
        if let Some(d) = contrast {
            match cycle.disturbed {
                Some(why) => state.disturbed.record(why),
                None => {
                    state.units.push(d);
                    state.spreads.push(spread);
                    new_unit = true;
                }
            }
        }
        if new_unit || (last_cycle && !state.units.is_empty()) {
            let fraction = if last_cycle {
                1.0
            } else {
                (state.units.len() as f64 / f64::from(max_cycles)).min(1.0)
            };
            state.sign_looks.push(SignLookAt {
                cycle: state.cycles,
                look: SignLook {
                    units: state.units.len(),
                    fraction,
                },
                error_pairs: state.error_pairs.len(),
            });
            let j = state.sign_looks.len() - 1;
            let look = state.sign_looks[j].look;
            let [below_margin, below_zero] = &mut state.keep_tests;
            let shifted =
                |delta0: f64| -> Vec<f64> { state.units.iter().map(|d| d - delta0).collect() };
            let rejected = below_margin.advance(&shifted(judge.margin), &state.spreads, look)
                & below_zero.advance(&shifted(0.0), &state.spreads, look);
            let passed = rejected && judge.errors_allow_keep(state, judge.per_variant, j);
            state.keep_at.push(passed);
            // The mirror image, "δ ≤ 0": the contrasts negated.
            let negated: Vec<f64> = state.units.iter().map(|d| -d).collect();
            state.slower = state.slower_test.advance(&negated, &state.spreads, look);
        }

        if new_info && state.latency_pairs.len() >= MIN_PAIRS {
            let planned = (judge.pairs_per_cycle * max_cycles) as f64;
            let fraction = if last_cycle {
                1.0
            } else {
                (state.latency_pairs.len() as f64 / planned).min(1.0)
            };
            if let Some(look) = Look::new(
                state.cycles,
                fraction,
                &state.latency_pairs,
                &state.error_pairs,
            ) {
                let z = state.boundaries.look(fraction);
                if let (Some(limit), None) = (judge.max_p99_increase_pct, &state.guardrail)
                    && let Some(change) = p99_lower_bound(&state.p99_units, z)
                    && pct(change) > limit
                {
                    state.guardrail = Some(reasons::p99_guardrail(
                        pct(mean(&state.p99_units).unwrap_or(change)),
                        pct(change),
                        limit,
                    ));
                }
                state.looks.push(look);
            }
        }

        let keep_now = state
            .sign_looks
            .last()
            .is_some_and(|l| l.cycle == state.cycles)
            && state.keep_at.last() == Some(&true);
        let step = if state.guardrail.is_some() {
            Step::Stop(Verdict::Revert)
        } else {
            let current = state
                .looks
                .last()
                .zip(state.boundaries.bounds().last())
                .filter(|(look, _)| look.cycle == state.cycles);
            let bounds = current.map(|(look, &z)| look.bounds(z));
            // Slower: the exact sign-flip test, so a burst that hit the variant's blocks (noise
            // the normal model does not describe) reverts a no-op at most α of the time. More
            // errors than allowed: the normal-theory look's error bounds, as for the keep.
            let harm = state.slower
                || bounds.is_some_and(|b| {
                    b.errors
                        .is_some_and(|errors| errors.0 > judge.max_error_increase)
                });
            let equivalent = bounds.is_some_and(|b| {
                !state.extended
                    && judge.margin < 0.0
                    && b.metric.0 > judge.margin
                    && b.metric.1 < -judge.margin
            });
            if harm {
                state.status = Status::Stopped(Verdict::Revert, Cause::Harm);
                Step::Stop(Verdict::Revert)
            } else if keep_now {
                state.status = Status::Stopped(Verdict::Keep, Cause::Keep);
                Step::Stop(Verdict::Keep)
            } else if equivalent {
                state.status = Status::Stopped(Verdict::Inconclusive, Cause::Equivalent);
                Step::Stop(Verdict::Inconclusive)
            } else {
                Step::Continue
            }
        };
        if state.guardrail.is_some() {
            state.status = Status::Stopped(Verdict::Revert, Cause::Guardrail);
        }
        Ok(match step {
            Step::Continue if last_cycle => {
                state.status = Status::Stopped(Verdict::Inconclusive, Cause::MaxCycles);
                Step::Stop(Verdict::Inconclusive)
            }
            step => step,
        })
    }

    /// Records that a guardrail fired outside the judge (the engine's live error-rate window, a
    /// failed health check, a failed soak): the variant is reverted, with `reason` in its report.
    pub fn guardrail_fired(&mut self, variant: usize, reason: &str) -> Result<Step, DecideError> {
        let state = self.state_mut(variant)?;
        state
            .guardrail
            .get_or_insert_with(|| format!("guardrail: {reason}"));
        state.status = Status::Stopped(Verdict::Revert, Cause::Guardrail);
        Ok(Step::Stop(Verdict::Revert))
    }

    /// Continues an inconclusive variant's test with the same statistics and boundaries, up to
    /// `max_cycles` (a coach's `extend`). Early stopping for "no win of the required size" is
    /// turned off for it; keep, revert and the guardrails still stop it.
    pub fn extend(&mut self, variant: usize) -> Result<(), DecideError> {
        let max = self.max_cycles;
        let state = self.state_mut(variant)?;
        match &state.status {
            Status::Stopped(Verdict::Inconclusive, _) if state.cycles < max => {
                state.status = Status::Running;
                state.extended = true;
                Ok(())
            }
            Status::Stopped(Verdict::Inconclusive, _) => Err(Kind::NoCyclesLeft {
                variant: state.name.clone(),
                max,
            }
            .into()),
            Status::Stopped(verdict, _) => Err(Kind::NotInconclusive {
                variant: state.name.clone(),
                verdict: verdict.as_str(),
            }
            .into()),
            Status::Running => Err(Kind::NotInconclusive {
                variant: state.name.clone(),
                verdict: "still running",
            }
            .into()),
        }
    }

    /// Judges all variants with what was fed so far: the family-wise (Holm) decision, at most the
    /// single best variant kept, and a report per variant. A variant whose test is still running
    /// is judged on its looks so far (valid: every look has its own boundary).
    pub fn conclude(&self) -> Outcome {
        let k = self.variants.len();
        let settings = self.settings();
        // Holm's step-down procedure over the variants' group-sequential tests (Maurer & Bretz
        // 2013): each open hypothesis is tested at alpha / (number still open), at every look it
        // had; whatever is confirmed frees its share for the others.
        let mut confirmed: Vec<Option<(usize, f64)>> = vec![None; k];
        let mut open = k;
        while open > 0 {
            let level = self.alpha / open as f64;
            let mut newly = Vec::new();
            for (i, state) in self.variants.iter().enumerate() {
                if confirmed[i].is_some() || !self.may_keep(state) {
                    continue;
                }
                if let Some(look) =
                    (0..state.sign_looks.len()).find(|&j| settings.keeps(state, level, j))
                {
                    newly.push((i, look, level));
                }
            }
            if newly.is_empty() {
                break;
            }
            for (i, look, level) in newly {
                confirmed[i] = Some((look, level));
                open -= 1;
            }
        }
        let best = confirmed
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.map(|_| {
                    (
                        i,
                        self.variants[i].looks.last().map_or(0.0, |l| l.metric.mean),
                    )
                })
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i);
        let final_level = self.alpha / open.max(1) as f64;
        let variants = self
            .variants
            .iter()
            .enumerate()
            .map(|(i, state)| {
                let (look, level) = match confirmed[i] {
                    Some((look, level)) => (Some(look), level),
                    None if !self.may_keep(state) => (None, self.alpha / k as f64),
                    None => (None, final_level),
                };
                let verdict = match (confirmed[i], best) {
                    (Some(_), Some(b)) if b == i => Verdict::Keep,
                    (Some(_), _) => Verdict::Revert,
                    (None, _) => match &state.status {
                        Status::Stopped(Verdict::Revert, _) => Verdict::Revert,
                        _ => Verdict::Inconclusive,
                    },
                };
                let winner = best.filter(|&b| b != i && confirmed[i].is_some()).map(|b| {
                    let w = &self.variants[b];
                    (
                        w.name.as_str(),
                        w.looks.last().map_or(0.0, |l| pct(l.metric.mean)),
                    )
                });
                self.report(state, verdict, look, level, winner)
            })
            .collect::<Vec<_>>();
        Outcome {
            kept: best.map(|b| self.variants[b].name.clone()),
            variants,
        }
    }

    /// A variant can only be kept when no guardrail fired and it was not found harmful.
    fn may_keep(&self, state: &VariantState) -> bool {
        state.guardrail.is_none() && !matches!(state.status, Status::Stopped(_, Cause::Harm))
    }

    /// The z boundaries of a variant's looks when its test is run at `level`.
    fn bounds_at(&self, state: &VariantState, level: f64, k: usize) -> Vec<f64> {
        if (level - self.alpha / k as f64).abs() < 1e-15 {
            return state.boundaries.bounds().to_vec();
        }
        let mut b = Boundaries::new(level, SPENDING);
        state.looks.iter().map(|l| b.look(l.fraction)).collect()
    }

    fn report(
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

    fn settings(&self) -> Settings {
        Settings {
            metric: self.metric,
            margin: self.margin,
            max_error_increase: self.max_error_increase,
            abort_error_rate: self.abort_error_rate,
            max_p99_increase_pct: self.max_p99_increase_pct,
            pairs_per_cycle: self.pairs_per_cycle,
            per_variant: self.alpha / self.variants.len() as f64,
            max_cycles: self.max_cycles,
            max_error_ratio: self.max_error_ratio,
        }
    }

    fn state_mut(&mut self, variant: usize) -> Result<&mut VariantState, DecideError> {
        let count = self.variants.len();
        self.variants.get_mut(variant).ok_or_else(|| {
            Kind::UnknownVariant {
                index: variant,
                count,
            }
            .into()
        })
    }
}

/// The judge's settings copied out, so a variant's state can be borrowed mutably beside them.
#[derive(Debug, Clone, Copy)]
struct Settings {
    metric: Metric,
    margin: f64,
    max_error_increase: f64,
    abort_error_rate: f64,
    max_p99_increase_pct: Option<f64>,
    pairs_per_cycle: u32,
    /// The Bonferroni share of alpha a variant's test runs at while it is measured.
    per_variant: f64,
    max_cycles: u32,
    max_error_ratio: f64,
}

impl Settings {
    /// Does the keep test at `level` pass at the keep look `j` of `state`? The exact sign-flip
    /// tests of "the win is smaller than required" and of "no win at all" must both have rejected
    /// by then, and at that look each arm must have enough requests and the error rate must be
    /// bounded within both limits.
    fn keeps(&self, state: &VariantState, level: f64, j: usize) -> bool {
        if (level - self.per_variant).abs() < 1e-15 {
            return state.keep_at.get(j) == Some(&true);
        }
        let Some(at) = state.sign_looks.get(j) else {
            return false;
        };
        if !self.errors_allow_keep(state, level, j) {
            return false;
        }
        let looks: Vec<SignLook> = state.sign_looks[..=j].iter().map(|l| l.look).collect();
        let patterns = Patterns::new(self.max_cycles);
        let units = Units {
            d: &state.units[..at.look.units],
            v: &state.spreads[..at.look.units],
        };
        patterns.below(&units, &looks, level, self.margin)
            && patterns.below(&units, &looks, level, 0.0)
    }

    /// At keep look `j`, does each arm have enough requests and is the error rate bounded within
    /// both limits (at `level`)?
    fn errors_allow_keep(&self, state: &VariantState, level: f64, j: usize) -> bool {
        let Some(at) = state.sign_looks.get(j) else {
            return false;
        };
        let errors = &state.error_pairs[..at.error_pairs];
        let (baseline, variant) = error_counts(errors);
        if baseline.0 < MIN_KEEP_REQUESTS || variant.0 < MIN_KEEP_REQUESTS {
            return false;
        }
        let Some(z) = self.error_z(state, level, j) else {
            return false;
        };
        let Some(moments) = error_moments(errors) else {
            return false;
        };
        let (_, upper) = error_interval(&moments, baseline, variant, z);
        if upper > self.max_error_increase {
            return false;
        }
        let (_, ratio_excess) = mover_difference(variant, baseline, self.max_error_ratio, z);
        ratio_excess <= self.max_error_increase * RATIO_FLOOR_SHARE
    }

    /// The normal quantile of the error test at keep look `j`: the alpha the keep test's spending
    /// gives that look (a union bound over the looks keeps the error test's level at `level`).
    fn error_z(&self, state: &VariantState, level: f64, j: usize) -> Option<f64> {
        let t = |i: usize| state.sign_looks[i].look.fraction;
        let before = if j == 0 { 0.0 } else { spent(level, t(j - 1)) };
        let share = spent(level, t(j)) - before;
        (share > 0.0).then(|| norm_quantile(1.0 - share))
    }
}

/// Adds a cycle's answers to the p99 comparisons: answers of blocks that ran to their end are
/// pooled per arm until each arm has [`P99_MIN_ANSWERS`], then one comparison is made (so small
/// blocks pool their tails across cycles). Blocks known only by their quantiles compare the
/// cycle's block p99s when every block answered enough requests.
fn record_p99(state: &mut VariantState, stats: &[(BlockStats, &BlockSample)], wanted: bool) {
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
fn p99_lower_bound(units: &[f64], z: f64) -> Option<f64> {
    if units.len() < P99_MIN_UNITS || !z.is_finite() {
        return None;
    }
    let m = Moments::of(units)?;
    let c = t_upper_critical(m.df(), crate::stats::norm_sf(z));
    Some(m.mean - c * m.se)
}

/// Rejects settings no test can honour (validation in smart-core should have caught them first).
pub(crate) fn check_settings(
    decision: &Decision,
    guardrails: &Guardrails,
    schedule: &Schedule,
) -> Result<(), DecideError> {
    let c = decision.confidence;
    if !(c > 0.0 && c < 1.0) {
        return Err(Kind::Confidence(c).into());
    }
    let m = decision.min_improvement_pct;
    if !(0.0..100.0).contains(&m) {
        return Err(Kind::MinImprovement(m).into());
    }
    let e = decision.max_error_increase_pp;
    if !(e >= 0.0 && e.is_finite()) {
        return Err(Kind::MaxErrorIncrease(e).into());
    }
    if let Some(p) = guardrails
        .max_p99_increase_pct
        .filter(|p| p.is_nan() || *p <= 0.0)
    {
        return Err(Kind::P99Limit(p).into());
    }
    if schedule.max_cycles == 0 {
        return Err(Kind::NoCycles.into());
    }
    Ok(())
}

/// A log ratio as a relative change in percent: `(exp(x) − 1) × 100`.
pub(crate) fn pct(log_ratio: f64) -> f64 {
    (log_ratio.exp() - 1.0) * 100.0
}

fn arm_index(arm: Arm) -> usize {
    match arm {
        Arm::Baseline => 0,
        Arm::Variant => 1,
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
