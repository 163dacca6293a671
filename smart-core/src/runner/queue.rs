//! The queue: which experiments of a directory run now. Every experiment without a decision for
//! its current definition (an edited file runs again; an aborted run is retried), or the named
//! ones, decided or not.

use std::path::PathBuf;

use super::LoopConfig;
use super::window::RunWindow;
use crate::records::{self, DecisionKind, DecisionRecord, RecordsError};
use crate::validate::{experiment_files, validate_paths_by};
use crate::{Experiment, Invalid};

/// Which experiments of the directory a pass runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every valid experiment without a decision for its current definition.
    Pending,
    /// These experiments, in this order, decided or not (a run repeats them once, never again).
    Named(Vec<String>),
}

/// Why the queue could not be read. Nothing runs until it is fixed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The experiments directory cannot be listed.
    #[error(
        "cannot list the experiments dir {}: {error}; create it or set experiments_dir in smart.toml",
        dir.display()
    )]
    ListDir {
        /// The directory.
        dir: PathBuf,
        /// Why (quoted in the message, not a separate cause, so it is printed once).
        error: std::io::Error,
    },
    /// Some experiment files are invalid (each [`Invalid`] lists its problems).
    #[error(
        "{} experiment file{} in {} ha{} problems; fix them (see `smart validate`) before running",
        invalid.len(),
        if invalid.len() == 1 { "" } else { "s" },
        dir.display(),
        if invalid.len() == 1 { "s" } else { "ve" }
    )]
    Invalid {
        /// The directory.
        dir: PathBuf,
        /// Every invalid file with all of its problems.
        invalid: Vec<Invalid>,
    },
    /// A named experiment is not in the directory.
    #[error(
        "no experiment named `{name}` in {}; known: {}",
        dir.display(),
        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
    )]
    UnknownName {
        /// The name asked for.
        name: String,
        /// The directory.
        dir: PathBuf,
        /// The names the directory has.
        known: Vec<String>,
    },
    /// The run records (the decisions so far) cannot be read.
    #[error(transparent)]
    Records(#[from] RecordsError),
    /// Some experiments' time boxes are longer than the run window, so they could never start.
    #[error(
        "run_window {window} is open {} a day, less than the time box of {}; shorten their schedule.max_duration_s or widen run_window in smart.toml",
        crate::schedule::Human(window.length().as_secs_f64()),
        experiments.join(", ")
    )]
    LongerThanWindow {
        /// The window.
        window: RunWindow,
        /// Each experiment that does not fit, with its time box.
        experiments: Vec<String>,
    },
}

impl QueueError {
    /// Whether the user's input is at fault (an unlistable directory, an invalid file, an unknown
    /// name) rather than the state dir.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, QueueError::Records(_))
    }
}

/// The experiments to run now from `config.experiments_dir` (searches apart: see
/// [`super::Runner::searches`]); decisions are looked up in `config.state_dir`. Any invalid file
/// fails the whole queue.
pub fn queue(config: &LoopConfig) -> Result<Vec<Experiment>, QueueError> {
    read(config).map(|(run, _searches)| run)
}

/// The experiments to run now and, apart, the searches: named ones, or (for
/// [`Selection::Pending`]) those not over for their current definition. One read of the
/// directory gives both.
pub(super) fn read(config: &LoopConfig) -> Result<(Vec<Experiment>, Vec<Experiment>), QueueError> {
    let experiments_dir = config.experiments_dir.as_path();
    let state_dir = config.state_dir.as_path();
    let files = experiment_files(experiments_dir).map_err(|error| QueueError::ListDir {
        dir: experiments_dir.to_owned(),
        error,
    })?;
    let report = validate_paths_by(&files, &config.defaults, config.apply_by);
    if !report.invalid.is_empty() {
        return Err(QueueError::Invalid {
            dir: experiments_dir.to_owned(),
            invalid: report.invalid,
        });
    }
    match &config.selection {
        Selection::Named(names) => names
            .iter()
            .map(|name| {
                report
                    .experiments
                    .iter()
                    .find(|e| e.name() == name)
                    .cloned()
                    .map_or_else(
                        || {
                            Err(QueueError::UnknownName {
                                name: name.clone(),
                                dir: experiments_dir.to_owned(),
                                known: report
                                    .experiments
                                    .iter()
                                    .map(|e| e.name().to_owned())
                                    .collect(),
                            })
                        },
                        Ok,
                    )
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|named| {
                named
                    .into_iter()
                    .partition(|e| e.definition().search.is_none())
            }),
        Selection::Pending => {
            let history = records::history(state_dir)?;
            Ok(report
                .experiments
                .into_iter()
                .filter(|e| match e.definition().search {
                    None => decided_in(&history, e).is_none(),
                    Some(_) => !super::search_done(state_dir, e),
                })
                .partition(|e| e.definition().search.is_none()))
        }
    }
}

/// The run that decided `experiment`'s current definition, if one did (an aborted run did not).
/// `history` is every decision, oldest first.
pub fn decided_in<'h>(history: &'h [DecisionRecord], experiment: &Experiment) -> Option<&'h str> {
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
