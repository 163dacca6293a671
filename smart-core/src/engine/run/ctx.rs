//! What the sequence and its concurrent waits (ticks, progress) share: the clock, the observer,
//! cancellation and the time box.

use std::cell::RefCell;
use std::time::Duration;

use super::Stop;
use crate::engine::CancelToken;
use crate::engine::event::{Event, EventKind};
use crate::engine::ports::{ClockPort, ObserverPort};
use crate::engine::race::{Either, race};

/// How often the engine ticks its observer while it waits.
const TICK: Duration = Duration::from_secs(1);

/// What both the sequence and the concurrent waits (ticks, progress) share.
pub(super) struct Ctx<'a, K, O> {
    pub(super) clock: &'a K,
    pub(super) observer: RefCell<&'a mut O>,
    pub(super) observer_error: RefCell<Option<String>>,
    pub(super) cancel: &'a CancelToken,
    pub(super) start: Duration,
    pub(super) time_box: Duration,
    pub(super) per_block_s: f64,
    pub(super) blocks_left: RefCell<u32>,
}

impl<K: ClockPort, O: ObserverPort> Ctx<'_, K, O> {
    pub(super) fn elapsed(&self) -> Duration {
        self.clock.monotonic().saturating_sub(self.start)
    }

    pub(super) fn emit(&self, kind: EventKind<'_>) {
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
    pub(super) fn check_stop(&self) -> Option<Stop> {
        if self.cancel.is_cancelled() {
            Some(Stop::Cancelled)
        } else if self.elapsed() >= self.time_box {
            Some(Stop::TimedOut)
        } else {
            self.observer_error.borrow().clone().map(Stop::Failed)
        }
    }

    /// Completes when the run is cancelled or the time box passes; ticks the observer meanwhile.
    pub(super) async fn interrupted(&self) -> Stop {
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
    pub(super) async fn ticking<F: Future>(&self, step: F) -> F::Output {
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
