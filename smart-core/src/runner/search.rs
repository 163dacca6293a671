//! Searches in the run loop: a `search` experiment is run as a series of one-variant experiments,
//! one per candidate, each through the same engine, ABBA design and judge as any experiment. A
//! [`Strategy`] (the `smart-search` crate's) says which candidate comes next and takes each
//! verdict; this module runs the candidates, keeps what the engine kept live, and stores the
//! search in the state dir so that it survives a crash and resumes where it stood.
//!
//! What is live between candidates is the last configuration the search kept (the original
//! while nothing is kept): a kept candidate is an ordinary kept run, so `smart recover` never
//! undoes it, and an interrupted candidate is an ordinary interrupted run, which it restores.
//! The state file (`STATE_DIR/searches/NAME.json`, replaced atomically and durably) holds the
//! strategy's state, the kept candidate runs still in effect (newest last) and the run under way:
//!
//! - before a candidate run starts, its run id is stored as `running`; after it, the verdict and,
//!   for a keep, the run id on the kept stack. A crash between the two leaves `running` set: on
//!   resume that run is undone if its keep made it (else recovery already restored it), and the
//!   strategy hands out the same candidate again, judged from scratch.
//! - a test against the configuration as found (the final confirmation) first undoes the kept
//!   runs, newest first, each one popped from the stack as soon as it is undone.
//! - at the end the strategy's result is made live: already live, or the kept runs undone and its
//!   point applied (a fallback after a failed confirmation), as a kept run of its own.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Bench, LoopError, run_with};
use crate::atomic::{AtomicWrite, Sync};
use crate::engine::{ApplierPort, CancelToken, ClockPort, RunConfig, RunEnd};
use crate::experiment::ExperimentSpec;
use crate::records::{self, DecisionRecord};
use crate::validate::ApplyBy;
use crate::{BASELINE, Experiment};

/// The dir under the state dir that holds one state file per search.
pub const SEARCHES_DIR: &str = "searches";

/// The state file of search `name` under `state_dir`.
pub fn state_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(SEARCHES_DIR).join(format!("{name}.json"))
}

/// What a strategy says next.
#[derive(Debug)]
pub enum SearchStep {
    /// Judge candidate `id`: `experiment` has one variant (the candidate) and its decision
    /// section set to the candidate's confidence and margin.
    Test {
        /// The candidate's number, handed back to [`Strategy::record`].
        id: u32,
        /// The one-variant experiment to run.
        experiment: Experiment,
        /// Its baseline arm is the configuration as found: the search's kept runs must be undone
        /// first (the final confirmation); otherwise the baseline is what is live.
        from_original: bool,
    },
    /// The search is over.
    Done {
        /// The one-variant experiment whose variant is the result, `None` for the configuration
        /// as found.
        keep: Option<Experiment>,
        /// The result is what is live already (the last kept candidate, or the original with
        /// nothing kept), so nothing is to change.
        live: bool,
    },
}

/// A search strategy the loop drives: pure decisions over a serde state.
pub trait Strategy {
    /// Its whole state, stored after every step.
    type State: Serialize + DeserializeOwned;

    /// A new search of `experiment` (which has a `search` section); an error says why it cannot
    /// run, in words.
    fn start(&self, experiment: &Experiment) -> Result<Self::State, String>;

    /// What to do next. `apply_by` is how the loop's experiments were validated (each candidate
    /// experiment is validated the same way).
    fn next(
        &self,
        experiment: &Experiment,
        state: &mut Self::State,
        apply_by: ApplyBy,
    ) -> Result<SearchStep, String>;

    /// Takes the verdict on candidate `id`: its run's decision (`None`: the run ended before the
    /// judge concluded, e.g. the time box; it counts as inconclusive) and the seconds it took.
    fn record(
        &self,
        experiment: &Experiment,
        state: &mut Self::State,
        id: u32,
        decision: Option<&DecisionRecord>,
        seconds: f64,
    ) -> Result<(), String>;
}

/// A bench that can also run searches: it undoes the keep of one run.
#[expect(
    async_fn_in_trait,
    reason = "the loop is driven on one thread; implementations need not be Send"
)]
pub trait SearchBench: Bench {
    /// Restores the configuration from before run `run_id` of `experiment` if that run is still
    /// in effect (kept or interrupted); does nothing for a run that ended on its original.
    async fn undo_keep(&mut self, experiment: &str, run_id: &str) -> Result<(), Self::Error>;

    /// A search's round is over (`outcome` says how); does nothing by default.
    fn search_finished(&mut self, experiment: &Experiment, outcome: &SearchOutcome) {
        let _ = (experiment, outcome);
    }
}

/// How a search's round in the loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchOutcome {
    /// The search is over: `kept` is the result's variant params as `name=value` text, `None`
    /// for the configuration as found.
    Done {
        /// The result, in words.
        kept: Option<String>,
        /// Candidates judged over all rounds.
        candidates: usize,
    },
    /// The stop cut it short; the next run resumes it.
    Stopped,
    /// A candidate run failed (unsound baseline, a failed switch): the search waits for the next
    /// run, which judges that candidate again.
    Failed(String),
}

/// The stored form of a search: the strategy's state and what is live.
#[derive(Debug, Serialize, Deserialize)]
struct Stored<S> {
    /// The search experiment's definition hash: an edited search starts afresh.
    definition_hash: String,
    /// The search experiment's effective definition, so readers (history, the dashboard) can
    /// show the search without the experiments dir.
    definition: ExperimentSpec,
    /// The run under way, if any (set before it starts, cleared after its verdict is stored).
    running: Option<String>,
    /// The kept runs of this search still in effect, oldest first.
    kept_runs: Vec<String>,
    /// The search is over and its result is live.
    done: bool,
    /// The strategy's state.
    state: S,
}

/// The part of a state file every reader understands.
#[derive(Debug, Deserialize)]
struct Head {
    definition_hash: String,
    done: bool,
}

/// A search as stored in the state dir, for readers.
#[derive(Debug, Clone, Deserialize)]
pub struct StoredSearch {
    /// The search experiment's effective definition when the search ran.
    pub definition: ExperimentSpec,
    /// The search is over and its result is live.
    pub done: bool,
    /// The strategy's state (for `smart-search`, its `Search`).
    pub state: serde_json::Value,
}

/// Every search stored under `state_dir`, by file name; unreadable files are skipped (a reader
/// shows what it can).
pub fn stored_searches(state_dir: &Path) -> Vec<StoredSearch> {
    let Ok(entries) = std::fs::read_dir(state_dir.join(SEARCHES_DIR)) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok())
        .collect()
}

/// Whether the search `experiment` is over for its current definition (its result is live).
pub fn search_done(state_dir: &Path, experiment: &Experiment) -> bool {
    std::fs::read(state_path(state_dir, experiment.name()))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Head>(&bytes).ok())
        .is_some_and(|h| h.done && h.definition_hash == experiment.definition_hash())
}

/// Why a search's state cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SearchStateError {
    /// The state file cannot be read or written.
    #[error(
        "the search state {} cannot be {what}: {error}; check the state dir's permissions and space",
        path.display()
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// `read` or `written`.
        what: &'static str,
        /// Why.
        error: std::io::Error,
    },
    /// The state file is not a search state of this version.
    #[error(
        "the search state {} is unreadable: {error}; move it away to start the search afresh",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        error: serde_json::Error,
    },
    /// The strategy refused.
    #[error("{experiment}: {message}")]
    Strategy {
        /// The search experiment.
        experiment: String,
        /// Why.
        message: String,
    },
}

/// What a search run needs from the loop's settings.
#[derive(Debug, Clone, Copy)]
pub struct SearchConfig<'c> {
    /// Where its state file and the run records are.
    pub state_dir: &'c Path,
    /// How its candidate experiments are validated (as the search experiment was).
    pub apply_by: ApplyBy,
    /// The seed of the first candidate's ABBA design (the next ones add their number); `None`
    /// draws a fresh one per candidate.
    pub seed: Option<u64>,
}

/// Runs search `experiment` from where its state in `config.state_dir` stands until it is over,
/// a candidate's run fails, or `cancel` is tripped; its outcome and the runs it made. This is
/// what [`super::Runner::run_searching`] does for each search of its queue, for a front end that
/// runs one search itself (`smart demo`).
pub async fn run_search<K: ClockPort, B: SearchBench, S: Strategy>(
    experiment: &Experiment,
    strategy: &S,
    config: &SearchConfig<'_>,
    cancel: &CancelToken,
    clock: &K,
    bench: &mut B,
) -> Result<(SearchOutcome, usize), LoopError<B::Error>> {
    let path = state_path(config.state_dir, experiment.name());
    let refused = |message: String| {
        LoopError::Search(SearchStateError::Strategy {
            experiment: experiment.name().to_owned(),
            message,
        })
    };
    let mut stored: Stored<S::State> = match load(&path).map_err(LoopError::Search)? {
        Some(s) if s.definition_hash == experiment.definition_hash() => s,
        _ => Stored {
            definition_hash: experiment.definition_hash().to_owned(),
            definition: experiment.definition().clone(),
            running: None,
            kept_runs: Vec::new(),
            done: false,
            state: strategy.start(experiment).map_err(refused)?,
        },
    };
    let name = experiment.name();
    let mut runs = 0;
    if stored.done {
        // Over already (a named search run again): say what it kept, change nothing.
        let kept = match strategy
            .next(experiment, &mut stored.state, config.apply_by)
            .map_err(refused)?
        {
            SearchStep::Done { keep, .. } => keep.as_ref().and_then(kept_label),
            SearchStep::Test { .. } => None,
        };
        return Ok((
            SearchOutcome::Done {
                kept,
                candidates: candidates_in(&stored),
            },
            0,
        ));
    }
    // A run cut short by a crash: recovery restored it, unless its keep was already made.
    if let Some(run_id) = stored.running.clone() {
        bench
            .undo_keep(name, &run_id)
            .await
            .map_err(LoopError::Bench)?;
        stored.running = None;
        save(&path, &stored).map_err(LoopError::Search)?;
    }
    loop {
        if cancel.is_cancelled() {
            return Ok((SearchOutcome::Stopped, runs));
        }
        match strategy
            .next(experiment, &mut stored.state, config.apply_by)
            .map_err(refused)?
        {
            SearchStep::Test {
                id,
                experiment: candidate,
                from_original,
            } => {
                if from_original {
                    undo_all(name, &path, &mut stored, bench).await?;
                }
                let run = new_run(&candidate, config.seed, id, cancel, clock);
                stored.running = Some(run.run_id.clone());
                save(&path, &stored).map_err(LoopError::Search)?;
                let started = clock.monotonic();
                let report = run_with(&candidate, run, clock, bench).await?;
                let seconds = (clock.monotonic() - started).as_secs_f64();
                runs += 1;
                let decision = report.decisions.first();
                match report.end {
                    RunEnd::Cancelled => return Ok((SearchOutcome::Stopped, runs)),
                    RunEnd::Completed | RunEnd::TimedOut => {}
                    RunEnd::BaselineUnsound | RunEnd::Failed | RunEnd::Recovered => {
                        stored.running = None;
                        save(&path, &stored).map_err(LoopError::Search)?;
                        let why = report
                            .end_reason
                            .clone()
                            .unwrap_or_else(|| report.end.as_str().to_owned());
                        return Ok((SearchOutcome::Failed(why), runs));
                    }
                }
                let judged = decision.filter(|_| report.end == RunEnd::Completed);
                strategy
                    .record(experiment, &mut stored.state, id, judged, seconds)
                    .map_err(refused)?;
                if judged.is_some_and(|d| d.decision.is_kept()) {
                    stored.kept_runs.push(report.run_id.clone());
                }
                stored.running = None;
                save(&path, &stored).map_err(LoopError::Search)?;
            }
            SearchStep::Done { keep, live } => {
                if !live {
                    undo_all(name, &path, &mut stored, bench).await?;
                    if let Some(keep) = &keep {
                        let run = new_run(keep, config.seed, 0, cancel, clock);
                        stored.running = Some(run.run_id.clone());
                        save(&path, &stored).map_err(LoopError::Search)?;
                        make_live(keep, &run, bench).await?;
                        stored.kept_runs.push(run.run_id);
                        stored.running = None;
                    }
                }
                stored.done = true;
                save(&path, &stored).map_err(LoopError::Search)?;
                let kept = keep.as_ref().and_then(kept_label);
                return Ok((
                    SearchOutcome::Done {
                        kept,
                        candidates: candidates_in(&stored),
                    },
                    runs,
                ));
            }
        }
    }
}

/// A one-variant experiment's variant params as `name=value, ...`.
fn kept_label(keep: &Experiment) -> Option<String> {
    keep.variants().first().map(|v| {
        v.params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// Candidates judged so far, from the strategy's state as stored (its `trials`), if it has them.
fn candidates_in<S: Serialize>(stored: &Stored<S>) -> usize {
    serde_json::to_value(&stored.state)
        .ok()
        .and_then(|v| v.get("trials").and_then(|t| t.as_array()).map(Vec::len))
        .unwrap_or(0)
}

/// A run of candidate `id` (0: the final apply): its own seed (unless given) and run id.
fn new_run<K: ClockPort>(
    experiment: &Experiment,
    seed: Option<u64>,
    id: u32,
    cancel: &CancelToken,
    clock: &K,
) -> RunConfig {
    let seed = seed.map_or_else(crate::engine::fresh_seed, |s| s.wrapping_add(u64::from(id)));
    RunConfig {
        run_id: records::new_run_id(experiment.name(), clock.wall(), seed),
        seed,
        cancel: cancel.clone(),
    }
}

/// Undoes every kept run of the search, newest first, storing the stack after each.
async fn undo_all<B: SearchBench, S: Serialize>(
    name: &str,
    path: &Path,
    stored: &mut Stored<S>,
    bench: &mut B,
) -> Result<(), LoopError<B::Error>> {
    while let Some(run_id) = stored.kept_runs.last().cloned() {
        bench
            .undo_keep(name, &run_id)
            .await
            .map_err(LoopError::Bench)?;
        stored.kept_runs.pop();
        save(path, stored).map_err(LoopError::Search)?;
    }
    Ok(())
}

/// Makes the variant of one-variant experiment `keep` live without a test (the search proved it
/// earlier against the configuration as found), through the bench's applier, as a kept run.
async fn make_live<B: SearchBench>(
    keep: &Experiment,
    run: &RunConfig,
    bench: &mut B,
) -> Result<(), LoopError<B::Error>> {
    let variant = keep
        .variants()
        .first()
        .map(|v| v.name.clone())
        .unwrap_or_else(|| BASELINE.to_owned());
    let mut parts = bench.parts(keep, run).map_err(LoopError::Bench)?;
    let applier = &mut parts.applier;
    let applied = match applier.check_baseline().await {
        Ok(()) => match applier.switch(&variant).await {
            Ok(()) => applier.keep(&variant).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    applied.map_err(|failure| {
        LoopError::Search(SearchStateError::Strategy {
            experiment: keep.name().to_owned(),
            message: format!(
                "the search's result {variant} could not be made live ({}); the configuration \
                 as found is back, run `smart run` again to retry",
                failure.message
            ),
        })
    })
}

fn load<S: DeserializeOwned>(path: &Path) -> Result<Option<Stored<S>>, SearchStateError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|error| SearchStateError::Corrupt {
                    path: path.to_owned(),
                    error,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(SearchStateError::Io {
            path: path.to_owned(),
            what: "read",
            error,
        }),
    }
}

fn save<S: Serialize>(path: &Path, stored: &Stored<S>) -> Result<(), SearchStateError> {
    let bytes = serde_json::to_vec_pretty(stored).expect("a search state always serializes");
    AtomicWrite::new(path)
        .create_dir()
        .sync(Sync::FileAndDir)
        .write(&bytes)
        .map_err(|error| SearchStateError::Io {
            path: path.to_owned(),
            what: "written",
            error,
        })
}
