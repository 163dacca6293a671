//! A search as `smart history` prints it: what is live, the path to it, and every judged candidate
//! with its interval against what it was judged against (from the search's state file).

use std::fmt::Write as _;
use std::path::Path;

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
        let change = c.change_pct.map_or_else(
            || "no interval".to_owned(),
            |x| format!("{:+.1} % [{:+.1}, {:+.1}]", x.estimate, x.lower, x.upper),
        );
        let _ = writeln!(
            out,
            "  #{} {} vs {} ({}): {}, {}{}, {:.0} s",
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
        );
    }
    out
}
