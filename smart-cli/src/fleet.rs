//! `smart fleet`: fleet experiments across the hosts of an Ansible inventory (the smart-fleet
//! crate): `validate` checks a file, `run` runs one; `smart recover` puts back the hosts of an
//! interrupted one.

use std::path::PathBuf;
use std::process::ExitCode;

use smart_fleet::{
    CommandSwitch, Event, FleetError, FleetErrorKind, FleetExperiment, PrometheusMeasure,
};

use crate::Global;
use crate::error::CliError;

/// Fleet experiments: A/B across the hosts of an Ansible inventory
///
/// The hosts of the experiment's `fleet.group` are split at random into two balanced groups;
/// in each period one group runs the variant and the other the baseline, both measured by
/// Prometheus over the same window, and the groups swap every period. The judge decides on the
/// pairs of periods; a kept variant is promoted to the rest of the group in stages, each checked
/// against the guardrails. Hosts are switched by the experiment's apply argv (ansible-playbook
/// -l {{ hosts }}); every change is journalled in the state dir first, so `smart recover` puts
/// back every touched host after a crash.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: FleetCommand,
}

#[derive(Debug, clap::Subcommand)]
enum FleetCommand {
    /// Check a fleet experiment file (no host is contacted)
    Validate {
        /// The fleet experiment files
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a fleet experiment: crossover, decision, promotion or revert
    Run {
        /// The fleet experiment file
        file: PathBuf,
    },
}

/// Splits the paths `smart validate` was given into fleet experiment files (a JSON object with
/// a top-level `fleet` key) and the rest.
pub(crate) fn split_fleet_files(paths: Vec<PathBuf>) -> (Vec<PathBuf>, Vec<PathBuf>) {
    paths.into_iter().partition(|path| {
        path.is_file()
            && std::fs::read_to_string(path)
                .ok()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .is_some_and(|v| v.get("fleet").is_some())
    })
}

/// Validates fleet experiment files, printing `FILE: ok` for each unless `quiet`; the first
/// invalid one is the error (exit 2), each problem on its own `FILE: field: message` line.
pub(crate) fn validate_files(files: &[PathBuf], quiet: bool) -> Result<(), CliError> {
    for file in files {
        let experiment = FleetExperiment::load(file).map_err(fleet_error)?;
        if !quiet && !crate::logs::quiet() {
            let spec = experiment.spec();
            println!(
                "{}: ok (fleet experiment `{}`: variant `{}`, group `{}`, up to {} pairs of {} s \
                 periods)",
                file.display(),
                spec.name,
                spec.variant.name,
                spec.fleet.group,
                spec.fleet.max_pairs,
                spec.fleet.period_s
            );
        }
    }
    Ok(())
}

/// Runs the `fleet` subcommand.
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    match &args.command {
        FleetCommand::Validate { files } => {
            validate_files(files, false)?;
            Ok(ExitCode::SUCCESS)
        }
        FleetCommand::Run { file } => run_one(file, global),
    }
}

fn run_one(file: &std::path::Path, global: &Global) -> Result<ExitCode, CliError> {
    let experiment = FleetExperiment::load(file).map_err(fleet_error)?;
    let config = global.agent_config()?;
    let state_dir = config.state_dir().to_owned();
    // The run lock: `smart recover` (which reverts unfinished fleet journals) and `smart run`
    // wait for this run, and two fleet runs never switch the same hosts at once.
    let _lock = smart_apply::RunLock::acquire(&state_dir).map_err(crate::revert::apply_error)?;
    let spec = experiment.spec();
    let seed = spec.fleet.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let timeout = std::time::Duration::from_secs_f64(spec.fleet.command_timeout_s);
    let switch = CommandSwitch {
        argv: spec.apply.argv.clone(),
        dir: experiment.dir().to_owned(),
        inventory: experiment.inventory().to_owned(),
        timeout,
        pid_dir: Some(smart_fleet::running_dir(&state_dir)),
    };
    let measure = PrometheusMeasure::new(&experiment);
    let runtime = crate::revert::runtime()?;
    let result = runtime.block_on(async {
        let hosts =
            smart_fleet::inventory_hosts(experiment.inventory(), &spec.fleet.group, timeout)
                .await?;
        let mut print = |event: &Event| eprintln!("smart: fleet: {}", describe(event));
        let run = smart_fleet::run_fleet(
            &experiment,
            &hosts,
            &switch,
            &measure,
            &state_dir,
            seed,
            &mut print,
        );
        tokio::select! {
            result = run => result.map(Some),
            () = stopped() => {
                eprintln!("smart: fleet: stop requested: putting every touched host back");
                smart_fleet::recover(&state_dir).await?;
                Ok(None)
            }
        }
    });
    let Some(outcome) = result.map_err(fleet_error)? else {
        return Ok(ExitCode::from(crate::error::EXIT_STOPPED));
    };
    let variant = &spec.variant.name;
    let (a, b) = &outcome.groups;
    println!(
        "fleet experiment {}: groups [{}] and [{}]",
        spec.name,
        a.join(", "),
        b.join(", ")
    );
    for report in &outcome.report.variants {
        println!(
            "  {}: {} after {} pair(s) of periods; {}",
            report.variant,
            report.verdict.as_str(),
            report.cycles,
            report.reasons.join("; ")
        );
    }
    match (&outcome.stage_failure, outcome.kept) {
        (Some(why), _) => println!("reverted every host: {why}"),
        (None, true) => println!("kept `{variant}`: promoted to every host"),
        (None, false) => println!("reverted: every host runs the baseline"),
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGINT or SIGTERM.
async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

fn describe(event: &Event) -> String {
    match event {
        Event::Split { a, b } => format!("groups [{}] and [{}]", a.join(", "), b.join(", ")),
        Event::Period {
            pair,
            period,
            variant_hosts,
            p50_us,
        } => format!(
            "pair {} period {}: variant on [{}], p50 {:.1} ms against {:.1} ms",
            pair + 1,
            period + 1,
            variant_hosts.join(", "),
            p50_us.0 as f64 / 1000.0,
            p50_us.1 as f64 / 1000.0
        ),
        Event::Decided { verdict, pairs } => format!("{verdict} after {pairs} pair(s)"),
        Event::Stage { variant_hosts } => format!(
            "promotion stage passed: variant on [{}]",
            variant_hosts.join(", ")
        ),
        Event::Reverted { hosts } => format!("put back to the baseline: [{}]", hosts.join(", ")),
    }
}

/// A fleet error as the binary reports it: bad input exits 2, the rest 3.
pub(crate) fn fleet_error(error: FleetError) -> CliError {
    match error.kind() {
        FleetErrorKind::BadInput => CliError::bad_input(error),
        FleetErrorKind::Runtime => CliError::runtime(error),
    }
}
