//! Atomic file replacement: a temp file in the same directory, then a rename, so a web server
//! serving the dashboard dir sees the old file or the new one, never half of one; and the removal
//! of the pages of pruned runs.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::DashboardError;

/// Tells apart the temp files of one process's renders.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `bytes` through `.<name>.<pid>.<n>.tmp` and a rename: two renders at
/// once (`smart dashboard` while a run renders) never write into each other's temp file.
pub(crate) fn atomic(path: &Path, bytes: &[u8]) -> Result<(), DashboardError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(name);
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.flush()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        DashboardError::io("writing", path, e)
    })
}

/// Like [`atomic`], but leaves the file alone when it already holds `bytes` (the assets rarely
/// change; this keeps their modification time, so browsers' caches stay valid).
pub(crate) fn atomic_if_changed(path: &Path, bytes: &[u8]) -> Result<(), DashboardError> {
    match fs::read(path) {
        Ok(current) if current == bytes => Ok(()),
        _ => atomic(path, bytes),
    }
}

/// Deletes every `<id>.html` in the run pages dir `dir` whose id is not in `keep` (the runs that
/// retention pruned); leaves other files, such as a concurrent render's temp files, alone.
pub(crate) fn remove_pages_except(dir: &Path, keep: &BTreeSet<&str>) -> Result<(), DashboardError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(DashboardError::io("reading", dir, e)),
    };
    for entry in entries {
        let path = entry
            .map_err(|e| DashboardError::io("reading", dir, e))?
            .path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(id) = name.strip_suffix(".html")
            && crate::load::safe_id(id)
            && !keep.contains(id)
        {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(DashboardError::io("deleting", &path, e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temp_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.html");
        atomic(&path, b"one").unwrap();
        atomic(&path, b"two").unwrap();
        atomic_if_changed(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["index.html"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("index.html");
        let err = atomic(&path, b"x").unwrap_err();
        assert_eq!(err.path(), path);
        assert!(err.to_string().contains("index.html"));
    }
}
