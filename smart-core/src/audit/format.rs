//! The log's format: the file names, what a line holds ([`Line`], its [`Action`] and
//! [`Outcome`]), `audit.head`, the errors, and the reading and hashing that appending and
//! verifying both do.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first line of a chain: 64 zeros.
#[doc(hidden)] // public for sibling crates only, not part of the embedding API
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The name of the live log file in the state dir.
pub const LOG_FILE: &str = "audit.jsonl";

/// The name of the head file in the state dir.
#[doc(hidden)] // public for sibling crates only, not part of the embedding API
pub const HEAD_FILE: &str = "audit.head";

/// The name of the lock file appenders (exclusive) and [`verify`](super::verify) (shared) take.
pub const LOCK_FILE: &str = "audit.lock";

/// What was done, as it appears in the `action` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// The configuration as found was validated and health-checked before the first change.
    Baseline,
    /// The original bytes (or absence) of a file, or a command's value, were saved.
    Backup,
    /// A file was written (or removed) for an arm.
    Apply,
    /// A command applier's `set` ran.
    Command,
    /// The `validate` command ran.
    Validate,
    /// The `reload` command ran.
    Reload,
    /// The live check confirmed (or not) which config serves.
    LiveCheck,
    /// The health URL was polled.
    Health,
    /// The original config was put back.
    Revert,
    /// A restored file's checksum was compared with its backup's.
    Verify,
    /// An interrupted run was found and recovered.
    Recover,
    /// A run was closed with its variant left live.
    Keep,
    /// A file was found changed by someone else; smart stopped without touching it.
    Conflict,
    /// The audit log itself was repaired after a crash (a torn last line was cut off).
    AuditRepair,
    /// A coach was called (a result report or a request for advice), or could not be; `details`
    /// says which call, how it went and, on failure, its kind (never the token).
    Coach,
    /// The oldest rotated audit file was deleted (rotation keeps a fixed number); `details` has
    /// its `file` name, `first_seq`, `last_seq`, `lines` and `last_hash`, which vouch for the
    /// chain's new start.
    AuditDrop,
    /// A measurement block finished; `details` has its arm, block index, requests, errors and
    /// p50 (and the guardrail's reason when one stopped it: outcome `failed`).
    Block,
    /// A variant's final decision; `details` has the variant, the decision, the p50 change and
    /// the reasons.
    Decision,
    /// Run records were removed by retention; `details` has `runs` (the pruned run ids) and
    /// `reason`.
    Prune,
    /// Lines that could not be written (a full or read-only state disk during a restore, which
    /// went on regardless) are missing before this one; `details` has `audit_lines`,
    /// `journal_records`, `runs` and the `cause`.
    AuditGap,
}

/// Whether an action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It worked.
    Ok,
    /// It failed; `details` says why.
    Failed,
    /// It was not needed or not possible (e.g. no reload at boot); `details` says why.
    Skipped,
}

/// One action to record; [`AuditLog::append`](super::AuditLog::append) adds `seq` and `prev`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// When it happened.
    pub time: SystemTime,
    /// The run it belongs to.
    pub run_id: String,
    /// What was done.
    pub action: Action,
    /// How it went.
    pub outcome: Outcome,
    /// What exactly: paths, checksums, argv, exit codes, stderr. Never secrets.
    pub details: serde_json::Value,
}

/// One line of the log, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// 1-based position in the whole chain.
    pub seq: u64,
    /// RFC 3339 UTC time with milliseconds.
    pub time: String,
    /// The run it belongs to.
    pub run_id: String,
    /// What was done.
    pub action: Action,
    /// How it went.
    pub outcome: Outcome,
    /// What exactly.
    pub details: serde_json::Value,
    /// SHA-256 (hex) of the previous line, or [`GENESIS`].
    pub prev: String,
}

/// The contents of `audit.head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Head {
    pub(super) lines: u64,
    pub(super) bytes: u64,
    pub(super) last_hash: String,
    /// `seq` of the last line (equals `lines` until files are rotated).
    pub(super) last_seq: u64,
    /// The hash of the line being appended, written before the line: after a crash between the
    /// line and the head, exactly that one line may follow what the head counts. Any other
    /// line after the head was appended by someone else (or the head was rolled back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) pending: Option<String>,
}

/// An audit log problem: I/O, or evidence that the log was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Reading or writing a log file failed.
    #[error("audit log {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A line does not continue the chain: it, or a line before it, was edited or deleted.
    #[error(
        "audit log {}, line {line}: the hash chain is broken (a line was edited or deleted here or just before): expected prev {expected}, found {found}",
        path.display()
    )]
    BrokenChain {
        /// The file.
        path: PathBuf,
        /// 1-based line number in that file.
        line: u64,
        /// The hash of the line before.
        expected: String,
        /// The line's `prev`.
        found: String,
    },
    /// A line is not a valid record.
    #[error("audit log {}, line {line}: not a valid record ({reason}): it was edited or cut off", path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number in that file.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The chain starts mid-way (older files are gone) and no `audit_drop` line records deleting
    /// them: they were deleted by hand.
    #[error(
        "audit log {}: its first line continues the chain after seq {seq} (hash {hash}), but no audit_drop line records deleting the file that held it: older audit files were deleted by hand",
        path.display()
    )]
    MissingStart {
        /// The oldest file left.
        path: PathBuf,
        /// The `seq` of the missing line before it.
        seq: u64,
        /// The hash of the missing line before it.
        hash: String,
    },
    /// The log does not match `audit.head`: lines were cut off the end, or the head is stale.
    #[error("audit log {}: {reason}", path.display())]
    HeadMismatch {
        /// The log file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
}

impl AuditError {
    pub(super) fn io(path: &Path, source: io::Error) -> AuditError {
        AuditError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

pub(super) fn read_head(dir: &Path) -> Result<Option<Head>, AuditError> {
    let path = dir.join(HEAD_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| AuditError::HeadMismatch {
                    path,
                    reason: format!("audit.head is not valid ({e}): it was edited"),
                })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuditError::io(&path, e)),
    }
}

/// The name a full live file gets when it is rotated: its first line's `seq`.
pub(super) fn rotated_name(head: &Head) -> String {
    format!("audit-{:012}.jsonl", head.last_seq + 1 - head.lines)
}

/// Whether the file `head` counts was renamed by a rotation that the head does not show yet:
/// the rotated file exists with exactly the head's size and last hash.
pub(super) fn rotation_was_interrupted(dir: &Path, head: &Head) -> Result<bool, AuditError> {
    if head.lines == 0 || head.lines > head.last_seq {
        return Ok(false);
    }
    let path = dir.join(rotated_name(head));
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(AuditError::io(&path, e)),
    };
    Ok(bytes.len() as u64 == head.bytes && span(&path, &bytes)?.last_hash == head.last_hash)
}

/// The `seq` range, line count and last hash of one file's lines.
pub(super) struct Span {
    pub(super) first_seq: u64,
    pub(super) last_seq: u64,
    pub(super) lines: u64,
    pub(super) last_hash: String,
}

pub(super) fn span(path: &Path, bytes: &[u8]) -> Result<Span, AuditError> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let raws: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    let (Some(first), Some(last)) = (raws.first(), raws.last()) else {
        unreachable!("split yields at least one item");
    };
    Ok(Span {
        first_seq: parse_line(path, 1, first)?.seq,
        last_seq: parse_line(path, raws.len() as u64, last)?.seq,
        lines: raws.len() as u64,
        last_hash: sha256_hex(last),
    })
}

pub(super) fn parse_line(path: &Path, lineno: u64, raw: &[u8]) -> Result<Line, AuditError> {
    serde_json::from_slice(raw).map_err(|e| AuditError::BadLine {
        path: path.to_owned(),
        line: lineno,
        reason: e.to_string(),
    })
}

/// SHA-256 of `bytes` in lowercase hex.
#[doc(hidden)] // public for sibling crates only, not part of the embedding API
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
#[doc(hidden)] // public for sibling crates only, not part of the embedding API
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}
