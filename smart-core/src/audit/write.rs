//! Appending to the chain: [`AuditLog::append`] under the exclusive lock, the head announced
//! before and replaced after each line, the repair of what a crash left, and rotation.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::format::{
    Action, AuditError, Entry, GENESIS, HEAD_FILE, Head, LOCK_FILE, LOG_FILE, Line, Outcome,
    parse_line, read_head, rotated_name, rotation_was_interrupted, sha256_hex, span,
};
use super::time::format_utc;
use crate::atomic::{AtomicWrite, Sync};
use crate::logs::{self, LogRotation};

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

#[cfg(test)]
mod tests {
    use super::super::testing::{entry, log_with, roll_head_back, rotating};
    use super::*;
    use crate::audit::verify;

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
        let name = "audit::write::tests::writer_processes_across_many_rotations_lose_and_duplicate_nothing";
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
}
