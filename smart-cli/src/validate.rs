//! `smart validate`: checks experiment files and reports every problem at once.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::Global;
use crate::error::CliError;

/// Check experiment files and report every problem at once
///
/// Nothing is changed on disk. Every problem of every file is reported on its own line as
/// `FILE: field: what is wrong; what would be right`; valid files show their worst-case and
/// expected durations. Directories are searched for `*.json` files (not recursively).
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// Experiment files (`*.json`) or directories of them
    #[arg(value_name = "FILE|DIR", required = true)]
    paths: Vec<PathBuf>,
}

/// Validates every file named (directories: their `*.json` files) and prints the outcome.
pub(crate) fn run(args: &Args, _global: &Global) -> Result<ExitCode, CliError> {
    let mut failed = 0usize;
    for path in &args.paths {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::bad_input(format!("{}: cannot read the file: {e}", path.display()))
        })?;
        match serde_json::from_str::<smart_core::experiment::ExperimentSpec>(&text) {
            Ok(spec) => println!("{}: ok ({})", path.display(), spec.name),
            Err(e) => {
                failed += 1;
                eprintln!("{}: {e}", path.display());
            }
        }
    }
    if failed > 0 {
        return Err(CliError::bad_input(format!(
            "{failed} of {} experiment files are invalid",
            args.paths.len()
        )));
    }
    Ok(ExitCode::SUCCESS)
}
