//! `smart run`'s side of a search: undoing one kept candidate run through smart-apply (a search
//! puts the configuration as found back before its final confirmation) and one line per search
//! round on stdout.

use smart_core::Experiment;
use smart_core::runner::{SearchBench, SearchOutcome};

use super::{AfterRun, CliBench};
use crate::error::CliError;
use crate::revert::{applier, apply_error};

impl SearchBench for CliBench<'_> {
    async fn undo_keep(&mut self, experiment: &str, run_id: &str) -> Result<(), CliError> {
        let outcome = applier(self.config)
            .revert_run(self.lock, experiment, run_id)
            .await
            .map_err(apply_error)?;
        crate::revert::close_records(self.config, std::slice::from_ref(&outcome));
        Ok(())
    }

    fn search_finished(&mut self, experiment: &Experiment, outcome: &SearchOutcome) {
        if self.after_run == AfterRun::Nothing {
            return;
        }
        println!("{}", describe(experiment.name(), outcome));
    }
}

/// One line on how a search's round ended.
pub(crate) fn describe(name: &str, outcome: &SearchOutcome) -> String {
    match outcome {
        SearchOutcome::Done {
            kept: Some(kept),
            candidates,
        } => format!(
            "{name}: search over after {candidates} candidates; kept {kept}, proven against the \
             configuration as found"
        ),
        SearchOutcome::Done {
            kept: None,
            candidates,
        } => format!(
            "{name}: search over after {candidates} candidates; nothing beat the configuration \
             as found, which is live"
        ),
        SearchOutcome::Stopped => {
            format!("{name}: search stopped; the next `smart run` resumes it where it stood")
        }
        SearchOutcome::Failed(why) => format!(
            "{name}: search paused, a candidate's run failed ({why}); the next `smart run` \
             judges that candidate again"
        ),
    }
}
