//! What could not be written to the state dir while the original configuration was being put
//! back (a full, read-only or forbidden state disk), and how that loss is recorded later.
//!
//! A restore never stops because its journal or audit line cannot be written: the original
//! configuration matters more than the record of putting it back. Each lost write is counted
//! here instead; the caller (only `smart-cli` prints) shows [`StateGap`] as a warning, and the
//! next audit line that can be written is preceded by one `audit_gap` line saying what is
//! missing. Across processes the pending gap is kept in `audit.gap` in the state dir: a file of
//! [`RESERVE`] bytes set aside (blank) when a run starts, so that it can be overwritten in place
//! on a full disk, where no new block can be had. On a read-only disk even that fails, and the
//! warning on stderr (which systemd sends to journald) is the only record.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::json;
use smart_core::audit::{Action, AuditLog, Entry, Outcome};

/// The file a pending gap is kept in between processes.
pub const GAP_FILE: &str = "audit.gap";

/// The bytes set aside for [`GAP_FILE`]: a gap's JSON always fits (its run list is capped).
const RESERVE: usize = 4096;

/// At most this many run ids are listed in a gap.
const MAX_RUNS: usize = 32;

/// State-dir writes lost while restoring the original configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateGap {
    /// Audit lines that could not be written.
    pub audit_lines: u64,
    /// Journal records that could not be written.
    pub journal_records: u64,
    /// The runs they belong to.
    pub runs: Vec<String>,
    /// The first failure, with its cause (ENOSPC, EROFS, EACCES) and fix.
    pub cause: String,
}

impl StateGap {
    fn is_empty(&self) -> bool {
        self.audit_lines == 0 && self.journal_records == 0
    }

    fn add(&mut self, other: &StateGap) {
        self.audit_lines += other.audit_lines;
        self.journal_records += other.journal_records;
        for run in &other.runs {
            if !self.runs.contains(run) && self.runs.len() < MAX_RUNS {
                self.runs.push(run.clone());
            }
        }
        if self.cause.is_empty() {
            self.cause.clone_from(&other.cause);
        }
    }
}

impl fmt::Display for StateGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the state dir could not be written while the original configuration was restored \
             ({}): {} audit line{} and {} journal record{} of run {} were lost, but the restore \
             went on and finished; once the state dir is writable again the next audit line is \
             preceded by an audit_gap line recording this, and `smart recover` closes the run if \
             its journal stayed open",
            self.cause,
            self.audit_lines,
            if self.audit_lines == 1 { "" } else { "s" },
            self.journal_records,
            if self.journal_records == 1 { "" } else { "s" },
            self.runs.join(", "),
        )
    }
}

/// Which kind of state write was lost.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lost {
    Audit,
    Journal,
}

/// The gaps of one applier: everything lost (for the warning) and what no `audit_gap` line
/// records yet.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gaps {
    inner: Arc<Mutex<(StateGap, StateGap)>>,
}

impl Gaps {
    /// Counts one lost write of `run_id`, caused by `cause`, and tries to keep the pending gap
    /// in `state_dir` for a later process.
    pub(crate) fn note(&self, state_dir: &Path, lost: Lost, run_id: &str, cause: &str) {
        let one = StateGap {
            audit_lines: u64::from(matches!(lost, Lost::Audit)),
            journal_records: u64::from(matches!(lost, Lost::Journal)),
            runs: vec![run_id.to_owned()],
            cause: cause.to_owned(),
        };
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        guard.0.add(&one);
        guard.1.add(&one);
        let mut pending = guard.1.clone();
        pending.cause = pending.cause.chars().take(1024).collect();
        let _ = overwrite(
            &gap_file(state_dir),
            &serde_json::to_vec(&pending).expect("a gap always serializes"),
        );
    }

    /// Sets [`GAP_FILE`] aside (blank) while the disk has room, so that a gap can be recorded
    /// in it later even when the disk is full. Best effort.
    pub(crate) fn reserve(state_dir: &Path) {
        let path = gap_file(state_dir);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() >= RESERVE as u64) {
            return;
        }
        let _ = std::fs::write(&path, vec![b' '; RESERVE]);
    }

    /// Everything lost so far, if anything was.
    pub(crate) fn total(&self) -> Option<StateGap> {
        let guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        (!guard.0.is_empty()).then(|| guard.0.clone())
    }

    /// Before an audit line: if writes were lost (by this process, or by an earlier one that
    /// left `audit.gap`), appends the `audit_gap` line that records them. Best effort: when it
    /// cannot be written the gap stays pending.
    pub(crate) fn flush(&self, log: &AuditLog, state_dir: &Path) {
        let file = gap_file(state_dir);
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut pending = guard.1.clone();
        let from_file = std::fs::read(&file)
            .ok()
            .filter(|bytes| bytes.iter().any(|b| !b.is_ascii_whitespace()))
            .and_then(|bytes| serde_json::from_slice::<StateGap>(bytes.trim_ascii()).ok());
        // The file holds this process's own gap (already counted) or an earlier process's.
        if let Some(earlier) = &from_file
            && !earlier.runs.iter().all(|run| pending.runs.contains(run))
        {
            pending.add(earlier);
        }
        if pending.is_empty() {
            return;
        }
        let entry = Entry {
            time: SystemTime::now(),
            run_id: pending.runs.first().cloned().unwrap_or_default(),
            action: Action::AuditGap,
            outcome: Outcome::Failed,
            details: json!({
                "audit_lines": pending.audit_lines,
                "journal_records": pending.journal_records,
                "runs": pending.runs,
                "cause": pending.cause,
            }),
        };
        if log.append(&entry).is_ok() {
            guard.1 = StateGap::default();
            // Blank again, still reserved.
            let _ = overwrite(&file, b"");
        }
    }
}

/// Writes `bytes` over the start of the existing file at `path`, padded with blanks to its
/// length, without truncating it: no block is freed or needed (a full disk still takes it).
fn overwrite(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    let len = file.metadata()?.len() as usize;
    let mut padded = bytes.to_vec();
    if padded.len() < len {
        padded.resize(len, b' ');
    }
    file.write_all(&padded)?;
    file.sync_data()
}

fn gap_file(state_dir: &Path) -> PathBuf {
    state_dir.join(GAP_FILE)
}
