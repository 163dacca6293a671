//! The run itself: the sequence of `docs/engine.md` over the ports.
//!
//! This file holds the entry point, the state the sequence keeps and its outer loop; the steps
//! live beside it: [`ctx`] (time, cancellation, events), [`variant`] (one variant's test and the
//! coach), [`block`] (switching and measuring one block), [`keep`] (the winner's soak) and
//! [`finish`] (the decisions and the report).

mod block;
mod ctx;
mod finish;
mod keep;
mod variant;

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use super::event::{EventKind, Phase, RunPlan};
use super::ports::{ApplierPort, ClockPort, CoachPort, JudgePort, ObserverPort, ProbePort};
use super::types::{Arm, BlockMeasurement, Conclusion, FailureCause, Verdict};
use super::{EngineError, Ports, RunConfig, RunEnd, RunReport};
use crate::Experiment;
use crate::audit::format_utc;
use crate::records::DecisionKind;
use ctx::Ctx;

/// Runs `experiment` once through `ports` and returns what it decided.
///
/// The sequence, in short: check that the configuration as found is sound (else change nothing);
/// for each variant, measure ABBA/BAAB cycles (or the seed's baseline-then-variant design when
/// `interleave` is off), every switch through the applier followed by a cool-down whose requests
/// are discarded, feeding the judge after each cycle and stopping on its answer or at once on a
/// guardrail; restore the original after each variant; then switch to the judge's single best
/// variant (if any), soak it under the guardrails and keep it. The time box, cancellation and any
/// failure restore the original and abort the open decisions.
///
/// Returns `Err` only when the original could not be restored.
pub async fn run<P, A, J, K, C, O>(
    experiment: &Experiment,
    config: &RunConfig,
    ports: Ports<'_, P, A, J, K, C, O>,
) -> Result<RunReport, EngineError>
where
    P: ProbePort,
    A: ApplierPort,
    J: JudgePort,
    K: ClockPort,
    C: CoachPort,
    O: ObserverPort,
{
    let Ports {
        probe,
        applier,
        judge,
        clock,
        coach,
        observer,
    } = ports;
    let schedule = experiment.schedule();
    let blocks_per_variant = if schedule.interleave {
        4 * schedule.max_cycles
    } else {
        2 * schedule.max_cycles
    };
    let variants = experiment.variants();
    let durations = experiment.durations();
    let expected_s = durations.expected_s;
    let total_blocks = (variants.len() as u32 * blocks_per_variant).max(1);
    let start = clock.monotonic();
    let started = clock.wall();
    let plan = RunPlan {
        run_id: config.run_id.clone(),
        experiment: experiment.name().to_owned(),
        definition_hash: experiment.definition_hash().to_owned(),
        seed: config.seed,
        variants: variants.iter().map(|v| v.name.clone()).collect(),
        interleave: schedule.interleave,
        blocks_per_variant,
        max_duration_s: schedule.max_duration_s,
        expected_s,
        worst_case_s: durations.worst_case_s,
        started: format_utc(started),
    };
    let ctx = Ctx {
        clock,
        observer: RefCell::new(observer),
        observer_error: RefCell::new(None),
        cancel: &config.cancel,
        start,
        time_box: Duration::from_secs_f64(schedule.max_duration_s),
        per_block_s: expected_s / f64::from(total_blocks),
        blocks_left: RefCell::new(total_blocks),
    };
    ctx.emit(EventKind::RunStarted {
        plan: &plan,
        experiment,
    });
    let mut runner = Runner {
        exp: experiment,
        run_id: config.run_id.clone(),
        seed: config.seed,
        probe,
        applier,
        judge,
        coach,
        ctx,
        live: Live::Original,
        config_changed: false,
        block_index: 0,
        phase: None,
        variants: variants
            .iter()
            .map(|v| VariantState::new(&v.name))
            .collect(),
        blocks_per_variant,
        stop: None,
        kept: None,
    };
    let result = runner.execute().await;
    runner.finish(&plan, started, result).await
}

/// Why the run stops before its end.
#[derive(Debug, Clone, PartialEq)]
enum Stop {
    Cancelled,
    TimedOut,
    BaselineUnsound(String),
    Failed(String),
}

impl Stop {
    fn end(&self) -> RunEnd {
        match self {
            Stop::Cancelled => RunEnd::Cancelled,
            Stop::TimedOut => RunEnd::TimedOut,
            Stop::BaselineUnsound(_) => RunEnd::BaselineUnsound,
            Stop::Failed(_) => RunEnd::Failed,
        }
    }
}

/// Restoring the original failed: nothing more can be done safely.
#[derive(Debug)]
struct Fatal(String);

/// Which configuration is live, as far as the engine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Live {
    Original,
    Baseline,
    Variant(usize),
}

/// How a block ended.
enum BlockEnd {
    Done(Box<BlockMeasurement>),
    /// A guardrail stopped it; the reason.
    Guardrail(String),
    /// The switch before it failed (already handled: the original is live).
    SwitchFailed,
    /// The run is stopping (`Runner::stop` is set).
    Stopped,
}

/// What the engine tracks per variant besides the judge's statistics.
#[derive(Debug)]
struct VariantState {
    name: String,
    started: Option<SystemTime>,
    finished: Option<SystemTime>,
    /// Test blocks started (the running one included).
    blocks: u32,
    /// Test blocks that finished.
    measured: u32,
    /// The judge's last stop verdict.
    verdict: Option<Verdict>,
    /// A decision the engine imposes (a guardrail, a failed switch, an interruption) and why.
    imposed: Option<(DecisionKind, String)>,
    /// Engine notes appended to the judge's reasons.
    notes: Vec<String>,
    /// A coach advised keep and the rules allow it.
    coach_keep: bool,
}

impl VariantState {
    fn new(name: &str) -> VariantState {
        VariantState {
            name: name.to_owned(),
            started: None,
            finished: None,
            blocks: 0,
            measured: 0,
            verdict: None,
            imposed: None,
            notes: Vec::new(),
            coach_keep: false,
        }
    }

    fn impose(&mut self, kind: DecisionKind, reason: String) {
        if self.imposed.is_none() {
            self.imposed = Some((kind, reason));
        }
    }

    /// A candidate for keeping: the judge or a coach said keep, and nothing overruled it.
    fn candidate(&self) -> bool {
        self.imposed.is_none() && (self.verdict == Some(Verdict::Keep) || self.coach_keep)
    }
}

struct Runner<'a, 'e, P, A, J, K, C, O> {
    exp: &'e Experiment,
    run_id: String,
    seed: u64,
    probe: &'a mut P,
    applier: &'a mut A,
    judge: &'a mut J,
    coach: &'a mut C,
    ctx: Ctx<'a, K, O>,
    live: Live,
    /// The config changed since the last block: the next block starts with a cool-down.
    config_changed: bool,
    block_index: u32,
    phase: Option<(Phase, Option<usize>, Option<Arm>)>,
    variants: Vec<VariantState>,
    blocks_per_variant: u32,
    stop: Option<Stop>,
    kept: Option<usize>,
}

impl<P: ProbePort, A: ApplierPort, J: JudgePort, K: ClockPort, C: CoachPort, O: ObserverPort>
    Runner<'_, '_, P, A, J, K, C, O>
{
    /// The whole sequence; `Err` only when restoring the original failed.
    async fn execute(&mut self) -> Result<(), Fatal> {
        self.set_phase(Phase::CheckingBaseline, None, None);
        if let Err(failure) = self.ctx.ticking(self.applier.check_baseline()).await {
            let (reason, stop): (String, fn(String) -> Stop) = if failure.cause
                == FailureCause::Config
            {
                (
                    format!(
                        "the configuration as found is not sound, so nothing was changed: {failure}"
                    ),
                    Stop::BaselineUnsound,
                )
            } else {
                // smart's own failure (its state disk, the experiment): the server is not to
                // blame.
                (
                    format!("the run could not start, so nothing was changed: {failure}"),
                    Stop::Failed,
                )
            };
            self.ctx.emit(EventKind::Problem(&reason));
            self.stop = Some(stop(reason));
            return Ok(());
        }
        let count = self.variants.len();
        for i in 0..count {
            if let Some(stop) = self.ctx.check_stop() {
                self.stop = Some(stop);
                break;
            }
            self.test_variant(i).await?;
            *self.ctx.blocks_left.borrow_mut() = (count - i - 1) as u32 * self.blocks_per_variant;
            if self.stop.is_some() {
                self.variants[i].finished = Some(self.ctx.clock.wall());
                break;
            }
            // The last variant stays live when it may be kept: no pointless switch back and forth.
            let keep_live = i + 1 == count && self.variants[i].candidate();
            if !keep_live {
                self.restore().await?;
            }
            self.variants[i].finished = Some(self.ctx.clock.wall());
        }
        if self.stop.is_none() {
            let conclusion = self.judge.conclude();
            if let Some(w) = self.winner(&conclusion) {
                self.keep_winner(w).await?;
            }
        }
        if self.kept.is_none() {
            self.restore().await?;
            self.close().await?;
        }
        Ok(())
    }

    /// Closes a run that keeps nothing, with the original live.
    async fn close(&mut self) -> Result<(), Fatal> {
        self.set_phase(Phase::Restoring, None, None);
        match self.ctx.ticking(self.applier.close()).await {
            Ok(()) => Ok(()),
            Err(failure) => {
                let why = format!(
                    "verifying the original configuration and closing the run failed: {failure}"
                );
                self.ctx.emit(EventKind::Problem(&why));
                Err(Fatal(why))
            }
        }
    }

    /// The variant to try keeping: the judge's choice, else the best a coach advised keeping.
    fn winner(&self, conclusion: &Conclusion) -> Option<usize> {
        let judged = conclusion
            .kept
            .filter(|&w| w < self.variants.len() && self.variants[w].imposed.is_none());
        judged.or_else(|| {
            (0..self.variants.len())
                .filter(|&i| self.variants[i].candidate() && self.variants[i].coach_keep)
                .min_by(|&a, &b| {
                    let change = |i: usize| {
                        conclusion
                            .variants
                            .get(i)
                            .and_then(|j| j.metric_change_pct)
                            .unwrap_or(0.0)
                    };
                    change(a).total_cmp(&change(b))
                })
        })
    }
}

/// `1 block`, `3 blocks`.
fn blocks(n: u32) -> String {
    if n == 1 {
        "1 block".to_owned()
    } else {
        format!("{n} blocks")
    }
}

/// A stop in words.
fn describe(stop: &Stop) -> String {
    match stop {
        Stop::Cancelled => "the run was cancelled (SIGINT/SIGTERM)".to_owned(),
        Stop::TimedOut => "the time box (max_duration_s) passed".to_owned(),
        Stop::BaselineUnsound(why) | Stop::Failed(why) => why.clone(),
    }
}
