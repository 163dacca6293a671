//! The `search` section: each param's domain, the constraints between params, the start, the
//! budget and the objective, read field by field with one problem per wrong field; then the
//! checks that need the rest of the file (which points render the templates, whether the
//! schedule can decide at the confidence each candidate gets, whether the time budget fits one).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::experiment::{Domain, Metric, Params, Schedule, SearchSpec, VariantSpec};
use crate::reader::{Range, Reader, index, join};
use crate::schedule::{Durations, Plan};

use super::fields::{optional, param_name, params, typed};

/// The keys of the `search` object.
pub(crate) const SEARCH_KEYS: &[&str] = &[
    "params",
    "constraints",
    "start",
    "budget",
    "objective",
    "confidence",
    "min_step_improvement_pct",
    "seed",
];
const RANGE_KEYS: &[&str] = &["min", "max", "step", "scale"];
const CHOICE_KEYS: &[&str] = &["choices"];
const CONSTRAINT_KEYS: &[&str] = &["left", "op", "right", "factor"];
const BUDGET_KEYS: &[&str] = &["max_candidates", "max_total_s"];
/// The most params one search may vary: each costs candidates, and a search over more is better
/// split into several experiments.
pub(crate) const MAX_SEARCH_PARAMS: usize = 8;
/// The most candidates one search may judge.
const MAX_CANDIDATES: i64 = 200;

/// Reads the `search` section; `baseline` supplies the default start when it covers the space.
pub(crate) fn search(
    r: &mut Reader,
    value: &Value,
    baseline: Option<&Params>,
) -> Option<SearchSpec> {
    let field = "search";
    let start = r.count();
    let map = r.object(value, field, SEARCH_KEYS, &|_| None)?;
    let domains = match r.required(
        map,
        field,
        "params",
        "{\"level\": {\"min\": 1, \"max\": 9}}",
    ) {
        Some(v) => domains(r, v),
        None => None,
    };
    if let Some(v) = optional(map, "constraints") {
        constraints(r, v, domains.as_ref());
    }
    if let Some(v) = optional(map, "budget") {
        budget(r, v);
    }
    if let Some(v) = optional(map, "objective")
        && let Some(s) = r.string(
            v,
            "search.objective",
            "\"p50\", \"p90\", \"p99\" or \"mean\"",
        )
        && !["p50", "p90", "p99", "mean"].contains(&s)
    {
        r.problem(
            "search.objective",
            format!("\"{s}\" is not an objective; use \"p50\", \"p90\", \"p99\" or \"mean\""),
        );
    }
    if let Some(v) = optional(map, "confidence") {
        r.number(
            v,
            "search.confidence",
            Range::closed(0.0, 1.0)
                .above_min()
                .below_max()
                .hint("0.99 keeps a false win at most once in 100 searches"),
        );
    }
    if let Some(v) = optional(map, "min_step_improvement_pct") {
        r.number(
            v,
            "search.min_step_improvement_pct",
            Range::closed(0.0, 100.0).below_max(),
        );
    }
    if let Some(v) = optional(map, "seed") {
        r.integer(v, "search.seed", 0, i64::MAX);
    }
    let given_start = match optional(map, "start") {
        Some(v) => params(r, v, "search.start").map(Some),
        None => Some(None),
    };
    if r.count() > start {
        return None;
    }
    let mut spec: SearchSpec = typed(r, start, value, field)?;
    let levels = levels(&spec.params);
    let start_point = match given_start? {
        Some(given) => {
            check_start(r, &given, &levels, "search.start");
            if r.count() > start {
                return None;
            }
            given
        }
        // The baseline's values when it sets every searched param to a value of its domain.
        None => match baseline.map(|b| on_grid(b, &levels)) {
            Some(Some(from_baseline)) => from_baseline,
            _ => middle(&levels),
        },
    };
    if let Some(broken) = broken_constraint(&spec, &start_point) {
        let which = if spec.start.is_some() {
            "search.start"
        } else {
            "search.constraints"
        };
        r.problem(
            which,
            format!(
                "the start ({}) breaks the constraint {broken}; give a \"start\" in search that \
                 meets every constraint",
                label(&start_point)
            ),
        );
        return None;
    }
    spec.start = Some(start_point);
    Some(spec)
}

/// `search.params`: a non-empty object of domains.
fn domains(r: &mut Reader, value: &Value) -> Option<BTreeMap<String, Domain>> {
    let field = "search.params";
    let start = r.count();
    let map = r.map(
        value,
        field,
        "an object of domains like {\"level\": {\"min\": 1, \"max\": 9}}",
    )?;
    if map.is_empty() {
        r.problem(
            field,
            "is empty; give the params to search, like {\"level\": {\"min\": 1, \"max\": 9}}",
        );
    }
    if map.len() > MAX_SEARCH_PARAMS {
        r.problem(
            field,
            format!(
                "has {} params, more than {MAX_SEARCH_PARAMS}; search fewer at once (each costs \
                 candidates) and fix the rest in the templates or `baseline`",
                map.len()
            ),
        );
    }
    for (name, domain) in map {
        let path = join(field, name);
        param_name(r, name, &path);
        one_domain(r, domain, &path);
    }
    if r.count() > start {
        return None;
    }
    typed(r, start, value, field)
}

/// One param's domain: `{"min", "max", "step"?, "scale"?}` or `{"choices": [...]}`.
fn one_domain(r: &mut Reader, value: &Value, field: &str) {
    let start = r.count();
    let Value::Object(map) = value else {
        r.wrong_type(
            field,
            "a range like {\"min\": 1, \"max\": 9} or choices like {\"choices\": [\"on\", \"off\"]}",
            value,
        );
        return;
    };
    if map.contains_key("choices") && RANGE_KEYS.iter().any(|k| map.contains_key(*k)) {
        r.problem(
            field,
            "mixes \"choices\" with range keys (min, max, step, scale); a param is either an \
             integer range or a list of choices, so remove one of them",
        );
        return;
    }
    if map.contains_key("choices") {
        let Some(map) = r.object(value, field, CHOICE_KEYS, &|_| None) else {
            return;
        };
        let path = join(field, "choices");
        let Some(items) = r.array(
            &map["choices"],
            &path,
            "an array of strings like [\"on\", \"off\"]",
        ) else {
            return;
        };
        let mut seen: Vec<&str> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = index(&path, i);
            let Some(s) = r.string(item, &item_path, "a string (integers go in a range)") else {
                continue;
            };
            if s.chars().any(|c| c.is_control() && c != '\t') {
                r.problem(
                    &item_path,
                    "holds a control character; a choice is rendered verbatim into a config line",
                );
            } else if seen.contains(&s) {
                r.problem(
                    &item_path,
                    format!("\"{s}\" is listed twice; list each choice once"),
                );
            }
            seen.push(s);
        }
        if r.count() == start && seen.len() < 2 {
            r.problem(
                &path,
                "needs at least two choices to search; a fixed value belongs in the templates or \
                 `baseline`",
            );
        }
        return;
    }
    let Some(map) = r.object(value, field, RANGE_KEYS, &|_| None) else {
        return;
    };
    let min = r
        .required(map, field, "min", "1")
        .and_then(|v| r.integer(v, &join(field, "min"), i64::MIN, i64::MAX));
    let max = r
        .required(map, field, "max", "9")
        .and_then(|v| r.integer(v, &join(field, "max"), i64::MIN, i64::MAX));
    if let Some(v) = optional(map, "step") {
        r.integer(v, &join(field, "step"), 1, i64::MAX);
    }
    if let Some(v) = optional(map, "scale")
        && let Some(s) = r.string(v, &join(field, "scale"), "\"linear\" or \"log\"")
        && !matches!(s, "linear" | "log")
    {
        r.problem(
            &join(field, "scale"),
            format!("\"{s}\" is not a scale; use \"linear\" (every step) or \"log\" (doublings)"),
        );
    }
    if r.count() > start {
        return;
    }
    let (Some(min), Some(max)) = (min, max) else {
        return;
    };
    let domain: Option<Domain> = serde_json::from_value(value.clone()).ok();
    match domain.map(|d| d.levels()) {
        Some(Ok(levels)) if levels.len() < 2 => r.problem(
            field,
            format!(
                "holds only the value {min}; give a max above min to search it, or fix the value \
                 in the templates or `baseline`"
            ),
        ),
        Some(Ok(_)) => {}
        Some(Err(message)) => r.problem(field, message),
        None => r.problem(
            field,
            format!("could not be read as a range from {min} to {max}"),
        ),
    }
}

/// `search.constraints`: `[{"left", "op", "right", "factor"?}]` between integer params.
fn constraints(r: &mut Reader, value: &Value, domains: Option<&BTreeMap<String, Domain>>) {
    let field = "search.constraints";
    let Some(items) = r.array(
        value,
        field,
        "an array like [{\"left\": \"conns\", \"op\": \">=\", \"right\": \"workers\"}]",
    ) else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let path = index(field, i);
        let Some(map) = r.object(item, &path, CONSTRAINT_KEYS, &|_| None) else {
            continue;
        };
        for side in ["left", "right"] {
            let Some(name) = r
                .required(map, &path, side, "\"workers\"")
                .and_then(|v| r.string(v, &join(&path, side), "a param name"))
            else {
                continue;
            };
            match domains.map(|d| d.get(name)) {
                Some(Some(Domain::Range(_))) | None => {}
                Some(Some(Domain::Choices(_))) => r.problem(
                    &join(&path, side),
                    format!("\"{name}\" is a choice param; constraints compare integer params"),
                ),
                Some(None) => r.problem(
                    &join(&path, side),
                    format!(
                        "\"{name}\" is not a param of search.params; name one of: {}",
                        domains
                            .map(|d| d.keys().cloned().collect::<Vec<_>>().join(", "))
                            .unwrap_or_default()
                    ),
                ),
            }
        }
        if let Some(op) = r
            .required(map, &path, "op", "\">=\"")
            .and_then(|v| r.string(v, &join(&path, "op"), "\"<=\", \"<\", \">=\" or \">\""))
            && !matches!(op, "<=" | "<" | ">=" | ">")
        {
            r.problem(
                &join(&path, "op"),
                format!("\"{op}\" is not a comparison; use \"<=\", \"<\", \">=\" or \">\""),
            );
        }
        if let Some(v) = optional(map, "factor") {
            r.integer(v, &join(&path, "factor"), 1, 1_000_000);
        }
    }
}

/// `search.budget`.
fn budget(r: &mut Reader, value: &Value) {
    let field = "search.budget";
    let Some(map) = r.object(value, field, BUDGET_KEYS, &|_| None) else {
        return;
    };
    if let Some(v) = optional(map, "max_candidates") {
        r.integer(v, &join(field, "max_candidates"), 2, MAX_CANDIDATES);
    }
    if let Some(v) = optional(map, "max_total_s") {
        r.number(
            v,
            &join(field, "max_total_s"),
            Range::positive(31_536_000.0),
        );
    }
}

fn levels(
    domains: &BTreeMap<String, Domain>,
) -> BTreeMap<&str, Vec<crate::experiment::ParamValue>> {
    domains
        .iter()
        .filter_map(|(n, d)| d.levels().ok().map(|l| (n.as_str(), l)))
        .collect()
}

/// Checks a given start: every searched param, each on its domain, nothing else.
fn check_start(
    r: &mut Reader,
    start: &Params,
    levels: &BTreeMap<&str, Vec<crate::experiment::ParamValue>>,
    field: &str,
) {
    for (name, values) in levels {
        match start.get(*name) {
            None => r.problem(
                field,
                format!("gives no value for \"{name}\"; give every searched param a start value"),
            ),
            Some(v) if !values.contains(v) => r.problem(
                &join(field, name),
                format!(
                    "{v} is not a value of the domain of \"{name}\" ({}); pick one of its values",
                    describe_levels(values)
                ),
            ),
            Some(_) => {}
        }
    }
    for name in start.keys() {
        if !levels.contains_key(name.as_str()) {
            r.problem(
                &join(field, name),
                "is not a searched param; remove it, or add it to search.params",
            );
        }
    }
}

fn describe_levels(values: &[crate::experiment::ParamValue]) -> String {
    match values {
        [] => "none".to_owned(),
        [only] => only.to_string(),
        [first, second, .., last] if values.len() > 4 => {
            format!("{first}, {second}, … {last}")
        }
        _ => values
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The baseline's values of the searched params, when every one is on its domain.
fn on_grid(
    baseline: &Params,
    levels: &BTreeMap<&str, Vec<crate::experiment::ParamValue>>,
) -> Option<Params> {
    levels
        .iter()
        .map(|(name, values)| {
            let v = baseline.get(*name)?;
            values.contains(v).then(|| ((*name).to_owned(), v.clone()))
        })
        .collect()
}

/// The middle value of every domain (the lower middle for an even count), as smart-search's
/// `Space::middle` picks it.
fn middle(levels: &BTreeMap<&str, Vec<crate::experiment::ParamValue>>) -> Params {
    levels
        .iter()
        .map(|(name, values)| ((*name).to_owned(), values[(values.len() - 1) / 2].clone()))
        .collect()
}

/// The first constraint the point breaks, written out.
fn broken_constraint(spec: &SearchSpec, point: &Params) -> Option<String> {
    use crate::experiment::ParamValue::Int;
    spec.constraints.iter().find_map(|c| {
        let (Some(Int(l)), Some(Int(rv))) = (point.get(&c.left), point.get(&c.right)) else {
            return None;
        };
        (!c.op.holds(*l, rv.saturating_mul(c.factor))).then(|| {
            let factor = if c.factor == 1 {
                String::new()
            } else {
                format!("{} × ", c.factor)
            };
            format!("{} {} {factor}{}", c.left, c.op.as_str(), c.right)
        })
    })
}

fn label(params: &Params) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The points whose rendering proves the templates: the start, then each param at its lowest
/// and highest value with the others at the start (so a param no template uses, or a template
/// that breaks at a domain's edge, is reported). Named like variants, for the messages.
pub(crate) fn probe_points(spec: &SearchSpec) -> Vec<VariantSpec> {
    let start = spec.start.clone().unwrap_or_default();
    let mut out = vec![VariantSpec {
        name: "search-start".to_owned(),
        params: start.clone(),
    }];
    for (name, domain) in &spec.params {
        let Ok(values) = domain.levels() else {
            continue;
        };
        for (edge, value) in [("lowest", values.first()), ("highest", values.last())] {
            let Some(value) = value.filter(|v| start.get(name) != Some(*v)) else {
                continue;
            };
            let mut params = start.clone();
            params.insert(name.clone(), value.clone());
            out.push(VariantSpec {
                name: format!("search-{name}-{edge}"),
                params,
            });
        }
    }
    out
}

/// Checks across sections: the objective against `decision.metric`, the budget's time against
/// one candidate's worst case, and whether a candidate's test can reach the confidence the
/// search gives it at all.
pub(crate) fn check_with_schedule(
    r: &mut Reader,
    spec: &SearchSpec,
    root: &Map<String, Value>,
    schedule: &Schedule,
    candidate: &Durations,
) {
    let written_metric = root
        .get("decision")
        .and_then(|d| d.get("metric"))
        .and_then(Value::as_str);
    let objective = metric_name(spec.objective);
    if let Some(metric) = written_metric
        && metric != objective
    {
        r.problem(
            "decision.metric",
            format!(
                "is \"{metric}\" but search.objective is \"{objective}\"; a search judges every \
                 candidate on its objective, so remove decision.metric or make them agree"
            ),
        );
    }
    if let Some(max) = spec.budget.max_total_s
        && max < 2.0 * candidate.worst_case_s
    {
        r.problem(
            "search.budget.max_total_s",
            format!(
                "is {max} s, less than two candidates' worst case ({} s each: a step and its \
                 confirmation); raise it to at least {}, or shorten the schedule",
                candidate.worst_case_s.ceil(),
                (2.0 * candidate.worst_case_s).ceil()
            ),
        );
    }
    // The exact sign-flip test over n cycles cannot give a p-value below 2^-n: a schedule whose
    // cycles cannot reach the share of alpha each candidate gets can never keep anything.
    let per_test_alpha = (1.0 - spec.confidence) / f64::from(spec.budget.max_candidates);
    let needed = (1.0 / per_test_alpha).log2().ceil() as u32;
    if schedule.max_cycles < needed {
        r.problem(
            "schedule.max_cycles",
            format!(
                "is {}, too few for a search: each of its {} candidates is judged at confidence \
                 {:.5} (the search's {} shared over them), which needs at least {needed} cycles; \
                 raise max_cycles to {needed} or more (16 gives steps real power), or lower \
                 search.budget.max_candidates or search.confidence",
                schedule.max_cycles,
                spec.budget.max_candidates,
                1.0 - per_test_alpha,
                spec.confidence
            ),
        );
    }
}

fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::P50 => "p50",
        Metric::P90 => "p90",
        Metric::P99 => "p99",
        Metric::Mean => "mean",
    }
}

/// One candidate's worst case on this schedule (a search runs one at a time).
pub(crate) fn candidate_durations(schedule: &Schedule, initial_checks_s: f64) -> Durations {
    Durations::of(
        schedule,
        Plan {
            variants: 1,
            initial_checks_s,
        },
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::fields::tests::properties;
    use super::*;

    #[test]
    fn the_key_lists_match_the_serde_types() {
        use crate::experiment::{Budget, Choices, Constraint, IntRange};
        use schemars::schema_for;
        for (keys, types) in [
            (SEARCH_KEYS, properties(schema_for!(SearchSpec))),
            (RANGE_KEYS, properties(schema_for!(IntRange))),
            (CHOICE_KEYS, properties(schema_for!(Choices))),
            (CONSTRAINT_KEYS, properties(schema_for!(Constraint))),
            (BUDGET_KEYS, properties(schema_for!(Budget))),
        ] {
            let keys: BTreeSet<String> = keys.iter().map(|k| (*k).to_owned()).collect();
            assert_eq!(keys, types);
        }
    }
}
