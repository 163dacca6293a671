//! Live progress of a running block, for the CLI's progress line and the dashboard's status.

use serde::{Deserialize, Serialize};

/// A snapshot of a running block, sent about twice a second and once at its end.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Whether the block is still in its (unrecorded) warm-up.
    pub warming_up: bool,
    /// Seconds since the block started, warm-up included.
    pub elapsed_s: f64,
    /// Outcomes recorded so far (after the warm-up).
    pub samples: u64,
    /// Recorded outcomes that are errors.
    pub errors: u64,
    /// Requests that ended in the last second, warm-up included: the rate the target sees now.
    pub current_rate_per_s: f64,
    /// The median latency of the ok responses recorded so far, in µs.
    pub p50_us: Option<u64>,
}

/// Receives [`Progress`] snapshots while a block runs. Called from the future of
/// [`Probe::run_block`](crate::Probe::run_block): keep it quick (store or forward; no blocking
/// I/O). A sink that is `Sync` keeps that future `Send`.
pub trait ProgressSink {
    /// A new snapshot.
    fn progress(&self, progress: &Progress);
}

/// Ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn progress(&self, _progress: &Progress) {}
}

/// The latest snapshot, for any number of readers (`watch::Receiver::borrow`).
impl ProgressSink for tokio::sync::watch::Sender<Progress> {
    fn progress(&self, progress: &Progress) {
        self.send_replace(progress.clone());
    }
}

/// A closure, e.g. one that updates a progress bar.
impl<F: Fn(&Progress)> ProgressSink for F {
    fn progress(&self, progress: &Progress) {
        self(progress);
    }
}
