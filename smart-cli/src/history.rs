//! `smart history`: every decision of every run, oldest first.

use std::process::ExitCode;

use smart_core::records;

use crate::Global;
use crate::error::CliError;
use crate::run::summary;

/// Show every decision with its numbers, oldest first
///
/// One line per variant decision: when it became final, the experiment, the variant, the
/// decision (keep, revert, inconclusive, aborted, kept-by-coach), the p50 change with its bounds,
/// the error-rate change, the first reason and the run. `--json` prints an array with one object
/// per decision: a stable contract, documented in docs/engine.md, with the JSON Schema
/// docs/history.schema.json. Runs pruned by retention ([retention] in smart.toml) are gone from
/// both; the text output ends with how many were pruned. A search's candidates are runs of the
/// search's name; the text output then shows each search as a whole: what is live, the path to
/// it, and every candidate with its interval against what it was judged against. In `--json`,
/// each decision of a search's candidate carries that search as it stands under `search`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// Only this experiment's decisions
    experiment: Option<String>,
    /// Print the decisions as a JSON array
    #[arg(long)]
    json: bool,
}

/// Prints the history.
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    let config = global.agent_config()?;
    let mut decisions = records::history(config.state_dir()).map_err(crate::error::state_error)?;
    if let Some(name) = &args.experiment {
        decisions.retain(|d| &d.experiment == name);
    }
    let searches = crate::search_view::views(config.state_dir(), args.experiment.as_deref());
    if args.json {
        let entries = crate::search_view::history_entries(decisions, &searches);
        let text = serde_json::to_string_pretty(&entries)
            .map_err(|e| CliError::runtime(format!("cannot print the history: {e}")))?;
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    if decisions.is_empty() {
        println!(
            "no decisions yet (state dir {}); `smart run` decides the experiments in experiments_dir",
            config.state_dir().display()
        );
    }
    for d in &decisions {
        println!(
            "{} {} {} (run {})",
            d.finished,
            d.experiment,
            summary(d),
            d.run_id
        );
    }
    // A search's candidates are its runs above; this is the search as a whole.
    for view in &searches {
        print!("{}", crate::search_view::text(view));
    }
    let pruned = records::pruned_count(config.state_dir()).map_err(crate::error::state_error)?;
    if let Some(last) = &pruned.last {
        println!(
            "{} older run{} pruned by retention (the last on {last}; [retention] in smart.toml, the audit log's `prune` lines)",
            pruned.runs,
            if pruned.runs == 1 { " was" } else { "s were" },
        );
    }
    Ok(ExitCode::SUCCESS)
}
