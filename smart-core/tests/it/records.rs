//! Run records written by the engine's records observer and read back: run directories,
//! `metrics.csv`, `status.json` (fresh at every moment of a run), the history of decisions, and
//! the committed JSON Schemas that real output must satisfy.

use std::fs;
use std::path::Path;

use serde_json::json;
use smart_core::audit::{Action, Line, Outcome};
use smart_core::engine::{Event, EventKind, ObserverError, ObserverPort, Phase, RunEnd};
use smart_core::records::{
    self, DecisionKind, METRICS_HEADER, Records, RunState, history_schema, run_schema,
    status_schema,
};

use crate::engine::Harness;
use crate::fakes::{BROKEN, FAST, SLOW};
use crate::support::repo_root;

/// Runs the `fast` win (seed `seed`) with its records under `state_dir`.
fn recorded_run(state_dir: &Path, seed: u64) -> Harness {
    let mut h = Harness::new(&[("fast", FAST), ("slow", SLOW)], json!({}));
    h.seed = seed;
    let mut records = Records::new(state_dir);
    h.run_observed(&mut records).unwrap();
    h
}

#[test]
fn records_are_written_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let h = recorded_run(dir.path(), 1);
    recorded_run(dir.path(), 2);

    let runs = records::list_runs(dir.path()).unwrap();
    assert_eq!(runs.len(), 2);
    let run = records::load_run(dir.path(), &runs[0].plan.run_id).unwrap();
    assert_eq!(run.run.plan.seed, 1);
    assert_eq!(run.run.plan.variants, ["fast", "slow"]);
    let report = run
        .run
        .report
        .as_ref()
        .expect("a finished run has its report");
    assert_eq!(report.end, RunEnd::Completed);
    let kinds: Vec<_> = run.decisions.iter().map(|d| d.decision).collect();
    assert_eq!(kinds, [DecisionKind::Keep, DecisionKind::Revert]);
    assert_eq!(run.decisions, report.decisions);

    // Blocks: numbered from 1, with figures, soak blocks last.
    assert!(run.blocks.len() > 8);
    for (i, b) in run.blocks.iter().enumerate() {
        assert_eq!(b.block.index as usize, i + 1);
        assert!(
            b.figures.requests > 0 && b.figures.p50_us.is_some(),
            "{b:?}"
        );
    }
    let samples = records::load_samples(dir.path(), &runs[0].plan.run_id).unwrap();
    assert_eq!(samples.len(), run.blocks.len());
    assert!(
        samples
            .iter()
            .zip(&run.blocks)
            .all(|(s, b)| s.block == b.block.index && s.latencies_us.len() == b.figures.samples)
    );

    // The definition as run.
    let definition: smart_core::experiment::ExperimentSpec = serde_json::from_slice(
        &fs::read(
            dir.path()
                .join("runs")
                .join(&runs[0].plan.run_id)
                .join("experiment.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(&definition, h.exp.definition());

    // metrics.csv: the header once, one row per block of both runs.
    let csv = fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], METRICS_HEADER);
    assert_eq!(lines.iter().filter(|l| **l == METRICS_HEADER).count(), 1);
    let second = records::load_run(dir.path(), &runs[1].plan.run_id).unwrap();
    assert_eq!(lines.len(), 1 + run.blocks.len() + second.blocks.len());
    let columns = METRICS_HEADER.split(',').count();
    assert!(lines.iter().all(|l| l.split(',').count() == columns));
    assert!(lines[1].starts_with(&format!("{},engine-test,", runs[0].plan.run_id)));

    // History: every decision of both runs, oldest first.
    let history = records::history(dir.path()).unwrap();
    assert_eq!(history.len(), 4);
    assert_eq!(history[0].run_id, runs[0].plan.run_id);
    assert_eq!(history[3].run_id, runs[1].plan.run_id);
}

#[test]
fn every_block_and_decision_is_an_audit_line_in_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(&[("fast", FAST), ("broken", BROKEN)], json!({}));
    h.run_observed(&mut Records::new(dir.path())).unwrap();
    let text = fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let lines: Vec<Line> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = smart_core::audit::verify(dir.path()).unwrap();
    assert_eq!(summary.lines as usize, lines.len());
    let runs = records::list_runs(dir.path()).unwrap();
    let run = records::load_run(dir.path(), &runs[0].plan.run_id).unwrap();
    assert!(lines.iter().all(|l| l.run_id == run.run.plan.run_id));

    // One line per block, in order, with the block's figures; a guardrail stop is `failed`.
    let blocks: Vec<&Line> = lines.iter().filter(|l| l.action == Action::Block).collect();
    assert_eq!(blocks.len(), run.blocks.len());
    for (line, b) in blocks.iter().zip(&run.blocks) {
        let d = &line.details;
        assert_eq!(d["block"], b.block.index, "{d}");
        assert_eq!(d["arm"], b.block.arm_name.as_str(), "{d}");
        assert_eq!(d["variant"], b.block.variant.as_str(), "{d}");
        assert_eq!(d["requests"], b.figures.requests, "{d}");
        assert_eq!(d["errors"], b.figures.errors, "{d}");
        assert_eq!(d["p50_us"], json!(b.figures.p50_us), "{d}");
        let (outcome, aborted) = match &b.figures.aborted {
            Some(reason) => (Outcome::Failed, json!(reason)),
            None => (Outcome::Ok, serde_json::Value::Null),
        };
        assert_eq!((line.outcome, &d["aborted"]), (outcome, &aborted), "{d}");
    }
    assert!(
        blocks
            .iter()
            .any(|l| l.outcome == Outcome::Failed && l.details["arm"] == "broken"),
        "the broken variant's guardrail stop is not logged"
    );

    // One line per decision, after the variant's blocks, with its numbers.
    let decisions: Vec<&Line> = lines
        .iter()
        .filter(|l| l.action == Action::Decision)
        .collect();
    assert_eq!(decisions.len(), run.decisions.len());
    for (line, d) in decisions.iter().zip(&run.decisions) {
        assert_eq!(line.outcome, Outcome::Ok);
        assert_eq!(line.details["variant"], d.variant.as_str());
        assert_eq!(line.details["decision"], json!(d.decision));
        assert_eq!(
            line.details["p50_change_pct"],
            json!(d.estimates.p50_change_pct)
        );
        assert_eq!(line.details["reasons"], json!(d.reasons));
    }
    let kinds: Vec<&serde_json::Value> = decisions.iter().map(|l| &l.details["decision"]).collect();
    assert_eq!(kinds, [&json!("keep"), &json!("revert")]);
}

#[test]
fn a_run_id_that_could_leave_the_runs_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for id in ["../etc", ".hidden", "a/b", ""] {
        let err = records::load_run(dir.path(), id).unwrap_err();
        assert!(err.to_string().contains("is not a run id"), "{id}: {err}");
    }
    let err = records::load_run(dir.path(), "nope").unwrap_err();
    assert!(err.to_string().contains("there is no run `nope`"), "{err}");
    assert!(records::list_runs(dir.path()).unwrap().is_empty());
    assert!(records::read_status(dir.path()).unwrap().is_none());
}

/// Reads `status.json` after every event and checks it is never more than 2 s behind.
struct StatusSpy<'a> {
    state_dir: &'a Path,
    phases: Vec<Phase>,
    worst_lag_s: f64,
    checked: u32,
}

impl ObserverPort for StatusSpy<'_> {
    fn event(&mut self, event: &Event<'_>) -> Result<(), ObserverError> {
        let status = records::read_status(self.state_dir)
            .unwrap()
            .expect("status.json exists from the run's start");
        let lag = event.elapsed.as_secs_f64() - status.elapsed_s;
        self.worst_lag_s = self.worst_lag_s.max(lag);
        self.checked += 1;
        if self.phases.last() != Some(&status.phase) {
            self.phases.push(status.phase);
        }
        if let EventKind::BlockStarted(b) = event.kind {
            assert_eq!(status.block, Some(b.block_in_variant));
            assert_eq!(status.variant.as_deref(), Some(b.variant.as_str()));
        }
        Ok(())
    }
}

#[test]
fn status_json_is_never_more_than_two_seconds_old_during_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(&[("fast", FAST)], json!({}));
    // Slow switches: 5 s of applier work with no probe progress, so only ticks keep it fresh.
    h.applier.switch_s = 5.0;
    let mut observer = (
        Records::new(dir.path()),
        StatusSpy {
            state_dir: dir.path(),
            phases: Vec::new(),
            worst_lag_s: 0.0,
            checked: 0,
        },
    );
    h.run_observed(&mut observer).unwrap();
    let spy = observer.1;
    assert!(spy.checked > 100, "{} events", spy.checked);
    assert!(
        spy.worst_lag_s <= 2.0,
        "status.json lagged {} s",
        spy.worst_lag_s
    );
    for phase in [
        Phase::CheckingBaseline,
        Phase::Measuring,
        Phase::Switching,
        Phase::Soaking,
        Phase::Keeping,
        Phase::Finished,
    ] {
        assert!(
            spy.phases.contains(&phase),
            "{phase:?} not in {:?}",
            spy.phases
        );
    }
    let status = records::read_status(dir.path()).unwrap().unwrap();
    assert_eq!(status.state, RunState::Finished);
    assert_eq!(status.end, Some(RunEnd::Completed));
    assert_eq!(status.decisions, [("fast".to_owned(), DecisionKind::Keep)]);
}

/// Checks a committed schema against the types, or rewrites it with `SMART_BLESS=1`.
fn check_committed(name: &str, schema: &schemars::Schema) -> serde_json::Value {
    let path = repo_root().join("docs").join(name);
    let fresh = serde_json::to_string_pretty(schema).unwrap() + "\n";
    if std::env::var_os("SMART_BLESS").is_some() {
        fs::write(&path, &fresh).unwrap();
    }
    let committed = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is out of date with the types in smart-core/src/records/; regenerate it with \
         `SMART_BLESS=1 cargo test -p smart-core --test it records` and commit it",
        path.display()
    );
    serde_json::from_str(&committed).unwrap()
}

#[test]
fn the_committed_schemas_are_current_and_real_output_satisfies_them() {
    // The committed history and status schemas are those of the CLI's output, which adds a
    // search to these records (smart-cli checks them); the records satisfy the records' own.
    let history = serde_json::to_value(history_schema()).unwrap();
    let status = serde_json::to_value(status_schema()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    recorded_run(dir.path(), 3);
    // Every kind of decision a run can record, in one history.
    let mut h = Harness::new(&[("fast", FAST)], json!({}));
    h.applier.fail_check = true;
    h.seed = 4;
    h.run_observed(&mut Records::new(dir.path())).unwrap();

    let output = serde_json::to_value(records::history(dir.path()).unwrap()).unwrap();
    assert_eq!(output.as_array().unwrap().len(), 3);
    let validator = jsonschema::validator_for(&history).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&output)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The stable fields are there under their documented names.
    for key in [
        "run_id",
        "experiment",
        "variant",
        "decision",
        "p50_change_pct",
        "error_rate_change_pp",
        "reasons",
        "started",
        "finished",
    ] {
        assert!(output[0].get(key).is_some(), "{key} missing");
    }
    assert_eq!(output[2]["decision"], "aborted");

    // `smart show RUN --json` prints a RunRecord: every run here satisfies its schema.
    let run = check_committed("run.schema.json", &run_schema());
    let validator = jsonschema::validator_for(&run).unwrap();
    let runs = records::list_runs(dir.path()).unwrap();
    assert_eq!(runs.len(), 2);
    let mut blocks = 0;
    for file in runs {
        let record = records::load_run(dir.path(), &file.plan.run_id).unwrap();
        blocks += record.blocks.len();
        let output = serde_json::to_value(&record).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&output)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        for key in ["run", "blocks", "decisions"] {
            assert!(output.get(key).is_some(), "{key} missing");
        }
    }
    assert!(blocks > 0, "no run with blocks was checked");

    let written: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("status.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&status).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&written)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
