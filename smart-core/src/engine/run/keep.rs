//! Keeping the winner: soak it under the guardrails, then keep it; any failure reverts.

use std::time::Duration;

use super::{BlockEnd, Fatal, Live, Runner};
use crate::engine::event::{BlockKind, EventKind, Phase};
use crate::engine::ports::{ApplierPort, ClockPort, CoachPort, JudgePort, ObserverPort, ProbePort};
use crate::engine::types::Arm;
use crate::records::DecisionKind;

impl<P: ProbePort, A: ApplierPort, J: JudgePort, K: ClockPort, C: CoachPort, O: ObserverPort>
    Runner<'_, '_, P, A, J, K, C, O>
{
    /// Makes the winner live, soaks it under the guardrails, and keeps it; any failure reverts.
    pub(super) async fn keep_winner(&mut self, w: usize) -> Result<(), Fatal> {
        let schedule = self.exp.schedule();
        let (soak_s, block_s) = (schedule.soak_s, schedule.block_s);
        // Validation makes soak_s > 0, so there is at least one soak block.
        let count = (soak_s / block_s).ceil().max(1.0) as u32;
        let mut soaked = 0.0;
        for k in 0..count {
            let duration = Duration::from_secs_f64((soak_s - soaked).min(block_s));
            let soak = Some((k + 1, count, duration));
            match self
                .measure(w, Arm::Variant, k, 0, BlockKind::Soak, soak)
                .await?
            {
                BlockEnd::Done(_) => soaked += duration.as_secs_f64(),
                BlockEnd::SwitchFailed => return Ok(()),
                BlockEnd::Guardrail(reason) => {
                    let why = format!(
                        "the soak failed after {soaked:.0} s of {soak_s} s, so the variant was reverted: a guardrail fired {reason}"
                    );
                    self.judge.abort_variant(w, &why);
                    self.variants[w].impose(DecisionKind::Revert, why.clone());
                    self.ctx.emit(EventKind::Problem(&why));
                    return self.restore().await;
                }
                BlockEnd::Stopped => {
                    let why = self.stop_reason(w);
                    self.variants[w].impose(
                        DecisionKind::Aborted,
                        format!("it was being soaked before keeping, but {why}"),
                    );
                    return Ok(());
                }
            }
        }
        let name = self.variants[w].name.clone();
        self.set_phase(Phase::Keeping, Some(w), Some(Arm::Variant));
        match self.ctx.ticking(self.applier.keep(&name)).await {
            Ok(()) => {
                self.kept = Some(w);
                self.variants[w].finished = Some(self.ctx.clock.wall());
                self.variants[w].notes.push(format!(
                    "soaked for {soak_s} s under the guardrails with none firing, then kept"
                ));
                Ok(())
            }
            Err(failure) => {
                let why = format!(
                    "closing the run with {name} live failed, so the original configuration was restored: {failure}"
                );
                self.variants[w].impose(DecisionKind::Revert, why.clone());
                self.ctx.emit(EventKind::Problem(&why));
                if failure.original_live {
                    self.live = Live::Original;
                }
                self.restore().await
            }
        }
    }
}
