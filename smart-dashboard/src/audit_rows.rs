//! The audit lines of a run page's table: one row per line, made as the log is read (by
//! `load.rs`) and shown by `view.rs`, so neither imports the other for them.

use serde::Serialize;
use smart_core::audit::Line;

use crate::format;

/// The audit lines a live run page lists (about four per block).
pub(crate) const LIVE_AUDIT_ROWS: usize = 200;

/// One audit line.
#[derive(Debug, Serialize)]
pub(crate) struct AuditRow {
    pub(crate) seq: u64,
    pub(crate) time: String,
    pub(crate) action: String,
    pub(crate) outcome: String,
    pub(crate) details: String,
}

/// A run's audit lines as table rows, and how many earlier ones were left out (a live page's).
#[derive(Debug, Default)]
pub(crate) struct AuditRows {
    /// The rows listed, in log order.
    pub(crate) rows: Vec<AuditRow>,
    /// Earlier lines of the run not listed.
    pub(crate) omitted: usize,
}

/// An audit line as the run page's table shows it (made as the log is read, so a render never
/// holds the parsed lines with their details).
pub(crate) fn audit_row(line: &Line) -> AuditRow {
    let name = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let mut details = match &line.details {
        serde_json::Value::Null => String::new(),
        v => v.to_string(),
    };
    if details.chars().count() > 400 {
        details = details.chars().take(400).collect::<String>() + "…";
    }
    AuditRow {
        seq: line.seq,
        time: format::clock(&line.time),
        action: name(serde_json::to_value(line.action)).replace('_', " "),
        outcome: name(serde_json::to_value(line.outcome)),
        details,
    }
}
