//! One variant's test: its cycles fed to the judge, a block that ends early, and the coach asked
//! about an inconclusive result.

use super::{BlockEnd, Fatal, Runner, Stop, blocks};
use crate::Experiment;
use crate::engine::design::cycle_order;
use crate::engine::event::{BlockKind, EventKind, Phase};
use crate::engine::ports::{ApplierPort, ClockPort, CoachPort, JudgePort, ObserverPort, ProbePort};
use crate::engine::race::{Either, race};
use crate::engine::types::{
    AdviceAction, AdviceRequest, Arm, BlockMeasurement, CycleBlock, JudgeStep, Judgement, Verdict,
};
use crate::records::DecisionKind;

impl<P: ProbePort, A: ApplierPort, J: JudgePort, K: ClockPort, C: CoachPort, O: ObserverPort>
    Runner<'_, '_, P, A, J, K, C, O>
{
    /// Tests one variant until the judge stops it, a guardrail fires, a switch fails or the run
    /// must stop.
    pub(super) async fn test_variant(&mut self, i: usize) -> Result<(), Fatal> {
        self.variants[i].started = Some(self.ctx.clock.wall());
        let max = self.exp.schedule().max_cycles;
        let interleave = self.exp.schedule().interleave;
        // The seed's design measures every baseline block first: kept here until paired.
        let mut baseline_blocks: Vec<BlockMeasurement> = Vec::new();
        if !interleave {
            for k in 0..max {
                match self
                    .measure(i, Arm::Baseline, k, 0, BlockKind::Test, None)
                    .await?
                {
                    BlockEnd::Done(m) => baseline_blocks.push(*m),
                    end => return self.block_failed(i, Arm::Baseline, end),
                }
            }
        }
        let mut cycle = 0;
        while cycle < max {
            let mut measured: Vec<(Arm, BlockMeasurement)> = Vec::with_capacity(4);
            if interleave {
                let order = cycle_order(self.seed, i, cycle);
                for (position, arm) in order.arms().into_iter().enumerate() {
                    let position = position as u32;
                    match self
                        .measure(i, arm, cycle, position, BlockKind::Test, None)
                        .await?
                    {
                        BlockEnd::Done(m) => measured.push((arm, *m)),
                        end => return self.block_failed(i, arm, end),
                    }
                }
            } else {
                match self
                    .measure(i, Arm::Variant, cycle, 1, BlockKind::Test, None)
                    .await?
                {
                    BlockEnd::Done(m) => {
                        let baseline = std::mem::take(&mut baseline_blocks[cycle as usize]);
                        measured.push((Arm::Baseline, baseline));
                        measured.push((Arm::Variant, *m));
                    }
                    end => return self.block_failed(i, Arm::Variant, end),
                }
            }
            let blocks: Vec<CycleBlock<'_>> = measured
                .iter()
                .enumerate()
                .map(|(position, (arm, m))| CycleBlock {
                    arm: *arm,
                    cycle,
                    position: position as u32,
                    measurement: m,
                    cut_short: false,
                })
                .collect();
            let step = match self.judge.record_cycle(i, &blocks) {
                Ok(step) => step,
                Err(e) => {
                    let reason = format!("the judge failed on cycle {}: {e}", cycle + 1);
                    self.variants[i].impose(DecisionKind::Aborted, reason.clone());
                    self.stop = Some(Stop::Failed(reason));
                    return Ok(());
                }
            };
            drop(blocks);
            let name = self.variants[i].name.clone();
            self.ctx.emit(EventKind::Step {
                variant: &name,
                cycle,
                step,
            });
            cycle += 1;
            match step {
                JudgeStep::Continue => {}
                JudgeStep::Stop(Verdict::Inconclusive)
                    if self.consult_coach(i, cycle < max).await => {}
                JudgeStep::Stop(verdict) => {
                    self.variants[i].verdict = Some(verdict);
                    break;
                }
            }
            if self.stop.is_some() {
                let reason = self.stop_reason(i);
                self.variants[i].impose(DecisionKind::Aborted, reason);
                return Ok(());
            }
        }
        if self.variants[i].verdict.is_none() {
            self.variants[i].verdict = Some(Verdict::Inconclusive);
        }
        Ok(())
    }

    /// Handles a block that did not finish normally: the variant's decision is imposed (the
    /// caller restores the original next).
    pub(super) fn block_failed(&mut self, i: usize, arm: Arm, end: BlockEnd) -> Result<(), Fatal> {
        match end {
            BlockEnd::Done(_) | BlockEnd::SwitchFailed => {}
            BlockEnd::Guardrail(reason) if arm == Arm::Variant => {
                let why = format!(
                    "a guardrail fired while the variant was live, so it was reverted at once: {reason}"
                );
                self.judge.abort_variant(i, &why);
                self.variants[i].impose(DecisionKind::Revert, why);
            }
            BlockEnd::Guardrail(reason) => {
                let why = format!(
                    "the baseline itself failed a guardrail, so the run stopped and the original was restored: {reason}"
                );
                self.judge.abort_variant(i, &why);
                self.variants[i].impose(DecisionKind::Aborted, why.clone());
                self.stop = Some(Stop::BaselineUnsound(why));
            }
            BlockEnd::Stopped => {
                let why = self.stop_reason(i);
                self.judge.abort_variant(i, &why);
                self.variants[i].impose(DecisionKind::Aborted, why);
            }
        }
        Ok(())
    }

    /// Why variant `i` was aborted by the run's stop, in words.
    pub(super) fn stop_reason(&self, i: usize) -> String {
        let done = blocks(self.variants[i].measured);
        let elapsed = self.ctx.elapsed().as_secs_f64();
        match &self.stop {
            Some(Stop::Cancelled) => format!(
                "the run was cancelled after {elapsed:.0} s ({done} of this variant measured); the original configuration was restored"
            ),
            Some(Stop::TimedOut) => format!(
                "the time box of {} s (max_duration_s) passed ({done} of this variant measured); the original configuration was restored",
                self.exp.schedule().max_duration_s
            ),
            Some(Stop::BaselineUnsound(why) | Stop::Failed(why)) => {
                format!("the run stopped: {why}")
            }
            None => "the run stopped".to_owned(),
        }
    }

    /// Asks the coach about an inconclusive variant; `true` when its test goes on (`extend`).
    pub(super) async fn consult_coach(&mut self, i: usize, cycles_left: bool) -> bool {
        if !self.coach.advises() {
            return false;
        }
        let judgement = self.judge.judgement(i);
        self.set_phase(Phase::Advising, Some(i), None);
        let name = self.variants[i].name.clone();
        let request = AdviceRequest {
            run_id: &self.run_id,
            experiment: self.exp.name(),
            variant: &name,
            judgement: &judgement,
            max_cycles: self.exp.schedule().max_cycles,
        };
        let advice = match race(self.coach.advise(&request), self.ctx.interrupted()).await {
            Either::Left(advice) => advice,
            Either::Right(stop) => {
                self.stop = Some(stop);
                return false;
            }
        };
        let (followed, extend, note) = match advice.action {
            AdviceAction::Revert => (
                true,
                false,
                format!("the coach advised revert: {}", advice.reason),
            ),
            AdviceAction::Extend if cycles_left && self.judge.extend(i).is_ok() => (
                true,
                true,
                format!("the coach advised extending the test: {}", advice.reason),
            ),
            AdviceAction::Extend => (
                false,
                false,
                format!(
                    "the coach advised extending the test, but all {} cycles were used: {}",
                    self.exp.schedule().max_cycles,
                    advice.reason
                ),
            ),
            AdviceAction::Keep => match coach_keep_refused(&judgement, self.exp) {
                None => {
                    self.variants[i].coach_keep = true;
                    (
                        true,
                        false,
                        format!("the coach advised keeping it: {}", advice.reason),
                    )
                }
                Some(why) => (
                    false,
                    false,
                    format!(
                        "the coach advised keeping it, which the rules forbid ({why}): {}",
                        advice.reason
                    ),
                ),
            },
        };
        self.ctx.emit(EventKind::Advised {
            variant: &name,
            advice: &advice,
            followed,
        });
        self.variants[i].notes.push(note);
        extend
    }
}

/// Why a coach's `keep` cannot be honoured, if it cannot (the rules of the coach issue: no
/// guardrail fired, the error bound holds, the estimate is not a regression).
fn coach_keep_refused(judgement: &Judgement, experiment: &Experiment) -> Option<String> {
    if let Some(guardrail) = &judgement.guardrail {
        return Some(format!("a guardrail fired: {guardrail}"));
    }
    let max = experiment.decision().max_error_increase_pp;
    match judgement.estimates.error_rate_change_bounds_pp {
        None => return Some("the error-rate bound is unknown".to_owned()),
        Some(bounds) if bounds.upper > max.get() => {
            return Some(format!(
                "the error rate may rise by up to {:.2} pp, more than max_error_increase_pp = {max}",
                bounds.upper
            ));
        }
        Some(_) => {}
    }
    match judgement.metric_change_pct {
        None => Some("there is no estimate of the change".to_owned()),
        Some(change) if change > 0.0 => {
            Some(format!("the estimate is a regression ({change:+.1} %)"))
        }
        Some(_) => None,
    }
}
