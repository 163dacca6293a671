//! The one way back to the original: check for foreign edits, restore the files, revert the
//! command, reload, then verify every file against the backup.

use std::path::Path;

use serde_json::json;
use smart_core::audit::{Action, Outcome};

use super::{Edits, RunState, read_sha, revert_failed};
use crate::Applier;
use crate::command;
use crate::error::{Error, ErrorKind, Step};
use crate::fsio;
use crate::journal::{Op, Record};

impl RunState {
    /// Puts the original configuration back and checks it, or fails without touching a file
    /// someone else changed (with [`Edits::Keep`], leaves those files as they are and restores
    /// the rest). `running` says whether to reload and check the service. Returns the files left
    /// with someone else's edit.
    pub(crate) async fn restore_original(
        &mut self,
        applier: &Applier,
        running: bool,
        edits: Edits,
    ) -> Result<Vec<usize>, Error> {
        self.restoring = true;
        // 1. Nothing is touched if any file was changed by someone else.
        let mut to_restore = Vec::new();
        let mut conflicts = Vec::new();
        let mut kept = Vec::new();
        for (i, file) in self.manifest.files.clone().iter().enumerate() {
            let _ = fsio::remove_if_exists(&fsio::temp_path(&file.path));
            let on_disk = read_sha(&file.path, Step::Revert)?;
            if on_disk == file.sha256 {
                continue;
            }
            if self.written[i].contains(&on_disk) {
                to_restore.push(i);
            } else if edits == Edits::Keep {
                kept.push(i);
                self.audit(
                    applier,
                    Action::Conflict,
                    Outcome::Skipped,
                    json!({
                        "path": file.path,
                        "on_disk": on_disk,
                        "original": file.sha256,
                        "result": "someone else's edit was kept, as asked",
                    }),
                )?;
            } else {
                conflicts.push(conflict_message(
                    &file.path,
                    on_disk.as_deref(),
                    &self.written[i],
                    file.sha256.as_deref(),
                    &self.dir.backup(i),
                ));
                self.audit(
                    applier,
                    Action::Conflict,
                    Outcome::Failed,
                    json!({
                        "path": file.path,
                        "on_disk": on_disk,
                        "original": file.sha256,
                        "smart_wrote": self.written[i],
                    }),
                )?;
            }
        }
        if !conflicts.is_empty() {
            return Err(Error::new(
                ErrorKind::Conflict,
                Step::Revert,
                format!(
                    "{}; smart changed nothing and the run stays open: put the original back (or leave the file as you want it) and run `smart recover` again, or `smart recover --keep-edits` to keep your edit and restore the rest",
                    conflicts.join("; ")
                ),
            ));
        }
        // 2. Restore the files.
        for i in to_restore {
            let file = self.manifest.files[i].clone();
            let id = self.intent(
                applier,
                Op::Write {
                    file: i,
                    path: file.path.clone(),
                    sha: file.sha256.clone(),
                },
            )?;
            let result = match &self.originals[i] {
                Some(bytes) => fsio::write_atomic(&file.path, bytes, file.ownership()),
                None => fsio::remove_durable(&file.path),
            };
            if let Err(e) = result {
                self.audit(
                    applier,
                    Action::Revert,
                    Outcome::Failed,
                    json!({"path": file.path, "error": e.to_string()}),
                )?;
                return Err(Error::new(
                    ErrorKind::RevertFailed,
                    Step::Revert,
                    format!(
                        "cannot restore {} from {}: {e}; copy the backup back by hand",
                        file.path.display(),
                        self.dir.backup(i).display()
                    ),
                ));
            }
            self.record(applier, Record::Done { id })?;
            self.audit(
                applier,
                Action::Revert,
                Outcome::Ok,
                json!({"path": file.path, "sha256": file.sha256, "existed": file.existed}),
            )?;
        }
        // 3. Put the command's value back.
        if self.command_set
            && let Some(argv) = self.command_revert_argv()?
        {
            let id = self.intent(applier, Op::RevertCommand)?;
            let out = self
                .run_audited(applier, Step::Revert, Action::Revert, &argv)
                .await
                .map_err(|e| revert_failed(Step::Revert, e.to_string()))?;
            if !out.success() {
                return Err(revert_failed(
                    Step::Revert,
                    format!(
                        "`{}` failed: {}; set the value back by hand to `{}`",
                        argv.join(" "),
                        out.describe(self.command_timeout()),
                        self.manifest
                            .command_original
                            .as_deref()
                            .unwrap_or_default()
                    ),
                ));
            }
            self.record(applier, Record::Done { id })?;
            self.command_set = false;
        }
        // 4. Verify: the checksums must equal the backups'.
        self.verify(applier, &kept).await?;
        // 5. Reload and check, if the service runs.
        if !running {
            self.audit(
                applier,
                Action::Reload,
                Outcome::Skipped,
                json!({"reason": "the service is not running (its health or live-check URL does not answer)"}),
            )?;
            return Ok(kept);
        }
        if let Some(argv) = self.apply.reload.clone() {
            let id = self.intent(applier, Op::Reload)?;
            let out = self
                .run_audited(applier, Step::Reload, Action::Reload, &argv)
                .await
                .map_err(|e| revert_failed(Step::Reload, e.to_string()))?;
            if !out.success() {
                return Err(revert_failed(
                    Step::Reload,
                    format!(
                        "the original files are back and verified, but reloading them failed: `{}`: {}",
                        argv.join(" "),
                        out.describe(self.command_timeout())
                    ),
                ));
            }
            self.record(applier, Record::Done { id })?;
        }
        let expect = self.found_expect();
        self.check_live(applier, &expect)
            .await
            .map_err(|e| revert_failed(e.step(), e.message().to_owned()))?;
        self.check_health(applier)
            .await
            .map_err(|e| revert_failed(e.step(), e.message().to_owned()))?;
        Ok(kept)
    }

    /// Compares every file but `skip` (and the command's value) with the backup; fails loudly,
    /// saying what is on disk, when they differ.
    pub(crate) async fn verify(&mut self, applier: &Applier, skip: &[usize]) -> Result<(), Error> {
        let mut wrong = Vec::new();
        for (i, file) in self.manifest.files.iter().enumerate() {
            if skip.contains(&i) {
                continue;
            }
            let on_disk = fsio::read_optional(&file.path).map_err(|e| {
                revert_failed(
                    Step::Verify,
                    format!("cannot read {}: {e}", file.path.display()),
                )
            })?;
            let sha = fsio::state_sha(on_disk.as_deref());
            let ok = sha == file.sha256;
            self.audit(
                applier,
                Action::Verify,
                if ok { Outcome::Ok } else { Outcome::Failed },
                json!({
                    "path": file.path,
                    "expected": file.sha256,
                    "on_disk": sha,
                    "on_disk_len": on_disk.as_ref().map(Vec::len),
                }),
            )?;
            if !ok {
                wrong.push(format!(
                    "{} is {} ({} bytes) but the original was {}",
                    file.path.display(),
                    fsio::describe(sha.as_deref()),
                    on_disk.as_ref().map_or(0, Vec::len),
                    fsio::describe(file.sha256.as_deref()),
                ));
            }
        }
        if let (Some(spec), Some(original)) = (&self.apply.command, &self.manifest.command_original)
        {
            let out = command::run(
                Step::Verify,
                &spec.read,
                self.command_timeout(),
                &applier.config.path,
            )
            .await?;
            let ok = out.success() && out.stdout == *original;
            let mut details = out.details(&spec.read);
            details["expected"] = json!(original);
            details["read"] = json!(out.stdout);
            self.audit(
                applier,
                Action::Verify,
                if ok { Outcome::Ok } else { Outcome::Failed },
                details,
            )?;
            if !ok {
                wrong.push(format!(
                    "`{}` reads `{}` but the original was `{original}`",
                    spec.read.join(" "),
                    out.stdout
                ));
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(revert_failed(
                Step::Verify,
                format!(
                    "the revert did not restore the original: {}; the backups are in {}",
                    wrong.join("; "),
                    self.dir.dir.join("backup").display()
                ),
            ))
        }
    }
}

fn conflict_message(
    path: &Path,
    on_disk: Option<&str>,
    written: &[Option<String>],
    original: Option<&str>,
    backup: &Path,
) -> String {
    let wrote = written.last().map_or_else(
        || "nothing yet".to_owned(),
        |s| fsio::describe(s.as_deref()),
    );
    format!(
        "{} was changed by someone else (on disk: {}; smart last wrote: {wrote}; original: {}; backup: {})",
        path.display(),
        fsio::describe(on_disk),
        fsio::describe(original),
        backup.display()
    )
}
