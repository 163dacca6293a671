//! `smart recover`: put back the original config of any run that was interrupted (a crash, a
//! SIGKILL, a power cut). Safe to run at any time, and at boot.

use std::process::ExitCode;
use std::time::SystemTime;

use serde_json::json;
use smart_apply::{RunAction, RunOutcome};
use smart_core::AgentConfig;
use smart_core::records;

use crate::Global;
use crate::error::CliError;
use crate::revert::{apply_error, describe, open, runtime};

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
/// recovered and the records closed (schema: docs/recover.schema.json).
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
        crate::print_json(&json!({"recovered": runs, "closed_records": closed}))?;
        return Ok(ExitCode::SUCCESS);
    }
    if done.is_empty() {
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

/// Closes the record of every run left open (`report: null`) under the state dir: the caller
/// holds the run lock, so no run is under way and each such run's process died. A run recovery
/// just put back says so in its reason; one without an outcome had changed nothing (or was
/// recovered before records were closed). Returns the run ids closed; a failure is a warning,
/// since the configuration is back either way.
pub(crate) fn close_records(config: &AgentConfig, outcomes: &[RunOutcome]) -> Vec<String> {
    let state_dir = config.state_dir();
    let open: Vec<String> = match records::list_runs(state_dir) {
        Ok(runs) => runs
            .into_iter()
            .filter(|r| r.report.is_none())
            .map(|r| r.plan.run_id)
            .collect(),
        Err(e) => {
            eprintln!(
                "smart: warning: the run records in {} could not be read ({e}), so interrupted \
                 runs stay open; run `smart recover` again once the cause is fixed",
                state_dir.display()
            );
            return Vec::new();
        }
    };
    let mut closed = Vec::new();
    for run_id in open {
        let restored = outcomes
            .iter()
            .any(|o| o.run_id == run_id && matches!(o.action, RunAction::Restored { .. }));
        let reason = if restored {
            "the run's process died mid-run; its original configuration was restored afterwards"
        } else {
            "the run's process died; the original configuration was in place (nothing to restore)"
        };
        match records::close_recovered(state_dir, &run_id, reason, SystemTime::now()) {
            Ok(true) => closed.push(run_id),
            Ok(false) => {}
            Err(e) => eprintln!(
                "smart: warning: run {run_id}: its record could not be closed ({e}); retention \
                 keeps it until `smart recover` runs again with the cause fixed"
            ),
        }
    }
    closed
}
