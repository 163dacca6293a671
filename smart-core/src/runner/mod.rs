//! The run loop: turns an experiments directory and a state dir into runs, one after another —
//! which experiment runs next ([`queue`]: every one without a decision for its current
//! definition, or the named ones), a fresh seed and run id per run, once or watching the
//! directory for new and edited files, the daily hours runs may happen in ([`RunWindow`]), and
//! cancellation between runs and while waiting.
//!
//! Like the [`engine`] it drives, the loop has no runtime and no I/O but reading the
//! experiments and the records: time comes through the [`ClockPort`], so tests run it on a
//! simulated clock, and every front end (the `smart` binary, another Rust program) runs the very
//! same loop. What differs between front ends is a [`Bench`]: the parts of each run (the
//! measurement source, the applier, the judge, the observer of its events), the coach, and what
//! to do when a run is over (print, prune, log).
//!
//! ```no_run
//! # async fn example<K: smart_core::engine::ClockPort, B: smart_core::runner::Bench>(
//! #     clock: &K, bench: &mut B,
//! # ) -> Result<(), Box<dyn std::error::Error>> where B::Error: std::error::Error + 'static {
//! use std::time::Duration;
//! use smart_core::engine::CancelToken;
//! use smart_core::runner::{LoopConfig, Repeat, Runner, Selection};
//!
//! let config = LoopConfig {
//!     experiments_dir: "/etc/smart/experiments".into(),
//!     state_dir: "/var/lib/smart".into(),
//!     defaults: Default::default(),
//!     apply_by: Default::default(),
//!     selection: Selection::Pending,
//!     repeat: Repeat::Watch { rescan: Duration::from_secs(60) },
//!     seed: None,
//!     window: None,
//! };
//! // Reads and validates the queue: bad input fails here, before anything is touched.
//! let runner = Runner::new(config)?;
//! let cancel = CancelToken::new(); // trip it (on SIGTERM, say) to stop
//! let end = runner.run(clock, &cancel, bench).await?;
//! println!("{} runs; failed: {}, stopped: {}", end.runs, end.failed, end.stopped);
//! # Ok(()) }
//! ```

mod queue;
mod search;
mod window;

use std::path::PathBuf;
use std::time::Duration;

pub use queue::{QueueError, Selection, decided_in, queue};
pub use search::{
    SEARCHES_DIR, SearchBench, SearchConfig, SearchOutcome, SearchStateError, SearchStep,
    StoredSearch, Strategy, run_search, search_done, state_path, stored_searches,
};
pub use window::RunWindow;

use crate::engine::race::{Either, race};
use crate::engine::{
    self, ApplierPort, CancelToken, ClockPort, CoachPort, EngineError, JudgePort, ObserverPort,
    Ports, ProbePort, RunConfig, RunEnd, RunReport,
};
use crate::validate::ApplyBy;
use crate::{Defaults, Experiment, records};

/// How long a loop keeps going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// One pass over the queue, then return (a systemd timer, a one-shot tool).
    Once,
    /// After each pass wait `rescan`, then read the queue again (new and edited files), until
    /// cancelled. Named experiments ([`Selection::Named`]) still run only once.
    Watch {
        /// How long to wait between passes.
        rescan: Duration,
    },
}

/// What a loop runs and for how long.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// Where the experiment files are (`*.json`, not recursive).
    pub experiments_dir: PathBuf,
    /// Where the run records are: the decisions the queue looks up.
    pub state_dir: PathBuf,
    /// The agent's defaults every experiment is validated with.
    pub defaults: Defaults,
    /// Who changes the configuration: [`ApplyBy::Caller`] when the bench's applier is the
    /// program's own and the files have no `apply` section.
    pub apply_by: ApplyBy,
    /// Which experiments run.
    pub selection: Selection,
    /// Once or watching.
    pub repeat: Repeat,
    /// The seed of every run's ABBA design; `None` draws a fresh one per run.
    pub seed: Option<u64>,
    /// The daily hours runs may happen in (`run_window` in smart.toml); `None` for any time.
    pub window: Option<RunWindow>,
}

impl LoopConfig {
    /// One pass over the undecided experiments of `experiments_dir`, recorded in `state_dir`:
    /// default agent settings, smart-apply changing the configuration ([`ApplyBy::Smart`]), a
    /// fresh seed per run, any time of day. Change a field for anything else.
    pub fn new(experiments_dir: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> LoopConfig {
        LoopConfig {
            experiments_dir: experiments_dir.into(),
            state_dir: state_dir.into(),
            defaults: Defaults::default(),
            apply_by: ApplyBy::Smart,
            selection: Selection::Pending,
            repeat: Repeat::Once,
            seed: None,
            window: None,
        }
    }
}

/// The parts one run works through that the [`Bench`] makes for it, owned by the run.
#[derive(Debug)]
pub struct Parts<P, A, J, O> {
    /// The measurement source.
    pub probe: P,
    /// Changes and restores the configuration.
    pub applier: A,
    /// Judges each variant.
    pub judge: J,
    /// Records and shows the run's events.
    pub observer: O,
}

/// A front end's side of the loop: makes the parts of each run and hears how it ended. This is
/// where a front end plugs in its own measurement source, applier, judge and observer.
pub trait Bench {
    /// The measurement source ([`ProbePort`]).
    type Probe: ProbePort;
    /// The applier ([`ApplierPort`]).
    type Applier: ApplierPort;
    /// The judge ([`JudgePort`]).
    type Judge: JudgePort;
    /// The coach every run shares ([`engine::NoCoach`] for none).
    type Coach: CoachPort;
    /// The observer of one run's events ([`engine::NoObserver`] for none; a tuple for several).
    type Observer: ObserverPort;
    /// Why the bench could not make a run's parts or finish it; it ends the loop.
    type Error;

    /// The parts of run `run` of `experiment`.
    #[expect(
        clippy::type_complexity,
        reason = "the four parts, each named by the trait"
    )]
    fn parts(
        &mut self,
        experiment: &Experiment,
        run: &RunConfig,
    ) -> Result<Parts<Self::Probe, Self::Applier, Self::Judge, Self::Observer>, Self::Error>;

    /// The coach, asked about inconclusive variants of every run.
    fn coach(&mut self) -> &mut Self::Coach;

    /// A run of `experiment` is over: `outcome` is its report, or the error of a run whose
    /// original could not be restored (the loop then returns that error). `parts` are handed
    /// back, for what they hold (an observer's failure, an applier's state). Does nothing by
    /// default.
    fn finished(
        &mut self,
        experiment: &Experiment,
        parts: Parts<Self::Probe, Self::Applier, Self::Judge, Self::Observer>,
        outcome: Result<&RunReport, &EngineError>,
    ) -> Result<(), Self::Error> {
        let _ = (experiment, parts, outcome);
        Ok(())
    }

    /// The loop waits `wait` for the run window before running `experiment` (to say so). Does
    /// nothing by default.
    fn waiting(&mut self, experiment: &Experiment, window: &RunWindow, wait: Duration) {
        let _ = (experiment, window, wait);
    }
}

/// A [`Bench`] that is only a function making each run's parts (see [`bench_fn`]).
struct BenchFn<F> {
    parts: F,
    coach: engine::NoCoach,
}

/// The bench whose every run's parts `parts` makes, for a front end that needs nothing else: no
/// coach, nothing done after a run (read the records for what it decided).
///
/// ```no_run
/// # fn demo<P: smart_core::engine::ProbePort, A: smart_core::engine::ApplierPort,
/// #          J: smart_core::engine::JudgePort>(probe: P, applier: A, judge: J) {
/// use smart_core::engine::NoObserver;
/// use smart_core::runner::{Parts, bench_fn};
///
/// let (mut probe, mut applier, mut judge) = (Some(probe), Some(applier), Some(judge));
/// let bench = bench_fn(move |_experiment, _run| {
///     Ok::<_, String>(Parts {
///         probe: probe.take().ok_or("one run only")?,
///         applier: applier.take().ok_or("one run only")?,
///         judge: judge.take().ok_or("one run only")?,
///         observer: NoObserver,
///     })
/// });
/// # let _ = bench; }
/// ```
pub fn bench_fn<F, P, A, J, O, E>(
    parts: F,
) -> impl Bench<Probe = P, Applier = A, Judge = J, Coach = engine::NoCoach, Observer = O, Error = E>
where
    F: FnMut(&Experiment, &RunConfig) -> Result<Parts<P, A, J, O>, E>,
    P: ProbePort,
    A: ApplierPort,
    J: JudgePort,
    O: ObserverPort,
{
    BenchFn {
        parts,
        coach: engine::NoCoach,
    }
}

impl<F, P, A, J, O, E> Bench for BenchFn<F>
where
    F: FnMut(&Experiment, &RunConfig) -> Result<Parts<P, A, J, O>, E>,
    P: ProbePort,
    A: ApplierPort,
    J: JudgePort,
    O: ObserverPort,
{
    type Probe = P;
    type Applier = A;
    type Judge = J;
    type Coach = engine::NoCoach;
    type Observer = O;
    type Error = E;

    fn parts(&mut self, experiment: &Experiment, run: &RunConfig) -> Result<Parts<P, A, J, O>, E> {
        (self.parts)(experiment, run)
    }

    fn coach(&mut self) -> &mut engine::NoCoach {
        &mut self.coach
    }
}

/// Why a loop stopped before its end. Runs that fail in the ordinary way (a guardrail, the time
/// box) are no error: they are counted in [`LoopEnd`].
#[derive(Debug, thiserror::Error)]
pub enum LoopError<E> {
    /// The queue could not be read (an invalid file appeared, the state dir is unreadable).
    #[error(transparent)]
    Queue(QueueError),
    /// The bench failed.
    #[error("{0}")]
    Bench(E),
    /// A run could not restore the original configuration: the server may be on a variant.
    #[error(transparent)]
    Engine(EngineError),
    /// A search's state could not be read or written, or its strategy refused it.
    #[error(transparent)]
    Search(SearchStateError),
}

/// How a loop ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopEnd {
    /// The runs made.
    pub runs: usize,
    /// A run ended early for any reason but the stop (time box, unsound baseline, a failure).
    pub failed: bool,
    /// The stop cut work short: a run was cancelled, or experiments were left in the queue.
    pub stopped: bool,
}

/// A loop whose first queue has been read and validated.
#[derive(Debug)]
pub struct Runner {
    config: LoopConfig,
    pending: Vec<Experiment>,
    /// The searches of the queue, run after the experiments by [`Runner::run_searching`].
    searches: Vec<Experiment>,
}

impl Runner {
    /// Reads the queue: bad input (an invalid file, an unknown name) fails here, before the
    /// caller takes a lock or touches anything.
    pub fn new(config: LoopConfig) -> Result<Runner, QueueError> {
        let (pending, searches) = queue::read(&config)?;
        fits_window(&config, &pending)?;
        Ok(Runner {
            config,
            pending,
            searches,
        })
    }

    /// The searches of the first pass (named, or not over yet): [`Runner::run_searching`] runs
    /// them after the experiments; [`Runner::run`] leaves them out.
    pub fn searches(&self) -> &[Experiment] {
        &self.searches
    }

    /// The experiments the first pass will run, in order.
    pub fn pending(&self) -> &[Experiment] {
        &self.pending
    }

    /// Runs the queue through `bench`, one experiment after another, then (when watching) reads
    /// it again every `rescan` until `cancel` is tripped. A trip stops the run under way (it
    /// restores the original) and the loop. Searches are left out (see
    /// [`Runner::run_searching`]).
    pub async fn run<K: ClockPort, B: Bench>(
        self,
        clock: &K,
        cancel: &CancelToken,
        bench: &mut B,
    ) -> Result<LoopEnd, LoopError<B::Error>> {
        self.drive(clock, cancel, bench, &Skip).await
    }

    /// [`Runner::run`], and after the experiments of each pass every search of the queue, each
    /// from where its state in the state dir stands until it is over or the stop, its candidates
    /// chosen by `strategy` (see [`Strategy`]).
    pub async fn run_searching<K: ClockPort, B: SearchBench, S: Strategy>(
        self,
        clock: &K,
        cancel: &CancelToken,
        bench: &mut B,
        strategy: &S,
    ) -> Result<LoopEnd, LoopError<B::Error>> {
        self.drive(clock, cancel, bench, &With(strategy)).await
    }

    async fn drive<K: ClockPort, B: Bench, R: Searches<B>>(
        self,
        clock: &K,
        cancel: &CancelToken,
        bench: &mut B,
        searches: &R,
    ) -> Result<LoopEnd, LoopError<B::Error>> {
        let Runner {
            config,
            mut pending,
            searches: mut waiting,
        } = self;
        let mut end = LoopEnd::default();
        loop {
            for experiment in &pending {
                if cancel.is_cancelled() {
                    end.stopped = true;
                    break;
                }
                if let Some(window) = &config.window
                    && !window::wait_for(window, experiment, clock, cancel, bench).await
                {
                    end.stopped = true;
                    break;
                }
                let report = run_experiment(experiment, config.seed, cancel, clock, bench).await?;
                end.runs += 1;
                match report.end {
                    RunEnd::Completed => {}
                    RunEnd::Cancelled => end.stopped = true,
                    RunEnd::TimedOut
                    | RunEnd::BaselineUnsound
                    | RunEnd::Failed
                    | RunEnd::Recovered => {
                        end.failed = true;
                    }
                }
            }
            for experiment in &waiting {
                if cancel.is_cancelled() {
                    break;
                }
                let search_config = search::SearchConfig {
                    state_dir: &config.state_dir,
                    apply_by: config.apply_by,
                    seed: config.seed,
                };
                if let Some((outcome, runs)) = searches
                    .run(experiment, &search_config, cancel, clock, bench)
                    .await?
                {
                    end.runs += runs;
                    match outcome {
                        SearchOutcome::Done { .. } => {}
                        SearchOutcome::Stopped => end.stopped = true,
                        SearchOutcome::Failed(_) => end.failed = true,
                    }
                }
            }
            let rescan = match (config.repeat, &config.selection) {
                (Repeat::Watch { rescan }, Selection::Pending) => rescan,
                _ => break,
            };
            if cancel.is_cancelled() {
                break;
            }
            if let Either::Right(()) = race(clock.sleep(rescan), cancel.cancelled()).await {
                break;
            }
            (pending, waiting) = queue::read(&config).map_err(LoopError::Queue)?;
            fits_window(&config, &pending).map_err(LoopError::Queue)?;
        }
        Ok(end)
    }
}

/// What a pass does with the queue's searches.
trait Searches<B: Bench> {
    /// Runs search `experiment` (`None`: left out); its outcome and the runs it made.
    async fn run<K: ClockPort>(
        &self,
        experiment: &Experiment,
        config: &search::SearchConfig<'_>,
        cancel: &CancelToken,
        clock: &K,
        bench: &mut B,
    ) -> Result<Option<(SearchOutcome, usize)>, LoopError<B::Error>>;
}

/// Leaves searches out.
struct Skip;

impl<B: Bench> Searches<B> for Skip {
    async fn run<K: ClockPort>(
        &self,
        _experiment: &Experiment,
        _config: &search::SearchConfig<'_>,
        _cancel: &CancelToken,
        _clock: &K,
        _bench: &mut B,
    ) -> Result<Option<(SearchOutcome, usize)>, LoopError<B::Error>> {
        Ok(None)
    }
}

/// Runs searches with a strategy.
struct With<'s, S>(&'s S);

impl<B: SearchBench, S: Strategy> Searches<B> for With<'_, S> {
    async fn run<K: ClockPort>(
        &self,
        experiment: &Experiment,
        config: &search::SearchConfig<'_>,
        cancel: &CancelToken,
        clock: &K,
        bench: &mut B,
    ) -> Result<Option<(SearchOutcome, usize)>, LoopError<B::Error>> {
        let (outcome, runs) =
            search::run_search(experiment, self.0, config, cancel, clock, bench).await?;
        bench.search_finished(experiment, &outcome);
        Ok(Some((outcome, runs)))
    }
}

/// Refuses a queue with experiments that could never start in the run window.
fn fits_window(config: &LoopConfig, pending: &[Experiment]) -> Result<(), QueueError> {
    let Some(window) = config.window else {
        return Ok(());
    };
    let experiments = window::too_long(&window, pending);
    if experiments.is_empty() {
        Ok(())
    } else {
        Err(QueueError::LongerThanWindow {
            window,
            experiments,
        })
    }
}

/// Runs one experiment through the engine with the parts `bench` makes for it: a fresh seed
/// (unless `seed` is given) and run id, then [`engine::run`], then [`Bench::finished`].
pub async fn run_experiment<K: ClockPort, B: Bench>(
    experiment: &Experiment,
    seed: Option<u64>,
    cancel: &CancelToken,
    clock: &K,
    bench: &mut B,
) -> Result<RunReport, LoopError<B::Error>> {
    let seed = seed.unwrap_or_else(engine::fresh_seed);
    let run = RunConfig {
        run_id: records::new_run_id(experiment.name(), clock.wall(), seed),
        seed,
        cancel: cancel.clone(),
    };
    run_with(experiment, run, clock, bench).await
}

/// Runs one experiment as run `run` through the engine with the parts `bench` makes for it, then
/// [`Bench::finished`].
async fn run_with<K: ClockPort, B: Bench>(
    experiment: &Experiment,
    run: RunConfig,
    clock: &K,
    bench: &mut B,
) -> Result<RunReport, LoopError<B::Error>> {
    let mut parts = bench.parts(experiment, &run).map_err(LoopError::Bench)?;
    let result = engine::run(
        experiment,
        &run,
        Ports {
            probe: &mut parts.probe,
            applier: &mut parts.applier,
            judge: &mut parts.judge,
            clock,
            coach: bench.coach(),
            observer: &mut parts.observer,
        },
    )
    .await;
    bench
        .finished(experiment, parts, result.as_ref())
        .map_err(LoopError::Bench)?;
    result.map_err(LoopError::Engine)
}
