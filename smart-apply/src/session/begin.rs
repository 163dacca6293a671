//! Starting a run, before anything changes: [`Applier::begin`] checks the experiment against
//! this machine (`preflight`), validates and health-checks the configuration as found, creates
//! the run dir and its journal, and backs up every file and the command's value.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use smart_core::audit::{Action, Outcome, format_utc};
use smart_core::experiment::Apply;

use crate::error::{Error, ErrorKind, Step};
use crate::fsio::{self, Ownership};
use crate::http;
use crate::journal::{self, CloseReason, Journal, Record};
use crate::layout::{self, FileBackup, FoundLive, Manifest, RunDir, RunMeta};
use crate::lock::RunLock;
use crate::render;
use crate::run::{self, RunState};
use crate::{Applier, BASELINE};

use super::Session;

impl Applier {
    /// Starts a run: checks the experiment against this machine, validates and health-checks the
    /// configuration as found (refusing to experiment on a broken server), captures the command
    /// applier's value and backs up every file, all before anything changes.
    ///
    /// On error nothing was changed. Fails with [`ErrorKind::State`] if an earlier run is still
    /// open: call [`Applier::recover`] first.
    pub async fn begin(
        &self,
        lock: &RunLock,
        experiment: &str,
        run_id: &str,
        apply: &Apply,
    ) -> Result<Session, Error> {
        self.check_lock(lock)?;
        layout::check_component("experiment name", experiment)?;
        layout::check_component("run id", run_id)?;
        for dir in layout::all_runs(&self.config.state_dir)? {
            let replay = journal::read(&dir.journal())?;
            if replay.closed().is_none() {
                return Err(Error::new(
                    ErrorKind::State,
                    Step::Preflight,
                    format!(
                        "an earlier run ({}) was interrupted and is not recovered: run `smart recover` first",
                        dir.dir.display()
                    ),
                ));
            }
        }
        let found = self.preflight(apply)?;
        let dir = RunDir::new(&self.config.state_dir, experiment, run_id);
        if dir.dir.exists() {
            return Err(Error::new(
                ErrorKind::BadInput,
                Step::Preflight,
                format!(
                    "run id `{run_id}` was already used ({} exists)",
                    dir.dir.display()
                ),
            ));
        }
        let mut run = RunState {
            experiment: experiment.to_owned(),
            run_id: run_id.to_owned(),
            dir,
            apply: apply.clone(),
            manifest: Manifest {
                files: Vec::new(),
                command_original: None,
                found_live: None,
            },
            originals: Vec::new(),
            // Opened once the run dir exists; the baseline check journals nothing.
            journal: None,
            written: vec![Vec::new(); apply.files.len()],
            command_set: false,
            live_values: Vec::new(),
            restoring: false,
            journal_unavailable: None,
        };
        run.manifest.found_live = self.sound_baseline(&run).await?;
        self.create_run(&mut run)?;
        crate::gap::Gaps::reserve(&self.config.state_dir);
        match self.back_up(&mut run, found).await {
            Ok(()) => {}
            Err(e) => {
                run.record(
                    self,
                    Record::Closed {
                        how: CloseReason::NothingChanged,
                    },
                )?;
                return Err(e);
            }
        }
        let current = run
            .manifest
            .files
            .iter()
            .map(|f| f.sha256.clone())
            .collect();
        Ok(Session {
            applier: self.clone(),
            run,
            current,
            arm: BASELINE.to_owned(),
            original_live: true,
        })
    }

    /// Checks what can be checked before anything changes; returns each file's found content.
    fn preflight(&self, apply: &Apply) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let path = &self.config.path;
        let bad = |message: String| Error::new(ErrorKind::BadInput, Step::Preflight, message);
        for (field, argv) in [("validate", &apply.validate), ("reload", &apply.reload)] {
            if let Some(argv) = argv {
                crate::command::check_exists(field, argv, path)?;
            }
        }
        if let Some(spec) = &apply.command {
            crate::command::check_exists("command.read", &spec.read, path)?;
            crate::command::check_exists("command.set", &spec.set, path)?;
            if let Some(revert) = &spec.revert {
                crate::command::check_exists("command.revert", revert, path)?;
            }
            run::revert_argv(spec, "")?;
        }
        let mut found = Vec::with_capacity(apply.files.len());
        for (i, spec) in apply.files.iter().enumerate() {
            let field = format!("apply.files[{i}].path");
            let p = Path::new(&spec.path);
            if !p.is_absolute() {
                return Err(bad(format!(
                    "{field}: `{}` is not an absolute path",
                    spec.path
                )));
            }
            if spec.template.is_some() == spec.edit.is_some() {
                return Err(bad(format!(
                    "apply.files[{i}] ({}): give exactly one of `template` and `edit` (a `template_file` is read into `template` by validation)",
                    spec.path
                )));
            }
            if apply.files[..i].iter().any(|other| other.path == spec.path) {
                return Err(bad(format!("{field}: `{}` is listed twice", spec.path)));
            }
            let dir = p.parent().unwrap_or(Path::new("/"));
            if !dir.is_dir() {
                return Err(bad(format!(
                    "{field}: the directory {} does not exist: create it (smart writes files, not directories) or fix the path; nothing was changed",
                    dir.display()
                )));
            }
            if let Ok(meta) = fs::symlink_metadata(p) {
                if !meta.is_file() {
                    return Err(bad(format!(
                        "{field}: {} is not a regular file (a symlink or directory); point the experiment at the real file",
                        spec.path
                    )));
                }
                if meta.mode() & 0o222 == 0 {
                    return Err(bad(format!(
                        "{field}: {} is read-only (mode {:o}): smart does not change a file marked read-only; make it writable (chmod u+w) or leave it out of the experiment; nothing was changed",
                        spec.path,
                        meta.mode() & 0o7777
                    )));
                }
            }
            let content = fsio::read_optional(p).map_err(|e| {
                bad(format!(
                    "{field}: cannot read {}: {}; nothing was changed",
                    spec.path,
                    crate::error::describe_io(&e)
                ))
            })?;
            // Every write is a temp file beside the file, renamed over it: find out now, not
            // mid-run, whether smart may create one there (it may lack the privilege).
            let probe = fsio::temp_path(p);
            let created = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&probe)
                .and_then(|_| fs::remove_file(&probe));
            if let Err(e) = created
                && e.kind() != std::io::ErrorKind::AlreadyExists
            {
                return Err(bad(format!(
                    "{field}: smart cannot write in {}: {}; nothing was changed",
                    dir.display(),
                    crate::error::describe_io(&e)
                )));
            }
            // An edit must match exactly one line of the found file whatever the params: render
            // it once with placeholders left in to find out now rather than mid-run.
            if let Some(edit) = &spec.edit {
                let content = content.as_deref().ok_or_else(|| {
                    bad(format!(
                        "apply.files[{i}].edit: {} does not exist, so there is no line to edit",
                        spec.path
                    ))
                })?;
                render::edit_line(&format!("apply.files[{i}]"), &spec.path, edit, content, b"")
                    .map_err(|e| e.at(Step::Preflight))?;
            }
            found.push(content);
        }
        Ok(found)
    }

    /// Validates and health-checks the configuration as found.
    ///
    /// Also reads the live-check header of the configuration as found, so that a later restore
    /// is confirmed by exactly what the original sent (a variant may send the same value).
    async fn sound_baseline(&self, run: &RunState) -> Result<Option<FoundLive>, Error> {
        if let Some(argv) = &run.apply.validate {
            let out = run
                .run_audited(self, Step::Baseline, Action::Baseline, argv)
                .await?;
            if !out.success() {
                return Err(Error::new(
                    ErrorKind::UnsoundBaseline,
                    Step::Baseline,
                    format!(
                        "the configuration as found fails `{}`: {}; fix the server first, smart never experiments on a broken one; nothing was changed",
                        argv.join(" "),
                        out.describe(run.command_timeout())
                    ),
                ));
            }
        }
        if let Some(health) = &run.apply.health {
            let result = http::health(
                &self.http,
                &health.url,
                &health.ok_status,
                run.check_timeout(),
            )
            .await;
            let (outcome, detail) = match &result {
                Ok(status) => (Outcome::Ok, json!({"status": status})),
                Err(e) => (Outcome::Failed, json!({"error": e})),
            };
            run.audit(
                self,
                Action::Baseline,
                outcome,
                json!({"url": http::redact(&health.url), "result": detail}),
            )?;
            if let Err(e) = result {
                return Err(Error::new(
                    ErrorKind::UnsoundBaseline,
                    Step::Baseline,
                    format!(
                        "the server is not healthy before any change ({}: {e}); fix it first, smart never experiments on a broken server; nothing was changed",
                        http::redact(&health.url)
                    ),
                ));
            }
        }
        let Some(live) = &run.apply.live_check else {
            return Ok(None);
        };
        let result = http::header_value(&self.http, &live.url, &live.header).await;
        let (outcome, detail) = match &result {
            Ok(value) => (Outcome::Ok, json!({"header_value": value})),
            Err(e) => (Outcome::Failed, json!({"error": e})),
        };
        run.audit(
            self,
            Action::Baseline,
            outcome,
            json!({"url": http::redact(&live.url), "header": live.header, "result": detail}),
        )?;
        match result {
            Ok(value) => Ok(Some(FoundLive { value })),
            Err(e) => Err(Error::new(
                ErrorKind::UnsoundBaseline,
                Step::Baseline,
                format!(
                    "the live-check URL does not answer on the configuration as found ({}: {e}); fix it first, smart never experiments on a broken server; nothing was changed",
                    http::redact(&live.url)
                ),
            )),
        }
    }

    /// Creates the run dir with `run.json` and the journal's `begin` record.
    fn create_run(&self, run: &mut RunState) -> Result<(), Error> {
        let dir = &run.dir.dir;
        fs::create_dir_all(dir.join("backup"))
            .map_err(|e| Error::state(format_args!("create {}", dir.display()), e))?;
        for d in [
            dir.parent().and_then(Path::parent),
            dir.parent(),
            Some(dir.as_path()),
        ]
        .into_iter()
        .flatten()
        {
            fsio::sync_dir(d).map_err(|e| Error::state(format_args!("sync {}", d.display()), e))?;
        }
        let now = SystemTime::now();
        layout::write_json(
            &run.dir.meta(),
            &RunMeta {
                experiment: run.experiment.clone(),
                run_id: run.run_id.clone(),
                started: format_utc(now),
                started_ms: now
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis() as u64,
                apply: run.apply.clone(),
            },
        )?;
        run.journal = Some(Journal::create(&run.dir.journal())?);
        run.record(
            self,
            Record::Begin {
                experiment: run.experiment.clone(),
                run_id: run.run_id.clone(),
            },
        )
    }

    /// Captures the command's value and every file's original, then journals `backed_up`.
    async fn back_up(&self, run: &mut RunState, found: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        if let Some(spec) = run.apply.command.clone() {
            let out = run
                .run_audited(self, Step::Command, Action::Backup, &spec.read)
                .await?;
            if !out.success() {
                return Err(Error::new(
                    ErrorKind::BadInput,
                    Step::Command,
                    format!(
                        "apply.command.read `{}` failed: {}; nothing was changed",
                        spec.read.join(" "),
                        out.describe(run.command_timeout())
                    ),
                ));
            }
            run.manifest.command_original = Some(out.stdout);
        }
        for (i, (spec, content)) in run.apply.files.clone().iter().zip(found).enumerate() {
            let path = Path::new(&spec.path);
            // Read again right before saving: the backup must be what is on disk now.
            let content = match fsio::read_optional(path) {
                Ok(now) if now == content => now,
                Ok(_) => {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        Step::Backup,
                        format!(
                            "{} changed while smart was preparing; nothing was changed, try again",
                            spec.path
                        ),
                    ));
                }
                Err(e) => return Err(Error::state(format_args!("read {}", spec.path), e)),
            };
            let own = match &content {
                Some(_) => {
                    Some(Ownership::of(&fs::metadata(path).map_err(|e| {
                        Error::state(format_args!("stat {}", spec.path), e)
                    })?))
                }
                None => None,
            };
            if let Some(bytes) = &content {
                let backup = run.dir.backup(i);
                fsio::write_state(&backup, bytes).map_err(|e| {
                    Error::state(format_args!("write backup {}", backup.display()), e)
                })?;
            }
            let sha = fsio::state_sha(content.as_deref());
            let backup = FileBackup {
                path: path.to_owned(),
                existed: content.is_some(),
                sha256: sha,
                len: content.as_ref().map_or(0, |c| c.len() as u64),
                mode: own.map_or(0o644, |o| o.mode),
                uid: own.map_or(0, |o| o.uid),
                gid: own.map_or(0, |o| o.gid),
            };
            run.audit(
                self,
                Action::Backup,
                Outcome::Ok,
                json!({
                    "path": backup.path,
                    "existed": backup.existed,
                    "sha256": backup.sha256,
                    "len": backup.len,
                    "mode": format!("{:o}", backup.mode),
                }),
            )?;
            run.manifest.files.push(backup);
            run.originals.push(content);
        }
        layout::write_json(&run.dir.manifest(), &run.manifest)?;
        let command_original = run.manifest.command_original.clone();
        run.record(self, Record::BackedUp { command_original })
    }
}
