//! The run window: the daily hours in which runs may happen (`run_window = "02:00-06:00 UTC"` in
//! `smart.toml`), so experiments stay out of the hours that matter.
//!
//! A run starts only when the whole of its time box (`schedule.max_duration_s`) fits before the
//! window closes; the engine's time box then ends it in time, whatever happens. Otherwise the loop
//! waits (on the [`ClockPort`](crate::engine::ClockPort) port, so tests use simulated time) until the
//! window next opens. Times are UTC: smart reads no local time zone, and a window that shifted with
//! one (or with daylight saving) could put a run into the busy hours it was meant to avoid.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Bench;
use crate::Experiment;
use crate::engine::race::{Either, race};
use crate::engine::{CancelToken, ClockPort};

/// Seconds in a day (Unix time has no leap seconds).
const DAY_S: u64 = 86_400;

/// A daily window `HH:MM-HH:MM` in UTC; it may run past midnight (`22:00-04:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunWindow {
    /// Minutes after midnight UTC at which the window opens.
    start: u32,
    /// Minutes after midnight UTC at which it closes (less than `start`: the next day).
    end: u32,
}

impl RunWindow {
    /// Reads `"HH:MM-HH:MM UTC"`; the message says what is wrong and how to write it.
    pub fn parse(text: &str) -> Result<RunWindow, String> {
        let example = "write it like \"02:00-06:00 UTC\"";
        let trimmed = text.trim();
        let Some(range) = trimmed.strip_suffix("UTC") else {
            return Err(format!(
                "\"{text}\" has no time zone; {example} (the times are UTC: smart reads no local time zone)"
            ));
        };
        let Some((start, end)) = range.trim_end().split_once('-') else {
            return Err(format!("\"{text}\" is not a range of two times; {example}"));
        };
        let start = minutes(start.trim()).ok_or_else(|| {
            format!(
                "\"{text}\": `{}` is not a time HH:MM; {example}",
                start.trim()
            )
        })?;
        let end = minutes(end.trim()).ok_or_else(|| {
            format!(
                "\"{text}\": `{}` is not a time HH:MM; {example}",
                end.trim()
            )
        })?;
        if start == end {
            return Err(format!(
                "\"{text}\" opens and closes at the same time; give a window at least a minute long, or remove run_window to run at any time"
            ));
        }
        Ok(RunWindow { start, end })
    }

    /// How long the window stays open each day.
    pub fn length(&self) -> Duration {
        let minutes = (self.end + 24 * 60 - self.start) % (24 * 60);
        Duration::from_secs(u64::from(minutes) * 60)
    }

    /// How long to wait from `now` before a run that may last `needed` can start: zero when it
    /// fits before the window closes, else the time until the window next opens. A run longer
    /// than the window never fits ([`RunWindow::length`]; the loop refuses those up front).
    pub fn wait(&self, now: SystemTime, needed: Duration) -> Duration {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let day = Duration::from_secs(DAY_S);
        let opened = Duration::from_secs(u64::from(self.start) * 60);
        // How far `now` is past the latest opening (0 ≤ into < 1 day).
        let of_day = Duration::new(since.as_secs() % DAY_S, since.subsec_nanos());
        let into = if of_day >= opened {
            of_day - opened
        } else {
            of_day + day - opened
        };
        if into < self.length() && needed <= self.length() - into {
            Duration::ZERO
        } else {
            day - into
        }
    }
}

impl fmt::Display for RunWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02} UTC",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// The experiments whose time box is longer than `window` (they could never start), each as
/// `name (max_duration_s = N)`.
pub(super) fn too_long(window: &RunWindow, experiments: &[Experiment]) -> Vec<String> {
    experiments
        .iter()
        .filter(|e| time_box(e) > window.length())
        .map(|e| {
            format!(
                "{} (max_duration_s = {})",
                e.name(),
                e.schedule().max_duration_s
            )
        })
        .collect()
}

/// Waits until `experiment` may start in `window`; `false` when `cancel` was tripped meanwhile.
pub(super) async fn wait_for<K: ClockPort, B: Bench>(
    window: &RunWindow,
    experiment: &Experiment,
    clock: &K,
    cancel: &CancelToken,
    bench: &mut B,
) -> bool {
    loop {
        let wait = window.wait(clock.wall(), time_box(experiment));
        if wait.is_zero() {
            return !cancel.is_cancelled();
        }
        bench.waiting(experiment, window, wait);
        if let Either::Right(()) = race(clock.sleep(wait), cancel.cancelled()).await {
            return false;
        }
    }
}

/// The longest a run of `experiment` lasts: its time box.
fn time_box(experiment: &Experiment) -> Duration {
    Duration::from_secs_f64(experiment.schedule().max_duration_s)
}

/// Minutes after midnight of `HH:MM` (00:00 to 24:00; 24:00 is midnight at the window's end).
fn minutes(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(0),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hh: u64, mm: u64) -> SystemTime {
        // 2026-01-01T00:00:00Z plus the time of day.
        UNIX_EPOCH + Duration::from_secs(1_767_225_600 + hh * 3600 + mm * 60)
    }

    const H: u64 = 3600;

    #[test]
    fn waits_until_a_run_fits_before_the_window_closes() {
        let check = |window: &str, now: SystemTime, needed_h: u64, wait_s: u64| {
            let w = RunWindow::parse(window).unwrap();
            assert_eq!(
                w.wait(now, Duration::from_secs(needed_h * H)),
                Duration::from_secs(wait_s),
                "{window} at {now:?} for {needed_h} h"
            );
        };
        check("02:00-06:00 UTC", at(0, 0), 1, 2 * H);
        check("02:00-06:00 UTC", at(2, 0), 1, 0);
        check("02:00-06:00 UTC", at(5, 0), 1, 0);
        check("02:00-06:00 UTC", at(5, 30), 1, 20 * H + 30 * 60);
        check("02:00-06:00 UTC", at(6, 0), 1, 20 * H);
        check("02:00-06:00 UTC", at(2, 0), 4, 0);
        // Past midnight: open from 22:00 to 04:00 the next day.
        check("22:00-04:00 UTC", at(23, 0), 5, 0);
        check("22:00-04:00 UTC", at(1, 0), 3, 0);
        check("22:00-04:00 UTC", at(1, 0), 4, 21 * H);
        check("22:00-04:00 UTC", at(12, 0), 1, 10 * H);
        check("00:00-23:59 UTC", at(23, 59), 0, 60);
    }

    #[test]
    fn reads_and_shows_windows() {
        let w = RunWindow::parse(" 22:30-04:00 UTC ").unwrap();
        assert_eq!(w.to_string(), "22:30-04:00 UTC");
        assert_eq!(w.length(), Duration::from_secs(5 * H + 30 * 60));
        assert_eq!(
            RunWindow::parse("02:00-24:00 UTC").unwrap().length(),
            Duration::from_secs(22 * H)
        );
        for (text, says) in [
            ("02:00-06:00", "has no time zone"),
            ("02:00 UTC", "is not a range of two times"),
            ("2:00-06:00 UTC", "`2:00` is not a time HH:MM"),
            ("02:00-25:00 UTC", "`25:00` is not a time HH:MM"),
            ("02:60-06:00 UTC", "`02:60` is not a time HH:MM"),
            ("03:00-03:00 UTC", "opens and closes at the same time"),
        ] {
            let message = RunWindow::parse(text).unwrap_err();
            assert!(message.contains(says), "{text}: {message}");
            assert!(message.contains("02:00-06:00 UTC") || message.contains("remove run_window"));
        }
    }
}
