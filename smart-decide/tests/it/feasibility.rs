//! What `smart validate` can print about a schedule before it runs.

use smart_core::experiment::{Decision, Guardrails, Schedule};
use smart_decide::{Noise, TYPICAL_ERROR_RATE, TYPICAL_PAIR_SD, feasibility, keep_probability};

#[test]
fn feasibility_of_schedules() {
    struct Case {
        schedule: Schedule,
        variants: usize,
        reachable: bool,
        cycles: u32,
        pairs: u32,
        note: &'static str,
    }
    let d = Schedule::default();
    let cases = [
        Case {
            schedule: d.clone(),
            variants: 1,
            reachable: true,
            cycles: 14,
            pairs: 28,
            note: "is kept in 80 %",
        },
        Case {
            schedule: d.clone(),
            variants: 3,
            reachable: true,
            cycles: 14,
            pairs: 28,
            note: "3 variants share",
        },
        Case {
            schedule: Schedule {
                max_cycles: 1,
                ..d.clone()
            },
            variants: 1,
            reachable: false,
            cycles: 1,
            pairs: 2,
            note: "set max_cycles to at least",
        },
        Case {
            schedule: Schedule {
                interleave: false,
                max_cycles: 3,
                ..d.clone()
            },
            variants: 1,
            reachable: false,
            cycles: 3,
            pairs: 3,
            note: "set max_cycles to at least",
        },
        Case {
            schedule: Schedule {
                max_duration_s: 600.0,
                ..d.clone()
            },
            variants: 2,
            reachable: false,
            cycles: 5,
            pairs: 10,
            note: "fits only 5 of the 14 cycles",
        },
    ];
    for c in cases {
        let f = feasibility(
            &c.schedule,
            &Decision::default(),
            &Guardrails::default(),
            c.variants,
            50.0,
            Noise::TYPICAL,
        )
        .unwrap();
        assert_eq!(
            (f.reachable, f.cycles, f.pairs),
            (c.reachable, c.cycles, c.pairs),
            "{:?}",
            f
        );
        assert!(f.notes.iter().any(|n| n.contains(c.note)), "{:?}", f.notes);
        assert_eq!(f.min_detectable_improvement_pct.is_some(), c.reachable);
    }
}

#[test]
fn more_variants_or_more_noise_need_a_bigger_win() {
    let mde = |variants: usize, sd: f64| {
        feasibility(
            &Schedule::default(),
            &Decision::default(),
            &Guardrails::default(),
            variants,
            50.0,
            Noise {
                pair_sd: sd,
                error_rate: TYPICAL_ERROR_RATE,
                disturbed_share: 0.0,
            },
        )
        .unwrap()
        .min_detectable_improvement_pct
        .unwrap()
    };
    let one = mde(1, TYPICAL_PAIR_SD);
    assert!(one > 10.0 && one < 25.0, "{one}");
    assert!(mde(3, TYPICAL_PAIR_SD) > one);
    assert!(mde(1, 0.2) > one);
    // With no noise at all, the bar is the threshold itself (to the search's 0.5-point steps).
    let exact = mde(1, 0.0);
    assert!((10.0..10.5).contains(&exact), "{exact}");
    // The Bonferroni share is quoted.
    let f = feasibility(
        &Schedule::default(),
        &Decision::default(),
        &Guardrails::default(),
        4,
        50.0,
        Noise::TYPICAL,
    )
    .unwrap();
    assert!((f.alpha_per_variant - 0.0125).abs() < 1e-12);
    assert!(f.first_keep_cycle.unwrap() > 6);
}

#[test]
fn cycles_left_out_for_host_pressure_lower_the_power() {
    // The demo's short schedule: with a third of the cycles left out for a neighbour's bursts,
    // the exact test often cannot reach a keep, and the prediction must say so.
    let demo = Schedule {
        cooldown_s: 0.5,
        block_s: 2.0,
        max_cycles: 8,
        ..Schedule::default()
    };
    let power = |disturbed_share: f64| {
        keep_probability(
            &demo,
            &Decision::default(),
            &Guardrails::default(),
            1,
            100.0,
            Noise {
                disturbed_share,
                ..Noise::TYPICAL
            },
            20.0,
        )
        .unwrap()
    };
    let (calm, busy, always) = (power(0.0), power(0.35), power(1.0));
    assert!(busy < calm - 0.1, "calm {calm}, busy {busy}");
    assert_eq!(always, 0.0, "every cycle left out: nothing can be kept");
    // The note says what was assumed.
    let f = feasibility(
        &demo,
        &Decision::default(),
        &Guardrails::default(),
        1,
        100.0,
        Noise {
            disturbed_share: 0.35,
            ..Noise::TYPICAL
        },
    )
    .unwrap();
    assert!(
        f.notes
            .iter()
            .any(|n| n.contains("35 % of cycles left out for host pressure")),
        "{:?}",
        f.notes
    );
}
