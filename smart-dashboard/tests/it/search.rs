//! A search on the index page, from a fixture state file as `smart run` writes it
//! (`STATE_DIR/searches/NAME.json`): every candidate with what it was judged against and its
//! interval, the path to what is live, and a response curve per param as inline SVG.

use std::fs;

use serde_json::json;
use smart_core::engine::Verdict;
use smart_core::runner::{SearchStep, Strategy, state_path};
use smart_core::validate::{ApplyBy, validate_text};
use smart_core::{Defaults, Experiment};
use smart_search::{ChangePct, Judged, PatternSearch, Space};

use crate::render;

/// Levels 1, 5 and 9 from level 1; the judge keeps 5 over 1 (−9 %) and not 9 over 5 (+5 %).
fn fixture(state_dir: &std::path::Path) {
    let text = r#"{
        "name": "levels",
        "target": {"urls": ["http://127.0.0.1/"]},
        "apply": {"files": [{"path": "/etc/t.conf", "template": "level {{ level }};\n"}]},
        "baseline": {"level": 1},
        "search": {"params": {"level": {"min": 1, "max": 9, "step": 4}},
                   "budget": {"max_candidates": 3}, "confidence": 0.9},
        "schedule": {"max_cycles": 8}
    }"#;
    let experiment: Experiment =
        validate_text(text, "levels.json".as_ref(), &Defaults::default()).unwrap();
    let space = Space::new(experiment.definition().search.as_ref().unwrap()).unwrap();
    let mut search = PatternSearch.start(&experiment).unwrap();
    while let SearchStep::Test { id, .. } = PatternSearch
        .next(&experiment, &mut search, ApplyBy::Smart)
        .unwrap()
    {
        let point = search.pending().unwrap().point.clone();
        let (verdict, estimate) = match space.params(&point)["level"].to_string().as_str() {
            "5" => (Verdict::Keep, -9.0),
            _ => (Verdict::Revert, 5.0),
        };
        let change_pct = Some(ChangePct {
            estimate,
            lower: estimate - 2.0,
            upper: estimate + 2.0,
        });
        let judged = Judged {
            verdict,
            guardrail: false,
            seconds: 31.0,
            change_pct,
        };
        search.record(&space, id, judged).unwrap();
    }
    let stored = json!({
        "definition_hash": experiment.definition_hash(),
        "definition": experiment.definition(),
        "running": null,
        "kept_runs": ["20260101T000000Z-levels-0001"],
        "done": true,
        "state": search,
    });
    let path = state_path(state_dir, "levels");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, stored.to_string()).unwrap();
}

#[test]
fn the_index_shows_a_search_with_its_candidates_path_and_response_curve() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    fixture(state.path());
    render(state.path(), out.path());
    let html = fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(html.contains("<h2>Search: levels</h2>"), "{html}");
    assert!(html.contains("over, 2 of 3 candidates"), "{html}");
    assert!(html.contains("Live: <code>level=5</code>"), "{html}");
    assert!(html.contains("level=1 → level=5"), "{html}");
    assert!(
        html.contains("<td>1</td><td><code>level=5</code></td><td><code>level=1</code></td><td>step</td><td>keep</td><td>-9.0 % [-11.0, -7.0]</td><td>31 s</td>"),
        "{html}"
    );
    assert!(
        html.contains("<td>revert</td><td>+5.0 % [+3.0, +7.0]</td>"),
        "{html}"
    );
    assert!(
        html.contains(r#"<svg class="chart" id="curve-levels-level""#),
        "{html}"
    );
    assert!(
        html.contains("response of the objective to level"),
        "{html}"
    );
}

#[test]
fn no_search_no_section() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    render(&state.path().join("not-yet"), out.path());
    let html = fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(!html.contains("Search:"), "{html}");
}
