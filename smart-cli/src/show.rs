//! `smart show RUN`: one run, block by block, with its decisions and all their reasons; or one
//! search as a whole.

use std::process::ExitCode;

use smart_core::engine::{BlockKind, LiveConfig};
use smart_core::records;

use crate::Global;
use crate::error::CliError;
use crate::run::summary;

/// Show one run block by block, and its decisions with every reason; or a search
///
/// RUN is a run id as `smart history` prints it, or `last` for the newest run. Blocks are
/// numbered CYCLE.POSITION from 1, as on the dashboard (1.1 is the first block of the first
/// cycle). `--json` prints the whole run record (plan, report, blocks, decisions): a stable
/// contract with the JSON Schema docs/run.schema.json.
///
/// RUN may also be a search's name (a search experiment that has run): then the search is shown
/// as a whole: its space and budget, every candidate with its interval against what it was
/// judged against and its verdict, the path to the best, the final confirmation's outcome and
/// what is live now. `--json` then prints the search (docs/search.schema.json).
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// The run id, `last`, or a search's name
    run: String,
    /// Print the run record (docs/run.schema.json) or the search (docs/search.schema.json) as JSON
    #[arg(long)]
    json: bool,
}

/// Prints the run.
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    let config = global.agent_config()?;
    let state_dir = config.state_dir();
    if args.run != "last"
        && let Some(search) = crate::search_view::views(state_dir, Some(&args.run)).pop()
    {
        if args.json {
            let text = serde_json::to_string_pretty(&search)
                .map_err(|e| CliError::runtime(format!("cannot print the search: {e}")))?;
            println!("{text}");
        } else {
            print!("{}", crate::search_view::page(&search));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let id = if args.run == "last" {
        let runs = records::list_runs(state_dir).map_err(crate::error::state_error)?;
        match runs.last() {
            Some(run) => run.plan.run_id.clone(),
            None => {
                return Err(CliError::bad_input(format!(
                    "there are no runs in {} yet; start one with `smart run`",
                    state_dir.display()
                )));
            }
        }
    } else {
        args.run.clone()
    };
    let record = records::load_run(state_dir, &id).map_err(CliError::bad_input)?;
    if args.json {
        let text = serde_json::to_string_pretty(&record)
            .map_err(|e| CliError::runtime(format!("cannot print the run: {e}")))?;
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let plan = &record.run.plan;
    println!(
        "run {} of {} (definition {}), seed {}, started {}",
        plan.run_id,
        plan.experiment,
        &plan.definition_hash[..plan.definition_hash.len().min(12)],
        plan.seed,
        plan.started
    );
    match &record.run.report {
        Some(report) => {
            let live = match &report.live {
                LiveConfig::Original => "the original config".to_owned(),
                LiveConfig::Variant(v) => format!("variant {v}"),
                LiveConfig::Unknown => "unknown (restoring failed)".to_owned(),
            };
            println!(
                "ended {} ({}{}); live: {live}",
                report.finished,
                report.end.as_str().replace('_', " "),
                report
                    .end_reason
                    .as_ref()
                    .map_or_else(String::new, |r| format!(": {r}"))
            );
        }
        None => println!("not finished (under way, or its process died: see `smart status`)"),
    }
    println!(
        "{:>4}  {:<16} {:<16} {:<5} {:>5}  {:>6}  {:>8} {:>6}  {:>9} {:>9}  {:>6}",
        "#",
        "variant",
        "arm",
        "kind",
        "cycle",
        "warmup",
        "requests",
        "errors",
        "p50 ms",
        "p99 ms",
        "req/s"
    );
    for b in &record.blocks {
        let ms = |us: Option<u64>| {
            us.map_or_else(|| "-".to_owned(), |us| format!("{:.2}", us as f64 / 1e3))
        };
        let kind = match b.block.kind {
            BlockKind::Test => "test",
            BlockKind::Soak => "soak",
        };
        println!(
            "{:>4}  {:<16} {:<16} {:<5} {:>5}  {:>5.1}s  {:>8} {:>6}  {:>9} {:>9}  {:>6.1}{}",
            b.block.index,
            b.block.variant,
            b.block.arm_name,
            kind,
            format!("{}.{}", b.block.cycle + 1, b.block.position + 1),
            b.block.warmup_s,
            b.figures.requests,
            b.figures.errors,
            ms(b.figures.p50_us),
            ms(b.figures.p99_us),
            b.figures.rate_per_s,
            b.figures
                .aborted
                .as_ref()
                .map_or_else(String::new, |a| format!("  stopped: {a}"))
        );
    }
    for d in &record.decisions {
        println!("{}", summary(d));
        for reason in d.reasons.iter().skip(1) {
            println!("    {reason}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
