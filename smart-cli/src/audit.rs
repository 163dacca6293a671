//! `smart audit verify` and `smart audit head`: check the audit log's hash chain, its head and
//! its coverage of the run records, so an edited, deleted, appended or cut-off line is found,
//! and compare the head with an anchor kept outside the state dir.

use std::process::ExitCode;

use smart_core::audit::Summary;

use crate::Global;
use crate::error::CliError;

/// Work with the audit log (STATE_DIR/audit.jsonl)
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: AuditCommand,
    /// Print the result as a JSON object (schema: docs/audit.schema.json)
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Check the hash chain of the audit log (and of rotated files), its head and its runs
    ///
    /// Exits 0 when every line continues the chain, the log matches audit.head (last line and
    /// line count), and every run recorded under the state dir has lines in the chain (or a
    /// `prune` or `audit_drop` line accounts for it); exits 3 naming what is wrong otherwise.
    Verify {
        /// Also require the chain to still hold line SEQ with hash HASH (it may have grown
        /// since): an anchor kept outside the state dir, e.g. an `audit head SEQ:HASH` line that
        /// journald holds. Rewriting both audit files is then detected too
        #[arg(long, value_name = "SEQ:HASH")]
        expect_head: Option<String>,
    },
    /// Print the head of the chain as SEQ:HASH (after verifying it), to keep as an anchor
    Head,
}

/// Runs the audit subcommand.
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    let config = global.agent_config()?;
    let state_dir = config.state_dir();
    let summary = smart_core::audit::verify(state_dir).map_err(CliError::runtime)?;
    match &args.command {
        AuditCommand::Head if args.json => {
            crate::print_json(&head_json(&summary))?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Head => {
            println!("{}", anchor(&summary));
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify { expect_head } => {
            let runs =
                smart_core::records::list_runs(state_dir).map_err(crate::error::state_error)?;
            let missing = summary.missing_runs(runs.iter().map(|r| r.plan.run_id.as_str()));
            if !missing.is_empty() {
                let unsure = if summary.unlisted_drop {
                    " (unless they were in a rotated file an older smart dropped without listing its runs: see the audit_drop lines)"
                } else {
                    ""
                };
                return Err(CliError::runtime(format!(
                    "audit log in {}: {} run{} recorded under {} ha{} no line in the chain and no prune or audit_drop line accounts for {}: {}; audit lines (or whole audit files) were deleted{unsure}. Keep the evidence and compare with your anchor (journald's `audit head` lines)",
                    state_dir.display(),
                    missing.len(),
                    if missing.len() == 1 { "" } else { "s" },
                    state_dir.join(smart_core::records::RUNS_DIR).display(),
                    if missing.len() == 1 { "s" } else { "ve" },
                    if missing.len() == 1 { "it" } else { "them" },
                    missing.join(", ")
                )));
            }
            if let Some(expected) = expect_head {
                check_anchor(state_dir, &summary, expected)?;
            }
            if args.json {
                let mut value = head_json(&summary);
                value["intact"] = true.into();
                value["lines"] = summary.lines.into();
                value["files"] = summary
                    .files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect();
                value["runs_covered"] = runs.len().into();
                crate::print_json(&value)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "audit log intact: {} lines in {} file(s), {} run(s) covered, head {}",
                summary.lines,
                summary.files.len(),
                runs.len(),
                anchor(&summary)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The head as JSON: `seq`, `hash` and the `anchor` (`SEQ:HASH`, for `--expect-head`).
fn head_json(summary: &Summary) -> serde_json::Value {
    serde_json::json!({
        "seq": summary.last_seq,
        "hash": summary.last_hash,
        "anchor": anchor(summary),
    })
}

/// The head as `SEQ:HASH`.
pub(crate) fn anchor(summary: &Summary) -> String {
    format!("{}:{}", summary.last_seq, summary.last_hash)
}

/// Fails unless the chain holds the anchor `expected` (`SEQ:HASH`): the line with that `seq` is
/// still there with that hash (the chain may have grown since), or rotation dropped it.
fn check_anchor(
    state_dir: &std::path::Path,
    summary: &Summary,
    expected: &str,
) -> Result<(), CliError> {
    let parsed = expected
        .split_once(':')
        .and_then(|(seq, hash)| Some((seq.parse::<u64>().ok()?, hash)));
    let Some((seq, hash)) = parsed else {
        return Err(CliError::bad_input(format!(
            "--expect-head {expected}: give SEQ:HASH, as `smart audit head` prints it"
        )));
    };
    if summary.last_seq < seq {
        return Err(CliError::runtime(format!(
            "the audit chain ends at seq {} but the anchor says it reached seq {seq}: lines were removed and the chain rewritten (both audit files); keep the evidence",
            summary.last_seq
        )));
    }
    match smart_core::audit::line_hash(state_dir, seq).map_err(CliError::runtime)? {
        Some(found) if found != hash => Err(CliError::runtime(format!(
            "the audit chain's line {seq} has hash {found} but the anchor says {hash}: the chain was rewritten (both audit files); keep the evidence"
        ))),
        // Present and equal, or dropped by rotation (an audit_drop line vouches for the start).
        _ => Ok(()),
    }
}

/// The head of the audit chain as `audit head SEQ:HASH` (or why it is unknown), for one stderr
/// line after a run or recover: under systemd it goes to journald, an anchor kept outside the
/// state dir.
pub(crate) fn head_line(state_dir: &std::path::Path) -> String {
    match smart_core::audit::verify(state_dir) {
        Ok(summary) => format!("audit head {}", anchor(&summary)),
        Err(e) => format!("audit head unknown: {e}"),
    }
}
