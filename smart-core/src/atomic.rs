//! Atomic file replacement, the one implementation every crate uses (records, the audit head, the
//! dashboard's pages, the coach's queue, smart-apply's config and state files): write a temp file
//! in the same directory, then rename it over the target, so a reader sees the old file or the
//! new one, never half of one; with [`Sync::FileAndDir`] the new file survives a power cut once
//! [`AtomicWrite::write`] returns (fsync the temp file before the rename, the directory after).
//!
//! Each caller names its temp file: a fixed name is overwritten by the next write after a crash
//! (and smart-apply's recovery looks for its own), where a unique one would be litter.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// Nothing: atomic for readers, not durable (a page re-rendered on every run).
    None,
    /// The file before the rename, not the directory.
    File,
    /// The file before the rename and the directory after it: durable.
    FileAndDir,
}

/// One atomic replacement of a file, set up by its builder methods.
#[derive(Debug, Clone)]
pub struct AtomicWrite {
    path: PathBuf,
    temp: PathBuf,
    create_mode: u32,
    owner_and_mode: Option<(Option<(u32, u32)>, u32)>,
    sync: Sync,
    create_dir: bool,
}

/// Tells apart the unique temp files of one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

impl AtomicWrite {
    /// Replaces `path` through `<name>.tmp` beside it, created with mode 0666 less the umask, no
    /// fsync, the directory must exist.
    pub fn new(path: &Path) -> AtomicWrite {
        let mut name = path.file_name().unwrap_or_default().to_owned();
        name.push(".tmp");
        AtomicWrite {
            path: path.to_owned(),
            temp: parent(path).join(name),
            create_mode: 0o666,
            owner_and_mode: None,
            sync: Sync::None,
            create_dir: false,
        }
    }

    /// Writes through `temp` (in the same directory) instead.
    pub fn temp(mut self, temp: PathBuf) -> AtomicWrite {
        self.temp = temp;
        self
    }

    /// Writes through `.<name>.<pid>.<n>.tmp`: two writers at once (two renders) never share a
    /// temp file.
    pub fn unique_temp(mut self) -> AtomicWrite {
        let mut name = std::ffi::OsString::from(".");
        name.push(self.path.file_name().unwrap_or_default());
        name.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        self.temp = parent(&self.path).join(name);
        self
    }

    /// Creates the temp file with `mode` (less the umask), e.g. 0600 for a file holding secrets.
    pub fn create_mode(mut self, mode: u32) -> AtomicWrite {
        self.create_mode = mode;
        self
    }

    /// Gives the new file `owner` (uid, gid; `None`: ours) and then exactly `mode` (after the
    /// chown, which may clear set-id bits), before it is synced and renamed.
    pub fn owner_and_mode(mut self, owner: Option<(u32, u32)>, mode: u32) -> AtomicWrite {
        self.owner_and_mode = Some((owner, mode));
        self
    }

    /// What to fsync.
    pub fn sync(mut self, sync: Sync) -> AtomicWrite {
        self.sync = sync;
        self
    }

    /// Creates the directory (and its parents) first if missing.
    pub fn create_dir(mut self) -> AtomicWrite {
        self.create_dir = true;
        self
    }

    /// The temp file this write uses.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Replaces the file with `bytes`. A stale temp file (from a crash) is removed first; on
    /// failure the temp file is removed and the target is untouched.
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let dir = parent(&self.path);
        if self.create_dir {
            fs::create_dir_all(dir)?;
        }
        match fs::remove_file(&self.temp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(self.create_mode)
                .open(&self.temp)?;
            file.write_all(bytes)?;
            if let Some((owner, mode)) = self.owner_and_mode {
                if let Some((uid, gid)) = owner {
                    let meta = file.metadata()?;
                    if (meta.uid(), meta.gid()) != (uid, gid) {
                        std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
                    }
                }
                file.set_permissions(Permissions::from_mode(mode))?;
            }
            if self.sync != Sync::None {
                file.sync_all()?;
            }
            drop(file);
            fs::rename(&self.temp, &self.path)?;
            if self.sync == Sync::FileAndDir {
                sync_dir(dir)?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&self.temp);
        }
        result
    }
}

/// Fsyncs a directory, so a rename or removal in it survives a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory of `path` (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_with_the_mode_asked_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("a.json");
        let write = AtomicWrite::new(&path)
            .create_dir()
            .create_mode(0o600)
            .sync(Sync::FileAndDir);
        fs::create_dir(dir.path().join("sub")).unwrap();
        // A stale temp file from a crash, with another mode, is replaced, not reused.
        fs::write(write.temp_path(), "stale").unwrap();
        fs::set_permissions(write.temp_path(), Permissions::from_mode(0o644)).unwrap();
        write.write(b"one").unwrap();
        write.write(b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert!(!write.temp_path().exists());
    }

    #[test]
    fn a_failed_write_leaves_the_target_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        fs::write(&path, "old").unwrap();
        // The rename cannot replace a non-empty directory with a file.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("inside"), "").unwrap();
        let write = AtomicWrite::new(&blocked);
        assert!(write.write(b"new").is_err());
        assert!(!write.temp_path().exists());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        let unique = AtomicWrite::new(&path).unique_temp();
        assert_ne!(
            unique.temp_path(),
            AtomicWrite::new(&path).unique_temp().temp_path()
        );
        unique.write(b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }
}
