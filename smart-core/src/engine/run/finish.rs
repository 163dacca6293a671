//! The end of a run: each variant's decision and its reasons, the report, and the coach told.

use std::time::SystemTime;

use super::{Fatal, Runner, Stop, describe};
use crate::audit::format_utc;
use crate::engine::event::{EventKind, Phase, RunPlan};
use crate::engine::ports::{ApplierPort, ClockPort, CoachPort, JudgePort, ObserverPort, ProbePort};
use crate::engine::race::{Either, race};
use crate::engine::types::{Conclusion, Estimates, Judgement, Verdict};
use crate::engine::{EngineError, LiveConfig, RunEnd, RunReport};
use crate::records::{DecisionKind, DecisionRecord};

impl<P: ProbePort, A: ApplierPort, J: JudgePort, K: ClockPort, C: CoachPort, O: ObserverPort>
    Runner<'_, '_, P, A, J, K, C, O>
{
    /// Records the decisions, reports them, and builds the run's report.
    pub(super) async fn finish(
        mut self,
        plan: &RunPlan,
        started: SystemTime,
        result: Result<(), Fatal>,
    ) -> Result<RunReport, EngineError> {
        let fatal = result.err();
        if let Some(Fatal(why)) = &fatal {
            self.stop.get_or_insert_with(|| Stop::Failed(why.clone()));
        }
        let conclusion = self.judge.conclude();
        let finished = format_utc(self.ctx.clock.wall());
        let decisions: Vec<DecisionRecord> = (0..self.variants.len())
            .map(|i| {
                let fatal = fatal.as_ref().map(|Fatal(why)| why.as_str());
                self.decision(i, &conclusion, plan, &finished, fatal)
            })
            .collect();
        let live = match (&fatal, self.kept) {
            (Some(_), _) => LiveConfig::Unknown,
            (None, Some(w)) => LiveConfig::Variant(self.variants[w].name.clone()),
            (None, None) => LiveConfig::Original,
        };
        let report = RunReport {
            run_id: plan.run_id.clone(),
            experiment: plan.experiment.clone(),
            definition_hash: plan.definition_hash.clone(),
            seed: plan.seed,
            started: format_utc(started),
            finished,
            end: self.stop.as_ref().map_or(RunEnd::Completed, Stop::end),
            end_reason: self.stop.as_ref().map(describe),
            live,
            decisions,
        };
        for decision in &report.decisions {
            self.ctx.emit(EventKind::Decided(decision));
        }
        let mut unreported = report.decisions.as_slice();
        while let Some((decision, rest)) = unreported.split_first() {
            if self.ctx.cancel.is_cancelled() {
                break;
            }
            let delivery = self.ctx.ticking(self.coach.report(decision));
            if let Either::Right(()) = race(delivery, self.ctx.cancel.cancelled()).await {
                break;
            }
            unreported = rest;
        }
        // Cancelled: the coach keeps what was not reported for later, without waiting.
        for decision in unreported {
            self.coach.defer(decision);
        }
        self.set_phase(Phase::Finished, None, None);
        self.ctx.emit(EventKind::RunFinished(&report));
        match fatal {
            Some(Fatal(message)) => Err(EngineError {
                message,
                report: Box::new(report),
            }),
            None => Ok(report),
        }
    }

    /// The final decision on variant `i`.
    pub(super) fn decision(
        &self,
        i: usize,
        conclusion: &Conclusion,
        plan: &RunPlan,
        finished: &str,
        fatal: Option<&str>,
    ) -> DecisionRecord {
        let state = &self.variants[i];
        let judgement = conclusion
            .variants
            .get(i)
            .cloned()
            .unwrap_or_else(empty_judgement);
        let mut reasons = Vec::new();
        let kind = if let Some(why) = fatal {
            reasons.push(format!(
                "the run failed, and the original configuration may not be live: {why}"
            ));
            DecisionKind::Aborted
        } else if let Some((kind, why)) = &state.imposed {
            reasons.push(why.clone());
            *kind
        } else if self.kept == Some(i) {
            if state.coach_keep && judgement.verdict != Verdict::Keep {
                DecisionKind::KeptByCoach
            } else {
                DecisionKind::Keep
            }
        } else if state.started.is_none() {
            let why = self
                .stop
                .as_ref()
                .map_or_else(|| "the run stopped".to_owned(), describe);
            reasons.push(format!("not tested: {why}"));
            DecisionKind::Aborted
        } else if self.stop.is_some() && state.verdict.is_none() {
            let why = self.stop.as_ref().map(describe).unwrap_or_default();
            reasons.push(format!("the run stopped before its test finished: {why}"));
            DecisionKind::Aborted
        } else if self.stop.is_some() && state.candidate() {
            let why = self.stop.as_ref().map(describe).unwrap_or_default();
            reasons.push(format!(
                "it passed the keep test, but the run stopped before it could be soaked and kept: {why}"
            ));
            DecisionKind::Aborted
        } else {
            match judgement.verdict {
                Verdict::Keep => {
                    reasons.push(match self.kept {
                        Some(w) => format!(
                            "it passed the keep test, but {} was better and at most one variant is kept",
                            self.variants[w].name
                        ),
                        None => "it passed the keep test, but only the best candidate is tried for keeping, and it was not kept".to_owned(),
                    });
                    DecisionKind::Revert
                }
                Verdict::Revert => DecisionKind::Revert,
                Verdict::Inconclusive => DecisionKind::Inconclusive,
            }
        };
        if state.started.is_some() {
            // A guardrail the engine reported to the judge comes back as "guardrail: {why}";
            // the engine's own line above already says it.
            let said = |r: &String| {
                let why = r.strip_prefix("guardrail: ").unwrap_or(r);
                reasons.iter().any(|have| have.contains(why))
            };
            let from_judge: Vec<String> = judgement
                .reasons
                .iter()
                .filter(|r| !said(r))
                .cloned()
                .collect();
            reasons.extend(from_judge);
            reasons.extend(state.notes.iter().cloned());
        }
        DecisionRecord {
            run_id: plan.run_id.clone(),
            experiment: plan.experiment.clone(),
            definition_hash: plan.definition_hash.clone(),
            variant: state.name.clone(),
            decision: kind,
            metric: self.exp.decision().metric,
            cycles: judgement.cycles,
            estimates: judgement.estimates,
            reasons,
            started: state
                .started
                .map_or_else(|| finished.to_owned(), format_utc),
            finished: state
                .finished
                .map_or_else(|| finished.to_owned(), format_utc),
            report: judgement.report,
        }
    }
}

/// The judgement of a variant the judge has nothing on.
fn empty_judgement() -> Judgement {
    Judgement {
        verdict: Verdict::Inconclusive,
        cycles: 0,
        metric_change_pct: None,
        estimates: Estimates::default(),
        guardrail: None,
        reasons: Vec::new(),
        report: serde_json::Value::Null,
    }
}
