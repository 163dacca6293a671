//! The stopping rule as a pure state machine: feed it each finished cycle of a variant, it answers
//! continue or stop; at the end it picks at most one variant to keep.

mod cycle;
mod guardrails;
mod keep;
mod variant_report;

use smart_core::experiment::{Decision, Guardrails, Metric, Schedule};
use smart_core::records::LatencyDistribution;

use crate::analysis::{ErrorPair, LatencyPair, Look};
use crate::error::{DecideError, Kind};
use crate::host::LeftOut;
use crate::report::{Outcome, Step, Verdict};
use crate::sample::Arm;
use crate::sequential::{Boundaries, Spending};
use crate::signflip::{Patterns, Sequential, SignLook};

pub(crate) use keep::MIN_KEEP_REQUESTS;

/// The alpha-spending function of the normal-theory looks that only ever stop without a keep (a
/// revert, the futility stop) and of the p99 guardrail (see docs/statistics.md).
pub(crate) const SPENDING: Spending = Spending::Pocock;

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
    /// schedule. Fails on settings no test can honour (no variants, no cycles, a p99 limit of 0).
    pub fn new(
        decision: &Decision,
        guardrails: &Guardrails,
        schedule: &Schedule,
        variant_names: &[String],
    ) -> Result<Self, DecideError> {
        check_settings(guardrails, schedule)?;
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
        let alpha = 1.0 - decision.confidence.get();
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
            margin: (1.0 - decision.min_improvement_pct.get() / 100.0).ln(),
            min_improvement_pct: decision.min_improvement_pct.get(),
            max_error_increase: decision.max_error_increase_pp.get() / 100.0,
            abort_error_rate: guardrails.abort_error_rate_pct.get() / 100.0,
            max_p99_increase_pct: guardrails.max_p99_increase_pct,
            alpha,
            max_cycles: schedule.max_cycles,
            pairs_per_cycle: if schedule.interleave { 2 } else { 1 },
            max_error_ratio: decision.max_error_ratio,
            variants,
        }
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

/// Rejects settings no test can honour that the types do not rule out already (the confidence
/// and the percentages are `Confidence`, `Improvement` and `Percent`, in range by construction).
pub(crate) fn check_settings(
    guardrails: &Guardrails,
    schedule: &Schedule,
) -> Result<(), DecideError> {
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
