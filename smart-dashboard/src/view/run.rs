//! A run's page: its facts, decisions, coach answers, charts, blocks and audit lines.

use std::collections::BTreeMap;

use serde::Serialize;
use smart_core::engine::{Arm, BlockKind, LiveConfig};
use smart_core::records::{BlockRecord, BlockSamples, LatencyDistribution, RunState};

use super::definition::{ParamRow, definition};
use super::feasibility::{FeasibilityView, feasibility};
use super::live::{LiveView, live};
use super::parts::{DecisionTable, Fact, Head, decision_row, fact, is_coach};
use crate::audit_rows::{AuditRow, AuditRows};
use crate::format;
use crate::load::{Run, State};
use crate::svg::{self, BlockPoint, Distribution, Series};

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
    /// What the experiment's schedule can detect, when smart-cli stored it.
    pub(crate) feasibility: Option<FeasibilityView>,
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
        feasibility: state.feasibility.get(&plan.experiment).map(feasibility),
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
pub(super) fn block_points(run: &Run) -> (Vec<Series>, Vec<BlockPoint>) {
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
