//! Group-sequential boundaries: Lan-DeMets alpha spending over looks at arbitrary information
//! fractions, computed by the recursive numerical integration of Armitage, McPherson and Rowe
//! (Jennison and Turnbull, *Group Sequential Methods*, 2000, chapter 19).
//!
//! A one-sided test looks at a standardised statistic `Z_k` after each cycle. Under the null
//! hypothesis `Z_k = W(t_k) / √t_k` for a Brownian motion `W` and information fractions
//! `0 < t_1 < … ≤ 1`. The boundary `b_k` is chosen so that the probability of first crossing at
//! look `k` equals the alpha spent between `t_{k-1}` and `t_k`; the total over all looks is at most
//! alpha, however many looks are actually taken.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::stats::{norm_pdf, norm_quantile, norm_sf};

/// What a look computed: its raw boundary and the sub-density at it.
type Step = (f64, Arc<Vec<f64>>, Arc<Vec<f64>>);

/// Looks already computed, keyed by the design (alpha, spending) and the information fractions of
/// every look so far: the boundaries are a pure function of these, and `feasibility` runs the
/// judge hundreds of times over the same looks (each costs a numerical integration). Bounded:
/// cleared when it holds [`MEMO_LIMIT`] looks.
static MEMO: Mutex<Option<Memo>> = Mutex::new(None);
/// The memo's table: (design, the looks' information fractions as bits) to the look's result.
type Memo = HashMap<(String, Vec<u64>), Step>;
const MEMO_LIMIT: usize = 4096;

/// The number of grid points of the numerical integration (odd, for Simpson's rule).
const GRID: usize = 161;
/// The lower end of the integration grid; the mass below it (about 1e-12) is ignored.
const GRID_LOW: f64 = -7.0;
/// A boundary beyond this is treated as "cannot cross" (it spends less than about 1e-20).
const NO_CROSSING: f64 = 9.0;

/// How the total alpha is spread over the looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Spending {
    /// Lan-DeMets approximation of O'Brien-Fleming: `α(t) = 2 − 2Φ(z_{1−α/2} / √t)`; spends
    /// almost nothing early and keeps nearly the whole alpha for the last look.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "the designs compared in docs/statistics.md")
    )]
    OBrienFleming,
    /// Lan-DeMets approximation of Pocock: `α(t) = α · ln(1 + (e − 1) t)`; spends evenly, so it
    /// stops early more often at the price of a stricter last look.
    Pocock,
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "the designs compared in docs/statistics.md")
    )]
    /// Hwang, Shih and DeCani's family: `α(t) = α (1 − e^{−γt}) / (1 − e^{−γ})`; γ = 1 is close to
    /// Pocock, γ = −4 to O'Brien-Fleming.
    HwangShihDeCani(f64),
}

impl Spending {
    /// The cumulative alpha spent by information fraction `t` (0 < t ≤ 1).
    pub(crate) fn spent(self, alpha: f64, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        if t <= 0.0 {
            return 0.0;
        }
        match self {
            Spending::OBrienFleming => {
                let z = norm_quantile(1.0 - alpha / 2.0);
                (2.0 * norm_sf(z / t.sqrt())).min(alpha)
            }
            Spending::Pocock => alpha * (1.0 + (std::f64::consts::E - 1.0) * t).ln(),
            Spending::HwangShihDeCani(g) => alpha * (1.0 - (-g * t).exp()) / (1.0 - (-g).exp()),
        }
    }
}

/// Boundaries computed look by look, keeping the sub-density of the statistic on the paths that
/// have not crossed yet, so each new look costs one integration step.
#[derive(Debug, Clone)]
pub(crate) struct Boundaries {
    alpha: f64,
    spending: Spending,
    /// Information fraction of the last look taken.
    last_t: f64,
    /// Alpha spent up to the last look.
    spent: f64,
    /// The z boundaries of the looks taken, in order.
    bounds: Vec<f64>,
    /// Grid points and sub-density of `Z` at the last look (empty before the first look).
    grid: Arc<Vec<f64>>,
    density: Arc<Vec<f64>>,
    /// The information fractions of the looks that spent alpha, for the memo's key.
    fractions: Vec<u64>,
}

impl Boundaries {
    /// A design that spends `alpha` (one-sided) with `spending`.
    pub(crate) fn new(alpha: f64, spending: Spending) -> Self {
        Boundaries {
            alpha,
            spending,
            last_t: 0.0,
            spent: 0.0,
            bounds: Vec::new(),
            grid: Arc::default(),
            density: Arc::default(),
            fractions: Vec::new(),
        }
    }

    /// The boundaries of the looks taken so far.
    pub(crate) fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// Takes a look at information fraction `t` (set 1 at the final look to spend what is left) and
    /// returns its z boundary. A look without new information spends nothing (boundary ∞).
    pub(crate) fn look(&mut self, t: f64) -> f64 {
        let t = t.min(1.0);
        if t <= self.last_t + 1e-12 {
            self.bounds.push(f64::INFINITY);
            return f64::INFINITY;
        }
        let target = self.spending.spent(self.alpha, t);
        self.fractions.push(t.to_bits());
        let key = (
            format!("{:?} {:?}", self.alpha.to_bits(), self.spending),
            self.fractions.clone(),
        );
        let memo = |m: &mut Option<Memo>| m.as_ref().and_then(|m| m.get(&key).cloned());
        let known = memo(&mut MEMO.lock().unwrap_or_else(PoisonError::into_inner));
        let (bound, grid, density) = match known {
            Some(step) => step,
            None => {
                let step = self.integrate(t, target);
                let mut m = MEMO.lock().unwrap_or_else(PoisonError::into_inner);
                let m = m.get_or_insert_with(HashMap::new);
                if m.len() >= MEMO_LIMIT {
                    m.clear();
                }
                m.insert(key, step.clone());
                step
            }
        };
        self.grid = grid;
        self.density = density;
        self.spent = target.max(self.spent);
        self.last_t = t;
        let bound = if bound >= NO_CROSSING {
            f64::INFINITY
        } else {
            bound
        };
        self.bounds.push(bound);
        bound
    }

    /// The raw boundary of a look at `t` that spends up to `target`, and the sub-density of the
    /// paths that have not crossed by then.
    fn integrate(&self, t: f64, target: f64) -> Step {
        let increment = (target - self.spent).max(0.0);
        if self.grid.is_empty() {
            let b = if increment > 0.0 {
                norm_quantile(1.0 - increment).min(NO_CROSSING)
            } else {
                NO_CROSSING
            };
            let grid = linspace(GRID_LOW, b);
            let density = grid.iter().map(|&z| norm_pdf(z)).collect();
            (b, Arc::new(grid), Arc::new(density))
        } else {
            let (s_prev, s_now) = (self.last_t.sqrt(), t.sqrt());
            let step = (t - self.last_t).sqrt();
            let weights = simpson_weights(&self.grid);
            let mass: Vec<f64> = weights
                .iter()
                .zip(self.density.iter())
                .map(|(w, f)| w * f)
                .collect();
            let tail = |b: f64| -> f64 {
                self.grid
                    .iter()
                    .zip(&mass)
                    .map(|(u, m)| m * norm_sf((b * s_now - u * s_prev) / step))
                    .sum()
            };
            let b = if increment <= 0.0 || tail(NO_CROSSING) >= increment {
                NO_CROSSING
            } else {
                // tail() falls as b rises: bisect for tail(b) = increment.
                let (mut lo, mut hi) = (-NO_CROSSING, NO_CROSSING);
                for _ in 0..60 {
                    let mid = 0.5 * (lo + hi);
                    if tail(mid) > increment {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                0.5 * (lo + hi)
            };
            let grid = linspace(GRID_LOW, b);
            let density = grid
                .iter()
                .map(|&z| {
                    let scale = s_now / step;
                    self.grid
                        .iter()
                        .zip(&mass)
                        .map(|(u, m)| m * scale * norm_pdf((z * s_now - u * s_prev) / step))
                        .sum()
                })
                .collect();
            (b, Arc::new(grid), Arc::new(density))
        }
    }
}

/// `GRID` evenly spaced points from `lo` to `hi` (a single point when `hi ≤ lo`).
fn linspace(lo: f64, hi: f64) -> Vec<f64> {
    if hi <= lo {
        return vec![hi];
    }
    let h = (hi - lo) / (GRID - 1) as f64;
    (0..GRID).map(|i| lo + h * i as f64).collect()
}

/// Simpson's-rule weights for an evenly spaced grid with an odd number of points.
fn simpson_weights(grid: &[f64]) -> Vec<f64> {
    let n = grid.len();
    if n < 3 {
        return vec![0.0; n];
    }
    let h = (grid[n - 1] - grid[0]) / (n - 1) as f64;
    (0..n)
        .map(|i| {
            let c = if i == 0 || i == n - 1 {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            c * h / 3.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spending: Spending, alpha: f64, fractions: &[f64], want: &[f64]) {
        let mut b = Boundaries::new(alpha, spending);
        for &t in fractions {
            b.look(t);
        }
        for (k, (got, want)) in b.bounds().iter().zip(want).enumerate() {
            assert!(
                (got - want).abs() < 0.006,
                "{spending:?} α={alpha} look {}: got {got:.4}, want {want:.4}",
                k + 1
            );
        }
        assert_eq!(b.bounds().len(), want.len());
    }

    #[test]
    fn boundaries_match_published_lan_demets_tables() {
        // One-sided α = 0.025, equally spaced looks; values as printed by the R package gsDesign
        // (sfLDOF, sfLDPocock).
        let five = [0.2, 0.4, 0.6, 0.8, 1.0];
        check(
            Spending::OBrienFleming,
            0.025,
            &five,
            &[4.877, 3.357, 2.680, 2.290, 2.031],
        );
        check(Spending::OBrienFleming, 0.025, &[0.5, 1.0], &[2.963, 1.969]);
        check(
            Spending::Pocock,
            0.025,
            &five,
            &[2.438, 2.427, 2.410, 2.397, 2.386],
        );
        // One look is the fixed-sample test.
        check(Spending::Pocock, 0.05, &[1.0], &[1.645]);
        check(Spending::OBrienFleming, 0.025, &[1.0], &[1.960]);
    }

    #[test]
    fn a_look_without_new_information_spends_nothing() {
        let mut b = Boundaries::new(0.05, Spending::Pocock);
        let first = b.look(0.5);
        assert!(b.look(0.5).is_infinite());
        let last = b.look(1.0);
        assert!(first.is_finite() && last.is_finite());
    }

    #[test]
    fn hwang_shih_decani_spends_by_its_formula() {
        // γ = −4: α(0.5) = 0.025 (1 − e²) / (1 − e⁴) = 0.002 980 1.
        let got = Spending::HwangShihDeCani(-4.0).spent(0.025, 0.5);
        assert!((got - 0.002_980_1).abs() < 1e-7, "{got}");
        // γ → 0 is linear spending, α t.
        let got = Spending::HwangShihDeCani(1e-6).spent(0.05, 0.3);
        assert!((got - 0.015).abs() < 1e-6, "{got}");
    }

    #[test]
    fn spending_functions_spend_alpha_by_the_end() {
        for s in [
            Spending::OBrienFleming,
            Spending::Pocock,
            Spending::HwangShihDeCani(-2.0),
        ] {
            assert!((s.spent(0.05, 1.0) - 0.05).abs() < 1e-9, "{s:?}");
            assert_eq!(s.spent(0.05, 0.0), 0.0);
            assert!(s.spent(0.05, 0.3) < s.spent(0.05, 0.6));
        }
    }
}
