//! The engine's judge port over [`Judge`]: smart-core's engine feeds finished cycles through
//! [`smart_core::engine::JudgePort`], and this adapter turns its blocks into [`BlockSample`]s and the
//! reports into the engine's [`Judgement`]s (with the full [`VariantReport`] as JSON).

use smart_core::Experiment;
use smart_core::engine::{self, Conclusion, CycleBlock, JudgeStep, Judgement, PortError};

use crate::{Arm, BlockSample, Judge, Step, VariantReport};

/// A [`Judge`] for one experiment, as the engine's judge port.
///
/// ```
/// use smart_core::{Defaults, validate};
/// use smart_decide::EngineJudge;
///
/// let json = r#"{"name": "gzip", "target": {"urls": ["http://127.0.0.1/"]},
///     "apply": {"files": [{"path": "/etc/nginx/conf.d/gzip.conf", "template": "gzip {{ on }};\n"}]},
///     "variants": [{"name": "on", "params": {"on": "on"}}]}"#;
/// let experiment = validate::validate_text(json, "gzip.json".as_ref(), &Defaults::default()).unwrap();
/// let judge = EngineJudge::new(&experiment);
/// // pass `&mut judge` as `Ports::judge` to `smart_core::engine::run`
/// ```
#[derive(Debug, Clone)]
pub struct EngineJudge {
    judge: Judge,
    names: Vec<String>,
}

impl EngineJudge {
    /// A judge with the experiment's decision rule, guardrails and schedule, for its variants.
    /// Cannot fail: validation checked every setting [`Judge::new`] would refuse.
    pub fn new(experiment: &Experiment) -> EngineJudge {
        let names: Vec<String> = experiment
            .variants()
            .iter()
            .map(|v| v.name.clone())
            .collect();
        let judge = Judge::checked(
            experiment.decision(),
            experiment.guardrails(),
            experiment.schedule(),
            &names,
        );
        EngineJudge { judge, names }
    }

    /// The judge itself (e.g. for its [`Judge::conclude`] outcome).
    pub fn judge(&self) -> &Judge {
        &self.judge
    }
}

impl engine::JudgePort for EngineJudge {
    fn record_cycle(
        &mut self,
        variant: usize,
        blocks: &[CycleBlock<'_>],
    ) -> Result<JudgeStep, PortError> {
        let samples: Vec<BlockSample> = blocks.iter().map(sample).collect();
        match self.judge.record_cycle(variant, &samples) {
            Ok(Step::Continue) => Ok(JudgeStep::Continue),
            Ok(Step::Stop(verdict)) => Ok(JudgeStep::Stop(verdict)),
            Err(e) => Err(PortError::new(e)),
        }
    }

    fn abort_variant(&mut self, variant: usize, reason: &str) {
        // Only an unknown index fails, and the engine only passes its own indices.
        let _ = self.judge.guardrail_fired(variant, reason);
    }

    fn extend(&mut self, variant: usize) -> Result<(), PortError> {
        self.judge.extend(variant).map_err(PortError::new)
    }

    fn conclude(&self) -> Conclusion {
        let outcome = self.judge.conclude();
        Conclusion {
            kept: outcome
                .kept
                .as_ref()
                .and_then(|name| self.names.iter().position(|n| n == name)),
            variants: outcome.variants.iter().map(judgement).collect(),
        }
    }
}

fn sample(block: &CycleBlock<'_>) -> BlockSample {
    let m = block.measurement;
    BlockSample {
        arm: match block.arm {
            engine::Arm::Baseline => Arm::Baseline,
            engine::Arm::Variant => Arm::Variant,
        },
        cycle: block.cycle,
        position: block.position,
        latencies_us: m.latencies_us.clone(),
        requests: m.requests,
        errors: m.errors,
        cut_short: block.cut_short,
        quantiles: quantiles(m),
        host: m.host,
    }
}

/// The block's quantiles, for a source that reports no raw latencies (a Prometheus histogram, a
/// benchmark command that prints only its quantiles); `None` when it has them or lacks a figure.
fn quantiles(m: &engine::BlockMeasurement) -> Option<crate::BlockQuantiles> {
    if !m.latencies_us.is_empty() {
        return None;
    }
    Some(crate::BlockQuantiles {
        answered: m.requests.saturating_sub(m.errors),
        p50_us: m.p50_us? as f64,
        p90_us: m.p90_us? as f64,
        p99_us: m.p99_us? as f64,
        mean_us: m.mean_us?,
    })
}

/// The engine's view of a report: the figures it records, and the whole report as JSON.
fn judgement(report: &VariantReport) -> Judgement {
    Judgement {
        verdict: report.verdict,
        cycles: report.cycles,
        metric_change_pct: report.metric_change_pct.map(|i| i.estimate),
        estimates: report.estimates(),
        guardrail: report.guardrail.clone(),
        reasons: report.reasons.clone(),
        report: serde_json::to_value(report).expect("a report always serializes"),
    }
}

#[cfg(test)]
mod tests {
    use smart_core::engine::{BlockMeasurement, JudgePort as _};
    use smart_core::{Defaults, validate};

    use super::*;

    fn experiment(variants: &str) -> Experiment {
        let json = format!(
            r#"{{"name": "t", "target": {{"urls": ["http://127.0.0.1/"]}},
                "apply": {{"files": [{{"path": "/etc/t.conf", "template": "x {{{{ x }}}};\n"}}]}},
                "variants": {variants}}}"#
        );
        validate::validate_text(&json, "t.json".as_ref(), &Defaults::default()).unwrap()
    }

    fn block(median_ms: u64, salt: u64) -> BlockMeasurement {
        let latencies_us: Vec<u64> = (0..500)
            .map(|i| median_ms * 1000 + (i * 37 + salt * 11) % 400)
            .collect();
        BlockMeasurement {
            requests: 500,
            latencies_us,
            ..BlockMeasurement::default()
        }
    }

    /// A block known only by its quantiles, as a Prometheus or benchmark source reports it.
    fn quantile_block(median_ms: u64, salt: u64) -> BlockMeasurement {
        let p50 = median_ms * 1000 + (salt * 37) % 200;
        BlockMeasurement {
            requests: 500,
            errors: 2,
            p50_us: Some(p50),
            p90_us: Some(p50 * 2),
            p99_us: Some(p50 * 3),
            mean_us: Some(p50 as f64 * 1.2),
            ..BlockMeasurement::default()
        }
    }

    #[test]
    fn blocks_known_only_by_their_quantiles_are_judged() {
        let m = quantile_block(20, 1);
        let q = quantiles(&m).unwrap();
        assert_eq!((q.answered, q.p50_us, q.p99_us), (498, 20_037.0, 60_111.0));
        assert_eq!(quantiles(&block(20, 1)), None, "raw latencies win");
        let no_mean = BlockMeasurement {
            mean_us: None,
            ..quantile_block(20, 1)
        };
        assert_eq!(quantiles(&no_mean), None, "a missing figure is no figure");

        let mut judge = EngineJudge::new(&experiment(r#"[{"name": "v", "params": {"x": 1}}]"#));
        let step = run_with(&mut judge, 0, 20, 14, quantile_block);
        assert_eq!(step, JudgeStep::Stop(engine::Verdict::Keep));
        let mut judge = EngineJudge::new(&experiment(r#"[{"name": "v", "params": {"x": 1}}]"#));
        let step = run_with(&mut judge, 0, 20, 30, quantile_block);
        assert_eq!(step, JudgeStep::Stop(engine::Verdict::Revert));
    }

    /// Feeds ABBA cycles with the given medians until the judge stops.
    fn run(judge: &mut EngineJudge, variant: usize, base_ms: u64, var_ms: u64) -> JudgeStep {
        run_with(judge, variant, base_ms, var_ms, block)
    }

    /// [`run`] with blocks made by `block`.
    fn run_with(
        judge: &mut EngineJudge,
        variant: usize,
        base_ms: u64,
        var_ms: u64,
        block: fn(u64, u64) -> BlockMeasurement,
    ) -> JudgeStep {
        for cycle in 0..8 {
            let blocks = [
                (engine::Arm::Baseline, block(base_ms, u64::from(cycle))),
                (engine::Arm::Variant, block(var_ms, u64::from(cycle) + 1)),
                (engine::Arm::Variant, block(var_ms, u64::from(cycle) + 2)),
                (engine::Arm::Baseline, block(base_ms, u64::from(cycle) + 3)),
            ];
            let fed: Vec<CycleBlock<'_>> = blocks
                .iter()
                .enumerate()
                .map(|(position, (arm, measurement))| CycleBlock {
                    arm: *arm,
                    cycle,
                    position: position as u32,
                    measurement,
                    cut_short: false,
                })
                .collect();
            let step = judge.record_cycle(variant, &fed).unwrap();
            if step != JudgeStep::Continue {
                return step;
            }
        }
        JudgeStep::Continue
    }

    #[test]
    fn a_clear_win_is_kept_with_its_figures() {
        let mut judge = EngineJudge::new(&experiment(r#"[{"name": "v", "params": {"x": 1}}]"#));
        assert_eq!(
            run(&mut judge, 0, 20, 14),
            JudgeStep::Stop(engine::Verdict::Keep)
        );
        let conclusion = judge.conclude();
        assert_eq!(conclusion.kept, Some(0));
        let j = &conclusion.variants[0];
        assert_eq!(j.verdict, engine::Verdict::Keep);
        let change = j.estimates.p50_change_pct.unwrap();
        assert!((-32.0..-28.0).contains(&change), "{change}");
        let bounds = j.estimates.p50_change_bounds_pct.unwrap();
        assert!(bounds.lower <= change && change <= bounds.upper);
        // The figure is the estimate its bounds belong to (the one the reasons quote).
        assert_eq!(Some(change), j.metric_change_pct);
        assert_eq!(j.estimates.error_rate_change_pp, Some(0.0));
        assert_eq!(j.report["variant"], "v");
        assert_eq!(j.report["verdict"], "keep");
        assert!(!j.reasons.is_empty());
    }

    #[test]
    fn an_aborted_variant_is_never_kept_and_the_best_of_several_is_chosen() {
        let mut judge = EngineJudge::new(&experiment(
            r#"[{"name": "a", "params": {"x": 1}}, {"name": "b", "params": {"x": 2}}]"#,
        ));
        run(&mut judge, 0, 20, 12);
        run(&mut judge, 1, 20, 14);
        assert_eq!(judge.conclude().kept, Some(0));
        judge.abort_variant(0, "the soak failed");
        let conclusion = judge.conclude();
        assert_ne!(conclusion.kept, Some(0));
        assert_eq!(conclusion.variants[0].verdict, engine::Verdict::Revert);
        assert!(
            conclusion.variants[0]
                .guardrail
                .as_deref()
                .unwrap()
                .contains("the soak failed")
        );
        assert!(judge.extend(0).is_err());
    }
}
