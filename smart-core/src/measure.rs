//! The `measure` section of the experiment format: where each block's figures come from.
//!
//! The default source is smart's own open-loop HTTP probe (the `target` section). Other sources
//! measure what the server really does without smart sending the load itself: a `command` run
//! once per block (a benchmark such as pgbench, or a team's own script) that prints the block's
//! latencies or quantiles and counts as JSON. Whatever the source, the engine receives the same
//! [`crate::engine::BlockMeasurement`] per block, and the judge decides from raw latencies where
//! the source has them and from block quantiles otherwise.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the figures of each block come from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// Which source measures: `probe` (the default: smart's own requests to `target.urls`) or
    /// `command` (an argv run once per block that prints the block's figures as JSON).
    #[serde(default)]
    pub source: SourceKind,
    /// The command of the `command` source; required with it, refused with any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<MeasureCommand>,
}

impl Measure {
    /// Whether this is the default (the probe, nothing else set), which is left out when the
    /// definition is serialized, so every existing experiment keeps its definition hash.
    pub fn is_default(&self) -> bool {
        *self == Measure::default()
    }
}

/// The kinds of metric source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// smart's own open-loop HTTP probe against `target.urls`, the default.
    #[default]
    Probe,
    /// An argv run once per block that prints the block's figures as JSON on stdout.
    Command,
}

impl SourceKind {
    /// The name as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Probe => "probe",
            SourceKind::Command => "command",
        }
    }
}

/// A measuring command: run once per block, without a shell, with the block's timing in its
/// environment (`SMART_ARM`, `SMART_WARMUP_S`, `SMART_BLOCK_S`); it sends the load for
/// `SMART_WARMUP_S + SMART_BLOCK_S` seconds and prints the figures of the last `SMART_BLOCK_S`
/// seconds as one JSON object (see `docs/experiment-format.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasureCommand {
    /// The program and its arguments, e.g. `["/usr/local/bin/smart-pgbench", "-c", "4"]`.
    #[schemars(length(min = 1))]
    pub argv: Vec<String>,
    /// Extra environment variables for the command (e.g. `PGPORT`); the command otherwise runs
    /// with a cleared environment (`PATH`, `LANG=C` and the `SMART_*` variables).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// How long the command may run past the block's planned end (warm-up plus block) before it
    /// is killed and the block fails, in seconds.
    #[serde(default = "default_grace_s")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 3600.0))]
    pub grace_s: f64,
}

fn default_grace_s() -> f64 {
    30.0
}
