//! `smart dashboard`: render the dashboard dir (index, a page per run, status, CSS and JS) from
//! the run records in the state dir, as `smart run` does after every block and decision.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use smart_dashboard::Dashboard;

use crate::Global;
use crate::error::CliError;

/// Render the dashboard (DASHBOARD_DIR) from the run records in STATE_DIR
///
/// Writes index.html (live status, the live config's p50 across runs, every decision), one page
/// per run under runs/, status.json, dashboard.css and dashboard.js. Every file is replaced
/// atomically, so a web server serving the dir never sends half a page. Nothing is fetched from
/// elsewhere: the pages work without internet and under a strict Content-Security-Policy.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// Write the dashboard into DIR instead of the config's dashboard_dir
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Runs the dashboard subcommand.
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    let config = global.agent_config()?;
    let out = args.out.as_deref().unwrap_or(config.dashboard_dir());
    let dashboard = Dashboard::new(config.state_dir(), out);
    let rendered = dashboard
        .render(SystemTime::now())
        .map_err(CliError::runtime)?;
    println!(
        "dashboard written to {}: {} run{}, {} page{}, index.html {:.1} KB",
        out.display(),
        rendered.runs,
        if rendered.runs == 1 { "" } else { "s" },
        rendered.run_pages + 1,
        if rendered.run_pages == 0 { "" } else { "s" },
        rendered.index_bytes as f64 / 1024.0
    );
    Ok(ExitCode::SUCCESS)
}
