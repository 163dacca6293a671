//! Closing the record of a run whose process died (a crash, SIGKILL, a power cut): its `run.json`
//! kept `report: null`, which retention reads as a run still open and never prunes.

use std::path::Path;
use std::time::SystemTime;

use super::read::load_run;
use super::status::RunState;
use super::writer::{to_json, write_atomic};
use super::{RUN_FILE, RUNS_DIR, RecordsError, STATUS_FILE, read_status};
use crate::audit::format_utc;
use crate::engine::{LiveConfig, Phase, RunEnd, RunReport};

/// Writes the report of run `run_id` after `smart recover` (or `smart revert`) put its original
/// configuration back: ended [`RunEnd::Recovered`] with `reason`, the original live, and the
/// decisions the run had recorded (none when it died before its end, where they are written).
/// `status.json`, when it still shows the run as running, says it ended the same way.
///
/// Returns `false` (and changes nothing) when the run already has a report or has no record (it
/// stopped before its record was written, or was pruned).
pub fn close_recovered(
    state_dir: &Path,
    run_id: &str,
    reason: &str,
    now: SystemTime,
) -> Result<bool, RecordsError> {
    if !state_dir
        .join(RUNS_DIR)
        .join(run_id)
        .join(RUN_FILE)
        .is_file()
    {
        return Ok(false);
    }
    let record = load_run(state_dir, run_id)?;
    let mut file = record.run;
    if file.report.is_some() {
        return Ok(false);
    }
    let plan = &file.plan;
    file.report = Some(RunReport {
        run_id: plan.run_id.clone(),
        experiment: plan.experiment.clone(),
        definition_hash: plan.definition_hash.clone(),
        seed: plan.seed,
        started: plan.started.clone(),
        finished: format_utc(now),
        end: RunEnd::Recovered,
        end_reason: Some(reason.to_owned()),
        live: LiveConfig::Original,
        decisions: record.decisions,
    });
    let path = state_dir.join(RUNS_DIR).join(run_id).join(RUN_FILE);
    write_atomic(&path, &to_json(&file), true)?;
    if let Some(mut status) = read_status(state_dir)?
        && status.run_id == run_id
        && status.state == RunState::Running
    {
        status.state = RunState::Finished;
        status.phase = Phase::Finished;
        status.end = Some(RunEnd::Recovered);
        status.live = None;
        status.updated = format_utc(now);
        write_atomic(&state_dir.join(STATUS_FILE), &to_json(&status), false)?;
    }
    Ok(true)
}
