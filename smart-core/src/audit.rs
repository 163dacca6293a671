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

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic::{AtomicWrite, Sync};
use crate::logs::{self, LogRotation};

/// The `prev` of the first line of a chain: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The name of the live log file in the state dir.
pub const LOG_FILE: &str = "audit.jsonl";

/// The name of the head file in the state dir.
pub const HEAD_FILE: &str = "audit.head";

/// The name of the lock file appenders (exclusive) and [`verify`] (shared) take.
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

/// One action to record; [`AuditLog::append`] adds `seq` and `prev`.
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
struct Head {
    lines: u64,
    bytes: u64,
    last_hash: String,
    /// `seq` of the last line (equals `lines` until files are rotated).
    last_seq: u64,
    /// The hash of the line being appended, written before the line: after a crash between the
    /// line and the head, exactly that one line may follow what the head counts. Any other
    /// line after the head was appended by someone else (or the head was rolled back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<String>,
}

/// What [`verify`] found on an intact chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The files walked, oldest first.
    pub files: Vec<PathBuf>,
    /// Lines checked across all files.
    pub lines: u64,
    /// The hash of the last line (what the next line's `prev` will be).
    pub last_hash: String,
    /// The `seq` of the last line (0 for an empty log): with `last_hash`, the head to compare
    /// against an anchor kept elsewhere.
    pub last_seq: u64,
    /// Every run id that has at least one line.
    pub runs: BTreeSet<String>,
    /// Run ids a `prune` line says retention removed.
    pub pruned: BTreeSet<String>,
    /// Run ids whose lines were in rotated files that `audit_drop` lines record deleting.
    pub dropped: BTreeSet<String>,
    /// Whether an `audit_drop` line does not list the runs of the file it dropped (written by
    /// an older smart): runs without lines may then have been in that file.
    pub unlisted_drop: bool,
}

impl Summary {
    fn empty() -> Summary {
        Summary {
            files: Vec::new(),
            lines: 0,
            last_hash: GENESIS.to_owned(),
            last_seq: 0,
            runs: BTreeSet::new(),
            pruned: BTreeSet::new(),
            dropped: BTreeSet::new(),
            unlisted_drop: false,
        }
    }

    /// The runs among `known` (run ids with records under the state dir) that have no line in
    /// the chain and that neither retention (`prune`) nor rotation (`audit_drop`) accounts for:
    /// their lines were deleted.
    pub fn missing_runs<'a>(&self, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        known
            .into_iter()
            .filter(|id| {
                !self.runs.contains(*id)
                    && !self.pruned.contains(*id)
                    && !self.dropped.contains(*id)
            })
            .map(str::to_owned)
            .collect()
    }
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
    fn io(path: &Path, source: io::Error) -> AuditError {
        AuditError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The audit log in a state dir.
#[derive(Debug, Clone)]
pub struct AuditLog {
    dir: PathBuf,
    rotation: LogRotation,
}

impl AuditLog {
    /// The log in `state_dir` (files are created by the first append), rotated by the default
    /// [`LogRotation`].
    pub fn new(state_dir: &Path) -> AuditLog {
        AuditLog::with_rotation(state_dir, LogRotation::default())
    }

    /// The log in `state_dir`, rotated as `rotation` says (`[logs]` in `smart.toml`).
    pub fn with_rotation(state_dir: &Path, rotation: LogRotation) -> AuditLog {
        AuditLog {
            dir: state_dir.to_owned(),
            rotation,
        }
    }

    /// The path of the live log file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// Appends one entry, fsyncs it, then replaces the head, rotating the file when it is full;
    /// safe across processes.
    pub fn append(&self, entry: &Entry) -> Result<(), AuditError> {
        fs::create_dir_all(&self.dir).map_err(|e| AuditError::io(&self.dir, e))?;
        let lock_path = self.dir.join(LOCK_FILE);
        // Released when dropped, after the head is replaced and any rotation is done.
        let _lock = logs::lock_exclusive(&lock_path).map_err(|e| AuditError::io(&lock_path, e))?;
        let mut file = self.open_live()?;
        let mut head = self.settle(&mut file)?;
        let line = Line {
            seq: head.last_seq + 1,
            time: format_utc(entry.time),
            run_id: entry.run_id.clone(),
            action: entry.action,
            outcome: entry.outcome,
            details: entry.details.clone(),
            prev: head.last_hash.clone(),
        };
        self.write_line(&mut file, &mut head, &line)?;
        if head.bytes >= self.rotation.max_bytes() {
            drop(file);
            self.rotate(&mut head)?;
        }
        Ok(())
    }

    fn open_live(&self) -> Result<File, AuditError> {
        let path = self.path();
        OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| AuditError::io(&path, e))
    }

    /// Moves the full live file aside, starts an empty one, then deletes the oldest rotated
    /// files beyond `keep`. The caller holds the lock.
    fn rotate(&self, head: &mut Head) -> Result<(), AuditError> {
        let live = self.path();
        let rotated = self.dir.join(rotated_name(head));
        if rotated.exists() {
            return Err(AuditError::io(
                &rotated,
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a rotated audit file of this name already exists; move it aside",
                ),
            ));
        }
        fs::rename(&live, &rotated).map_err(|e| AuditError::io(&rotated, e))?;
        File::create(&live).map_err(|e| AuditError::io(&live, e))?;
        logs::sync_dir(&self.dir).map_err(|e| AuditError::io(&self.dir, e))?;
        *head = Head {
            lines: 0,
            bytes: 0,
            last_hash: head.last_hash.clone(),
            last_seq: head.last_seq,
            pending: None,
        };
        self.write_head(head)?;
        self.drop_oldest(head)
    }

    /// Deletes rotated files beyond `keep`, oldest first, each after an `audit_drop` line that
    /// records it. (A crash between the line and the deletion leaves the file, which the next
    /// rotation drops again: the drop is then recorded twice, never missing.)
    fn drop_oldest(&self, head: &mut Head) -> Result<(), AuditError> {
        let files = logs::rotated_files(&self.dir, "audit-", ".jsonl", LOG_FILE)
            .map_err(|e| AuditError::io(&self.dir, e))?;
        let excess = files.len().saturating_sub(self.rotation.keep() as usize);
        if excess == 0 {
            return Ok(());
        }
        let mut live = self.open_live()?;
        for old in &files[..excess] {
            let bytes = fs::read(old).map_err(|e| AuditError::io(old, e))?;
            let span = span(old, &bytes)?;
            let line = Line {
                seq: head.last_seq + 1,
                time: format_utc(SystemTime::now()),
                run_id: String::new(),
                action: Action::AuditDrop,
                outcome: Outcome::Ok,
                details: serde_json::json!({
                    "file": old.file_name().map(|n| n.to_string_lossy()),
                    "first_seq": span.first_seq,
                    "last_seq": span.last_seq,
                    "lines": span.lines,
                    "last_hash": span.last_hash,
                    "runs": run_ids(&bytes),
                    "reason": format!("log rotation keeps {} old files", self.rotation.keep()),
                }),
                prev: head.last_hash.clone(),
            };
            self.write_line(&mut live, head, &line)?;
            fs::remove_file(old).map_err(|e| AuditError::io(old, e))?;
        }
        logs::sync_dir(&self.dir).map_err(|e| AuditError::io(&self.dir, e))
    }

    fn write_line(&self, file: &mut File, head: &mut Head, line: &Line) -> Result<(), AuditError> {
        let path = self.path();
        let text = serde_json::to_string(line).expect("an audit line always serializes");
        let mut bytes = text.into_bytes();
        let hash = sha256_hex(&bytes);
        bytes.push(b'\n');
        head.pending = Some(hash.clone());
        self.write_head(head)?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_data())
            .map_err(|e| AuditError::io(&path, e))?;
        head.lines += 1;
        head.bytes += bytes.len() as u64;
        head.last_hash = hash;
        head.last_seq = line.seq;
        head.pending = None;
        self.write_head(head)
    }

    /// Reconciles the file with the head after a crash; returns the head to append after.
    fn settle(&self, file: &mut File) -> Result<Head, AuditError> {
        let path = self.path();
        let size = file.metadata().map_err(|e| AuditError::io(&path, e))?.len();
        let stored = self.read_head()?;
        let head_missing = stored.is_none();
        let mut head = match stored {
            Some(head) => head,
            // No head: a fresh log, or a crash right after the very first line.
            None => Head {
                lines: 0,
                bytes: 0,
                last_hash: GENESIS.to_owned(),
                last_seq: 0,
                pending: None,
            },
        };
        if size == 0 && head.bytes > 0 && rotation_was_interrupted(&self.dir, &head)? {
            // A crash after the full file was renamed and before the head was replaced.
            head = Head {
                lines: 0,
                bytes: 0,
                last_hash: head.last_hash,
                last_seq: head.last_seq,
                pending: None,
            };
            self.write_head(&head)?;
        }
        if size == head.bytes {
            return Ok(head);
        }
        if size < head.bytes {
            return Err(AuditError::HeadMismatch {
                path,
                reason: format!(
                    "the file has {size} bytes but audit.head records {} written: lines were cut off; run `smart audit verify`, keep the evidence, and move audit.jsonl and audit.head aside to start a new chain",
                    head.bytes
                ),
            });
        }
        let mut tail = Vec::new();
        file.seek(SeekFrom::Start(head.bytes))
            .and_then(|_| file.read_to_end(&mut tail))
            .map_err(|e| AuditError::io(&path, e))?;
        let complete = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut adopted = 0;
        for raw in tail[..complete]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let lineno = head.lines + 1;
            let line = parse_line(&path, lineno, raw)?;
            if !head_missing && (adopted > 0 || head.pending.as_deref() != Some(&sha256_hex(raw))) {
                return Err(AuditError::HeadMismatch {
                    path,
                    reason: format!(
                        "line {lineno} follows the {} lines audit.head records but is not the append it announced: a line was added behind smart's back (or audit.head was rolled back); run `smart audit verify`, keep the evidence, and move audit.jsonl and audit.head aside to start a new chain",
                        head.lines
                    ),
                });
            }
            if line.prev != head.last_hash {
                return Err(AuditError::BrokenChain {
                    path,
                    line: lineno,
                    expected: head.last_hash,
                    found: line.prev,
                });
            }
            head.lines += 1;
            head.bytes += raw.len() as u64 + 1;
            head.last_hash = sha256_hex(raw);
            head.last_seq = line.seq;
            head.pending = None;
            adopted += 1;
        }
        if head_missing && adopted > 1 {
            return Err(AuditError::HeadMismatch {
                path,
                reason: format!(
                    "audit.head is missing but the log has {adopted} lines: it was deleted; move audit.jsonl aside to start a new chain"
                ),
            });
        }
        let torn = tail.len() - complete;
        if torn > 0 {
            file.set_len(head.bytes)
                .and_then(|()| file.sync_data())
                .map_err(|e| AuditError::io(&path, e))?;
        }
        self.write_head(&head)?;
        if torn > 0 {
            let repair = Line {
                seq: head.last_seq + 1,
                time: format_utc(SystemTime::now()),
                run_id: String::new(),
                action: Action::AuditRepair,
                outcome: Outcome::Ok,
                details: serde_json::json!({
                    "cut_torn_bytes": torn,
                    "reason": "a crash interrupted an append; its partial line was removed",
                }),
                prev: head.last_hash.clone(),
            };
            self.write_line(file, &mut head, &repair)?;
        }
        Ok(head)
    }

    fn read_head(&self) -> Result<Option<Head>, AuditError> {
        read_head(&self.dir)
    }

    fn write_head(&self, head: &Head) -> Result<(), AuditError> {
        let path = self.dir.join(HEAD_FILE);
        let mut text = serde_json::to_string(head).expect("the head always serializes");
        text.push('\n');
        AtomicWrite::new(&path)
            .sync(Sync::FileAndDir)
            .write(text.as_bytes())
            .map_err(|e| AuditError::io(&path, e))
    }
}

fn read_head(dir: &Path) -> Result<Option<Head>, AuditError> {
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
fn rotated_name(head: &Head) -> String {
    format!("audit-{:012}.jsonl", head.last_seq + 1 - head.lines)
}

/// Whether the file `head` counts was renamed by a rotation that the head does not show yet:
/// the rotated file exists with exactly the head's size and last hash.
fn rotation_was_interrupted(dir: &Path, head: &Head) -> Result<bool, AuditError> {
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
struct Span {
    first_seq: u64,
    last_seq: u64,
    lines: u64,
    last_hash: String,
}

fn span(path: &Path, bytes: &[u8]) -> Result<Span, AuditError> {
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

/// The distinct run ids of a file's lines, in order of first appearance (unparsable lines are
/// skipped: the file was verified when it was written).
fn run_ids(bytes: &[u8]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for raw in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if let Ok(line) = serde_json::from_slice::<Line>(raw)
            && !line.run_id.is_empty()
            && !ids.contains(&line.run_id)
        {
            ids.push(line.run_id);
        }
    }
    ids
}

fn parse_line(path: &Path, lineno: u64, raw: &[u8]) -> Result<Line, AuditError> {
    serde_json::from_slice(raw).map_err(|e| AuditError::BadLine {
        path: path.to_owned(),
        line: lineno,
        reason: e.to_string(),
    })
}

/// Checks the whole chain in `state_dir`: rotated `audit-*.jsonl` files in name order, then
/// `audit.jsonl`, each line's `prev` and `seq`, and the head against the live file. A chain
/// whose oldest files were dropped by rotation starts where an `audit_drop` line says it does.
///
/// Takes a shared lock on `audit.lock`, so it never reads a half-written append or rotation.
pub fn verify(state_dir: &Path) -> Result<Summary, AuditError> {
    let mut rotated = match logs::rotated_files(state_dir, "audit-", ".jsonl", LOG_FILE) {
        Ok(files) => files,
        // No state dir yet: nothing was ever logged.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Summary::empty());
        }
        Err(e) => return Err(AuditError::io(state_dir, e)),
    };
    let lock_path = state_dir.join(LOCK_FILE);
    let _lock = match File::open(&lock_path) {
        Ok(f) => {
            f.lock_shared().map_err(|e| AuditError::io(&lock_path, e))?;
            // Files may have rotated while we waited for the lock.
            rotated = logs::rotated_files(state_dir, "audit-", ".jsonl", LOG_FILE)
                .map_err(|e| AuditError::io(state_dir, e))?;
            Some(f)
        }
        // Written before logs were locked this way (or never): nothing to wait for.
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(AuditError::io(&lock_path, e)),
    };
    let live = state_dir.join(LOG_FILE);
    let live_file = match File::open(&live) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(AuditError::io(&live, e)),
    };
    let mut head = read_head(state_dir)?;
    let mut summary = Summary::empty();
    let mut chain = Chain::default();
    for path in &rotated {
        let bytes = fs::read(path).map_err(|e| AuditError::io(path, e))?;
        walk(path, &bytes, &mut summary, &mut chain)?;
        summary.files.push(path.clone());
    }
    let mut live_bytes = Vec::new();
    if let Some(mut f) = live_file.as_ref() {
        f.read_to_end(&mut live_bytes)
            .map_err(|e| AuditError::io(&live, e))?;
    }
    if let Some(h) = &head
        && live_bytes.is_empty()
        && h.bytes > 0
        && rotation_was_interrupted(state_dir, h)?
        && summary.last_hash == h.last_hash
    {
        // A crash mid-rotation: the next append replaces the head the same way.
        head = Some(Head {
            lines: 0,
            bytes: 0,
            last_hash: h.last_hash.clone(),
            last_seq: h.last_seq,
            pending: None,
        });
    }
    match (live_file, head) {
        (None, None) => {}
        (None, Some(head)) if head.bytes == 0 && head.last_hash == summary.last_hash => {}
        (None, Some(_)) => {
            return Err(AuditError::HeadMismatch {
                path: live,
                reason: "audit.head exists but audit.jsonl is gone: the log was deleted".to_owned(),
            });
        }
        (Some(_), head) => {
            let lines_before = summary.lines;
            walk(&live, &live_bytes, &mut summary, &mut chain)?;
            summary.files.push(live.clone());
            let lines = summary.lines - lines_before;
            let head = match head {
                Some(head) => head,
                // A crash between the very first line and the first head: the next append
                // adopts that line.
                None if lines <= 1 && rotated.is_empty() => Head {
                    lines: 0,
                    bytes: 0,
                    last_hash: GENESIS.to_owned(),
                    last_seq: 0,
                    // As announced: logs written before the head announced its appends.
                    pending: Some(summary.last_hash.clone()),
                },
                None => {
                    return Err(AuditError::HeadMismatch {
                        path: live,
                        reason: format!(
                            "audit.head is missing (the log has {lines} lines): it was deleted"
                        ),
                    });
                }
            };
            if lines == 0 && head.bytes == 0 && head.last_hash != summary.last_hash {
                return Err(AuditError::HeadMismatch {
                    path: live,
                    reason: format!(
                        "audit.head continues from hash {} but the rotated files end with {}: a rotated file was changed or removed",
                        head.last_hash, summary.last_hash
                    ),
                });
            }
            check_head(
                &live,
                &head,
                lines,
                live_bytes.len() as u64,
                &summary.last_hash,
            )?;
        }
    }
    if let Some((path, seq, hash)) = chain.start
        && !chain.drops.contains(&(seq, hash.clone()))
    {
        return Err(AuditError::MissingStart { path, seq, hash });
    }
    Ok(summary)
}

/// The hash of the line with `seq` in the chain of `state_dir` (rotated files, then the live
/// one), or `None` when no file holds it (it was dropped by rotation, or never written). For
/// comparing an anchor kept elsewhere with a chain that has grown since.
pub fn line_hash(state_dir: &Path, seq: u64) -> Result<Option<String>, AuditError> {
    let mut files = logs::rotated_files(state_dir, "audit-", ".jsonl", LOG_FILE)
        .map_err(|e| AuditError::io(state_dir, e))?;
    files.push(state_dir.join(LOG_FILE));
    for path in files {
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(AuditError::io(&path, e)),
        };
        for (i, raw) in bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            if parse_line(&path, i as u64 + 1, raw)?.seq == seq {
                return Ok(Some(sha256_hex(raw)));
            }
        }
    }
    Ok(None)
}

/// What [`walk`] carries from file to file.
#[derive(Debug, Default)]
struct Chain {
    /// `seq` of the last line walked.
    last_seq: u64,
    /// Where the chain starts when it does not start at [`GENESIS`]: the first file, and the
    /// `seq` and hash of the line before its first.
    start: Option<(PathBuf, u64, String)>,
    /// The (`last_seq`, `last_hash`) of every file an `audit_drop` line records deleting.
    drops: Vec<(u64, String)>,
}

/// Walks one file's lines, continuing the chain in `summary`.
fn walk(
    path: &Path,
    bytes: &[u8],
    summary: &mut Summary,
    chain: &mut Chain,
) -> Result<(), AuditError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let body = match bytes.strip_suffix(b"\n") {
        Some(body) => body,
        None => {
            let line = bytes.split(|&b| b == b'\n').count() as u64;
            return Err(AuditError::BadLine {
                path: path.to_owned(),
                line,
                reason: "the last line has no newline: it was cut off".to_owned(),
            });
        }
    };
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let lineno = i as u64 + 1;
        let line = parse_line(path, lineno, raw)?;
        if summary.lines == 0 && line.prev != GENESIS && line.seq > 1 {
            // The oldest files were dropped: an audit_drop line must vouch for this start.
            chain.start = Some((path.to_owned(), line.seq - 1, line.prev.clone()));
            chain.last_seq = line.seq - 1;
            summary.last_hash = line.prev.clone();
        }
        if line.prev != summary.last_hash {
            return Err(AuditError::BrokenChain {
                path: path.to_owned(),
                line: lineno,
                expected: summary.last_hash.clone(),
                found: line.prev,
            });
        }
        if line.seq != chain.last_seq + 1 {
            return Err(AuditError::BadLine {
                path: path.to_owned(),
                line: lineno,
                reason: format!("seq {} follows seq {}", line.seq, chain.last_seq),
            });
        }
        if line.action == Action::AuditDrop
            && let (Some(seq), Some(hash)) = (
                line.details["last_seq"].as_u64(),
                line.details["last_hash"].as_str(),
            )
        {
            chain.drops.push((seq, hash.to_owned()));
        }
        let listed = |key: &str| {
            line.details[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        };
        match line.action {
            Action::Prune => summary.pruned.extend(listed("runs")),
            Action::AuditDrop => {
                summary.unlisted_drop |= !line.details["runs"].is_array();
                summary.dropped.extend(listed("runs"));
            }
            _ => {}
        }
        if !line.run_id.is_empty() {
            summary.runs.insert(line.run_id.clone());
        }
        chain.last_seq = line.seq;
        summary.last_seq = line.seq;
        summary.last_hash = sha256_hex(raw);
        summary.lines += 1;
    }
    Ok(())
}

fn check_head(
    path: &Path,
    head: &Head,
    lines: u64,
    bytes: u64,
    last_hash: &str,
) -> Result<(), AuditError> {
    let reason = if lines < head.lines || bytes < head.bytes {
        format!(
            "audit.head records {} lines ({} bytes) but the file has {lines} ({bytes} bytes): lines were cut off the end",
            head.lines, head.bytes
        )
    } else if lines == head.lines + 1
        && bytes > head.bytes
        && head.pending.as_deref() == Some(last_hash)
    {
        // A crash between the line's fsync and the head's replacement: the head announced
        // exactly this line; the next append adopts it.
        return Ok(());
    } else if lines > head.lines && bytes > head.bytes {
        format!(
            "audit.head records {} lines ({} bytes) but the file has {lines} ({bytes} bytes), and the head announced no such append: lines were added behind smart's back, or audit.head was rolled back",
            head.lines, head.bytes
        )
    } else if lines == head.lines && head.last_hash != last_hash {
        format!(
            "the last line's hash is {last_hash} but audit.head records {}: the last line was edited",
            head.last_hash
        )
    } else if lines != head.lines || bytes != head.bytes {
        format!(
            "audit.head records {} lines ({} bytes) but the file has {lines} ({bytes} bytes)",
            head.lines, head.bytes
        )
    } else {
        return Ok(());
    };
    Err(AuditError::HeadMismatch {
        path: path.to_owned(),
        reason,
    })
}

/// SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Formats `time` as RFC 3339 UTC with milliseconds (truncated), e.g.
/// `2026-11-26T19:30:00.123Z`; a time before 1970 (a broken clock) as the epoch.
pub fn format_utc(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let at = jiff::Timestamp::try_from(UNIX_EPOCH + since).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    at.strftime("%Y-%m-%dT%H:%M:%S.%3fZ").to_string()
}

/// Seconds since the Unix epoch of an RFC 3339 UTC time (`2026-11-26T19:30:00Z`, fractions
/// allowed, `Z` or `+00:00`); `None` when it is not one.
pub fn parse_utc(text: &str) -> Option<f64> {
    if !(text.ends_with('Z') || text.ends_with("+00:00")) {
        return None;
    }
    let at: jiff::Timestamp = text.parse().ok()?;
    // nanoseconds / 1e9 is the double nearest the decimal fraction, as parsing it was.
    Some(at.as_second() as f64 + f64::from(at.subsec_nanosecond()) / 1e9)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn entry(n: u64) -> Entry {
        Entry {
            time: UNIX_EPOCH + Duration::from_secs(1_700_000_000 + n),
            run_id: "r1".to_owned(),
            action: Action::Apply,
            outcome: Outcome::Ok,
            details: serde_json::json!({"n": n, "text": "line\nbreak \"quoted\""}),
        }
    }

    fn log_with(lines: u64) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        for n in 0..lines {
            log.append(&entry(n)).unwrap();
        }
        (dir, log)
    }

    fn rewrite(log: &AuditLog, f: impl FnOnce(&mut Vec<String>)) {
        let text = fs::read_to_string(log.path()).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        f(&mut lines);
        let mut out = lines.join("\n");
        out.push('\n');
        fs::write(log.path(), out).unwrap();
    }

    #[test]
    fn formats_utc_times() {
        let check = |secs: u64, millis: u64, want: &str| {
            let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis);
            assert_eq!(format_utc(t), want);
        };
        check(0, 0, "1970-01-01T00:00:00.000Z");
        check(951_782_400, 5, "2000-02-29T00:00:00.005Z");
        check(1_700_000_000, 123, "2023-11-14T22:13:20.123Z");
        check(4_102_444_799, 999, "2099-12-31T23:59:59.999Z");
        // Milliseconds are truncated, never rounded up into the next second.
        let late = UNIX_EPOCH + Duration::from_secs(59) + Duration::from_nanos(999_999_999);
        assert_eq!(format_utc(late), "1970-01-01T00:00:59.999Z");
    }

    #[test]
    fn an_intact_chain_verifies_and_counts_lines() {
        let (dir, log) = log_with(5);
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.lines, 5);
        assert_eq!(summary.files, vec![log.path()]);
        let text = fs::read_to_string(log.path()).unwrap();
        let first: Line = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first.prev, GENESIS);
        assert_eq!(first.seq, 1);
        assert_eq!(first.time, "2023-11-14T22:13:20.000Z");
        assert_eq!(
            summary.last_hash,
            sha256_hex(text.lines().last().unwrap().as_bytes())
        );
    }

    #[test]
    fn an_empty_or_missing_state_dir_verifies() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(verify(dir.path()).unwrap().lines, 0);
        assert_eq!(verify(&dir.path().join("none")).unwrap().lines, 0);
    }

    #[test]
    fn an_edited_line_is_detected() {
        let (dir, log) = log_with(4);
        rewrite(&log, |lines| {
            lines[1] = lines[1].replace("\"ok\"", "\"failed\"")
        });
        let err = verify(dir.path()).unwrap_err();
        assert!(
            matches!(err, AuditError::BrokenChain { line: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn an_edited_last_line_is_detected() {
        let (dir, log) = log_with(3);
        rewrite(&log, |lines| {
            lines[2] = lines[2].replace("\"ok\"", "\"failed\"")
        });
        let err = verify(dir.path()).unwrap_err();
        assert!(err.to_string().contains("last line was edited"), "{err}");
    }

    #[test]
    fn a_deleted_line_is_detected() {
        let (dir, log) = log_with(4);
        rewrite(&log, |lines| {
            lines.remove(1);
        });
        let err = verify(dir.path()).unwrap_err();
        assert!(
            matches!(err, AuditError::BrokenChain { line: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn lines_cut_off_the_end_are_detected() {
        let (dir, log) = log_with(4);
        rewrite(&log, |lines| {
            lines.pop();
        });
        let err = verify(dir.path()).unwrap_err();
        assert!(err.to_string().contains("cut off"), "{err}");
        // And appends refuse to paper over it.
        assert!(log.append(&entry(9)).is_err());
    }

    #[test]
    fn a_half_cut_line_is_detected() {
        let (dir, log) = log_with(3);
        let bytes = fs::read(log.path()).unwrap();
        fs::write(log.path(), &bytes[..bytes.len() - 10]).unwrap();
        let err = verify(dir.path()).unwrap_err();
        assert!(err.to_string().contains("cut off"), "{err}");
    }

    #[test]
    fn a_deleted_head_is_detected() {
        let (dir, _log) = log_with(3);
        fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
        let err = verify(dir.path()).unwrap_err();
        assert!(err.to_string().contains("audit.head is missing"), "{err}");
    }

    /// The head as it was before the last append, optionally announcing that append (what a
    /// crash between the line's fsync and the head's replacement leaves).
    fn roll_head_back(dir: &Path, before: &[u8], announce: bool) {
        let mut head: Head = serde_json::from_slice(before).unwrap();
        if announce {
            let text = fs::read_to_string(dir.join(LOG_FILE)).unwrap();
            head.pending = Some(sha256_hex(text.lines().last().unwrap().as_bytes()));
        }
        fs::write(dir.join(HEAD_FILE), serde_json::to_vec(&head).unwrap()).unwrap();
    }

    #[test]
    fn a_crash_before_the_head_update_is_adopted() {
        let (dir, log) = log_with(3);
        let head = fs::read(dir.path().join(HEAD_FILE)).unwrap();
        log.append(&entry(3)).unwrap();
        // As if the process died between the line's fsync and the head's replacement: the head
        // still counts 3 lines but announced the fourth.
        roll_head_back(dir.path(), &head, true);
        assert_eq!(verify(dir.path()).unwrap().lines, 4);
        log.append(&entry(4)).unwrap();
        assert_eq!(verify(dir.path()).unwrap().lines, 5);
    }

    #[test]
    fn a_line_appended_behind_the_heads_back_is_detected() {
        // Issue 14: a line with a correct chain hash, appended while audit.head still named the
        // line before it, verified as intact.
        let (dir, log) = log_with(3);
        let head = fs::read(dir.path().join(HEAD_FILE)).unwrap();
        log.append(&entry(3)).unwrap();
        roll_head_back(dir.path(), &head, false);
        let err = verify(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("records 3 lines (")
                && err.to_string().contains("but the file has 4"),
            "{err}"
        );
        assert!(err.to_string().contains("behind smart's back"), "{err}");
        // Appends do not adopt it either.
        let err = log.append(&entry(9)).unwrap_err();
        assert!(err.to_string().contains("behind smart's back"), "{err}");
    }

    #[test]
    fn the_summary_names_runs_that_have_no_lines() {
        let (dir, log) = log_with(2);
        let line = |run: &str, action: Action, details: serde_json::Value| Entry {
            run_id: run.to_owned(),
            action,
            details,
            ..entry(0)
        };
        log.append(&line("r2", Action::Apply, serde_json::json!({})))
            .unwrap();
        log.append(&line(
            "",
            Action::Prune,
            serde_json::json!({"runs": ["r3"], "reason": "retention"}),
        ))
        .unwrap();
        log.append(&line(
            "",
            Action::AuditDrop,
            serde_json::json!({"runs": ["r4"], "last_seq": 0, "last_hash": GENESIS}),
        ))
        .unwrap();
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.last_seq, 5);
        assert_eq!(
            summary.missing_runs(["r1", "r2", "r3", "r4", "r5"]),
            vec!["r5".to_owned()]
        );
        // Both files deleted: every run is missing, though the (empty) chain verifies.
        fs::remove_file(log.path()).unwrap();
        fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.missing_runs(["r1", "r2"]), vec!["r1", "r2"]);
    }

    #[test]
    fn dropped_files_list_their_runs() {
        let dir = tempfile::tempdir().unwrap();
        let log = rotating(dir.path(), 1024, 1);
        for n in 0..12 {
            log.append(&Entry {
                run_id: format!("run-{n}"),
                ..entry(n)
            })
            .unwrap();
        }
        let summary = verify(dir.path()).unwrap();
        assert!(!summary.unlisted_drop);
        let all: Vec<String> = (0..12).map(|n| format!("run-{n}")).collect();
        assert!(
            summary
                .missing_runs(all.iter().map(String::as_str))
                .is_empty()
        );
        assert!(summary.dropped.contains("run-0"), "{summary:?}");
    }

    #[test]
    fn a_crash_before_the_first_head_is_adopted() {
        let (dir, log) = log_with(1);
        fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
        assert_eq!(verify(dir.path()).unwrap().lines, 1);
        log.append(&entry(1)).unwrap();
        assert_eq!(verify(dir.path()).unwrap().lines, 2);
    }

    #[test]
    fn a_torn_line_is_cut_and_the_repair_recorded() {
        let (dir, log) = log_with(2);
        let mut f = OpenOptions::new().append(true).open(log.path()).unwrap();
        f.write_all(b"{\"seq\":3,\"ti").unwrap();
        drop(f);
        assert!(verify(dir.path()).is_err());
        log.append(&entry(2)).unwrap();
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.lines, 4);
        let text = fs::read_to_string(log.path()).unwrap();
        let third: Line = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
        assert_eq!(third.action, Action::AuditRepair);
    }

    #[test]
    fn rotated_files_chain_into_the_live_one() {
        let (dir, log) = log_with(3);
        // Rotate by hand: the live file becomes audit-000000000001.jsonl and a new one starts.
        let last_hash = verify(dir.path()).unwrap().last_hash;
        fs::rename(log.path(), dir.path().join("audit-000000000001.jsonl")).unwrap();
        let head = Head {
            lines: 0,
            bytes: 0,
            last_hash,
            last_seq: 3,
            pending: None,
        };
        log.write_head(&head).unwrap();
        log.append(&entry(3)).unwrap();
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.lines, 4);
        assert_eq!(summary.files.len(), 2);
        // A rotated file that loses a line breaks the chain into the next one.
        let old = dir.path().join("audit-000000000001.jsonl");
        let text = fs::read_to_string(&old).unwrap();
        let kept: Vec<&str> = text.lines().take(2).collect();
        fs::write(&old, kept.join("\n") + "\n").unwrap();
        assert!(matches!(
            verify(dir.path()).unwrap_err(),
            AuditError::BrokenChain { line: 1, .. }
        ));
    }

    fn rotating(dir: &Path, max_bytes: u64, keep: u32) -> AuditLog {
        AuditLog::with_rotation(dir, LogRotation::new(max_bytes, keep))
    }

    /// Every line of every audit file in `dir`, oldest file first.
    fn all_lines(dir: &Path) -> Vec<(PathBuf, Line)> {
        let mut files = logs::rotated_files(dir, "audit-", ".jsonl", LOG_FILE).unwrap();
        files.push(dir.join(LOG_FILE));
        let mut out = Vec::new();
        for file in files {
            for raw in fs::read_to_string(&file).unwrap().lines() {
                out.push((file.clone(), serde_json::from_str(raw).unwrap()));
            }
        }
        out
    }

    /// `writers` threads, each appending `lines` entries through its own `AuditLog` (so its own
    /// file handles and locks), tagged with the writer and the entry's number.
    fn write_concurrently(log: &AuditLog, writers: u64, lines: u64) {
        std::thread::scope(|s| {
            for writer in 0..writers {
                let log = log.clone();
                s.spawn(move || {
                    for n in 0..lines {
                        let mut e = entry(n);
                        e.details =
                            serde_json::json!({"writer": writer, "n": n, "pad": "x".repeat(60)});
                        log.append(&e).unwrap();
                    }
                });
            }
        });
    }

    #[test]
    fn concurrent_writers_across_many_rotations_lose_and_duplicate_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = rotating(dir.path(), 2048, 1000);
        write_concurrently(&log, 4, 150);
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.lines, 600);
        assert!(summary.files.len() > 50, "{} files", summary.files.len());
        let mut seen = std::collections::HashSet::new();
        for (file, line) in all_lines(dir.path()) {
            let key = (line.details["writer"].as_u64(), line.details["n"].as_u64());
            assert!(seen.insert(key), "{key:?} twice (in {})", file.display());
        }
        assert_eq!(seen.len(), 600);
        for file in &summary.files[..summary.files.len() - 1] {
            let text = fs::read_to_string(file).unwrap();
            let first: Line = serde_json::from_str(text.lines().next().unwrap()).unwrap();
            let name = file.file_name().unwrap().to_str().unwrap();
            assert_eq!(name, format!("audit-{:012}.jsonl", first.seq));
            // Rotated as soon as it held max_bytes: one line past the limit at most.
            let size = text.len();
            assert!((2048..2048 + 300).contains(&size), "{name}: {size} bytes");
        }
    }

    /// Set in the child processes of the test below: `STATE_DIR WRITER`.
    const CHILD_ENV: &str = "SMART_AUDIT_ROTATION_CHILD";

    #[test]
    fn writer_processes_across_many_rotations_lose_and_duplicate_nothing() {
        let name =
            "audit::tests::writer_processes_across_many_rotations_lose_and_duplicate_nothing";
        if let Ok(child) = std::env::var(CHILD_ENV) {
            // This process is one of the writers the parent started.
            let (dir, writer) = child.split_once(' ').unwrap();
            let log = rotating(Path::new(dir), 2048, 1000);
            for n in 0..100 {
                let mut e = entry(n);
                e.details = serde_json::json!({"writer": writer.parse::<u64>().unwrap(), "n": n});
                log.append(&e).unwrap();
            }
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let children: Vec<std::process::Child> = (0..4)
            .map(|writer| {
                std::process::Command::new(&exe)
                    .args([name, "--exact", "--test-threads=1"])
                    .env(CHILD_ENV, format!("{} {writer}", dir.path().display()))
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            assert!(child.wait().unwrap().success());
        }
        let summary = verify(dir.path()).unwrap();
        assert_eq!(summary.lines, 400);
        assert!(summary.files.len() > 10, "{} files", summary.files.len());
        let mut seen = std::collections::HashSet::new();
        for (_, line) in all_lines(dir.path()) {
            let key = (line.details["writer"].as_u64(), line.details["n"].as_u64());
            assert!(seen.insert(key), "{key:?} twice");
        }
        assert_eq!(seen.len(), 400);
    }

    #[test]
    fn dropping_the_oldest_files_is_logged_and_the_chain_still_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let log = rotating(dir.path(), 2048, 3);
        write_concurrently(&log, 4, 100);
        let summary = verify(dir.path()).unwrap();
        let rotated = logs::rotated_files(dir.path(), "audit-", ".jsonl", LOG_FILE).unwrap();
        assert_eq!(rotated.len(), 3);
        // From the oldest drop still on record on, every seq is either in a file left or in a
        // file an audit_drop line records, exactly once. (The records of earlier drops were in
        // files dropped since.)
        let lines = all_lines(dir.path());
        let mut seqs: Vec<u64> = lines.iter().map(|(_, l)| l.seq).collect();
        let drops: Vec<&Line> = lines
            .iter()
            .map(|(_, l)| l)
            .filter(|l| l.action == Action::AuditDrop)
            .collect();
        assert!(!drops.is_empty());
        for drop in &drops {
            let first = drop.details["first_seq"].as_u64().unwrap();
            let last = drop.details["last_seq"].as_u64().unwrap();
            assert_eq!(drop.details["lines"].as_u64(), Some(last - first + 1));
            seqs.extend(first..=last);
        }
        seqs.sort_unstable();
        let (first, last) = (seqs[0], lines.last().unwrap().1.seq);
        assert!(first > 1, "the oldest lines were dropped");
        assert_eq!(seqs, (first..=last).collect::<Vec<_>>());
        assert_eq!(summary.lines, lines.len() as u64);
        // The writers' lines left are each there once.
        let mut seen = std::collections::HashSet::new();
        for (_, line) in &lines {
            if line.action == Action::Apply {
                assert!(seen.insert((line.details["writer"].as_u64(), line.details["n"].as_u64())));
            }
        }
        // Deleting the oldest file left by hand is detected: no audit_drop vouches for it.
        fs::remove_file(&rotated[0]).unwrap();
        let err = verify(dir.path()).unwrap_err();
        assert!(matches!(err, AuditError::MissingStart { .. }), "{err}");
        assert!(err.to_string().contains("deleted by hand"), "{err}");
    }

    #[test]
    fn a_crash_mid_rotation_is_finished_by_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let log = rotating(dir.path(), 1 << 20, 5);
        for n in 0..3 {
            log.append(&entry(n)).unwrap();
        }
        // As if rotation died right after the rename: the head still counts the moved file.
        fs::rename(log.path(), dir.path().join("audit-000000000001.jsonl")).unwrap();
        assert_eq!(verify(dir.path()).unwrap().lines, 3);
        log.append(&entry(3)).unwrap();
        let summary = verify(dir.path()).unwrap();
        assert_eq!((summary.lines, summary.files.len()), (4, 2));
        // A moved file that does not match the head is not mistaken for one.
        let dir = tempfile::tempdir().unwrap();
        let log = rotating(dir.path(), 1 << 20, 5);
        for n in 0..3 {
            log.append(&entry(n)).unwrap();
        }
        let text = fs::read_to_string(log.path()).unwrap();
        let two: Vec<&str> = text.lines().take(2).collect();
        fs::write(
            dir.path().join("audit-000000000001.jsonl"),
            two.join("\n") + "\n",
        )
        .unwrap();
        fs::remove_file(log.path()).unwrap();
        assert!(verify(dir.path()).is_err());
        assert!(log.append(&entry(3)).is_err());
    }

    #[test]
    fn concurrent_appenders_never_interleave() {
        let (dir, log) = log_with(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for n in 0..25 {
                        log.append(&entry(n)).unwrap();
                    }
                });
            }
        });
        assert_eq!(verify(dir.path()).unwrap().lines, 100);
    }

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
