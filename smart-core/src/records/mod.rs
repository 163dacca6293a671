//! Run records under the state dir: what `smart status`, `smart history`, `smart show` and the
//! dashboard read.
//!
//! ```text
//! <state_dir>/
//!   status.json               what runs now (atomically replaced, at least every 2 s in a run)
//!   metrics.csv               one row per block of every run (append-only, header once)
//!   runs/<run-id>/
//!     run.json                the plan (seed, variants, …) and, once over, the run's report
//!     experiment.json         the experiment's effective definition as run
//!     blocks.jsonl            one line per block: where it sits and what it measured
//!     samples.jsonl           one line per block: its latency samples (µs), compact
//!     decisions.json          the decision on every variant (what `history --json` prints)
//!   pruned.json               how many runs retention removed so far (see [`prune`])
//! ```
//!
//! [`Records`] writes them as an engine [`ObserverPort`](crate::engine::ObserverPort); the functions of
//! this module read them back. The formats are described in `docs/engine.md`; decisions and
//! status have JSON Schemas under `docs/`.

mod close;
mod decision;
mod distribution;
mod metrics;
mod prune;
mod read;
mod status;
mod writer;

use std::path::PathBuf;
use std::time::SystemTime;

pub use close::close_recovered;
pub use decision::{DecisionKind, DecisionRecord, history_schema};
pub use distribution::LatencyDistribution;
pub use metrics::METRICS_HEADER;
pub use prune::{
    Definitions, PRUNED_FILE, PRUNING_DIR, Protection, PrunePlan, PrunedCount, Retention,
    plan_prune, prune, pruned_count,
};
pub use read::{
    BlockFigures, BlockRecord, BlockSamples, RunFile, RunRecord, for_each_samples, history,
    list_runs, load_run, load_samples, read_status, run_schema,
};
pub use status::{RunState, Status, status_schema};
pub use writer::Records;

/// The directory of run records, under the state dir.
pub const RUNS_DIR: &str = "runs";
/// The per-block CSV, in the state dir.
pub const METRICS_FILE: &str = "metrics.csv";
/// The live status, in the state dir.
pub const STATUS_FILE: &str = "status.json";
/// A run's plan and report, in its directory.
pub const RUN_FILE: &str = "run.json";
/// The experiment's definition as run, in the run's directory.
pub const EXPERIMENT_FILE: &str = "experiment.json";
/// Per-block summaries, in the run's directory.
pub const BLOCKS_FILE: &str = "blocks.jsonl";
/// Per-block latency samples, in the run's directory.
pub const SAMPLES_FILE: &str = "samples.jsonl";
/// The decisions, in the run's directory.
pub const DECISIONS_FILE: &str = "decisions.json";

/// A new run id: the UTC start time, the experiment's name and four hex digits of the seed, e.g.
/// `20261126T193000Z-gzip-level-3f2a`; it sorts by time and names a directory safely.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
/// assert_eq!(smart_core::records::new_run_id("gzip", t, 0), "20260101T000000Z-gzip-e220");
/// ```
pub fn new_run_id(experiment: &str, started: SystemTime, seed: u64) -> String {
    let time: String = crate::audit::format_utc(started)
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    let tag = crate::mix::splitmix64(seed) >> 48;
    format!("{time}Z-{experiment}-{tag:04x}")
}

/// A run record could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct RecordsError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl RecordsError {
    pub(crate) fn new(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> RecordsError {
        RecordsError {
            action,
            path: path.into(),
            source: source.into(),
        }
    }

    /// The file or directory concerned.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}
