//! `smart recover`: put back the original config of any run that was interrupted (a crash, a
//! SIGKILL, a power cut). Safe to run at any time, and at boot.

use std::process::ExitCode;

use serde_json::json;
use smart_apply::RunAction;

use crate::Global;
use crate::error::CliError;
use crate::revert::{apply_error, close_records, describe, open, runtime};

/// Recover interrupted runs: restore their original config
///
/// Reads every run's journal; each run that did not finish (and was not kept) gets its files
/// restored from the backups, its command value put back and every checksum verified. The
/// service is reloaded and health-checked only if it is running (its health or live-check URL
/// answers), so this is safe at boot. Idempotent. Takes the run lock: exits 4 while a run is in
/// progress.
///
/// A file someone changed since smart wrote it is never overwritten: recovery stops (exit 3)
/// and names it. Put the original back, or pass --keep-edits to keep the edit and restore the
/// rest.
///
/// The record of every run whose process died is closed (its run.json gets a report that ends
/// `recovered`), so history, the dashboard and retention see it as over. `--json` prints the runs
/// recovered, the records closed, the fleet experiments whose hosts were put back and the
/// searches whose candidate runs were recovered, as they stand (what is live is the last
/// configuration each kept; the next `smart run` resumes it) (schema: docs/recover.schema.json).
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// Keep files someone else changed as they are, and restore everything else
    #[arg(long)]
    keep_edits: bool,
    /// Print what was recovered as a JSON array
    #[arg(long)]
    json: bool,
}

/// Recovers and prints what was done.
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    let (applier, lock) = open(global)?;
    let runtime = runtime()?;
    let done = if args.keep_edits {
        runtime.block_on(applier.recover_keeping_edits(&lock))
    } else {
        runtime.block_on(applier.recover(&lock))
    };
    if let Some(gap) = applier.state_gap() {
        eprintln!("smart: warning: {gap}");
    }
    let config = global.agent_config()?;
    if !crate::logs::quiet() {
        eprintln!("smart: {}", crate::audit::head_line(config.state_dir()));
    }
    let done = done.map_err(apply_error)?;
    let closed = close_records(&config, &done);
    // Interrupted fleet experiments: their hosts go back through their journal's own argv.
    let fleet = runtime
        .block_on(smart_fleet::recover(config.state_dir()))
        .map_err(crate::fleet::fleet_error)?;
    if args.json {
        let runs: Vec<serde_json::Value> = done
            .iter()
            .map(|outcome| {
                let (action, reloaded) = match outcome.action {
                    RunAction::Restored { reloaded } => ("restored", Some(reloaded)),
                    RunAction::NothingChanged => ("nothing_changed", None),
                    RunAction::AlreadyReverted => ("already_reverted", None),
                    _ => ("done", None),
                };
                json!({
                    "experiment": outcome.experiment,
                    "run_id": outcome.run_id,
                    "action": action,
                    "reloaded": reloaded,
                    "kept_edits": outcome.kept_edits,
                })
            })
            .collect();
        let fleet: Vec<serde_json::Value> = fleet
            .iter()
            .map(|f| json!({"experiment": f.experiment, "hosts": f.hosts}))
            .collect();
        // The searches whose candidates were interrupted: what is live is what each kept.
        let searches: Vec<smart_search::SearchView> =
            crate::search_view::views(config.state_dir(), None)
                .into_iter()
                .filter(|s| done.iter().any(|o| o.experiment == s.experiment))
                .collect();
        crate::print_json(&json!({
            "recovered": runs,
            "closed_records": closed,
            "fleet": fleet,
            "searches": searches,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    for f in &fleet {
        println!(
            "recovered fleet experiment {}: put back [{}]",
            f.experiment,
            f.hosts.join(", ")
        );
    }
    if done.is_empty() && fleet.is_empty() {
        println!("nothing to recover: no run was interrupted");
    }
    if !closed.is_empty() {
        println!(
            "closed the record of {} (its process had died): {}",
            if closed.len() == 1 { "1 run" } else { "runs" },
            closed.join(", ")
        );
    }
    for outcome in &done {
        println!("recovered {}", describe(outcome));
        for path in &outcome.kept_edits {
            println!("  kept someone else's edit of {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
