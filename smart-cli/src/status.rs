//! `smart status`: what runs now (or how the last run ended), from `status.json`.

use std::path::Path;
use std::process::ExitCode;

use smart_core::records::{self, RunState, Status};
use smart_core::schedule::Human;

use crate::Global;
use crate::error::CliError;

/// Show what runs now: phase, variant, block k of n, live figures, time left
///
/// Reads `status.json` in the state dir, which a run rewrites at least every 2 s. Without a run
/// under way it shows how the last run ended. `--json` prints the file as it is (its schema is
/// docs/status.schema.json).
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// Print status.json as JSON
    #[arg(long)]
    json: bool,
}

/// Prints the status.
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    let config = global.agent_config()?;
    let Some(status) = records::read_status(config.state_dir()).map_err(CliError::runtime)? else {
        println!(
            "no run has started yet (no status.json in {})",
            config.state_dir().display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    if args.json {
        let text = serde_json::to_string_pretty(&status)
            .map_err(|e| CliError::runtime(format!("cannot print the status: {e}")))?;
        println!("{text}");
    } else {
        println!("{}", describe(&status, config.state_dir()));
    }
    Ok(ExitCode::SUCCESS)
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
            s.phase.as_str().replace('_', " "),
            Human(s.elapsed_s),
            Human(s.left_s)
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
        if let Some(live) = &s.live {
            let p50 = live
                .p50_us
                .map_or_else(|| "-".to_owned(), |us| format!("{:.1} ms", us as f64 / 1e3));
            out.push_str(&format!(
                "\n  live: p50 {p50}, {} requests, {} errors, {:.0} req/s{}",
                live.requests,
                live.errors,
                live.rate_per_s,
                if live.warming_up {
                    " (cooling down)"
                } else {
                    ""
                }
            ));
        }
    }
    for (variant, decision) in &s.decisions {
        out.push_str(&format!("\n  {variant}: {}", decision.as_str()));
    }
    out
}
