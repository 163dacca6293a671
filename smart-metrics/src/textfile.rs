//! The node_exporter textfile: [`Textfile`] rewrites it after every event of a run, through a
//! temporary file and a rename in the same directory, so the collector never reads half a file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use smart_core::engine::{Event, EventKind, ObserverError, ObserverPort};

use smart_core::records::{RunState, read_status};

use crate::collect::{audit_families, collect_with};
use crate::{Facts, Family, MetricsError, render};

/// Writes `text` to `path` atomically: a hidden `.NAME.PID-N.tmp` beside it (which the textfile
/// collector ignores: it reads `*.prom` only), fsynced, then renamed over `path`. The file is
/// readable by all (mode 0644), as node_exporter runs as another user.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), MetricsError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // One temporary name per write, so two writers (a run's observer and the once-a-minute
    // refresh) never write into the same temporary file.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(0o644))?;
        }
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        MetricsError::io("writing the metrics textfile", path, e)
    })
}

/// An engine observer that rewrites a textfile with the state dir's metrics whenever the run
/// changes something a metric shows (its start, a phase, a finished block, a decision, a
/// problem, its end), never on progress ticks. The audit chain is verified at the run's start
/// and end (verifying hashes the whole log, too much to repeat after every block of a run that
/// is measuring); in between its last result is reused. A failure never fails the run: the
/// first one is kept for [`Textfile::take_error`].
#[derive(Debug)]
pub struct Textfile {
    state_dir: PathBuf,
    path: PathBuf,
    facts: Facts,
    audit: Option<Vec<Family>>,
    error: Option<MetricsError>,
}

impl Textfile {
    /// Metrics of `state_dir` to `path`, with what the caller knows in `facts`.
    pub fn new(state_dir: &Path, path: &Path, facts: Facts) -> Textfile {
        Textfile {
            state_dir: state_dir.to_owned(),
            path: path.to_owned(),
            facts,
            audit: None,
            error: None,
        }
    }

    /// Collects (verifying the audit chain afresh) and writes the metrics now.
    pub fn write(&mut self, now: SystemTime) -> Result<(), MetricsError> {
        self.audit = None;
        self.write_cached(now)
    }

    /// Writes the metrics now unless a run is under way (status.json says running): then the
    /// run's observer keeps the file current, and nothing competes with its measurements. For a
    /// periodic refresh while `smart run` waits for work. Returns whether it wrote.
    pub fn refresh(&mut self, now: SystemTime) -> Result<bool, MetricsError> {
        let status = read_status(&self.state_dir).map_err(MetricsError::records)?;
        if status.is_some_and(|s| s.state == RunState::Running) {
            return Ok(false);
        }
        self.write(now).map(|()| true)
    }

    /// The first failure since the last call, if any.
    pub fn take_error(&mut self) -> Option<MetricsError> {
        self.error.take()
    }

    fn write_cached(&mut self, now: SystemTime) -> Result<(), MetricsError> {
        let audit = self
            .audit
            .get_or_insert_with(|| audit_families(&self.state_dir))
            .clone();
        let families = collect_with(&self.state_dir, self.facts, now, audit)?;
        write_atomically(&self.path, &render(&families))
    }
}

impl ObserverPort for Textfile {
    fn event(&mut self, event: &Event<'_>) -> Result<(), ObserverError> {
        let written = match event.kind {
            EventKind::RunStarted { .. } | EventKind::RunFinished(_) => {
                Some(self.write(SystemTime::now()))
            }
            EventKind::Phase(_)
            | EventKind::BlockFinished { .. }
            | EventKind::Problem(_)
            | EventKind::Decided(_) => Some(self.write_cached(SystemTime::now())),
            _ => None,
        };
        if let Some(Err(e)) = written
            && self.error.is_none()
        {
            self.error = Some(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_readably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smart.prom");
        write_atomically(&path, "a 1\n").unwrap();
        write_atomically(&path, "a 2\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "a 2\n");
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["smart.prom"], "no temporary file is left");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn the_refresh_leaves_a_running_run_to_its_observer() {
        let state = tempfile::tempdir().unwrap();
        let path = state.path().join("smart.prom");
        let mut textfile = Textfile::new(state.path(), &path, Facts::default());
        let status = |state: &str| {
            format!(
                "{{\"state\":\"{state}\",\"pid\":1,\"run_id\":\"r\",\"experiment\":\"e\",\"phase\":\"measuring\",\"variant\":null,\"variant_index\":null,\"variants\":1,\"arm\":null,\"block\":null,\"blocks\":null,\"elapsed_s\":0.0,\"left_s\":0.0,\"live\":null,\"end\":null,\"decisions\":[],\"updated\":\"2026-01-01T00:00:00Z\"}}"
            )
        };
        fs::write(state.path().join("status.json"), status("running")).unwrap();
        assert!(!textfile.refresh(SystemTime::now()).unwrap());
        assert!(!path.exists());
        fs::write(state.path().join("status.json"), status("finished")).unwrap();
        assert!(textfile.refresh(SystemTime::now()).unwrap());
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains("\nsmart_running 0\n")
        );
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent/smart.prom");
        let err = write_atomically(&path, "a 1\n").unwrap_err();
        assert_eq!(err.path(), path);
        assert!(
            err.to_string().contains("writing the metrics textfile"),
            "{err}"
        );
    }
}
