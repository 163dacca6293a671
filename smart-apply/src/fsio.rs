//! Durable file operations: atomic replace keeping mode and owner, durable removal, and reading a
//! file's state (bytes or absence) with its checksum.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use smart_core::atomic::{AtomicWrite, Sync};
use smart_core::audit::sha256_hex;

/// A file's content as found: its bytes, or `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The checksum of a file state: the SHA-256 of its bytes, or `None` for absence.
pub(crate) fn state_sha(content: Option<&[u8]>) -> Option<String> {
    content.map(sha256_hex)
}

/// Renders a file state's checksum for messages.
pub(crate) fn describe(sha: Option<&str>) -> String {
    match sha {
        Some(sha) => format!("sha256 {sha}"),
        None => "absent".to_owned(),
    }
}

/// The temp file an atomic write of `path` uses: a dot file in the same directory with a `.tmp`
/// suffix, so globs like `conf.d/*.conf` never include it.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.smart.tmp"))
}

/// Mode and owner to give a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ownership {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl Ownership {
    pub(crate) fn of(meta: &fs::Metadata) -> Ownership {
        Ownership {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }
}

/// Replaces `path` with `bytes` atomically: temp file in the same dir, fsync, rename, fsync the
/// dir. With `owner`, the new file gets that mode and owner; without, mode 0644 and ours.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], owner: Option<Ownership>) -> io::Result<()> {
    match owner {
        Some(own) => write_with(path, bytes, own.mode, Some((own.uid, own.gid))),
        None => write_with(path, bytes, 0o644, None),
    }
}

fn write_with(path: &Path, bytes: &[u8], mode: u32, owner: Option<(u32, u32)>) -> io::Result<()> {
    AtomicWrite::new(path)
        .temp(temp_path(path))
        .create_mode(0o600)
        .owner_and_mode(owner, mode)
        .sync(Sync::FileAndDir)
        .write(bytes)
}

/// Removes `path` (if present) and fsyncs its directory.
pub(crate) fn remove_durable(path: &Path) -> io::Result<()> {
    remove_if_exists(path)?;
    sync_dir(parent(path))
}

/// Removes `path`; absence is fine.
pub(crate) fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

pub(crate) use smart_core::atomic::sync_dir;

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes a state file (manifest, run record, backup) atomically, readable only by us (0600):
/// backups of config files may hold secrets.
pub(crate) fn write_state(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, bytes, 0o600, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::Permissions;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_replace_keeps_mode_and_owner_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.conf");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        let own = Ownership::of(&fs::metadata(&path).unwrap());
        write_atomic(&path, b"new", Some(own)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(Ownership::of(&fs::metadata(&path).unwrap()), own);
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn a_new_file_gets_0644() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.conf");
        write_atomic(&path, b"x", None).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o644);
        remove_durable(&path).unwrap();
        assert_eq!(read_optional(&path).unwrap(), None);
        remove_durable(&path).unwrap();
    }

    #[test]
    fn temp_files_are_hidden_from_globs() {
        assert_eq!(
            temp_path(Path::new("/etc/nginx/conf.d/a.conf")),
            Path::new("/etc/nginx/conf.d/.a.conf.smart.tmp")
        );
    }
}
