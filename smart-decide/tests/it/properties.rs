//! Properties that hold for any input: checked on random cycles with proptest.

use proptest::prelude::*;
use smart_core::experiment::{Decision, Guardrails, Schedule};
use smart_decide::{Arm, BlockSample, Judge, Step, Verdict};

/// One block whose latencies are `base_us` spread evenly over ±50 %, times `scale`.
fn block(
    arm: Arm,
    cycle: u32,
    position: u32,
    base_us: u64,
    answered: u64,
    scale: u64,
) -> BlockSample {
    BlockSample {
        arm,
        cycle,
        position,
        latencies_us: (0..answered)
            .map(|i| (base_us / 2 + base_us * i / answered.max(1)) * scale)
            .collect(),
        requests: answered + 2,
        errors: 2,
        cut_short: false,
        quantiles: None,
        host: None,
    }
}

/// Cycles for `variants` variants: four block medians per cycle (ABBA order) around 20 ms, the
/// variant blocks scaled by a per-variant effect from −50 % to +30 %.
fn cycles(variants: usize) -> impl Strategy<Value = Vec<Vec<[u64; 4]>>> {
    prop::collection::vec(
        (
            50u64..130,
            prop::collection::vec(prop::array::uniform4(18_000u64..22_000), 1..=8),
        )
            .prop_map(|(effect, cycles)| {
                cycles
                    .into_iter()
                    .map(|[a, b, c, d]| [a, b * effect / 100, c * effect / 100, d])
                    .collect()
            }),
        variants,
    )
}

/// Feeds every variant's cycles until the judge stops it; returns the judge.
fn feed(medians: &[Vec<[u64; 4]>], answered: u64, scale: u64) -> Judge {
    let names: Vec<String> = (0..medians.len()).map(|i| format!("v{i}")).collect();
    let mut judge = Judge::new(
        &Decision::default(),
        &Guardrails::default(),
        &Schedule {
            max_cycles: 8,
            ..Schedule::default()
        },
        &names,
    )
    .expect("default settings are valid");
    let order = [Arm::Baseline, Arm::Variant, Arm::Variant, Arm::Baseline];
    for (v, cycles) in medians.iter().enumerate() {
        for (c, m) in cycles.iter().enumerate() {
            let blocks: Vec<BlockSample> = (0..4)
                .map(|p| block(order[p], c as u32, p as u32, m[p], answered, scale))
                .collect();
            if let Step::Stop(_) = judge.record_cycle(v, &blocks).expect("cycles in order") {
                break;
            }
        }
    }
    judge
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn at_most_one_variant_is_kept(medians in cycles(3)) {
        let outcome = feed(&medians, 200, 1).conclude();
        let keeps: Vec<&str> = outcome
            .variants
            .iter()
            .filter(|r| r.verdict == Verdict::Keep)
            .map(|r| r.variant.as_str())
            .collect();
        prop_assert!(keeps.len() <= 1, "{keeps:?}");
        prop_assert_eq!(keeps.first().copied(), outcome.kept.as_deref());
    }

    #[test]
    fn too_few_answers_are_never_kept(medians in cycles(2)) {
        let outcome = feed(&medians, 20, 1).conclude();
        prop_assert_eq!(outcome.kept, None);
        for r in &outcome.variants {
            prop_assert_ne!(r.verdict, Verdict::Keep);
            prop_assert!(r.reasons[0].contains("too little data"), "{:?}", r.reasons);
        }
    }

    #[test]
    fn the_unit_of_time_does_not_matter(medians in cycles(1), scale in 2u64..10) {
        let a = feed(&medians, 200, 1).conclude();
        let b = feed(&medians, 200, scale).conclude();
        prop_assert_eq!(a.variants[0].verdict, b.variants[0].verdict);
        let (x, y) = (a.variants[0].metric_change_pct, b.variants[0].metric_change_pct);
        prop_assert_eq!(x.is_some(), y.is_some());
        if let (Some(x), Some(y)) = (x, y) {
            prop_assert!((x.estimate - y.estimate).abs() < 1e-6, "{x:?} vs {y:?}");
        }
    }
}
