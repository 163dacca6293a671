//! `smart status`: what runs now (or how the last run ended), from `status.json`.

use std::path::Path;
use std::process::ExitCode;

use smart_core::engine::{Phase, RunEnd};
use smart_core::records::{self, RunState, Status};
use smart_core::schedule::Human;

use crate::Global;
use crate::error::CliError;

/// Show what runs now: phase, variant, block k of n, live figures, time left
///
/// Reads `status.json` in the state dir, which a run rewrites at least every 2 s. Without a run
/// under way it shows how the last run ended. When the run is a search's candidate, the search
/// follows: what is live, the path to it, every candidate judged so far. `--json` prints the file
/// as it is, with the search under `search` when the run is a search's candidate (its schema is
/// docs/status.schema.json).
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// Print status.json as JSON (with the search, for a search's candidate)
    #[arg(long)]
    json: bool,
}

/// Prints the status.
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    let config = global.agent_config()?;
    let Some(status) =
        records::read_status(config.state_dir()).map_err(crate::error::state_error)?
    else {
        println!(
            "no run has started yet (no status.json in {}); `smart run` starts one",
            config.state_dir().display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    if args.json {
        let output = crate::search_view::StatusJson::of(status, config.state_dir());
        let text = serde_json::to_string_pretty(&output)
            .map_err(|e| CliError::runtime(format!("cannot print the status: {e}")))?;
        println!("{text}");
    } else {
        println!("{}", describe(&status, config.state_dir()));
        // A run of a search is one of its candidates: the search as a whole follows.
        for view in crate::search_view::views(config.state_dir(), Some(&status.experiment)) {
            print!("{}", crate::search_view::text(&view));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The phase in words. A block starts with its cool-down (load sent, nothing recorded), which
/// status.json reports as `measuring` with `live.warming_up`; it is shown as what it is.
fn phase(s: &Status) -> String {
    let warming_up = s.live.as_ref().is_some_and(|l| l.warming_up);
    match s.phase {
        Phase::Measuring if warming_up => "cooling down after a switch".to_owned(),
        Phase::Soaking if warming_up => "soaking (cooling down after the switch)".to_owned(),
        Phase::Soaking => "soaking (watching the kept variant under the guardrails)".to_owned(),
        other => other.as_str().replace('_', " "),
    }
}

/// The status in a few lines.
///
/// A run whose process is gone is told apart by its journal (where `smart recover` records its
/// work): still open (run `smart recover`), recovered, or stopped before changing anything.
fn describe(s: &Status, state_dir: &Path) -> String {
    let mut out = match s.state {
        RunState::Running if !Path::new(&format!("/proc/{}", s.pid)).exists() => {
            match smart_apply::run_closed(state_dir, &s.experiment, &s.run_id) {
                Ok(Some(true)) => format!(
                    "{} (run {}) was interrupted (its process {} is gone, last update {}) and has been recovered: the original configuration is back",
                    s.experiment, s.run_id, s.pid, s.updated
                ),
                Ok(None) => format!(
                    "{} (run {}) was interrupted (its process {} is gone, last update {}) before it changed anything: nothing to recover",
                    s.experiment, s.run_id, s.pid, s.updated
                ),
                _ => format!(
                    "{} (run {}) was running, but its process {} is gone (last update {}): run `smart recover`",
                    s.experiment, s.run_id, s.pid, s.updated
                ),
            }
        }
        RunState::Running => format!(
            "running {} (run {}, pid {}): {}, {} elapsed, about {} left",
            s.experiment,
            s.run_id,
            s.pid,
            phase(s),
            Human(s.elapsed_s),
            Human(s.left_s)
        ),
        RunState::Finished if s.end == Some(RunEnd::Recovered) => format!(
            "last run: {} (run {}) was interrupted (its process died) and has been recovered: the \
             original configuration is back",
            s.experiment, s.run_id
        ),
        RunState::Finished => format!(
            "last run: {} (run {}) {} after {}",
            s.experiment,
            s.run_id,
            s.end.map_or("finished", |e| e.as_str()).replace('_', " "),
            Human(s.elapsed_s)
        ),
    };
    if s.state == RunState::Running {
        if let (Some(variant), Some(index)) = (&s.variant, s.variant_index) {
            out.push_str(&format!(
                "\n  variant {variant} ({index} of {})",
                s.variants
            ));
        }
        if let (Some(block), Some(blocks), Some(arm)) = (s.block, s.blocks, &s.arm) {
            out.push_str(&format!(", block {block} of {blocks} ({arm} live)"));
        }
        match &s.live {
            // The warm-up after a switch: load goes out but nothing is recorded, so there are no
            // figures to show yet, only the rate sent.
            Some(live) if live.warming_up => out.push_str(&format!(
                "\n  live: {:.0} req/s sent, not recorded ({:.0} s into the block's cool-down)",
                live.rate_per_s, live.elapsed_s
            )),
            Some(live) => {
                let p50 = live
                    .p50_us
                    .map_or_else(|| "-".to_owned(), |us| format!("{:.1} ms", us as f64 / 1e3));
                out.push_str(&format!(
                    "\n  live: p50 {p50}, {} requests recorded, {} errors, {:.0} req/s",
                    live.requests, live.errors, live.rate_per_s,
                ));
            }
            None => {}
        }
    }
    for (variant, decision) in &s.decisions {
        out.push_str(&format!("\n  {variant}: {}", decision.as_str()));
    }
    out
}

#[cfg(test)]
mod tests {
    use smart_core::engine::LiveProgress;

    use super::*;

    fn status(phase: Phase, warming_up: bool) -> Status {
        Status {
            state: RunState::Running,
            // This process: alive, so the status is read as a run under way.
            pid: std::process::id(),
            run_id: "r1".to_owned(),
            experiment: "gzip".to_owned(),
            phase,
            variant: Some("level-6".to_owned()),
            variant_index: Some(1),
            variants: 2,
            arm: Some("level-6".to_owned()),
            block: Some(3),
            blocks: Some(32),
            elapsed_s: 100.0,
            left_s: 500.0,
            live: Some(LiveProgress {
                warming_up,
                elapsed_s: 2.0,
                requests: if warming_up { 0 } else { 120 },
                errors: 0,
                rate_per_s: 25.0,
                p50_us: (!warming_up).then_some(1500),
            }),
            end: None,
            decisions: Vec::new(),
            updated: "2026-12-03T12:00:00Z".to_owned(),
        }
    }

    /// Issue 16: a cool-down showed phase "measuring" with "0 requests … 25 req/s".
    #[test]
    fn a_cool_down_is_shown_as_one_not_as_measuring() {
        let text = describe(&status(Phase::Measuring, true), Path::new("/nonexistent"));
        assert!(text.contains("cooling down after a switch"), "{text}");
        assert!(
            !text.contains("measuring") && !text.contains("0 requests"),
            "{text}"
        );
        assert!(text.contains("25 req/s sent, not recorded"), "{text}");

        let text = describe(&status(Phase::Measuring, false), Path::new("/nonexistent"));
        assert!(text.contains(": measuring,"), "{text}");
        assert!(text.contains("p50 1.5 ms, 120 requests recorded"), "{text}");

        let text = describe(&status(Phase::Soaking, true), Path::new("/nonexistent"));
        assert!(text.contains("soaking (cooling down"), "{text}");
    }
}
