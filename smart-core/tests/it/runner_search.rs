//! Searches in the run loop, with the engine's fakes and simulated time and a scripted strategy:
//! every candidate is a run through the engine, kept candidates are undone newest first before a
//! test against the configuration as found and before a result that is not live, the state file
//! says where the search stands, a stopped search resumes where it stood (a run cut short is
//! undone first), an ended one leaves the queue, and `Runner::run` leaves searches out.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use smart_core::engine::sim::block_on;
use smart_core::engine::{AdviceAction, CancelToken, EngineError, RunConfig, RunReport};
use smart_core::records::{DecisionRecord, Records};
use smart_core::runner::{
    Bench, LoopConfig, LoopEnd, Parts, Repeat, Runner, SearchBench, SearchOutcome, SearchStep,
    Selection, Strategy, state_path,
};
use smart_core::validate::ApplyBy;
use smart_core::{Defaults, Experiment, validate};

use crate::fakes::{FAST, FakeApplier, FakeCoach, FakeProbe, SLOW, ToyJudge, World};

/// A search experiment over `level` (the scripted strategy ignores its space).
fn write_search(dir: &Path) {
    let value = json!({
        "name": "tune",
        "target": {"urls": ["http://127.0.0.1:8080/"]},
        "apply": {"files": [{"path": "/etc/nginx/conf.d/t.conf", "template": "level {{ level }};\n"}]},
        "search": {"params": {"level": {"min": 1, "max": 9}}},
        "schedule": {"cooldown_s": 2, "block_s": 10, "max_cycles": 12, "soak_s": 30, "max_duration_s": 7200},
    });
    std::fs::write(dir.join("tune.json"), value.to_string()).unwrap();
}

/// The one-variant experiment of a candidate: variant `name` (its behaviour in the fakes' world).
fn candidate(name: &str) -> Experiment {
    let value = json!({
        "name": "tune",
        "target": {"urls": ["http://127.0.0.1:8080/"]},
        "apply": {"files": [{"path": "/etc/nginx/conf.d/t.conf", "template": "level {{ level }};\n"}]},
        "variants": [{"name": name, "params": {"level": 1}}],
        "schedule": {"cooldown_s": 2, "block_s": 10, "max_cycles": 6, "soak_s": 30, "max_duration_s": 7200},
    });
    validate::validate_text(
        &value.to_string(),
        "tune.json".as_ref(),
        &Defaults::default(),
    )
    .unwrap()
}

/// Tests `fast` (kept), `slow` (not kept) against what is live, `fast` again against the
/// configuration as found (kept), then ends on `fast`, reporting it not live (so the loop undoes
/// and applies it).
struct Scripted;

const SCRIPT: [(&str, bool); 3] = [("fast", true), ("slow", false), ("fast", true)];

#[derive(Debug, Default, Serialize, Deserialize)]
struct Script {
    next: usize,
    trials: Vec<(u32, Option<String>)>,
}

impl Strategy for Scripted {
    type State = Script;

    fn start(&self, experiment: &Experiment) -> Result<Script, String> {
        assert_eq!(experiment.name(), "tune");
        Ok(Script::default())
    }

    fn next(&self, _: &Experiment, s: &mut Script, _: ApplyBy) -> Result<SearchStep, String> {
        Ok(match SCRIPT.get(s.next) {
            Some(&(name, from_original)) => SearchStep::Test {
                id: s.next as u32 + 1,
                experiment: candidate(name),
                from_original: from_original && s.next > 0,
            },
            None => SearchStep::Done {
                keep: Some(candidate("fast")),
                live: false,
            },
        })
    }

    fn record(
        &self,
        _: &Experiment,
        s: &mut Script,
        id: u32,
        decision: Option<&DecisionRecord>,
        _seconds: f64,
    ) -> Result<(), String> {
        assert_eq!(
            id,
            s.next as u32 + 1,
            "the verdict of the candidate handed out"
        );
        s.trials
            .push((id, decision.map(|d| d.decision.as_str().to_owned())));
        s.next += 1;
        Ok(())
    }
}

struct FakeBench {
    world: Rc<World>,
    state_dir: PathBuf,
    coach: FakeCoach,
    /// Every run's variant, and every undo as `undo RUN_ID`, in order.
    log: Rc<RefCell<Vec<String>>>,
    /// The run ids the engine ran, in order.
    runs: Vec<String>,
    cancel_after: Option<usize>,
    outcomes: Vec<SearchOutcome>,
}

impl Bench for FakeBench {
    type Probe = FakeProbe;
    type Applier = FakeApplier;
    type Judge = ToyJudge;
    type Coach = FakeCoach;
    type Observer = Records;
    type Error = std::convert::Infallible;

    fn parts(
        &mut self,
        experiment: &Experiment,
        run: &RunConfig,
    ) -> Result<Parts<FakeProbe, FakeApplier, ToyJudge, Records>, Self::Error> {
        self.log
            .borrow_mut()
            .push(format!("run {}", experiment.variants()[0].name));
        self.runs.push(run.run_id.clone());
        Ok(Parts {
            probe: FakeProbe::new(&self.world),
            applier: FakeApplier::new(&self.world),
            judge: ToyJudge::new(experiment),
            observer: Records::new(&self.state_dir),
        })
    }

    fn coach(&mut self) -> &mut FakeCoach {
        &mut self.coach
    }

    fn finished(
        &mut self,
        _: &Experiment,
        _: Parts<FakeProbe, FakeApplier, ToyJudge, Records>,
        outcome: Result<&RunReport, &EngineError>,
    ) -> Result<(), Self::Error> {
        assert!(outcome.is_ok(), "{outcome:?}");
        if self.cancel_after == Some(self.runs.len()) {
            self.world.cancel.cancel();
        }
        Ok(())
    }
}

impl SearchBench for FakeBench {
    async fn undo_keep(&mut self, _experiment: &str, run_id: &str) -> Result<(), Self::Error> {
        self.log.borrow_mut().push(format!("undo {run_id}"));
        Ok(())
    }

    fn search_finished(&mut self, _: &Experiment, outcome: &SearchOutcome) {
        self.outcomes.push(outcome.clone());
    }
}

struct Setup {
    _temp: tempfile::TempDir,
    experiments_dir: PathBuf,
    bench: FakeBench,
}

fn setup() -> Setup {
    let temp = tempfile::tempdir().unwrap();
    let experiments_dir = temp.path().join("experiments");
    std::fs::create_dir(&experiments_dir).unwrap();
    write_search(&experiments_dir);
    let bench = FakeBench {
        world: World::new(&[("fast", FAST), ("slow", SLOW)]),
        state_dir: temp.path().join("state"),
        coach: FakeCoach::new(AdviceAction::Revert),
        log: Rc::default(),
        runs: Vec::new(),
        cancel_after: None,
        outcomes: Vec::new(),
    };
    Setup {
        _temp: temp,
        experiments_dir,
        bench,
    }
}

fn config(s: &Setup) -> LoopConfig {
    LoopConfig {
        experiments_dir: s.experiments_dir.clone(),
        state_dir: s.bench.state_dir.clone(),
        defaults: Defaults::default(),
        apply_by: Default::default(),
        selection: Selection::Pending,
        repeat: Repeat::Once,
        seed: Some(7),
        window: None,
    }
}

fn search_loop(s: &mut Setup) -> LoopEnd {
    let runner = Runner::new(config(s)).unwrap();
    assert_eq!(runner.searches().len(), 1);
    let clock = s.bench.world.clock.clone();
    let cancel: CancelToken = s.bench.world.cancel.clone();
    block_on(
        &clock,
        runner.run_searching(&clock, &cancel, &mut s.bench, &Scripted),
    )
    .unwrap()
}

fn stored(s: &Setup) -> Value {
    let path = state_path(&s.bench.state_dir, "tune");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_search_runs_every_candidate_through_the_engine_and_undoes_its_keeps_before_the_original() {
    let mut s = setup();
    let end = search_loop(&mut s);
    assert_eq!((end.runs, end.failed, end.stopped), (3, false, false));
    let runs = s.bench.runs.clone();
    let undo = |i: usize| format!("undo {}", runs[i]);
    // The kept `fast` is undone before the test against the configuration as found; that test's
    // keep is undone before the result, which is applied as a run of its own.
    assert_eq!(
        *s.bench.log.borrow(),
        [
            "run fast".to_owned(),
            "run slow".to_owned(),
            undo(0),
            "run fast".to_owned(),
            undo(2),
            "run fast".to_owned(),
        ]
    );
    assert!(
        s.bench.world.calls().ends_with(&[
            "check".to_owned(),
            "switch fast".to_owned(),
            "keep fast".to_owned()
        ]),
        "{:?}",
        s.bench.world.calls()
    );
    let state = stored(&s);
    assert_eq!(state["done"], true, "{state}");
    assert_eq!(state["running"], Value::Null);
    assert_eq!(state["kept_runs"], json!([runs[3]]));
    assert_eq!(
        state["state"]["trials"],
        json!([[1, "keep"], [2, "revert"], [3, "keep"]])
    );
    assert!(matches!(
        s.bench.outcomes[..],
        [SearchOutcome::Done { kept: Some(ref k), .. }] if k == "level=1"
    ));
    // Over: the queue leaves it out; named, it says what it kept and runs nothing.
    assert!(Runner::new(config(&s)).unwrap().searches().is_empty());
    let mut named = config(&s);
    named.selection = Selection::Named(vec!["tune".to_owned()]);
    let runner = Runner::new(named).unwrap();
    let clock = s.bench.world.clock.clone();
    let cancel: CancelToken = s.bench.world.cancel.clone();
    let logged = s.bench.log.borrow().len();
    let end = block_on(
        &clock,
        runner.run_searching(&clock, &cancel, &mut s.bench, &Scripted),
    )
    .unwrap();
    assert_eq!(end.runs, 0);
    assert_eq!(s.bench.log.borrow().len(), logged);
    assert_eq!(
        s.bench.outcomes.last(),
        Some(&SearchOutcome::Done {
            kept: Some("level=1".to_owned()),
            candidates: 3
        })
    );
}

#[test]
fn a_stopped_search_resumes_where_it_stood_and_undoes_a_run_cut_short_first() {
    let mut s = setup();
    s.bench.cancel_after = Some(1);
    let end = search_loop(&mut s);
    assert!(end.stopped, "{end:?}");
    assert_eq!(s.bench.outcomes, [SearchOutcome::Stopped]);
    let mut state = stored(&s);
    assert_eq!(state["state"]["trials"], json!([[1, "keep"]]));
    assert_eq!(state["kept_runs"], json!([s.bench.runs[0]]));
    // As if the process had died during the next candidate's run.
    state["running"] = json!("cut-short");
    std::fs::write(
        state_path(&s.bench.state_dir, "tune"),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();

    s.bench.cancel_after = None;
    s.bench.world = World::new(&[("fast", FAST), ("slow", SLOW)]);
    s.bench.log.borrow_mut().clear();
    let end = search_loop(&mut s);
    assert!(!end.stopped && !end.failed, "{end:?}");
    let log = s.bench.log.borrow().clone();
    assert_eq!(log[0], "undo cut-short");
    assert_eq!(
        log[1], "run slow",
        "the next candidate, not the first again"
    );
    assert_eq!(
        stored(&s)["state"]["trials"],
        json!([[1, "keep"], [2, "revert"], [3, "keep"]])
    );
}

#[test]
fn run_without_a_strategy_leaves_searches_out() {
    let mut s = setup();
    let runner = Runner::new(config(&s)).unwrap();
    assert!(runner.pending().is_empty());
    let clock = s.bench.world.clock.clone();
    let cancel: CancelToken = s.bench.world.cancel.clone();
    let end = block_on(&clock, runner.run(&clock, &cancel, &mut s.bench)).unwrap();
    assert_eq!(end.runs, 0);
    assert!(s.bench.log.borrow().is_empty());
    assert!(!state_path(&s.bench.state_dir, "tune").exists());
}
