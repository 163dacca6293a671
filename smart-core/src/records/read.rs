//! Reading the records back: runs, one run block by block, its samples, the history of decisions,
//! and the live status.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{
    BLOCKS_FILE, DECISIONS_FILE, DecisionRecord, RUN_FILE, RUNS_DIR, RecordsError, SAMPLES_FILE,
    STATUS_FILE, Status,
};
use crate::engine::{BlockInfo, BlockMeasurement, HostPressure, RunPlan, RunReport};

/// `run.json`: a run's plan and, once it is over, its report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunFile {
    /// The plan, fixed at the start.
    pub plan: RunPlan,
    /// The report; `null` while the run is under way (or when its process died).
    pub report: Option<RunReport>,
}

/// What a block measured, without its samples (a line of `blocks.jsonl` holds one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BlockFigures {
    /// Seconds the recorded part lasted.
    pub measured_s: f64,
    /// Requests recorded.
    pub requests: u64,
    /// Those that failed.
    pub errors: u64,
    /// Requests per outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Median latency, µs.
    pub p50_us: Option<u64>,
    /// 90th percentile latency, µs.
    pub p90_us: Option<u64>,
    /// 99th percentile latency, µs.
    pub p99_us: Option<u64>,
    /// Mean latency, µs.
    pub mean_us: Option<f64>,
    /// Achieved rate, requests per second.
    pub rate_per_s: f64,
    /// Latency samples kept (in `samples.jsonl`).
    pub samples: usize,
    /// Why a guardrail stopped the block early, if it did.
    pub aborted: Option<String>,
    /// What the host was doing during the block (pressure stall, load, steal), when the probe
    /// could read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostPressure>,
}

impl BlockFigures {
    /// The figures of a measurement.
    pub fn of(m: &BlockMeasurement) -> BlockFigures {
        BlockFigures {
            measured_s: m.duration_s,
            requests: m.requests,
            errors: m.errors,
            outcomes: m.outcomes.clone(),
            p50_us: m.p50_us,
            p90_us: m.p90_us,
            p99_us: m.p99_us,
            mean_us: m.mean_us,
            rate_per_s: m.rate_per_s,
            samples: m.latencies_us.len(),
            aborted: m.aborted.clone(),
            host: m.host,
        }
    }
}

/// One line of `blocks.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BlockRecord {
    /// Where the block sits in the run.
    pub block: BlockInfo,
    /// When it ended (RFC 3339 UTC).
    pub ended: String,
    /// What it measured.
    pub figures: BlockFigures,
}

/// One line of `samples.jsonl`: a block's latency samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BlockSamples {
    /// The block's index in the run.
    pub block: u32,
    /// Latencies of the answered ok requests in µs, in the order measured.
    pub latencies_us: Vec<u64>,
}

/// One run, read back whole (without samples). `smart show RUN --json` prints it: a stable
/// contract with the JSON Schema docs/run.schema.json ([`run_schema`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunRecord {
    /// The plan and report.
    pub run: RunFile,
    /// Every block, in order.
    pub blocks: Vec<BlockRecord>,
    /// The decisions (empty while the run is under way).
    pub decisions: Vec<DecisionRecord>,
}

/// The JSON Schema of [`RunRecord`], as `smart show RUN --json` prints it (committed as
/// docs/run.schema.json; a test keeps the file current).
pub fn run_schema() -> schemars::Schema {
    schemars::schema_for!(RunRecord)
}

/// Every run in `state_dir`, oldest first (an empty list when there is none yet).
pub fn list_runs(state_dir: &Path) -> Result<Vec<RunFile>, RecordsError> {
    let dir = state_dir.join(RUNS_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RecordsError::new("reading", dir, e)),
    };
    let mut runs: Vec<RunFile> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| RecordsError::new("reading", &dir, e))?;
        let path = entry.path().join(RUN_FILE);
        // A run pruned (renamed away whole) since the listing is simply not there any more.
        match fs::read(&path) {
            Ok(bytes) => runs.push(
                serde_json::from_slice(&bytes)
                    .map_err(|e| RecordsError::new("parsing", &path, e))?,
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) => {}
            Err(e) => return Err(RecordsError::new("reading", path, e)),
        }
    }
    runs.sort_by(|a, b| (&a.plan.started, &a.plan.run_id).cmp(&(&b.plan.started, &b.plan.run_id)));
    Ok(runs)
}

/// One run by id.
pub fn load_run(state_dir: &Path, run_id: &str) -> Result<RunRecord, RecordsError> {
    let dir = run_dir(state_dir, run_id)?;
    let run = read_json::<RunFile>(&dir.join(RUN_FILE))?;
    let blocks = read_lines::<BlockRecord>(&dir.join(BLOCKS_FILE))?;
    let decisions_path = dir.join(DECISIONS_FILE);
    let decisions = if decisions_path.is_file() {
        read_json::<Vec<DecisionRecord>>(&decisions_path)?
    } else {
        Vec::new()
    };
    Ok(RunRecord {
        run,
        blocks,
        decisions,
    })
}

/// One run's latency samples, block by block.
pub fn load_samples(state_dir: &Path, run_id: &str) -> Result<Vec<BlockSamples>, RecordsError> {
    read_lines(&run_dir(state_dir, run_id)?.join(SAMPLES_FILE))
}

/// Calls `each` with one run's latency samples block by block, holding one block in memory at a
/// time: what a summary of a long run (the dashboard's curves) reads, where [`load_samples`]
/// would hold every sample of the run at once.
pub fn for_each_samples(
    state_dir: &Path,
    run_id: &str,
    each: impl FnMut(BlockSamples),
) -> Result<(), RecordsError> {
    for_each_line(&run_dir(state_dir, run_id)?.join(SAMPLES_FILE), each)
}

/// Every decision of every finished run, oldest first: what `smart history` shows.
pub fn history(state_dir: &Path) -> Result<Vec<DecisionRecord>, RecordsError> {
    let mut all = Vec::new();
    for run in list_runs(state_dir)? {
        let path = run_dir(state_dir, &run.plan.run_id)?.join(DECISIONS_FILE);
        if path.is_file() {
            all.extend(read_json::<Vec<DecisionRecord>>(&path)?);
        }
    }
    Ok(all)
}

/// The live status, if a run ever wrote one.
pub fn read_status(state_dir: &Path) -> Result<Option<Status>, RecordsError> {
    let path = state_dir.join(STATUS_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RecordsError::new("parsing", path, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RecordsError::new("reading", path, e)),
    }
}

/// The directory of run `run_id`, refusing ids that could leave `runs/`.
fn run_dir(state_dir: &Path, run_id: &str) -> Result<PathBuf, RecordsError> {
    let safe = !run_id.is_empty()
        && !run_id.starts_with('.')
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let dir = state_dir.join(RUNS_DIR).join(run_id);
    if !safe {
        return Err(RecordsError::new(
            "finding run",
            dir,
            format!(
                "`{run_id}` is not a run id (letters, digits, `-`, `_` and `.` only); list runs with `smart history`"
            ),
        ));
    }
    if !dir.is_dir() {
        return Err(RecordsError::new(
            "finding run",
            dir,
            format!(
                "there is no run `{run_id}` (runs older than [retention] in smart.toml allows are pruned: the audit log's `prune` lines name them); list runs with `smart history`"
            ),
        ));
    }
    Ok(dir)
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, RecordsError> {
    let bytes = fs::read(path).map_err(|e| RecordsError::new("reading", path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| RecordsError::new("parsing", path, e))
}

/// Reads a JSON-lines file; a missing file is empty, and a torn last line (a crash mid-write) is
/// skipped.
fn read_lines<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, RecordsError> {
    let mut out = Vec::new();
    for_each_line(path, |value| out.push(value))?;
    Ok(out)
}

/// Calls `each` with every line of a JSON-lines file in order, one line in memory at a time; a
/// missing file has none, and a torn last line (a crash mid-write) is skipped.
fn for_each_line<T: DeserializeOwned>(
    path: &Path,
    mut each: impl FnMut(T),
) -> Result<(), RecordsError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RecordsError::new("reading", path, e)),
    };
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    // A line that did not parse: an error only if another line follows it.
    let mut torn: Option<(usize, serde_json::Error)> = None;
    let mut n = 0;
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| RecordsError::new("reading", path, e))?;
        if read == 0 {
            return Ok(());
        }
        n += 1;
        if let Some((at, e)) = torn.take() {
            return Err(RecordsError::new(
                "parsing",
                path,
                format!("line {at}: {e}"),
            ));
        }
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(value) => each(value),
            Err(e) => torn = Some((n, e)),
        }
    }
}
