//! The one-run-at-a-time lock: an exclusive OS lock on `STATE_DIR/lock` holding the holder's PID.
//!
//! The kernel releases the lock when the holder exits or dies, so there is never a stale lock to
//! clean up; the PID in the file only names the holder for the error message.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Step};

/// The lock file's name in the state dir.
pub const LOCK_FILE: &str = "lock";

/// Proof that this process holds the run lock of a state dir; released on drop.
#[derive(Debug)]
pub struct RunLock {
    // Held only for its OS lock, which the kernel drops with the file.
    _file: File,
    state_dir: PathBuf,
}

impl RunLock {
    /// Takes the lock of `state_dir` (creating the dir), or fails at once with
    /// [`ErrorKind::Locked`] naming the holder's PID.
    pub fn acquire(state_dir: &Path) -> Result<RunLock, Error> {
        fs::create_dir_all(state_dir)
            .map_err(|e| Error::state(format_args!("create {}", state_dir.display()), e))?;
        let path = state_dir.join(LOCK_FILE);
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path);
        let mut read_only = false;
        let mut file = match opened {
            Ok(file) => file,
            // A read-only state disk: `smart recover` must still work when the backups can be
            // read. An existing lock file opened read-only still takes the OS lock.
            Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => {
                read_only = true;
                File::open(&path)
                    .map_err(|_| Error::state(format_args!("open {}", path.display()), e))?
            }
            Err(e) => return Err(Error::state(format_args!("open {}", path.display()), e)),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let pid = text.trim().parse().ok();
                let holder =
                    pid.map_or_else(|| "an unknown process".to_owned(), |p| format!("pid {p}"));
                return Err(Error::new(
                    ErrorKind::Locked { pid },
                    Step::Lock,
                    format!(
                        "another smart run holds {} ({holder}); wait for it to finish",
                        path.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::state(format_args!("lock {}", path.display()), e));
            }
        }
        let write_pid = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{}", std::process::id())?;
            file.sync_data()
        };
        match write_pid(&mut file) {
            Ok(()) => {}
            Err(_) if read_only => {}
            // The PID only names the holder in messages; the OS lock is what excludes. A full
            // or read-only state disk must not stop `smart recover`.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::StorageFull
                        | std::io::ErrorKind::ReadOnlyFilesystem
                        | std::io::ErrorKind::QuotaExceeded
                ) => {}
            Err(e) => return Err(Error::state(format_args!("write {}", path.display()), e)),
        }
        Ok(RunLock {
            _file: file,
            state_dir: state_dir.to_owned(),
        })
    }

    /// The state dir this lock guards.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_gets_the_pid_and_the_lock_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).unwrap_err();
        assert_eq!(
            err.kind(),
            &ErrorKind::Locked {
                pid: Some(std::process::id())
            }
        );
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }
}
