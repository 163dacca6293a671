//! What the templates show, computed from the records: every number formatted, every chart drawn,
//! so the templates only place text (which tinytemplate escapes) and our own SVG.

use std::collections::BTreeMap;

use serde::Serialize;
use smart_core::engine::{Arm, BlockKind, LiveConfig};
use smart_core::records::{
    BlockRecord, BlockSamples, DecisionKind, DecisionRecord, LatencyDistribution, RunState, Status,
};

use crate::audit_rows::{AuditRow, AuditRows};
use crate::load::{Run, State};
use crate::svg::{self, BlockPoint, Distribution, Series, TrendPoint};
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
}

/// A link to a run page.
#[derive(Debug, Serialize)]
pub(crate) struct RunLink {
    pub(crate) href: String,
    pub(crate) id: String,
    pub(crate) experiment: String,
    pub(crate) started: String,
}

/// The live status box, as of the render (the JS file refreshes its `data-field` parts).
#[derive(Debug, Default, Serialize)]
pub(crate) struct LiveView {
    pub(crate) has_status: bool,
    pub(crate) running: bool,
    pub(crate) url: String,
    pub(crate) state: String,
    pub(crate) state_label: String,
    pub(crate) run_id: String,
    pub(crate) run_href: String,
    pub(crate) experiment: String,
    pub(crate) variant: String,
    pub(crate) phase: String,
    pub(crate) block: String,
    pub(crate) elapsed: String,
    pub(crate) left: String,
    pub(crate) p50: String,
    pub(crate) p50_vs: String,
    pub(crate) errors: String,
    pub(crate) rate: String,
    pub(crate) baseline_p50_us: String,
    pub(crate) baseline: String,
    pub(crate) variant_so_far: String,
    pub(crate) decisions: String,
    pub(crate) decision_count: usize,
    /// On a run's page: the block as of the render, so the page offers a reload when blocks
    /// finish (the index only does when a run starts or decides).
    pub(crate) rendered_block: Option<String>,
    pub(crate) end: String,
    pub(crate) updated: String,
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

/// A run's page.
#[derive(Debug, Serialize)]
pub(crate) struct RunView {
    pub(crate) head: Head,
    pub(crate) root: &'static str,
    /// The live box, on the page of the run under way.
    pub(crate) live: Option<LiveView>,
    pub(crate) id: String,
    pub(crate) experiment: String,
    pub(crate) description: String,
    pub(crate) facts: Vec<Fact>,
    pub(crate) decisions: DecisionTable,
    pub(crate) coach: Vec<CoachNote>,
    pub(crate) cdf_svg: String,
    pub(crate) p50_svg: String,
    pub(crate) errors_svg: String,
    pub(crate) blocks: Vec<BlockRow>,
    pub(crate) params: Vec<ParamRow>,
    pub(crate) settings: Vec<Fact>,
    pub(crate) definition_json: String,
    pub(crate) audit: Vec<AuditRow>,
}

/// A label and its value.
#[derive(Debug, Serialize)]
pub(crate) struct Fact {
    pub(crate) label: String,
    pub(crate) value: String,
}

/// A coach's answer on one variant.
#[derive(Debug, Serialize)]
pub(crate) struct CoachNote {
    pub(crate) variant: String,
    pub(crate) answer: String,
}

/// One block, as a table row.
#[derive(Debug, Serialize)]
pub(crate) struct BlockRow {
    pub(crate) index: u32,
    pub(crate) kind: &'static str,
    pub(crate) test_of: String,
    pub(crate) arm: String,
    pub(crate) style: String,
    pub(crate) cycle: String,
    pub(crate) started: String,
    pub(crate) measured: String,
    pub(crate) requests: String,
    pub(crate) errors: String,
    pub(crate) p50: String,
    pub(crate) p90: String,
    pub(crate) p99: String,
    pub(crate) rate: String,
    /// What the host was doing: PSI stall shares, load and steal ("–" when not recorded).
    pub(crate) host: String,
    pub(crate) note: String,
}

/// One parameter of one arm in the definition.
#[derive(Debug, Serialize)]
pub(crate) struct ParamRow {
    pub(crate) arm: String,
    pub(crate) name: String,
    pub(crate) value: String,
}

/// The href of a run's page from a page at `root`.
fn run_href(root: &str, id: &str) -> String {
    format!("{root}runs/{id}.html")
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
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The live box: the status as of now, and this run's baseline and variant figures so far.
fn live(state: &State, root: &str) -> LiveView {
    let Some((status, _)) = &state.status else {
        return LiveView {
            state: "idle".to_owned(),
            state_label: "Idle".to_owned(),
            ..LiveView::default()
        };
    };
    let run = state.runs.iter().find(|r| r.id() == status.run_id);
    let blocks: &[BlockRecord] = run.map(|r| r.record.blocks.as_slice()).unwrap_or(&[]);
    let current = status.variant.as_deref();
    let of_test = |arm: Arm| -> Vec<&BlockRecord> {
        blocks
            .iter()
            .filter(|b| b.block.kind == BlockKind::Test && b.block.arm == arm)
            .filter(|b| current.is_none_or(|v| b.block.variant == v))
            .collect()
    };
    let baseline = pooled(&of_test(Arm::Baseline));
    let variant = pooled(&of_test(Arm::Variant));
    let running = status.state == RunState::Running;
    let live = status.live.as_ref().filter(|_| running);
    let p50_vs = match (
        live.and_then(|l| l.p50_us),
        &baseline,
        status.arm.as_deref(),
    ) {
        (Some(p50), Some(base), Some(arm)) if arm != "baseline" && base.p50_us > 0.0 => format!(
            "({} vs baseline)",
            format::signed_pct((p50 as f64 - base.p50_us) / base.p50_us * 100.0)
        ),
        _ => String::new(),
    };
    let dash = || "–".to_owned();
    LiveView {
        has_status: true,
        running,
        url: format!("{root}status.json"),
        state: if running { "running" } else { "finished" }.to_owned(),
        state_label: if running { "Running" } else { "Finished" }.to_owned(),
        run_id: status.run_id.clone(),
        run_href: run_href(root, &status.run_id),
        experiment: status.experiment.clone(),
        variant: match (&status.variant, status.variant_index) {
            (Some(v), Some(i)) => format!("{v} ({i} of {})", status.variants),
            (Some(v), None) => v.clone(),
            _ => dash(),
        },
        phase: phase_text(status),
        block: match (status.block, status.blocks) {
            (Some(b), Some(n)) => format!("{b} of {n}"),
            _ => dash(),
        },
        elapsed: format::duration(status.elapsed_s),
        left: if running {
            format::duration(status.left_s)
        } else {
            dash()
        },
        p50: live
            .and_then(|l| l.p50_us)
            .map(|us| format::latency(us as f64))
            .unwrap_or_else(dash),
        p50_vs,
        errors: live
            .map(|l| {
                format!(
                    "{} of {} ({})",
                    format::count(l.errors),
                    format::count(l.requests),
                    format::rate_pct(l.errors, l.requests)
                )
            })
            .unwrap_or_else(dash),
        rate: live
            .map(|l| format!("{:.1} req/s", l.rate_per_s))
            .unwrap_or_else(dash),
        baseline_p50_us: baseline
            .as_ref()
            .map(|b| format!("{:.0}", b.p50_us))
            .unwrap_or_default(),
        baseline: baseline.as_ref().map(Pooled::text).unwrap_or_else(dash),
        variant_so_far: variant.as_ref().map(Pooled::text).unwrap_or_else(dash),
        decisions: if status.decisions.is_empty() {
            "none yet".to_owned()
        } else {
            status
                .decisions
                .iter()
                .map(|(v, d)| format!("{v}: {}", label(*d)))
                .collect::<Vec<_>>()
                .join(", ")
        },
        decision_count: status.decisions.len(),
        rendered_block: None,
        end: status
            .end
            .map(format::run_end)
            .unwrap_or_default()
            .to_owned(),
        updated: format::time_seconds(&status.updated),
    }
}

fn phase_text(status: &Status) -> String {
    let phase = status.phase.as_str().replace('_', " ");
    match (&status.arm, status.live.as_ref()) {
        (Some(arm), Some(live)) if live.warming_up => format!("{phase} {arm} (cool-down)"),
        (Some(arm), _) => format!("{phase} {arm}"),
        _ => phase,
    }
}

/// Figures of several blocks of one arm: the median of their p50s and p99s, their error rate.
struct Pooled {
    p50_us: f64,
    p99_us: Option<f64>,
    errors: u64,
    requests: u64,
    blocks: usize,
}

impl Pooled {
    fn text(&self) -> String {
        format!(
            "p50 {} · p99 {} · errors {} ({} block{})",
            format::latency(self.p50_us),
            self.p99_us
                .map(format::latency)
                .unwrap_or_else(|| "–".to_owned()),
            format::rate_pct(self.errors, self.requests),
            self.blocks,
            plural(self.blocks)
        )
    }
}

fn pooled(blocks: &[&BlockRecord]) -> Option<Pooled> {
    let p50 = median(blocks.iter().filter_map(|b| b.figures.p50_us).collect())?;
    Some(Pooled {
        p50_us: p50,
        p99_us: median(blocks.iter().filter_map(|b| b.figures.p99_us).collect()),
        errors: blocks.iter().map(|b| b.figures.errors).sum(),
        requests: blocks.iter().map(|b| b.figures.requests).sum(),
        blocks: blocks.len(),
    })
}

fn median(mut values: Vec<u64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    Some(if !n.is_multiple_of(2) {
        values[n / 2] as f64
    } else {
        (values[n / 2 - 1] + values[n / 2]) as f64 / 2.0
    })
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

/// A decision's display label.
fn label(kind: DecisionKind) -> &'static str {
    match kind {
        DecisionKind::Keep => "Keep",
        DecisionKind::Revert => "Revert",
        DecisionKind::Inconclusive => "Inconclusive",
        DecisionKind::Aborted => "Aborted",
        DecisionKind::KeptByCoach => "Kept by coach",
    }
}

/// Whether a reason is a coach's answer (the engine words them "the coach advised …").
fn is_coach(reason: &str) -> bool {
    reason.starts_with("the coach ")
}

fn decision_row(root: &str, d: &DecisionRecord, run: &Run) -> DecisionRow {
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
            .p50_change_pct
            .map(format::signed_pct)
            .unwrap_or_else(|| "–".to_owned()),
        p50_bounds: d
            .p50_change_bounds_pct
            .map(|b| format::bounds(b.lower, b.upper, 1))
            .unwrap_or_default(),
        errors: d
            .error_rate_change_pp
            .map(format::signed_pp)
            .unwrap_or_else(|| "–".to_owned()),
        errors_bounds: d
            .error_rate_change_bounds_pp
            .map(|b| format::bounds(b.lower, b.upper, 2))
            .unwrap_or_default(),
        p_value: d
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

/// The style index of an arm: 0 for the baseline, 1… for the variants in plan order.
fn style_of(run: &Run, arm_name: &str, arm: Arm) -> usize {
    if arm == Arm::Baseline {
        return 0;
    }
    let i = run
        .record
        .run
        .plan
        .variants
        .iter()
        .position(|v| v == arm_name)
        .unwrap_or(0);
    1 + i % 5
}

/// While a run is under way its page is re-rendered after every block, so it lists only the most
/// recent blocks and audit lines: a live render's work and memory do not grow with the run (the
/// charts still show every block, and once the run is over its page lists everything).
pub(crate) const LIVE_BLOCK_ROWS: usize = 50;
/// The id of the run under way, as `status.json` says, if one is.
pub(crate) fn running(state: &State) -> Option<&str> {
    state
        .status
        .as_ref()
        .filter(|(s, _)| s.state == RunState::Running)
        .map(|(s, _)| s.run_id.as_str())
}

/// A run page's view; `latencies` are the run's samples pooled per arm.
pub(crate) fn run_page(
    state: &State,
    run: &Run,
    audit: AuditRows,
    latencies: ArmLatencies,
    generated: &str,
) -> RunView {
    let root = "../";
    let record = &run.record;
    let plan = &record.run.plan;
    let report = record.run.report.as_ref();
    let mut facts = vec![
        fact("Run", plan.run_id.clone()),
        fact("Started", format::time_seconds(&plan.started)),
    ];
    match report {
        Some(report) => {
            facts.push(fact("Finished", format::time_seconds(&report.finished)));
            if let (Some(a), Some(b)) = (
                format::parse_utc(&report.started),
                format::parse_utc(&report.finished),
            ) {
                facts.push(fact("Duration", format::duration(b - a)));
            }
            let end = format::run_end(report.end);
            facts.push(fact(
                "Ended",
                match &report.end_reason {
                    Some(reason) => format!("{end}: {reason}"),
                    None => end.to_owned(),
                },
            ));
            facts.push(fact(
                "Live afterwards",
                match &report.live {
                    LiveConfig::Original => "the original configuration".to_owned(),
                    LiveConfig::Variant(v) => format!("variant {v}"),
                    LiveConfig::Unknown => {
                        "unknown: restoring failed, run `smart recover`".to_owned()
                    }
                },
            ));
        }
        None => facts.push(fact(
            "Ended",
            "not yet (under way, or its process died)".to_owned(),
        )),
    }
    facts.push(fact(
        "Design",
        format!(
            "{}, {} blocks per variant at most, time box {}",
            if plan.interleave {
                "interleaved ABBA/BAAB cycles"
            } else {
                "baseline blocks, then variant blocks"
            },
            plan.blocks_per_variant,
            format::duration(plan.max_duration_s)
        ),
    ));
    facts.push(fact("Seed", plan.seed.to_string()));
    facts.push(fact(
        "Definition hash",
        plan.definition_hash.chars().take(16).collect(),
    ));

    let blocks = &record.blocks;
    let (series, points) = block_points(run);
    let distributions = latencies.distributions(&series);
    let coach = record
        .decisions
        .iter()
        .flat_map(|d| {
            d.reasons.iter().filter(|r| is_coach(r)).map(|r| CoachNote {
                variant: d.variant.clone(),
                answer: r.clone(),
            })
        })
        .collect();
    let (description, params, settings, definition_json) = definition(run);
    let under_way = running(state) == Some(plan.run_id.as_str());
    let hidden_blocks = if under_way {
        blocks.len().saturating_sub(LIVE_BLOCK_ROWS)
    } else {
        0
    };
    if hidden_blocks > 0 || audit.omitted > 0 {
        facts.push(fact(
            "Listed below",
            format!(
                "the last {} of {} blocks and {} of {} audit lines while the run is under way (the charts show every block); all of them once it is over",
                blocks.len() - hidden_blocks,
                blocks.len(),
                audit.rows.len(),
                audit.rows.len() + audit.omitted
            ),
        ));
    }
    let live = under_way.then(|| {
        let mut view = live(state, root);
        let block = state.status.as_ref().and_then(|(s, _)| s.block);
        view.rendered_block = Some(block.map(|b| b.to_string()).unwrap_or_default());
        view
    });
    RunView {
        head: Head {
            title: format!("{} · run {}", plan.experiment, plan.run_id),
            root,
            generated: generated.to_owned(),
            script: live.is_some(),
        },
        root,
        live,
        id: plan.run_id.clone(),
        experiment: plan.experiment.clone(),
        description,
        facts,
        decisions: DecisionTable {
            with_experiment: false,
            rows: record
                .decisions
                .iter()
                .map(|d| decision_row(root, d, run))
                .collect(),
        },
        coach,
        cdf_svg: svg::cdf("cdf", &distributions).unwrap_or_default(),
        p50_svg: svg::block_p50("p50", &series, &points).unwrap_or_default(),
        errors_svg: svg::block_errors("errors", &series, &points).unwrap_or_default(),
        blocks: blocks[hidden_blocks..]
            .iter()
            .map(|b| block_row(run, b))
            .collect(),
        params,
        settings,
        definition_json,
        audit: audit.rows,
    }
}

fn fact(label: &str, value: String) -> Fact {
    Fact {
        label: label.to_owned(),
        value,
    }
}

/// The latency samples of a run's test blocks pooled per arm (the baseline, then each variant in
/// the plan's order), fed one block at a time: a long run's samples are never all in memory, and
/// the pools stay the size a few blocks gave them.
#[derive(Debug)]
pub(crate) struct ArmLatencies {
    /// The arm's slot of each test block, by block index.
    slots: BTreeMap<u32, usize>,
    pooled: Vec<LatencyDistribution>,
}

impl ArmLatencies {
    /// Empty pools for `run`'s arms.
    pub(crate) fn new(run: &Run) -> ArmLatencies {
        let variants = &run.record.run.plan.variants;
        let mut slots = BTreeMap::new();
        for b in &run.record.blocks {
            if b.block.kind != BlockKind::Test {
                continue;
            }
            let slot = match b.block.arm {
                Arm::Baseline => Some(0),
                Arm::Variant => variants
                    .iter()
                    .position(|v| *v == b.block.arm_name)
                    .map(|i| i + 1),
            };
            if let Some(slot) = slot {
                slots.entry(b.block.index).or_insert(slot);
            }
        }
        ArmLatencies {
            slots,
            pooled: vec![LatencyDistribution::new(); variants.len() + 1],
        }
    }

    /// Adds one block's samples to its arm's pool (samples of soak blocks, or of blocks the run
    /// does not list, are left out).
    pub(crate) fn add(&mut self, samples: &BlockSamples) {
        if let Some(&slot) = self.slots.get(&samples.block) {
            self.pooled[slot].extend(samples.latencies_us.iter().copied());
        }
    }

    /// The arms with samples, as the curves of the distribution chart.
    fn distributions(self, series: &[Series]) -> Vec<Distribution> {
        series
            .iter()
            .zip(self.pooled)
            .filter(|(_, d)| !d.is_empty())
            .map(|(s, latencies)| Distribution {
                series: s.clone(),
                latencies,
            })
            .collect()
    }
}

/// A run's arms as chart series (baseline first) and its blocks as chart points.
fn block_points(run: &Run) -> (Vec<Series>, Vec<BlockPoint>) {
    let mut series = vec![Series {
        name: "baseline".to_owned(),
        style: 0,
    }];
    for v in &run.record.run.plan.variants {
        series.push(Series {
            name: v.clone(),
            style: style_of(run, v, Arm::Variant),
        });
    }
    let blocks = &run.record.blocks;
    let points: Vec<BlockPoint> = blocks
        .iter()
        .map(|b| BlockPoint {
            index: b.block.index,
            style: style_of(run, &b.block.arm_name, b.block.arm),
            soak: b.block.kind == BlockKind::Soak,
            p50_us: b.figures.p50_us,
            error_pct: if b.figures.requests == 0 {
                0.0
            } else {
                b.figures.errors as f64 / b.figures.requests as f64 * 100.0
            },
            label: format!(
                "block {} · {}{} · p50 {} · errors {}",
                b.block.index,
                b.block.arm_name,
                if b.block.kind == BlockKind::Soak {
                    " (soak)"
                } else {
                    ""
                },
                b.figures
                    .p50_us
                    .map(|u| format::latency(u as f64))
                    .unwrap_or_else(|| "–".to_owned()),
                format::rate_pct(b.figures.errors, b.figures.requests)
            ),
        })
        .collect();
    (series, points)
}

fn block_row(run: &Run, b: &BlockRecord) -> BlockRow {
    let f = &b.figures;
    let lat = |v: Option<u64>| {
        v.map(|u| format::latency(u as f64))
            .unwrap_or_else(|| "–".to_owned())
    };
    BlockRow {
        index: b.block.index,
        kind: match b.block.kind {
            BlockKind::Test => "test",
            BlockKind::Soak => "soak",
        },
        test_of: b.block.variant.clone(),
        arm: b.block.arm_name.clone(),
        style: format!("s{}", style_of(run, &b.block.arm_name, b.block.arm)),
        cycle: format!("{}.{}", b.block.cycle + 1, b.block.position + 1),
        started: format::clock(&b.block.started),
        measured: format!("{:.1} s", f.measured_s),
        requests: format::count(f.requests),
        errors: format!(
            "{} ({})",
            format::count(f.errors),
            format::rate_pct(f.errors, f.requests)
        ),
        p50: lat(f.p50_us),
        p90: lat(f.p90_us),
        p99: lat(f.p99_us),
        rate: format!("{:.1}", f.rate_per_s),
        host: f.host.map_or_else(
            || "–".to_owned(),
            |h| {
                let pct =
                    |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.0} %"));
                format!(
                    "CPU {} · mem {} · I/O {} · load {} · steal {}",
                    pct(h.cpu_some_pct),
                    pct(h.memory_some_pct),
                    pct(h.io_some_pct),
                    h.load1
                        .map_or_else(|| "–".to_owned(), |l| format!("{l:.1}")),
                    pct(h.steal_pct)
                )
            },
        ),
        note: f.aborted.clone().unwrap_or_default(),
    }
}

/// The definition as run: description, the params of every arm, the schedule, decision and
/// guardrail settings, and the whole JSON (secret header values and URL passwords redacted).
fn definition(run: &Run) -> (String, Vec<ParamRow>, Vec<Fact>, String) {
    let Some(def) = &run.definition else {
        return (String::new(), Vec::new(), Vec::new(), String::new());
    };
    let mut def = def.clone();
    redact(&mut def, None);
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let mut params = Vec::new();
    let mut push_params = |arm: &str, value: Option<&serde_json::Value>| {
        if let Some(map) = value.and_then(|v| v.as_object()) {
            for (name, value) in map {
                params.push(ParamRow {
                    arm: arm.to_owned(),
                    name: name.clone(),
                    value: text(value),
                });
            }
        }
    };
    push_params("baseline", def.get("baseline"));
    for v in def
        .get("variants")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let name = v.get("name").map(text).unwrap_or_default();
        push_params(&name, v.get("params"));
    }
    if let Some(matrix) = def.get("matrix").and_then(|m| m.as_object()) {
        for (name, values) in matrix {
            params.push(ParamRow {
                arm: "matrix".to_owned(),
                name: name.clone(),
                value: text(values),
            });
        }
    }
    let mut settings = Vec::new();
    if let Some(urls) = def.pointer("/target/urls").and_then(|u| u.as_array()) {
        let urls: Vec<String> = urls.iter().map(text).collect();
        settings.push(fact("target", urls.join(", ")));
    }
    for section in ["schedule", "decision", "guardrails"] {
        if let Some(map) = def.get(section).and_then(|s| s.as_object()) {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k} = {}", text(v)))
                .collect();
            settings.push(fact(section, items.join(", ")));
        }
    }
    let description = def.get("description").map(text).unwrap_or_default();
    let json = serde_json::to_string_pretty(&def).unwrap_or_default();
    (description, params, settings, json)
}

/// Replaces secret header values and passwords in URLs, anywhere in the definition.
fn redact(value: &mut serde_json::Value, key: Option<&str>) {
    match value {
        serde_json::Value::String(s) => {
            if key.is_some_and(smart_core::redact::is_secret_header) {
                *s = smart_core::redact::REDACTED.to_owned();
            } else if let Some(clean) = without_credentials(s) {
                *s = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| redact(v, None)),
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                redact(v, Some(k));
            }
        }
        _ => {}
    }
}

/// `url` with its credentials hidden, or `None` when it has none to hide.
fn without_credentials(url: &str) -> Option<String> {
    let clean = smart_core::redact::hide_url_credentials(url);
    (clean != url).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_redacted() {
        assert_eq!(
            without_credentials("http://u:p@h/x").as_deref(),
            Some("http://***@h/x")
        );
        assert_eq!(without_credentials("http://h/x@y"), None);
        assert_eq!(
            without_credentials("http://token@h/").as_deref(),
            Some("http://***@h/")
        );
        let mut def = serde_json::json!({"target": {"headers": {"Authorization": "Bearer s"}}});
        redact(&mut def, None);
        assert_eq!(
            def.pointer("/target/headers/Authorization").unwrap(),
            "<redacted>"
        );
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3, 1, 2]), Some(2.0));
        assert_eq!(median(vec![4, 1, 2, 3]), Some(2.5));
    }
}
