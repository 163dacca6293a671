//! The decision on one variant: a stable, documented record that `smart history --json` prints
//! (an array of these), with a committed JSON Schema (`docs/history.schema.json`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::engine::Estimates;
use crate::experiment::Metric;

/// What was decided for a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionKind {
    /// Proven better, soaked under the guardrails, and left live.
    Keep,
    /// Worse, a guardrail fired, a switch failed, or another variant was better: the original
    /// configuration was restored.
    Revert,
    /// Not proven either way: the original configuration was restored (fail-safe).
    Inconclusive,
    /// The test did not finish (time box, cancellation, a failure elsewhere): the original
    /// configuration was restored.
    Aborted,
    /// Inconclusive to the statistics, kept on a coach's advice within the safety rules (no
    /// guardrail fired, the error bound held, the estimate was not a regression), soaked and left
    /// live.
    KeptByCoach,
}

impl DecisionKind {
    /// The name as serialized: `keep`, `revert`, `inconclusive`, `aborted`, `kept-by-coach`.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Keep => "keep",
            DecisionKind::Revert => "revert",
            DecisionKind::Inconclusive => "inconclusive",
            DecisionKind::Aborted => "aborted",
            DecisionKind::KeptByCoach => "kept-by-coach",
        }
    }

    /// Whether the variant was left live.
    pub fn is_kept(self) -> bool {
        matches!(self, DecisionKind::Keep | DecisionKind::KeptByCoach)
    }
}

/// The decision on one variant of one run.
///
/// Field names and meanings are a stable contract. Every relative change is
/// `(variant − baseline) / baseline × 100`: negative latency changes are faster, positive
/// error-rate changes are more errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DecisionRecord {
    /// The run that decided (its directory under `runs/`).
    pub run_id: String,
    /// The experiment's name.
    pub experiment: String,
    /// The SHA-256 of the experiment's effective definition when it ran: a queue runs an
    /// experiment again only when this changes.
    pub definition_hash: String,
    /// The variant's name.
    pub variant: String,
    /// The decision.
    pub decision: DecisionKind,
    /// The latency statistic the decision was made on.
    pub metric: Metric,
    /// ABBA cycles measured (pairs of blocks in the seed's design).
    pub cycles: u32,
    /// The judge's estimates: the median's and the error rate's change, their bounds, the
    /// p-value.
    #[serde(flatten)]
    pub estimates: Estimates,
    /// Why, in plain English with the numbers.
    pub reasons: Vec<String>,
    /// When the variant's test started (RFC 3339 UTC).
    pub started: String,
    /// When its decision became final (RFC 3339 UTC).
    pub finished: String,
    /// The judge's full report (its format is the judge's; see `docs/statistics.md`).
    pub report: serde_json::Value,
}

/// The JSON Schema of `smart history --json`: an array of [`DecisionRecord`]s.
pub fn history_schema() -> schemars::Schema {
    schemars::schema_for!(Vec<DecisionRecord>)
}
