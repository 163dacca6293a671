//! What a schedule can decide, before running it: for `smart validate`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smart_core::experiment::{Decision, Guardrails, Schedule};

use crate::analysis::MIN_PAIRS;
use crate::error::DecideError;
use crate::judge::{SPENDING, check_settings, pct};
use crate::sequential::Boundaries;
use crate::stats::{norm_quantile, norm_sf, t_upper_critical};

/// A typical standard deviation of `ln(variant / baseline)` between two adjacent 10-second blocks
/// at 50 requests per second (measured by the simulation example, whose noise is described in
/// docs/statistics.md); pass your own figure when you know your server's noise.
pub const TYPICAL_PAIR_SD: f64 = 0.10;

/// The power at which [`Feasibility::min_detectable_improvement_pct`] is quoted.
const POWER: f64 = 0.8;

/// Whether a schedule can reach a keep at all, and how large a win it can detect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Feasibility {
    /// A keep is possible at all: the schedule gives enough block pairs for the test.
    pub reachable: bool,
    /// Cycles per variant the test can use: `max_cycles`, or fewer when the time box cuts it.
    pub cycles: u32,
    /// Block pairs per variant at the last look.
    pub pairs: u32,
    /// The false-keep rate each variant's test gets (Bonferroni share; Holm may free more).
    pub alpha_per_variant: f64,
    /// The Student-t critical value of the last look, after spending on the earlier looks.
    pub final_critical_t: Option<f64>,
    /// The noise assumed: standard deviation of the log ratio of adjacent blocks' metric.
    pub assumed_pair_sd: f64,
    /// The observed change of the metric, in percent, that would just be kept at the last look.
    pub keep_threshold_change_pct: Option<f64>,
    /// The true improvement, in percent, kept with 80 % probability by the last look under the
    /// assumed noise: smaller wins will mostly come out inconclusive.
    pub min_detectable_improvement_pct: Option<f64>,
    /// Plain-English notes for the user.
    pub notes: Vec<String>,
}

/// Computes what the schedule can decide for `variant_count` variants, assuming block-pair noise
/// `pair_sd` (use [`TYPICAL_PAIR_SD`] when unknown).
///
/// ```
/// use smart_core::experiment::{Decision, Guardrails, Schedule};
/// use smart_decide::{TYPICAL_PAIR_SD, feasibility};
///
/// let f = feasibility(&Schedule::default(), &Decision::default(), &Guardrails::default(), 1, TYPICAL_PAIR_SD)?;
/// assert!(f.reachable);
/// assert!(f.min_detectable_improvement_pct.unwrap() > 10.0);
/// # Ok::<(), smart_decide::DecideError>(())
/// ```
pub fn feasibility(
    schedule: &Schedule,
    decision: &Decision,
    guardrails: &Guardrails,
    variant_count: usize,
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
    let pairs = pairs_per_cycle * cycles;
    let planned = pairs_per_cycle * schedule.max_cycles;
    if (pairs as usize) < MIN_PAIRS {
        let need = (MIN_PAIRS as u32).div_ceil(pairs_per_cycle);
        notes.push(format!(
            "no variant can ever be kept: the test needs at least {MIN_PAIRS} block pairs, that \
             is {need} cycles per variant, and the schedule gives {cycles}"
        ));
        return Ok(Feasibility {
            reachable: false,
            cycles,
            pairs,
            alpha_per_variant: alpha,
            final_critical_t: None,
            assumed_pair_sd: pair_sd,
            keep_threshold_change_pct: None,
            min_detectable_improvement_pct: None,
            notes,
        });
    }
    let mut boundaries = Boundaries::new(alpha, SPENDING);
    let mut z = f64::INFINITY;
    for c in 1..=cycles {
        let n = pairs_per_cycle * c;
        if (n as usize) < MIN_PAIRS {
            continue;
        }
        let fraction = if c == schedule.max_cycles {
            1.0
        } else {
            n as f64 / planned as f64
        };
        z = boundaries.look(fraction);
    }
    let c = t_upper_critical(f64::from(pairs - 1), norm_sf(z));
    let se = pair_sd / f64::from(pairs).sqrt();
    let margin = (1.0 - decision.min_improvement_pct / 100.0).ln();
    let threshold = pct(margin - c * se);
    let mde = -pct(margin - (c + norm_quantile(POWER)) * se);
    notes.push(format!(
        "with block-pair noise {pair_sd:.2} (log scale), a true win of {mde:.1} % or more is kept \
         in 80 % of runs; an observed change of {threshold:+.1} % or better is needed at the last look"
    ));
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
        final_critical_t: Some(c),
        assumed_pair_sd: pair_sd,
        keep_threshold_change_pct: Some(threshold),
        min_detectable_improvement_pct: Some(mde),
        notes,
    })
}
