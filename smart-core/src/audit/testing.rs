//! Fixtures the audit log's tests share: entries, a log with lines, a rolled-back head.

use std::fs;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::format::Head;
use super::{Action, AuditLog, Entry, HEAD_FILE, LOG_FILE, Outcome, sha256_hex};
use crate::logs::LogRotation;

pub(super) fn entry(n: u64) -> Entry {
    Entry {
        time: UNIX_EPOCH + Duration::from_secs(1_700_000_000 + n),
        run_id: "r1".to_owned(),
        action: Action::Apply,
        outcome: Outcome::Ok,
        details: serde_json::json!({"n": n, "text": "line\nbreak \"quoted\""}),
    }
}

pub(super) fn log_with(lines: u64) -> (tempfile::TempDir, AuditLog) {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::new(dir.path());
    for n in 0..lines {
        log.append(&entry(n)).unwrap();
    }
    (dir, log)
}

/// The head as it was before the last append, optionally announcing that append (what a
/// crash between the line's fsync and the head's replacement leaves).
pub(super) fn roll_head_back(dir: &Path, before: &[u8], announce: bool) {
    let mut head: Head = serde_json::from_slice(before).unwrap();
    if announce {
        let text = fs::read_to_string(dir.join(LOG_FILE)).unwrap();
        head.pending = Some(sha256_hex(text.lines().last().unwrap().as_bytes()));
    }
    fs::write(dir.join(HEAD_FILE), serde_json::to_vec(&head).unwrap()).unwrap();
}

pub(super) fn rotating(dir: &Path, max_bytes: u64, keep: u32) -> AuditLog {
    AuditLog::with_rotation(dir, LogRotation::new(max_bytes, keep))
}
