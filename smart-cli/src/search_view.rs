//! Searches as the CLI shows them: what is live, the path to it, and every judged candidate with
//! its interval against what it was judged against (from the search's state file); in text for
//! `smart history` and `smart status`, and in their `--json`, where a search rides along with
//! the status or decisions of its candidate runs.

use std::fmt::Write as _;
use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;
use smart_core::records::{DecisionRecord, Status};
use smart_core::runner::stored_searches;
use smart_search::SearchView;

/// The searches stored under `state_dir` (only `experiment`'s when given).
pub(crate) fn views(state_dir: &Path, experiment: Option<&str>) -> Vec<SearchView> {
    stored_searches(state_dir)
        .iter()
        .filter_map(SearchView::load)
        .filter(|v| experiment.is_none_or(|name| v.experiment == name))
        .collect()
}

/// What `smart status --json` prints: `status.json` as it is, and, when the run is a search's
/// candidate, the search as it stands.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(title = "Status")]
pub(crate) struct StatusJson {
    /// The contents of `status.json`.
    #[serde(flatten)]
    pub(crate) status: Status,
    /// The search this run is a candidate of (the run's experiment is a search): its space,
    /// candidates with their intervals and verdicts, the path to the best, what is live and the
    /// budget used (docs/search.schema.json). Absent for other experiments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) search: Option<SearchView>,
}

impl StatusJson {
    /// The status with its search, if its experiment is one stored under `state_dir`.
    pub(crate) fn of(status: Status, state_dir: &Path) -> Self {
        let search = views(state_dir, Some(&status.experiment)).pop();
        StatusJson { status, search }
    }
}

/// One item of `smart history --json`: a decision as recorded, and, for a search's candidate,
/// the search as it stands now.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(title = "HistoryEntry")]
pub(crate) struct HistoryEntry {
    /// The decision (docs/engine.md).
    #[serde(flatten)]
    pub(crate) decision: DecisionRecord,
    /// The search whose candidate this decision judged (its experiment is a search): its space,
    /// candidates with their intervals and verdicts, the path to the best, what is live and the
    /// budget used (docs/search.schema.json). Absent for other experiments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) search: Option<SearchView>,
}

/// The decisions with the searches they belong to (`searches` as [`views`] gives them).
pub(crate) fn history_entries(
    decisions: Vec<DecisionRecord>,
    searches: &[SearchView],
) -> Vec<HistoryEntry> {
    decisions
        .into_iter()
        .map(|decision| HistoryEntry {
            search: searches
                .iter()
                .find(|s| s.experiment == decision.experiment)
                .cloned(),
            decision,
        })
        .collect()
}

/// A search in lines: a heading, the path, one line per candidate.
pub(crate) fn text(view: &SearchView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "search {} ({}, {} of {} candidates): live {}",
        view.experiment,
        if view.done { "over" } else { "under way" },
        view.candidates.len(),
        view.max_candidates,
        view.live
    );
    let _ = writeln!(out, "  path: {}", view.path.join(" -> "));
    for c in &view.candidates {
        let _ = writeln!(out, "  {}", candidate_line(c));
    }
    out
}

/// One candidate: its number, what it was judged against, its verdict and interval.
pub(crate) fn candidate_line(c: &smart_search::CandidateView) -> String {
    let change = c.change_pct.map_or_else(
        || "no interval".to_owned(),
        |x| format!("{:+.1} % [{:+.1}, {:+.1}]", x.estimate, x.lower, x.upper),
    );
    format!(
        "#{} {} vs {} ({}): {}, {}{}, {:.0} s",
        c.id,
        c.label,
        c.against,
        c.role,
        c.verdict,
        change,
        if c.guardrail {
            ", a guardrail fired"
        } else {
            ""
        },
        c.seconds
    )
}

/// A search as `smart show NAME` prints it: what is live, the space and budget, every candidate,
/// the path to the best, the final confirmation and the response per integer param.
pub(crate) fn page(view: &SearchView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "search {} ({}): live {}",
        view.experiment,
        if view.done { "over" } else { "under way" },
        view.live
    );
    let _ = writeln!(out, "as found: {}", view.original);
    let _ = writeln!(out, "space:");
    for p in &view.space {
        let _ = writeln!(
            out,
            "  {} in {} ({})",
            p.name,
            p.values.join(", "),
            if p.ordered { "integers" } else { "choices" }
        );
    }
    let time = view
        .max_total_s
        .map_or_else(String::new, |max| format!(" of {max:.0}"));
    let _ = writeln!(
        out,
        "budget: {} of {} candidates, {:.0}{time} s of measuring",
        view.candidates.len(),
        view.max_candidates,
        view.seconds_used
    );
    let _ = writeln!(out, "candidates:");
    if view.candidates.is_empty() {
        let _ = writeln!(out, "  none judged yet");
    }
    for c in &view.candidates {
        let _ = writeln!(out, "  {}", candidate_line(c));
    }
    let _ = writeln!(out, "path to the best: {}", view.path.join(" -> "));
    let confirmation = match (view.confirmation, view.done) {
        (Some("keep"), _) => format!(
            "kept: {} proven against the configuration as found",
            view.live
        ),
        (Some(verdict), _) => format!(
            "failed ({verdict}): the search fell back to the last point proven against the \
             configuration as found, {}",
            view.live
        ),
        (None, true) => "not needed: the result was proven directly against the configuration \
                         as found (or nothing was kept)"
            .to_owned(),
        (None, false) => "not judged yet".to_owned(),
    };
    let _ = writeln!(out, "confirmation: {confirmation}");
    for curve in view.curves.iter().filter(|c| !c.moves.is_empty()) {
        let moves: Vec<String> = curve
            .moves
            .iter()
            .map(|m| {
                format!(
                    "{} -> {}: {:+.1} %{}",
                    m.from,
                    m.to,
                    m.change_pct.estimate,
                    if m.kept { " (kept)" } else { "" }
                )
            })
            .collect();
        let _ = writeln!(out, "response of {}: {}", curve.param, moves.join("; "));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;
    use smart_core::records::DecisionRecord;
    use smart_search::{ChangePct, SearchView};

    use super::{HistoryEntry, StatusJson, history_entries};

    fn docs() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
    }

    /// `docs/NAME` is `schema` as generated, or is rewritten with `SMART_BLESS=1`; the committed
    /// text, parsed.
    fn check_committed(name: &str, schema: &schemars::Schema) -> serde_json::Value {
        let path = docs().join(name);
        let fresh = serde_json::to_string_pretty(schema).unwrap() + "\n";
        if std::env::var_os("SMART_BLESS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "{} is out of date with the output types; regenerate it with `SMART_BLESS=1 cargo \
             test -p smart-cli --bin smart search_view` and commit it",
            path.display()
        );
        serde_json::from_str(&committed).unwrap()
    }

    fn assert_valid(schema: &serde_json::Value, value: &serde_json::Value) {
        let validator = jsonschema::validator_for(schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\n{value:#}");
    }

    /// A done search of `level` that kept 5, then 9 over 5, then confirmed 9 against 1.
    fn view() -> SearchView {
        let change = |estimate: f64| ChangePct {
            estimate,
            lower: estimate - 3.0,
            upper: estimate + 3.0,
        };
        let candidate = |id: u32, label: &str, against: &str, role: &'static str, x: f64| {
            smart_search::CandidateView {
                id,
                label: label.to_owned(),
                against: against.to_owned(),
                role,
                verdict: "keep",
                change_pct: Some(change(x)),
                guardrail: false,
                seconds: 40.0,
            }
        };
        SearchView {
            experiment: "levels".to_owned(),
            original: "level=1".to_owned(),
            space: vec![smart_search::ParamView {
                name: "level".to_owned(),
                values: vec!["1".to_owned(), "5".to_owned(), "9".to_owned()],
                ordered: true,
            }],
            candidates: vec![
                candidate(1, "level=5", "level=1", "step", -10.0),
                candidate(2, "level=9", "level=5", "step", -8.0),
                candidate(3, "level=9", "level=1", "confirmation", -17.0),
            ],
            path: vec!["level=1".into(), "level=5".into(), "level=9".into()],
            live: "level=9".to_owned(),
            done: true,
            confirmation: Some("keep"),
            max_candidates: 3,
            max_total_s: None,
            seconds_used: 120.0,
            curves: Vec::new(),
        }
    }

    fn decision(experiment: &str) -> DecisionRecord {
        serde_json::from_value(json!({
            "run_id": format!("{experiment}-r1"), "experiment": experiment,
            "definition_hash": "abc", "variant": "v", "decision": "keep", "metric": "p50",
            "cycles": 6, "reasons": ["faster"], "started": "2026-12-03T12:00:00Z",
            "finished": "2026-12-03T12:01:00Z", "report": {},
            "p50_change_pct": -10.0, "p50_change_bounds_pct": {"lower": -13.0, "upper": -7.0},
            "error_rate_change_pp": 0.0, "error_rate_change_bounds_pp": null, "p_value": 0.01
        }))
        .unwrap()
    }

    #[test]
    fn the_committed_schemas_are_current() {
        check_committed("status.schema.json", &schemars::schema_for!(StatusJson));
        check_committed(
            "history.schema.json",
            &schemars::schema_for!(Vec<HistoryEntry>),
        );
        check_committed("search.schema.json", &smart_search::search_schema());
    }

    /// A search's decisions carry the search; others do not; the whole satisfies the schema.
    #[test]
    fn history_json_carries_the_search_of_its_candidates() {
        let schema = check_committed(
            "history.schema.json",
            &schemars::schema_for!(Vec<HistoryEntry>),
        );
        let entries = history_entries(vec![decision("levels"), decision("gzip")], &[view()]);
        let output = serde_json::to_value(&entries).unwrap();
        assert_valid(&schema, &output);
        assert_eq!(output[0]["decision"], "keep");
        assert_eq!(output[0]["search"]["experiment"], "levels");
        assert_eq!(output[0]["search"]["live"], "level=9");
        assert_eq!(output[0]["search"]["done"], true);
        assert_eq!(output[0]["search"]["confirmation"], "keep");
        assert_eq!(
            output[0]["search"]["path"],
            json!(["level=1", "level=5", "level=9"])
        );
        assert_eq!(output[0]["search"]["candidates"][1]["against"], "level=5");
        assert_eq!(
            output[0]["search"]["candidates"][2]["change_pct"]["upper"],
            -14.0
        );
        assert_eq!(output[0]["search"]["seconds_used"], 120.0);
        assert!(output[1].get("search").is_none(), "{output:#}");
        assert_eq!(output[1]["experiment"], "gzip");
    }

    /// A status without a search prints as status.json does; the schema takes both.
    #[test]
    fn status_json_adds_the_search_only_for_a_search() {
        let schema = check_committed("status.schema.json", &schemars::schema_for!(StatusJson));
        let status: smart_core::records::Status = serde_json::from_value(json!({
            "state": "finished", "pid": 1, "run_id": "levels-r3", "experiment": "levels",
            "phase": "finished", "variants": 1, "elapsed_s": 30.0, "left_s": 0.0,
            "end": "completed", "decisions": [["level-9", "keep"]],
            "updated": "2026-12-03T12:00:00Z"
        }))
        .unwrap();
        let plain = serde_json::to_value(&status).unwrap();
        let without = StatusJson {
            status: status.clone(),
            search: None,
        };
        assert_eq!(serde_json::to_value(&without).unwrap(), plain);
        let with = serde_json::to_value(StatusJson {
            status,
            search: Some(view()),
        })
        .unwrap();
        assert_valid(&schema, &with);
        assert_valid(&schema, &plain);
        assert_eq!(with["search"]["candidates"].as_array().unwrap().len(), 3);
        assert_eq!(with["run_id"], "levels-r3");
    }

    #[test]
    fn the_page_shows_the_space_candidates_path_and_confirmation() {
        let page = super::page(&view());
        for line in [
            "search levels (over): live level=9",
            "as found: level=1",
            "  level in 1, 5, 9 (integers)",
            "budget: 3 of 3 candidates, 120 s of measuring",
            "  #2 level=9 vs level=5 (step): keep, -8.0 % [-11.0, -5.0], 40 s",
            "  #3 level=9 vs level=1 (confirmation): keep, -17.0 % [-20.0, -14.0], 40 s",
            "path to the best: level=1 -> level=5 -> level=9",
            "confirmation: kept: level=9 proven against the configuration as found",
        ] {
            assert!(page.contains(line), "{line:?} missing:\n{page}");
        }
    }
}
