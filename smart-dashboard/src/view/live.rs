//! The live status box on the index and on the page of the run under way: the status as of the
//! render, and the run's baseline and variant figures so far.

use serde::Serialize;
use smart_core::engine::{Arm, BlockKind};
use smart_core::records::{BlockRecord, RunState, Status};

use super::parts::{label, plural, run_href};
use crate::format;
use crate::load::State;

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

/// The live box: the status as of now, and this run's baseline and variant figures so far.
pub(super) fn live(state: &State, root: &str) -> LiveView {
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
pub(super) struct Pooled {
    pub(super) p50_us: f64,
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

pub(super) fn pooled(blocks: &[&BlockRecord]) -> Option<Pooled> {
    let p50 = median(blocks.iter().filter_map(|b| b.figures.p50_us).collect())?;
    Some(Pooled {
        p50_us: p50,
        p99_us: median(blocks.iter().filter_map(|b| b.figures.p99_us).collect()),
        errors: blocks.iter().map(|b| b.figures.errors).sum(),
        requests: blocks.iter().map(|b| b.figures.requests).sum(),
        blocks: blocks.len(),
    })
}

pub(super) fn median(mut values: Vec<u64>) -> Option<f64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3, 1, 2]), Some(2.0));
        assert_eq!(median(vec![4, 1, 2, 3]), Some(2.5));
    }
}
