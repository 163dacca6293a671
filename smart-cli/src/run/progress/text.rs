//! The words of `smart run`'s progress: the log line (if any) for each engine event, and the
//! labels of the live progress bar. Pure functions, so the wording is tested in one place.

use std::time::Duration;

use smart_core::engine::{
    BlockInfo, BlockKind, BlockMeasurement, EventKind, JudgeStep, LiveConfig, LiveProgress, Phase,
    PhaseInfo, RunPlan,
};
use smart_core::records::DecisionRecord;
use smart_core::schedule::Human;

/// How much a log line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    /// The run goes as planned.
    Info,
    /// Something went wrong and the engine handled it (a guardrail, a failed switch).
    Warn,
}

/// One log line: printed above the bar on a terminal, a tracing event otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    pub(super) level: Level,
    pub(super) text: String,
}

impl Line {
    fn info(text: String) -> Option<Line> {
        Some(Line {
            level: Level::Info,
            text,
        })
    }

    fn warn(text: String) -> Option<Line> {
        Some(Line {
            level: Level::Warn,
            text,
        })
    }
}

/// The log line for an event, if it deserves one: one per phase change, finished block, judge's
/// stop, advice, problem and decision; none per progress tick.
///
/// `variants` are the run's variants in order (from its plan), `left` the estimated time left.
pub(super) fn line(kind: &EventKind<'_>, variants: &[String], left: Duration) -> Option<Line> {
    match kind {
        EventKind::RunStarted { plan, .. } => Line::info(started(plan)),
        EventKind::Phase(info) => phase_line(info, variants).and_then(Line::info),
        EventKind::BlockFinished { block, measurement } => {
            let text = block_line(block, measurement, variants, left);
            if measurement.aborted.is_some() {
                Line::warn(text)
            } else {
                Line::info(text)
            }
        }
        EventKind::Step {
            variant,
            cycle,
            step: JudgeStep::Stop(verdict),
        } => Line::info(format!(
            "{}: the judge stops after {} cycle{}: {}",
            who(variant, variants),
            cycle + 1,
            plural(*cycle as usize + 1),
            verdict.as_str()
        )),
        EventKind::Advised {
            variant,
            advice,
            followed,
        } => Line::info(format!(
            "{}: the coach advised {:?}{}: {}",
            who(variant, variants),
            advice.action,
            if *followed { "" } else { " (not followed)" },
            advice.reason
        )),
        EventKind::Problem(text) => Line::warn((*text).to_owned()),
        EventKind::Decided(decision) => Line::info(summary(decision)),
        EventKind::RunFinished(report) => Line::info(format!(
            "run {} {}{}; {}",
            report.run_id,
            report.end.as_str(),
            report
                .end_reason
                .as_deref()
                .map_or_else(String::new, |why| format!(" ({why})")),
            live_config(&report.live)
        )),
        EventKind::Step {
            step: JudgeStep::Continue,
            ..
        }
        | EventKind::BlockStarted(_)
        | EventKind::Progress { .. }
        | EventKind::Tick => None,
    }
}

/// The run's start: its id, variants, seed, worst-case and expected duration (the figures
/// `smart validate` prints) and time box.
fn started(plan: &RunPlan) -> String {
    format!(
        "run {} started: {} variant{}, seed {}, up to {} (expected {}, time box {})",
        plan.run_id,
        plan.variants.len(),
        plural(plan.variants.len()),
        plan.seed,
        Human(plan.worst_case_s),
        Human(plan.expected_s),
        Human(plan.max_duration_s),
    )
}

/// The line for a phase change; none for measuring (each block has its own line) and for the
/// end (the run's end has its own line).
fn phase_line(info: &PhaseInfo, variants: &[String]) -> Option<String> {
    let variant = info.variant.as_deref().map(|v| who(v, variants));
    let text = match (info.phase, variant, info.arm.as_deref()) {
        (Phase::CheckingBaseline, ..) => "checking the configuration as found".to_owned(),
        (Phase::Switching, Some(v), Some(arm)) => format!("{v}: switching to {arm}"),
        (Phase::Advising, Some(v), _) => format!("{v}: asking the coach"),
        (Phase::Soaking, Some(v), _) => format!("{v}: soaking under the guardrails"),
        (Phase::Restoring, ..) => "restoring the original configuration".to_owned(),
        (Phase::Keeping, Some(v), _) => format!("{v}: keeping it"),
        _ => return None,
    };
    Some(text)
}

/// A finished block: which, its figures, why it was stopped, and the time left.
fn block_line(
    block: &BlockInfo,
    m: &BlockMeasurement,
    variants: &[String],
    left: Duration,
) -> String {
    let stopped = m
        .aborted
        .as_deref()
        .map_or_else(String::new, |why| format!("; stopped: {why}"));
    format!(
        "{}: {} {}: {} requests, {} errors, p50 {}, {:.1} req/s{stopped}; about {} left",
        who(&block.variant, variants),
        block_name(block),
        arm_and_cooldown(block),
        m.requests,
        m.errors,
        ms(m.p50_us),
        m.rate_per_s,
        Human(left.as_secs_f64()),
    )
}

/// `block 3/16` or `soak block 1/2`.
fn block_name(block: &BlockInfo) -> String {
    let kind = match block.kind {
        BlockKind::Test => "block",
        BlockKind::Soak => "soak block",
    };
    format!(
        "{kind} {}/{}",
        block.block_in_variant, block.blocks_in_variant
    )
}

/// `(baseline)` or `(gzip-6, after a 0.3 s cool-down)`.
fn arm_and_cooldown(block: &BlockInfo) -> String {
    if block.warmup_s > 0.0 {
        format!(
            "({}, after a {} s cool-down)",
            block.arm_name,
            seconds(block.warmup_s)
        )
    } else {
        format!("({})", block.arm_name)
    }
}

/// The bar's headline: what runs, which variant of how many, and the phase.
pub(super) fn headline(
    experiment: &str,
    variant: Option<&str>,
    variants: &[String],
    phase: &str,
) -> String {
    match variant {
        Some(v) => format!("{experiment} · {} · {phase}", who(v, variants)),
        None => format!("{experiment} · {phase}"),
    }
}

/// The bar's label for a phase.
pub(super) fn phase_label(info: &PhaseInfo) -> String {
    let arm = info.arm.as_deref().unwrap_or("the variant");
    match info.phase {
        Phase::CheckingBaseline => "checking the baseline".to_owned(),
        Phase::Switching => format!("switching to {arm}"),
        Phase::Measuring => format!("measuring {arm}"),
        Phase::Advising => "asking the coach".to_owned(),
        Phase::Soaking => "soaking".to_owned(),
        Phase::Restoring => "restoring the original".to_owned(),
        Phase::Keeping => "keeping it".to_owned(),
        Phase::Finished => "finished".to_owned(),
    }
}

/// The bar's label while a block warms up after a switch.
pub(super) fn cooling_label(block: &BlockInfo) -> String {
    format!("cooling down ({})", block.arm_name)
}

/// The bar's label for the judge's step after a cycle.
pub(super) fn deciding_label(step: JudgeStep) -> String {
    match step {
        JudgeStep::Continue => "deciding: another cycle".to_owned(),
        JudgeStep::Stop(verdict) => format!("deciding: {}", verdict.as_str()),
    }
}

/// The bar's figures: the block, its live p50 and errors, and the time left (short enough for
/// an 80-column terminal; the rate is in the log lines).
pub(super) fn figures(
    block: Option<&BlockInfo>,
    live: Option<&LiveProgress>,
    left: Duration,
) -> String {
    let mut parts = Vec::new();
    if let Some(block) = block {
        parts.push(block_name(block));
    }
    if let Some(live) = live {
        parts.push(format!("p50 {}", ms(live.p50_us)));
        parts.push(format!(
            "{} error{}",
            live.errors,
            plural(live.errors as usize)
        ));
    }
    parts.push(format!("{} left", Human(left.as_secs_f64())));
    parts.join(" · ")
}

/// `gzip-6 (variant 1/2)`: a variant and its place in the run, when the plan names it.
fn who(variant: &str, variants: &[String]) -> String {
    match variants.iter().position(|v| v == variant) {
        Some(i) if variants.len() > 1 => {
            format!("{variant} (variant {}/{})", i + 1, variants.len())
        }
        _ => variant.to_owned(),
    }
}

/// A latency in µs as milliseconds, `-` when there is none.
fn ms(us: Option<u64>) -> String {
    us.map_or_else(|| "-".to_owned(), |us| format!("{:.1} ms", us as f64 / 1e3))
}

/// Seconds without a needless `.0`.
fn seconds(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn live_config(live: &LiveConfig) -> String {
    match live {
        LiveConfig::Variant(name) => format!("{name} is live"),
        LiveConfig::Original => "the original config is live".to_owned(),
        LiveConfig::Unknown => "the live config is unknown".to_owned(),
    }
}

/// One line for a decision: the verdict, the change with its bounds, the error change, and the
/// first reason.
pub(crate) fn summary(d: &DecisionRecord) -> String {
    let p50 = match (
        d.estimates.p50_change_pct,
        d.estimates.p50_change_bounds_pct,
    ) {
        (Some(x), Some(b)) => format!("p50 {x:+.1} % [{:+.1}, {:+.1}]", b.lower, b.upper),
        (Some(x), None) => format!("p50 {x:+.1} %"),
        (None, _) => "p50 -".to_owned(),
    };
    let errors = d
        .estimates
        .error_rate_change_pp
        .map_or_else(|| "errors -".to_owned(), |e| format!("errors {e:+.2} pp"));
    let reason = d.reasons.first().map_or("", String::as_str);
    format!(
        "{}: {}: {p50}, {errors}: {reason}",
        d.variant,
        d.decision.as_str()
    )
}

#[cfg(test)]
mod tests {
    use smart_core::engine::{
        Advice, AdviceAction, Arm, Bounds, Estimates, RunEnd, RunReport, Verdict,
    };
    use smart_core::records::DecisionKind;

    use super::*;

    fn variants() -> Vec<String> {
        vec!["gzip-1".to_owned(), "gzip-6".to_owned()]
    }

    fn block(kind: BlockKind, arm: &str, k: u32, n: u32, warmup_s: f64) -> BlockInfo {
        BlockInfo {
            index: 7,
            kind,
            variant: "gzip-6".to_owned(),
            variant_index: 2,
            arm: if arm == "baseline" {
                Arm::Baseline
            } else {
                Arm::Variant
            },
            arm_name: arm.to_owned(),
            cycle: 0,
            position: 1,
            block_in_variant: k,
            blocks_in_variant: n,
            warmup_s,
            duration_s: 10.0,
            started: "2026-11-26T21:00:00Z".to_owned(),
        }
    }

    fn phase(phase: Phase, variant: Option<&str>, arm: Option<&str>) -> PhaseInfo {
        PhaseInfo {
            phase,
            variant: variant.map(str::to_owned),
            arm: arm.map(str::to_owned),
        }
    }

    fn measured(
        requests: u64,
        errors: u64,
        p50_us: Option<u64>,
        aborted: Option<&str>,
    ) -> BlockMeasurement {
        BlockMeasurement {
            duration_s: 10.0,
            requests,
            errors,
            p50_us,
            rate_per_s: 49.96,
            aborted: aborted.map(str::to_owned),
            ..BlockMeasurement::default()
        }
    }

    fn decision(
        kind: DecisionKind,
        p50: Option<f64>,
        bounds: bool,
        errors: Option<f64>,
    ) -> DecisionRecord {
        DecisionRecord {
            run_id: "r1".to_owned(),
            experiment: "gzip".to_owned(),
            definition_hash: "h".to_owned(),
            variant: "gzip-6".to_owned(),
            decision: kind,
            metric: smart_core::experiment::Metric::P50,
            cycles: 3,
            estimates: Estimates {
                p50_change_pct: p50,
                p50_change_bounds_pct: bounds.then_some(Bounds {
                    lower: -20.04,
                    upper: -5.0,
                }),
                error_rate_change_pp: errors,
                error_rate_change_bounds_pp: None,
                p_value: None,
            },
            reasons: vec!["faster by 12 %".to_owned(), "second".to_owned()],
            started: "2026-11-26T21:00:00Z".to_owned(),
            finished: "2026-11-26T21:05:00Z".to_owned(),
            report: serde_json::Value::Null,
        }
    }

    const LEFT: Duration = Duration::from_secs(80);

    /// The line for `kind` in a run of two variants with 80 s left.
    fn check(kind: EventKind<'_>, expected: Option<(Level, &str)>) {
        let got = line(&kind, &variants(), LEFT);
        let got = got.as_ref().map(|l| (l.level, l.text.as_str()));
        assert_eq!(got, expected, "{kind:?}");
    }

    #[test]
    fn each_event_has_its_line_or_none() {
        use Level::{Info, Warn};
        let plan = RunPlan {
            run_id: "20261126T210000Z-gzip-3f2a".to_owned(),
            experiment: "gzip".to_owned(),
            definition_hash: "h".to_owned(),
            seed: 42,
            variants: variants(),
            interleave: true,
            blocks_per_variant: 16,
            max_duration_s: 3600.0,
            expected_s: 750.0,
            worst_case_s: 905.0,
            started: "2026-11-26T21:00:00Z".to_owned(),
        };
        assert_eq!(
            started(&plan),
            "run 20261126T210000Z-gzip-3f2a started: 2 variants, seed 42, up to 15m 5s (expected 12m 30s, time box 1h 0m)"
        );
        let cases: [(PhaseInfo, Option<&str>); 9] = [
            (
                phase(Phase::CheckingBaseline, None, None),
                Some("checking the configuration as found"),
            ),
            (
                phase(Phase::Switching, Some("gzip-6"), Some("baseline")),
                Some("gzip-6 (variant 2/2): switching to baseline"),
            ),
            (
                phase(Phase::Measuring, Some("gzip-6"), Some("gzip-6")),
                None,
            ),
            (
                phase(Phase::Advising, Some("gzip-1"), None),
                Some("gzip-1 (variant 1/2): asking the coach"),
            ),
            (
                phase(Phase::Soaking, Some("gzip-6"), Some("gzip-6")),
                Some("gzip-6 (variant 2/2): soaking under the guardrails"),
            ),
            (
                phase(Phase::Restoring, None, None),
                Some("restoring the original configuration"),
            ),
            (
                phase(Phase::Keeping, Some("gzip-6"), Some("gzip-6")),
                Some("gzip-6 (variant 2/2): keeping it"),
            ),
            (phase(Phase::Finished, None, None), None),
            // A variant the plan does not name is shown by its name alone.
            (
                phase(Phase::Switching, Some("other"), Some("other")),
                Some("other: switching to other"),
            ),
        ];
        for (info, expected) in &cases {
            check(EventKind::Phase(info), expected.map(|text| (Info, text)));
        }

        let b = block(BlockKind::Test, "baseline", 3, 16, 0.0);
        let m = measured(500, 2, Some(1234), None);
        check(
            EventKind::BlockFinished {
                block: &b,
                measurement: &m,
            },
            Some((
                Info,
                "gzip-6 (variant 2/2): block 3/16 (baseline): 500 requests, 2 errors, p50 1.2 ms, 50.0 req/s; about 1m 20s left",
            )),
        );
        let b = block(BlockKind::Test, "gzip-6", 4, 16, 0.3);
        let m = measured(12, 11, None, Some("error rate 91.7 % over 50 %"));
        check(
            EventKind::BlockFinished {
                block: &b,
                measurement: &m,
            },
            Some((
                Warn,
                "gzip-6 (variant 2/2): block 4/16 (gzip-6, after a 0.3 s cool-down): 12 requests, 11 errors, p50 -, 50.0 req/s; stopped: error rate 91.7 % over 50 %; about 1m 20s left",
            )),
        );
        let b = block(BlockKind::Soak, "gzip-6", 1, 2, 5.0);
        let m = measured(500, 0, Some(900), None);
        check(
            EventKind::BlockFinished {
                block: &b,
                measurement: &m,
            },
            Some((
                Info,
                "gzip-6 (variant 2/2): soak block 1/2 (gzip-6, after a 5 s cool-down): 500 requests, 0 errors, p50 0.9 ms, 50.0 req/s; about 1m 20s left",
            )),
        );

        check(
            EventKind::Step {
                variant: "gzip-1",
                cycle: 0,
                step: JudgeStep::Stop(Verdict::Revert),
            },
            Some((
                Info,
                "gzip-1 (variant 1/2): the judge stops after 1 cycle: revert",
            )),
        );
        check(
            EventKind::Step {
                variant: "gzip-1",
                cycle: 2,
                step: JudgeStep::Stop(Verdict::Keep),
            },
            Some((
                Info,
                "gzip-1 (variant 1/2): the judge stops after 3 cycles: keep",
            )),
        );
        check(
            EventKind::Step {
                variant: "gzip-1",
                cycle: 2,
                step: JudgeStep::Continue,
            },
            None,
        );
        let advice = Advice {
            action: AdviceAction::Extend,
            reason: "close call".to_owned(),
        };
        check(
            EventKind::Advised {
                variant: "gzip-1",
                advice: &advice,
                followed: false,
            },
            Some((
                Info,
                "gzip-1 (variant 1/2): the coach advised Extend (not followed): close call",
            )),
        );
        check(
            EventKind::Problem("the switch to gzip-6 failed: nginx -t said no"),
            Some((Warn, "the switch to gzip-6 failed: nginx -t said no")),
        );
        let d = decision(DecisionKind::Keep, Some(-12.0), true, Some(0.0));
        check(
            EventKind::Decided(&d),
            Some((
                Info,
                "gzip-6: keep: p50 -12.0 % [-20.0, -5.0], errors +0.00 pp: faster by 12 %",
            )),
        );
        let mut report = RunReport {
            run_id: "r1".to_owned(),
            experiment: "gzip".to_owned(),
            definition_hash: "h".to_owned(),
            seed: 42,
            started: "2026-11-26T21:00:00Z".to_owned(),
            finished: "2026-11-26T21:05:00Z".to_owned(),
            end: RunEnd::Completed,
            end_reason: None,
            live: LiveConfig::Variant("gzip-6".to_owned()),
            decisions: Vec::new(),
        };
        check(
            EventKind::RunFinished(&report),
            Some((Info, "run r1 completed; gzip-6 is live")),
        );
        report.end = RunEnd::Cancelled;
        report.end_reason = Some("cancelled by a signal".to_owned());
        report.live = LiveConfig::Original;
        check(
            EventKind::RunFinished(&report),
            Some((
                Info,
                "run r1 cancelled (cancelled by a signal); the original config is live",
            )),
        );
        // Never a line per tick or progress report.
        let b = block(BlockKind::Test, "baseline", 3, 16, 0.0);
        let live = LiveProgress {
            warming_up: false,
            elapsed_s: 1.0,
            requests: 50,
            errors: 0,
            rate_per_s: 50.0,
            p50_us: Some(1000),
        };
        check(EventKind::Tick, None);
        check(EventKind::BlockStarted(&b), None);
        check(
            EventKind::Progress {
                block: &b,
                live: &live,
            },
            None,
        );
    }

    #[test]
    fn decision_summaries() {
        let check = |d: DecisionRecord, expected: &str| assert_eq!(summary(&d), expected);
        check(
            decision(DecisionKind::Revert, Some(8.04), false, Some(1.5)),
            "gzip-6: revert: p50 +8.0 %, errors +1.50 pp: faster by 12 %",
        );
        check(
            decision(DecisionKind::Aborted, None, false, None),
            "gzip-6: aborted: p50 -, errors -: faster by 12 %",
        );
        let mut d = decision(DecisionKind::KeptByCoach, Some(-1.0), true, None);
        d.reasons.clear();
        check(
            d,
            "gzip-6: kept-by-coach: p50 -1.0 % [-20.0, -5.0], errors -: ",
        );
    }

    #[test]
    fn bar_labels() {
        let cases = [
            (
                phase(Phase::CheckingBaseline, None, None),
                "checking the baseline",
            ),
            (
                phase(Phase::Switching, Some("gzip-6"), Some("baseline")),
                "switching to baseline",
            ),
            (
                phase(Phase::Measuring, Some("gzip-6"), Some("gzip-6")),
                "measuring gzip-6",
            ),
            (
                phase(Phase::Advising, Some("gzip-6"), None),
                "asking the coach",
            ),
            (
                phase(Phase::Soaking, Some("gzip-6"), Some("gzip-6")),
                "soaking",
            ),
            (
                phase(Phase::Restoring, None, None),
                "restoring the original",
            ),
            (phase(Phase::Keeping, Some("gzip-6"), None), "keeping it"),
            (phase(Phase::Finished, None, None), "finished"),
        ];
        for (info, expected) in cases {
            assert_eq!(phase_label(&info), expected, "{info:?}");
        }
        assert_eq!(
            cooling_label(&block(BlockKind::Test, "gzip-6", 2, 16, 0.3)),
            "cooling down (gzip-6)"
        );
        assert_eq!(
            deciding_label(JudgeStep::Continue),
            "deciding: another cycle"
        );
        assert_eq!(
            deciding_label(JudgeStep::Stop(Verdict::Inconclusive)),
            "deciding: inconclusive"
        );
        let v = variants();
        for (variant, variants, expected) in [
            (None, &v[..], "gzip · checking the baseline"),
            (
                Some("gzip-1"),
                &v[..],
                "gzip · gzip-1 (variant 1/2) · checking the baseline",
            ),
            (
                Some("gzip-1"),
                &v[..1],
                "gzip · gzip-1 · checking the baseline",
            ),
        ] {
            assert_eq!(
                headline("gzip", variant, variants, "checking the baseline"),
                expected
            );
        }
    }

    #[test]
    fn bar_figures() {
        let b = block(BlockKind::Test, "baseline", 3, 16, 0.0);
        let soak = block(BlockKind::Soak, "gzip-6", 1, 2, 0.0);
        let live = |errors, p50_us| LiveProgress {
            warming_up: false,
            elapsed_s: 4.0,
            requests: 200,
            errors,
            rate_per_s: 49.6,
            p50_us,
        };
        let cases = [
            (None, None, "1m 20s left"),
            (Some(&b), None, "block 3/16 · 1m 20s left"),
            (
                Some(&b),
                Some(live(0, Some(1260))),
                "block 3/16 · p50 1.3 ms · 0 errors · 1m 20s left",
            ),
            (
                Some(&soak),
                Some(live(1, None)),
                "soak block 1/2 · p50 - · 1 error · 1m 20s left",
            ),
        ];
        for (block, live, expected) in cases {
            assert_eq!(figures(block, live.as_ref(), LEFT), expected);
        }
    }
}
