//! The keep test at one look: the exact sign-flip tests of the win and the error bounds a keep
//! needs.

use crate::analysis::{error_counts, error_interval, error_moments};
use crate::signflip::{Patterns, SignLook, Units, spent};
use crate::stats::{mover_difference, norm_quantile};

use super::{Settings, VariantState};

/// Each arm needs this many requests (in blocks that count) before a variant can be kept: fewer
/// cannot say anything useful about its error rate.
pub(crate) const MIN_KEEP_REQUESTS: u64 = 1000;
/// The relative error limit is not applied to increases smaller than this share of the absolute
/// limit (`max_error_increase_pp`): below it the arms' error rates are too small to compare as a
/// ratio (no count of requests can prove "at most 1.5×" when neither arm has errors).
pub(crate) const RATIO_FLOOR_SHARE: f64 = 0.25;

impl Settings {
    /// Does the keep test at `level` pass at the keep look `j` of `state`? The exact sign-flip
    /// tests of "the win is smaller than required" and of "no win at all" must both have rejected
    /// by then, and at that look each arm must have enough requests and the error rate must be
    /// bounded within both limits.
    pub(super) fn keeps(&self, state: &VariantState, level: f64, j: usize) -> bool {
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
    pub(super) fn errors_allow_keep(&self, state: &VariantState, level: f64, j: usize) -> bool {
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
    pub(super) fn error_z(&self, state: &VariantState, level: f64, j: usize) -> Option<f64> {
        let t = |i: usize| state.sign_looks[i].look.fraction;
        let before = if j == 0 { 0.0 } else { spent(level, t(j - 1)) };
        let share = spent(level, t(j)) - before;
        (share > 0.0).then(|| norm_quantile(1.0 - share))
    }
}
