//! What `smart run` shows while it works. On a terminal: a live progress display (indicatif)
//! with the experiment, variant k of n, the phase, the block with a bar, live p50 and errors and
//! the time left, and the log lines (blocks, decisions, problems) printed above it. Off a
//! terminal: the same log lines through tracing, one per phase change, block and decision (never
//! per progress tick), so journald and log files get readable lines without escape codes.

mod text;

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use smart_core::engine::{
    BlockInfo, BlockKind, Event, EventKind, LiveProgress, ObserverError, ObserverPort,
};
use smart_core::records::DecisionRecord;

pub(crate) use self::text::summary;
use self::text::{Level, Line};

/// Bar positions per block, so the bar also moves within a block.
const STEPS_PER_BLOCK: u64 = 1000;

/// An engine observer that shows the run's progress on stderr.
#[derive(Debug)]
pub(crate) struct Show {
    experiment: String,
    /// The run's id (from its plan), for the journal's `SMART_RUN_ID` field.
    run_id: String,
    /// The run's variants, in order (from its plan).
    variants: Vec<String>,
    output: Output,
}

#[derive(Debug)]
enum Output {
    /// A live display on a terminal.
    Bar(Box<Bar>),
    /// Plain log lines through tracing.
    Log,
}

impl Show {
    /// A live display when stderr is a terminal (and not `--quiet`), log lines otherwise.
    pub(crate) fn new(experiment: &str) -> Show {
        let output = if std::io::stderr().is_terminal() && !crate::logs::quiet() {
            Output::Bar(Box::new(Bar::new(ProgressDrawTarget::stderr())))
        } else {
            crate::logs::init();
            Output::Log
        };
        Show {
            experiment: experiment.to_owned(),
            run_id: String::new(),
            variants: Vec::new(),
            output,
        }
    }
}

impl ObserverPort for Show {
    fn event(&mut self, event: &Event<'_>) -> Result<(), ObserverError> {
        if let EventKind::RunStarted { plan, .. } = event.kind {
            self.variants.clone_from(&plan.variants);
            self.run_id.clone_from(&plan.run_id);
        }
        let line = text::line(&event.kind, &self.variants, event.left);
        match &mut self.output {
            Output::Bar(bar) => {
                if let Some(line) = line {
                    bar.bar
                        .println(format!("{}: {}", self.experiment, line.text));
                }
                bar.update(&self.experiment, &self.variants, event);
            }
            Output::Log => {
                if let Some(line) = line {
                    let decided = match event.kind {
                        EventKind::Decided(d) => Some(d),
                        _ => None,
                    };
                    log(&self.experiment, &self.run_id, decided, &line);
                }
            }
        }
        Ok(())
    }
}

/// Sends one line to the tracing subscriber, with the fields journald stores (`SMART_EXPERIMENT`,
/// `SMART_RUN_ID`, and for a decision `SMART_VARIANT` and `SMART_DECISION`), so that e.g.
/// `journalctl SMART_DECISION=keep` finds every kept variant. Log files show the text only.
fn log(experiment: &str, run_id: &str, decided: Option<&DecisionRecord>, line: &Line) {
    let text = format!("{experiment}: {}", line.text);
    match (decided, line.level) {
        (Some(d), Level::Info) => tracing::info!(
            smart_experiment = experiment,
            smart_run_id = run_id,
            smart_variant = d.variant.as_str(),
            smart_decision = d.decision.as_str(),
            "{text}"
        ),
        (Some(d), Level::Warn) => tracing::warn!(
            smart_experiment = experiment,
            smart_run_id = run_id,
            smart_variant = d.variant.as_str(),
            smart_decision = d.decision.as_str(),
            "{text}"
        ),
        (None, Level::Info) => {
            tracing::info!(
                smart_experiment = experiment,
                smart_run_id = run_id,
                "{text}"
            );
        }
        (None, Level::Warn) => {
            tracing::warn!(
                smart_experiment = experiment,
                smart_run_id = run_id,
                "{text}"
            );
        }
    }
}

/// The live display: a spinner and headline (experiment, variant k of n, phase), then a bar over
/// the variant's blocks with the block, live figures and time left.
#[derive(Debug)]
struct Bar {
    bar: ProgressBar,
    /// The variant being tested (or soaked), if any.
    variant: Option<String>,
    /// The phase, in words.
    phase: String,
    /// The running (or last) block.
    block: Option<BlockInfo>,
    /// The running block's live figures, once the probe reported.
    live: Option<LiveProgress>,
}

impl Bar {
    fn new(target: ProgressDrawTarget) -> Bar {
        let bar = ProgressBar::with_draw_target(Some(STEPS_PER_BLOCK), target);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner:.green} {prefix}\n  [{bar:20.cyan/blue}] {wide_msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Bar {
            bar,
            variant: None,
            phase: "starting".to_owned(),
            block: None,
            live: None,
        }
    }

    /// Follows an event: the phase, the block and its figures, the time left.
    fn update(&mut self, experiment: &str, variants: &[String], event: &Event<'_>) {
        match &event.kind {
            EventKind::Phase(info) => {
                if info.variant.is_some() {
                    self.variant.clone_from(&info.variant);
                }
                self.phase = text::phase_label(info);
            }
            EventKind::BlockStarted(block) => {
                self.variant = Some(block.variant.clone());
                self.block = Some((*block).clone());
                self.live = None;
                self.phase = if block.warmup_s > 0.0 {
                    text::cooling_label(block)
                } else {
                    measuring(block)
                };
                self.bar
                    .set_length(u64::from(block.blocks_in_variant.max(1)) * STEPS_PER_BLOCK);
                self.bar.set_position(
                    u64::from(block.block_in_variant.saturating_sub(1)) * STEPS_PER_BLOCK,
                );
            }
            EventKind::Progress { block, live } => {
                self.phase = if live.warming_up {
                    text::cooling_label(block)
                } else {
                    measuring(block)
                };
                let total = block.warmup_s + block.duration_s;
                let done = if total > 0.0 {
                    (live.elapsed_s / total).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let start = u64::from(block.block_in_variant.saturating_sub(1)) * STEPS_PER_BLOCK;
                self.bar
                    .set_position(start + (done * STEPS_PER_BLOCK as f64) as u64);
                self.live = Some((*live).clone());
            }
            EventKind::BlockFinished { block, .. } => {
                self.bar
                    .set_position(u64::from(block.block_in_variant) * STEPS_PER_BLOCK);
            }
            EventKind::Step { step, .. } => self.phase = text::deciding_label(*step),
            EventKind::RunFinished(_) => {
                self.bar.finish_and_clear();
                return;
            }
            _ => {}
        }
        self.bar.set_prefix(text::headline(
            experiment,
            self.variant.as_deref(),
            variants,
            &self.phase,
        ));
        self.bar.set_message(text::figures(
            self.block.as_ref(),
            self.live.as_ref(),
            event.left,
        ));
    }
}

impl Drop for Bar {
    /// A run that ended without its last event (an error) leaves no half-drawn bar.
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

/// `measuring baseline`, or `soaking gzip-6` for a soak block.
fn measuring(block: &BlockInfo) -> String {
    match block.kind {
        BlockKind::Test => format!("measuring {}", block.arm_name),
        BlockKind::Soak => format!("soaking {}", block.arm_name),
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use smart_core::engine::{Arm, BlockMeasurement, JudgeStep, Phase, PhaseInfo, Verdict};

    use super::*;

    fn event(kind: EventKind<'_>) -> Event<'_> {
        Event {
            at: SystemTime::UNIX_EPOCH,
            elapsed: Duration::from_secs(10),
            left: Duration::from_secs(95),
            kind,
        }
    }

    #[test]
    fn the_bar_follows_phases_blocks_and_live_figures() {
        let mut bar = Bar::new(ProgressDrawTarget::hidden());
        let variants = vec!["gzip-1".to_owned(), "gzip-6".to_owned()];
        let check =
            |bar: &mut Bar, kind: EventKind<'_>, prefix: &str, message: &str, position: u64| {
                bar.update("gzip", &variants, &event(kind));
                assert_eq!(
                    (
                        bar.bar.prefix().as_str(),
                        bar.bar.message().as_str(),
                        bar.bar.position()
                    ),
                    (prefix, message, position)
                );
            };
        let checking = PhaseInfo {
            phase: Phase::CheckingBaseline,
            variant: None,
            arm: None,
        };
        check(
            &mut bar,
            EventKind::Phase(&checking),
            "gzip · checking the baseline",
            "1m 35s left",
            0,
        );
        let switching = PhaseInfo {
            phase: Phase::Switching,
            variant: Some("gzip-6".to_owned()),
            arm: Some("gzip-6".to_owned()),
        };
        check(
            &mut bar,
            EventKind::Phase(&switching),
            "gzip · gzip-6 (variant 2/2) · switching to gzip-6",
            "1m 35s left",
            0,
        );
        let block = BlockInfo {
            index: 5,
            kind: BlockKind::Test,
            variant: "gzip-6".to_owned(),
            variant_index: 2,
            arm: Arm::Variant,
            arm_name: "gzip-6".to_owned(),
            cycle: 0,
            position: 1,
            block_in_variant: 2,
            blocks_in_variant: 4,
            warmup_s: 2.0,
            duration_s: 8.0,
            started: "2026-11-26T21:00:00Z".to_owned(),
        };
        check(
            &mut bar,
            EventKind::BlockStarted(&block),
            "gzip · gzip-6 (variant 2/2) · cooling down (gzip-6)",
            "block 2/4 · 1m 35s left",
            STEPS_PER_BLOCK,
        );
        let mut live = LiveProgress {
            warming_up: true,
            elapsed_s: 1.0,
            requests: 0,
            errors: 0,
            rate_per_s: 50.0,
            p50_us: None,
        };
        check(
            &mut bar,
            EventKind::Progress {
                block: &block,
                live: &live,
            },
            "gzip · gzip-6 (variant 2/2) · cooling down (gzip-6)",
            "block 2/4 · p50 - · 0 errors · 1m 35s left",
            STEPS_PER_BLOCK + STEPS_PER_BLOCK / 10,
        );
        live.warming_up = false;
        live.elapsed_s = 5.0;
        live.requests = 150;
        live.errors = 3;
        live.p50_us = Some(2100);
        check(
            &mut bar,
            EventKind::Progress {
                block: &block,
                live: &live,
            },
            "gzip · gzip-6 (variant 2/2) · measuring gzip-6",
            "block 2/4 · p50 2.1 ms · 3 errors · 1m 35s left",
            STEPS_PER_BLOCK + STEPS_PER_BLOCK / 2,
        );
        let measurement = BlockMeasurement::default();
        check(
            &mut bar,
            EventKind::BlockFinished {
                block: &block,
                measurement: &measurement,
            },
            "gzip · gzip-6 (variant 2/2) · measuring gzip-6",
            "block 2/4 · p50 2.1 ms · 3 errors · 1m 35s left",
            2 * STEPS_PER_BLOCK,
        );
        check(
            &mut bar,
            EventKind::Step {
                variant: "gzip-6",
                cycle: 0,
                step: JudgeStep::Stop(Verdict::Revert),
            },
            "gzip · gzip-6 (variant 2/2) · deciding: revert",
            "block 2/4 · p50 2.1 ms · 3 errors · 1m 35s left",
            2 * STEPS_PER_BLOCK,
        );
        assert_eq!(bar.bar.length(), Some(4 * STEPS_PER_BLOCK));
    }
}
