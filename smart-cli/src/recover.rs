//! `smart recover`: put back the original config of any run that was interrupted (a crash, a
//! SIGKILL, a power cut). Safe to run at any time, and at boot.

use std::process::ExitCode;

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
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// Keep files someone else changed as they are, and restore everything else
    #[arg(long)]
    keep_edits: bool,
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
    eprintln!(
        "smart: {}",
        crate::audit::head_line(global.agent_config()?.state_dir())
    );
    let done = done.map_err(apply_error)?;
    if done.is_empty() {
        println!("nothing to recover: no run was interrupted");
    }
    for outcome in &done {
        println!("recovered {}", describe(outcome));
        for path in &outcome.kept_edits {
            println!("  kept someone else's edit of {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
