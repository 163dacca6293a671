//! Reports the coach could not take, kept in the state dir (`coach-queue.json`) and sent with the
//! next run: at most [`MAX_QUEUED`], the oldest dropped first, the drops counted.
//!
//! The file is replaced atomically (temp file, fsync, rename) and readable only by its owner. A
//! file that cannot be read is set aside as `coach-queue.json.bad` rather than blocking runs.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use smart_core::atomic::{AtomicWrite, Sync};
use smart_core::records::DecisionRecord;

/// The queue's file name in the state dir.
pub const QUEUE_FILE: &str = "coach-queue.json";
/// The most reports kept; one more drops the oldest.
pub const MAX_QUEUED: usize = 100;

/// The queue as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    /// Reports dropped so far because the queue was full (never reset).
    pub dropped: u64,
    /// Undelivered reports, oldest first.
    pub reports: Vec<DecisionRecord>,
}

/// The queue file of one state dir.
#[derive(Debug, Clone)]
pub(crate) struct Queue {
    path: PathBuf,
}

impl Queue {
    pub(crate) fn new(state_dir: &Path) -> Queue {
        Queue {
            path: state_dir.join(QUEUE_FILE),
        }
    }

    /// What is queued (empty when there is no file; an unreadable file is set aside).
    pub(crate) fn load(&self) -> Result<Stored, String> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Stored::default()),
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
        };
        match serde_json::from_slice(&bytes) {
            Ok(stored) => Ok(stored),
            Err(e) => {
                let bad = self.path.with_extension("json.bad");
                let _ = fs::rename(&self.path, &bad);
                Err(format!(
                    "{} was not a valid queue ({e}); it was moved to {}",
                    self.path.display(),
                    bad.display()
                ))
            }
        }
    }

    /// Adds `report` at the end, dropping the oldest beyond [`MAX_QUEUED`]; returns how many
    /// were dropped now.
    pub(crate) fn push(&self, report: &DecisionRecord) -> Result<u64, String> {
        let mut stored = self.load().unwrap_or_default();
        stored.reports.push(report.clone());
        let excess = stored.reports.len().saturating_sub(MAX_QUEUED);
        stored.reports.drain(..excess);
        stored.dropped += excess as u64;
        self.save(&stored)?;
        Ok(excess as u64)
    }

    /// Removes the oldest report (it was delivered).
    pub(crate) fn pop_front(&self) -> Result<(), String> {
        let mut stored = self.load().unwrap_or_default();
        if !stored.reports.is_empty() {
            stored.reports.remove(0);
            self.save(&stored)?;
        }
        Ok(())
    }

    /// Replaces the file atomically, owner-only.
    fn save(&self, stored: &Stored) -> Result<(), String> {
        let fail = |e: std::io::Error| format!("cannot write {}: {e}", self.path.display());
        let text = serde_json::to_vec(stored).map_err(|e| fail(std::io::Error::other(e)))?;
        AtomicWrite::new(&self.path)
            .temp(self.path.with_extension("json.tmp"))
            .create_dir()
            .create_mode(0o600)
            .sync(Sync::File)
            .write(&text)
            .map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> DecisionRecord {
        serde_json::from_value(serde_json::json!({
            "run_id": format!("r{n}"), "experiment": "e", "definition_hash": "h",
            "variant": "v", "decision": "revert", "metric": "p50", "cycles": 1,
            "p50_change_pct": null, "p50_change_bounds_pct": null,
            "error_rate_change_pp": null, "error_rate_change_bounds_pp": null,
            "p_value": null, "reasons": [], "started": "s", "finished": "f", "report": null
        }))
        .unwrap()
    }

    #[test]
    fn the_queue_is_bounded_oldest_dropped_first_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::new(dir.path());
        assert_eq!(queue.load().unwrap(), Stored::default());
        for n in 0..MAX_QUEUED + 3 {
            queue.push(&record(n)).unwrap();
        }
        let stored = queue.load().unwrap();
        assert_eq!(stored.dropped, 3);
        assert_eq!(stored.reports.len(), MAX_QUEUED);
        assert_eq!(stored.reports[0].run_id, "r3");
        queue.pop_front().unwrap();
        assert_eq!(queue.load().unwrap().reports[0].run_id, "r4");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(QUEUE_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }

    #[test]
    fn a_corrupt_queue_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(QUEUE_FILE), "{not json").unwrap();
        let queue = Queue::new(dir.path());
        assert!(queue.load().unwrap_err().contains("moved to"));
        assert!(dir.path().join("coach-queue.json.bad").exists());
        queue.push(&record(1)).unwrap();
        assert_eq!(queue.load().unwrap().reports.len(), 1);
    }
}
