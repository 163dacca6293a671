//! One case per rule of the `search` section: each input gives exactly the expected problems.

use serde_json::{Value, json};

use crate::support::{base, check, validate_text, with};

/// The base experiment with its variants replaced by a search over the two params it renders.
fn searching() -> Value {
    let mut input = with(base(), "variants", None);
    input = with(
        input,
        "search",
        Some(json!({
            "params": {
                "max": {"min": 1000, "max": 64000, "scale": "log"},
                "inactive": {"choices": ["10s", "20s", "60s"]}
            },
            "budget": {"max_candidates": 10}
        })),
    );
    with(input, "schedule", Some(json!({"max_cycles": 16})))
}

fn check_search(path: &str, new: Option<Value>, expected: &[&str]) {
    check(&with(searching(), path, new).to_string(), expected);
}

#[test]
fn a_search_validates_and_lists_no_variants() {
    let experiment = validate_text(&searching().to_string()).unwrap();
    assert!(experiment.variants().is_empty());
    let spec = experiment.definition().search.as_ref().unwrap();
    // The start defaults to the middle of each domain: 1000·2^k up to 64000 has 7 values.
    assert_eq!(spec.start.as_ref().unwrap()["max"].to_string(), "8000");
    assert_eq!(spec.start.as_ref().unwrap()["inactive"].to_string(), "20s");
    assert_eq!(spec.confidence, 0.99);
}

#[test]
fn the_start_comes_from_the_baseline_when_it_is_on_the_grid() {
    let input = with(
        searching(),
        "baseline",
        Some(json!({"max": 2000, "inactive": "60s"})),
    );
    let experiment = validate_text(&input.to_string()).unwrap();
    let start = experiment
        .definition()
        .search
        .as_ref()
        .unwrap()
        .start
        .clone();
    assert_eq!(start.unwrap()["max"].to_string(), "2000");
}

#[test]
fn search_with_variants_or_matrix_is_refused() {
    check(
        &with(
            searching(),
            "variants",
            Some(json!([{"name": "a", "params": {"max": 1, "inactive": "1s"}}])),
        )
        .to_string(),
        &["search: given together with \"variants\" or \"matrix\"; give one of them"],
    );
}

#[test]
fn domains_are_checked_field_by_field() {
    check_search(
        "search.params.max",
        Some(json!({"min": 9, "max": 1})),
        &["search.params.max: min 9 is above max 1; swap them or fix one"],
    );
    check_search(
        "search.params.max",
        Some(json!({"min": 0, "max": 64, "scale": "log"})),
        &["search.params.max: min 0 is below 1 on a log scale"],
    );
    check_search(
        "search.params.max",
        Some(json!({"min": 1, "max": 64, "step": 2, "scale": "log"})),
        &["search.params.max: gives step with \"scale\": \"log\""],
    );
    check_search(
        "search.params.max",
        Some(json!({"min": 1, "max": 1000000})),
        &["search.params.max: holds 1000000 values, more than 10000; raise step"],
    );
    check_search(
        "search.params.max",
        Some(json!({"min": 5, "max": 5})),
        &["search.params.max: holds only the value 5; give a max above min"],
    );
    check_search(
        "search.params.max",
        Some(json!({"min": 1, "max": 9, "scale": "cubic"})),
        &["search.params.max.scale: \"cubic\" is not a scale; use \"linear\""],
    );
    check_search(
        "search.params.max",
        Some(json!({"min": 1, "max": 9, "choices": ["a"]})),
        &["search.params.max: mixes \"choices\" with range keys (min, max, step, scale)"],
    );
    check_search(
        "search.params.max",
        Some(json!({"max": 9})),
        &["search.params.max.min: missing; add it"],
    );
    check_search(
        "search.params.inactive",
        Some(json!({"choices": ["10s", "10s"]})),
        &["search.params.inactive.choices[1]: \"10s\" is listed twice"],
    );
    check_search(
        "search.params.inactive",
        Some(json!({"choices": ["10s"]})),
        &["search.params.inactive.choices: needs at least two choices"],
    );
    check_search(
        "search.params.inactive",
        Some(json!("20s")),
        &["search.params.inactive: expected a range like {\"min\": 1, \"max\": 9} or choices"],
    );
    check_search(
        "search.params.Max",
        Some(json!({"min": 1, "max": 9})),
        &["search.params.Max: \"Max\" is not a param name"],
    );
}

#[test]
fn every_searched_param_must_be_used_and_every_placeholder_searched() {
    check_search(
        "search.params.inactive",
        None,
        &["apply.files[0].template: line 1, column"],
    );
}

#[test]
fn constraints_name_integer_params_and_the_start_meets_them() {
    let two_ints = with(
        searching(),
        "search.params.inactive",
        Some(json!({"choices": ["10s", "20s"]})),
    );
    let input = with(
        two_ints.clone(),
        "search.constraints",
        Some(json!([{"left": "max", "op": "=>", "right": "nothing"}])),
    );
    check(
        &input.to_string(),
        &[
            "search.constraints[0].op: \"=>\" is not a comparison",
            "search.constraints[0].right: \"nothing\" is not a param of search.params",
        ],
    );
    let input = with(
        two_ints,
        "search.constraints",
        Some(json!([{"left": "max", "op": "<", "right": "inactive"}])),
    );
    check(
        &input.to_string(),
        &["search.constraints[0].right: \"inactive\" is a choice param"],
    );
    let mut input = with(
        searching(),
        "search.params.min_uses",
        Some(json!({"min": 1, "max": 10})),
    );
    input = with(
        input,
        "apply.files.0.template",
        Some(json!(
            "open_file_cache max={{ max }} inactive={{ inactive }};\nopen_file_cache_min_uses {{ min_uses }};\n"
        )),
    );
    input = with(
        input,
        "search.constraints",
        Some(json!([{"left": "min_uses", "op": ">", "right": "max"}])),
    );
    check(
        &input.to_string(),
        &[
            "search.constraints: the start (inactive=20s, max=8000, min_uses=5) breaks the constraint min_uses > max",
        ],
    );
}

#[test]
fn the_start_must_be_a_point_of_the_space() {
    check_search(
        "search.start",
        Some(json!({"max": 3000, "inactive": "20s"})),
        &["search.start.max: 3000 is not a value of the domain of \"max\" (1000, 2000, … 64000)"],
    );
    check_search(
        "search.start",
        Some(json!({"max": 4000})),
        &["search.start: gives no value for \"inactive\""],
    );
    check_search(
        "search.start",
        Some(json!({"max": 4000, "inactive": "20s", "other": 1})),
        &["search.start.other: is not a searched param"],
    );
}

#[test]
fn budget_objective_and_confidence_have_ranges() {
    check_search(
        "search.budget.max_candidates",
        Some(json!(1)),
        &["search.budget.max_candidates: expected a whole number from 2 to 200, found 1"],
    );
    check_search(
        "search.budget.max_total_s",
        Some(json!(600)),
        &["search.budget.max_total_s: is 600 s, less than two candidates' worst case"],
    );
    check_search(
        "search.objective",
        Some(json!("p95")),
        &["search.objective: \"p95\" is not an objective"],
    );
    check_search(
        "search.confidence",
        Some(json!(1)),
        &["search.confidence: expected a number greater than 0 and below 1, found 1"],
    );
    check_search(
        "search.budget.candidates",
        Some(json!(5)),
        &["search.budget.candidates: unknown key; did you mean \"max_candidates\"?"],
    );
    check_search(
        "decision",
        Some(json!({"metric": "p99"})),
        &["decision.metric: is \"p99\" but search.objective is \"p50\""],
    );
}

#[test]
fn the_schedule_must_be_able_to_reach_each_candidates_confidence() {
    check_search(
        "schedule.max_cycles",
        Some(json!(8)),
        &[
            "schedule.max_cycles: is 8, too few for a search: each of its 10 candidates is judged at confidence 0.99900",
        ],
    );
}
