//! The fleet simulation (`examples/simulate_fleet`) on small seeded worlds, through the real
//! judge: what must hold whatever the noise figures are — no keep of a no-op in a quiet world,
//! host-to-host differences cancelled by the crossover, a large win kept by a 4-host fleet — and
//! the Prometheus interpolation the simulated source reports with.

#[path = "../../examples/simulate_fleet/model.rs"]
mod model;

use model::{DEFAULT_BUCKETS_S, Design, Params, RunResult, histogram_quantile, run};
use smart_decide::Verdict;

const FLEET_4: Design = Design::Fleet { hosts: 4 };

fn runs(design: Design, params: &Params, factor: f64, seeds: u64) -> Vec<RunResult> {
    (0..seeds)
        .map(|s| run(design, params, factor, 1000 + s))
        .collect()
}

fn keeps(results: &[RunResult]) -> usize {
    results.iter().filter(|r| r.kept).count()
}

#[test]
fn a_no_op_is_never_kept_in_a_quiet_world() {
    let quiet = Params::quiet();
    for design in [
        FLEET_4,
        Design::Fleet { hosts: 20 },
        Design::SingleHost { noisy: false },
    ] {
        let results = runs(design, &quiet, 1.0, 25);
        assert_eq!(keeps(&results), 0, "{design:?}: {results:?}");
    }
}

#[test]
fn a_50_percent_win_is_kept_by_a_4_host_fleet_at_the_first_possible_look() {
    let results = runs(FLEET_4, &Params::quiet(), 0.5, 20);
    for r in &results {
        assert!(r.kept, "{r:?}");
        assert_eq!(r.verdict, Verdict::Keep);
        // The exact test cannot keep before cycle 8 of 14 at 95 % (1/2^n against α·t³).
        assert_eq!(r.cycles, 8, "{r:?}");
    }
}

/// Hosts three times apart (σ 1 on the log scale) and unequal traffic: the two groups differ
/// a lot, but each group runs the variant in one period of every cycle, so the difference enters
/// the cycle's two periods with opposite signs. Were the groups not swapped, the no-op would be
/// "kept" whenever the variant's group happened to be the faster one.
#[test]
fn the_crossover_cancels_host_differences() {
    let uneven = Params {
        host_sigma: 1.0,
        rate_sigma: 0.5,
        ..Params::quiet()
    };
    let no_op = runs(FLEET_4, &uneven, 1.0, 30);
    assert_eq!(keeps(&no_op), 0, "{no_op:?}");
    let win = runs(FLEET_4, &uneven, 0.8, 20);
    assert_eq!(keeps(&win), win.len(), "{win:?}");
}

#[test]
fn a_run_is_the_same_for_the_same_seed() {
    let params = Params::realistic();
    for design in [
        Design::Fleet { hosts: 20 },
        Design::SingleHost { noisy: true },
    ] {
        assert_eq!(run(design, &params, 0.9, 7), run(design, &params, 0.9, 7));
    }
}

#[test]
fn histogram_quantiles_interpolate_as_prometheus_does() {
    // Cumulative counts per default bucket (5 ms, 10 ms, 25 ms, 50 ms, …).
    let cumulative = [0, 20, 70, 90, 100, 100, 100, 100, 100, 100, 100];
    let check = |q: f64, expected: f64| {
        let got = histogram_quantile(q, &DEFAULT_BUCKETS_S, &cumulative, 100);
        assert!((got - expected).abs() < 1e-12, "q {q}: {got} != {expected}");
    };
    // Rank 50 falls in (10 ms, 25 ms], 30 of its 50: 10 + 15 × 30/50 ms.
    check(0.5, 0.019);
    check(0.2, 0.01);
    check(0.9, 0.05);
    check(0.95, 0.075);
    // Nothing observed: no quantile.
    assert!(histogram_quantile(0.5, &DEFAULT_BUCKETS_S, &[0; 11], 0).is_nan());
}
