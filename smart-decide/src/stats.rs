//! Small numeric helpers: quantiles, means, and the normal and Student-t quantiles from statrs.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// The `q`-quantile (0 ≤ q ≤ 1) of sorted data, interpolating linearly between order statistics
/// (Hyndman and Fan's type 7, the default of R and NumPy). `None` for empty data.
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// The arithmetic mean; `None` for empty data.
pub(crate) fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// The sample standard deviation (n − 1 in the denominator); `None` below two values.
pub(crate) fn sd(xs: &[f64]) -> Option<f64> {
    let m = mean(xs)?;
    (xs.len() >= 2).then(|| {
        let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
        (ss / (xs.len() - 1) as f64).sqrt()
    })
}

/// The standard normal upper tail 1 − Φ(z), accurate far into the tail.
pub(crate) fn norm_sf(z: f64) -> f64 {
    Normal::standard().sf(z)
}

/// The standard normal quantile Φ⁻¹(p), for 0 < p < 1.
pub(crate) fn norm_quantile(p: f64) -> f64 {
    Normal::standard().inverse_cdf(p)
}

/// The standard normal density φ (hand-written: it runs in the boundary integration's inner loop).
pub(crate) fn norm_pdf(z: f64) -> f64 {
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    INV_SQRT_2PI * (-0.5 * z * z).exp()
}

/// The upper-tail critical value of Student's t: the `t` with P(T_df > t) = `upper`.
pub(crate) fn t_upper_critical(df: f64, upper: f64) -> f64 {
    if upper <= 0.0 {
        return f64::INFINITY;
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => t.inverse_cdf(1.0 - upper),
        Err(_) => f64::INFINITY,
    }
}

/// The two-sided p-value of a t statistic with `df` degrees of freedom.
pub(crate) fn t_two_sided_p(t_stat: f64, df: f64) -> f64 {
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => (2.0 * t.sf(t_stat.abs())).min(1.0),
        Err(_) => 1.0,
    }
}

/// Wilson's score interval for a proportion of `x` in `n` at normal quantile `z`: `(p̂, lower,
/// upper)`; `(0, 0, 1)` when `n` is 0. Unlike the Wald interval it stays sensible at 0 and few
/// events (E. B. Wilson, JASA 22, 1927). Public for the simulations that report their shares
/// with the same interval the judge uses.
pub fn wilson(x: u64, n: u64, z: f64) -> (f64, f64, f64) {
    if n == 0 {
        return (0.0, 0.0, 1.0);
    }
    let (n, p) = (n as f64, x as f64 / n as f64);
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    (p, (centre - half).max(0.0), (centre + half).min(1.0))
}

/// Bounds of `p_v − r·p_b` from each arm's Wilson interval by the MOVER method (Newcombe 1998's
/// hybrid score interval when `r = 1`; Donner and Zou 2012 for linear combinations): each side
/// adds the two arms' distances to their own bounds in quadrature.
pub(crate) fn mover_difference(
    variant: (u64, u64),
    baseline: (u64, u64),
    r: f64,
    z: f64,
) -> (f64, f64) {
    let (pv, lv, uv) = wilson(variant.1, variant.0, z);
    let (pb, lb, ub) = wilson(baseline.1, baseline.0, z);
    let est = pv - r * pb;
    (
        est - ((pv - lv).powi(2) + (r * (ub - pb)).powi(2)).sqrt(),
        est + ((uv - pv).powi(2) + (r * (pb - lb)).powi(2)).sqrt(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_and_newcombe_match_published_values() {
        // Newcombe (1998), example (a): 56/70 against 48/80, 95 % two-sided: 0.0524 to 0.3339.
        let z = 1.959_964;
        let (lo, hi) = mover_difference((70, 56), (80, 48), 1.0, z);
        assert!(
            (lo - 0.0524).abs() < 5e-4 && (hi - 0.3339).abs() < 5e-4,
            "{lo} {hi}"
        );
        // Wilson for 0 of 10: 0 to 0.2775.
        let (_, l, u) = wilson(0, 10, z);
        assert!(l == 0.0 && (u - 0.2775).abs() < 5e-4, "{u}");
    }

    fn close(got: f64, want: f64, tol: f64) {
        assert!((got - want).abs() <= tol, "got {got}, want {want} ± {tol}");
    }

    #[test]
    fn t_critical_values_match_published_tables() {
        // (df, upper tail, t) from any t table, e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2.
        let table = [
            (1.0, 0.025, 12.706),
            (3.0, 0.05, 2.353),
            (5.0, 0.01, 3.365),
            (7.0, 0.005, 3.499),
            (10.0, 0.025, 2.228),
            (15.0, 0.05, 1.753),
            (30.0, 0.001, 3.385),
        ];
        for (df, upper, want) in table {
            close(t_upper_critical(df, upper), want, 0.002);
        }
        assert!(t_upper_critical(5.0, 0.0).is_infinite());
    }

    #[test]
    fn normal_values_match_published_tables() {
        let quantiles = [(0.975, 1.959_964), (0.95, 1.644_854), (0.99, 2.326_348)];
        for (p, z) in quantiles {
            close(norm_quantile(p), z, 1e-5);
            close(norm_sf(z), 1.0 - p, 1e-6);
        }
        close(norm_pdf(0.0), 0.398_942_3, 1e-7);
        close(norm_pdf(1.0), 0.241_970_7, 1e-7);
    }

    #[test]
    fn t_p_values_match_published_tables() {
        // t = 2.228 with 10 df is the two-sided 5 % point; t = 1.753 with 15 df the 10 % point.
        close(t_two_sided_p(2.228, 10.0), 0.05, 2e-4);
        close(t_two_sided_p(-2.228, 10.0), 0.05, 2e-4);
        close(t_two_sided_p(1.753, 15.0), 0.10, 2e-4);
    }

    #[test]
    fn quantiles_interpolate_like_r_type_7() {
        let check = |data: &[f64], q: f64, want: Option<f64>| {
            assert_eq!(quantile_sorted(data, q), want, "q = {q} of {data:?}");
        };
        check(&[], 0.5, None);
        check(&[7.0], 0.99, Some(7.0));
        check(&[1.0, 2.0, 3.0, 4.0], 0.5, Some(2.5));
        check(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.5, Some(3.0));
        check(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.9, Some(4.6));
        check(&[10.0, 20.0], 1.0, Some(20.0));
    }

    #[test]
    fn mean_and_sd_of_known_data() {
        assert_eq!(mean(&[]), None);
        assert_eq!(sd(&[3.0]), None);
        assert_eq!(mean(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]), Some(5.0));
        close(
            sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap(),
            2.138_090,
            1e-6,
        );
    }
}
