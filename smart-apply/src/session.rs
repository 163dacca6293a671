//! A live run: [`Applier::begin`] checks the baseline and saves the originals, then
//! [`Session::switch_to`] moves between arms and [`Session::revert`] or [`Session::keep`] ends it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use smart_core::audit::{Action, Outcome, format_utc};
use smart_core::experiment::Apply;
use smart_core::template;

use crate::error::{Error, ErrorKind, Step};
use crate::fsio::{self, Ownership};
use crate::http::{self, Expect};
use crate::journal::{self, CloseReason, Journal, Op, Record};
use crate::layout::{self, FileBackup, FoundLive, Manifest, RunDir, RunMeta};
use crate::lock::RunLock;
use crate::render;
use crate::run::{self, Edits, RunState};
use crate::{Applier, Arm, BASELINE};

/// One run of one experiment on this server, between [`Applier::begin`] and
/// [`Session::revert`] or [`Session::keep`].
///
/// Dropping a session without either leaves its journal open, so the next `smart recover` (or
/// the start of the next run) puts the original back.
pub struct Session {
    applier: Applier,
    run: RunState,
    /// The checksum smart expects on disk for each file now.
    current: Vec<Option<String>>,
    /// The arm serving now.
    arm: String,
    /// Whether the configuration as found is what serves now.
    original_live: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("experiment", &self.run.experiment)
            .field("run_id", &self.run.run_id)
            .field("arm", &self.arm)
            .field("original_live", &self.original_live)
            .finish_non_exhaustive()
    }
}

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

impl Session {
    /// The experiment's name.
    pub fn experiment(&self) -> &str {
        &self.run.experiment
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run.run_id
    }

    /// The arm serving now (`baseline` for the configuration as found).
    pub fn arm(&self) -> &str {
        &self.arm
    }

    /// Whether the configuration as found is what serves now.
    pub fn original_live(&self) -> bool {
        self.original_live
    }

    /// Makes `arm` live: writes its files, sets its command value, validates, reloads, confirms
    /// with the live check that it serves, and waits for health.
    ///
    /// Errors leave the server on the original configuration: a render or preflight problem
    /// before anything changed ([`ErrorKind::BadInput`]), or a failed step after which the
    /// original was restored, reloaded and verified ([`ErrorKind::Reverted`]). The exceptions
    /// are [`ErrorKind::Conflict`] (someone else edited a file: nothing was touched) and
    /// [`ErrorKind::RevertFailed`]. The session stays usable after `Reverted`.
    ///
    /// Not cancel-safe: if the future is dropped mid-switch (e.g. on SIGTERM), call
    /// [`Session::revert`], which works from the journal's record of everything smart may have
    /// written, or leave the run to `smart recover`.
    pub async fn switch_to(&mut self, arm: Arm<'_>) -> Result<(), Error> {
        let applier = &self.applier.clone();
        let target_name = match arm {
            Arm::Found => BASELINE,
            Arm::Variant { name, .. } => name,
        };
        let leaving = format!("switching from `{}` to `{target_name}`", self.arm);
        let (name, targets, live_value) = match self.render(&arm) {
            Ok(rendered) => rendered,
            // Nothing changed: if the original is live, it stays; else put it back, so that an
            // error always leaves the server on the original (or says it could not).
            Err(e) if self.original_live => return Err(e),
            Err(e) => return Err(self.fail(e, &leaving).await),
        };
        self.check_untouched()?;
        // Leaving the original: from here every state write must succeed (write-ahead).
        self.run.restoring = false;
        self.run.record(
            applier,
            Record::Switch {
                arm: name.clone(),
                live_value: live_value.clone(),
            },
        )?;
        if let Some(v) = &live_value
            && !self.run.live_values.contains(v)
        {
            self.run.live_values.push(v.clone());
        }
        match self.apply_arm(&arm, &name, targets, live_value).await {
            Ok(()) => {
                self.arm = name.clone();
                self.original_live = matches!(arm, Arm::Found);
                self.run.record(applier, Record::Live { arm: name })
            }
            Err(failure) => Err(self.fail(failure, &leaving).await),
        }
    }

    /// After `failure`, restores the original and says how that went.
    async fn fail(&mut self, failure: Error, leaving: &str) -> Error {
        let applier = &self.applier.clone();
        match self
            .run
            .restore_original(applier, true, Edits::Refuse)
            .await
        {
            Ok(_) => {
                self.mark_original_live();
                if let Err(e) = self.run.record(
                    applier,
                    Record::Live {
                        arm: BASELINE.to_owned(),
                    },
                ) {
                    return e;
                }
                Error::new(
                    ErrorKind::Reverted,
                    failure.step(),
                    format!(
                        "{leaving}: {}; the original configuration was restored, reloaded and verified",
                        failure.message()
                    ),
                )
                .caused_by(&failure)
            }
            Err(revert) => Error::new(
                revert.kind().clone(),
                failure.step(),
                format!(
                    "{leaving}: {}; then restoring the original: {revert}",
                    failure.message()
                ),
            )
            .caused_by(&failure),
        }
    }

    fn mark_original_live(&mut self) {
        self.current = self
            .run
            .manifest
            .files
            .iter()
            .map(|f| f.sha256.clone())
            .collect();
        self.arm = BASELINE.to_owned();
        self.original_live = true;
    }

    /// Renders the arm: its name, each file's target content, and its live-check value.
    #[expect(clippy::type_complexity, reason = "a private triple used once")]
    fn render(
        &self,
        arm: &Arm<'_>,
    ) -> Result<(String, Vec<Option<Vec<u8>>>, Option<String>), Error> {
        match arm {
            Arm::Found => Ok((BASELINE.to_owned(), self.run.originals.clone(), None)),
            Arm::Variant { name, params } => {
                let values = render::values(name, params);
                let mut targets = Vec::with_capacity(self.run.apply.files.len());
                for (i, spec) in self.run.apply.files.iter().enumerate() {
                    let found = self.run.originals[i].as_deref();
                    targets.push(Some(render::file(i, spec, found, &values)?));
                }
                let live = match &self.run.apply.live_check {
                    Some(live) => Some(template::render(&live.equals, &values).map_err(|e| {
                        Error::new(
                            ErrorKind::BadInput,
                            Step::Render,
                            format!("apply.live_check.equals: {e}"),
                        )
                    })?),
                    None => None,
                };
                Ok(((*name).to_owned(), targets, live))
            }
        }
    }

    /// Fails with [`ErrorKind::Conflict`], touching nothing, if any file is not what smart left.
    fn check_untouched(&self) -> Result<(), Error> {
        let mut changed = Vec::new();
        for (i, file) in self.run.manifest.files.iter().enumerate() {
            let on_disk = run::read_sha(&file.path, Step::Write)?;
            if on_disk != self.current[i] {
                changed.push((file.path.clone(), on_disk, i));
            }
        }
        if changed.is_empty() {
            return Ok(());
        }
        let mut parts = Vec::new();
        for (path, on_disk, i) in changed {
            self.run.audit(
                &self.applier,
                Action::Conflict,
                Outcome::Failed,
                json!({"path": path, "on_disk": on_disk, "expected": self.current[i]}),
            )?;
            parts.push(format!(
                "{} was changed by someone else (on disk: {}; smart expected: {})",
                path.display(),
                fsio::describe(on_disk.as_deref()),
                fsio::describe(self.current[i].as_deref())
            ));
        }
        Err(Error::new(
            ErrorKind::Conflict,
            Step::Write,
            format!(
                "{}; smart stopped without writing anything so as not to overwrite a human's edit; the originals are in {}",
                parts.join("; "),
                self.run.dir.dir.join("backup").display()
            ),
        ))
    }

    async fn apply_arm(
        &mut self,
        arm: &Arm<'_>,
        name: &str,
        targets: Vec<Option<Vec<u8>>>,
        live_value: Option<String>,
    ) -> Result<(), Error> {
        let applier = &self.applier.clone();
        let timeout = self.run.command_timeout();
        for (i, target) in targets.iter().enumerate() {
            let sha = fsio::state_sha(target.as_deref());
            if sha == self.current[i] {
                continue;
            }
            let file = self.run.manifest.files[i].clone();
            let id = self.run.intent(
                applier,
                Op::Write {
                    file: i,
                    path: file.path.clone(),
                    sha: sha.clone(),
                },
            )?;
            self.run.written[i].push(sha.clone());
            let result = match target {
                Some(bytes) => fsio::write_atomic(&file.path, bytes, file.ownership()),
                None => fsio::remove_durable(&file.path),
            };
            let details = json!({"path": file.path, "arm": name, "sha256": sha});
            if let Err(e) = result {
                self.run.audit(
                    applier,
                    Action::Apply,
                    Outcome::Failed,
                    json!({"path": file.path, "arm": name, "error": e.to_string()}),
                )?;
                return Err(Error::new(
                    ErrorKind::Reverted,
                    Step::Write,
                    format!("cannot write {}: {e}", file.path.display()),
                ));
            }
            self.current[i] = sha;
            self.run.record(applier, Record::Done { id })?;
            self.run
                .audit(applier, Action::Apply, Outcome::Ok, details)?;
        }
        if let Some(spec) = self.run.apply.command.clone() {
            let (op, argv) = match arm {
                Arm::Found if self.run.command_set => (
                    Op::RevertCommand,
                    self.run.command_revert_argv()?.unwrap_or_default(),
                ),
                Arm::Found => (Op::RevertCommand, Vec::new()),
                Arm::Variant { name, params } => {
                    let values = render::values(name, params);
                    let argv = spec
                        .set
                        .iter()
                        .map(|a| template::render(a, &values))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| {
                            Error::new(
                                ErrorKind::Reverted,
                                Step::Render,
                                format!("apply.command.set: {e}"),
                            )
                        })?;
                    (Op::Set { argv: argv.clone() }, argv)
                }
            };
            if !argv.is_empty() {
                let is_set = matches!(op, Op::Set { .. });
                let id = self.run.intent(applier, op)?;
                if is_set {
                    self.run.command_set = true;
                }
                let out = self
                    .run
                    .run_audited(applier, Step::Command, Action::Command, &argv)
                    .await?;
                if !out.success() {
                    return Err(Error::new(
                        ErrorKind::Reverted,
                        Step::Command,
                        format!("`{}` failed: {}", argv.join(" "), out.describe(timeout)),
                    ));
                }
                self.run.record(applier, Record::Done { id })?;
                if !is_set {
                    self.run.command_set = false;
                }
            }
        }
        if let Some(argv) = self.run.apply.validate.clone() {
            let out = self
                .run
                .run_audited(applier, Step::Validate, Action::Validate, &argv)
                .await?;
            if !out.success() {
                return Err(Error::new(
                    ErrorKind::Reverted,
                    Step::Validate,
                    format!(
                        "`{}` rejected the config of `{name}`: {}",
                        argv.join(" "),
                        out.describe(timeout)
                    ),
                ));
            }
        }
        if let Some(argv) = self.run.apply.reload.clone() {
            let id = self.run.intent(applier, Op::Reload)?;
            let out = self
                .run
                .run_audited(applier, Step::Reload, Action::Reload, &argv)
                .await?;
            if !out.success() {
                return Err(Error::new(
                    ErrorKind::Reverted,
                    Step::Reload,
                    format!("`{}` failed: {}", argv.join(" "), out.describe(timeout)),
                ));
            }
            self.run.record(applier, Record::Done { id })?;
        }
        let expect = match live_value {
            Some(v) => Expect::Equals(v),
            None => self.run.found_expect(),
        };
        self.run.check_live(applier, &expect).await?;
        self.run.check_health(applier).await?;
        Ok(())
    }

    /// Closes the run with the current variant left live; recovery will never revert it (an
    /// explicit `smart revert` still can).
    pub fn keep(mut self) -> Result<(), Error> {
        let arm = self.arm.clone();
        self.run
            .record(&self.applier, Record::Kept { arm: arm.clone() })?;
        self.run.audit(
            &self.applier,
            Action::Keep,
            Outcome::Ok,
            json!({"arm": arm}),
        )
    }

    /// Puts the original configuration back, reloads, checks and verifies it, and closes the
    /// run. On error the run stays open for `smart recover`.
    pub async fn revert(mut self) -> Result<(), Error> {
        self.restore().await?;
        self.run.record(
            &self.applier,
            Record::Closed {
                how: CloseReason::Reverted,
            },
        )
    }

    /// Puts the original configuration back (files, command value), verifies every checksum
    /// against the backups, reloads and runs the live check and health, but keeps the run open:
    /// another variant may follow. On error the run stays open for `smart recover`.
    pub async fn restore(&mut self) -> Result<(), Error> {
        let applier = &self.applier.clone();
        let result = self
            .run
            .restore_original(applier, true, Edits::Refuse)
            .await;
        let (outcome, detail) = match &result {
            Ok(_) => (Outcome::Ok, json!({"from_arm": self.arm})),
            Err(e) => (
                Outcome::Failed,
                json!({"from_arm": self.arm, "error": e.to_string()}),
            ),
        };
        self.run.audit(applier, Action::Revert, outcome, detail)?;
        result?;
        self.mark_original_live();
        self.run.record(
            applier,
            Record::Live {
                arm: BASELINE.to_owned(),
            },
        )
    }

    /// Closes a run whose original is already live (after [`Session::restore`] or a switch to
    /// [`Arm::Found`]): verifies once more that every file and the command's value equal the
    /// backups, then records the run closed so recovery has nothing to do. Fails with
    /// [`ErrorKind::RevertFailed`], leaving the run open, if they do not.
    pub async fn close(mut self) -> Result<(), Error> {
        let applier = &self.applier.clone();
        self.run.verify(applier, &[]).await?;
        self.run.record(
            applier,
            Record::Closed {
                how: CloseReason::Reverted,
            },
        )
    }
}
