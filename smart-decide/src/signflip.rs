//! Exact randomisation (sign-flip) inference for the randomised ABBA/BAAB design, with group-
//! sequential looks.
//!
//! The engine draws each cycle's order (ABBA or BAAB) by a fair coin. Swapping the order of a
//! cycle swaps which blocks are "baseline" and which are "variant", so it flips the sign of the
//! cycle's contrast `ln(variant) − ln(baseline)` and changes nothing else. Under the sharp null
//! hypothesis "the variant changes the metric by exactly `δ₀` (on the log scale) in every block",
//! the shifted contrasts `x_c = D_c − δ₀` are therefore `s_c·T_c` with fixed `T_c` and independent
//! fair signs `s_c`, whatever the server did: drift, regime switches, heavy tails, a neighbour's
//! burst. Re-drawing the signs gives the exact reference distribution of any statistic; no normal
//! model and no variance estimate is needed.
//!
//! The statistic is the sum of the contrasts (for sign flips it orders patterns exactly as the
//! paired t statistic does, because `Σ x²` does not change under flips). A look after `n` usable
//! cycles rejects "`δ ≥ δ₀`" when the observed sum is among the lowest patterns, with the alpha
//! spent so far: at look `k` the patterns (all `2^n` of them, or a fixed set of pseudo-random
//! ones past [`EXACT_UP_TO`] cycles) that have not crossed at an earlier look are ranked, and the
//! lowest ones up to `α(t_k)` of all patterns cross. Ties are never split, so the crossing share
//! is at most `α(t_k)` and the total false-rejection rate is at most `α` — exactly, not
//! asymptotically. An exact test over `n` cycles cannot reject below `1/2^n`, so no look can keep
//! before `α(t) ≥ 2^−n`.

use std::sync::LazyLock;

/// Up to this many planned cycles every sign pattern is enumerated (16,384 patterns: the default
/// 14 cycles are tested exactly, and enumerating is cheaper than drawing patterns).
pub(crate) const EXACT_UP_TO: u32 = 14;
/// Patterns drawn (deterministically, from a fixed seed) when more cycles are planned.
const MONTE_CARLO_PATTERNS: u64 = 4096;
/// The exponent of the spending function `α(t) = α·t^ρ`: with ρ = 3 a look at half the
/// information may spend an eighth of the alpha, the last look more than a third.
const SPENDING_POWER: i32 = 3;

/// The alpha spent by information fraction `t`: little on early looks, most at the end.
pub(crate) fn spent(alpha: f64, t: f64) -> f64 {
    alpha * t.clamp(0.0, 1.0).powi(SPENDING_POWER)
}

/// One look of the sequential test: how many units (usable cycles) it saw, and its information
/// fraction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SignLook {
    pub(crate) units: usize,
    pub(crate) fraction: f64,
}

/// The sign patterns of a test planned over `planned` units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Patterns {
    planned: u32,
}

impl Patterns {
    pub(crate) fn new(planned: u32) -> Self {
        Patterns { planned }
    }

    fn count(self) -> u64 {
        if self.planned <= EXACT_UP_TO {
            1 << self.planned
        } else {
            MONTE_CARLO_PATTERNS
        }
    }

    /// Whether pattern `p` flips unit `c`. Pattern 0 flips nothing: it is what was observed.
    fn flips(self, p: u64, c: usize) -> bool {
        if self.planned <= EXACT_UP_TO && c < 64 {
            (p >> c) & 1 == 1
        } else if p == 0 {
            false
        } else {
            drawn_flip(p, c)
        }
    }

    /// The first look (index into `looks`) at which the sequential test of "δ ≥ δ₀" rejects at
    /// level `alpha`, for the units' contrasts already shifted by `δ₀` (`x_c = D_c − δ₀`) and
    /// their within-cycle spreads `v` (see [`weights`]). `None` when no look rejects.
    pub(crate) fn first_rejection(
        self,
        x: &[f64],
        v: &[Option<f64>],
        looks: &[SignLook],
        alpha: f64,
    ) -> Option<usize> {
        let mut test = Sequential::new(self, alpha);
        looks.iter().position(|look| test.advance(x, v, *look))
    }

    /// Whether the test of "δ ≥ δ₀" has rejected by look `look` (index), for contrasts `d`.
    pub(crate) fn below(self, u: &Units<'_>, looks: &[SignLook], alpha: f64, delta0: f64) -> bool {
        let x: Vec<f64> = u.d.iter().map(|d| d - delta0).collect();
        self.first_rejection(&x, u.v, looks, alpha).is_some()
    }

    /// Whether the mirror-image test of "δ ≤ δ₀" has rejected by the last of `looks`.
    pub(crate) fn above(self, u: &Units<'_>, looks: &[SignLook], alpha: f64, delta0: f64) -> bool {
        let x: Vec<f64> = u.d.iter().map(|d| delta0 - d).collect();
        self.first_rejection(&x, u.v, looks, alpha).is_some()
    }

    /// The repeated confidence bounds of δ (log scale) by the last of `looks`, by inverting the
    /// sequential tests: the upper bound is the smallest δ₀ whose "δ ≥ δ₀" was rejected, the lower
    /// bound the largest δ₀ whose "δ ≤ δ₀" was. `None` for a side no δ₀ can reach yet (too few
    /// cycles for the exact test at this level).
    pub(crate) fn bounds(
        self,
        d: &Units<'_>,
        looks: &[SignLook],
        alpha: f64,
    ) -> (Option<f64>, Option<f64>) {
        let (Some(lo), Some(hi)) = (
            d.d.iter().copied().reduce(f64::min),
            d.d.iter().copied().reduce(f64::max),
        ) else {
            return (None, None);
        };
        let (lo, hi) = (lo - 1.0, hi + 1.0);
        let upper = self
            .below(d, looks, alpha, hi)
            .then(|| bisect(lo, hi, |delta0| self.below(d, looks, alpha, delta0)));
        let lower = self
            .above(d, looks, alpha, lo)
            .then(|| -bisect(-hi, -lo, |neg| self.above(d, looks, alpha, -neg)));
        (lower, upper)
    }
}

/// Whether drawn pattern `p` (not 0) flips unit `c`: a fixed pseudo-random bit.
fn drawn_flip(p: u64, c: usize) -> bool {
    smart_core::engine::splitmix64(p.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ c as u64) & 1 == 1
}

/// Per drawn pattern, its flips of units 0 to 63 as bits (pattern 0 flips nothing), drawn once
/// per process: hashing every pattern's bit for every unit at every look was most of the time
/// `smart validate` spent on a schedule past [`EXACT_UP_TO`] cycles.
fn drawn_masks() -> &'static [u64] {
    static MASKS: LazyLock<Vec<u64>> = LazyLock::new(|| {
        (0..MONTE_CARLO_PATTERNS)
            .map(|p| {
                if p == 0 {
                    0
                } else {
                    (0..64)
                        .filter(|&c| drawn_flip(p, c))
                        .fold(0, |m, c| m | 1 << c)
                }
            })
            .collect()
    });
    &MASKS
}

/// One sequential sign-flip test, advanced look by look: it keeps every pattern's running state
/// (which crossed at an earlier look), so a new look costs one pass over the patterns.
#[derive(Debug, Clone)]
pub(crate) struct Sequential {
    patterns: Patterns,
    alpha: f64,
    sums: Vec<f64>,
    crossed: Vec<bool>,
    crossed_count: u64,
    open: Vec<f64>,
    rejected: bool,
}

impl Sequential {
    pub(crate) fn new(patterns: Patterns, alpha: f64) -> Self {
        let count = patterns.count() as usize;
        Sequential {
            patterns,
            alpha,
            sums: vec![0.0; count],
            crossed: vec![false; count],
            crossed_count: 0,
            open: Vec::with_capacity(count),
            rejected: false,
        }
    }

    /// Takes the next look over the shifted contrasts `x` and spreads `v` (all units so far) and
    /// answers whether the test has rejected by now.
    pub(crate) fn advance(&mut self, x: &[f64], v: &[Option<f64>], look: SignLook) -> bool {
        if self.rejected {
            return true;
        }
        let count = self.patterns.count();
        let units = look.units.min(x.len());
        let allowed = (spent(self.alpha, look.fraction) * count as f64 + 1e-9).floor() as u64;
        let budget = allowed.saturating_sub(self.crossed_count) as usize;
        // With every pattern enumerated, each sign pattern of the units seen so far stands for
        // 2^(planned − units) equal patterns: a smaller budget cannot take one whole.
        let copies = if self.patterns.planned <= EXACT_UP_TO && units < 64 {
            count >> units.min(self.patterns.planned as usize)
        } else {
            1
        };
        if budget == 0 || (budget as u64) < copies {
            return false;
        }
        let w = weights(&v[..units]);
        let wx: Vec<f64> = x[..units].iter().zip(&w).map(|(x, w)| x * w).collect();
        if self.patterns.planned <= EXACT_UP_TO {
            // Every pattern: double the table once per unit (bit c of p flips unit c).
            self.sums[0] = wx.iter().sum();
            for (c, &term) in wx.iter().enumerate() {
                let half = 1usize << c;
                for p in 0..half {
                    self.sums[p + half] = self.sums[p] - 2.0 * term;
                }
            }
            let filled = 1usize << units;
            for p in filled..self.sums.len() {
                self.sums[p] = self.sums[p & (filled - 1)];
            }
        } else {
            // The drawn patterns' flips of the first 64 units come from a table made once (the
            // same bits `flips` draws). Unit by unit over all patterns, each pattern's sum still
            // adds its terms in unit order from -0.0 (as `Iterator::sum` does), so the sums are
            // the same to the bit, and the loop over patterns vectorises.
            let masks = drawn_masks();
            self.sums.fill(-0.0);
            for (c, &term) in wx.iter().enumerate() {
                if c < 64 {
                    let bits = term.to_bits();
                    for (sum, mask) in self.sums.iter_mut().zip(masks) {
                        // A set sign bit negates the term exactly as `-term` does.
                        *sum += f64::from_bits(bits ^ (((mask >> c) & 1) << 63));
                    }
                } else {
                    for (p, sum) in self.sums.iter_mut().enumerate() {
                        *sum += if self.patterns.flips(p as u64, c) {
                            -term
                        } else {
                            term
                        };
                    }
                }
            }
        }
        self.open.clear();
        self.open.extend(
            self.sums
                .iter()
                .zip(&self.crossed)
                .filter(|(_, c)| !**c)
                .map(|(s, _)| *s),
        );
        // The largest m ≤ budget that does not split a run of ties: the threshold is the
        // m-th lowest open sum, and the (m+1)-th must be above it.
        let mut m = budget.min(self.open.len());
        let threshold = loop {
            if m == 0 {
                break None;
            }
            let (_, &mut nth_value, _) = self.open.select_nth_unstable_by(m - 1, f64::total_cmp);
            let next = self.open.iter().filter(|&&s| s > nth_value + 1e-12).count();
            if self.open.len() - next <= m {
                break Some(nth_value);
            }
            // Ties run past m: step below the tied value.
            m = self.open.iter().filter(|&&s| s < nth_value - 1e-12).count();
        };
        let Some(threshold) = threshold else {
            return false;
        };
        for (s, c) in self.sums.iter().zip(self.crossed.iter_mut()) {
            if !*c && *s <= threshold {
                *c = true;
                self.crossed_count += 1;
            }
        }
        if self.crossed[0] {
            self.rejected = true;
        }
        self.rejected
    }
}

/// The keep test's units: each usable cycle's contrast `d` (the mean log ratio of its pairs) and
/// its within-cycle spread `v` (`(d₁ − d₂)² / 4` for the two pairs of an ABBA cycle; `None` with
/// one pair).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Units<'a> {
    pub(crate) d: &'a [f64],
    pub(crate) v: &'a [Option<f64>],
}

/// How many times the median spread is added to each cycle's own spread in its weight (see
/// [`weights`]). A cycle's spread is a one-degree-of-freedom estimate of its noise, so with equal
/// noise everywhere the raw inverse (`1/(v̄ + v_c)`) weights cycles unequally for nothing: it
/// kept a 20 % win under moderate AR(1) drift 1.5 points less often than equal weights. With 3,
/// an ordinary cycle weighs between 3/4 and 1 of a quiet one, while a cycle whose pairs disagree
/// by a regime switch (`v_c` ten or more times `v̄`) still counts for a quarter or less.
const SPREAD_PRIOR: f64 = 3.0;

/// The weight of each unit in the test statistic: `1 / (k·v̄ + v_c)`, with `v̄` the median
/// spread, `k` = [`SPREAD_PRIOR`] (a missing spread counts as `v̄`). Flipping a cycle's order
/// negates both of its pairs, so their difference — and every weight — is the same under every
/// sign pattern: the weighted sum is as exact as the plain one, while a cycle whose two pairs
/// disagree (a regime switch or a burst inside the cycle) counts for less.
pub(crate) fn weights(v: &[Option<f64>]) -> Vec<f64> {
    let mut known: Vec<f64> = v.iter().flatten().copied().collect();
    known.sort_by(f64::total_cmp);
    let median = known.get(known.len() / 2).copied().unwrap_or(0.0);
    v.iter()
        .map(|vc| {
            let s = SPREAD_PRIOR * median + vc.unwrap_or(median);
            if s > 0.0 { 1.0 / s } else { 1.0 }
        })
        .collect()
}

/// The smallest `x` in `[lo, hi]` with `rejects(x)` true, for `rejects` false below and true above
/// some point (`rejects(hi)` is true), to 1e-4 on the log scale (0.01 %).
fn bisect(mut lo: f64, mut hi: f64, rejects: impl Fn(f64) -> bool) -> f64 {
    while hi - lo > 1e-4 {
        let mid = 0.5 * (lo + hi);
        if rejects(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// The least number of units an exact test needs before it can reject at all at level `alpha`
/// with `planned` units in the design (the first look where `α(t) ≥ 2^−n`); `None` when even the
/// full design cannot.
pub(crate) fn first_possible(alpha: f64, planned: u32) -> Option<u32> {
    (1..=planned).find(|&n| {
        let t = f64::from(n) / f64::from(planned);
        spent(alpha, t) >= 0.5_f64.powi(n as i32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn looks(n: usize, planned: usize) -> Vec<SignLook> {
        (1..=n)
            .map(|u| SignLook {
                units: u,
                fraction: u as f64 / planned as f64,
            })
            .collect()
    }

    #[test]
    fn no_rejection_before_the_exact_test_can_support_one() {
        // Every contrast far below δ₀: the observed pattern is the most extreme one, so the test
        // rejects at the first look whose spent alpha reaches 1/2^n.
        let p = Patterns::new(8);
        let x = vec![-1.0; 8];
        let v = vec![None; 8];
        let first = p.first_rejection(&x, &v, &looks(8, 8), 0.05);
        assert_eq!(first, Some(5), "looks are counted from 0: cycle 6");
        assert_eq!(first_possible(0.05, 8), Some(6));
        // With too few cycles nothing can.
        assert_eq!(
            p.first_rejection(&x[..4], &v[..4], &looks(4, 8), 0.05),
            None
        );
    }

    #[test]
    fn the_false_rejection_rate_is_at_most_alpha_over_every_sign_pattern() {
        // For fixed magnitudes, every one of the 2^8 sign patterns is equally likely under the
        // null: count how many reject at any look.
        let magnitudes = [0.3, 0.05, 0.2, 0.11, 0.7, 0.01, 0.15, 0.4];
        let spreads = [
            Some(0.01),
            None,
            Some(0.2),
            Some(0.0),
            Some(0.05),
            None,
            Some(0.3),
            Some(0.02),
        ];
        let p = Patterns::new(8);
        let all = looks(8, 8);
        let rejected = (0..256u32)
            .filter(|bits| {
                let x: Vec<f64> = magnitudes
                    .iter()
                    .enumerate()
                    .map(|(c, m)| if bits >> c & 1 == 1 { -m } else { *m })
                    .collect();
                p.first_rejection(&x, &spreads, &all, 0.05).is_some()
            })
            .count();
        assert!(rejected as f64 <= 0.05 * 256.0, "{rejected} of 256");
        assert!(rejected > 0, "the test must be able to reject");
    }

    #[test]
    fn bounds_bracket_the_estimate_and_shrink_with_more_cycles() {
        let d = [-0.22, -0.25, -0.18, -0.2, -0.24, -0.21, -0.19, -0.23];
        let v = [Some(0.001); 8];
        let units = |n: usize| Units {
            d: &d[..n],
            v: &v[..n],
        };
        let p = Patterns::new(8);
        let (lo6, hi6) = p.bounds(&units(6), &looks(6, 8), 0.05);
        let (lo8, hi8) = p.bounds(&units(8), &looks(8, 8), 0.05);
        let (lo6, hi6, lo8, hi8) = (lo6.unwrap(), hi6.unwrap(), lo8.unwrap(), hi8.unwrap());
        assert!(lo6 <= -0.25 && hi6 >= -0.18, "{lo6} {hi6}");
        assert!(lo8 < -0.2 && hi8 > -0.2 && hi8 - lo8 <= hi6 - lo6 + 1e-9);
        assert_eq!(p.bounds(&units(3), &looks(3, 8), 0.05), (None, None));
    }

    #[test]
    fn the_drawn_masks_hold_the_bits_each_pattern_draws() {
        let p = Patterns::new(20);
        let masks = drawn_masks();
        assert_eq!(masks.len() as u64, MONTE_CARLO_PATTERNS);
        for (i, mask) in masks.iter().enumerate() {
            for c in 0..64 {
                assert_eq!(
                    (mask >> c) & 1 == 1,
                    p.flips(i as u64, c),
                    "pattern {i}, unit {c}"
                );
            }
        }
    }

    #[test]
    fn monte_carlo_patterns_past_the_exact_limit_keep_the_level() {
        let p = Patterns::new(20);
        let x = vec![-1.0; 20];
        let v = vec![None; 20];
        assert!(p.first_rejection(&x, &v, &looks(20, 20), 0.05).is_some());
        let mixed: Vec<f64> = (0..20)
            .map(|c| if c % 2 == 0 { -1.0 } else { 1.0 })
            .collect();
        assert_eq!(p.first_rejection(&mixed, &v, &looks(20, 20), 0.05), None);
    }
}
