//! smart's run records as Prometheus metrics.
//!
//! [`collect`] reads a state dir (runs and how they ended, decisions, reverts and failed
//! reverts, guardrail aborts, recoveries, the run under way and its phase, the last run's times,
//! the judged p50 change of each variant's last decision, the audit chain's state and head, the
//! run lock, the probe's last block) into metric families; [`render`] writes them in the
//! Prometheus text exposition format. [`Textfile`] is an engine observer that rewrites a
//! node_exporter textfile-collector file atomically after every event of a run, and
//! [`MetricsServer`] serves `/metrics` on a loopback address.
//!
//! Names follow Prometheus' conventions: a `smart_` prefix, base units (`_seconds`, `_ratio`),
//! `_total` counters, and labels drawn only from experiment, variant, decision, run end, phase
//! and outcome names (low cardinality; run ids and hashes never become labels).
//!
//! A separate crate, because it carries an exposition format and an HTTP server that neither
//! smart-core (no network code) nor the CLI (no logic) should hold.
//!
//! ```
//! use std::time::SystemTime;
//! let state = tempfile::tempdir()?;
//! let families = smart_metrics::collect(state.path(), Default::default(), SystemTime::now())?;
//! let text = smart_metrics::render(&families);
//! assert!(text.contains("# TYPE smart_runs_total counter"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod collect;
mod exposition;
mod serve;
mod textfile;

use std::path::{Path, PathBuf};

pub use collect::{Facts, collect};
pub use exposition::{CONTENT_TYPE, Family, Kind, Sample, render};
pub use serve::MetricsServer;
pub use textfile::{Textfile, write_atomically};

/// The metrics could not be read from the state dir or published.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct MetricsError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl MetricsError {
    fn io(action: &'static str, path: &Path, source: std::io::Error) -> MetricsError {
        MetricsError {
            action,
            path: path.to_owned(),
            source: Box::new(source),
        }
    }

    fn records(source: smart_core::records::RecordsError) -> MetricsError {
        MetricsError {
            action: "reading the run records at",
            path: source.path().to_owned(),
            source: Box::new(source),
        }
    }

    /// The file or directory concerned.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
