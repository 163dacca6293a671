//! Where a run's state lives under the state dir, and the files that describe it.
//!
//! ```text
//! STATE_DIR/
//!   lock                              the run lock (holder's PID inside)
//!   audit.jsonl, audit.head           the audit log (smart_core::audit)
//!   apply/EXPERIMENT/RUN_ID/
//!     run.json                        experiment, run id, start time, the `apply` section as run
//!     journal.jsonl                   intent/done records, fsynced
//!     manifest.json                   per file: path, existed, sha256, length, mode, uid, gid;
//!                                     the command applier's captured value
//!     backup/N                        the original bytes of file N (absent if it did not exist)
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use smart_core::experiment::Apply;

use crate::error::{Error, ErrorKind, Step};
use crate::fsio::{self, Ownership};

/// The dir under the state dir that holds every run's apply state.
pub const APPLY_DIR: &str = "apply";

/// What `run.json` holds: enough to revert or recover the run without the experiment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunMeta {
    pub(crate) experiment: String,
    pub(crate) run_id: String,
    /// RFC 3339 UTC.
    pub(crate) started: String,
    /// Milliseconds since the epoch, to order runs.
    pub(crate) started_ms: u64,
    pub(crate) apply: Apply,
}

/// One file's original, as saved before the first change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileBackup {
    pub(crate) path: PathBuf,
    pub(crate) existed: bool,
    pub(crate) sha256: Option<String>,
    pub(crate) len: u64,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl FileBackup {
    pub(crate) fn ownership(&self) -> Option<Ownership> {
        self.existed.then_some(Ownership {
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
        })
    }
}

/// What `manifest.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) files: Vec<FileBackup>,
    pub(crate) command_original: Option<String>,
    /// What the live-check header said on the configuration as found, observed before the first
    /// change; absent in manifests written before smart recorded it (and without a live check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) found_live: Option<FoundLive>,
}

/// The live-check header as the configuration as found sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FoundLive {
    /// The header's value; `None` when the found configuration did not send it.
    pub(crate) value: Option<String>,
}

/// The paths of one run's state.
#[derive(Debug, Clone)]
pub(crate) struct RunDir {
    pub(crate) dir: PathBuf,
}

impl RunDir {
    pub(crate) fn new(state_dir: &Path, experiment: &str, run_id: &str) -> RunDir {
        RunDir {
            dir: state_dir.join(APPLY_DIR).join(experiment).join(run_id),
        }
    }
    pub(crate) fn meta(&self) -> PathBuf {
        self.dir.join("run.json")
    }
    pub(crate) fn journal(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }
    pub(crate) fn manifest(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }
    pub(crate) fn backup(&self, index: usize) -> PathBuf {
        self.dir.join("backup").join(index.to_string())
    }

    pub(crate) fn read_meta(&self) -> Result<RunMeta, Error> {
        read_json(&self.meta())
    }

    pub(crate) fn read_manifest(&self) -> Result<Manifest, Error> {
        read_json(&self.manifest())
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let bytes =
        fs::read(path).map_err(|e| Error::state(format_args!("read {}", path.display()), e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::new(
            ErrorKind::State,
            Step::State,
            format!("{} is not valid ({e}): was it edited?", path.display()),
        )
    })
}

/// Writes `value` as JSON to `path`, atomically and durably.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    let bytes = serde_json::to_vec_pretty(value).expect("state always serializes");
    fsio::write_state(path, &bytes)
        .map_err(|e| Error::state(format_args!("write {}", path.display()), e))
}

/// Every run dir that has a journal (a run dir without one never changed anything).
pub(crate) fn all_runs(state_dir: &Path) -> Result<Vec<RunDir>, Error> {
    let root = state_dir.join(APPLY_DIR);
    let mut runs = Vec::new();
    for experiment in read_dirs(&root)? {
        for run in read_dirs(&experiment)? {
            let run = RunDir { dir: run };
            if run.journal().is_file() {
                runs.push(run);
            }
        }
    }
    runs.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(runs)
}

fn read_dirs(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::state(format_args!("list {}", dir.display()), e)),
    }
}

/// Checks that `value` is safe as one path component: `[A-Za-z0-9_.-]`, not starting with a dot.
pub(crate) fn check_component(what: &str, value: &str) -> Result<(), Error> {
    let ok = !value.is_empty()
        && !value.starts_with('.')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::BadInput,
            Step::Preflight,
            format!(
                "{what} `{value}` cannot name a state dir: use letters, digits, `_`, `-` and `.`"
            ),
        ))
    }
}
