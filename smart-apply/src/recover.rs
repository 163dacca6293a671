//! Recovery of interrupted runs, and `revert` of a finished (or kept) run on demand.

use std::path::{Path, PathBuf};

use serde_json::json;
use smart_core::audit::{Action, Outcome};

use crate::Applier;
use crate::error::{Error, ErrorKind, Step};
use crate::gap::Lost;
use crate::http;
use crate::journal::{self, CloseReason, Record};
use crate::layout::{self, RunDir};
use crate::lock::RunLock;
use crate::run::{self, Edits, RunState};

/// What recovery or a revert did to one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The experiment's name.
    pub experiment: String,
    /// The run's id.
    pub run_id: String,
    /// What was done.
    pub action: RunAction,
    /// Files left with someone else's edit (only with [`Applier::recover_keeping_edits`]).
    pub kept_edits: Vec<PathBuf>,
}

/// What was done to a run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunAction {
    /// The run had changed things; the original was restored and verified.
    Restored {
        /// Whether the service was reloaded and checked (not when it was not running).
        reloaded: bool,
    },
    /// The run had stopped before changing anything; its journal is now closed.
    NothingChanged,
    /// The run was already closed on its original: nothing to do.
    AlreadyReverted,
}

impl Applier {
    /// Finds every interrupted run (a journal not closed by `kept` or `closed`) and puts its
    /// original back: restores the files (never over someone else's edit), reverts the command,
    /// verifies the checksums, and — only when the service is running — reloads and checks it.
    ///
    /// Idempotent: running it twice, or after a crash during it, is safe. Runs closed by a keep
    /// are left alone.
    pub async fn recover(&self, lock: &RunLock) -> Result<Vec<RunOutcome>, Error> {
        self.recover_with(lock, Edits::Refuse).await
    }

    /// Like [`Applier::recover`], but a file someone else changed since smart wrote it is left
    /// as it is (and the audit log says so) instead of stopping recovery: for when a human fixed
    /// things by hand and wants to keep that. Everything else is restored and verified.
    pub async fn recover_keeping_edits(&self, lock: &RunLock) -> Result<Vec<RunOutcome>, Error> {
        self.recover_with(lock, Edits::Keep).await
    }

    async fn recover_with(&self, lock: &RunLock, edits: Edits) -> Result<Vec<RunOutcome>, Error> {
        self.check_lock(lock)?;
        // A gap an earlier process could not record (its disk was full) is recorded now.
        self.gaps.flush(&self.audit, &self.config.state_dir);
        let mut done = Vec::new();
        for dir in layout::all_runs(&self.config.state_dir)? {
            let replay = journal::read(&dir.journal())?;
            if replay.closed().is_some() {
                continue;
            }
            done.push(
                self.close_run(dir, &replay, CloseReason::Recovered, edits)
                    .await?,
            );
        }
        Ok(done)
    }

    /// Restores the original config of the last run of `experiment` (or of any experiment)
    /// that is still in effect: the newest run that was kept (or interrupted), skipping runs
    /// that already ended on their original. Like an undo stack: with two kept runs, the first
    /// call undoes the newer one and the second the older. With nothing left to undo it reports
    /// [`RunAction::AlreadyReverted`] for the newest run.
    pub async fn revert_last(
        &self,
        lock: &RunLock,
        experiment: Option<&str>,
    ) -> Result<RunOutcome, Error> {
        self.check_lock(lock)?;
        if let Some(name) = experiment {
            layout::check_component("experiment name", name)?;
        }
        let mut runs = Vec::new();
        for dir in layout::all_runs(&self.config.state_dir)? {
            let meta = dir.read_meta()?;
            if experiment.is_none_or(|name| name == meta.experiment) {
                runs.push((meta.started_ms, meta.experiment, meta.run_id, dir));
            }
        }
        runs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.3.dir.cmp(&a.3.dir)));
        let Some((_, newest_experiment, newest_run, _)) = runs.first().cloned() else {
            return Err(Error::new(
                ErrorKind::NotFound,
                Step::Revert,
                match experiment {
                    Some(name) => format!("experiment `{name}` has no run to revert"),
                    None => "there is no run to revert".to_owned(),
                },
            ));
        };
        for (_, _, _, dir) in runs {
            let replay = journal::read(&dir.journal())?;
            if !matches!(replay.closed(), Some(Record::Closed { .. })) {
                return self
                    .close_run(dir, &replay, CloseReason::Reverted, Edits::Refuse)
                    .await;
            }
        }
        Ok(RunOutcome {
            experiment: newest_experiment,
            run_id: newest_run,
            action: RunAction::AlreadyReverted,
            kept_edits: Vec::new(),
        })
    }

    /// Restores the original config of run `run_id` of `experiment` if that run is still in
    /// effect (kept, or interrupted); a run that already ended on its original, or never
    /// changed anything, is left alone ([`RunAction::AlreadyReverted`]). A search undoes its own
    /// kept candidates with this, newest first, without reaching runs from before it.
    pub async fn revert_run(
        &self,
        lock: &RunLock,
        experiment: &str,
        run_id: &str,
    ) -> Result<RunOutcome, Error> {
        self.check_lock(lock)?;
        layout::check_component("experiment name", experiment)?;
        layout::check_component("run id", run_id)?;
        let dir = RunDir::new(&self.config.state_dir, experiment, run_id);
        if dir.journal().is_file() {
            let replay = journal::read(&dir.journal())?;
            if !matches!(replay.closed(), Some(Record::Closed { .. })) {
                return self
                    .close_run(dir, &replay, CloseReason::Reverted, Edits::Refuse)
                    .await;
            }
        }
        Ok(RunOutcome {
            experiment: experiment.to_owned(),
            run_id: run_id.to_owned(),
            action: RunAction::AlreadyReverted,
            kept_edits: Vec::new(),
        })
    }

    async fn close_run(
        &self,
        dir: RunDir,
        replay: &journal::Replay,
        how: CloseReason,
        edits: Edits,
    ) -> Result<RunOutcome, Error> {
        let action = if how == CloseReason::Recovered {
            Action::Recover
        } else {
            Action::Revert
        };
        if !replay.backed_up() {
            // Nothing changes before the backups are complete.
            let meta = dir.read_meta()?;
            // Nothing to restore; on a full or read-only state disk the close is a gap, not a
            // failure.
            let closed = journal::Journal::reopen(&dir.journal(), replay).and_then(|mut j| {
                j.append(&Record::Closed {
                    how: CloseReason::NothingChanged,
                })
            });
            self.tolerate(Lost::Journal, &meta.run_id, closed)?;
            let audited = self.audit_entry(&smart_core::audit::Entry {
                time: std::time::SystemTime::now(),
                run_id: meta.run_id.clone(),
                action,
                outcome: Outcome::Ok,
                details: json!({"experiment": meta.experiment, "result": "the run stopped before changing anything"}),
            });
            self.tolerate(Lost::Audit, &meta.run_id, audited)?;
            return Ok(RunOutcome {
                experiment: meta.experiment,
                run_id: meta.run_id,
                action: RunAction::NothingChanged,
                kept_edits: Vec::new(),
            });
        }
        let mut run = run::load(dir, replay)?;
        let running = self.service_running(&run).await;
        let interrupted = replay.pending().map(|op| format!("{op:?}"));
        let result = run.restore_original(self, running, edits).await;
        let kept_edits: Vec<PathBuf> = match &result {
            Ok(kept) => kept
                .iter()
                .map(|&i| run.manifest.files[i].path.clone())
                .collect(),
            Err(_) => Vec::new(),
        };
        let detail = match &result {
            Ok(_) => {
                json!({"reloaded": running, "interrupted_during": interrupted, "kept_edits": kept_edits})
            }
            Err(e) => {
                json!({"reloaded": running, "interrupted_during": interrupted, "error": e.to_string()})
            }
        };
        run.audit(
            self,
            action,
            if result.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Failed
            },
            detail,
        )?;
        result?;
        run.record(self, Record::Closed { how })?;
        Ok(RunOutcome {
            experiment: run.experiment,
            run_id: run.run_id,
            action: RunAction::Restored { reloaded: running },
            kept_edits,
        })
    }

    /// Whether the service runs: its health URL (else its live-check URL) answers HTTP at all.
    /// With neither configured, smart cannot tell and assumes it runs.
    async fn service_running(&self, run: &RunState) -> bool {
        let url = run.apply.health.as_ref().map(|h| h.url.as_str()).or(run
            .apply
            .live_check
            .as_ref()
            .map(|l| l.url.as_str()));
        match url {
            Some(url) => http::answers(&self.http, url).await,
            None => true,
        }
    }
}

/// Whether run `run_id` of `experiment` is closed in its journal (reverted, kept, or recovered
/// after a crash): `None` when it has no journal, i.e. it stopped before changing anything.
/// `smart status` asks this so that it stops telling the user to run `smart recover` once that
/// is done.
pub fn run_closed(state_dir: &Path, experiment: &str, run_id: &str) -> Result<Option<bool>, Error> {
    layout::check_component("experiment name", experiment)?;
    layout::check_component("run id", run_id)?;
    let dir = RunDir::new(state_dir, experiment, run_id);
    if !dir.journal().is_file() {
        return Ok(None);
    }
    Ok(Some(journal::read(&dir.journal())?.closed().is_some()))
}
