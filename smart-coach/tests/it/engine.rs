//! The engine with fake ports and the real coach talking to a real server: extend continues the
//! same test up to `max_cycles`, keep is honoured only within the rules and recorded as
//! `kept-by-coach`, a coach keep never overrides a guardrail, and a coach that fails or says
//! revert leaves the original live.

use std::rc::Rc;

use serde_json::json;
use smart_coach::RemoteCoach;
use smart_core::engine::{
    CancelToken, CoachPort, NoObserver, ObserverPort, Ports, RunConfig, RunReport, Verdict,
};
use smart_core::records::DecisionKind;
use tempfile::TempDir;

use crate::fakes::{FakeApplier, FakeProbe, ORIGINAL, RealClock, ScriptedJudge, World, experiment};
use crate::server::{CoachServer, Reply};
use crate::support::coach;

/// One run of the one-variant test experiment.
pub(crate) async fn run_once<C: CoachPort, O: ObserverPort>(
    world: &Rc<World>,
    judge: &mut ScriptedJudge,
    coach: &mut C,
    observer: &mut O,
    run_id: &str,
) -> RunReport {
    run_with(world, judge, coach, observer, run_id, CancelToken::new()).await
}

/// One run of the one-variant test experiment, cancelled by `cancel`.
async fn run_with<C: CoachPort, O: ObserverPort>(
    world: &Rc<World>,
    judge: &mut ScriptedJudge,
    coach: &mut C,
    observer: &mut O,
    run_id: &str,
    cancel: CancelToken,
) -> RunReport {
    let exp = experiment(judge.max_cycles);
    let config = RunConfig {
        run_id: run_id.to_owned(),
        seed: 7,
        cancel,
    };
    let clock = RealClock::new();
    let ports = Ports {
        probe: &mut FakeProbe(Rc::clone(world)),
        applier: &mut FakeApplier(Rc::clone(world)),
        judge,
        clock: &clock,
        coach,
        observer,
    };
    smart_core::engine::run(&exp, &config, ports).await.unwrap()
}

/// A server that always advises `action`.
async fn advising(action: &str) -> CoachServer {
    CoachServer::start(Reply::Json(
        json!({"action": action, "reason": "from the test coach"}),
    ))
    .await
}

fn advise(server: &CoachServer, allow_keep: bool, state: &TempDir) -> RemoteCoach {
    coach(
        &server.url(),
        &format!("mode = \"advise\"\nallow_keep = {allow_keep}\ntimeout_s = 5"),
        state.path(),
    )
}

#[tokio::test]
async fn extend_continues_the_same_test_up_to_max_cycles() {
    let server = advising("extend").await;
    let state = TempDir::new().unwrap();
    let mut coach = advise(&server, false, &state);
    let world = World::new();
    let mut judge = ScriptedJudge::new(1, 2, 5);
    let report = run_once(
        &world,
        &mut judge,
        &mut coach,
        &mut NoObserver,
        "run-extend",
    )
    .await;
    let d = &report.decisions[0];
    assert_eq!(d.decision, DecisionKind::Inconclusive, "{:?}", d.reasons);
    // Cycles went on from 2 to 5: the statistics were never reset.
    assert_eq!(judge.cycles, [5]);
    assert_eq!(judge.extended, [0]);
    let advice: Vec<u64> = server
        .received()
        .iter()
        .filter(|r| r.path == "/advice")
        .map(|r| r.body["cycles"].as_u64().unwrap())
        .collect();
    assert_eq!(advice, [2, 5], "asked after cycle 2, then at the end");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("all 5 cycles were used")),
        "{:?}",
        d.reasons
    );
    assert_eq!(world.live(), ORIGINAL);
}

#[tokio::test]
async fn keep_is_honoured_only_with_allow_keep_and_recorded_as_kept_by_coach() {
    for allow_keep in [true, false] {
        let server = advising("keep").await;
        let state = TempDir::new().unwrap();
        let mut coach = advise(&server, allow_keep, &state);
        let world = World::new();
        let mut judge = ScriptedJudge::new(1, 2, 6);
        let report = run_once(&world, &mut judge, &mut coach, &mut NoObserver, "run-keep").await;
        let d = &report.decisions[0];
        let results: Vec<String> = server
            .received()
            .iter()
            .filter(|r| r.path == "/results")
            .map(|r| r.body["decision"]["decision"].as_str().unwrap().to_owned())
            .collect();
        if allow_keep {
            assert_eq!(d.decision, DecisionKind::KeptByCoach, "{:?}", d.reasons);
            assert_eq!(world.live(), "v");
            assert_eq!(world.kept.borrow().as_deref(), Some("v"));
            assert_eq!(results, ["kept-by-coach"]);
        } else {
            assert_eq!(d.decision, DecisionKind::Inconclusive, "{:?}", d.reasons);
            assert!(
                d.reasons.iter().any(|r| r.contains("allow_keep is false")),
                "{:?}",
                d.reasons
            );
            assert_eq!(world.live(), ORIGINAL);
            assert_eq!(results, ["inconclusive"]);
        }
    }
}

/// A coach keep never overrides a guardrail: not when the judge saw one, not when the soak
/// trips one, and a variant stopped by one is never even asked about.
#[tokio::test]
async fn a_coach_keep_never_overrides_a_guardrail() {
    // The judge reports a guardrail on an inconclusive variant.
    let server = advising("keep").await;
    let state = TempDir::new().unwrap();
    let mut coach = advise(&server, true, &state);
    let world = World::new();
    let mut judge = ScriptedJudge::new(1, 2, 6);
    judge.judgement.guardrail = Some("p99 rose by 80 %, more than max_p99_increase_pct".into());
    let report = run_once(&world, &mut judge, &mut coach, &mut NoObserver, "run-g1").await;
    let d = &report.decisions[0];
    assert_eq!(d.decision, DecisionKind::Inconclusive, "{:?}", d.reasons);
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("rules forbid") && r.contains("guardrail")),
        "{:?}",
        d.reasons
    );
    assert_eq!(world.live(), ORIGINAL);

    // The error bound does not hold, or the estimate is a regression.
    for (upper, change, why) in [
        (50.0, -2.0, "error rate may rise"),
        (0.1, 3.0, "regression"),
    ] {
        let world = World::new();
        let mut judge = ScriptedJudge::new(1, 2, 6);
        judge
            .judgement
            .estimates
            .error_rate_change_bounds_pp
            .as_mut()
            .unwrap()
            .upper = upper;
        judge.judgement.metric_change_pct = Some(change);
        let report = run_once(&world, &mut judge, &mut coach, &mut NoObserver, "run-g2").await;
        let d = &report.decisions[0];
        assert_eq!(d.decision, DecisionKind::Inconclusive, "{:?}", d.reasons);
        assert!(d.reasons.iter().any(|r| r.contains(why)), "{:?}", d.reasons);
        assert_eq!(world.live(), ORIGINAL);
    }

    // The soak of a coach-kept variant trips a guardrail: reverted.
    let world = World::new();
    // Two interleaved cycles are 8 blocks; the 9th is the first soak block.
    world.broken_after.borrow_mut().insert("v".to_owned(), 8);
    let mut judge = ScriptedJudge::new(1, 2, 6);
    let report = run_once(&world, &mut judge, &mut coach, &mut NoObserver, "run-g3").await;
    let d = &report.decisions[0];
    assert_eq!(d.decision, DecisionKind::Revert, "{:?}", d.reasons);
    assert!(
        d.reasons.iter().any(|r| r.contains("soak failed")),
        "{:?}",
        d.reasons
    );
    assert_eq!(world.live(), ORIGINAL);
    assert!(world.kept.borrow().is_none());

    // A variant stopped by a guardrail in its test is reverted without asking.
    let asked_before = server
        .received()
        .iter()
        .filter(|r| r.path == "/advice")
        .count();
    let world = World::new();
    world.broken_after.borrow_mut().insert("v".to_owned(), 0);
    let mut judge = ScriptedJudge::new(1, 2, 6);
    let report = run_once(&world, &mut judge, &mut coach, &mut NoObserver, "run-g4").await;
    assert_eq!(report.decisions[0].decision, DecisionKind::Revert);
    let asked_after = server
        .received()
        .iter()
        .filter(|r| r.path == "/advice")
        .count();
    assert_eq!(
        asked_before, asked_after,
        "the coach was asked about a guardrail stop"
    );
    assert_eq!(world.live(), ORIGINAL);
}

#[tokio::test]
async fn revert_or_a_failing_coach_leaves_the_original_live() {
    for reply in [
        Reply::Json(json!({"action": "revert", "reason": "not worth it"})),
        Reply::Status(503),
        Reply::Json(json!({"action": "keep"})),
        Reply::Hang,
    ] {
        let server = CoachServer::start(reply.clone()).await;
        let state = TempDir::new().unwrap();
        let mut coach = coach(
            &server.url(),
            "mode = \"advise\"\nallow_keep = true\ntimeout_s = 1",
            state.path(),
        );
        let world = World::new();
        let mut judge = ScriptedJudge::new(1, 2, 6);
        let report = run_once(&world, &mut judge, &mut coach, &mut NoObserver, "run-r").await;
        let d = &report.decisions[0];
        assert_eq!(
            d.decision,
            DecisionKind::Inconclusive,
            "{reply:?}: {:?}",
            d.reasons
        );
        assert_eq!(world.live(), ORIGINAL, "{reply:?}");
        assert!(judge.extended.is_empty());
    }
}

#[tokio::test]
async fn the_judges_own_keep_is_reported_as_keep() {
    let server = advising("revert").await;
    let state = TempDir::new().unwrap();
    let mut coach = advise(&server, true, &state);
    let world = World::new();
    let mut judge = ScriptedJudge::new(1, 2, 6);
    judge.verdict = Verdict::Keep;
    let report = run_once(&world, &mut judge, &mut coach, &mut NoObserver, "run-k").await;
    assert_eq!(report.decisions[0].decision, DecisionKind::Keep);
    let received = server.received();
    assert!(
        received.iter().all(|r| r.path == "/results"),
        "a keep was sent for advice"
    );
    assert_eq!(received[0].body["decision"]["decision"], "keep");
}

/// A cancelled run does not wait for the coach: its decisions are queued at once and sent with
/// the next run.
#[tokio::test]
async fn a_cancelled_run_queues_its_reports_for_the_next_run() {
    let server = CoachServer::start(Reply::Json(json!({}))).await;
    let state = TempDir::new().unwrap();
    let mut coach = coach(&server.url(), "", state.path());
    let world = World::new();
    let mut judge = ScriptedJudge::new(1, 2, 6);
    let cancel = CancelToken::new();
    cancel.cancel();
    let report = run_with(
        &world,
        &mut judge,
        &mut coach,
        &mut NoObserver,
        "run-c",
        cancel,
    )
    .await;
    assert_eq!(report.decisions[0].decision, DecisionKind::Aborted);
    assert!(
        server.received().is_empty(),
        "a cancelled run waited for the coach"
    );
    let lines = crate::support::coach_lines(state.path());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].details["kind"], "deferred");
    let world = World::new();
    let mut judge = ScriptedJudge::new(1, 2, 6);
    run_once(&world, &mut judge, &mut coach, &mut NoObserver, "run-next").await;
    let sent: Vec<(String, bool)> = server
        .received()
        .iter()
        .map(|r| {
            (
                r.body["decision"]["run_id"].as_str().unwrap().to_owned(),
                r.body["queued"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [("run-next".to_owned(), false), ("run-c".to_owned(), true)]
    );
}
