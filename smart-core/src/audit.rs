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
//! `{"lines":N,"bytes":B,"last_hash":H}` for `audit.jsonl` and is replaced atomically (temp file,
//! fsync, rename, fsync of the directory) after every append, so a line cut off the end, or a
//! file cut short, no longer matches the head.
//!
//! # Rotation
//!
//! Files rotated out of the way are named `audit-*.jsonl`, so that sorting their names sorts
//! them by age (e.g. `audit-000000012345.jsonl`, the zero-padded `seq` of their first line).
//! Each file's first line chains from the previous file's last hash, so [`verify`] walks the
//! rotated files in name order and then `audit.jsonl` as one chain. Rotation itself is not done
//! here yet.
//!
//! # Concurrency and crashes
//!
//! An append holds an exclusive lock on `audit.jsonl` (std's `File::lock`), so appenders in
//! several processes never interleave. A process killed between writing its line and replacing
//! the head leaves complete lines the head does not count: the next append checks that they
//! continue the chain and adopts them. A torn line (a crash mid-write, no final newline) is cut
//! off by the next append and the cut is recorded as an `audit_repair` line. A file shorter than
//! its head says is never repaired: that is tampering, and appends refuse until a human looks.
//!
//! Never put secrets in `details`: the log is meant to be read and shared.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first line of a chain: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The name of the live log file in the state dir.
pub const LOG_FILE: &str = "audit.jsonl";

/// The name of the head file in the state dir.
pub const HEAD_FILE: &str = "audit.head";

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
}

impl AuditLog {
    /// The log in `state_dir` (files are created by the first append).
    pub fn new(state_dir: &Path) -> AuditLog {
        AuditLog {
            dir: state_dir.to_owned(),
        }
    }

    /// The path of the live log file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// Appends one entry, fsyncs it, then replaces the head; safe across processes.
    pub fn append(&self, entry: &Entry) -> Result<(), AuditError> {
        let path = self.path();
        fs::create_dir_all(&self.dir).map_err(|e| AuditError::io(&self.dir, e))?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| AuditError::io(&path, e))?;
        file.lock().map_err(|e| AuditError::io(&path, e))?;
        // The lock is released when `file` is dropped, after the head is replaced.
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
        Ok(())
    }

    fn write_line(&self, file: &mut File, head: &mut Head, line: &Line) -> Result<(), AuditError> {
        let path = self.path();
        let text = serde_json::to_string(line).expect("an audit line always serializes");
        let mut bytes = text.into_bytes();
        let hash = sha256_hex(&bytes);
        bytes.push(b'\n');
        file.write_all(&bytes)
            .and_then(|()| file.sync_data())
            .map_err(|e| AuditError::io(&path, e))?;
        head.lines += 1;
        head.bytes += bytes.len() as u64;
        head.last_hash = hash;
        head.last_seq = line.seq;
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
            },
        };
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
        let tmp = self.dir.join(format!("{HEAD_FILE}.tmp"));
        let text = serde_json::to_string(head).expect("the head always serializes");
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| AuditError::io(&path, e))
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

fn parse_line(path: &Path, lineno: u64, raw: &[u8]) -> Result<Line, AuditError> {
    serde_json::from_slice(raw).map_err(|e| AuditError::BadLine {
        path: path.to_owned(),
        line: lineno,
        reason: e.to_string(),
    })
}

/// Checks the whole chain in `state_dir`: rotated `audit-*.jsonl` files in name order, then
/// `audit.jsonl`, each line's `prev` and `seq`, and the head against the live file.
///
/// Takes a shared lock on the live file, so it never reads a half-written append.
pub fn verify(state_dir: &Path) -> Result<Summary, AuditError> {
    let entries = match fs::read_dir(state_dir) {
        Ok(entries) => entries,
        // No state dir yet: nothing was ever logged.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Summary {
                files: Vec::new(),
                lines: 0,
                last_hash: GENESIS.to_owned(),
            });
        }
        Err(e) => return Err(AuditError::io(state_dir, e)),
    };
    let mut rotated: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl") && n != LOG_FILE)
        })
        .collect();
    rotated.sort();
    let live = state_dir.join(LOG_FILE);
    let live_file = match File::open(&live) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(AuditError::io(&live, e)),
    };
    if let Some(f) = &live_file {
        f.lock_shared().map_err(|e| AuditError::io(&live, e))?;
    }
    let head = read_head(state_dir)?;
    let mut summary = Summary {
        files: Vec::new(),
        lines: 0,
        last_hash: GENESIS.to_owned(),
    };
    let mut last_seq = 0;
    for path in &rotated {
        let bytes = fs::read(path).map_err(|e| AuditError::io(path, e))?;
        walk(path, &bytes, &mut summary, &mut last_seq)?;
        summary.files.push(path.clone());
    }
    match (live_file, head) {
        (None, None) => {}
        (None, Some(_)) => {
            return Err(AuditError::HeadMismatch {
                path: live,
                reason: "audit.head exists but audit.jsonl is gone: the log was deleted".to_owned(),
            });
        }
        (Some(mut f), head) => {
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes)
                .map_err(|e| AuditError::io(&live, e))?;
            let lines_before = summary.lines;
            walk(&live, &bytes, &mut summary, &mut last_seq)?;
            summary.files.push(live.clone());
            let lines = summary.lines - lines_before;
            let head = match head {
                Some(head) => head,
                // A crash between the very first line and the first head: the next append
                // adopts that line.
                None if lines <= 1 => Head {
                    lines: 0,
                    bytes: 0,
                    last_hash: GENESIS.to_owned(),
                    last_seq: 0,
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
            check_head(&live, &head, lines, bytes.len() as u64, &summary.last_hash)?;
        }
    }
    Ok(summary)
}

/// Walks one file's lines, continuing the chain in `summary`.
fn walk(
    path: &Path,
    bytes: &[u8],
    summary: &mut Summary,
    last_seq: &mut u64,
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
        if line.prev != summary.last_hash {
            return Err(AuditError::BrokenChain {
                path: path.to_owned(),
                line: lineno,
                expected: summary.last_hash.clone(),
                found: line.prev,
            });
        }
        if line.seq != *last_seq + 1 {
            return Err(AuditError::BadLine {
                path: path.to_owned(),
                line: lineno,
                reason: format!("seq {} follows seq {}", line.seq, last_seq),
            });
        }
        *last_seq = line.seq;
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
    } else if lines == head.lines + 1 && bytes > head.bytes {
        // A crash between the line's fsync and the head's replacement; the next append adopts it.
        return Ok(());
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

/// Formats `time` as RFC 3339 UTC with milliseconds, e.g. `2026-11-26T19:30:00.123Z`.
pub fn format_utc(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
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

    #[test]
    fn a_crash_before_the_head_update_is_adopted() {
        let (dir, log) = log_with(3);
        let head = fs::read(dir.path().join(HEAD_FILE)).unwrap();
        log.append(&entry(3)).unwrap();
        // Roll the head back, as if the process died between the line's fsync and the head.
        fs::write(dir.path().join(HEAD_FILE), &head).unwrap();
        assert_eq!(verify(dir.path()).unwrap().lines, 4);
        log.append(&entry(4)).unwrap();
        assert_eq!(verify(dir.path()).unwrap().lines, 5);
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
}
