//! One block: making an arm live through the applier (and restoring the original), then measuring
//! it with the probe while cancellation and the time box race it.

use std::time::Duration;

use super::{BlockEnd, Fatal, Live, Runner, Stop, blocks, describe};
use crate::BASELINE;
use crate::audit::format_utc;
use crate::engine::event::{BlockInfo, BlockKind, EventKind, Phase, PhaseInfo};
use crate::engine::ports::{ApplierPort, ClockPort, CoachPort, JudgePort, ObserverPort, ProbePort};
use crate::engine::race::{Either, race};
use crate::engine::types::{Arm, BlockRequest, FailureCause, LiveProgress};
use crate::records::DecisionKind;

impl<P: ProbePort, A: ApplierPort, J: JudgePort, K: ClockPort, C: CoachPort, O: ObserverPort>
    Runner<'_, '_, P, A, J, K, C, O>
{
    pub(super) fn arm_name(&self, i: usize, arm: Arm) -> String {
        match arm {
            Arm::Baseline => BASELINE.to_owned(),
            Arm::Variant => self.variants[i].name.clone(),
        }
    }

    pub(super) fn set_phase(&mut self, phase: Phase, variant: Option<usize>, arm: Option<Arm>) {
        let key = (phase, variant, arm);
        if self.phase == Some(key) {
            return;
        }
        self.phase = Some(key);
        let info = PhaseInfo {
            phase,
            variant: variant.map(|i| self.variants[i].name.clone()),
            arm: variant.zip(arm).map(|(i, arm)| self.arm_name(i, arm)),
        };
        self.ctx.emit(EventKind::Phase(&info));
    }

    /// Whether `target` is what serves now (the original is the baseline when the experiment
    /// has no baseline params).
    pub(super) fn is_live(&self, target: Live) -> bool {
        self.live == target
            || (target == Live::Baseline
                && self.live == Live::Original
                && self.exp.baseline().is_none())
    }

    /// Measures one block of variant `i`'s test (or soak) with `arm` live, switching first if
    /// needed; the probe races cancellation and the time box.
    pub(super) async fn measure(
        &mut self,
        i: usize,
        arm: Arm,
        cycle: u32,
        position: u32,
        kind: BlockKind,
        soak: Option<(u32, u32, Duration)>,
    ) -> Result<BlockEnd, Fatal> {
        let duration = soak.map_or(
            Duration::from_secs_f64(self.exp.schedule().block_s),
            |(_, _, d)| d,
        );
        if let Some(stop) = self.ctx.check_stop() {
            self.stop = Some(stop);
            return Ok(BlockEnd::Stopped);
        }
        if !self.switch_to(i, arm).await? {
            return Ok(BlockEnd::SwitchFailed);
        }
        if let Some(stop) = self.ctx.check_stop() {
            self.stop = Some(stop);
            return Ok(BlockEnd::Stopped);
        }
        let phase = match kind {
            BlockKind::Test => Phase::Measuring,
            BlockKind::Soak => Phase::Soaking,
        };
        self.set_phase(phase, Some(i), Some(arm));
        let warmup = if self.config_changed {
            Duration::from_secs_f64(self.exp.schedule().cooldown_s)
        } else {
            Duration::ZERO
        };
        self.block_index += 1;
        let (block_in_variant, blocks_in_variant) = match soak {
            Some((number, count, _)) => (number, count),
            None => {
                self.variants[i].blocks += 1;
                let mut left = self.ctx.blocks_left.borrow_mut();
                *left = left.saturating_sub(1);
                (self.variants[i].blocks, self.blocks_per_variant)
            }
        };
        let info = BlockInfo {
            index: self.block_index,
            kind,
            variant: self.variants[i].name.clone(),
            variant_index: i as u32 + 1,
            arm,
            arm_name: self.arm_name(i, arm),
            cycle,
            position,
            block_in_variant,
            blocks_in_variant,
            warmup_s: warmup.as_secs_f64(),
            duration_s: duration.as_secs_f64(),
            started: format_utc(self.ctx.clock.wall()),
        };
        self.ctx.emit(EventKind::BlockStarted(&info));
        let request = BlockRequest {
            arm: &info.arm_name,
            warmup,
            duration,
            guardrails: self.exp.guardrails(),
        };
        let ctx = &self.ctx;
        let probe = &mut *self.probe;
        let mut progress = |live: &LiveProgress| {
            ctx.emit(EventKind::Progress { block: &info, live });
        };
        let outcome = race(probe.measure(&request, &mut progress), ctx.interrupted()).await;
        Ok(match outcome {
            Either::Left(Ok(measurement)) => {
                self.config_changed = false;
                if kind == BlockKind::Test {
                    self.variants[i].measured += 1;
                }
                self.ctx.emit(EventKind::BlockFinished {
                    block: &info,
                    measurement: &measurement,
                });
                match &measurement.aborted {
                    Some(reason) => {
                        BlockEnd::Guardrail(format!("in block {}: {reason}", info.index))
                    }
                    None => BlockEnd::Done(Box::new(measurement)),
                }
            }
            Either::Left(Err(e)) => {
                let reason = format!("the probe failed in block {}: {e}", info.index);
                self.ctx.emit(EventKind::Problem(&reason));
                self.stop = Some(Stop::Failed(reason));
                BlockEnd::Stopped
            }
            Either::Right(stop) => {
                let reason = format!(
                    "block {} was stopped after {:.1} s: {}",
                    info.index,
                    self.ctx.elapsed().as_secs_f64(),
                    describe(&stop)
                );
                self.ctx.emit(EventKind::Problem(&reason));
                self.stop = Some(stop);
                BlockEnd::Stopped
            }
        })
    }

    /// Makes `arm` of variant `i` live through the applier; `Ok(false)` when the switch failed
    /// (the original is live again and the variant's decision is imposed).
    pub(super) async fn switch_to(&mut self, i: usize, arm: Arm) -> Result<bool, Fatal> {
        let target = match arm {
            Arm::Baseline => Live::Baseline,
            Arm::Variant => Live::Variant(i),
        };
        if self.is_live(target) {
            return Ok(true);
        }
        let name = self.arm_name(i, arm);
        self.set_phase(Phase::Switching, Some(i), Some(arm));
        let result = self.ctx.ticking(self.applier.switch(&name)).await;
        self.config_changed = true;
        let failure = match result {
            Ok(()) => {
                self.live = target;
                return Ok(true);
            }
            Err(failure) => failure,
        };
        if failure.original_live {
            self.live = Live::Original;
        } else {
            // Unknown state: restore once more, and fail loudly if that fails too.
            self.live = target;
            self.restore().await?;
        }
        let measured = blocks(self.variants[i].measured);
        let why = match arm {
            Arm::Variant if failure.cause == FailureCause::Smart => {
                // Not the variant's fault: nothing is decided about it, and the run stops.
                let why = format!(
                    "switching to {name} failed for a reason of smart's own ({measured} of its test measured), so the run stopped and the original configuration was restored: {failure}"
                );
                self.variants[i].impose(DecisionKind::Aborted, why.clone());
                self.stop = Some(Stop::Failed(why.clone()));
                why
            }
            Arm::Variant => {
                let why = format!(
                    "switching to {name} failed ({measured} of its test measured), so the original configuration was restored: {failure}"
                );
                self.variants[i].impose(DecisionKind::Revert, why.clone());
                why
            }
            Arm::Baseline => {
                let why = format!(
                    "switching to the baseline params failed, so the run stopped and the original configuration was restored: {failure}"
                );
                self.variants[i].impose(DecisionKind::Aborted, why.clone());
                self.stop = Some(Stop::Failed(why.clone()));
                why
            }
        };
        self.judge.abort_variant(i, &why);
        self.ctx.emit(EventKind::Problem(&why));
        Ok(false)
    }

    /// Restores the original configuration (and verifies it) unless it is live already.
    pub(super) async fn restore(&mut self) -> Result<(), Fatal> {
        if self.live == Live::Original {
            return Ok(());
        }
        self.set_phase(Phase::Restoring, None, None);
        match self.ctx.ticking(self.applier.restore()).await {
            Ok(()) => {
                self.live = Live::Original;
                self.config_changed = true;
                Ok(())
            }
            Err(failure) => {
                let why = format!("restoring the original configuration failed: {failure}");
                self.ctx.emit(EventKind::Problem(&why));
                Err(Fatal(why))
            }
        }
    }
}
