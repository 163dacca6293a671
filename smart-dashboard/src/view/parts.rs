//! What several pages show: the page head, the decision table and its rows, a labelled fact,
//! the link to a run's page and a decision's label.

use serde::Serialize;
use smart_core::records::{DecisionKind, DecisionRecord};

use crate::load::Run;
use crate::{explain, format};

/// What every page's head and foot show.
#[derive(Debug, Serialize)]
pub(crate) struct Head {
    pub(crate) title: String,
    pub(crate) root: &'static str,
    pub(crate) generated: String,
    pub(crate) script: bool,
}

/// A table of decisions.
#[derive(Debug, Serialize)]
pub(crate) struct DecisionTable {
    pub(crate) with_experiment: bool,
    pub(crate) rows: Vec<DecisionRow>,
}

/// One decision, as a table row.
#[derive(Debug, Serialize)]
pub(crate) struct DecisionRow {
    pub(crate) href: String,
    pub(crate) when: String,
    pub(crate) experiment: String,
    pub(crate) variant: String,
    pub(crate) result: &'static str,
    pub(crate) result_label: &'static str,
    pub(crate) p50: String,
    pub(crate) p50_bounds: String,
    pub(crate) errors: String,
    pub(crate) errors_bounds: String,
    pub(crate) p_value: String,
    pub(crate) cycles: u32,
    pub(crate) metric: String,
    pub(crate) duration: String,
    /// One sentence: what was changed and what it did.
    pub(crate) what: String,
    /// The judge's reasons, the deciding one first.
    pub(crate) reasons: Vec<String>,
    pub(crate) coach: Vec<String>,
}

/// A label and its value.
#[derive(Debug, Serialize)]
pub(crate) struct Fact {
    pub(crate) label: String,
    pub(crate) value: String,
}

/// The href of a run's page from a page at `root`.
pub(super) fn run_href(root: &str, id: &str) -> String {
    format!("{root}runs/{id}.html")
}

pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A decision's display label.
pub(super) fn label(kind: DecisionKind) -> &'static str {
    match kind {
        DecisionKind::Keep => "Keep",
        DecisionKind::Revert => "Revert",
        DecisionKind::Inconclusive => "Inconclusive",
        DecisionKind::Aborted => "Aborted",
        DecisionKind::KeptByCoach => "Kept by coach",
    }
}

/// Whether a reason is a coach's answer (the engine words them "the coach advised …").
pub(super) fn is_coach(reason: &str) -> bool {
    reason.starts_with("the coach ")
}

pub(super) fn decision_row(root: &str, d: &DecisionRecord, run: &Run) -> DecisionRow {
    let duration = match (
        format::parse_utc(&d.started),
        format::parse_utc(&d.finished),
    ) {
        (Some(a), Some(b)) if b >= a => format::duration(b - a),
        _ => "–".to_owned(),
    };
    DecisionRow {
        href: run_href(root, &d.run_id),
        when: format::time(&d.finished),
        experiment: d.experiment.clone(),
        variant: d.variant.clone(),
        result: d.decision.as_str(),
        result_label: label(d.decision),
        p50: d
            .estimates
            .p50_change_pct
            .map(format::signed_pct)
            .unwrap_or_else(|| "–".to_owned()),
        p50_bounds: d
            .estimates
            .p50_change_bounds_pct
            .map(|b| format::bounds(b.lower, b.upper, 1))
            .unwrap_or_default(),
        errors: d
            .estimates
            .error_rate_change_pp
            .map(format::signed_pp)
            .unwrap_or_else(|| "–".to_owned()),
        errors_bounds: d
            .estimates
            .error_rate_change_bounds_pp
            .map(|b| format::bounds(b.lower, b.upper, 2))
            .unwrap_or_default(),
        p_value: d
            .estimates
            .p_value
            .map(|p| format!("{p:.3}"))
            .unwrap_or_else(|| "–".to_owned()),
        cycles: d.cycles,
        metric: serde_json::to_value(d.metric)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        duration,
        what: explain::what_changed(d, run.definition.as_ref()),
        reasons: explain::deciding_first(d),
        coach: d.reasons.iter().filter(|r| is_coach(r)).cloned().collect(),
    }
}

pub(super) fn fact(label: &str, value: String) -> Fact {
    Fact {
        label: label.to_owned(),
        value,
    }
}
