//! Checking the chain: [`verify`] walks the rotated files and the live one as one chain and
//! holds the live file against `audit.head`; [`line_hash`] finds one line's hash for an anchor.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::format::{
    Action, AuditError, GENESIS, Head, LOCK_FILE, LOG_FILE, parse_line, read_head,
    rotation_was_interrupted, sha256_hex,
};
use crate::logs;

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
#[doc(hidden)] // public for sibling crates only, not part of the embedding API
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

#[cfg(test)]
mod tests {
    use super::super::testing::{entry, log_with, roll_head_back, rotating};
    use super::*;
    use crate::audit::{AuditLog, Entry, HEAD_FILE, Line};

    fn rewrite(log: &AuditLog, f: impl FnOnce(&mut Vec<String>)) {
        let text = fs::read_to_string(log.path()).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        f(&mut lines);
        let mut out = lines.join("\n");
        out.push('\n');
        fs::write(log.path(), out).unwrap();
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
}
