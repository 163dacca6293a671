//! The stopping rule as a pure state machine: feed it each finished cycle of a variant, it answers
//! continue or stop; at the end it picks at most one variant to keep.

use smart_core::experiment::{Decision, Guardrails, Metric, Schedule};
use smart_core::records::LatencyDistribution;

use crate::analysis::{ErrorPair, LatencyPair, Look, MIN_PAIRS, pairs};
use crate::error::{DecideError, Kind};
use crate::reasons;
use crate::report::{ArmSummary, Interval, Outcome, Step, VariantReport, Verdict};
use crate::sample::{Arm, BlockSample, BlockStats};
use crate::sequential::{Boundaries, Spending};

/// The alpha-spending function of every test (see docs/statistics.md for the choice).
pub(crate) const SPENDING: Spending = Spending::Pocock;
/// A block needs this many requests before its error rate can fire the error guardrail.
const MIN_GUARD_REQUESTS: u64 = 20;

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
/// };
/// for cycle in 0..8 {
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
                blocks: [0, 0],
                latencies: [LatencyDistribution::new(), LatencyDistribution::new()],
                counts: [(0, 0), (0, 0)],
                looks: Vec::new(),
                boundaries: Boundaries::new(per_variant, SPENDING),
            })
            .collect();
        Ok(Judge {
            metric: decision.metric,
            margin: (1.0 - decision.min_improvement_pct / 100.0).ln(),
            min_improvement_pct: decision.min_improvement_pct,
            max_error_increase: decision.max_error_increase_pp / 100.0,
            abort_error_rate: guardrails.abort_error_rate_pct / 100.0,
            max_p99_increase_pct: guardrails.max_p99_increase_pct,
            alpha,
            max_cycles: schedule.max_cycles,
            pairs_per_cycle: if schedule.interleave { 2 } else { 1 },
            variants,
        })
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
        let stats: Vec<BlockStats> = stats.into_iter().map(|(s, _)| s).collect();
        let (lat, err) = pairs(&stats, judge.metric);
        let new_info = !lat.is_empty();
        state.latency_pairs.extend(lat);
        state.error_pairs.extend(err);

        let last_cycle = state.cycles == max_cycles;
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
                state.boundaries.look(fraction);
                if let Some(limit) = judge.max_p99_increase_pct {
                    let change = pct(look.p99);
                    if state.guardrail.is_none() && change > limit {
                        state.guardrail = Some(reasons::p99_guardrail(change, limit));
                    }
                }
                state.looks.push(look);
            }
        }

        let step = if state.guardrail.is_some() {
            Step::Stop(Verdict::Revert)
        } else if let Some((look, &z)) = state.looks.last().zip(state.boundaries.bounds().last())
            && look.cycle == state.cycles
        {
            let b = look.bounds(z);
            let errors = b.errors.unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
            if b.metric.0 > 0.0 || errors.0 > judge.max_error_increase {
                state.status = Status::Stopped(Verdict::Revert, Cause::Harm);
                Step::Stop(Verdict::Revert)
            } else if b.metric.1 <= judge.margin && errors.1 <= judge.max_error_increase {
                state.status = Status::Stopped(Verdict::Keep, Cause::Keep);
                Step::Stop(Verdict::Keep)
            } else if !state.extended
                && judge.margin < 0.0
                && b.metric.0 > judge.margin
                && b.metric.1 < -judge.margin
            {
                state.status = Status::Stopped(Verdict::Inconclusive, Cause::Equivalent);
                Step::Stop(Verdict::Inconclusive)
            } else {
                Step::Continue
            }
        } else {
            Step::Continue
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
                let bounds = self.bounds_at(state, level, k);
                if let Some(look) =
                    (0..state.looks.len()).find(|&j| self.keeps(&state.looks[j], bounds[j]))
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

    /// Does this look, with boundary `z`, confirm the keep hypothesis (metric and errors)?
    fn keeps(&self, look: &Look, z: f64) -> bool {
        let b = look.bounds(z);
        b.metric.1 <= self.margin
            && b.errors
                .is_some_and(|(_, hi)| hi <= self.max_error_increase)
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
        let look_index = decisive.or(state.looks.len().checked_sub(1));
        let look = look_index.map(|j| &state.looks[j]);
        let z = look_index.map(|j| self.bounds_at(state, level, k)[j]);
        let bounds = look.zip(z).map(|(l, z)| l.bounds(z));
        let metric_change = look.zip(bounds).map(|(l, b)| Interval {
            estimate: pct(l.metric.mean),
            lower: pct(b.metric.0),
            upper: pct(b.metric.1),
        });
        let error_change = look.zip(bounds).and_then(|(l, b)| {
            let (m, _, _) = l.errors?;
            let (lo, hi) = b.errors?;
            Some(Interval {
                estimate: m.mean * 100.0,
                lower: lo * 100.0,
                upper: hi * 100.0,
            })
        });
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
            error_change,
            p99_change: look.map(|l| pct(l.p99)),
            guardrail: state.guardrail.clone(),
            cycles: state.cycles,
            decided_at: look.map(|l| l.cycle),
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
            p99_change_pct: look.map(|l| pct(l.p99)),
            p_value: look.map(Look::p_value),
            error_rate_change_pp: error_change,
            bound_confidence: 1.0 - level,
            guardrail: state.guardrail.clone(),
            coach_may_keep: verdict == Verdict::Inconclusive
                && state.guardrail.is_none()
                && error_change.is_some_and(|e| e.upper <= self.max_error_increase * 100.0)
                && metric_change.is_some_and(|m| m.estimate <= 0.0),
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
