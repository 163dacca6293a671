//! The ports: the traits through which the engine measures, changes config, judges, tells time,
//! reports and asks for advice. Other crates implement them (smart-probe, smart-apply,
//! smart-decide, the coach); tests implement them with fakes and a simulated clock.
//!
//! The traits use `async fn` without a `Send` bound: the engine's future is driven on one thread
//! (`block_on`), so implementations may hold `Rc`s and `RefCell`s across awaits.

use std::time::{Duration, SystemTime};

use super::event::Event;
use super::types::{
    Advice, AdviceAction, AdviceRequest, ApplyFailure, BlockMeasurement, BlockRequest, Conclusion,
    CycleBlock, JudgeStep, Judgement, LiveProgress, PortError,
};
use crate::records::DecisionRecord;

/// Measures blocks against the experiment's target.
#[expect(
    async_fn_in_trait,
    reason = "the engine is driven on one thread; implementations need not be Send"
)]
pub trait ProbePort {
    /// Sends load for `request.warmup + request.duration`, records what comes after the warm-up,
    /// and returns early (with [`BlockMeasurement::aborted`] set) when a guardrail trips.
    /// `progress` should be called at least once a second while the block runs.
    ///
    /// The engine may drop the returned future (cancellation, time box): it must then stop
    /// sending at once.
    async fn measure(
        &mut self,
        request: &BlockRequest<'_>,
        progress: &mut dyn FnMut(&LiveProgress),
    ) -> Result<BlockMeasurement, PortError>;
}

/// Changes the live configuration and puts the original back.
///
/// Every method runs to completion (the engine never drops these futures halfway): each of them
/// must be bounded by its own timeouts.
#[expect(
    async_fn_in_trait,
    reason = "the engine is driven on one thread; implementations need not be Send"
)]
pub trait ApplierPort {
    /// Checks that the configuration as found is sound (validates and is healthy) before any
    /// change; on failure nothing was changed. Checks nothing by default (an applier whose arms
    /// are values in memory has no files to validate).
    async fn check_baseline(&mut self) -> Result<(), ApplyFailure> {
        Ok(())
    }

    /// Makes `arm` (`baseline` or a variant's name) live: write, validate, reload, live check,
    /// health. On failure it restores the original itself and says whether that worked.
    async fn switch(&mut self, arm: &str) -> Result<(), ApplyFailure>;

    /// Restores the original configuration (reload, live check, health) and verifies that what
    /// is on disk equals the backup; the run goes on (another variant may follow).
    async fn restore(&mut self) -> Result<(), ApplyFailure>;

    /// Ends a run that keeps nothing: the original is live (the engine restored it); verify it
    /// once more and record the run closed, so recovery has nothing to do. Called once, last,
    /// after a successful [`ApplierPort::check_baseline`]. Does nothing by default (an applier
    /// without a journal has nothing to record).
    async fn close(&mut self) -> Result<(), ApplyFailure> {
        Ok(())
    }

    /// Ends the run with `variant` left live (a durable record, so recovery never reverts it).
    /// Called once, last, instead of [`ApplierPort::close`]. Does nothing by default: the variant
    /// [`ApplierPort::switch`] made live stays live (an applier without a journal has nothing to
    /// record).
    async fn keep(&mut self, variant: &str) -> Result<(), ApplyFailure> {
        let _ = variant;
        Ok(())
    }
}

/// The statistical judge of one experiment: a state machine over finished cycles.
pub trait JudgePort {
    /// Feeds one finished cycle of variant `variant` (its index in the experiment) and answers
    /// whether to measure another.
    fn record_cycle(
        &mut self,
        variant: usize,
        blocks: &[CycleBlock<'_>],
    ) -> Result<JudgeStep, PortError>;

    /// Records that variant `variant` was stopped for `reason` outside the statistics (a
    /// guardrail in a block, a failed switch, a failed soak): it must not be kept.
    fn abort_variant(&mut self, variant: usize, reason: &str);

    /// Continues an inconclusive variant's test up to the schedule's last cycle (a coach's
    /// `extend`), without resetting its statistics.
    fn extend(&mut self, variant: usize) -> Result<(), PortError>;

    /// The judgement of one variant with what was fed so far.
    fn judgement(&self, variant: usize) -> Judgement {
        self.conclude().variants.swap_remove(variant)
    }

    /// Judges all variants: at most one kept, one judgement each.
    fn conclude(&self) -> Conclusion;
}

/// Tells time and waits.
#[expect(
    async_fn_in_trait,
    reason = "the engine is driven on one thread; implementations need not be Send"
)]
pub trait ClockPort {
    /// The wall-clock time, for records.
    fn wall(&self) -> SystemTime;

    /// A monotonic reading (from any origin), for durations and the time box.
    fn monotonic(&self) -> Duration;

    /// Waits for `duration`. Dropping the future cancels the wait.
    async fn sleep(&self, duration: Duration);
}

/// The error an [`ObserverPort`] returns when it cannot record: the engine then stops, restores the
/// original and ends the run (it never keeps a change it could not record).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ObserverError {
    message: String,
}

impl ObserverError {
    /// An error described by `message`.
    pub fn new(message: impl std::fmt::Display) -> ObserverError {
        ObserverError {
            message: message.to_string(),
        }
    }
}

/// Receives everything that happens in a run: records, status files, audit lines, progress bars.
///
/// Called synchronously on the engine's thread; keep it quick. Live progress arrives about once a
/// second, ticks at least every second while the engine waits for something.
pub trait ObserverPort {
    /// One event.
    fn event(&mut self, event: &Event<'_>) -> Result<(), ObserverError>;
}

/// Ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl ObserverPort for NoObserver {
    fn event(&mut self, _event: &Event<'_>) -> Result<(), ObserverError> {
        Ok(())
    }
}

/// Both observers see every event (e.g. the records and a progress bar); the first error wins.
impl<A: ObserverPort, B: ObserverPort> ObserverPort for (A, B) {
    fn event(&mut self, event: &Event<'_>) -> Result<(), ObserverError> {
        let a = self.0.event(event);
        let b = self.1.event(event);
        a.and(b)
    }
}

impl<O: ObserverPort + ?Sized> ObserverPort for &mut O {
    fn event(&mut self, event: &Event<'_>) -> Result<(), ObserverError> {
        (**self).event(event)
    }
}

/// An optional adviser: sees every decision, and may weigh in on inconclusive ones.
///
/// The engine enforces the safety rules whatever the coach says: a `keep` is only honoured when
/// no guardrail fired, the error bound holds and the estimate is not a regression, and it is
/// recorded as `kept-by-coach`.
#[expect(
    async_fn_in_trait,
    reason = "the engine is driven on one thread; implementations need not be Send"
)]
pub trait CoachPort {
    /// Whether this coach advises at all (when not, the engine reverts inconclusive variants
    /// without asking).
    fn advises(&self) -> bool {
        true
    }

    /// Reports a final decision (delivery failures are the coach's to queue and log).
    async fn report(&mut self, decision: &DecisionRecord);

    /// Keeps a final decision to report later, at once and without network (the run was
    /// cancelled before it could be reported); by default it is dropped.
    fn defer(&mut self, _decision: &DecisionRecord) {}

    /// Advises on an inconclusive variant. Any failure or time-out should answer `revert`.
    async fn advise(&mut self, request: &AdviceRequest<'_>) -> Advice;
}

/// No coach: reports go nowhere and every inconclusive variant is reverted.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCoach;

impl CoachPort for NoCoach {
    fn advises(&self) -> bool {
        false
    }

    async fn report(&mut self, _decision: &DecisionRecord) {}

    async fn advise(&mut self, _request: &AdviceRequest<'_>) -> Advice {
        Advice {
            action: AdviceAction::Revert,
            reason: "no coach is configured: the local fail-safe reverts".to_owned(),
        }
    }
}
