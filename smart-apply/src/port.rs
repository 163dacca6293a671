//! The engine's [`smart_core::engine::ApplierPort`], implemented over [`Applier`] and
//! [`Session`] for one validated experiment, so `smart run` can hand it to the engine as is.

use std::sync::Arc;

use smart_core::engine::{self, ApplyFailure, FailureCause};
use smart_core::{BASELINE, Experiment};

use crate::{Applier, Arm, Error, RunLock, Session};

/// One run of one experiment, as the engine drives it.
///
/// `baseline` maps to the configuration as found, or to the rendered baseline when the
/// experiment gives `baseline` params; any other arm name to that variant.
#[derive(Debug)]
pub struct EngineApplier<'a> {
    applier: Applier,
    lock: &'a RunLock,
    /// Shared (a clone), so a run loop can make the port per run whatever holds the experiment.
    experiment: Arc<Experiment>,
    run_id: String,
    session: Option<Session>,
}

impl<'a> EngineApplier<'a> {
    /// A port for run `run_id` of `experiment`, under `lock`.
    pub fn new(
        applier: Applier,
        lock: &'a RunLock,
        experiment: &Experiment,
        run_id: &str,
    ) -> EngineApplier<'a> {
        EngineApplier {
            applier,
            lock,
            experiment: Arc::new(experiment.clone()),
            run_id: run_id.to_owned(),
            session: None,
        }
    }

    fn session(&mut self) -> Result<&mut Session, ApplyFailure> {
        self.session.as_mut().ok_or_else(|| ApplyFailure {
            message:
                "the run has not started (check_baseline was not called or failed), or it is closed"
                    .to_owned(),
            original_live: true,
            cause: FailureCause::Smart,
        })
    }
}

fn failure(error: Error) -> ApplyFailure {
    ApplyFailure {
        message: smart_core::error_chain::joined(&error),
        original_live: error.original_in_place(),
        cause: if error.is_smarts_own() {
            FailureCause::Smart
        } else {
            FailureCause::Config
        },
    }
}

impl engine::ApplierPort for EngineApplier<'_> {
    async fn check_baseline(&mut self) -> Result<(), ApplyFailure> {
        let session = self
            .applier
            .begin(
                self.lock,
                self.experiment.name(),
                &self.run_id,
                self.experiment.apply(),
            )
            .await
            .map_err(failure)?;
        self.session = Some(session);
        Ok(())
    }

    async fn switch(&mut self, arm: &str) -> Result<(), ApplyFailure> {
        let experiment = Arc::clone(&self.experiment);
        let target = if arm == BASELINE {
            match experiment.baseline() {
                Some(params) => Arm::Variant {
                    name: BASELINE,
                    params,
                },
                None => Arm::Found,
            }
        } else {
            match experiment.variant(arm) {
                Some(variant) => Arm::Variant {
                    name: &variant.name,
                    params: &variant.params,
                },
                None => {
                    let original_live = self.session()?.original_live();
                    return Err(ApplyFailure {
                        message: format!("experiment `{}` has no arm `{arm}`", experiment.name()),
                        original_live,
                        cause: FailureCause::Smart,
                    });
                }
            }
        };
        self.session()?.switch_to(target).await.map_err(failure)
    }

    async fn restore(&mut self) -> Result<(), ApplyFailure> {
        self.session()?.restore().await.map_err(failure)
    }

    async fn close(&mut self) -> Result<(), ApplyFailure> {
        self.session()?;
        let session = self.session.take().expect("checked above");
        session.close().await.map_err(failure)
    }

    async fn keep(&mut self, variant: &str) -> Result<(), ApplyFailure> {
        let session = self.session()?;
        if session.arm() != variant {
            return Err(ApplyFailure {
                message: format!("cannot keep `{variant}`: `{}` is live", session.arm()),
                original_live: session.original_live(),
                cause: FailureCause::Smart,
            });
        }
        let session = self.session.take().expect("checked above");
        session.keep().map_err(failure)
    }
}
