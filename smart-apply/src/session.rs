//! A live run: [`Applier::begin`] checks the baseline and saves the originals, then
//! [`Session::switch_to`] moves between arms and [`Session::revert`] or [`Session::keep`] ends it.
//!
//! Starting a run, up to the backups, is in `session/begin.rs`; this file is the session after it.

mod begin;

use serde_json::json;
use smart_core::audit::{Action, Outcome};
use smart_core::template;

use crate::error::{Error, ErrorKind, Step};
use crate::fsio;
use crate::http::Expect;
use crate::journal::{CloseReason, Op, Record};
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
