//! The stopping rule on hand-built cases: each feeds made-up cycles and checks the verdict.

use smart_core::experiment::{Confidence, Decision, Guardrails, Improvement, Percent, Schedule};
use smart_decide::{Arm, BlockSample, Judge, Outcome, Step, Verdict};

const REQUESTS: u64 = 500;

/// How one arm behaves in a hand-built block.
#[derive(Debug, Clone, Copy)]
struct Shape {
    median_ms: f64,
    errors: u64,
    /// Factor applied to the slowest 5 % of requests (1 = no tail).
    tail: f64,
    answered: u64,
}

fn arm(median_ms: f64) -> Shape {
    Shape {
        median_ms,
        errors: 0,
        tail: 1.0,
        answered: REQUESTS,
    }
}

/// A small deterministic wobble (±1.5 %) so the block pairs are not all identical.
fn jitter(cycle: u32, position: u32) -> f64 {
    1.0 + 0.03 * (((cycle * 4 + position) * 37 % 11) as f64 / 10.0 - 0.5)
}

fn block(kind: Arm, a: Shape, cycle: u32, position: u32) -> BlockSample {
    let median = a.median_ms * 1000.0 * jitter(cycle, position);
    let n = a.answered;
    let latencies_us = (0..n)
        .map(|i| {
            // Evenly spread from 0.5× to 1.5× the median; the top 5 % stretched by the tail.
            let x = median * (0.5 + i as f64 / n as f64);
            let x = if i >= n * 95 / 100 { x * a.tail } else { x };
            x as u64
        })
        .collect();
    BlockSample {
        arm: kind,
        cycle,
        position,
        latencies_us,
        requests: n.max(a.errors + n),
        errors: a.errors,
        cut_short: false,
        quantiles: None,
        host: None,
    }
}

/// One ABBA (even cycles) or BAAB (odd cycles) cycle.
fn cycle(c: u32, base: Shape, var: Shape) -> Vec<BlockSample> {
    let order = if c.is_multiple_of(2) {
        [Arm::Baseline, Arm::Variant, Arm::Variant, Arm::Baseline]
    } else {
        [Arm::Variant, Arm::Baseline, Arm::Baseline, Arm::Variant]
    };
    order
        .iter()
        .enumerate()
        .map(|(p, &kind)| {
            let a = if kind == Arm::Baseline { base } else { var };
            block(kind, a, c, p as u32)
        })
        .collect()
}

/// The schedule of these tests: the default with 8 cycles, where the exact test can first keep
/// after cycle 6 at 95 % (after cycle 7 at a Bonferroni share of 2.5 %).
fn schedule() -> Schedule {
    Schedule {
        max_cycles: 8,
        ..Schedule::default()
    }
}

fn judge(variants: &[&str]) -> Judge {
    let names: Vec<String> = variants.iter().map(|s| s.to_string()).collect();
    Judge::new(
        &Decision::default(),
        &Guardrails::default(),
        &schedule(),
        &names,
    )
    .expect("default settings are valid")
}

/// Feeds cycles of `var` against `base` until the judge stops; returns the verdict and the
/// number of cycles fed.
fn run(judge: &mut Judge, variant: usize, base: Shape, var: Shape) -> (Verdict, u32) {
    for c in 0..schedule().max_cycles {
        if let Step::Stop(v) = judge.record_cycle(variant, &cycle(c, base, var)).unwrap() {
            return (v, c + 1);
        }
    }
    panic!("the judge never stopped within max_cycles");
}

fn reasons(outcome: &Outcome, i: usize) -> String {
    outcome.variants[i].reasons.join(" | ")
}

/// One variant against a 20 ms baseline: the step verdict, the cycles used, the final verdict
/// and a phrase its reasons must contain.
fn check(
    var: Shape,
    want_step: Verdict,
    want_cycles: std::ops::RangeInclusive<u32>,
    want: Verdict,
    phrase: &str,
) {
    let mut j = judge(&["v"]);
    let (step, cycles) = run(&mut j, 0, arm(20.0), var);
    assert_eq!(step, want_step, "{var:?}");
    assert!(
        want_cycles.contains(&cycles),
        "{var:?}: stopped after {cycles} cycles"
    );
    let outcome = j.conclude();
    let r = &outcome.variants[0];
    assert_eq!(r.verdict, want, "{var:?}: {}", reasons(&outcome, 0));
    assert_eq!(outcome.kept.is_some(), want == Verdict::Keep);
    assert!(
        reasons(&outcome, 0).contains(phrase),
        "{var:?}: {}",
        reasons(&outcome, 0)
    );
    assert_eq!(r.cycles, cycles);
}

#[test]
fn verdicts_on_hand_built_cases() {
    // A clear 30 % win is kept at the first look the exact test allows (cycle 6 of 8: every
    // cycle's order is one coin flip, so 6 cycles give 1 in 64).
    check(
        arm(14.0),
        Verdict::Keep,
        6..=6,
        Verdict::Keep,
        "meeting the required 10 %",
    );
    // A clear 30 % loss is reverted, by the exact test's mirror image: at the same first look a
    // keep could have been made.
    check(
        arm(26.0),
        Verdict::Revert,
        6..=6,
        Verdict::Revert,
        "significantly slower",
    );
    // A 3 % win is confidently below the threshold: stopped early, inconclusive.
    check(
        arm(19.4),
        Verdict::Inconclusive,
        2..=7,
        Verdict::Inconclusive,
        "no win of the required size",
    );
    // A 30 % win with 6 % errors instead of none is not kept: the error bound says too many.
    let errors = Shape {
        errors: 32,
        ..arm(14.0)
    };
    check(
        errors,
        Verdict::Revert,
        2..=8,
        Verdict::Revert,
        "more than the allowed +2.0 pp",
    );
    // 30 % errors in a variant block fire the error guardrail at once.
    let broken = Shape {
        errors: 215,
        ..arm(14.0)
    };
    check(
        broken,
        Verdict::Revert,
        1..=1,
        Verdict::Revert,
        "above the 20.0 % limit",
    );
    // A faster median with a p99 far above the baseline's fires the p99 guardrail.
    let tail = Shape {
        tail: 3.0,
        ..arm(17.0)
    };
    check(
        tail,
        Verdict::Revert,
        3..=5,
        Verdict::Revert,
        "above the +50 % limit",
    );
    // A target that answered almost nothing is inconclusive after all cycles, never kept.
    let silent = Shape {
        answered: 5,
        ..arm(10.0)
    };
    let mut j = judge(&["v"]);
    let (step, cycles) = run(
        &mut j,
        0,
        Shape {
            answered: 5,
            ..arm(20.0)
        },
        silent,
    );
    assert_eq!((step, cycles), (Verdict::Inconclusive, 8));
    let outcome = j.conclude();
    assert_eq!(outcome.variants[0].verdict, Verdict::Inconclusive);
    assert!(
        reasons(&outcome, 0).contains("too little data"),
        "{}",
        reasons(&outcome, 0)
    );
    assert_eq!(outcome.variants[0].metric_change_pct, None);
}

#[test]
fn blocks_cut_short_do_not_count() {
    let mut j = judge(&["v"]);
    for c in 0..8 {
        let mut blocks = cycle(c, arm(20.0), arm(10.0));
        for b in &mut blocks {
            b.cut_short = true;
        }
        let step = j.record_cycle(0, &blocks).unwrap();
        assert_eq!(step == Step::Continue, c < 7, "cycle {c}: {step:?}");
    }
    let outcome = j.conclude();
    assert_eq!(outcome.kept, None);
    assert_eq!(outcome.variants[0].pairs, 0);
    assert!(reasons(&outcome, 0).contains("too little data"));
}

#[test]
fn an_outside_guardrail_reverts_even_a_keep() {
    let mut j = judge(&["v"]);
    assert_eq!(run(&mut j, 0, arm(20.0), arm(14.0)).0, Verdict::Keep);
    assert_eq!(
        j.guardrail_fired(0, "the soak saw 25 % errors").unwrap(),
        Step::Stop(Verdict::Revert)
    );
    let outcome = j.conclude();
    assert_eq!(outcome.kept, None);
    assert_eq!(outcome.variants[0].verdict, Verdict::Revert);
    assert!(reasons(&outcome, 0).contains("the soak saw 25 % errors"));
}

#[test]
fn extend_continues_the_same_test_to_max_cycles() {
    let mut j = judge(&["v"]);
    let (step, stopped_at) = run(&mut j, 0, arm(20.0), arm(19.4));
    assert_eq!(step, Verdict::Inconclusive);
    assert!(stopped_at < 8);
    // Feeding more without extend is refused; extend reopens it without resetting anything.
    assert!(
        j.record_cycle(0, &cycle(stopped_at, arm(20.0), arm(19.4)))
            .is_err()
    );
    j.extend(0).unwrap();
    for c in stopped_at..8 {
        let step = j.record_cycle(0, &cycle(c, arm(20.0), arm(19.4))).unwrap();
        let want = if c < 7 {
            Step::Continue
        } else {
            Step::Stop(Verdict::Inconclusive)
        };
        assert_eq!(step, want, "cycle {c}");
    }
    let outcome = j.conclude();
    assert_eq!(
        outcome.variants[0].pairs, 16,
        "statistics kept over the extension"
    );
    assert_eq!(outcome.variants[0].cycles, 8);
    assert!(reasons(&outcome, 0).contains("all 8 cycles used"));
    // No cycles are left to extend into.
    let err = j.extend(0).unwrap_err().to_string();
    assert!(err.contains("all 8 cycles"), "{err}");
}

#[test]
fn extend_after_a_look_that_crosses_keeps() {
    // A win that is stopped as inconclusive can still be kept when the extension brings it over.
    let mut j = judge(&["v"]);
    let (step, at) = run(&mut j, 0, arm(20.0), arm(19.4));
    assert_eq!(step, Verdict::Inconclusive);
    j.extend(0).unwrap();
    let mut last = Step::Continue;
    for c in at..8 {
        last = j.record_cycle(0, &cycle(c, arm(20.0), arm(12.0))).unwrap();
        if last != Step::Continue {
            break;
        }
    }
    assert_eq!(last, Step::Stop(Verdict::Keep));
}

#[test]
fn only_an_inconclusive_test_can_be_extended() {
    let mut j = judge(&["v"]);
    let err = j.extend(0).unwrap_err().to_string();
    assert!(err.contains("still running"), "{err}");
    run(&mut j, 0, arm(20.0), arm(14.0));
    let err = j.extend(0).unwrap_err().to_string();
    assert!(err.contains("this one is keep"), "{err}");
}

#[test]
fn with_several_variants_only_the_best_is_kept() {
    let mut j = judge(&["gzip-1", "gzip-6", "no-op"]);
    assert_eq!(run(&mut j, 0, arm(20.0), arm(15.0)).0, Verdict::Keep);
    assert_eq!(run(&mut j, 1, arm(20.0), arm(12.0)).0, Verdict::Keep);
    assert_ne!(run(&mut j, 2, arm(20.0), arm(20.0)).0, Verdict::Keep);
    let outcome = j.conclude();
    assert_eq!(outcome.kept.as_deref(), Some("gzip-6"));
    let verdicts: Vec<Verdict> = outcome.variants.iter().map(|r| r.verdict).collect();
    assert_eq!(
        verdicts,
        [Verdict::Revert, Verdict::Keep, Verdict::Inconclusive]
    );
    assert!(
        reasons(&outcome, 0).contains("gzip-6 was faster"),
        "{}",
        reasons(&outcome, 0)
    );
    // The wins were confirmed at Holm's first level, 1 − 0.05 / 3; the last open hypothesis is
    // then tested at the whole 5 %.
    assert!((outcome.variants[1].bound_confidence - (1.0 - 0.05 / 3.0)).abs() < 1e-9);
    assert!((outcome.variants[2].bound_confidence - 0.95).abs() < 1e-9);
}

#[test]
fn holm_frees_alpha_once_a_variant_is_confirmed() {
    // "b" wins by 18 %, measured for 6 cycles: at its Bonferroni share (2.5 %) the exact test
    // cannot keep before cycle 7, at the whole 5 % it can after cycle 6.
    let mut j = judge(&["a", "b"]);
    for c in 0..6 {
        let step = j
            .record_cycle(1, &exact_cycle(c, -0.2 + 0.15, -0.2 - 0.15))
            .unwrap();
        assert_eq!(step, Step::Continue, "cycle {c}");
    }
    let alone = j.conclude();
    assert_eq!(
        alone.variants[1].verdict,
        Verdict::Inconclusive,
        "{}",
        reasons(&alone, 1)
    );
    // Once "a" (a clean 15 % win) is confirmed, Holm tests "b" at the whole 5 %: it passes, and
    // as the larger win it is the one kept.
    assert_eq!(run(&mut j, 0, arm(20.0), arm(17.0)).0, Verdict::Keep);
    let both = j.conclude();
    assert_eq!(both.kept.as_deref(), Some("b"), "{}", reasons(&both, 1));
    assert!((both.variants[1].bound_confidence - 0.95).abs() < 1e-9);
    assert!((both.variants[0].bound_confidence - 0.975).abs() < 1e-9);
    assert_eq!(both.variants[0].verdict, Verdict::Revert);
    assert!(
        reasons(&both, 0).contains("b was faster"),
        "{}",
        reasons(&both, 0)
    );
}

#[test]
fn calls_out_of_order_are_refused() {
    let mut j = judge(&["v"]);
    let check = |r: Result<Step, smart_decide::DecideError>, phrase: &str| {
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains(phrase), "{msg}");
    };
    check(
        j.record_cycle(3, &cycle(0, arm(20.0), arm(20.0))),
        "out of range",
    );
    check(j.record_cycle(0, &[]), "at least one block");
    let mut mixed = cycle(0, arm(20.0), arm(20.0));
    mixed[3].cycle = 1;
    check(j.record_cycle(0, &mixed), "different cycle indexes");
    j.record_cycle(0, &cycle(1, arm(20.0), arm(20.0))).unwrap();
    check(
        j.record_cycle(0, &cycle(1, arm(20.0), arm(20.0))),
        "came after cycle 1",
    );
}

#[test]
fn settings_no_test_can_honour_are_refused() {
    let names = ["v".to_string()];
    let g = Guardrails::default();
    let s = Schedule::default();
    let check = |d: Decision, g: &Guardrails, s: &Schedule, names: &[String], phrase: &str| {
        let msg = Judge::new(&d, g, s, names).unwrap_err().to_string();
        assert!(msg.contains(phrase), "{msg}");
    };
    // Out-of-range confidences and percentages cannot reach the judge: their types refuse them.
    assert!(Confidence::try_from(1.0).is_err());
    assert!(Improvement::try_from(100.0).is_err());
    assert!(Percent::try_from(-1.0).is_err());
    let no_p99 = Guardrails {
        max_p99_increase_pct: Some(0.0),
        ..Guardrails::default()
    };
    check(
        Decision::default(),
        &no_p99,
        &s,
        &names,
        "max_p99_increase_pct",
    );
    let no_cycles = Schedule {
        max_cycles: 0,
        ..Schedule::default()
    };
    check(Decision::default(), &g, &no_cycles, &names, "max_cycles");
    check(Decision::default(), &g, &s, &[], "no variants");
}

#[test]
fn reports_serialize_with_the_documented_names() {
    let mut j = judge(&["v"]);
    run(&mut j, 0, arm(20.0), arm(14.0));
    let json = serde_json::to_value(j.conclude()).unwrap();
    let r = &json["variants"][0];
    assert_eq!(json["kept"], "v");
    assert_eq!(r["verdict"], "keep");
    assert_eq!(r["metric"], "p50");
    // Sign convention: (variant − baseline) / baseline × 100, negative is faster.
    let change = r["metric_change_pct"]["estimate"].as_f64().unwrap();
    assert!((-31.0..-29.0).contains(&change), "{change}");
    assert!(r["p50_change_pct"].as_f64().unwrap() < 0.0);
    for key in [
        "p_value",
        "error_rate_change_pp",
        "baseline",
        "candidate",
        "reasons",
        "pairs",
    ] {
        assert!(!r[key].is_null(), "{key} missing in {r}");
    }
    let step = serde_json::to_value(Step::Stop(Verdict::Revert)).unwrap();
    assert_eq!(
        step,
        serde_json::json!({"step": "stop", "verdict": "revert"})
    );
}

/// A cycle whose two block pairs have exactly the log ratios `d1` and `d2` (ABBA, no wobble).
fn exact_cycle(c: u32, d1: f64, d2: f64) -> Vec<BlockSample> {
    let at = |kind, position, median_ms: f64| {
        let mut b = block(kind, arm(median_ms), c, position);
        let scale = median_ms * 1000.0 / b.latencies_us[b.latencies_us.len() / 2] as f64;
        for x in &mut b.latencies_us {
            *x = (*x as f64 * scale).round() as u64;
        }
        b
    };
    vec![
        at(Arm::Baseline, 0, 20.0),
        at(Arm::Variant, 1, 20.0 * d1.exp()),
        at(Arm::Variant, 2, 20.0 * d2.exp()),
        at(Arm::Baseline, 3, 20.0),
    ]
}

#[test]
fn a_coach_may_keep_only_a_harmless_inconclusive_variant() {
    let coach = |var: Shape| {
        let mut j = judge(&["v"]);
        run(&mut j, 0, arm(20.0), var);
        let r = j.conclude().variants.remove(0);
        (r.verdict, r.coach_may_keep)
    };
    // A small win (−3 %) is inconclusive but harmless.
    assert_eq!(coach(arm(19.4)), (Verdict::Inconclusive, true));
    // A noisy small loss (+2 %, cycles ±15 % around it) is inconclusive too, but a regression.
    let mut j = judge(&["v"]);
    for c in 0..8 {
        let d = 0.02 + if c % 2 == 0 { 0.15 } else { -0.15 };
        j.record_cycle(0, &exact_cycle(c, d, d)).unwrap();
    }
    let r = j.conclude().variants.remove(0);
    assert_eq!(
        (r.verdict, r.coach_may_keep),
        (Verdict::Inconclusive, false)
    );
    // Too little data: no bound on the errors, so no.
    assert!(
        !coach(Shape {
            answered: 5,
            ..arm(19.0)
        })
        .1
    );
    // Keep and revert are never the coach's to decide.
    assert_eq!(coach(arm(14.0)), (Verdict::Keep, false));
    assert_eq!(coach(arm(26.0)), (Verdict::Revert, false));
}

#[test]
fn the_published_schema_names_every_field_of_a_real_report() {
    let mut j = judge(&["v"]);
    run(&mut j, 0, arm(20.0), arm(14.0));
    let report = serde_json::to_value(j.conclude()).unwrap();
    let schema = serde_json::to_value(schemars::schema_for!(Outcome)).unwrap();
    let props = |v: &serde_json::Value| -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(props(&schema["properties"]), props(&report));
    let variant = &schema["$defs"]["VariantReport"]["properties"];
    assert_eq!(props(variant), props(&report["variants"][0]));
}

#[test]
fn a_variant_that_only_fails_is_reverted_and_its_errors_are_shown() {
    let mut j = judge(&["v"]);
    let dead = Shape {
        answered: 0,
        errors: 500,
        ..arm(20.0)
    };
    assert_eq!(run(&mut j, 0, arm(20.0), dead), (Verdict::Revert, 1));
    let r = j.conclude().variants.remove(0);
    assert_eq!(r.verdict, Verdict::Revert);
    assert_eq!(r.candidate.requests, 1000);
    assert_eq!(r.candidate.error_rate_pct, Some(100.0));
    assert_eq!(r.candidate.p50_us, None);
    assert_eq!(r.baseline.error_rate_pct, Some(0.0));
    assert!(
        r.guardrail
            .unwrap()
            .contains("100.0 % errors (500 of 500 requests)")
    );
}

/// Sets the CPU pressure of a cycle's blocks (in position order).
fn with_cpu(mut blocks: Vec<BlockSample>, cpu: [f64; 4]) -> Vec<BlockSample> {
    for (b, c) in blocks.iter_mut().zip(cpu) {
        b.host = Some(smart_core::engine::HostPressure {
            cpu_some_pct: Some(c),
            ..Default::default()
        });
    }
    blocks
}

#[test]
fn cycles_whose_partner_blocks_saw_different_host_pressure_carry_no_keep() {
    // A clear win in every cycle, but a neighbour's burst hit one partner of every pair: no cycle
    // may carry a keep.
    let mut j = judge(&["v"]);
    for c in 0..8 {
        let step = j
            .record_cycle(
                0,
                &with_cpu(exact_cycle(c, -0.3, -0.3), [2.0, 75.0, 3.0, 2.0]),
            )
            .unwrap();
        assert_ne!(step, Step::Stop(Verdict::Keep), "cycle {c}");
    }
    let outcome = j.conclude();
    assert_eq!(outcome.kept, None);
    let why = reasons(&outcome, 0);
    assert!(
        why.contains("8 cycle(s) left out of the keep test"),
        "{why}"
    );
    assert!(
        why.contains("CPU pressure variant minus baseline +73 points in one pair, +1 in the other"),
        "{why}"
    );
    // A host busy all the time, and a variant that itself saves CPU (its blocks stall less in
    // both pairs alike): kept.
    for cpu in [[70.0, 90.0, 88.0, 72.0], [60.0, 10.0, 12.0, 58.0]] {
        let mut j = judge(&["v"]);
        let kept = (0..8).any(|c| {
            j.record_cycle(0, &with_cpu(exact_cycle(c, -0.3, -0.3), cpu))
                .unwrap()
                == Step::Stop(Verdict::Keep)
        });
        assert!(kept, "{cpu:?}: {}", reasons(&j.conclude(), 0));
    }
}

/// Marks every block of a cycle as run on a host starved of CPU (a build at load 25 on 2 CPUs).
fn starved(mut blocks: Vec<BlockSample>) -> Vec<BlockSample> {
    for b in &mut blocks {
        b.host = Some(smart_core::engine::HostPressure {
            cpu_some_pct: Some(97.0),
            load1: Some(25.3),
            cpus: Some(2),
            ..Default::default()
        });
    }
    blocks
}

#[test]
fn a_run_on_a_starved_host_cannot_keep() {
    // A clear win in every cycle, and partners equally starved (the pair rule sees nothing): no
    // cycle may carry a keep, and the reasons say why.
    let mut j = judge(&["v"]);
    for c in 0..8 {
        let step = j
            .record_cycle(0, &starved(exact_cycle(c, -0.3, -0.3)))
            .unwrap();
        assert_ne!(step, Step::Stop(Verdict::Keep), "cycle {c}");
    }
    let outcome = j.conclude();
    assert_eq!(outcome.kept, None);
    let why = reasons(&outcome, 0);
    for want in [
        "8 cycle(s) left out of the keep test: the host was starved (latest: CPU pressure 97 % at \
         load 25.3 on 2 CPU(s)",
        "no keep on a disturbed host: host pressure left 0 of 8 cycles for the keep test, and a \
         keep needs 6",
    ] {
        assert!(why.contains(want), "{why}");
    }
    // The console shows a decision's first reason: that is why.
    assert!(
        outcome.variants[0].reasons[0].starts_with("no keep on a disturbed host"),
        "{why}"
    );
}

#[test]
fn a_run_with_some_starved_cycles_keeps_from_the_clean_ones() {
    let mut j = judge(&["v"]);
    let mut last = Step::Continue;
    for c in 0..8 {
        let blocks = exact_cycle(c, -0.3, -0.3);
        let blocks = if c == 1 || c == 4 {
            starved(blocks)
        } else {
            blocks
        };
        last = j.record_cycle(0, &blocks).unwrap();
    }
    assert_eq!(last, Step::Stop(Verdict::Keep));
    let outcome = j.conclude();
    assert_eq!(outcome.kept.as_deref(), Some("v"));
    let why = reasons(&outcome, 0);
    assert!(
        why.contains("2 cycle(s) left out of the keep test: the host was starved"),
        "{why}"
    );
    assert!(!why.contains("no keep on a disturbed host"), "{why}");
}

#[test]
fn a_no_op_whose_variant_blocks_a_burst_hit_is_not_reverted() {
    // A/A with small noise, but a neighbour's burst made the variant's (middle) blocks of the
    // first two cycles six times slower, and one variant block of cycle 5 (no host figures to
    // notice it). A t-test on the pairs sees four pairs at +500 % and reverts after cycle 2; the
    // exact test knows that two cycles' orders are two coin flips, and does not revert.
    let mut j = judge(&["v"]);
    let mut last = Step::Continue;
    for c in 0..8 {
        let noise = if c % 2 == 0 { 0.04 } else { -0.04 };
        let (d1, d2) = match c {
            0 | 1 => (1.8, 1.8),
            4 => (1.8, noise),
            _ => (noise, noise),
        };
        last = j.record_cycle(0, &exact_cycle(c, d1, d2)).unwrap();
        assert_ne!(last, Step::Stop(Verdict::Revert), "cycle {c}");
    }
    assert_eq!(last, Step::Stop(Verdict::Inconclusive));
    let outcome = j.conclude();
    assert_eq!(outcome.variants[0].verdict, Verdict::Inconclusive);
    // The same cycles with the burst's slowdown in both pairs of every cycle: a real, consistent
    // slowdown, reverted.
    let mut j = judge(&["v"]);
    let reverted = (0..8).any(|c| {
        j.record_cycle(0, &exact_cycle(c, 0.3, 0.25)).unwrap() == Step::Stop(Verdict::Revert)
    });
    assert!(reverted, "{}", reasons(&j.conclude(), 0));
}
