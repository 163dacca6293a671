//! Reading what the dashboard shows from the state dir: the runs (through the records readers of
//! smart-core), the live status, and the audit lines grouped by run.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use smart_core::audit::{LOG_FILE, Line};
use smart_core::records::{self, EXPERIMENT_FILE, RUNS_DIR, RunRecord, STATUS_FILE, Status};

use crate::DashboardError;
use crate::audit_rows::{self, AuditRow, AuditRows};

/// Everything the pages are made of, read once per render (samples and audit lines are read for
/// the run pages being rendered only).
#[derive(Debug)]
pub(crate) struct State {
    /// Every run whose id names a safe file, oldest first.
    pub(crate) runs: Vec<Run>,
    /// `status.json` as written by the engine, parsed, with its bytes.
    pub(crate) status: Option<(Status, Vec<u8>)>,
    /// What each experiment's schedule can detect, as smart-cli stored it, by experiment name.
    pub(crate) feasibility: BTreeMap<String, crate::feasibility::Stored>,
}

/// One run: its records and its definition as run.
#[derive(Debug)]
pub(crate) struct Run {
    /// Plan, report, blocks and decisions.
    pub(crate) record: RunRecord,
    /// `experiment.json`, if it could be read.
    pub(crate) definition: Option<serde_json::Value>,
}

impl Run {
    /// The run's id.
    pub(crate) fn id(&self) -> &str {
        &self.record.run.plan.run_id
    }
}

/// Whether `id` can name a page file and a URL path segment as it is.
pub(crate) fn safe_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Reads the state dir; a state dir without runs (or that does not exist yet) is an empty state.
pub(crate) fn state(state_dir: &Path) -> Result<State, DashboardError> {
    let mut runs = Vec::new();
    for file in records::list_runs(state_dir).map_err(DashboardError::records)? {
        let id = &file.plan.run_id;
        if !safe_id(id) {
            continue;
        }
        let record = match records::load_run(state_dir, id) {
            Ok(record) => record,
            // Pruned since it was listed (a run dir is renamed away whole): not a run any more.
            Err(_) if !state_dir.join(RUNS_DIR).join(id).is_dir() => continue,
            Err(e) => return Err(DashboardError::records(e)),
        };
        let path = state_dir.join(RUNS_DIR).join(id).join(EXPERIMENT_FILE);
        let definition = fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        runs.push(Run { record, definition });
    }
    let status = read_status(state_dir)?;
    Ok(State {
        runs,
        status,
        feasibility: crate::feasibility::read_all(state_dir),
    })
}

/// `status.json` with its bytes (to publish as is), if there is one.
pub(crate) fn read_status(state_dir: &Path) -> Result<Option<(Status, Vec<u8>)>, DashboardError> {
    let path = state_dir.join(STATUS_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DashboardError::io("reading", &path, e)),
    };
    let status = serde_json::from_slice(&bytes)
        .map_err(|e| DashboardError::io("parsing", &path, io::Error::other(e)))?;
    Ok(Some((status, bytes)))
}

/// The audit lines of the runs in `run_ids` as table rows, by run id in log order: rotated
/// `audit-*.jsonl` files in name order, then `audit.jsonl`. Only those runs' lines are kept, each
/// as its row, and of the run under way (`live`) only the last [`audit_rows::LIVE_AUDIT_ROWS`], so a
/// live render holds a bounded number of rows, not the whole history's parsed lines. Lines that
/// do not parse (a torn last line) are left out; `smart audit verify` is the place that judges
/// the log.
pub(crate) fn audit_of(
    state_dir: &Path,
    run_ids: &BTreeSet<&str>,
    live: Option<&str>,
) -> Result<BTreeMap<String, AuditRows>, DashboardError> {
    let mut files: Vec<_> = match fs::read_dir(state_dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
            })
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(DashboardError::io("reading", state_dir, e)),
    };
    files.sort();
    files.push(state_dir.join(LOG_FILE));
    let mut by_run: BTreeMap<String, (VecDeque<AuditRow>, usize)> = BTreeMap::new();
    // Line by line: the log grows with every block, and a render should not hold it whole.
    let mut text = String::new();
    for path in files {
        let mut reader = match fs::File::open(&path) {
            Ok(file) => BufReader::new(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(DashboardError::io("reading", &path, e)),
        };
        loop {
            text.clear();
            let read = reader
                .read_line(&mut text)
                .map_err(|e| DashboardError::io("reading", &path, e))?;
            if read == 0 {
                break;
            }
            if let Ok(line) = serde_json::from_str::<Line>(&text)
                && run_ids.contains(line.run_id.as_str())
            {
                let row = audit_rows::audit_row(&line);
                let bounded = live == Some(line.run_id.as_str());
                let (rows, omitted) = by_run.entry(line.run_id).or_default();
                if bounded && rows.len() == audit_rows::LIVE_AUDIT_ROWS {
                    rows.pop_front();
                    *omitted += 1;
                }
                rows.push_back(row);
            }
        }
    }
    Ok(by_run
        .into_iter()
        .map(|(id, (rows, omitted))| {
            let rows = AuditRows {
                rows: rows.into(),
                omitted,
            };
            (id, rows)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use smart_core::audit::{Action, AuditLog, Entry, Outcome};

    use super::*;

    #[test]
    fn the_run_under_way_keeps_only_its_last_rows_and_other_runs_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        let count = audit_rows::LIVE_AUDIT_ROWS + 30;
        for (run, n) in [("done", 5), ("live", count), ("other", 3)] {
            for block in 0..n {
                let entry = Entry {
                    time: SystemTime::now(),
                    run_id: run.to_owned(),
                    action: Action::Block,
                    outcome: Outcome::Ok,
                    details: serde_json::json!({ "block": block }),
                };
                log.append(&entry).unwrap();
            }
        }
        let audit = audit_of(dir.path(), &BTreeSet::from(["done", "live"]), Some("live")).unwrap();
        assert!(!audit.contains_key("other"));
        assert_eq!((audit["done"].rows.len(), audit["done"].omitted), (5, 0));
        let live = &audit["live"];
        assert_eq!(live.rows.len(), audit_rows::LIVE_AUDIT_ROWS);
        assert_eq!(live.omitted, 30);
        // The newest lines, in log order.
        assert!(
            live.rows[0].details.contains("\"block\":30"),
            "{}",
            live.rows[0].details
        );
        let last = format!("\"block\":{}", count - 1);
        assert!(live.rows.last().unwrap().details.contains(&last));
        // Once the run is over, every line is listed.
        let all = audit_of(dir.path(), &BTreeSet::from(["live"]), None).unwrap();
        assert_eq!((all["live"].rows.len(), all["live"].omitted), (count, 0));
    }
}
