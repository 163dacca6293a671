//! `status.json`: what runs now, in which phase, how far along, and its live figures; rewritten
//! atomically (temp file + rename) at every step and at least every 2 seconds during a run, so
//! `smart status` and the dashboard can read it at any moment.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::engine::{LiveProgress, Phase, RunEnd};
use crate::records::DecisionKind;

/// Whether a run is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// A run is under way (or its process died: compare `pid` and `updated`).
    Running,
    /// The last run is over.
    Finished,
}

/// The contents of `status.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Status {
    /// Running or finished.
    pub state: RunState,
    /// The process running it.
    pub pid: u32,
    /// The run's id.
    pub run_id: String,
    /// The experiment's name.
    pub experiment: String,
    /// What the engine is doing.
    pub phase: Phase,
    /// The variant under test, if any.
    pub variant: Option<String>,
    /// Its 1-based index.
    pub variant_index: Option<u32>,
    /// How many variants the run tests.
    pub variants: u32,
    /// The arm being switched to or measured.
    pub arm: Option<String>,
    /// The current block's 1-based index in the variant's test (or soak).
    pub block: Option<u32>,
    /// Blocks in the variant's test (or soak) when every cycle runs.
    pub blocks: Option<u32>,
    /// Seconds since the run started.
    pub elapsed_s: f64,
    /// Estimated seconds left (every remaining block run, capped by the time box).
    pub left_s: f64,
    /// The running block's live figures.
    pub live: Option<LiveProgress>,
    /// How the run ended, once it has.
    pub end: Option<RunEnd>,
    /// The decisions made so far: (variant, decision).
    pub decisions: Vec<(String, DecisionKind)>,
    /// When this file was written (RFC 3339 UTC).
    pub updated: String,
}

/// The JSON Schema of `status.json` (and `smart status --json`).
pub fn status_schema() -> schemars::Schema {
    schemars::schema_for!(Status)
}
