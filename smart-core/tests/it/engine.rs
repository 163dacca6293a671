//! The engine driven with fakes and simulated time: decisions, the ABBA design, guardrails, the
//! time box, cancellation, several variants, the coach, and that every path that does not keep a
//! variant ends on the original configuration.

use std::rc::Rc;
use std::time::Duration;

use serde_json::json;
use smart_core::engine::sim::block_on;
use smart_core::engine::{
    AdviceAction, Arm, ClockPort, EngineError, Event, EventKind, LiveConfig, ObserverError,
    ObserverPort, Ports, RunConfig, RunEnd, RunReport, cycle_order,
};
use smart_core::records::DecisionKind;

use crate::fakes::{
    BASE, BROKEN, Behaviour, FAST, FakeApplier, FakeCoach, FakeProbe, ORIGINAL, SLOW, ToyJudge,
    World, experiment, experiment_with,
};

/// One engine run over the fakes, and what it left behind.
pub(crate) struct Harness {
    pub(crate) exp: smart_core::Experiment,
    pub(crate) world: Rc<World>,
    pub(crate) probe: FakeProbe,
    pub(crate) applier: FakeApplier,
    pub(crate) judge: ToyJudge,
    pub(crate) coach: FakeCoach,
    pub(crate) seed: u64,
    pub(crate) log: EventLog,
}

impl Harness {
    pub(crate) fn new(variants: &[(&str, Behaviour)], schedule: serde_json::Value) -> Harness {
        let names: Vec<&str> = variants.iter().map(|(n, _)| *n).collect();
        let exp = experiment(&names, schedule);
        let world = World::new(variants);
        Harness {
            probe: FakeProbe::new(&world),
            applier: FakeApplier::new(&world),
            judge: ToyJudge::new(&exp),
            coach: FakeCoach::new(AdviceAction::Revert),
            seed: 42,
            log: EventLog::default(),
            exp,
            world,
        }
    }

    pub(crate) fn run(&mut self) -> Result<RunReport, EngineError> {
        let mut log = std::mem::take(&mut self.log);
        let result = self.run_observed(&mut log);
        self.log = log;
        result
    }

    pub(crate) fn run_observed<O: ObserverPort>(
        &mut self,
        observer: &mut O,
    ) -> Result<RunReport, EngineError> {
        let config = RunConfig {
            run_id: format!("run-{}", self.seed),
            seed: self.seed,
            cancel: self.world.cancel.clone(),
        };
        let clock = self.world.clock.clone();
        let ports = Ports {
            probe: &mut self.probe,
            applier: &mut self.applier,
            judge: &mut self.judge,
            clock: &clock,
            coach: &mut self.coach,
            observer,
        };
        block_on(&clock, smart_core::engine::run(&self.exp, &config, ports))
    }

    /// The decisions by variant name.
    fn decisions(report: &RunReport) -> Vec<(String, DecisionKind)> {
        report
            .decisions
            .iter()
            .map(|d| (d.variant.clone(), d.decision))
            .collect()
    }
}

/// An observer that keeps the blocks and problems it saw, with their simulated times.
#[derive(Debug, Default)]
pub(crate) struct EventLog {
    /// (block index, arm name, kind, warm-up s, start s, end s, measured s).
    pub(crate) blocks: Vec<(u32, String, String, f64, f64, f64, f64)>,
    pub(crate) problems: Vec<(f64, String)>,
    pub(crate) ticks: u32,
}

impl ObserverPort for EventLog {
    fn event(&mut self, event: &Event<'_>) -> Result<(), ObserverError> {
        let t = event.elapsed.as_secs_f64();
        match event.kind {
            EventKind::BlockStarted(b) => self.blocks.push((
                b.index,
                b.arm_name.clone(),
                format!("{:?}", b.kind).to_lowercase(),
                b.warmup_s,
                t,
                f64::NAN,
                f64::NAN,
            )),
            EventKind::BlockFinished { block, measurement } => {
                if let Some(entry) = self.blocks.iter_mut().find(|e| e.0 == block.index) {
                    entry.5 = t;
                    entry.6 = measurement.duration_s;
                }
            }
            EventKind::Problem(p) => self.problems.push((t, p.to_owned())),
            EventKind::Tick => self.ticks += 1,
            _ => {}
        }
        Ok(())
    }
}

#[test]
fn a_clear_win_is_soaked_then_kept() {
    let mut h = Harness::new(&[("fast", FAST)], json!({}));
    let report = h.run().unwrap();
    assert_eq!(report.end, RunEnd::Completed);
    assert_eq!(
        Harness::decisions(&report),
        [("fast".into(), DecisionKind::Keep)]
    );
    assert_eq!(report.live, LiveConfig::Variant("fast".into()));
    assert_eq!(h.world.live(), "fast");
    let calls = h.world.calls();
    assert_eq!(calls.first().map(String::as_str), Some("check"));
    assert_eq!(calls.last().map(String::as_str), Some("keep fast"));
    assert!(!calls.contains(&"restore".to_owned()), "{calls:?}");
    // 30 s of soak in 10 s blocks, after the test's blocks, all on the variant.
    let soak: Vec<_> = h.log.blocks.iter().filter(|b| b.2 == "soak").collect();
    assert_eq!(soak.len(), 3);
    assert!(soak.iter().all(|b| b.1 == "fast"));
    let d = &report.decisions[0];
    assert!(d.estimates.p50_change_pct.unwrap() < -20.0, "{d:?}");
    assert!(
        d.reasons.iter().any(|r| r.contains("soaked for 30 s")),
        "{:?}",
        d.reasons
    );
    // The toy judge keeps after two cycles: 8 test blocks.
    assert_eq!(d.cycles, 2);
}

#[test]
fn a_loss_is_reverted_and_the_original_restored() {
    let mut h = Harness::new(&[("slow", SLOW)], json!({}));
    let report = h.run().unwrap();
    assert_eq!(
        Harness::decisions(&report),
        [("slow".into(), DecisionKind::Revert)]
    );
    assert_eq!(report.live, LiveConfig::Original);
    assert_eq!(h.world.live(), ORIGINAL);
    let calls = h.world.calls();
    assert!(!calls.iter().any(|c| c.starts_with("keep")), "{calls:?}");
    assert_eq!(calls[calls.len() - 2..], ["restore", "close"], "{calls:?}");
    // Nothing is soaked.
    assert!(h.log.blocks.iter().all(|b| b.2 == "test"));
}

#[test]
fn a_guardrail_reverts_at_once_not_after_the_block() {
    let mut h = Harness::new(
        &[("broken", BROKEN)],
        json!({"block_s": 60, "max_cycles": 2}),
    );
    let report = h.run().unwrap();
    let d = &report.decisions[0];
    assert_eq!(d.decision, DecisionKind::Revert);
    assert!(
        d.reasons[0].contains("guardrail fired") && d.reasons[0].contains("abort threshold"),
        "{:?}",
        d.reasons
    );
    assert_eq!(h.world.live(), ORIGINAL);
    // The variant's block stopped 2 s in, of 60 s; the restore followed at once.
    let block = h.log.blocks.iter().find(|b| b.1 == "broken").unwrap();
    assert!(block.6 < 1.0, "measured {} s", block.6);
    assert!(block.5 - block.4 <= 2.0 + 1e-9, "{block:?}");
    let calls = h.world.calls();
    let probe = calls.iter().position(|c| c == "probe broken").unwrap();
    assert_eq!(calls[probe + 1], "restore", "{calls:?}");
    assert_eq!(calls.iter().filter(|c| *c == "probe broken").count(), 1);
}

#[test]
fn a_failed_switch_reverts_before_any_probe_of_the_variant() {
    let mut h = Harness::new(&[("bad", FAST)], json!({}));
    h.applier.fail_switch.insert("bad".into());
    let report = h.run().unwrap();
    let d = &report.decisions[0];
    assert_eq!(d.decision, DecisionKind::Revert);
    assert!(
        d.reasons[0].contains("switching to bad failed"),
        "{:?}",
        d.reasons
    );
    assert!(d.reasons[0].contains("nginx -t"), "{:?}", d.reasons);
    let calls = h.world.calls();
    assert!(!calls.contains(&"probe bad".to_owned()), "{calls:?}");
    assert_eq!(h.world.live(), ORIGINAL);
    assert_eq!(report.live, LiveConfig::Original);
}

#[test]
fn the_time_box_aborts_and_reverts() {
    // The target stalls: every block takes three times its length, so the plan overruns the box.
    let mut h = Harness::new(&[("fast", BASE)], json!({"max_duration_s": 400}));
    h.probe.stall = 3.0;
    let report = h.run().unwrap();
    assert_eq!(report.end, RunEnd::TimedOut);
    assert_eq!(report.decisions[0].decision, DecisionKind::Aborted);
    assert!(
        report.decisions[0].reasons[0].contains("time box of 400 s"),
        "{:?}",
        report.decisions[0].reasons
    );
    assert_eq!(h.world.live(), ORIGINAL);
    // The block in flight was stopped at the box, not at its end.
    let now = h.world.clock.monotonic().as_secs_f64();
    assert!((400.0..=401.0).contains(&now), "ended at {now} s");
}

#[test]
fn cancellation_reverts_and_returns_quickly() {
    let mut h = Harness::new(&[("fast", BASE)], json!({"block_s": 60}));
    h.world.cancel_at.set(Some(Duration::from_secs(100)));
    let report = h.run().unwrap();
    assert_eq!(report.end, RunEnd::Cancelled);
    assert_eq!(report.decisions[0].decision, DecisionKind::Aborted);
    assert!(report.decisions[0].reasons[0].contains("cancelled"));
    assert_eq!(h.world.live(), ORIGINAL);
    let now = h.world.clock.monotonic().as_secs_f64();
    // One probe step of 1 s to notice, and one restore of 0.2 s.
    assert!(now <= 101.5, "returned at {now} s");
}

#[test]
fn with_several_variants_at_most_the_best_is_kept() {
    let good = Behaviour {
        p50_ms: 17.0,
        ..FAST
    };
    let mut h = Harness::new(
        &[
            ("good", good),
            ("slow", SLOW),
            ("best", FAST),
            ("same", BASE),
        ],
        json!({"max_cycles": 4, "max_duration_s": 20000}),
    );
    let report = h.run().unwrap();
    assert_eq!(
        Harness::decisions(&report),
        [
            ("good".into(), DecisionKind::Revert),
            ("slow".into(), DecisionKind::Revert),
            ("best".into(), DecisionKind::Keep),
            ("same".into(), DecisionKind::Inconclusive),
        ]
    );
    assert_eq!(h.world.live(), "best");
    assert_eq!(report.live, LiveConfig::Variant("best".into()));
    // The server went back to the original after each variant, then to the winner for the soak.
    let calls = h.world.calls();
    let keep = calls.iter().position(|c| c == "keep best").unwrap();
    assert_eq!(keep, calls.len() - 1);
    let last_switch = calls.iter().rposition(|c| c.starts_with("switch")).unwrap();
    assert_eq!(calls[last_switch], "switch best");
    assert_eq!(
        calls.iter().filter(|c| *c == "restore").count(),
        4,
        "{calls:?}"
    );
}

#[test]
fn the_abba_design_replays_from_the_seed() {
    let orders = |seed: u64| {
        let mut h = Harness::new(&[("a", BASE), ("b", BASE)], json!({}));
        h.seed = seed;
        let report = h.run().unwrap();
        assert_eq!(report.seed, seed);
        h.judge
            .fed
            .iter()
            .map(|f| (f.variant, f.cycle, f.arms.clone()))
            .collect::<Vec<_>>()
    };
    let first = orders(7);
    assert_eq!(first.len(), 12);
    for (variant, cycle, arms) in &first {
        assert_eq!(arms, &cycle_order(7, *variant, *cycle).arms().to_vec());
    }
    assert_eq!(orders(7), first);
    assert_ne!(orders(8), first);
    // Both orders occur.
    assert!(first.iter().any(|f| f.2[0] == Arm::Baseline));
    assert!(first.iter().any(|f| f.2[0] == Arm::Variant));
}

#[test]
fn an_aa_run_with_many_reloads_is_not_reverted_for_errors() {
    let mut h = Harness::new(&[("same", BASE)], json!({"max_cycles": 8}));
    let report = h.run().unwrap();
    assert_eq!(report.decisions[0].decision, DecisionKind::Inconclusive);
    // Many reloads, each closing connections; their errors fell in the cool-downs.
    assert!(
        h.world.reloads.get() >= 12,
        "{} reloads",
        h.world.reloads.get()
    );
    assert_eq!(h.judge.fed.len(), 8);
    assert!(h.judge.fed.iter().all(|f| f.errors.iter().all(|&e| e == 0)));
    // Every block right after a switch had the cool-down as warm-up.
    let calls = h.world.calls();
    let mut after_switch = false;
    let mut blocks = h.log.blocks.iter();
    for call in &calls {
        if call.starts_with("switch") || call == "restore" {
            after_switch = true;
        } else if call.starts_with("probe") {
            let block = blocks.next().unwrap();
            let want = if after_switch { 2.0 } else { 0.0 };
            assert_eq!(block.3, want, "{block:?} after {calls:?}");
            after_switch = false;
        }
    }
}

#[test]
fn the_seed_design_measures_every_baseline_block_then_the_variant() {
    let mut h = Harness::new(
        &[("fast", FAST)],
        json!({"interleave": false, "max_cycles": 4}),
    );
    let report = h.run().unwrap();
    assert_eq!(report.decisions[0].decision, DecisionKind::Keep);
    let arms: Vec<&str> = h
        .log
        .blocks
        .iter()
        .filter(|b| b.2 == "test")
        .map(|b| b.1.as_str())
        .collect();
    // Four baseline blocks, then variant blocks until the judge stops (two cycles).
    assert_eq!(
        arms,
        [
            "baseline", "baseline", "baseline", "baseline", "fast", "fast"
        ]
    );
    assert_eq!(
        h.world
            .calls()
            .iter()
            .filter(|c| c.starts_with("switch"))
            .count(),
        1
    );
    assert!(
        h.judge
            .fed
            .iter()
            .all(|f| f.arms == [Arm::Baseline, Arm::Variant])
    );
}

#[test]
fn a_soak_failure_reverts() {
    // The variant wins its test, but breaks 2 s into the soak.
    let mut h = Harness::new(&[("flaky", FAST)], json!({}));
    let world = Rc::clone(&h.world);
    h.probe = FakeProbe::new(&world);
    let mut log = EventLog::default();
    let mut breaker = Breaker {
        world: &world,
        log: &mut log,
    };
    let report = h.run_observed(&mut breaker).unwrap();
    let d = &report.decisions[0];
    assert_eq!(d.decision, DecisionKind::Revert);
    assert!(d.reasons[0].contains("the soak failed"), "{:?}", d.reasons);
    assert_eq!(world.live(), ORIGINAL);
    assert!(!world.calls().iter().any(|c| c.starts_with("keep")));
}

/// Breaks the variant when its soak starts.
struct Breaker<'a> {
    world: &'a Rc<World>,
    log: &'a mut EventLog,
}

impl ObserverPort for Breaker<'_> {
    fn event(&mut self, event: &Event<'_>) -> Result<(), ObserverError> {
        if let EventKind::BlockStarted(b) = event.kind
            && b.kind == smart_core::engine::BlockKind::Soak
        {
            self.world
                .behaviour
                .borrow_mut()
                .insert(b.arm_name.clone(), BROKEN);
        }
        self.log.event(event)
    }
}

#[test]
fn a_coach_keep_is_honoured_only_within_the_rules() {
    let slightly = Behaviour {
        p50_ms: 19.0,
        ..FAST
    };
    let worse = Behaviour {
        p50_ms: 20.6,
        ..FAST
    };
    for (behaviour, want) in [
        (slightly, DecisionKind::KeptByCoach),
        (worse, DecisionKind::Inconclusive),
    ] {
        let mut h = Harness::new(&[("v", behaviour)], json!({"max_cycles": 3}));
        h.coach = FakeCoach::new(AdviceAction::Keep);
        h.coach.advise = true;
        let report = h.run().unwrap();
        let d = &report.decisions[0];
        assert_eq!(d.decision, want, "{:?}", d.reasons);
        assert_eq!(h.coach.asked, ["v"]);
        assert_eq!(h.coach.reports.len(), 1);
        if want == DecisionKind::KeptByCoach {
            assert_eq!(h.world.live(), "v");
        } else {
            assert!(
                d.reasons.iter().any(|r| r.contains("regression")),
                "{:?}",
                d.reasons
            );
            assert_eq!(h.world.live(), ORIGINAL);
        }
    }
}

#[test]
fn a_coach_extend_continues_the_same_test() {
    let mut h = Harness::new(&[("same", BASE)], json!({"max_cycles": 4}));
    h.coach = FakeCoach::new(AdviceAction::Extend);
    h.coach.advise = true;
    let report = h.run().unwrap();
    // The toy judge is inconclusive only at the last cycle, so there is nothing to extend.
    assert_eq!(report.decisions[0].decision, DecisionKind::Inconclusive);
    assert!(h.judge.extended.is_empty());
    assert!(
        report.decisions[0]
            .reasons
            .iter()
            .any(|r| r.contains("all 4 cycles were used")),
        "{:?}",
        report.decisions[0].reasons
    );
}

/// Every way a run can go wrong ends on the original configuration.
#[test]
fn every_error_path_ends_on_the_original() {
    #[derive(Debug, Clone, Copy)]
    enum Failure {
        UnsoundBaseline,
        SwitchFails,
        Guardrail,
        TimeBox,
        Cancel,
        BaselineGuardrail,
    }
    fn check(failure: Failure, end: RunEnd, decisions: &[DecisionKind]) {
        let mut h = Harness::new(&[("a", FAST), ("b", FAST)], json!({"max_duration_s": 2000}));
        match failure {
            Failure::UnsoundBaseline => h.applier.fail_check = true,
            Failure::SwitchFails => {
                h.applier.fail_switch.insert("a".into());
                h.applier.fail_switch.insert("b".into());
            }
            Failure::Guardrail => {
                for v in ["a", "b"] {
                    h.world.behaviour.borrow_mut().insert(v.into(), BROKEN);
                }
            }
            Failure::TimeBox => h.probe.stall = 10.0,
            Failure::Cancel => h.world.cancel_at.set(Some(Duration::from_secs(30))),
            Failure::BaselineGuardrail => {
                h.world.behaviour.borrow_mut().insert("a".into(), FAST);
                for arm in ["original", "baseline"] {
                    h.world.behaviour.borrow_mut().insert(arm.into(), BROKEN);
                }
            }
        }
        let report = h.run().unwrap();
        assert_eq!(report.end, end, "{failure:?}");
        let got: Vec<DecisionKind> = report.decisions.iter().map(|d| d.decision).collect();
        assert_eq!(got, decisions, "{failure:?}: {:#?}", report.decisions);
        assert_eq!(h.world.live(), ORIGINAL, "{failure:?}");
        assert_eq!(report.live, LiveConfig::Original, "{failure:?}");
        let calls = h.world.calls();
        assert!(!calls.iter().any(|c| c.starts_with("keep")), "{failure:?}");
        // The run was closed last, with the original live (the fake refuses otherwise), or
        // nothing was ever changed.
        match failure {
            Failure::UnsoundBaseline => assert_eq!(calls, ["check"]),
            _ => assert_eq!(calls.last().map(String::as_str), Some("close"), "{calls:?}"),
        }
        assert!(
            report.decisions.iter().all(|d| !d.reasons.is_empty()),
            "{failure:?}"
        );
    }
    use DecisionKind::{Aborted, Revert};
    check(
        Failure::UnsoundBaseline,
        RunEnd::BaselineUnsound,
        &[Aborted, Aborted],
    );
    check(Failure::SwitchFails, RunEnd::Completed, &[Revert, Revert]);
    check(Failure::Guardrail, RunEnd::Completed, &[Revert, Revert]);
    check(Failure::TimeBox, RunEnd::TimedOut, &[Aborted, Aborted]);
    check(Failure::Cancel, RunEnd::Cancelled, &[Aborted, Aborted]);
    check(
        Failure::BaselineGuardrail,
        RunEnd::BaselineUnsound,
        &[Aborted, Aborted],
    );
}

#[test]
fn smarts_own_failure_blames_neither_the_server_nor_the_variant() {
    // Issue 14, finding 4: a full state disk before the run said "the configuration as found
    // is not sound".
    let mut h = Harness::new(&[("fast", FAST)], json!({}));
    h.applier.fail_check = true;
    h.applier.cause = smart_core::engine::FailureCause::Smart;
    let report = h.run().unwrap();
    assert_eq!(report.end, RunEnd::Failed);
    let reason = report.end_reason.unwrap();
    assert!(!reason.contains("not sound"), "{reason}");
    assert!(reason.contains("the run could not start"), "{reason}");

    // A switch that fails because smart cannot record it decides nothing about the variant.
    let mut h = Harness::new(&[("fast", FAST), ("slow", SLOW)], json!({}));
    h.applier.fail_switch.insert("fast".to_owned());
    h.applier.cause = smart_core::engine::FailureCause::Smart;
    let report = h.run().unwrap();
    assert_eq!(report.end, RunEnd::Failed);
    assert_eq!(report.decisions[0].decision, DecisionKind::Aborted);
    assert_eq!(report.decisions[1].decision, DecisionKind::Aborted);
    assert_eq!(report.live, smart_core::engine::LiveConfig::Original);
}

#[test]
fn an_unsound_baseline_changes_nothing() {
    let mut h = Harness::new(&[("fast", FAST)], json!({}));
    h.applier.fail_check = true;
    let report = h.run().unwrap();
    assert_eq!(report.end, RunEnd::BaselineUnsound);
    assert_eq!(h.world.calls(), ["check"]);
    assert!(
        report
            .end_reason
            .as_deref()
            .unwrap()
            .contains("answered 503"),
        "{:?}",
        report.end_reason
    );
}

#[test]
fn a_failed_restore_fails_the_run_loudly() {
    let mut h = Harness::new(&[("slow", SLOW)], json!({}));
    h.applier.fail_restore = true;
    let err = h.run().unwrap_err();
    assert!(err.to_string().contains("could not be restored"), "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_eq!(err.report().live, LiveConfig::Unknown);
    assert_eq!(err.report().end, RunEnd::Failed);
    let d = &err.report().decisions[0];
    assert_eq!(d.decision, DecisionKind::Aborted);
    assert!(d.reasons[0].contains("may not be live"), "{:?}", d.reasons);
}

#[test]
fn a_failed_restore_mid_test_aborts_every_variant() {
    // Switching back to the baseline fails without restoring, and so does the restore.
    let mut h = Harness::new(&[("a", BASE), ("b", BASE)], json!({}));
    h.applier.fail_switch.insert("baseline".into());
    h.applier.fail_restore = true;
    h.applier.switch_fails_unrestored = true;
    let err = h.run().unwrap_err();
    let kinds: Vec<_> = err.report().decisions.iter().map(|d| d.decision).collect();
    assert_eq!(kinds, [DecisionKind::Aborted, DecisionKind::Aborted]);
}

#[test]
fn a_soak_shorter_than_a_block_is_one_short_block() {
    let mut h = Harness::new(&[("fast", FAST)], json!({"soak_s": 3}));
    let report = h.run().unwrap();
    assert_eq!(report.decisions[0].decision, DecisionKind::Keep);
    let soak: Vec<_> = h.log.blocks.iter().filter(|b| b.2 == "soak").collect();
    assert_eq!(soak.len(), 1);
    assert!((soak[0].6 - 3.0).abs() < 1e-9, "{soak:?}");
    assert_eq!(
        h.world.calls().last().map(String::as_str),
        Some("keep fast")
    );
}

#[test]
fn baseline_params_are_switched_to_and_the_found_config_restored_at_the_end() {
    let mut h = Harness::new(&[("fast", FAST)], json!({}));
    h.exp = experiment_with(&["fast"], json!({}), json!({"baseline": {"level": 0}}));
    h.judge = ToyJudge::new(&h.exp);
    h.world.behaviour.borrow_mut().insert("fast".into(), SLOW);
    let report = h.run().unwrap();
    assert_eq!(report.decisions[0].decision, DecisionKind::Revert);
    let calls = h.world.calls();
    // The found config is never measured: the baseline params are made live first.
    assert!(!calls.contains(&"probe original".to_owned()), "{calls:?}");
    assert!(calls.contains(&"probe baseline".to_owned()), "{calls:?}");
    assert_eq!(calls[calls.len() - 2..], ["restore", "close"], "{calls:?}");
    assert_eq!(h.world.live(), ORIGINAL);
}
