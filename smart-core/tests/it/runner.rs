//! The run loop over a real experiments dir and state dir, with the engine's fakes and simulated
//! time: which experiments run, that a decision takes an experiment out of the queue, that named
//! ones run again, and that a watching loop picks up a new file after its rescan wait.

use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use serde_json::json;
use smart_core::engine::sim::block_on;
use smart_core::engine::{AdviceAction, CancelToken, ClockPort, EngineError, RunConfig, RunReport};
use smart_core::records::Records;
use smart_core::runner::{Bench, LoopConfig, LoopEnd, Parts, Repeat, RunWindow, Runner, Selection};
use smart_core::{Defaults, Experiment};

use crate::fakes::{FAST, FakeApplier, FakeCoach, FakeProbe, ToyJudge, World};

const RESCAN: Duration = Duration::from_secs(60);

/// Writes a valid experiment named `name` (one variant, `fast`) into `dir`.
fn write_experiment(dir: &Path, name: &str) {
    let value = json!({
        "name": name,
        "target": {"urls": ["http://127.0.0.1:8080/"]},
        "apply": {"files": [{"path": "/etc/nginx/conf.d/t.conf", "template": "level {{ level }};\n"}]},
        "variants": [{"name": "fast", "params": {"level": 1}}],
        "schedule": {"cooldown_s": 2, "block_s": 10, "max_cycles": 6, "soak_s": 30, "max_duration_s": 7200},
    });
    std::fs::write(dir.join(format!("{name}.json")), value.to_string()).unwrap();
}

/// The fakes as a bench; it records which experiments ran (and when, in simulated seconds), and
/// after the run numbered `add_after` adds experiment `late` to the directory, as a user would.
struct FakeBench {
    world: Rc<World>,
    state_dir: std::path::PathBuf,
    experiments_dir: std::path::PathBuf,
    coach: FakeCoach,
    ran: Vec<(String, f64)>,
    add_after: Option<usize>,
    cancel_after: Option<usize>,
    /// Each wait for the run window: experiment, when (simulated seconds), how long.
    waits: Vec<(String, f64, Duration)>,
    /// Trip the stop when the loop starts waiting for the window.
    cancel_on_wait: bool,
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
        _run: &RunConfig,
    ) -> Result<Parts<FakeProbe, FakeApplier, ToyJudge, Records>, Self::Error> {
        let at = self.world.clock.monotonic().as_secs_f64();
        self.ran.push((experiment.name().to_owned(), at));
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
        _experiment: &Experiment,
        _parts: Parts<FakeProbe, FakeApplier, ToyJudge, Records>,
        outcome: Result<&RunReport, &EngineError>,
    ) -> Result<(), Self::Error> {
        assert!(outcome.is_ok(), "{outcome:?}");
        if self.add_after == Some(self.ran.len()) {
            write_experiment(&self.experiments_dir, "late");
        }
        if self.cancel_after == Some(self.ran.len()) {
            self.world.cancel.cancel();
        }
        Ok(())
    }

    fn waiting(&mut self, experiment: &Experiment, _window: &RunWindow, wait: Duration) {
        let at = self.world.clock.monotonic().as_secs_f64();
        self.waits.push((experiment.name().to_owned(), at, wait));
        if self.cancel_on_wait {
            self.world.cancel.cancel();
        }
    }
}

struct Setup {
    _temp: tempfile::TempDir,
    bench: FakeBench,
}

fn setup(names: &[&str]) -> Setup {
    let temp = tempfile::tempdir().unwrap();
    let experiments_dir = temp.path().join("experiments");
    std::fs::create_dir(&experiments_dir).unwrap();
    for name in names {
        write_experiment(&experiments_dir, name);
    }
    let bench = FakeBench {
        world: World::new(&[("fast", FAST)]),
        state_dir: temp.path().join("state"),
        experiments_dir,
        coach: FakeCoach::new(AdviceAction::Revert),
        ran: Vec::new(),
        add_after: None,
        cancel_after: None,
        waits: Vec::new(),
        cancel_on_wait: false,
    };
    Setup { _temp: temp, bench }
}

fn config(bench: &FakeBench, selection: Selection, repeat: Repeat) -> LoopConfig {
    LoopConfig {
        experiments_dir: bench.experiments_dir.clone(),
        state_dir: bench.state_dir.clone(),
        defaults: Defaults::default(),
        apply_by: Default::default(),
        selection,
        repeat,
        seed: Some(7),
        window: None,
    }
}

fn run_loop(bench: &mut FakeBench, selection: Selection, repeat: Repeat) -> LoopEnd {
    let runner = Runner::new(config(bench, selection, repeat)).unwrap();
    let clock = bench.world.clock.clone();
    let cancel: CancelToken = bench.world.cancel.clone();
    block_on(&clock, runner.run(&clock, &cancel, bench)).unwrap()
}

fn names(bench: &FakeBench) -> Vec<&str> {
    bench.ran.iter().map(|(name, _)| name.as_str()).collect()
}

#[test]
fn once_runs_every_undecided_experiment_and_a_decision_takes_it_out_of_the_queue() {
    let mut s = setup(&["alpha", "beta"]);
    let end = run_loop(&mut s.bench, Selection::Pending, Repeat::Once);
    assert_eq!(names(&s.bench), ["alpha", "beta"]);
    assert_eq!((end.runs, end.failed, end.stopped), (2, false, false));
    let again = Runner::new(config(&s.bench, Selection::Pending, Repeat::Once)).unwrap();
    assert!(again.pending().is_empty(), "{:?}", again.pending());
    // An edited definition is a new one: it runs again.
    let path = s.bench.experiments_dir.join("beta.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("level {{ level }}", "level  {{ level }}"),
    )
    .unwrap();
    let edited = Runner::new(config(&s.bench, Selection::Pending, Repeat::Once)).unwrap();
    let pending: Vec<&str> = edited.pending().iter().map(|e| e.name()).collect();
    assert_eq!(pending, ["beta"]);
}

#[test]
fn named_experiments_run_once_decided_or_not_even_when_watching() {
    let mut s = setup(&["alpha", "beta"]);
    run_loop(&mut s.bench, Selection::Pending, Repeat::Once);
    let named = Selection::Named(vec!["beta".to_owned()]);
    let end = run_loop(&mut s.bench, named, Repeat::Watch { rescan: RESCAN });
    assert_eq!(names(&s.bench), ["alpha", "beta", "beta"]);
    assert_eq!(end.runs, 1);
    let unknown = Runner::new(config(
        &s.bench,
        Selection::Named(vec!["gamma".to_owned()]),
        Repeat::Once,
    ))
    .unwrap_err();
    assert!(
        unknown
            .to_string()
            .starts_with("no experiment named `gamma`")
            && unknown.to_string().ends_with("known: alpha, beta"),
        "{unknown}"
    );
}

#[test]
fn a_watching_loop_runs_a_new_file_after_its_rescan_wait_until_cancelled() {
    let mut s = setup(&["alpha"]);
    s.bench.add_after = Some(1);
    s.bench.cancel_after = Some(2);
    let end = run_loop(
        &mut s.bench,
        Selection::Pending,
        Repeat::Watch { rescan: RESCAN },
    );
    assert_eq!(names(&s.bench), ["alpha", "late"]);
    // Cancelled between runs: nothing was cut short.
    assert_eq!((end.runs, end.failed, end.stopped), (2, false, false));
    let gap = s.bench.ran[1].1 - s.bench.ran[0].1;
    assert!(
        gap >= RESCAN.as_secs_f64(),
        "late started {gap} s after alpha"
    );
}

#[test]
fn an_invalid_file_stops_the_queue_before_anything_runs() {
    let s = setup(&["alpha"]);
    std::fs::write(s.bench.experiments_dir.join("broken.json"), "{").unwrap();
    let err = Runner::new(config(&s.bench, Selection::Pending, Repeat::Once)).unwrap_err();
    assert!(err.is_bad_input());
    assert!(
        err.to_string().starts_with("1 experiment file in "),
        "{err}"
    );
}

fn window(text: &str) -> Option<RunWindow> {
    Some(RunWindow::parse(text).unwrap())
}

#[test]
fn runs_start_only_when_their_time_box_fits_in_the_run_window() {
    // The simulated clock starts at 00:00 UTC; each experiment's time box is 2 h.
    let mut s = setup(&["alpha", "beta", "gamma"]);
    let mut config = config(&s.bench, Selection::Pending, Repeat::Once);
    // Open 2 h 3 min: room for one 2 h time box and a few minutes' delay.
    config.window = window("02:00-04:03 UTC");
    let runner = Runner::new(config).unwrap();
    let clock = s.bench.world.clock.clone();
    let cancel: CancelToken = s.bench.world.cancel.clone();
    let end = block_on(&clock, runner.run(&clock, &cancel, &mut s.bench)).unwrap();
    assert_eq!(names(&s.bench), ["alpha", "beta", "gamma"]);
    assert_eq!((end.runs, end.failed, end.stopped), (3, false, false));
    let started = |i: usize| s.bench.ran[i].1;
    // alpha waits for the window to open; beta follows at once, its 2 h still fitting.
    assert_eq!(started(0), 2.0 * 3600.0);
    assert!(
        started(1) > started(0) && started(1) < 2.0 * 3600.0 + 180.0,
        "beta at {} s",
        started(1)
    );
    // Less than 2 h are left after beta: gamma waits for the next day's window.
    assert_eq!(started(2), 26.0 * 3600.0);
    let waited: Vec<&str> = s.bench.waits.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(waited, ["alpha", "gamma"]);
    for (name, at, wait) in &s.bench.waits {
        let opens = (at + wait.as_secs_f64()) / 3600.0;
        assert!(
            opens == 2.0 || opens == 26.0,
            "{name} waited until {opens} h"
        );
    }
}

#[test]
fn a_stop_while_waiting_for_the_window_ends_the_loop_and_an_unfitting_time_box_is_refused() {
    let mut s = setup(&["alpha"]);
    let mut config = config(&s.bench, Selection::Pending, Repeat::Once);
    config.window = window("03:00-06:00 UTC");
    let runner = Runner::new(config.clone()).unwrap();
    let clock = s.bench.world.clock.clone();
    let cancel: CancelToken = s.bench.world.cancel.clone();
    s.bench.cancel_on_wait = true;
    let end = block_on(&clock, runner.run(&clock, &cancel, &mut s.bench)).unwrap();
    assert!(s.bench.ran.is_empty());
    assert_eq!((end.runs, end.failed, end.stopped), (0, false, true));

    config.window = window("02:00-03:30 UTC");
    let err = Runner::new(config).unwrap_err();
    assert!(err.is_bad_input());
    assert_eq!(
        err.to_string(),
        "run_window 02:00-03:30 UTC is open 1h 30m a day, less than the time box of alpha \
         (max_duration_s = 7200); shorten their schedule.max_duration_s or widen run_window in \
         smart.toml"
    );
}
