//! `smart run`: runs experiments through the engine, one after another under the run lock, with
//! the real probe, judge and applier, and records every run under the state dir.

mod nothing;
mod progress;
mod search;
pub(crate) mod source;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use smart_apply::{EngineApplier, RunLock};
use smart_coach::MaybeCoach;
use smart_core::engine::{CancelToken, EngineError, LiveConfig, RunConfig, RunEnd, RunReport};
use smart_core::records::{self, Records};
use smart_core::runner::{
    Bench, LoopConfig, LoopError, Parts, QueueError, Repeat, RunWindow, Runner, Selection,
};
use smart_core::schedule::Human;
use smart_core::{AgentConfig, Experiment};
use smart_dashboard::{Dashboard, LiveDashboard};
use smart_decide::EngineJudge;
use smart_probe::TokioClock;

use crate::Global;
use crate::error::CliError;
use crate::revert::{applier, apply_error, describe};

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
/// progress goes to stderr, one line per decision to stdout. A search experiment runs after the
/// others as one judged candidate after another, resuming where its state in the state dir stood,
/// until it ends (one line then says what it kept) or the stop; see docs/search.md.
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
    let runner = Runner::new(loop_config(args, &config)).map_err(queue_error)?;
    let env = |name: &str| std::env::var(name).ok();
    let coach = MaybeCoach::from(
        smart_coach::from_config(&config, config.state_dir(), &env).map_err(CliError::bad_input)?,
    );
    let lock = RunLock::acquire(config.state_dir()).map_err(apply_error)?;
    let runtime = runtime()?;
    let cancel = cancel_on_signal(&runtime);
    recover(&runtime, &config, &lock)?;
    let _metrics = crate::metrics::start(&config, &runtime)?;
    if runner.pending().is_empty() && runner.searches().is_empty() && args.once {
        let history = records::history(config.state_dir()).map_err(CliError::runtime)?;
        println!("{}", nothing::message(config.experiments_dir(), &history));
    }
    let mut bench = CliBench::new(&config, &lock, coach, AfterRun::PrintAndPrune);
    let end = runtime
        .block_on(runner.run_searching(
            &TokioClock::new(),
            &cancel,
            &mut bench,
            &smart_search::PatternSearch,
        ))
        .map_err(loop_error)?;
    // A failure outranks the stop that followed it; a signal while waiting for work is no stop of
    // anything (exit 0), one that cut work short exits 5 with the original back.
    if end.failed {
        Ok(ExitCode::from(crate::error::EXIT_RUNTIME))
    } else if end.stopped {
        Ok(ExitCode::from(crate::error::EXIT_STOPPED))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// The library loop's settings from the arguments and smart.toml.
fn loop_config(args: &Args, config: &AgentConfig) -> LoopConfig {
    LoopConfig {
        experiments_dir: config.experiments_dir().to_owned(),
        state_dir: config.state_dir().to_owned(),
        defaults: config.defaults().clone(),
        apply_by: Default::default(),
        selection: if args.names.is_empty() {
            Selection::Pending
        } else {
            Selection::Named(args.names.clone())
        },
        repeat: if args.once {
            Repeat::Once
        } else {
            Repeat::Watch { rescan: RESCAN }
        },
        seed: args.seed,
        window: config.run_window(),
    }
}

/// A queue that cannot be read: bad input (each invalid file's problems go to stderr first), or
/// a runtime failure when the records cannot be read.
fn queue_error(error: QueueError) -> CliError {
    if let QueueError::Invalid { invalid, .. } = &error {
        let mut err = std::io::stderr().lock();
        for invalid in invalid {
            let _ = writeln!(err, "{invalid}");
        }
    }
    if error.is_bad_input() {
        CliError::bad_input(error)
    } else {
        CliError::runtime(error)
    }
}

/// Why the loop stopped: its bench's own error, the queue, or a restore that failed (exit 3; the
/// decisions were printed when the run finished).
pub(crate) fn loop_error(error: LoopError<CliError>) -> CliError {
    match error {
        LoopError::Bench(e) => e,
        LoopError::Queue(e) => queue_error(e),
        LoopError::Engine(e) => CliError::runtime(e),
        LoopError::Search(e) => CliError::runtime(e),
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
    crate::revert::close_records(config, &recovered);
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

/// Shows what would run, in which order and for how long; touches nothing.
fn dry_run(args: &Args, config: &AgentConfig) -> Result<ExitCode, CliError> {
    let runner = Runner::new(loop_config(args, config)).map_err(queue_error)?;
    let queue = runner.pending();
    for search in runner.searches() {
        let spec = search.definition().search.as_ref();
        println!(
            "{}: would search {} param{} (resuming where its state in {} stands), up to {} candidates of at most {} each (time box {} each), one at a time, each an ABBA test",
            search.name(),
            spec.map_or(0, |s| s.params.len()),
            if spec.is_some_and(|s| s.params.len() == 1) {
                ""
            } else {
                "s"
            },
            smart_core::runner::state_path(config.state_dir(), search.name()).display(),
            spec.map_or(0, |s| s.budget.max_candidates),
            Human(search.durations().worst_case_s),
            Human(search.schedule().max_duration_s),
        );
    }
    if queue.is_empty() && runner.searches().is_empty() {
        let history = records::history(config.state_dir()).map_err(CliError::runtime)?;
        println!("{}", nothing::message(config.experiments_dir(), &history));
        return Ok(ExitCode::SUCCESS);
    }
    let mut total = 0.0;
    for experiment in queue {
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

/// What `smart run` does when a run is over, beyond logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterRun {
    /// Print the run's decisions and how it ended, then apply the retention.
    PrintAndPrune,
    /// Nothing more (`smart demo` prints its own table at the end).
    Nothing,
}

/// The parts of every run of `smart run` and `smart demo`: the real probe, judge and applier
/// (under the run lock), the records, the live dashboard and the progress printer as observers,
/// one coach for all runs; and what to log and print when a run is over.
pub(crate) struct CliBench<'a> {
    config: &'a AgentConfig,
    lock: &'a RunLock,
    coach: MaybeCoach,
    after_run: AfterRun,
    /// The applier of the run under way, for the state gap its restore may leave.
    apply: Option<smart_apply::Applier>,
}

impl<'a> CliBench<'a> {
    pub(crate) fn new(
        config: &'a AgentConfig,
        lock: &'a RunLock,
        coach: MaybeCoach,
        after_run: AfterRun,
    ) -> CliBench<'a> {
        CliBench {
            config,
            lock,
            coach,
            after_run,
            apply: None,
        }
    }
}

impl<'a> Bench for CliBench<'a> {
    type Probe = source::Source;
    type Applier = EngineApplier<'a>;
    type Judge = EngineJudge;
    type Coach = MaybeCoach;
    // The records first, so the dashboard renders what was just written.
    type Observer = (((Records, LiveDashboard), Show), crate::metrics::Publish);
    type Error = CliError;

    fn parts(
        &mut self,
        experiment: &Experiment,
        run: &RunConfig,
    ) -> Result<Parts<source::Source, EngineApplier<'a>, EngineJudge, Self::Observer>, CliError>
    {
        let config = self.config;
        let state_dir = config.state_dir();
        let judge = EngineJudge::new(experiment);
        // The probe's client needs the runtime's context (the loop runs inside `block_on`).
        let probe = source::Source::new(experiment)
            .map_err(|e| CliError::bad_input(format!("{}: {e}", experiment.name())))?;
        let apply = applier(config);
        let engine_applier = EngineApplier::new(apply.clone(), self.lock, experiment, &run.run_id);
        self.apply = Some(apply);
        let records = Records::with_rotation(state_dir, config.logs());
        let dashboard = LiveDashboard::new(Dashboard::new(state_dir, config.dashboard_dir()));
        let show = Show::new(experiment.name());
        if self.after_run == AfterRun::PrintAndPrune {
            crate::calibrate::print_run_notes(state_dir, experiment);
        }
        Ok(Parts {
            probe,
            applier: engine_applier,
            judge,
            observer: (
                ((records, dashboard), show),
                crate::metrics::observer(config),
            ),
        })
    }

    fn coach(&mut self) -> &mut MaybeCoach {
        &mut self.coach
    }

    /// Says why nothing happens for a while (the wait is until the window opens).
    fn waiting(&mut self, experiment: &Experiment, window: &RunWindow, wait: Duration) {
        println!(
            "{}: waiting {} for the run window {window}",
            experiment.name(),
            Human(wait.as_secs_f64())
        );
    }

    /// Logs what a restore could not record and the audit head, warns when the dashboard could
    /// not be written, prints the decisions (always when the restore failed, which exits 3),
    /// and for `smart run` how the run ended, then prunes.
    fn finished(
        &mut self,
        experiment: &Experiment,
        mut parts: Parts<source::Source, EngineApplier<'a>, EngineJudge, Self::Observer>,
        outcome: Result<&RunReport, &EngineError>,
    ) -> Result<(), CliError> {
        let config = self.config;
        // One log line each (journald under systemd): what a restore could not record, and the
        // audit head as an anchor outside the state dir.
        if let Some(gap) = self.apply.take().and_then(|apply| apply.state_gap()) {
            tracing::warn!("{}: {gap}", experiment.name());
        }
        tracing::info!(
            "{}: {}",
            experiment.name(),
            crate::audit::head_line(config.state_dir())
        );
        if let Some(e) = parts.observer.0.0.1.take_error() {
            eprintln!(
                "smart: {}: the dashboard in {} could not be written: {e}",
                experiment.name(),
                config.dashboard_dir().display()
            );
        }
        match outcome {
            Err(e) => {
                for d in &e.report().decisions {
                    println!("{} {}", experiment.name(), summary(d));
                }
            }
            Ok(report) if self.after_run == AfterRun::PrintAndPrune => {
                print_run(experiment, report);
                crate::prune::after_run(config);
            }
            Ok(_) => {}
        }
        Ok(())
    }
}

/// Prints one run's decisions and how it ended (the records say why when it ended early).
fn print_run(experiment: &Experiment, report: &RunReport) {
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
}
