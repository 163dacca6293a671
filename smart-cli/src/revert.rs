//! `smart revert [EXPERIMENT]`: put back the original config of the last run of an experiment,
//! on demand (also after a keep, when the user changes their mind).

use std::process::ExitCode;
use std::time::SystemTime;

use smart_apply::{Applier, Config, ErrorKind, RunAction, RunLock, RunOutcome};
use smart_core::AgentConfig;
use smart_core::records;

use crate::Global;
use crate::error::CliError;

/// Restore the original config of the last run of an experiment (or of the last run of all)
///
/// Acts on the newest run still in effect (kept, or interrupted), skipping runs that already
/// ended on their original; run it again to undo an older kept run. Restores every file from
/// its backup (never over someone else's edit), puts the command applier's value back, verifies
/// every checksum, then reloads and checks the service. Takes the run lock: exits 4 while a run
/// is in progress.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// The experiment whose last run to revert [default: the last run of any experiment]
    experiment: Option<String>,
}

/// Reverts and prints what was done.
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    let (applier, lock) = open(global)?;
    let outcome = runtime()?
        .block_on(applier.revert_last(&lock, args.experiment.as_deref()))
        .map_err(apply_error)?;
    // An interrupted run reverted here is over: close its record as `smart recover` does.
    close_records(&global.agent_config()?, std::slice::from_ref(&outcome));
    println!("{}", describe(&outcome));
    Ok(ExitCode::SUCCESS)
}

/// The applier for the configured state dir, and its run lock.
pub(crate) fn open(global: &Global) -> Result<(Applier, RunLock), CliError> {
    let config = global.agent_config()?;
    let lock = RunLock::acquire(config.state_dir()).map_err(apply_error)?;
    Ok((applier(&config), lock))
}

/// The applier for this agent: its state dir, and the audit log rotated by `[logs]` (the same
/// settings the run records use, so both writers of the chain rotate alike).
pub(crate) fn applier(config: &AgentConfig) -> Applier {
    let mut applier_config = Config::new(config.state_dir());
    applier_config.audit_rotation = config.logs();
    Applier::new(applier_config)
}

/// A small runtime for one applier call (commands and HTTP checks are async).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the async runtime: {e}")))
}

/// Maps an applier error to its exit code: 4 for the lock, 2 for what the user can fix by
/// changing an argument, 3 for the rest.
pub(crate) fn apply_error(error: smart_apply::Error) -> CliError {
    match error.kind() {
        ErrorKind::Locked { .. } => CliError::lock_held(error),
        ErrorKind::BadInput | ErrorKind::NotFound => CliError::bad_input(error),
        _ => CliError::runtime(error),
    }
}

/// One line saying what happened to a run.
pub(crate) fn describe(outcome: &RunOutcome) -> String {
    let what = match outcome.action {
        RunAction::Restored { reloaded: true } => {
            "original config restored, verified, reloaded and checked"
        }
        RunAction::Restored { reloaded: false } => {
            "original config restored and verified; the service is not running, so it was not reloaded"
        }
        RunAction::NothingChanged => "the run stopped before changing anything; journal closed",
        RunAction::AlreadyReverted => "already on its original config; nothing to do",
        _ => "done",
    };
    format!("{} (run {}): {what}", outcome.experiment, outcome.run_id)
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
