//! `smart audit verify`: check the audit log's hash chain, so an edited, deleted or cut-off line
//! is found.

use std::process::ExitCode;

use crate::Global;
use crate::error::CliError;

/// Work with the audit log (STATE_DIR/audit.jsonl)
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Check the hash chain of the audit log (and of rotated files) and its head
    ///
    /// Exits 0 when every line continues the chain and the log matches audit.head; exits 3 and
    /// names the first broken line otherwise (a line was edited, deleted or cut off).
    Verify,
}

/// Runs the audit subcommand.
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    match args.command {
        AuditCommand::Verify => {
            let config = global.agent_config()?;
            let summary =
                smart_core::audit::verify(config.state_dir()).map_err(CliError::runtime)?;
            println!(
                "audit log intact: {} lines in {} file(s), last hash {}",
                summary.lines,
                summary.files.len(),
                summary.last_hash
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
