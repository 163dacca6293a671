//! Retention (`records::prune`): pruning by age and by count, each rule of what is never pruned
//! (each test fails when its rule is taken out), the audit line of every pass, and the states a
//! crash mid-prune can leave.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use smart_core::audit::{self, Action, AuditLog, Line, format_utc};
use smart_core::engine::LiveConfig;
use smart_core::records::{
    self, DecisionKind, Definitions, PRUNING_DIR, Protection, PrunePlan, Records, Retention,
    RunFile,
};

use crate::engine::Harness;
use crate::fakes::{FAST, SLOW};

/// 2026-01-01T00:00:00Z: day 0 of every test's runs.
const DAY0: u64 = 1_767_225_600;

fn day(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(DAY0 + n * 86_400)
}

/// A finished run as the engine writes it (`fast` kept, `slow` reverted), to copy from.
fn template() -> RunFile {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(&[("fast", FAST), ("slow", SLOW)], json!({}));
    h.run_observed(&mut Records::new(dir.path())).unwrap();
    records::list_runs(dir.path()).unwrap().remove(0)
}

/// One run to write: its id, start day, experiment, definition hash and decisions (`None`: the
/// run has no report, it is open).
struct Spec<'a> {
    id: &'a str,
    day: u64,
    experiment: &'a str,
    hash: &'a str,
    decisions: Option<&'a [DecisionKind]>,
}

fn spec<'a>(id: &'a str, day: u64, decisions: Option<&'a [DecisionKind]>) -> Spec<'a> {
    Spec {
        id,
        day,
        experiment: "gzip",
        hash: "h1",
        decisions,
    }
}

const REVERT: Option<&[DecisionKind]> = Some(&[DecisionKind::Revert]);
const ABORTED: Option<&[DecisionKind]> = Some(&[DecisionKind::Aborted]);

/// Writes `spec`'s `run.json`, `decisions.json` and an empty `blocks.jsonl` under `state_dir`.
fn write(state_dir: &Path, template: &RunFile, spec: &Spec<'_>) {
    let mut file = template.clone();
    let started = format_utc(day(spec.day));
    file.plan.run_id = spec.id.to_owned();
    file.plan.experiment = spec.experiment.to_owned();
    file.plan.definition_hash = spec.hash.to_owned();
    file.plan.started = started.clone();
    let report = file.report.as_mut().unwrap();
    let model = report.decisions[0].clone();
    report.run_id = spec.id.to_owned();
    report.experiment = spec.experiment.to_owned();
    report.definition_hash = spec.hash.to_owned();
    report.started = started;
    report.live = LiveConfig::Original;
    report.decisions = spec
        .decisions
        .unwrap_or(&[])
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let mut d = model.clone();
            d.run_id = spec.id.to_owned();
            d.experiment = spec.experiment.to_owned();
            d.definition_hash = spec.hash.to_owned();
            d.variant = format!("v{i}");
            d.decision = *kind;
            if kind.is_kept() {
                report.live = LiveConfig::Variant(d.variant.clone());
            }
            d
        })
        .collect();
    let decisions = report.decisions.clone();
    if spec.decisions.is_none() {
        file.report = None;
    }
    let dir = state_dir.join("runs").join(spec.id);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("run.json"), serde_json::to_vec(&file).unwrap()).unwrap();
    fs::write(dir.join("blocks.jsonl"), "").unwrap();
    if file.report.is_some() {
        fs::write(
            dir.join("decisions.json"),
            serde_json::to_vec(&decisions).unwrap(),
        )
        .unwrap();
    }
}

fn state(specs: &[Spec<'_>]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let template = template();
    for spec in specs {
        write(dir.path(), &template, spec);
    }
    dir
}

fn ids(state_dir: &Path) -> Vec<String> {
    records::list_runs(state_dir)
        .unwrap()
        .into_iter()
        .map(|r| r.plan.run_id)
        .collect()
}

/// A pass at day `now` that does not know the current definitions (every one counts).
fn prune(state_dir: &Path, retention: Retention, now: u64) -> PrunePlan {
    prune_with(state_dir, retention, &Definitions::Unknown, now)
}

fn prune_with(
    state_dir: &Path,
    retention: Retention,
    definitions: &Definitions,
    now: u64,
) -> PrunePlan {
    records::prune(
        state_dir,
        &retention,
        definitions,
        day(now),
        &AuditLog::new(state_dir),
    )
    .unwrap()
}

/// What `smart run` takes as decided: the run of the latest decision that is not aborted, per
/// experiment and definition hash.
fn decided(state_dir: &Path) -> BTreeMap<(String, String), String> {
    records::history(state_dir)
        .unwrap()
        .into_iter()
        .filter(|d| d.decision != DecisionKind::Aborted)
        .map(|d| ((d.experiment, d.definition_hash), d.run_id))
        .collect()
}

#[test]
fn runs_older_than_the_age_limit_are_pruned() {
    let dir = state(&[
        spec("r1", 0, ABORTED),
        spec("r2", 10, ABORTED),
        spec("r3", 25, ABORTED),
        spec("r4", 40, ABORTED),
    ]);
    let plan = prune(dir.path(), Retention::new(30, 100), 50);
    assert_eq!(plan.by_age, ["r1", "r2"]);
    assert!(plan.by_count.is_empty());
    assert_eq!(plan.kept, 2);
    assert_eq!(ids(dir.path()), ["r3", "r4"]);
    assert!(!dir.path().join("runs/r1").exists());
}

#[test]
fn runs_beyond_the_count_limit_are_pruned_oldest_first() {
    let specs: Vec<String> = (0..8).map(|i| format!("r{i}")).collect();
    let dir = state(
        &specs
            .iter()
            .enumerate()
            .map(|(i, id)| spec(id, i as u64, ABORTED))
            .collect::<Vec<_>>(),
    );
    let plan = prune(dir.path(), Retention::new(30, 3), 8);
    assert_eq!(plan.by_count, ["r0", "r1", "r2", "r3", "r4"]);
    assert!(plan.by_age.is_empty());
    assert_eq!(ids(dir.path()), ["r5", "r6", "r7"]);
    // A second pass has nothing left to do and writes no line.
    assert!(prune(dir.path(), Retention::new(30, 3), 8).is_empty());
    assert_eq!(prune_lines(dir.path()).len(), 1);
}

#[test]
fn disabled_retention_removes_nothing() {
    let dir = state(&[spec("r1", 0, ABORTED), spec("r2", 1, ABORTED)]);
    let plan = prune(dir.path(), Retention::new(1, 1).disabled(), 100);
    assert!(plan.is_empty());
    assert_eq!(ids(dir.path()), ["r1", "r2"]);
    assert!(prune_lines(dir.path()).is_empty());
}

#[test]
fn an_open_run_is_never_pruned() {
    let dir = state(&[spec("open", 0, None), spec("done", 1, ABORTED)]);
    let plan = prune(dir.path(), Retention::new(1, 1), 100);
    assert_eq!(plan.protected.get("open"), Some(&Protection::Open));
    assert_eq!(ids(dir.path()), ["open"]);
}

#[test]
fn a_run_that_left_a_variant_live_is_never_pruned() {
    // `old` kept a variant; a newer run decided the same definition again, so `old` is not its
    // latest decision: only the kept decision protects it.
    let dir = state(&[
        spec("old", 0, Some(&[DecisionKind::Revert, DecisionKind::Keep])),
        spec("coach", 1, Some(&[DecisionKind::KeptByCoach])),
        spec("newer", 2, REVERT),
    ]);
    let plan = prune(dir.path(), Retention::new(1, 1), 100);
    assert_eq!(plan.protected.get("old"), Some(&Protection::LeftLive));
    assert_eq!(plan.protected.get("coach"), Some(&Protection::LeftLive));
    assert_eq!(ids(dir.path()), ["old", "coach", "newer"]);
}

#[test]
fn a_run_that_left_the_live_config_unknown_is_never_pruned() {
    let dir = state(&[spec("broken", 0, REVERT), spec("newer", 2, REVERT)]);
    let path = dir.path().join("runs/broken/run.json");
    let mut file: RunFile = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    file.report.as_mut().unwrap().live = LiveConfig::Unknown;
    fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    let plan = prune(dir.path(), Retention::new(1, 1), 100);
    assert_eq!(plan.protected.get("broken"), Some(&Protection::LeftLive));
    assert_eq!(ids(dir.path()), ["broken", "newer"]);
}

#[test]
fn the_latest_decision_of_each_definition_is_never_pruned() {
    let dir = state(&[
        spec("h1-first", 0, REVERT),
        spec("h1-latest", 1, Some(&[DecisionKind::Inconclusive])),
        // Aborted: not a decision `smart run` counts, so it protects nothing.
        spec("h1-aborted", 2, ABORTED),
        Spec {
            hash: "h2",
            ..spec("h2-latest", 3, REVERT)
        },
        Spec {
            experiment: "other",
            ..spec("other-latest", 4, REVERT)
        },
        spec("newest", 5, ABORTED),
    ]);
    let before = decided(dir.path());
    let plan = prune(dir.path(), Retention::new(1, 1), 100);
    assert_eq!(plan.by_age, ["h1-first", "h1-aborted", "newest"]);
    for id in ["h1-latest", "h2-latest", "other-latest"] {
        assert_eq!(plan.protected.get(id), Some(&Protection::Decided), "{id}");
    }
    // What `smart run` takes as decided is unchanged: nothing decided runs again.
    assert_eq!(decided(dir.path()), before);
    assert_eq!(before.len(), 3);
}

#[test]
fn with_the_current_definitions_known_older_definitions_may_go_but_not_an_experiments_latest() {
    let dir = state(&[
        spec("h1", 0, REVERT),
        Spec {
            hash: "h2",
            ..spec("h2", 1, REVERT)
        },
        Spec {
            hash: "h3",
            ..spec("h3-latest", 2, Some(&[DecisionKind::Inconclusive]))
        },
        Spec {
            experiment: "other",
            ..spec("other", 3, REVERT)
        },
        spec("newest", 4, ABORTED),
    ]);
    // gzip's file was edited back to h1; `other` is current as run.
    let current = Definitions::Current(
        [("gzip", "h1"), ("other", "h1")]
            .map(|(n, h)| (n.to_owned(), h.to_owned()))
            .into(),
    );
    let decided_before = decided(dir.path());
    let plan = prune_with(dir.path(), Retention::new(1, 1), &current, 100);
    assert_eq!(plan.by_age, ["h2", "newest"]);
    for id in ["h1", "h3-latest", "other"] {
        assert_eq!(plan.protected.get(id), Some(&Protection::Decided), "{id}");
    }
    // The current definitions' decisions are where `smart run` finds them.
    let decided_after = decided(dir.path());
    for key in [("gzip", "h1"), ("other", "h1")] {
        let key = (key.0.to_owned(), key.1.to_owned());
        assert_eq!(decided_after.get(&key), decided_before.get(&key));
        assert!(decided_after.contains_key(&key));
    }
}

#[test]
fn the_run_status_json_names_is_never_pruned() {
    let dir = state(&[spec("last", 0, ABORTED)]);
    let status = json!({
        "state": "finished", "pid": 1, "run_id": "last", "experiment": "gzip",
        "phase": "finished", "variant": null, "variant_index": null, "variants": 1,
        "arm": null, "block": null, "blocks": null, "elapsed_s": 1.0, "left_s": 0.0,
        "live": null, "end": "completed", "decisions": [], "updated": "2026-01-01T00:00:00.000Z"
    });
    fs::write(dir.path().join("status.json"), status.to_string()).unwrap();
    let plan = prune(dir.path(), Retention::new(1, 1), 100);
    assert_eq!(plan.protected.get("last"), Some(&Protection::Current));
    assert_eq!(ids(dir.path()), ["last"]);
}

fn prune_lines(state_dir: &Path) -> Vec<Line> {
    let Ok(text) = fs::read_to_string(state_dir.join("audit.jsonl")) else {
        return Vec::new();
    };
    text.lines()
        .map(|l| serde_json::from_str::<Line>(l).unwrap())
        .filter(|l| l.action == Action::Prune)
        .collect()
}

#[test]
fn every_pass_is_one_prune_line_in_the_chain_and_counted() {
    let dir = state(&[
        spec("old", 0, ABORTED),
        spec("a", 95, ABORTED),
        spec("b", 96, ABORTED),
        spec("c", 97, ABORTED),
    ]);
    prune(dir.path(), Retention::new(30, 2), 100);
    let lines = prune_lines(dir.path());
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line.details["runs"], json!(["old", "a"]));
    assert_eq!(
        line.details["reason"],
        "older than 30 days (1); more than 2 runs (1)"
    );
    assert_eq!(line.outcome, audit::Outcome::Ok);
    assert_eq!(audit::verify(dir.path()).unwrap().lines, 1);
    let count = records::pruned_count(dir.path()).unwrap();
    assert_eq!(count.runs, 2);
    assert_eq!(count.last.as_deref(), Some(format_utc(day(100)).as_str()));
}

#[test]
fn a_crash_mid_prune_is_finished_by_the_next_pass_and_never_half_read() {
    let dir = state(&[
        spec("a", 0, ABORTED),
        spec("b", 1, ABORTED),
        spec("c", 2, ABORTED),
        spec("d", 99, ABORTED),
    ]);
    let retention = Retention::new(30, 100);
    // The pass that crashed: its line written, `a` moved into the trash and half deleted, `b`
    // and `c` not moved yet.
    let plan =
        records::plan_prune(dir.path(), &retention, &Definitions::Unknown, day(100)).unwrap();
    assert_eq!(plan.runs(), ["a", "b", "c"]);
    let trash = dir.path().join(PRUNING_DIR);
    fs::create_dir_all(&trash).unwrap();
    fs::rename(dir.path().join("runs/a"), trash.join("a")).unwrap();
    fs::remove_file(trash.join("a/run.json")).unwrap();
    // Readers see whole runs only: the moved one is gone, the others are intact.
    assert_eq!(ids(dir.path()), ["b", "c", "d"]);
    assert_eq!(records::history(dir.path()).unwrap().len(), 3);
    let err = records::load_run(dir.path(), "a").unwrap_err();
    assert!(err.to_string().contains("there is no run `a`"), "{err}");

    let plan = prune(dir.path(), retention, 100);
    assert_eq!(plan.by_age, ["b", "c"]);
    assert_eq!(ids(dir.path()), ["d"]);
    assert_eq!(fs::read_dir(&trash).unwrap().count(), 0);
    audit::verify(dir.path()).unwrap();
}

#[test]
fn the_defaults_are_30_days_and_100_runs() {
    let retention = Retention::default();
    assert!(retention.enabled());
    assert_eq!((retention.max_age_days(), retention.max_runs()), (30, 100));
}
