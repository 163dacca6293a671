//! The tamper-evident audit log: `audit.jsonl`, one JSON object per action, hash-chained, with a
//! fsynced `audit.head` so that an edited, deleted or cut-off line is detectable.
//!
//! # Format
//!
//! Every line of `audit.jsonl` is one compact JSON object:
//!
//! ```json
//! {"seq":7,"time":"2026-11-26T19:30:00.123Z","run_id":"r1","action":"reload","outcome":"ok",
//!  "details":{"argv":["nginx","-s","reload"],"exit_code":0},"prev":"3f1c…"}
//! ```
//!
//! (shown wrapped; on disk it is one line). `prev` is the SHA-256, in lowercase hex, of the
//! previous line's bytes without its newline; the very first line of the chain has
//! [`GENESIS`]. `seq` counts lines from 1 across the whole chain. `audit.head` holds
//! `{"lines":N,"bytes":B,"last_hash":H,"last_seq":S}` for `audit.jsonl` and is replaced
//! atomically (temp file, fsync, rename, fsync of the directory) before every append, announcing
//! the coming line's hash (`"pending":P`), and again after it, counting the line. A line cut off
//! the end, a file cut short, or a line appended behind the head's back (even with a correct
//! chain hash) no longer matches the head; only the one line a crash left between the two head
//! writes, whose hash the head announced, is adopted.
//!
//! [`verify`] also returns which runs have lines, and which runs `prune` lines (retention) and
//! `audit_drop` lines (rotation) account for, so a caller can report runs whose lines were
//! deleted ([`Summary::missing_runs`]); and the head (`last_seq`, `last_hash`) to compare with an
//! anchor kept elsewhere ([`line_hash`]). What the chain can and cannot prove is in
//! docs/security.md.
//!
//! # Rotation
//!
//! When an append leaves `audit.jsonl` at [`LogRotation::max_bytes`] or more, the file is moved
//! aside as `audit-<seq>.jsonl` (the zero-padded `seq` of its first line, e.g.
//! `audit-000000012345.jsonl`, so sorting names sorts by age) and a new, empty `audit.jsonl`
//! starts; the head then counts the new file but keeps the last hash and `seq`. Each file's first
//! line chains from the previous file's last hash, so [`verify`] walks the rotated files in name
//! order and then `audit.jsonl` as one chain.
//!
//! At most [`LogRotation::keep`] rotated files are kept. Deleting the oldest is itself logged
//! first: an `audit_drop` line records the file's name, `seq` range and last hash. The chain
//! then starts at a line whose `prev` is not [`GENESIS`], and [`verify`] accepts that start only
//! when an `audit_drop` line vouches for exactly that hash and `seq`: an old file deleted by
//! hand is still detected. A crash mid-rotation (file renamed, head not yet updated) is finished
//! by the next append.
//!
//! # Concurrency and crashes
//!
//! An append holds an exclusive lock on `audit.lock` (std's `File::lock`; a file of its own
//! because `audit.jsonl` is renamed by rotation), so appenders in several processes never
//! interleave, and neither do their rotations. A process killed between writing its line and replacing
//! the head leaves complete lines the head does not count: the next append checks that they
//! continue the chain and adopts them. A torn line (a crash mid-write, no final newline) is cut
//! off by the next append and the cut is recorded as an `audit_repair` line. A file shorter than
//! its head says is never repaired: that is tampering, and appends refuse until a human looks.
//!
//! Never put secrets in `details`: the log is meant to be read and shared.

mod format;
mod time;
mod verify;
mod write;

pub use format::{
    Action, AuditError, Entry, GENESIS, HEAD_FILE, LOCK_FILE, LOG_FILE, Line, Outcome, hex,
    sha256_hex,
};
pub use time::{format_utc, parse_utc};
pub use verify::{Summary, line_hash, verify};
pub use write::AuditLog;

#[cfg(doc)]
use crate::logs::LogRotation;

#[cfg(test)]
mod testing;

#[cfg(test)]
mod tests {
    use std::fs;

    use super::testing::{entry, log_with};
    use super::*;

    /// Every action with its name in the log.
    const ACTIONS: &[(Action, &str)] = &[
        (Action::Baseline, "baseline"),
        (Action::Backup, "backup"),
        (Action::Apply, "apply"),
        (Action::Command, "command"),
        (Action::Validate, "validate"),
        (Action::Reload, "reload"),
        (Action::LiveCheck, "live_check"),
        (Action::Health, "health"),
        (Action::Revert, "revert"),
        (Action::Verify, "verify"),
        (Action::Recover, "recover"),
        (Action::Keep, "keep"),
        (Action::Conflict, "conflict"),
        (Action::AuditRepair, "audit_repair"),
        (Action::Coach, "coach"),
        (Action::AuditDrop, "audit_drop"),
        (Action::Block, "block"),
        (Action::Decision, "decision"),
        (Action::Prune, "prune"),
        (Action::AuditGap, "audit_gap"),
    ];

    #[test]
    fn every_action_is_logged_by_name_and_verifies() {
        // No wildcard: a new action does not compile here until ACTIONS lists it.
        for (action, _) in ACTIONS {
            match action {
                Action::Baseline
                | Action::Backup
                | Action::Apply
                | Action::Command
                | Action::Validate
                | Action::Reload
                | Action::LiveCheck
                | Action::Health
                | Action::Revert
                | Action::Verify
                | Action::Recover
                | Action::Keep
                | Action::Conflict
                | Action::AuditRepair
                | Action::Coach
                | Action::AuditDrop
                | Action::Block
                | Action::Decision
                | Action::Prune
                | Action::AuditGap => {}
            }
        }
        let (dir, log) = log_with(0);
        for (n, (action, _)) in ACTIONS.iter().enumerate() {
            log.append(&Entry {
                action: *action,
                ..entry(n as u64)
            })
            .unwrap();
        }
        assert_eq!(verify(dir.path()).unwrap().lines, ACTIONS.len() as u64);
        let text = fs::read_to_string(log.path()).unwrap();
        for (raw, (action, name)) in text.lines().zip(ACTIONS) {
            let value: serde_json::Value = serde_json::from_str(raw).unwrap();
            assert_eq!(value["action"], *name, "{raw}");
            let line: Line = serde_json::from_str(raw).unwrap();
            assert_eq!(line.action, *action);
        }
    }
}
