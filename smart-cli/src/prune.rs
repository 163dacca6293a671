//! `smart prune`: retention of run records and their dashboard pages (`[retention]` in
//! smart.toml), which `smart run` also applies after every run.

use std::process::ExitCode;
use std::time::SystemTime;

use smart_apply::RunLock;
use smart_core::AgentConfig;
use smart_core::audit::AuditLog;
use smart_core::records::{self, Definitions, PrunePlan, Retention};
use smart_core::validate::{experiment_files, validate_paths};
use smart_dashboard::Dashboard;

use crate::Global;
use crate::error::CliError;
use crate::revert::apply_error;

/// Remove run records older than [retention] allows, and their dashboard pages
///
/// Removes the runs in STATE_DIR/runs that started more than max_age_days ago or are not among
/// the newest max_runs (smart.toml's [retention]; default 30 days and 100 runs), and their pages
/// in the dashboard. Never removed: an open run, a run that left a variant (or an unknown
/// configuration) live, the run status.json names, and each experiment definition's latest
/// decision (so nothing decided runs again). Every pass that removes runs is a `prune` line in
/// the audit log. `smart run` prunes after every run; this command is for a change of the limits
/// or a look with --dry-run. It takes the run lock (exit 4 while a run holds it).
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// Show what would be removed; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Print what was (or would be) removed as a JSON object (schema: docs/prune.schema.json)
    #[arg(long)]
    json: bool,
}

/// Runs the prune subcommand.
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    let config = global.agent_config()?;
    let retention = config.retention();
    let state_dir = config.state_dir();
    if args.dry_run {
        let plan = records::plan_prune(
            state_dir,
            &retention,
            &definitions(&config),
            SystemTime::now(),
        )
        .map_err(crate::error::state_error)?;
        if args.json {
            crate::print_json(&plan_json(&plan, &retention, true))?;
            return Ok(ExitCode::SUCCESS);
        }
        if !retention.enabled() {
            println!("retention is off ([retention] enabled = false): nothing would be removed");
        } else if plan.is_empty() {
            println!("nothing to prune: {} kept", runs(plan.kept));
        } else {
            println!(
                "would prune {} ({}): {}; {} kept",
                runs(plan.runs().len()),
                plan.reason(&retention),
                plan.runs().join(", "),
                runs(plan.kept)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let _lock = RunLock::acquire(state_dir).map_err(apply_error)?;
    let plan = prune(&config).map_err(CliError::runtime)?;
    if args.json {
        crate::print_json(&plan_json(&plan, &retention, false))?;
    } else if plan.is_empty() {
        println!("nothing to prune: {} kept", runs(plan.kept));
    } else {
        println!("{}", pruned(&plan, &retention));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prunes after a run of `smart run` (the caller holds the run lock): prints one line when runs
/// were removed; a failure is a warning, never the run's failure.
pub(crate) fn after_run(config: &AgentConfig) {
    match prune(config) {
        Ok(plan) if plan.is_empty() => {}
        Ok(plan) => println!("{}", pruned(&plan, &config.retention())),
        Err(message) => eprintln!("smart: warning: {message}"),
    }
}

/// Prunes the records, then re-renders the dashboard's index and deletes the pruned runs' pages;
/// an error is a message naming the cause and the fix.
fn prune(config: &AgentConfig) -> Result<PrunePlan, String> {
    let state_dir = config.state_dir();
    let audit = AuditLog::with_rotation(state_dir, config.logs());
    let now = SystemTime::now();
    let definitions = definitions(config);
    let plan = records::prune(state_dir, &config.retention(), &definitions, now, &audit).map_err(|e| {
        format!(
            "retention could not prune the run records in {}: {e}; they are kept until the next \
             pass (fix the cause, or set [retention] enabled = false in smart.toml)",
            state_dir.display()
        )
    })?;
    if !plan.is_empty() {
        let dir = config.dashboard_dir();
        Dashboard::new(state_dir, dir)
            .render_index(now)
            .map_err(|e| {
                format!(
                    "retention pruned {}, but the dashboard in {} could not be updated: {e}; \
                     run `smart dashboard` once the cause is fixed",
                    runs(plan.runs().len()),
                    dir.display()
                )
            })?;
    }
    Ok(plan)
}

/// The experiments dir's current definitions, whose decisions `smart run` looks up; unknown when
/// the dir cannot be listed (then every definition's latest decision is kept).
fn definitions(config: &AgentConfig) -> Definitions {
    match experiment_files(config.experiments_dir()) {
        Ok(files) => Definitions::Current(
            validate_paths(&files, config.defaults())
                .experiments
                .iter()
                .map(|e| (e.name().to_owned(), e.definition_hash().to_owned()))
                .collect(),
        ),
        Err(_) => Definitions::Unknown,
    }
}

/// A prune plan as JSON: whether it was a dry run, whether retention is on, the runs removed (or
/// that would be), why, and how many are kept.
fn plan_json(plan: &PrunePlan, retention: &Retention, dry_run: bool) -> serde_json::Value {
    let enabled = retention.enabled();
    serde_json::json!({
        "dry_run": dry_run,
        "enabled": enabled,
        "runs": if enabled { plan.runs() } else { Vec::new() },
        "reason": (enabled && !plan.is_empty()).then(|| plan.reason(retention)),
        "kept": plan.kept,
    })
}

fn pruned(plan: &PrunePlan, retention: &Retention) -> String {
    format!(
        "retention: pruned {} ({}), and their dashboard pages; {} kept",
        runs(plan.runs().len()),
        plan.reason(retention),
        runs(plan.kept)
    )
}

fn runs(n: usize) -> String {
    format!("{n} run{}", if n == 1 { "" } else { "s" })
}
