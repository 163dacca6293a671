//! What a schedule can decide, before running it: for `smart validate`, `smart run` and
//! `smart calibrate`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smart_core::experiment::{Decision, Guardrails, Schedule};

use crate::analysis::MIN_ANSWERED;
use crate::error::DecideError;
use crate::judge::{MIN_KEEP_REQUESTS, check_settings};
use crate::signflip::{Patterns, SignLook, Units, first_possible};

/// A typical standard deviation of `ln(variant / baseline)` between two adjacent 10-second blocks
/// at 50 requests per second (the median of the simulation example's base noise, see
/// docs/statistics.md); `smart calibrate` measures the figure of your own server.
pub const TYPICAL_PAIR_SD: f64 = 0.10;

/// The power at which [`Feasibility::min_detectable_improvement_pct`] is quoted.
const POWER: f64 = 0.8;
/// Simulated experiments behind each power figure (common random numbers for every effect size,
/// so the power curve is smooth; its standard error is about 3 points).
const POWER_RUNS: usize = 250;
/// Answers per block below which block medians are noisy enough to say so.
const FEW_ANSWERS: f64 = 100.0;

/// Whether a schedule can reach a keep at all, and how large a win it can detect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Feasibility {
    /// A keep is possible at all: the schedule gives enough cycles for the exact test.
    pub reachable: bool,
    /// Cycles per variant the test can use: `max_cycles`, or fewer when the time box cuts it.
    pub cycles: u32,
    /// Block pairs per variant at the last look.
    pub pairs: u32,
    /// The false-keep rate each variant's test gets (Bonferroni share; Holm may free more).
    pub alpha_per_variant: f64,
    /// The first cycle after which the exact test can keep at all (`None`: never).
    pub first_keep_cycle: Option<u32>,
    /// The noise assumed: standard deviation of the log ratio of adjacent blocks' metric.
    pub assumed_pair_sd: f64,
    /// The true improvement, in percent, kept with 80 % probability under the assumed noise:
    /// smaller wins will mostly come out inconclusive.
    pub min_detectable_improvement_pct: Option<f64>,
    /// The probability of keeping a true win of twice `min_improvement_pct` under the assumed noise.
    pub power_at_twice_threshold: Option<f64>,
    /// Plain-English notes for the user.
    pub notes: Vec<String>,
}

/// Computes what the schedule can decide for `variant_count` variants at `rate_per_s` requests
/// per second, assuming block-pair noise `pair_sd` (use [`TYPICAL_PAIR_SD`] when unknown, or the
/// figure `smart calibrate` measured).
///
/// ```
/// use smart_core::experiment::{Decision, Guardrails, Schedule};
/// use smart_decide::{TYPICAL_PAIR_SD, feasibility};
///
/// let f = feasibility(&Schedule::default(), &Decision::default(), &Guardrails::default(), 1, 50.0, TYPICAL_PAIR_SD)?;
/// assert!(f.reachable);
/// assert!(f.min_detectable_improvement_pct.unwrap() > 10.0);
/// # Ok::<(), smart_decide::DecideError>(())
/// ```
pub fn feasibility(
    schedule: &Schedule,
    decision: &Decision,
    guardrails: &Guardrails,
    variant_count: usize,
    rate_per_s: f64,
    pair_sd: f64,
) -> Result<Feasibility, DecideError> {
    check_settings(decision, guardrails, schedule)?;
    let k = variant_count.max(1);
    let alpha = (1.0 - decision.confidence) / k as f64;
    let (blocks_per_cycle, pairs_per_cycle) = if schedule.interleave { (4, 2) } else { (2, 1) };
    let cycle_s = blocks_per_cycle as f64 * (schedule.block_s + schedule.cooldown_s);
    let fit = (schedule.max_duration_s / (k as f64 * cycle_s)).floor();
    let cycles = if fit.is_finite() && fit >= 0.0 {
        (fit as u32).min(schedule.max_cycles)
    } else {
        schedule.max_cycles
    };
    let mut notes = Vec::new();
    if cycles < schedule.max_cycles {
        notes.push(format!(
            "the time box of {:.0} s fits only {cycles} of the {} cycles for {k} variant(s) \
             (about {cycle_s:.0} s per cycle)",
            schedule.max_duration_s, schedule.max_cycles
        ));
    }
    let answers = rate_per_s * schedule.block_s;
    if answers < FEW_ANSWERS {
        let needed = (FEW_ANSWERS / rate_per_s.max(1e-9)).ceil();
        notes.push(format!(
            "{rate_per_s:.0} requests/s for {:.0} s gives about {answers:.0} answers per block{}: \
             block medians that small are noisy; set block_s to {needed:.0} or more (or raise \
             rate_per_s) for at least {FEW_ANSWERS:.0}",
            schedule.block_s,
            if answers < MIN_ANSWERED as f64 {
                format!(", fewer than the {MIN_ANSWERED} a block needs to count at all")
            } else {
                String::new()
            }
        ));
    }
    let pairs = pairs_per_cycle * cycles;
    let first = first_possible(alpha, schedule.max_cycles);
    // Requests each arm gets by the last cycle: two blocks per cycle in ABBA, one in AB.
    let per_arm = rate_per_s * schedule.block_s * f64::from(pairs_per_cycle * cycles);
    let enough_requests = per_arm >= MIN_KEEP_REQUESTS as f64;
    if !enough_requests {
        let block = MIN_KEEP_REQUESTS as f64
            / (rate_per_s.max(1e-9) * f64::from((pairs_per_cycle * cycles).max(1)));
        notes.push(format!(
            "each arm gets about {per_arm:.0} requests by the last cycle, fewer than the \
             {MIN_KEEP_REQUESTS} a keep needs to bound the error rate: set block_s to {:.0} or \
             more, or raise rate_per_s",
            block.ceil()
        ));
    }
    let reachable =
        first.is_some_and(|f| f <= cycles) && answers >= MIN_ANSWERED as f64 && enough_requests;
    if !reachable {
        let need = (1..=1000).find(|&m| first_possible(alpha, m).is_some_and(|f| f <= m));
        notes.push(match first {
            Some(f) if f > cycles => format!(
                "no variant can ever be kept: the exact test can first keep after cycle {f}, and \
                 the time box fits {cycles}; raise max_duration_s"
            ),
            None => format!(
                "no variant can ever be kept: each cycle's order is one coin flip, so {} cycles \
                 cannot give {:.2} % confidence with looks along the way; set max_cycles to at \
                 least {}",
                schedule.max_cycles,
                (1.0 - alpha) * 100.0,
                need.map_or_else(|| "more".to_string(), |n| n.to_string())
            ),
            Some(_) => "no variant can ever be kept: blocks get too few answers or requests (see \
                        above)"
                .to_string(),
        });
        return Ok(Feasibility {
            reachable: false,
            cycles,
            pairs,
            alpha_per_variant: alpha,
            first_keep_cycle: first,
            assumed_pair_sd: pair_sd,
            min_detectable_improvement_pct: None,
            power_at_twice_threshold: None,
            notes,
        });
    }
    let plan = Plan {
        alpha,
        cycles,
        max_cycles: schedule.max_cycles,
        pair_sd,
        interleave: schedule.interleave,
        margin: (1.0 - decision.min_improvement_pct / 100.0).ln(),
    };
    let draws = plan.draws();
    let power = |improvement_pct: f64| plan.power(&draws, improvement_pct);
    let need = decision.min_improvement_pct;
    let twice = (2.0 * need).min(99.0);
    let power_twice = power(twice);
    // Bisect for the improvement kept in 80 % of runs, between the threshold and 99 %.
    let (mut lo, mut hi) = (need, 99.0);
    let mde = (power(hi) >= POWER).then(|| {
        for _ in 0..9 {
            let mid = 0.5 * (lo + hi);
            if power(mid) >= POWER {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    });
    notes.push(format!(
        "with block-pair noise {pair_sd:.3} (log scale), a true win of {} is kept in 80 % of runs, \
         and a {twice:.0} % win in {:.0} %; the exact test can first keep after cycle {} of {}",
        mde.map_or_else(|| "no size".to_string(), |m| format!("{m:.1} % or more")),
        power_twice * 100.0,
        first.unwrap_or(cycles),
        schedule.max_cycles
    ));
    if mde.is_some_and(|m| m > 2.0 * need) || mde.is_none() {
        notes.push(format!(
            "min_improvement_pct = {need} is out of reach for this schedule on this noise: most \
             runs will end inconclusive; use longer blocks, a higher rate or more cycles"
        ));
    }
    if k > 1 {
        notes.push(format!(
            "{k} variants share the false-keep rate of {:.1} %: each test starts at {:.2} %",
            (1.0 - decision.confidence) * 100.0,
            alpha * 100.0
        ));
    }
    Ok(Feasibility {
        reachable: true,
        cycles,
        pairs,
        alpha_per_variant: alpha,
        first_keep_cycle: first,
        assumed_pair_sd: pair_sd,
        min_detectable_improvement_pct: mde,
        power_at_twice_threshold: Some(power_twice),
        notes,
    })
}

/// The keep test as designed, for predicting its power on normal cycle contrasts.
struct Plan {
    alpha: f64,
    cycles: u32,
    max_cycles: u32,
    pair_sd: f64,
    interleave: bool,
    margin: f64,
}

impl Plan {
    /// Standard normal draws for every run and cycle (two per cycle: its two pairs), from a fixed
    /// seed (the answer is a pure function of the inputs).
    fn draws(&self) -> Vec<Vec<(f64, f64)>> {
        let mut state = 0x5eed_u64;
        let mut uniform = move || {
            state = state.wrapping_add(1);
            (smart_core::engine::splitmix64(state) >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..POWER_RUNS)
            .map(|_| {
                (0..self.cycles)
                    .map(|_| {
                        let (u, v) = (uniform().max(1e-300), uniform());
                        let r = (-2.0 * u.ln()).sqrt();
                        let angle = std::f64::consts::TAU * v;
                        (r * angle.cos(), r * angle.sin())
                    })
                    .collect()
            })
            .collect()
    }

    /// The share of runs that keep a true improvement of `improvement_pct`.
    fn power(&self, draws: &[Vec<(f64, f64)>], improvement_pct: f64) -> f64 {
        let delta = (1.0 - improvement_pct / 100.0).ln();
        let looks: Vec<SignLook> = (1..=self.cycles)
            .map(|c| SignLook {
                units: c as usize,
                fraction: if c == self.max_cycles {
                    1.0
                } else {
                    f64::from(c) / f64::from(self.max_cycles)
                },
            })
            .collect();
        let patterns = Patterns::new(self.max_cycles);
        let kept = draws
            .iter()
            .filter(|z| {
                // Each cycle's two pairs; the seed's AB design has one.
                let pairs: Vec<(f64, f64)> = z
                    .iter()
                    .map(|(a, b)| (delta + self.pair_sd * a, delta + self.pair_sd * b))
                    .collect();
                let (d, v): (Vec<f64>, Vec<Option<f64>>) = if self.interleave {
                    pairs
                        .iter()
                        .map(|(a, b)| ((a + b) / 2.0, Some(((a - b) / 2.0).powi(2))))
                        .unzip()
                } else {
                    pairs.iter().map(|(a, _)| (*a, None)).unzip()
                };
                let units = Units { d: &d, v: &v };
                patterns.below(&units, &looks, self.alpha, self.margin)
                    && patterns.below(&units, &looks, self.alpha, 0.0)
            })
            .count();
        kept as f64 / draws.len() as f64
    }
}
