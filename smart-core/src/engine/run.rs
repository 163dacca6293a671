//! The run itself: the sequence of `docs/engine.md` over the ports.

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use super::design::cycle_order;
use super::event::{BlockInfo, BlockKind, Event, EventKind, Phase, PhaseInfo, RunPlan};
use super::ports::{Applier, Clock, Coach, Judge, Observer, Probe};
use super::race::{Either, race};
use super::types::{
    AdviceAction, AdviceRequest, Arm, BlockMeasurement, BlockRequest, Conclusion, CycleBlock,
    FailureCause, JudgeStep, Judgement, LiveProgress, Verdict,
};
use super::{CancelToken, EngineError, LiveConfig, Ports, RunConfig, RunEnd, RunReport};
use crate::audit::format_utc;
use crate::records::{DecisionKind, DecisionRecord};
use crate::{BASELINE, Experiment};

/// How often the engine ticks its observer while it waits.
const TICK: Duration = Duration::from_secs(1);

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
    P: Probe,
    A: Applier,
    J: Judge,
    K: Clock,
    C: Coach,
    O: Observer,
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

/// What both the sequence and the concurrent waits (ticks, progress) share.
struct Ctx<'a, K, O> {
    clock: &'a K,
    observer: RefCell<&'a mut O>,
    observer_error: RefCell<Option<String>>,
    cancel: &'a CancelToken,
    start: Duration,
    time_box: Duration,
    per_block_s: f64,
    blocks_left: RefCell<u32>,
}

impl<K: Clock, O: Observer> Ctx<'_, K, O> {
    fn elapsed(&self) -> Duration {
        self.clock.monotonic().saturating_sub(self.start)
    }

    fn emit(&self, kind: EventKind<'_>) {
        let elapsed = self.elapsed();
        let planned = Duration::from_secs_f64(
            (f64::from(*self.blocks_left.borrow()) * self.per_block_s).max(0.0),
        );
        let event = Event {
            at: self.clock.wall(),
            elapsed,
            left: planned.min(self.time_box.saturating_sub(elapsed)),
            kind,
        };
        let result = self.observer.borrow_mut().event(&event);
        if let Err(e) = result {
            self.observer_error
                .borrow_mut()
                .get_or_insert_with(|| format!("recording the run failed: {e}"));
        }
    }

    /// Why the run must stop now, if it must.
    fn check_stop(&self) -> Option<Stop> {
        if self.cancel.is_cancelled() {
            Some(Stop::Cancelled)
        } else if self.elapsed() >= self.time_box {
            Some(Stop::TimedOut)
        } else {
            self.observer_error.borrow().clone().map(Stop::Failed)
        }
    }

    /// Completes when the run is cancelled or the time box passes; ticks the observer meanwhile.
    async fn interrupted(&self) -> Stop {
        loop {
            if self.cancel.is_cancelled() {
                return Stop::Cancelled;
            }
            let left = self.time_box.saturating_sub(self.elapsed());
            if left.is_zero() {
                return Stop::TimedOut;
            }
            match race(self.cancel.cancelled(), self.clock.sleep(left.min(TICK))).await {
                Either::Left(()) => return Stop::Cancelled,
                Either::Right(()) => self.emit(EventKind::Tick),
            }
        }
    }

    /// Runs `step` to completion, ticking the observer meanwhile (for steps that must not be
    /// dropped halfway, like an applier's).
    async fn ticking<F: Future>(&self, step: F) -> F::Output {
        let ticks = async {
            loop {
                self.clock.sleep(TICK).await;
                self.emit(EventKind::Tick);
            }
        };
        match race(step, ticks).await {
            Either::Left(output) => output,
            Either::Right(never) => never,
        }
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

impl<P, A, J, K, C, O> Runner<'_, '_, P, A, J, K, C, O>
where
    P: Probe,
    A: Applier,
    J: Judge,
    K: Clock,
    C: Coach,
    O: Observer,
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

    /// Tests one variant until the judge stops it, a guardrail fires, a switch fails or the run
    /// must stop.
    async fn test_variant(&mut self, i: usize) -> Result<(), Fatal> {
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
    fn block_failed(&mut self, i: usize, arm: Arm, end: BlockEnd) -> Result<(), Fatal> {
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
    fn stop_reason(&self, i: usize) -> String {
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
    async fn consult_coach(&mut self, i: usize, cycles_left: bool) -> bool {
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

impl<P, A, J, K, C, O> Runner<'_, '_, P, A, J, K, C, O>
where
    P: Probe,
    A: Applier,
    J: Judge,
    K: Clock,
    C: Coach,
    O: Observer,
{
    fn arm_name(&self, i: usize, arm: Arm) -> String {
        match arm {
            Arm::Baseline => BASELINE.to_owned(),
            Arm::Variant => self.variants[i].name.clone(),
        }
    }

    fn set_phase(&mut self, phase: Phase, variant: Option<usize>, arm: Option<Arm>) {
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
    fn is_live(&self, target: Live) -> bool {
        self.live == target
            || (target == Live::Baseline
                && self.live == Live::Original
                && self.exp.baseline().is_none())
    }

    /// Measures one block of variant `i`'s test (or soak) with `arm` live, switching first if
    /// needed; the probe races cancellation and the time box.
    async fn measure(
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
    async fn switch_to(&mut self, i: usize, arm: Arm) -> Result<bool, Fatal> {
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
    async fn restore(&mut self) -> Result<(), Fatal> {
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

    /// Makes the winner live, soaks it under the guardrails, and keeps it; any failure reverts.
    async fn keep_winner(&mut self, w: usize) -> Result<(), Fatal> {
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

    /// Records the decisions, reports them, and builds the run's report.
    async fn finish(
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
    fn decision(
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
            p50_change_pct: judgement.p50_change_pct,
            p50_change_bounds_pct: judgement.p50_change_bounds_pct,
            error_rate_change_pp: judgement.error_rate_change_pp,
            error_rate_change_bounds_pp: judgement.error_rate_change_bounds_pp,
            p_value: judgement.p_value,
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

/// Why a coach's `keep` cannot be honoured, if it cannot (the rules of the coach issue: no
/// guardrail fired, the error bound holds, the estimate is not a regression).
fn coach_keep_refused(judgement: &Judgement, experiment: &Experiment) -> Option<String> {
    if let Some(guardrail) = &judgement.guardrail {
        return Some(format!("a guardrail fired: {guardrail}"));
    }
    let max = experiment.decision().max_error_increase_pp;
    match judgement.error_rate_change_bounds_pp {
        None => return Some("the error-rate bound is unknown".to_owned()),
        Some(bounds) if bounds.upper > max => {
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

/// The judgement of a variant the judge has nothing on.
fn empty_judgement() -> Judgement {
    Judgement {
        verdict: Verdict::Inconclusive,
        cycles: 0,
        metric_change_pct: None,
        p50_change_pct: None,
        p50_change_bounds_pct: None,
        error_rate_change_pp: None,
        error_rate_change_bounds_pp: None,
        p_value: None,
        guardrail: None,
        reasons: Vec::new(),
        report: serde_json::Value::Null,
    }
}
