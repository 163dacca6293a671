//! Size-based log rotation, shared by the audit log and `metrics.csv`: how big a file may grow
//! before it is moved aside, how many moved-aside files are kept, and the lock that serializes
//! writers (in any number of processes) around a rotation.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// When a log file is rotated and how many rotated files are kept (`[logs]` in `smart.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRotation {
    max_bytes: u64,
    keep: u32,
}

impl LogRotation {
    /// The default size limit: 10 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
    /// The default number of rotated files kept.
    pub const DEFAULT_KEEP: u32 = 10;
    /// The smallest `max_bytes` `smart.toml` accepts (a few audit lines).
    pub const MIN_MAX_BYTES: u64 = 4096;
    /// The largest `keep` `smart.toml` accepts.
    pub const MAX_KEEP: u32 = 10_000;

    /// Rotate a file once it holds `max_bytes` or more (at least one line always fits: a file
    /// is only rotated when it is not empty); keep the newest `keep` rotated files.
    pub fn new(max_bytes: u64, keep: u32) -> LogRotation {
        LogRotation {
            max_bytes: max_bytes.max(1),
            keep,
        }
    }

    /// The size at which the live file is moved aside.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// How many rotated files are kept; older ones are deleted.
    pub fn keep(&self) -> u32 {
        self.keep
    }
}

impl Default for LogRotation {
    /// 10 MiB per file, 10 old files.
    fn default() -> Self {
        LogRotation::new(Self::DEFAULT_MAX_BYTES, Self::DEFAULT_KEEP)
    }
}

/// The rotated files `PREFIX*SUFFIX` in `dir` (not `live`), oldest first: their names sort by age.
#[doc(hidden)] // public for sibling crates only, not part of the embedding API
pub fn rotated_files(
    dir: &Path,
    prefix: &str,
    suffix: &str,
    live: &str,
) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(prefix) && n.ends_with(suffix) && n != live && !n.ends_with(".tmp")
            })
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Takes an exclusive lock on the lock file `path` (created if missing), held until the returned
/// file is dropped. A separate lock file, unlike the log itself, is never renamed, so every
/// writer locks the same inode before and after a rotation.
pub(crate) fn lock_exclusive(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.lock()?;
    Ok(file)
}

/// Fsyncs a directory, so renames and deletions in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
