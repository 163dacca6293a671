//! The searches on the index page: for each, what is live and the path to it, every judged
//! candidate with its interval against what it was judged against, and a response curve per
//! param (from the searches' state files, `STATE_DIR/searches/`).

use std::path::Path;

use serde::Serialize;
use smart_core::runner::stored_searches;
use smart_search::SearchView;

use crate::svg;

/// One search on the index page.
#[derive(Debug, Serialize)]
pub(crate) struct SearchSection {
    pub(crate) experiment: String,
    /// `over` or `under way`, with the candidates used of the budget.
    pub(crate) status: String,
    pub(crate) live: String,
    pub(crate) path: String,
    pub(crate) rows: Vec<CandidateRow>,
    /// One inline SVG per param with measured moves.
    pub(crate) curves: Vec<String>,
}

/// One judged candidate.
#[derive(Debug, Serialize)]
pub(crate) struct CandidateRow {
    pub(crate) id: u32,
    pub(crate) candidate: String,
    pub(crate) against: String,
    pub(crate) role: &'static str,
    pub(crate) verdict: &'static str,
    pub(crate) change: String,
    pub(crate) seconds: String,
}

/// The searches stored under `state_dir`, in name order.
pub(crate) fn searches(state_dir: &Path) -> Vec<SearchSection> {
    stored_searches(state_dir)
        .iter()
        .filter_map(SearchView::load)
        .map(|view| section(&view))
        .collect()
}

fn section(view: &SearchView) -> SearchSection {
    let rows = view
        .candidates
        .iter()
        .map(|c| CandidateRow {
            id: c.id,
            candidate: c.label.clone(),
            against: c.against.clone(),
            role: c.role,
            verdict: c.verdict,
            change: c.change_pct.map_or_else(
                || "–".to_owned(),
                |x| format!("{:+.1} % [{:+.1}, {:+.1}]", x.estimate, x.lower, x.upper),
            ) + if c.guardrail {
                " (a guardrail fired)"
            } else {
                ""
            },
            seconds: format!("{:.0} s", c.seconds),
        })
        .collect();
    let curves = view
        .curves
        .iter()
        .filter_map(|c| svg::response_curve(&format!("curve-{}-{}", view.experiment, c.param), c))
        .collect();
    SearchSection {
        experiment: view.experiment.clone(),
        status: format!(
            "{}, {} of {} candidates",
            if view.done { "over" } else { "under way" },
            view.candidates.len(),
            view.max_candidates
        ),
        live: view.live.clone(),
        path: view.path.join(" → "),
        rows,
        curves,
    }
}
