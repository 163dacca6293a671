//! What `smart run` shows while it works: plain log lines on stderr (a phase, each block's
//! figures, each decision), and on a terminal a live status line for the running block.

use std::io::{IsTerminal, Write};

use smart_core::engine::{BlockKind, Event, EventKind, Observer, ObserverError, Phase};
use smart_core::records::DecisionRecord;
use smart_core::schedule::Human;

/// An engine observer that writes progress to stderr.
#[derive(Debug)]
pub(crate) struct Show {
    experiment: String,
    terminal: bool,
    /// A live status line is on screen and must be cleared before the next log line.
    live_line: bool,
}

impl Show {
    pub(crate) fn new(experiment: &str) -> Show {
        Show {
            experiment: experiment.to_owned(),
            terminal: std::io::stderr().is_terminal(),
            live_line: false,
        }
    }

    fn line(&mut self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.live_line {
            let _ = write!(err, "\r\x1b[K");
            self.live_line = false;
        }
        let _ = writeln!(err, "smart: {}: {text}", self.experiment);
    }
}

impl Observer for Show {
    fn event(&mut self, event: &Event<'_>) -> Result<(), ObserverError> {
        match event.kind {
            EventKind::RunStarted { plan, .. } => self.line(&format!(
                "run {} started: {} variant{}, seed {}, up to {} (time box {})",
                plan.run_id,
                plan.variants.len(),
                if plan.variants.len() == 1 { "" } else { "s" },
                plan.seed,
                Human(plan.expected_s),
                Human(plan.max_duration_s),
            )),
            EventKind::Phase(info) => {
                let text = match (info.phase, &info.variant, &info.arm) {
                    (Phase::CheckingBaseline, ..) => {
                        Some("checking the configuration as found".to_owned())
                    }
                    (Phase::Switching, _, Some(arm)) => Some(format!("switching to {arm}")),
                    (Phase::Advising, Some(v), _) => Some(format!("{v}: asking the coach")),
                    (Phase::Soaking, Some(v), _) => {
                        Some(format!("{v}: soaking under the guardrails"))
                    }
                    (Phase::Restoring, ..) => {
                        Some("restoring the original configuration".to_owned())
                    }
                    (Phase::Keeping, Some(v), _) => Some(format!("{v}: keeping it")),
                    _ => None,
                };
                if let Some(text) = text {
                    self.line(&text);
                }
            }
            EventKind::Progress { block, live } if self.terminal => {
                let mut err = std::io::stderr().lock();
                let p50 = live
                    .p50_us
                    .map_or_else(|| "-".to_owned(), |us| format!("{:.1} ms", us as f64 / 1e3));
                let _ = write!(
                    err,
                    "\r\x1b[K  {}: block {}/{} ({}){}: {:.0} s, p50 {p50}, {} errors, {:.0} req/s, {} left",
                    block.variant,
                    block.block_in_variant,
                    block.blocks_in_variant,
                    block.arm_name,
                    if live.warming_up {
                        ", cooling down"
                    } else {
                        ""
                    },
                    live.elapsed_s,
                    live.errors,
                    live.rate_per_s,
                    Human(event.left.as_secs_f64()),
                );
                let _ = err.flush();
                self.live_line = true;
            }
            EventKind::BlockFinished { block, measurement } => {
                let kind = match block.kind {
                    BlockKind::Test => "block",
                    BlockKind::Soak => "soak block",
                };
                let p50 = measurement
                    .p50_us
                    .map_or_else(|| "-".to_owned(), |us| format!("{:.1} ms", us as f64 / 1e3));
                let stopped = measurement
                    .aborted
                    .as_ref()
                    .map_or_else(String::new, |why| format!("; stopped: {why}"));
                self.line(&format!(
                    "{}: {kind} {}/{} ({}): {} requests, {} errors, p50 {p50}{stopped}",
                    block.variant,
                    block.block_in_variant,
                    block.blocks_in_variant,
                    block.arm_name,
                    measurement.requests,
                    measurement.errors,
                ));
            }
            EventKind::Advised {
                variant,
                advice,
                followed,
            } => self.line(&format!(
                "{variant}: the coach advised {:?}{}: {}",
                advice.action,
                if followed { "" } else { " (not followed)" },
                advice.reason
            )),
            EventKind::Problem(text) => self.line(text),
            EventKind::Decided(decision) => self.line(&summary(decision)),
            _ => {}
        }
        Ok(())
    }
}

/// One line for a decision: the verdict, the change with its bounds, the error change, and the
/// first reason.
pub(crate) fn summary(d: &DecisionRecord) -> String {
    let p50 = match (d.p50_change_pct, d.p50_change_bounds_pct) {
        (Some(x), Some(b)) => format!("p50 {x:+.1} % [{:+.1}, {:+.1}]", b.lower, b.upper),
        (Some(x), None) => format!("p50 {x:+.1} %"),
        (None, _) => "p50 -".to_owned(),
    };
    let errors = d
        .error_rate_change_pp
        .map_or_else(|| "errors -".to_owned(), |e| format!("errors {e:+.2} pp"));
    let reason = d.reasons.first().map_or("", String::as_str);
    format!(
        "{}: {}: {p50}, {errors}: {reason}",
        d.variant,
        d.decision.as_str()
    )
}
