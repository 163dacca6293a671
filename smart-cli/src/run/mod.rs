//! `smart run`: runs experiments through the engine, one after another under the run lock, with
//! the real probe, judge and applier, and records every run under the state dir.

mod clock;
mod nothing;
pub(crate) mod progress;

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use smart_apply::{EngineApplier, RunLock};
use smart_coach::MaybeCoach;
use smart_core::engine::{self, CancelToken, LiveConfig, Ports, RunConfig, RunEnd, RunReport};
use smart_core::records::{self, DecisionKind, Records};
use smart_core::schedule::Human;
use smart_core::validate::{experiment_files, validate_paths};
use smart_core::{AgentConfig, Experiment};
use smart_dashboard::{Dashboard, LiveDashboard};
use smart_decide::EngineJudge;
use smart_probe::EngineProbe;

use crate::Global;
use crate::error::CliError;
use crate::revert::{applier, apply_error, describe};

use self::clock::TokioClock;
use self::progress::Show;
pub(crate) use self::progress::summary;

/// How often the queue looks for new or changed experiments when it keeps running.
const RESCAN: Duration = Duration::from_secs(60);

/// Run experiments: measure each variant against the baseline, keep only proven wins
///
/// Without names, runs every experiment in the config's experiments_dir that has no decision for
/// its current definition (an edited file runs again; an aborted run is retried), one after
/// another, then keeps watching the directory until SIGINT/SIGTERM; `--once` stops after the
/// queue (for a systemd timer). With names, runs those experiments once, decided or not. Any
/// interrupted earlier run is recovered first. SIGINT or SIGTERM stops probing, restores the
/// original config, records the run as cancelled and exits 5 (3 if the restore failed; 0 when no
/// run was under way). Records go under the state dir (see `smart history`, `smart show`);
/// progress goes to stderr, one line per decision to stdout.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// Experiments to run, by name [default: every experiment without a decision]
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Run the queue once, then exit (for a systemd timer)
    #[arg(long)]
    once: bool,
    /// Validate and show the plan and its estimated duration; change nothing
    #[arg(long)]
    dry_run: bool,
    /// The seed of the ABBA design [default: a fresh one per run]; recorded with the run
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

/// Runs the queue (or the named experiments) and prints one line per decision.
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    let config = global.agent_config()?;
    if args.dry_run {
        return dry_run(args, &config);
    }
    // Bad input is reported before anything is touched (no lock, no recovery).
    let mut pending = queue(args, &config)?;
    let env = |name: &str| std::env::var(name).ok();
    let mut coach = MaybeCoach::from(
        smart_coach::from_config(&config, config.state_dir(), &env).map_err(CliError::bad_input)?,
    );
    let state_dir = config.state_dir();
    let lock = RunLock::acquire(state_dir).map_err(apply_error)?;
    let runtime = runtime()?;
    let cancel = cancel_on_signal(&runtime);
    recover(&runtime, &config, &lock)?;
    if pending.is_empty() && args.once {
        let history = records::history(state_dir).map_err(CliError::runtime)?;
        println!("{}", nothing::message(config.experiments_dir(), &history));
    }
    // A run that ended early for any reason but the stop.
    let mut failed = false;
    // The stop cut work short: a run was cancelled, or experiments were left in the queue.
    let mut stopped = false;
    loop {
        for experiment in &pending {
            if cancel.is_cancelled() {
                stopped = true;
                break;
            }
            let ctx = RunContext {
                seed: args.seed,
                config: &config,
                lock: &lock,
                runtime: &runtime,
                cancel: &cancel,
            };
            // A run whose restore failed has already returned exit 3 through `?`.
            match run_one(&ctx, &mut coach, experiment)? {
                RunEnd::Completed => {}
                RunEnd::Cancelled => stopped = true,
                RunEnd::TimedOut | RunEnd::BaselineUnsound | RunEnd::Failed => failed = true,
            }
            crate::prune::after_run(&config);
        }
        if args.once || !args.names.is_empty() || cancel.is_cancelled() {
            break;
        }
        runtime.block_on(async {
            tokio::select! {
                () = tokio::time::sleep(RESCAN) => {}
                () = cancel.cancelled() => {}
            }
        });
        if cancel.is_cancelled() {
            break;
        }
        pending = queue(args, &config)?;
    }
    // A failure outranks the stop that followed it; a signal while waiting for work is no stop of
    // anything (exit 0), one that cut work short exits 5 with the original back.
    if failed {
        Ok(ExitCode::from(crate::error::EXIT_RUNTIME))
    } else if stopped {
        Ok(ExitCode::from(crate::error::EXIT_STOPPED))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// The async runtime every run of one command shares: two workers, as on a 2-core server.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the async runtime: {e}")))
}

/// A cancel token that SIGINT or SIGTERM trips, for the engine to stop probing and restore.
pub(crate) fn cancel_on_signal(runtime: &tokio::runtime::Runtime) -> CancelToken {
    let cancel = CancelToken::new();
    let on_signal = cancel.clone();
    runtime.spawn(async move {
        wait_for_signal().await;
        on_signal.cancel();
    });
    cancel
}

/// Recovers any interrupted earlier run under `state_dir` and says what it put back.
pub(crate) fn recover(
    runtime: &tokio::runtime::Runtime,
    config: &AgentConfig,
    lock: &RunLock,
) -> Result<(), CliError> {
    let recovered = runtime
        .block_on(applier(config).recover(lock))
        .map_err(apply_error)?;
    for outcome in &recovered {
        println!("recovered {}", describe(outcome));
    }
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let sigterm = async {
        match &mut term {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = sigterm => {}
    }
}

/// The experiments to run now: the named ones, or every valid one without a decision for its
/// current definition. Any invalid file is bad input: nothing runs until it is fixed.
fn queue(args: &Args, config: &AgentConfig) -> Result<Vec<Experiment>, CliError> {
    let dir = config.experiments_dir();
    let files = experiment_files(dir).map_err(|e| {
        CliError::bad_input(format!(
            "cannot list the experiments dir {}: {e}; create it or set experiments_dir in smart.toml",
            dir.display()
        ))
    })?;
    let report = validate_paths(&files, config.defaults());
    if !report.invalid.is_empty() {
        let mut err = std::io::stderr().lock();
        for invalid in &report.invalid {
            let _ = writeln!(err, "{invalid}");
        }
        return Err(CliError::bad_input(format!(
            "{} experiment file{} in {} ha{} problems; fix them (see `smart validate`) before running",
            report.invalid.len(),
            if report.invalid.len() == 1 { "" } else { "s" },
            dir.display(),
            if report.invalid.len() == 1 { "s" } else { "ve" },
        )));
    }
    if !args.names.is_empty() {
        let mut named = Vec::new();
        for name in &args.names {
            match report.experiments.iter().find(|e| e.name() == name) {
                Some(experiment) => named.push(experiment.clone()),
                None => {
                    let known: Vec<&str> = report.experiments.iter().map(|e| e.name()).collect();
                    return Err(CliError::bad_input(format!(
                        "no experiment named `{name}` in {}; known: {}",
                        dir.display(),
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    )));
                }
            }
        }
        return Ok(named);
    }
    let history = records::history(config.state_dir()).map_err(CliError::runtime)?;
    Ok(report
        .experiments
        .into_iter()
        .filter(|e| decided_in(&history, e).is_none())
        .collect())
}

/// The run that decided `experiment`'s current definition, if one did (an aborted run did not).
fn decided_in<'h>(
    history: &'h [records::DecisionRecord],
    experiment: &Experiment,
) -> Option<&'h str> {
    history
        .iter()
        .rev()
        .find(|d| {
            d.experiment == experiment.name()
                && d.definition_hash == experiment.definition_hash()
                && d.decision != DecisionKind::Aborted
        })
        .map(|d| d.run_id.as_str())
}

/// Shows what would run, in which order and for how long; touches nothing.
fn dry_run(args: &Args, config: &AgentConfig) -> Result<ExitCode, CliError> {
    let queue = queue(args, config)?;
    if queue.is_empty() {
        let history = records::history(config.state_dir()).map_err(CliError::runtime)?;
        println!("{}", nothing::message(config.experiments_dir(), &history));
        return Ok(ExitCode::SUCCESS);
    }
    let mut total = 0.0;
    for experiment in &queue {
        let d = experiment.durations();
        total += d.expected_s;
        let names: Vec<&str> = experiment
            .variants()
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        println!(
            "{}: would run {} variant{} ({}) in {} cycles of 4 × {} s blocks: expected {}, at most {} (time box {})",
            experiment.name(),
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            if experiment.schedule().interleave {
                "ABBA"
            } else {
                "baseline-then-variant"
            },
            experiment.schedule().block_s,
            Human(d.expected_s),
            Human(d.worst_case_s),
            Human(experiment.schedule().max_duration_s),
        );
    }
    println!("in all: expected {} (nothing was changed)", Human(total));
    Ok(ExitCode::SUCCESS)
}

/// What every run of one `smart run` (or `smart demo`) shares.
pub(crate) struct RunContext<'a> {
    /// The seed of every run's ABBA design; `None` draws a fresh one per run.
    pub(crate) seed: Option<u64>,
    pub(crate) config: &'a AgentConfig,
    pub(crate) lock: &'a RunLock,
    pub(crate) runtime: &'a tokio::runtime::Runtime,
    pub(crate) cancel: &'a CancelToken,
}

/// Runs one experiment and says how its run ended (the records say why when it ended early).
fn run_one(
    ctx: &RunContext<'_>,
    coach: &mut MaybeCoach,
    experiment: &Experiment,
) -> Result<RunEnd, CliError> {
    // What the schedule can detect, from `smart calibrate`'s measured noise when there is one.
    crate::calibrate::print_run_notes(ctx.config.state_dir(), experiment);
    let report = execute(ctx, coach, experiment)?;
    let run_id = &report.run_id;
    for d in &report.decisions {
        println!("{} {}", experiment.name(), summary(d));
    }
    let live = match &report.live {
        LiveConfig::Variant(name) => format!("{name} is live"),
        LiveConfig::Original => "the original config is live".to_owned(),
        LiveConfig::Unknown => "the live config is unknown".to_owned(),
    };
    match report.end {
        RunEnd::Completed => {
            println!("{}: run {run_id} completed; {live}", experiment.name());
        }
        end => {
            println!(
                "{}: run {run_id} ended early ({}): {}; {live}",
                experiment.name(),
                end.as_str(),
                report.end_reason.as_deref().unwrap_or("")
            );
        }
    }
    Ok(report.end)
}

/// Runs one experiment through the engine with the real probe, judge and applier, the records,
/// the live dashboard and the progress printer as observers; returns the engine's report. When
/// the original could not be restored, prints the decisions and fails (exit 3).
pub(crate) fn execute(
    ctx: &RunContext<'_>,
    coach: &mut MaybeCoach,
    experiment: &Experiment,
) -> Result<RunReport, CliError> {
    let RunContext {
        seed,
        config,
        lock,
        runtime,
        cancel,
    } = *ctx;
    let seed = seed.unwrap_or_else(engine::fresh_seed);
    let run_id = records::new_run_id(experiment.name(), SystemTime::now(), seed);
    let state_dir = config.state_dir();
    let mut judge = EngineJudge::new(experiment).map_err(|e| {
        CliError::bad_input(format!(
            "{}: the judge refuses its settings: {e}",
            experiment.name()
        ))
    })?;
    // The probe's client needs the runtime's context.
    let mut probe = {
        let _context = runtime.enter();
        EngineProbe::new(experiment).map_err(|e| {
            CliError::bad_input(format!(
                "{}: cannot set up the probe: {e}",
                experiment.name()
            ))
        })?
    };
    let apply = applier(config);
    let mut applier = EngineApplier::new(apply.clone(), lock, experiment, &run_id);
    let clock = TokioClock::new();
    // The records first, so the dashboard renders what was just written.
    let records = Records::with_rotation(state_dir, config.logs());
    let dashboard = LiveDashboard::new(Dashboard::new(state_dir, config.dashboard_dir()));
    let mut observer = ((records, dashboard), Show::new(experiment.name()));
    let run_config = RunConfig {
        run_id: run_id.clone(),
        seed,
        cancel: cancel.clone(),
    };
    let ports = Ports {
        probe: &mut probe,
        applier: &mut applier,
        judge: &mut judge,
        clock: &clock,
        coach,
        observer: &mut observer,
    };
    let result = runtime.block_on(engine::run(experiment, &run_config, ports));
    // One log line each (journald under systemd): what a restore could not record, and the
    // audit head as an anchor outside the state dir.
    if let Some(gap) = apply.state_gap() {
        tracing::warn!("{}: {gap}", experiment.name());
    }
    tracing::info!(
        "{}: {}",
        experiment.name(),
        crate::audit::head_line(state_dir)
    );
    if let Some(e) = observer.0.1.take_error() {
        eprintln!(
            "smart: {}: the dashboard in {} could not be written: {e}",
            experiment.name(),
            config.dashboard_dir().display()
        );
    }
    result.map_err(|e| {
        for d in &e.report().decisions {
            println!("{} {}", experiment.name(), summary(d));
        }
        CliError::runtime(e)
    })
}
