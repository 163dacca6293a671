//! Atomic file replacement: a temp file in the same directory, then a rename, so a web server
//! serving the dashboard dir sees the old file or the new one, never half of one; and the removal
//! of the pages of pruned runs.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;

use smart_core::atomic::AtomicWrite;

use crate::DashboardError;

/// Replaces `path` with `bytes` through `.<name>.<pid>.<n>.tmp` and a rename: two renders at
/// once (`smart dashboard` while a run renders) never write into each other's temp file.
pub(crate) fn atomic(path: &Path, bytes: &[u8]) -> Result<(), DashboardError> {
    AtomicWrite::new(path)
        .unique_temp()
        .write(bytes)
        .map_err(|e| DashboardError::io("writing", path, e))
}

/// Like [`atomic`], but leaves the file alone when it already holds `bytes` (the assets rarely
/// change; this keeps their modification time, so browsers' caches stay valid).
pub(crate) fn atomic_if_changed(path: &Path, bytes: &[u8]) -> Result<(), DashboardError> {
    match fs::read(path) {
        Ok(current) if current == bytes => Ok(()),
        _ => atomic(path, bytes),
    }
}

/// Deletes every `<id>.html` in the run pages dir `dir` whose id is shaped like a run id and is
/// not in `keep` (the runs that retention pruned); leaves other files alone: a concurrent
/// render's temp files, or pages of someone else's in a dir given with `smart dashboard --out`.
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
            && run_id_shaped(id)
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

/// Whether `id` starts like the ids `smart_core::records::new_run_id` makes:
/// `YYYYMMDDTHHMMSSZ-`.
fn run_id_shaped(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() > 17
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && b[16] == b'-'
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
    fn only_pages_named_like_runs_and_not_kept_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "20261203T084816Z-gzip-2811.html",
            "20261203T084832Z-noop-fdf8.html",
            "about.html",
            ".20261203T084816Z-gzip-2811.html.1.2.tmp",
            "20261203T084816Z-gzip-2811.css",
        ];
        for name in names {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        remove_pages_except(dir.path(), &BTreeSet::from(["20261203T084832Z-noop-fdf8"])).unwrap();
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".20261203T084816Z-gzip-2811.html.1.2.tmp",
                "20261203T084816Z-gzip-2811.css",
                "20261203T084832Z-noop-fdf8.html",
                "about.html"
            ]
        );
        assert!(remove_pages_except(&dir.path().join("none"), &BTreeSet::new()).is_ok());
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
