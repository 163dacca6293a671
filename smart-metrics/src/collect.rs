//! Reads a state dir (run records, decisions, status, the lock, the audit log, the prune count)
//! into metric families. Every figure is computed from the files, so `smart metrics`, the
//! textfile `smart run` writes and `/metrics` agree, and any process that can read the state dir
//! can publish them.

use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use smart_core::audit::{self, parse_utc};
use smart_core::engine::{LiveConfig, RunEnd};
use smart_core::records::{self, DecisionRecord, RunRecord, RunState, Status};

use crate::MetricsError;
use crate::exposition::{Family, Kind};

/// The lock file `smart run` holds (`smart_apply::LOCK_FILE`; this crate reads it, never takes
/// it exclusively).
const RUN_LOCK_FILE: &str = "lock";

/// What only the caller can know (it needs the applier's journal or is the run itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// Whether an interrupted run left changes that `smart recover` must put back; `None`
    /// leaves `smart_recovery_needed` out.
    pub recovery_needed: Option<bool>,
}

/// The metric families of the state dir `state_dir` as of `now`.
pub fn collect(
    state_dir: &Path,
    facts: Facts,
    now: SystemTime,
) -> Result<Vec<Family>, MetricsError> {
    collect_with(state_dir, facts, now, audit_families(state_dir))
}

/// [`collect`] with the audit log's families already computed (verifying the chain hashes every
/// line, so a run's observer does it at the run's start and end only, not after every block).
pub(crate) fn collect_with(
    state_dir: &Path,
    facts: Facts,
    now: SystemTime,
    audit: Vec<Family>,
) -> Result<Vec<Family>, MetricsError> {
    let status = records::read_status(state_dir).map_err(MetricsError::records)?;
    let lock_held = lock_held(state_dir)?;
    let mut runs = Vec::new();
    for run in records::list_runs(state_dir).map_err(MetricsError::records)? {
        // A run pruned between the listing and the load is simply gone.
        match records::load_run(state_dir, &run.plan.run_id) {
            Ok(record) => runs.push(record),
            Err(e)
                if !state_dir
                    .join(records::RUNS_DIR)
                    .join(&run.plan.run_id)
                    .exists() =>
            {
                drop(e);
            }
            Err(e) => return Err(MetricsError::records(e)),
        }
    }
    // The run under way, if one is: status says running and its process holds the lock.
    let live_run = status
        .as_ref()
        .filter(|s| s.state == RunState::Running && lock_held);
    let mut families = run_families(&runs, live_run.map(|s| s.run_id.as_str()));
    families.extend(live_families(status.as_ref(), live_run, lock_held));
    families.extend(audit);
    let pruned = records::pruned_count(state_dir).map_err(MetricsError::records)?;
    families.push(
        Family::new(
            "smart_runs_pruned_total",
            Kind::Counter,
            "Runs whose records retention ([retention] in smart.toml) removed; the run and decision counters count the runs still kept.",
        )
        .with(pruned.runs as f64),
    );
    if let Some(needed) = facts.recovery_needed {
        families.push(
            Family::new(
                "smart_recovery_needed",
                Kind::Gauge,
                "1 when an interrupted run left changes that `smart recover` must put back.",
            )
            .with(flag(needed)),
        );
    }
    families.push(
        Family::new(
            "smart_metrics_generated_timestamp_seconds",
            Kind::Gauge,
            "When these figures were read from the state dir (smart run rewrites its textfile at its start, after every event, and every minute while it waits for work).",
        )
        .with(unix(now)),
    );
    Ok(families)
}

/// Counters over every kept run, and per experiment its last run, decision and block.
fn run_families(runs: &[RunRecord], live_run: Option<&str>) -> Vec<Family> {
    let mut by_end: BTreeMap<(String, &str), u64> = BTreeMap::new();
    let mut decisions: BTreeMap<(String, String, &str), u64> = BTreeMap::new();
    let mut reverts: BTreeMap<String, u64> = BTreeMap::new();
    let mut revert_failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut guardrail_aborts: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_run: BTreeMap<String, &RunRecord> = BTreeMap::new();
    let mut last_finished: BTreeMap<String, &RunRecord> = BTreeMap::new();
    let mut last_decision: BTreeMap<(String, String), &DecisionRecord> = BTreeMap::new();
    for run in runs {
        let experiment = run.run.plan.experiment.clone();
        last_run.insert(experiment.clone(), run);
        match &run.run.report {
            Some(report) => {
                *by_end
                    .entry((experiment.clone(), report.end.as_str()))
                    .or_default() += 1;
                last_finished.insert(experiment.clone(), run);
                if report.live == LiveConfig::Unknown {
                    *revert_failures.entry(experiment.clone()).or_default() += 1;
                }
            }
            None if live_run == Some(run.run.plan.run_id.as_str()) => {}
            // Its process died before it wrote a report (`smart recover` closes what it left).
            None => {
                *by_end
                    .entry((experiment.clone(), "interrupted"))
                    .or_default() += 1
            }
        }
        for d in &run.decisions {
            *decisions
                .entry((experiment.clone(), d.variant.clone(), d.decision.as_str()))
                .or_default() += 1;
            if !d.decision.is_kept() {
                *reverts.entry(experiment.clone()).or_default() += 1;
            }
            last_decision.insert((experiment.clone(), d.variant.clone()), d);
        }
        let aborts = run
            .blocks
            .iter()
            .filter(|b| b.figures.aborted.is_some())
            .count() as u64;
        *guardrail_aborts.entry(experiment).or_default() += aborts;
    }
    let experiments: Vec<&String> = last_run.keys().collect();
    let per_experiment = |name, kind, help, counts: &BTreeMap<String, u64>| {
        let mut f = Family::new(name, kind, help);
        for experiment in &experiments {
            let n = counts.get(*experiment).copied().unwrap_or(0);
            f.push(vec![("experiment", (*experiment).clone())], n as f64);
        }
        f
    };

    let mut runs_total = Family::new(
        "smart_runs_total",
        Kind::Counter,
        "Runs kept in the records, by experiment and how they ended (completed, timed_out, cancelled, baseline_unsound, failed; interrupted: the process died).",
    );
    for ((experiment, end), n) in &by_end {
        runs_total.push(
            vec![
                ("experiment", experiment.clone()),
                ("end", (*end).to_owned()),
            ],
            *n as f64,
        );
    }
    let mut decisions_total = Family::new(
        "smart_decisions_total",
        Kind::Counter,
        "Decisions on variants, by experiment, variant and decision (keep, revert, inconclusive, aborted, kept-by-coach).",
    );
    for ((experiment, variant, decision), n) in &decisions {
        decisions_total.push(
            vec![
                ("experiment", experiment.clone()),
                ("variant", variant.clone()),
                ("decision", (*decision).to_owned()),
            ],
            *n as f64,
        );
    }
    let reverts_total = per_experiment(
        "smart_reverts_total",
        Kind::Counter,
        "Variants whose test ended with the original configuration put back (every decision but keep and kept-by-coach).",
        &reverts,
    );
    let revert_failures_total = per_experiment(
        "smart_revert_failures_total",
        Kind::Counter,
        "Runs that could not restore the original configuration (what is live is unknown; see the audit log and run `smart recover`).",
        &revert_failures,
    );
    let aborts_total = per_experiment(
        "smart_guardrail_aborts_total",
        Kind::Counter,
        "Measurement blocks a guardrail stopped early (error rate or latency beyond its limit).",
        &guardrail_aborts,
    );

    let mut start = Family::new(
        "smart_last_run_start_timestamp_seconds",
        Kind::Gauge,
        "When the experiment's last run started.",
    );
    for (experiment, run) in &last_run {
        if let Some(t) = parse_utc(&run.run.plan.started) {
            start.push(vec![("experiment", experiment.clone())], t);
        }
    }
    let mut end = Family::new(
        "smart_last_run_end_timestamp_seconds",
        Kind::Gauge,
        "When the experiment's last finished run ended.",
    );
    let mut failed = Family::new(
        "smart_last_run_failed",
        Kind::Gauge,
        "1 when the experiment's last finished run ended early on a failure (timed_out, baseline_unsound or failed: `smart run` exits 3), 0 when it completed or was stopped on request.",
    );
    let mut revert_failed = Family::new(
        "smart_last_run_revert_failed",
        Kind::Gauge,
        "1 when the experiment's last finished run could not restore the original configuration.",
    );
    for (experiment, run) in &last_finished {
        let Some(report) = &run.run.report else {
            continue;
        };
        let label = || vec![("experiment", experiment.clone())];
        if let Some(t) = parse_utc(&report.finished) {
            end.push(label(), t);
        }
        let failure = matches!(
            report.end,
            RunEnd::TimedOut | RunEnd::BaselineUnsound | RunEnd::Failed
        );
        failed.push(label(), flag(failure));
        revert_failed.push(label(), flag(report.live == LiveConfig::Unknown));
    }

    let mut p50 = Family::new(
        "smart_last_decision_p50_change_ratio",
        Kind::Gauge,
        "The judged relative change of the median latency in the variant's last decision (variant / baseline - 1: -0.05 is 5% faster), labelled with that decision.",
    );
    let mut decided_at = Family::new(
        "smart_last_decision_timestamp_seconds",
        Kind::Gauge,
        "When the variant's last decision became final, labelled with that decision.",
    );
    for ((experiment, variant), d) in &last_decision {
        let labels = || {
            vec![
                ("experiment", experiment.clone()),
                ("variant", variant.clone()),
                ("decision", d.decision.as_str().to_owned()),
            ]
        };
        if let Some(pct) = d.estimates.p50_change_pct {
            p50.push(labels(), pct / 100.0);
        }
        if let Some(t) = parse_utc(&d.finished) {
            decided_at.push(labels(), t);
        }
    }

    let mut probe_errors = Family::new(
        "smart_probe_last_block_error_ratio",
        Kind::Gauge,
        "Share of requests that failed in the experiment's last measured block, as its source counted them (the probe's, or the measure section's: source and target health).",
    );
    let mut probe_rate = Family::new(
        "smart_probe_last_block_requests_per_second",
        Kind::Gauge,
        "Requests per second in the experiment's last measured block, as its source counted them (the probe or the measure section's source).",
    );
    let mut probe_at = Family::new(
        "smart_probe_last_block_end_timestamp_seconds",
        Kind::Gauge,
        "When the experiment's last measured block ended.",
    );
    for (experiment, run) in &last_run {
        let Some(block) = run.blocks.last() else {
            continue;
        };
        let label = || vec![("experiment", experiment.clone())];
        let f = &block.figures;
        if f.requests > 0 {
            probe_errors.push(label(), f.errors as f64 / f.requests as f64);
        }
        probe_rate.push(label(), f.rate_per_s);
        if let Some(t) = parse_utc(&block.ended) {
            probe_at.push(label(), t);
        }
    }

    vec![
        runs_total,
        decisions_total,
        reverts_total,
        revert_failures_total,
        aborts_total,
        start,
        end,
        failed,
        revert_failed,
        p50,
        decided_at,
        probe_errors,
        probe_rate,
        probe_at,
    ]
}

/// Whether a run is under way, and what it is doing.
fn live_families(
    status: Option<&Status>,
    live_run: Option<&Status>,
    lock_held: bool,
) -> Vec<Family> {
    let mut active = Family::new(
        "smart_run_active",
        Kind::Gauge,
        "1 for the run under way: its experiment, the variant under test (empty between variants) and the engine's phase.",
    );
    if let Some(s) = live_run {
        active.push(
            vec![
                ("experiment", s.experiment.clone()),
                ("variant", s.variant.clone().unwrap_or_default()),
                ("phase", s.phase.as_str().to_owned()),
            ],
            1.0,
        );
    }
    let mut updated = Family::new(
        "smart_status_updated_timestamp_seconds",
        Kind::Gauge,
        "When status.json was last written: at least every 2 seconds while a run's engine works, even while it waits.",
    );
    if let Some(t) = status.and_then(|s| parse_utc(&s.updated)) {
        updated.push(Vec::new(), t);
    }
    vec![
        Family::new(
            "smart_running",
            Kind::Gauge,
            "1 while a run is under way (status.json says running and its process holds the run lock).",
        )
        .with(flag(live_run.is_some())),
        active,
        Family::new(
            "smart_lock_held",
            Kind::Gauge,
            "1 while a process (smart run, recover or revert) holds the state dir's run lock.",
        )
        .with(flag(lock_held)),
        updated,
    ]
}

/// The audit chain's state and head, and the recoveries it records.
pub(crate) fn audit_families(state_dir: &Path) -> Vec<Family> {
    let mut ok = Family::new(
        "smart_audit_chain_ok",
        Kind::Gauge,
        "1 when the audit log's hash chain, its head file and its rotated files verify (`smart audit verify`), 0 when they do not or cannot be read.",
    );
    let mut families = Vec::new();
    match audit::verify(state_dir) {
        Ok(summary) => {
            families.push(ok.with(1.0));
            families.push(
                Family::new(
                    "smart_audit_head_sequence",
                    Kind::Gauge,
                    "The seq of the audit chain's last line (with smart_audit_head_hash_prefix, an anchor kept outside the state dir).",
                )
                .with(summary.last_seq as f64),
            );
            families.push(
                Family::new(
                    "smart_audit_head_hash_prefix",
                    Kind::Gauge,
                    "The first 52 bits (13 hex digits) of the SHA-256 of the audit chain's last line, as an integer: `printf '%013x'` gives the start of `smart audit head`'s hash.",
                )
                .with(hash_prefix(&summary.last_hash)),
            );
        }
        Err(_) => {
            ok.push(Vec::new(), 0.0);
            families.push(ok);
        }
    }
    let mut recoveries = Family::new(
        "smart_recoveries_total",
        Kind::Counter,
        "Interrupted runs `smart recover` (or the recovery at the start of `smart run`) closed, by outcome (ok, failed, skipped), from the audit log still kept.",
    );
    for (outcome, n) in recoveries_by_outcome(state_dir) {
        recoveries.push(vec![("outcome", outcome)], n as f64);
    }
    families.push(recoveries);
    families
}

/// `recover` lines of the audit log (rotated files and the live one) by outcome; lines that do
/// not parse are left to `smart_audit_chain_ok`.
fn recoveries_by_outcome(state_dir: &Path) -> BTreeMap<String, u64> {
    #[derive(Deserialize)]
    struct Line {
        action: String,
        outcome: String,
    }
    let mut counts: BTreeMap<String, u64> = ["ok", "failed"]
        .into_iter()
        .map(|o| (o.to_owned(), 0))
        .collect();
    let mut files = smart_core::logs::rotated_files(state_dir, "audit-", ".jsonl", audit::LOG_FILE)
        .unwrap_or_default();
    files.push(state_dir.join(audit::LOG_FILE));
    for path in files {
        let Ok(file) = File::open(&path) else {
            continue;
        };
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            // Cheap filter before parsing: most lines are blocks and switches.
            if !line.contains("\"recover\"") {
                continue;
            }
            if let Ok(l) = serde_json::from_str::<Line>(&line)
                && l.action == "recover"
            {
                *counts.entry(l.outcome).or_default() += 1;
            }
        }
    }
    counts
}

/// Whether another open file holds the run lock (`smart run`, `recover`, `revert` take it
/// exclusively); probed with a shared lock that is released at once, so it never blocks them.
fn lock_held(state_dir: &Path) -> Result<bool, MetricsError> {
    let path = state_dir.join(RUN_LOCK_FILE);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(MetricsError::io("opening", &path, e)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(MetricsError::io("locking", &path, e)),
    }
}

/// The first 13 hex digits of `hash` as a number (exact in a float: 52 bits).
fn hash_prefix(hash: &str) -> f64 {
    hash.get(..13)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .map_or(f64::NAN, |n| n as f64)
}

fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn hash_prefixes_are_exact() {
        let hash = "00000000000ff0000000000000000000000000000000000000000000000000ab";
        assert_eq!(hash_prefix(hash), 255.0);
        assert_eq!(hash_prefix(&"f".repeat(64)), ((1u64 << 52) - 1) as f64);
        assert!(hash_prefix("xyz").is_nan());
    }

    #[test]
    fn an_empty_state_dir_has_no_lock_and_no_runs() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!lock_held(dir.path()).unwrap());
        let families = collect(dir.path(), Facts::default(), UNIX_EPOCH).unwrap();
        let text = crate::render(&families);
        assert!(text.contains("\nsmart_running 0\n"), "{text}");
        assert!(text.contains("\nsmart_audit_chain_ok 1\n"), "{text}");
        assert!(text.contains("\nsmart_audit_head_sequence 0\n"), "{text}");
        assert!(!text.contains("smart_recovery_needed"), "{text}");
        assert!(!text.contains("smart_runs_total{"), "{text}");
    }

    #[test]
    fn a_lock_held_by_another_open_file_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let holder = File::create(dir.path().join(RUN_LOCK_FILE)).unwrap();
        assert!(!lock_held(dir.path()).unwrap());
        holder.lock().unwrap();
        assert!(lock_held(dir.path()).unwrap());
        holder.unlock().unwrap();
        assert!(!lock_held(dir.path()).unwrap());
    }

    #[test]
    fn recover_lines_are_counted_by_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let line = |action: &str, outcome: &str| {
            format!(
                "{{\"seq\":1,\"time\":\"t\",\"run_id\":\"r\",\"action\":\"{action}\",\"outcome\":\"{outcome}\",\"details\":{{\"note\":\"recover\"}},\"prev\":\"0\"}}\n"
            )
        };
        fs::write(
            dir.path().join("audit-0001.jsonl"),
            line("recover", "ok") + &line("apply", "ok"),
        )
        .unwrap();
        fs::write(
            dir.path().join(audit::LOG_FILE),
            line("recover", "failed") + &line("block", "failed") + &line("recover", "ok"),
        )
        .unwrap();
        let counts = recoveries_by_outcome(dir.path());
        assert_eq!(counts.get("ok"), Some(&2));
        assert_eq!(counts.get("failed"), Some(&1));
    }
}
