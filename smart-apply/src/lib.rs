//! Applies an experiment's config to a live server and always puts the original back: atomic
//! writes, backups with checksums, a fsynced journal and recovery after a crash.
//!
//! # How the engine drives it
//!
//! ```no_run
//! # async fn demo(apply: &smart_core::experiment::Apply, params: &smart_core::experiment::Params)
//! # -> Result<(), smart_apply::Error> {
//! use smart_apply::{Applier, Arm, Config, RunLock};
//!
//! let config = Config::new("/var/lib/smart".as_ref());
//! let lock = RunLock::acquire(&config.state_dir)?; // exit 4 when another run holds it
//! let applier = Applier::new(config);
//! applier.recover(&lock).await?; // put back whatever a crash left behind
//! let mut session = applier.begin(&lock, "gzip", "20261126-1", apply).await?;
//! session.switch_to(Arm::Variant { name: "level-6", params }).await?;
//! session.switch_to(Arm::Found).await?; // back to the configuration as found
//! session.switch_to(Arm::Variant { name: "level-6", params }).await?;
//! session.restore().await?; // original back and verified; the run goes on
//! session.close().await?; // verify once more and close; or keep() / revert()
//! # Ok(()) }
//! ```
//!
//! [`EngineApplier`] implements the engine's `ApplierPort` (`smart_core::engine`) over these
//! calls for one validated experiment; they map one to one:
//! `check_baseline` → [`Applier::begin`], `switch` → [`Session::switch_to`], `restore` →
//! [`Session::restore`], `close` → [`Session::close`], `keep` → [`Session::keep`];
//! [`Error::original_in_place`] fills its `original_live`.
//!
//! Every switch runs: render all files (nothing changes if one fails) → check that no file was
//! edited by someone else since smart last wrote it (if one was: stop, touch nothing,
//! [`ErrorKind::Conflict`]) → write each changed file atomically (temp file in the same dir,
//! fsync, rename, fsync of the dir; mode and owner of the original) → the command applier's
//! `set` → `validate` → `reload` → live check → health. A failure at any step restores the
//! original, reloads, checks and verifies it ([`ErrorKind::Reverted`]).
//!
//! # Semantics worth knowing
//!
//! - **Sound baseline.** [`Applier::begin`] runs `validate` and polls `health` on the
//!   configuration as found and refuses ([`ErrorKind::UnsoundBaseline`]) if either fails.
//! - **Live check on the configuration as found.** The found config need not send the
//!   live-check header. [`Applier::begin`] reads the header once from the found config (it is
//!   recorded in the run's manifest and the audit log); after switching to (or restoring) it, the
//!   check passes when the header says exactly that again (absent, if it was absent). A found
//!   config that sends the same value as a variant (trying `auto` where `auto` already runs) is
//!   therefore restored without a false alarm; the live check simply cannot tell those two apart,
//!   so checksums, the reload's exit and health confirm that switch. Runs recorded before smart
//!   observed the header fall back to "absent or none of the values this run's variants sent".
//!   The live check and health are polled until `health.timeout_s`, or 10 s when there is no
//!   `health`.
//! - **Revert** restores files from the backups, reverts the command (its `revert` argv with
//!   `{{ original }}`, or `set` with its one param replaced by the captured value), verifies
//!   every checksum (and re-reads the command's value) against the backup, then reloads, runs the
//!   live check and health. It does not run `validate`: the original is what was running before.
//! - **Recovery** treats a run as interrupted when its journal has an intent after its last
//!   `kept`/`closed` record (a torn last line counts as an intent without its done record). The
//!   service counts as running when its health URL (else its live-check URL) answers HTTP with any
//!   status; only then is it reloaded and checked, so recovery at boot, before the service
//!   starts, only restores files. With neither URL configured it is assumed to run.
//! - **Foreign edits.** Before every write or restore, each file's checksum must be the one smart
//!   last wrote (or the original): anything else is someone else's edit, which smart never
//!   overwrites. A file a human put back to its original counts as restored;
//!   [`Applier::recover_keeping_edits`] closes a run while keeping such an edit.
//! - **A full or read-only state disk never stops a restore.** Leaving the original, every
//!   journal record is written first (write-ahead) and a failure stops the switch. Putting the
//!   original back, a journal or audit write that fails is counted instead
//!   ([`Applier::state_gap`], a [`StateGap`] the caller shows) and the restore goes on: files,
//!   reload, live check, health. The next audit line that can be written is preceded by an
//!   `audit_gap` line; recovery (idempotent) closes a run whose journal stayed open. The live
//!   check after any switch needs 5 good answers in a row over fresh connections.
//! - **Read-only files**: a file with no write bit is treated as a human's "do not touch" and
//!   refused before anything changes (root would otherwise write it regardless).
//! - Commands run as argv vectors with a cleared environment (`PATH` from [`Config::path`],
//!   `LANG=C`), a timeout (`command_timeout_s`), and their exit code and trimmed stderr go to the
//!   audit log. File I/O is synchronous: config files are small and each write must be durable
//!   before the next step anyway.
//!
//! The state-dir layout is described in [`layout`].

mod command;
pub mod detect;
mod error;
mod fsio;
mod gap;
mod http;
pub mod journal;
pub mod layout;
mod lock;
mod port;
mod recover;
mod render;
mod run;
mod session;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use smart_core::audit::{AuditLog, Entry};
use smart_core::experiment::Params;
use smart_core::logs::LogRotation;

pub use command::DEFAULT_PATH;
pub use error::{Error, ErrorKind, Step};
pub use gap::{GAP_FILE, StateGap};
pub use journal::Record;
pub use lock::{LOCK_FILE, RunLock};
pub use port::EngineApplier;
pub use recover::{RunAction, RunOutcome, run_closed};
pub use session::Session;

/// The name of the configuration as found, in journals and audit lines.
pub use smart_core::BASELINE;

/// Which configuration a switch makes live.
#[derive(Debug, Clone, Copy)]
pub enum Arm<'a> {
    /// The configuration as found: the backed-up bytes (or absence) of every file and the
    /// command's captured value.
    Found,
    /// A rendered arm: a variant, or the baseline when the experiment gives baseline params
    /// (name `baseline`). `{{ variant }}` renders to `name`.
    Variant {
        /// The arm's name.
        name: &'a str,
        /// Its params.
        params: &'a Params,
    },
}

/// Told about every journal record right after it is durably written, e.g. to show the phase
/// of a run.
pub trait Observer: Send + Sync {
    /// `record` of run `run_id` of `experiment` is on disk.
    fn journalled(&self, experiment: &str, run_id: &str, record: &Record);
}

/// How the applier works on this machine.
#[derive(Clone)]
pub struct Config {
    /// Where locks, journals, backups and the audit log live.
    pub state_dir: PathBuf,
    /// The `PATH` commands run with (their environment is otherwise cleared but for `LANG=C`).
    pub path: String,
    /// Told about every journal record.
    pub observer: Option<Arc<dyn Observer>>,
    /// When the audit log rotates and how many old files it keeps (`[logs]` in `smart.toml`).
    pub audit_rotation: LogRotation,
}

impl Config {
    /// Defaults for `state_dir`: [`DEFAULT_PATH`], no observer, the default [`LogRotation`].
    pub fn new(state_dir: &Path) -> Config {
        Config {
            state_dir: state_dir.to_owned(),
            path: DEFAULT_PATH.to_owned(),
            observer: None,
            audit_rotation: LogRotation::default(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("state_dir", &self.state_dir)
            .field("path", &self.path)
            .field("observer", &self.observer.is_some())
            .field("audit_rotation", &self.audit_rotation)
            .finish()
    }
}

/// Applies, reverts and recovers runs in one state dir. Cheap to clone (the HTTP client is
/// shared).
#[derive(Debug, Clone)]
pub struct Applier {
    config: Config,
    audit: AuditLog,
    http: reqwest::Client,
    gaps: gap::Gaps,
}

impl Applier {
    /// An applier for `config.state_dir`.
    pub fn new(config: Config) -> Applier {
        Applier {
            audit: AuditLog::with_rotation(&config.state_dir, config.audit_rotation),
            http: http::client(),
            gaps: gap::Gaps::default(),
            config,
        }
    }

    /// The state-dir writes (journal records, audit lines) lost while restoring an original
    /// configuration because the state dir could not be written, if any: the restore went on
    /// regardless. Show it to the user; see [`StateGap`].
    pub fn state_gap(&self) -> Option<StateGap> {
        self.gaps.total()
    }

    /// The audit log it writes.
    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    fn check_lock(&self, lock: &RunLock) -> Result<(), Error> {
        if lock.state_dir() == self.config.state_dir {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::State,
                Step::Lock,
                format!(
                    "the lock is for {} but the applier works on {}",
                    lock.state_dir().display(),
                    self.config.state_dir.display()
                ),
            ))
        }
    }

    fn audit_entry(&self, entry: &Entry) -> Result<(), Error> {
        self.gaps.flush(&self.audit, &self.config.state_dir);
        self.audit.append(entry).map_err(|e| {
            let message = match &e {
                smart_core::audit::AuditError::Io { path, source } => format!(
                    "cannot write the audit log {}: {}",
                    path.display(),
                    error::describe_io(source)
                ),
                other => format!("cannot write the audit log: {other}"),
            };
            Error::new(ErrorKind::State, Step::Audit, message)
        })
    }

    /// During a restore, a failed state write is counted as a gap instead of stopping it.
    pub(crate) fn tolerate(
        &self,
        lost: gap::Lost,
        run_id: &str,
        result: Result<(), Error>,
    ) -> Result<(), Error> {
        match result {
            Err(e) if *e.kind() == ErrorKind::State => {
                self.gaps
                    .note(&self.config.state_dir, lost, run_id, e.message());
                Ok(())
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use smart_core::audit::{Action, Outcome};

    use super::*;

    #[test]
    fn the_audit_log_rotates_as_the_config_says() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path());
        config.audit_rotation = LogRotation::new(1024, 2);
        let applier = Applier::new(config);
        for n in 0..40 {
            let entry = Entry {
                time: SystemTime::now(),
                run_id: "r1".to_owned(),
                action: Action::Apply,
                outcome: Outcome::Ok,
                details: serde_json::json!({ "n": n }),
            };
            applier.audit_log().append(&entry).unwrap();
        }
        let summary = smart_core::audit::verify(dir.path()).unwrap();
        // Two rotated files kept, plus the live one.
        assert_eq!(summary.files.len(), 3, "{:?}", summary.files);
    }
}
