//! The index page: the live box, the trend of the live configuration run after run, every
//! decision, and the runs that never finished.

use serde::Serialize;
use smart_core::engine::{Arm, BlockKind, LiveConfig};
use smart_core::records::{BlockRecord, DecisionKind, DecisionRecord, RunState};

use super::live::{LiveView, live, pooled};
use super::parts::{DecisionRow, DecisionTable, Head, decision_row, plural, run_href};
use super::run::block_points;
use crate::format;
use crate::load::State;
use crate::svg::{self, TrendPoint};

/// The index page.
#[derive(Debug, Serialize)]
pub(crate) struct IndexView {
    /// What the chart under "Live configuration over time" shows.
    pub(crate) trend_lead: String,
    pub(crate) head: Head,
    pub(crate) live: LiveView,
    pub(crate) trend_svg: String,
    pub(crate) summary: String,
    pub(crate) decisions: DecisionTable,
    pub(crate) unfinished: Vec<RunLink>,
    /// The searches, each with its candidates and response curves (filled by the caller, which
    /// knows the state dir).
    pub(crate) searches: Vec<super::SearchSection>,
}

/// A link to a run page.
#[derive(Debug, Serialize)]
pub(crate) struct RunLink {
    pub(crate) href: String,
    pub(crate) id: String,
    pub(crate) experiment: String,
    pub(crate) started: String,
}

/// The index page's view.
pub(crate) fn index(state: &State, generated: &str) -> IndexView {
    let root = "";
    let mut decisions: Vec<(&str, DecisionRow)> = state
        .runs
        .iter()
        .flat_map(|run| {
            run.record
                .decisions
                .iter()
                .map(move |d| (d.finished.as_str(), decision_row(root, d, run)))
        })
        .collect();
    decisions.sort_by(|a, b| b.0.cmp(a.0));
    let all: Vec<&DecisionRecord> = state
        .runs
        .iter()
        .flat_map(|r| r.record.decisions.iter())
        .collect();
    let kinds = [
        (DecisionKind::Keep, "kept"),
        (DecisionKind::KeptByCoach, "kept by coach"),
        (DecisionKind::Revert, "reverted"),
        (DecisionKind::Inconclusive, "inconclusive"),
        (DecisionKind::Aborted, "aborted"),
    ];
    let counts: Vec<String> = kinds
        .iter()
        .map(|(kind, label)| (all.iter().filter(|d| d.decision == *kind).count(), label))
        .filter(|(n, _)| *n > 0)
        .map(|(n, label)| format!("{n} {label}"))
        .collect();
    let runs = state.runs.len();
    let summary = if all.is_empty() {
        "No decision yet.".to_owned()
    } else {
        format!(
            "{} decision{} in {runs} run{}: {}.",
            all.len(),
            plural(all.len()),
            plural(runs),
            counts.join(", ")
        )
    };
    let running = state
        .status
        .as_ref()
        .filter(|(s, _)| s.state == RunState::Running)
        .map(|(s, _)| s.run_id.as_str());
    let unfinished = state
        .runs
        .iter()
        .filter(|r| r.record.run.report.is_none() && Some(r.id()) != running)
        .map(|r| RunLink {
            href: run_href(root, r.id()),
            id: r.id().to_owned(),
            experiment: r.record.run.plan.experiment.clone(),
            started: format::time(&r.record.run.plan.started),
        })
        .collect();
    // One run is no trend: a dot or two on a time axis says nothing. Its blocks in time order,
    // baseline against variants, say what that run found.
    let (trend_svg, trend_lead) = match state.runs.as_slice() {
        [only] => {
            let (series, points) = block_points(only);
            (
                svg::block_p50("trend", &series, &points).unwrap_or_default(),
                format!(
                    "Only one run so far ({}), so there is no trend yet: its blocks in time order, the baseline (the configuration it found) against each variant. From the second run on, this chart follows the live configuration's median run after run.",
                    only.record.run.plan.experiment
                ),
            )
        }
        _ => (
            svg::trend("trend", &trend_points(state, root)).unwrap_or_default(),
            "The median latency of whatever configuration was live, run after run: each run first measures the configuration it finds (its baseline); when a variant is kept, its median becomes the new level.".to_owned(),
        ),
    };
    IndexView {
        head: Head {
            title: "Dashboard".to_owned(),
            root,
            generated: generated.to_owned(),
            script: true,
        },
        live: live(state, root),
        trend_svg,
        trend_lead,
        summary,
        decisions: DecisionTable {
            with_experiment: true,
            rows: decisions.into_iter().map(|(_, row)| row).collect(),
        },
        unfinished,
        searches: Vec::new(),
    }
}

/// The live configuration's p50 run by run: each run's baseline at its start, and the kept
/// variant at its end.
fn trend_points(state: &State, root: &str) -> Vec<TrendPoint> {
    let mut points = Vec::new();
    for run in &state.runs {
        let plan = &run.record.run.plan;
        let blocks = &run.record.blocks;
        let href = run_href(root, run.id());
        let base: Vec<&BlockRecord> = blocks
            .iter()
            .filter(|b| b.block.kind == BlockKind::Test && b.block.arm == Arm::Baseline)
            .collect();
        if let (Some(at), Some(p50)) = (format::parse_utc(&plan.started), pooled(&base)) {
            points.push(TrendPoint {
                at,
                p50_us: p50.p50_us,
                kept: false,
                label: format!(
                    "{} · {} · baseline p50 {}",
                    format::time(&plan.started),
                    plan.experiment,
                    format::latency(p50.p50_us)
                ),
                href: href.clone(),
            });
        }
        let Some(report) = &run.record.run.report else {
            continue;
        };
        if let LiveConfig::Variant(kept) = &report.live {
            let arm: Vec<&BlockRecord> = blocks
                .iter()
                .filter(|b| b.block.arm == Arm::Variant && b.block.variant == *kept)
                .collect();
            if let (Some(at), Some(p50)) = (format::parse_utc(&report.finished), pooled(&arm)) {
                points.push(TrendPoint {
                    at,
                    p50_us: p50.p50_us,
                    kept: true,
                    label: format!(
                        "{} · {} · kept {} · p50 {}",
                        format::time(&report.finished),
                        plan.experiment,
                        kept,
                        format::latency(p50.p50_us)
                    ),
                    href,
                });
            }
        }
    }
    points
}
