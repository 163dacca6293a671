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
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {}

/// Recovers and prints what was done.
pub(crate) fn run(_args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    let (applier, lock) = open(global)?;
    let done = runtime()?
        .block_on(applier.recover(&lock))
        .map_err(apply_error)?;
    if done.is_empty() {
        println!("nothing to recover: no run was interrupted");
    }
    for outcome in &done {
        println!("recovered {}", describe(outcome));
    }
    Ok(ExitCode::SUCCESS)
}
