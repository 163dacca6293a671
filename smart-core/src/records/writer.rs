//! [`Records`]: the engine observer that writes a run's records, `metrics.csv` and `status.json`,
//! and the engine's own lines of the audit log (one per finished block, one per decision).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::read::{BlockFigures, BlockRecord, BlockSamples, RunFile};
use super::status::{RunState, Status};
use super::{
    BLOCKS_FILE, DECISIONS_FILE, EXPERIMENT_FILE, METRICS_FILE, RUN_FILE, RUNS_DIR, RecordsError,
    SAMPLES_FILE, STATUS_FILE, metrics,
};
use crate::atomic::{AtomicWrite, Sync};
use crate::audit::{Action, AuditLog, Entry, Outcome, format_utc};
use crate::engine::{
    BlockInfo, BlockMeasurement, Event, EventKind, ObserverError, ObserverPort, Phase, RunPlan,
};
use crate::logs::LogRotation;

/// How often live progress is written to `status.json` at most (other events write at once).
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Writes the records of runs under a state dir, as an engine observer.
///
/// ```no_run
/// use smart_core::records::Records;
/// let mut records = Records::new("/var/lib/smart".as_ref());
/// // pass `&mut records` as the engine's observer (alone, or paired with a progress bar)
/// ```
#[derive(Debug)]
pub struct Records {
    state_dir: PathBuf,
    run: Option<OpenRun>,
    status: Option<Status>,
    last_status: Option<Duration>,
    rotation: LogRotation,
    audit: AuditLog,
}

#[derive(Debug)]
struct OpenRun {
    dir: PathBuf,
    plan: RunPlan,
    blocks: File,
    samples: File,
}

impl Records {
    /// Records under `state_dir` (created when the first run starts); `metrics.csv` and the
    /// audit log rotate by the default [`LogRotation`].
    pub fn new(state_dir: &Path) -> Records {
        Records::with_rotation(state_dir, LogRotation::default())
    }

    /// Records under `state_dir`, with `metrics.csv` and the audit log rotated as `rotation` says
    /// (`[logs]`).
    pub fn with_rotation(state_dir: &Path, rotation: LogRotation) -> Records {
        Records {
            state_dir: state_dir.to_owned(),
            run: None,
            status: None,
            last_status: None,
            rotation,
            audit: AuditLog::with_rotation(state_dir, rotation),
        }
    }

    /// The directory of the run being recorded, once it started.
    pub fn run_dir(&self) -> Option<&Path> {
        self.run.as_ref().map(|r| r.dir.as_path())
    }

    fn handle(&mut self, event: &Event<'_>) -> Result<(), RecordsError> {
        let force = match event.kind {
            EventKind::RunStarted { plan, experiment } => {
                self.start(plan, experiment, event)?;
                true
            }
            EventKind::Phase(info) => {
                if let (Some(status), Some(run)) = (&mut self.status, &self.run) {
                    status.phase = info.phase;
                    if status.variant != info.variant {
                        status.block = None;
                        status.blocks = None;
                    }
                    status.variant_index = info
                        .variant
                        .as_ref()
                        .and_then(|v| run.plan.variants.iter().position(|n| n == v))
                        .map(|i| i as u32 + 1);
                    status.variant = info.variant.clone();
                    status.arm = info.arm.clone();
                    if info.phase != Phase::Measuring && info.phase != Phase::Soaking {
                        status.live = None;
                    }
                }
                true
            }
            EventKind::BlockStarted(block) => {
                if let Some(status) = &mut self.status {
                    status.variant = Some(block.variant.clone());
                    status.variant_index = Some(block.variant_index);
                    status.arm = Some(block.arm_name.clone());
                    status.block = Some(block.block_in_variant);
                    status.blocks = Some(block.blocks_in_variant);
                    status.live = None;
                }
                true
            }
            EventKind::Progress { live, .. } => {
                if let Some(status) = &mut self.status {
                    status.live = Some(live.clone());
                }
                false
            }
            EventKind::BlockFinished { block, measurement } => {
                let Some(run) = &mut self.run else {
                    return Ok(());
                };
                let ended = format_utc(event.at);
                let line = BlockRecord {
                    block: block.clone(),
                    ended: ended.clone(),
                    figures: BlockFigures::of(measurement),
                };
                append_line(&mut run.blocks, &run.dir.join(BLOCKS_FILE), &line)?;
                let samples = BlockSamples {
                    block: block.index,
                    latencies_us: measurement.latencies_us.clone(),
                };
                append_line(&mut run.samples, &run.dir.join(SAMPLES_FILE), &samples)?;
                let path = self.state_dir.join(METRICS_FILE);
                metrics::append_row(
                    &path,
                    &run.plan.run_id,
                    &run.plan.experiment,
                    block,
                    &ended,
                    measurement,
                    &self.rotation,
                )
                .map_err(|e| RecordsError::new("appending to", path, e))?;
                let run_id = run.plan.run_id.clone();
                self.log(
                    event.at,
                    run_id,
                    Action::Block,
                    block_details(block, measurement),
                )?;
                true
            }
            EventKind::Decided(decision) => {
                self.log(
                    event.at,
                    decision.run_id.clone(),
                    Action::Decision,
                    decision_details(decision),
                )?;
                if let Some(status) = &mut self.status {
                    status
                        .decisions
                        .push((decision.variant.clone(), decision.decision));
                }
                true
            }
            EventKind::RunFinished(report) => {
                let Some(run) = &self.run else {
                    return Ok(());
                };
                let decisions = to_json(&report.decisions);
                write_atomic(&run.dir.join(DECISIONS_FILE), &decisions, true)?;
                let file = RunFile {
                    plan: run.plan.clone(),
                    report: Some(report.clone()),
                };
                write_atomic(&run.dir.join(RUN_FILE), &to_json(&file), true)?;
                if let Some(status) = &mut self.status {
                    status.state = RunState::Finished;
                    status.phase = Phase::Finished;
                    status.end = Some(report.end);
                    status.live = None;
                }
                true
            }
            EventKind::Problem(_) => true,
            EventKind::Step { .. } | EventKind::Advised { .. } | EventKind::Tick => false,
        };
        let due = self
            .last_status
            .is_none_or(|last| event.elapsed.saturating_sub(last) >= STATUS_EVERY);
        if let Some(status) = &mut self.status
            && (force || due)
        {
            status.elapsed_s = event.elapsed.as_secs_f64();
            status.left_s = event.left.as_secs_f64();
            status.updated = format_utc(event.at);
            write_atomic(&self.state_dir.join(STATUS_FILE), &to_json(status), false)?;
            self.last_status = Some(event.elapsed);
        }
        Ok(())
    }

    /// Appends one of the engine's own lines to the audit log.
    fn log(
        &self,
        time: SystemTime,
        run_id: String,
        action: Action,
        (outcome, details): (Outcome, serde_json::Value),
    ) -> Result<(), RecordsError> {
        let entry = Entry {
            time,
            run_id,
            action,
            outcome,
            details,
        };
        self.audit
            .append(&entry)
            .map_err(|e| RecordsError::new("appending to", self.audit.path(), e))
    }

    fn start(
        &mut self,
        plan: &RunPlan,
        experiment: &crate::Experiment,
        event: &Event<'_>,
    ) -> Result<(), RecordsError> {
        let dir = self.state_dir.join(RUNS_DIR).join(&plan.run_id);
        fs::create_dir_all(&dir).map_err(|e| RecordsError::new("creating", &dir, e))?;
        write_atomic(
            &dir.join(EXPERIMENT_FILE),
            &to_json(experiment.definition()),
            true,
        )?;
        let file = RunFile {
            plan: plan.clone(),
            report: None,
        };
        write_atomic(&dir.join(RUN_FILE), &to_json(&file), true)?;
        let open = |name: &str| {
            let path = dir.join(name);
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| RecordsError::new("creating", path, e))
        };
        let blocks = open(BLOCKS_FILE)?;
        let samples = open(SAMPLES_FILE)?;
        self.status = Some(Status {
            state: RunState::Running,
            pid: std::process::id(),
            run_id: plan.run_id.clone(),
            experiment: plan.experiment.clone(),
            phase: Phase::CheckingBaseline,
            variant: None,
            variant_index: None,
            variants: plan.variants.len() as u32,
            arm: None,
            block: None,
            blocks: None,
            elapsed_s: 0.0,
            left_s: event.left.as_secs_f64(),
            live: None,
            end: None,
            decisions: Vec::new(),
            updated: format_utc(event.at),
        });
        self.last_status = None;
        self.run = Some(OpenRun {
            dir,
            plan: plan.clone(),
            blocks,
            samples,
        });
        Ok(())
    }
}

impl ObserverPort for Records {
    fn event(&mut self, event: &Event<'_>) -> Result<(), ObserverError> {
        self.handle(event).map_err(ObserverError::new)
    }
}

/// A finished block's audit line: `failed` when a guardrail stopped it, with the reason.
fn block_details(
    block: &BlockInfo,
    measurement: &BlockMeasurement,
) -> (Outcome, serde_json::Value) {
    let mut details = serde_json::json!({
        "variant": block.variant,
        "arm": block.arm_name,
        "kind": block.kind,
        "block": block.index,
        "cycle": block.cycle,
        "position": block.position,
        "requests": measurement.requests,
        "errors": measurement.errors,
        "p50_us": measurement.p50_us,
    });
    match &measurement.aborted {
        Some(reason) => {
            details["aborted"] = reason.as_str().into();
            (Outcome::Failed, details)
        }
        None => (Outcome::Ok, details),
    }
}

/// A decision's audit line.
fn decision_details(decision: &super::DecisionRecord) -> (Outcome, serde_json::Value) {
    let details = serde_json::json!({
        "experiment": decision.experiment,
        "variant": decision.variant,
        "decision": decision.decision,
        "cycles": decision.cycles,
        "p50_change_pct": decision.estimates.p50_change_pct,
        "error_rate_change_pp": decision.estimates.error_rate_change_pp,
        "reasons": decision.reasons,
    });
    (Outcome::Ok, details)
}

pub(super) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("records always serialize");
    bytes.push(b'\n');
    bytes
}

fn append_line<T: serde::Serialize>(
    file: &mut File,
    path: &Path,
    value: &T,
) -> Result<(), RecordsError> {
    let mut line = serde_json::to_vec(value).expect("records always serialize");
    line.push(b'\n');
    file.write_all(&line)
        .map_err(|e| RecordsError::new("appending to", path, e))
}

/// Replaces `path` with `bytes` through a temp file and a rename, so readers never see half a
/// file; with `durable`, fsyncs the file and its directory too.
pub(super) fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<(), RecordsError> {
    AtomicWrite::new(path)
        .create_dir()
        .sync(if durable {
            Sync::FileAndDir
        } else {
            Sync::None
        })
        .write(bytes)
        .map_err(|e| RecordsError::new("writing", path, e))
}
