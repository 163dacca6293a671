//! One run's state, shared by a live [`crate::Session`] and by recovery, and the one way back to
//! the original: check for foreign edits, restore, revert the command, verify, reload, check.
//!
//! This file holds the state, its journal and audit, and loading it back; the way back to the
//! original is in [`restore`], the health and live checks in [`check`].

mod check;
mod restore;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::json;
use smart_core::audit::{Action, Entry, Outcome};
use smart_core::experiment::Apply;
use smart_core::template;

use crate::Applier;
use crate::command;
use crate::error::{Error, ErrorKind, Step};
use crate::fsio;
use crate::gap::Lost;
use crate::journal::{Journal, Op, Record, Replay};
use crate::layout::{Manifest, RunDir};

/// The live check and health deadline when `health` gives none.
pub(crate) const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a restore does with a file someone else changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edits {
    /// Stop and touch nothing.
    Refuse,
    /// Leave it as it is and restore everything else.
    Keep,
}

/// One run's state in memory.
pub(crate) struct RunState {
    pub(crate) experiment: String,
    pub(crate) run_id: String,
    pub(crate) dir: RunDir,
    pub(crate) apply: Apply,
    pub(crate) manifest: Manifest,
    /// The original bytes of each file (`None`: it did not exist).
    pub(crate) originals: Vec<Option<Vec<u8>>>,
    /// `None` only before `begin` has created the run dir.
    pub(crate) journal: Option<Journal>,
    /// Per file, every checksum smart may have written in this run.
    pub(crate) written: Vec<Vec<Option<String>>>,
    /// Whether the command applier's `set` may have run since the last revert.
    pub(crate) command_set: bool,
    /// Every live-check value an arm of this run has sent (what the original must not send).
    pub(crate) live_values: Vec<String>,
    /// Whether the original configuration is being (or has been) put back: from then until the
    /// next switch, a journal or audit write that fails is counted as a gap (see
    /// [`crate::StateGap`]) instead of stopping the restore.
    pub(crate) restoring: bool,
    /// Why the journal could not be opened for appending (a read-only state disk), if so.
    pub(crate) journal_unavailable: Option<String>,
}

impl RunState {
    /// Appends a journal record durably and tells the observer.
    ///
    /// While restoring, a record that cannot be written is counted as a gap and the restore
    /// goes on: recovery then finds the run still open and (idempotently) restores it again.
    pub(crate) fn record(&mut self, applier: &Applier, record: Record) -> Result<(), Error> {
        let result = self.journal_mut().and_then(|j| j.append(&record));
        if self.restoring && result.is_err() {
            return applier.tolerate(Lost::Journal, &self.run_id, result);
        }
        result?;
        if let Some(observer) = &applier.config.observer {
            observer.journalled(&self.experiment, &self.run_id, &record);
        }
        Ok(())
    }

    /// Journals an intent and returns its id.
    pub(crate) fn intent(&mut self, applier: &Applier, op: Op) -> Result<u64, Error> {
        // Without a journal (a read-only state disk during a restore) there is nothing for an
        // id to refer to; `record` then counts the lost intent, or fails outside a restore.
        let id = self.journal.as_mut().map_or(0, Journal::next_id);
        self.record(applier, Record::Intent { id, op })?;
        Ok(id)
    }

    fn journal_mut(&mut self) -> Result<&mut Journal, Error> {
        let why = self.journal_unavailable.clone();
        self.journal.as_mut().ok_or_else(|| {
            Error::new(
                ErrorKind::State,
                Step::State,
                why.unwrap_or_else(|| "the run's journal is not open yet".to_owned()),
            )
        })
    }

    /// Writes one audit line for this run.
    pub(crate) fn audit(
        &self,
        applier: &Applier,
        action: Action,
        outcome: Outcome,
        mut details: serde_json::Value,
    ) -> Result<(), Error> {
        if let Some(map) = details.as_object_mut() {
            map.insert("experiment".to_owned(), json!(self.experiment));
        }
        let result = applier.audit_entry(&Entry {
            time: SystemTime::now(),
            run_id: self.run_id.clone(),
            action,
            outcome,
            details,
        });
        if self.restoring {
            applier.tolerate(Lost::Audit, &self.run_id, result)
        } else {
            result
        }
    }

    pub(crate) fn command_timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.apply.command_timeout_s)
            .ok()
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(30))
    }

    pub(crate) fn check_timeout(&self) -> Duration {
        self.apply
            .health
            .as_ref()
            .and_then(|h| Duration::try_from_secs_f64(h.timeout_s).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_CHECK_TIMEOUT)
    }

    /// Runs one of the apply section's commands and audits it.
    pub(crate) async fn run_audited(
        &self,
        applier: &Applier,
        step: Step,
        action: Action,
        argv: &[String],
    ) -> Result<command::Outcome, Error> {
        let timeout = self.command_timeout();
        let result = command::run(step, argv, timeout, &applier.config.path).await;
        match &result {
            Ok(out) => {
                let outcome = if out.success() {
                    Outcome::Ok
                } else {
                    Outcome::Failed
                };
                self.audit(applier, action, outcome, out.details(argv))?;
            }
            Err(e) => self.audit(
                applier,
                action,
                Outcome::Failed,
                json!({"argv": argv, "error": e.to_string()}),
            )?,
        }
        result
    }

    /// The argv that puts the command applier's captured value back.
    pub(crate) fn command_revert_argv(&self) -> Result<Option<Vec<String>>, Error> {
        let (Some(spec), Some(original)) = (&self.apply.command, &self.manifest.command_original)
        else {
            return Ok(None);
        };
        revert_argv(spec, original).map(Some)
    }
}

/// Renders the command applier's revert argv for `original`.
pub(crate) fn revert_argv(
    spec: &smart_core::experiment::CommandSpec,
    original: &str,
) -> Result<Vec<String>, Error> {
    let bad = |message: String| Error::new(ErrorKind::BadInput, Step::Preflight, message);
    let (argv, name) = match &spec.revert {
        Some(revert) => (revert, "original".to_owned()),
        None => {
            let mut names: Vec<String> = Vec::new();
            for arg in &spec.set {
                let found = template::placeholders(arg)
                    .map_err(|e| bad(format!("apply.command.set: {e}")))?;
                for p in found {
                    if p.name != template::VARIANT_PLACEHOLDER && !names.contains(&p.name) {
                        names.push(p.name);
                    }
                }
            }
            if names.len() != 1 {
                return Err(bad(format!(
                    "apply.command: `set` uses {} params, so smart cannot tell which one to put back: give `revert` with `{{{{ original }}}}`, e.g. [\"sysctl\", \"-w\", \"net.core.somaxconn={{{{ original }}}}\"]",
                    names.len()
                )));
            }
            (&spec.set, names.remove(0))
        }
    };
    let values = BTreeMap::from([
        (name, original.to_owned()),
        (
            template::VARIANT_PLACEHOLDER.to_owned(),
            "baseline".to_owned(),
        ),
    ]);
    argv.iter()
        .map(|arg| {
            template::render(arg, &values)
                .map_err(|e| bad(format!("apply.command revert argv `{arg}`: {e}")))
        })
        .collect()
}

/// The checksum of what is on disk at `path` now.
pub(crate) fn read_sha(path: &Path, step: Step) -> Result<Option<String>, Error> {
    fsio::read_optional(path)
        .map(|b| fsio::state_sha(b.as_deref()))
        .map_err(|e| {
            Error::new(
                ErrorKind::State,
                step,
                format!("cannot read {}: {e}", path.display()),
            )
        })
}

pub(crate) fn revert_failed(step: Step, message: String) -> Error {
    Error::new(
        ErrorKind::RevertFailed,
        step,
        format!("REVERT FAILED, the server may not be on its original config: {message}"),
    )
}

/// Rebuilds a run's in-memory state from its dir (used by recovery and `revert`).
pub(crate) fn load(dir: RunDir, replay: &Replay) -> Result<RunState, Error> {
    let meta = dir.read_meta()?;
    let manifest = dir.read_manifest()?;
    let mut originals = Vec::with_capacity(manifest.files.len());
    for (i, file) in manifest.files.iter().enumerate() {
        if !file.existed {
            originals.push(None);
            continue;
        }
        let path = dir.backup(i);
        let bytes = std::fs::read(&path).map_err(|e| {
            revert_failed(
                Step::Backup,
                format!("cannot read backup {}: {e}", path.display()),
            )
        })?;
        let sha = fsio::state_sha(Some(&bytes));
        if sha != file.sha256 {
            return Err(revert_failed(
                Step::Backup,
                format!(
                    "backup {} of {} is damaged ({} but the manifest says {}): smart will not restore from it",
                    path.display(),
                    file.path.display(),
                    fsio::describe(sha.as_deref()),
                    fsio::describe(file.sha256.as_deref())
                ),
            ));
        }
        originals.push(Some(bytes));
    }
    // A read-only state disk cannot take the journal's records, but the backups can still be
    // read and the original restored: the lost records are counted as a gap.
    let (journal, journal_unavailable) = match Journal::reopen(&dir.journal(), replay) {
        Ok(journal) => (Some(journal), None),
        Err(e) => (None, Some(e.message().to_owned())),
    };
    let written = (0..manifest.files.len())
        .map(|i| replay.written(i))
        .collect();
    let mut live_values: Vec<String> = Vec::new();
    for record in &replay.records {
        if let Record::Switch {
            live_value: Some(v),
            ..
        } = record
            && !live_values.contains(v)
        {
            live_values.push(v.clone());
        }
    }
    Ok(RunState {
        experiment: meta.experiment,
        run_id: meta.run_id,
        dir,
        apply: meta.apply,
        manifest,
        originals,
        journal,
        written,
        command_set: replay.command_set(),
        live_values,
        restoring: false,
        journal_unavailable,
    })
}
