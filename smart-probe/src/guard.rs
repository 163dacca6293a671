//! The guardrail while a block runs: a trailing window of outcomes (error rate) and the time since
//! the target last answered, and the reason a block was stopped early.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::GuardConfig;

/// The width of one window slot.
pub(crate) const SLOT: Duration = Duration::from_millis(100);
/// The error-rate rule needs at least this many outcomes in the window, so one or two errors
/// right after a reload never abort a slow-rate block on their own.
const MIN_WINDOW_OUTCOMES: u64 = 10;

/// Why a block stopped before its planned end.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Abort {
    /// Too many errors in the trailing window.
    ErrorRate {
        /// The error rate seen over the window, in percent.
        error_rate_pct: f64,
        /// The threshold it passed, in percent.
        threshold_pct: f64,
        /// The window, in seconds.
        window_s: f64,
        /// Seconds from the start of the block (warm-up included).
        at_s: f64,
    },
    /// The target did not answer at all (no response, whatever the status) for the window.
    NoAnswer {
        /// The window, in seconds.
        window_s: f64,
        /// Seconds from the start of the block (warm-up included).
        at_s: f64,
    },
}

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Abort::ErrorRate {
                error_rate_pct,
                threshold_pct,
                window_s,
                at_s,
            } => write!(
                f,
                "error rate {error_rate_pct:.1} % over the last {window_s} s passed the abort \
                 threshold of {threshold_pct} % (after {at_s:.1} s)"
            ),
            Abort::NoAnswer { window_s, at_s } => write!(
                f,
                "the target did not answer for {window_s} s (after {at_s:.1} s)"
            ),
        }
    }
}

/// Outcome counts in 100 ms slots over a trailing window; slot `n` covers
/// `[n * 100 ms, (n + 1) * 100 ms)` from the start of the block.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    slots: Vec<Slot>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    index: u64,
    total: u64,
    errors: u64,
}

impl Window {
    /// A window at least `span` long.
    pub(crate) fn new(span: Duration) -> Window {
        let n = span.as_nanos().div_ceil(SLOT.as_nanos()).max(1);
        Window {
            slots: vec![Slot::default(); usize::try_from(n).unwrap_or(usize::MAX)],
        }
    }

    /// The window's length.
    pub(crate) fn span(&self) -> Duration {
        SLOT * u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    /// Counts an outcome that happened at `at` from the start of the block.
    pub(crate) fn add(&mut self, at: Duration, error: bool) {
        let index = slot_index(at);
        let len = self.slots.len() as u64;
        let slot = &mut self.slots[(index % len) as usize];
        if slot.index != index || slot.total == 0 {
            *slot = Slot {
                index,
                total: 0,
                errors: 0,
            };
        }
        slot.total += 1;
        slot.errors += u64::from(error);
    }

    /// `(outcomes, errors)` in the window that ends at `now` (from the start of the block).
    pub(crate) fn totals(&self, now: Duration) -> (u64, u64) {
        let current = slot_index(now);
        let oldest = current.saturating_sub(self.slots.len() as u64 - 1);
        self.slots
            .iter()
            .filter(|s| s.total > 0 && (oldest..=current).contains(&s.index))
            .fold((0, 0), |(t, e), s| (t + s.total, e + s.errors))
    }
}

fn slot_index(at: Duration) -> u64 {
    u64::try_from(at.as_nanos() / SLOT.as_nanos()).unwrap_or(u64::MAX)
}

/// The guard's view of a running block.
#[derive(Debug, Clone)]
pub(crate) struct GuardState {
    config: GuardConfig,
    window: Window,
    /// The send time of the oldest request sent since the last answer, if any.
    unanswered_since: Option<Duration>,
}

impl GuardState {
    pub(crate) fn new(config: GuardConfig) -> GuardState {
        GuardState {
            config,
            window: Window::new(config.window()),
            unanswered_since: None,
        }
    }

    /// A request was sent at `at`.
    pub(crate) fn sent(&mut self, at: Duration) {
        self.unanswered_since.get_or_insert(at);
    }

    /// A request ended at `at`: with an answer (any status) or not, as an error or not.
    pub(crate) fn ended(&mut self, at: Duration, answered: bool, error: bool) {
        self.window.add(at, error);
        if answered {
            self.unanswered_since = None;
        }
    }

    /// Whether the block must stop, `now` from its start.
    pub(crate) fn check(&self, now: Duration) -> Option<Abort> {
        let window = self.config.window();
        let window_s = window.as_secs_f64();
        if let Some(since) = self.unanswered_since
            && now.saturating_sub(since) >= window
        {
            return Some(Abort::NoAnswer {
                window_s,
                at_s: now.as_secs_f64(),
            });
        }
        if now < window {
            return None;
        }
        let (total, errors) = self.window.totals(now);
        if total < MIN_WINDOW_OUTCOMES {
            return None;
        }
        let rate = errors as f64 * 100.0 / total as f64;
        (rate > self.config.max_error_rate_pct()).then_some(Abort::ErrorRate {
            error_rate_pct: rate,
            threshold_pct: self.config.max_error_rate_pct(),
            window_s,
            at_s: now.as_secs_f64(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn guard(window_ms: u64, pct: f64) -> GuardState {
        GuardState::new(GuardConfig::new(ms(window_ms), pct.try_into().unwrap()).unwrap())
    }

    #[test]
    fn the_window_forgets_old_slots() {
        let mut w = Window::new(ms(1_000));
        assert_eq!(w.span(), ms(1_000));
        w.add(ms(50), true);
        w.add(ms(950), false);
        assert_eq!(w.totals(ms(999)), (2, 1));
        assert_eq!(w.totals(ms(1_050)), (1, 0));
        w.add(ms(1_060), true); // reuses slot 0's place
        assert_eq!(w.totals(ms(1_100)), (2, 1));
        assert_eq!(w.totals(ms(5_000)), (0, 0));
    }

    #[test]
    fn error_rate_aborts_only_over_a_full_window() {
        let mut g = guard(1_000, 20.0);
        for i in 0..50 {
            g.sent(ms(i * 10));
            g.ended(ms(i * 10 + 1), true, i % 2 == 0);
        }
        assert_eq!(g.check(ms(500)), None, "the window is not full yet");
        match g.check(ms(1_000)) {
            Some(Abort::ErrorRate { error_rate_pct, .. }) => assert_eq!(error_rate_pct, 50.0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn few_errors_or_few_outcomes_do_not_abort() {
        let mut g = guard(1_000, 20.0);
        for i in 0..100 {
            g.sent(ms(i * 10));
            g.ended(ms(i * 10 + 1), true, i < 2);
        }
        assert_eq!(g.check(ms(1_000)), None);
        let mut g = guard(1_000, 20.0);
        for i in 0..5 {
            g.ended(ms(900 + i), false, true);
        }
        assert_eq!(g.check(ms(1_000)), None, "5 outcomes are too few to judge");
    }

    #[test]
    fn silence_aborts_after_the_window() {
        let mut g = guard(1_000, 20.0);
        g.sent(ms(100));
        g.ended(ms(110), true, false);
        assert_eq!(
            g.check(ms(5_000)),
            None,
            "nothing was waiting for an answer"
        );
        g.sent(ms(5_000));
        g.sent(ms(5_010));
        assert_eq!(g.check(ms(5_999)), None);
        match g.check(ms(6_000)) {
            Some(Abort::NoAnswer { window_s, at_s }) => assert_eq!((window_s, at_s), (1.0, 6.0)),
            other => panic!("{other:?}"),
        }
        let text = g.check(ms(6_000)).unwrap().to_string();
        assert!(text.contains("did not answer for 1 s"), "{text}");
    }
}
