//! Retention of run records (`[retention]` in `smart.toml`): `runs/` would otherwise grow by
//! every run of the hourly timer, forever, and every dashboard render reads all of it.
//!
//! A prune pass removes the run directories that are older than [`Retention::max_age_days`] or
//! not among the newest [`Retention::max_runs`] runs, except the runs the rest of smart still
//! needs ([`Protection`]):
//!
//! - an open run: no report in `run.json` (under way, or its process died: the dashboard lists it
//!   as unfinished for a human to look at), and the run `status.json` names;
//! - a run that left something other than the verified original live: a kept variant (`keep`,
//!   `kept-by-coach`), or an unknown configuration after a failed restore;
//! - the newest run with a decision that is not `aborted` for each experiment's current
//!   definition: `smart run` queues an experiment whose current definition has no such decision,
//!   so pruning it would run a decided experiment again. The caller says which definitions are
//!   current ([`Definitions`]); when it cannot tell, every definition's newest decision is kept.
//!   The newest such run of each experiment name is kept too, so an experiment file that is
//!   briefly invalid or moved away does not lose its decision.
//!
//! Every pass that removes anything first appends one `prune` line to the audit log
//! (`details`: `runs`, the ids, and `reason`), so `smart audit verify` can tell a pruned run from
//! one deleted by hand; the hash chain is only appended to. Then each run directory is renamed
//! into `<state_dir>/.pruning/` (one rename: a reader sees the whole run or none of it) and the
//! directory there is deleted. A crash after the audit line leaves either runs still in `runs/`
//! (the next pass prunes them again) or directories in `.pruning/` (the next pass deletes them);
//! neither is ever half-read by `smart run`, `smart history` or the dashboard.
//!
//! `pruned.json` in the state dir counts the runs pruned so far, for `smart history` to say how
//! much older history is gone.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::read::list_runs;
use super::writer::write_atomic;
use super::{RUNS_DIR, RecordsError, RunFile, read_status};
use crate::audit::{Action, AuditLog, Entry, Outcome, format_utc};
use crate::engine::LiveConfig;

/// Where a pass moves run directories before deleting them, in the state dir.
#[doc(hidden)] // public for sibling crates only, not part of the embedding API
pub const PRUNING_DIR: &str = ".pruning";
/// The count of pruned runs, in the state dir.
#[doc(hidden)] // public for sibling crates only, not part of the embedding API
pub const PRUNED_FILE: &str = "pruned.json";

/// How long run records are kept (`[retention]` in `smart.toml`).
///
/// ```
/// use smart_core::records::Retention;
///
/// let retention = Retention::default();
/// assert_eq!((retention.max_age_days(), retention.max_runs()), (30, 100));
/// assert!(!retention.disabled().enabled());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    enabled: bool,
    max_age_days: u32,
    max_runs: u32,
}

impl Retention {
    /// The default age limit: 30 days, a month of history to look back on; the runs that still
    /// matter (kept variants, each definition's latest decision) are kept past it.
    pub const DEFAULT_MAX_AGE_DAYS: u32 = 30;
    /// The default count limit: 100 runs, the history the dashboard's render goal (under 1 s)
    /// is measured with, and a few tens of MB of records at most.
    pub const DEFAULT_MAX_RUNS: u32 = 100;
    /// The largest `max_age_days` `smart.toml` accepts (about 100 years).
    pub const MAX_AGE_DAYS: u32 = 36_500;
    /// The largest `max_runs` `smart.toml` accepts.
    pub const MAX_RUNS: u32 = 1_000_000;

    /// Keep runs younger than `max_age_days` (at least 1) and at most the newest `max_runs` (at
    /// least 1), protected runs aside.
    pub fn new(max_age_days: u32, max_runs: u32) -> Retention {
        Retention {
            enabled: true,
            max_age_days: max_age_days.max(1),
            max_runs: max_runs.max(1),
        }
    }

    /// The same limits, but passes remove nothing (`enabled = false`).
    pub fn disabled(self) -> Retention {
        Retention {
            enabled: false,
            ..self
        }
    }

    /// Whether passes prune at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Runs that started more than this many days ago are pruned.
    pub fn max_age_days(&self) -> u32 {
        self.max_age_days
    }

    /// Runs older than the newest this many are pruned.
    pub fn max_runs(&self) -> u32 {
        self.max_runs
    }
}

impl Default for Retention {
    /// 30 days, 100 runs.
    fn default() -> Self {
        Retention::new(Self::DEFAULT_MAX_AGE_DAYS, Self::DEFAULT_MAX_RUNS)
    }
}

/// The experiment definitions `smart run` would look up a decision for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Definitions {
    /// The valid experiments of the experiments dir: (name, definition hash) pairs.
    Current(BTreeSet<(String, String)>),
    /// Not known (the experiments dir could not be read): every definition ever decided counts
    /// as current.
    Unknown,
}

impl Definitions {
    fn counts(&self, experiment: &str, hash: &str) -> bool {
        match self {
            Definitions::Current(current) => {
                current.contains(&(experiment.to_owned(), hash.to_owned()))
            }
            Definitions::Unknown => true,
        }
    }
}

/// Why a run is never pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protection {
    /// Its `run.json` has no report: it is under way, or its process died.
    Open,
    /// `status.json` names it: `smart status` and the dashboard's live box show it.
    Current,
    /// It left a variant live (a kept decision), or the live configuration unknown.
    LeftLive,
    /// It holds the newest decision for its experiment's current definition, which tells
    /// `smart run` that the definition is decided (or the newest decision of its experiment).
    Decided,
}

/// What a pass found: the runs to remove and why, and how many stay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrunePlan {
    /// Runs started before the age limit, oldest first.
    pub by_age: Vec<String>,
    /// Younger runs beyond the count limit, oldest first.
    pub by_count: Vec<String>,
    /// Runs kept although a limit says to remove them, with the reason.
    pub protected: BTreeMap<String, Protection>,
    /// Runs left after the pass.
    pub kept: usize,
}

impl PrunePlan {
    /// Every run to remove, oldest first within each limit.
    pub fn runs(&self) -> Vec<String> {
        self.by_age.iter().chain(&self.by_count).cloned().collect()
    }

    /// Whether there is nothing to remove.
    pub fn is_empty(&self) -> bool {
        self.by_age.is_empty() && self.by_count.is_empty()
    }

    /// The reason, in words, as the audit line gives it.
    pub fn reason(&self, retention: &Retention) -> String {
        let mut parts = Vec::new();
        if !self.by_age.is_empty() {
            parts.push(format!(
                "older than {} days ({})",
                retention.max_age_days,
                self.by_age.len()
            ));
        }
        if !self.by_count.is_empty() {
            parts.push(format!(
                "more than {} runs ({})",
                retention.max_runs,
                self.by_count.len()
            ));
        }
        parts.join("; ")
    }
}

/// `pruned.json`: how many runs retention has removed so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunedCount {
    /// Runs removed by every pass so far.
    pub runs: u64,
    /// When the last pass removed any (RFC 3339 UTC).
    pub last: Option<String>,
}

/// The runs a pass at `now` would remove; changes nothing (`smart prune --dry-run`).
pub fn plan_prune(
    state_dir: &Path,
    retention: &Retention,
    definitions: &Definitions,
    now: SystemTime,
) -> Result<PrunePlan, RecordsError> {
    let runs = list_runs(state_dir)?;
    let current = read_status(state_dir)?.map(|s| s.run_id);
    let protected = protected(&runs, current.as_deref(), definitions);
    Ok(plan(&runs, &protected, retention, now))
}

/// Removes the runs [`plan_prune`] names, after appending one `prune` line for them to `audit`;
/// also finishes deleting what an interrupted earlier pass left in [`PRUNING_DIR`]. Call it with
/// the run lock held, so no run starts meanwhile. Returns what was removed.
pub fn prune(
    state_dir: &Path,
    retention: &Retention,
    definitions: &Definitions,
    now: SystemTime,
    audit: &AuditLog,
) -> Result<PrunePlan, RecordsError> {
    let trash = state_dir.join(PRUNING_DIR);
    // Runs in the trash were renamed there after their audit line: only deleting is left.
    empty_trash(&trash)?;
    if !retention.enabled {
        return Ok(PrunePlan::default());
    }
    let plan = plan_prune(state_dir, retention, definitions, now)?;
    if plan.is_empty() {
        return Ok(plan);
    }
    let runs = plan.runs();
    let entry = Entry {
        time: now,
        run_id: String::new(),
        action: Action::Prune,
        outcome: Outcome::Ok,
        details: serde_json::json!({ "runs": runs, "reason": plan.reason(retention) }),
    };
    audit
        .append(&entry)
        .map_err(|e| RecordsError::new("appending to", audit.path(), e))?;
    count_pruned(state_dir, runs.len(), now)?;
    fs::create_dir_all(&trash).map_err(|e| RecordsError::new("creating", &trash, e))?;
    let runs_dir = state_dir.join(RUNS_DIR);
    for id in &runs {
        let from = runs_dir.join(id);
        fs::rename(&from, trash.join(id)).map_err(|e| RecordsError::new("moving", from, e))?;
    }
    empty_trash(&trash)?;
    Ok(plan)
}

/// How many runs retention has removed so far (zero before the first pass that removed any).
pub fn pruned_count(state_dir: &Path) -> Result<PrunedCount, RecordsError> {
    let path = state_dir.join(PRUNED_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| RecordsError::new("parsing", path, e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(PrunedCount::default()),
        Err(e) => Err(RecordsError::new("reading", path, e)),
    }
}

fn count_pruned(state_dir: &Path, runs: usize, now: SystemTime) -> Result<(), RecordsError> {
    let mut count = pruned_count(state_dir)?;
    count.runs += runs as u64;
    count.last = Some(format_utc(now));
    let mut bytes = serde_json::to_vec_pretty(&count).expect("a count serializes");
    bytes.push(b'\n');
    write_atomic(&state_dir.join(PRUNED_FILE), &bytes, false)
}

/// Deletes everything in the trash dir (missing: nothing to do).
fn empty_trash(trash: &Path) -> Result<(), RecordsError> {
    let entries = match fs::read_dir(trash) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RecordsError::new("reading", trash, e)),
    };
    for entry in entries {
        let path = entry
            .map_err(|e| RecordsError::new("reading", trash, e))?
            .path();
        let removed = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(|e| RecordsError::new("deleting", path, e))?;
    }
    Ok(())
}

/// The pass over `runs` (oldest first, as [`list_runs`] gives them).
fn plan(
    runs: &[RunFile],
    protected: &BTreeMap<&str, Protection>,
    retention: &Retention,
    now: SystemTime,
) -> PrunePlan {
    let mut plan = PrunePlan::default();
    if !retention.enabled {
        plan.kept = runs.len();
        return plan;
    }
    let age = Duration::from_secs(u64::from(retention.max_age_days) * 86_400);
    // Both are RFC 3339 UTC with the same fixed width: they compare as strings.
    let cutoff = now.checked_sub(age).map(format_utc);
    let newest = runs.len().saturating_sub(retention.max_runs as usize);
    for (i, run) in runs.iter().enumerate() {
        let id = &run.plan.run_id;
        let old = cutoff.as_ref().is_some_and(|c| run.plan.started < *c);
        let beyond = i < newest;
        if !old && !beyond {
            plan.kept += 1;
            continue;
        }
        if let Some(why) = protected.get(id.as_str()) {
            plan.protected.insert(id.clone(), *why);
            plan.kept += 1;
        } else if old {
            plan.by_age.push(id.clone());
        } else {
            plan.by_count.push(id.clone());
        }
    }
    plan
}

/// The runs no pass may remove, with the first reason found.
fn protected<'r>(
    runs: &'r [RunFile],
    current: Option<&str>,
    definitions: &Definitions,
) -> BTreeMap<&'r str, Protection> {
    let mut protected = BTreeMap::new();
    // The newest run holding a decision (not aborted) for each current definition, as
    // `smart run` finds it (the last such decision in run order), and for each experiment name.
    let mut decided: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    let mut by_name: BTreeMap<&str, &str> = BTreeMap::new();
    for run in runs {
        let id = run.plan.run_id.as_str();
        let Some(report) = &run.report else {
            protected.insert(id, Protection::Open);
            continue;
        };
        if current == Some(id) {
            protected.insert(id, Protection::Current);
        } else if report.live != LiveConfig::Original
            || report.decisions.iter().any(|d| d.decision.is_kept())
        {
            protected.insert(id, Protection::LeftLive);
        }
        for d in &report.decisions {
            if d.decision != super::DecisionKind::Aborted {
                by_name.insert(&d.experiment, id);
                if definitions.counts(&d.experiment, &d.definition_hash) {
                    decided.insert((&d.experiment, &d.definition_hash), id);
                }
            }
        }
    }
    let latest: BTreeSet<&str> = decided.into_values().chain(by_name.into_values()).collect();
    for id in latest {
        protected.entry(id).or_insert(Protection::Decided);
    }
    protected
}
