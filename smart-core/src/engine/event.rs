//! What the engine tells its observer: the run's plan, phase changes, blocks and their live
//! progress, the judge's steps, advice, decisions, and the run's end.

use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::RunReport;
use super::types::{Advice, Arm, BlockMeasurement, JudgeStep, LiveProgress};
use crate::Experiment;
use crate::records::DecisionRecord;

/// One event, stamped with the engine clock's time.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// Wall-clock time of the event.
    pub at: SystemTime,
    /// Time since the run started.
    pub elapsed: Duration,
    /// Estimated time left: every remaining block run, capped by the time box.
    pub left: Duration,
    /// What happened.
    pub kind: EventKind<'a>,
}

/// What happened.
#[derive(Debug, Clone, Copy)]
pub enum EventKind<'a> {
    /// The run starts: nothing has been touched yet.
    RunStarted {
        /// The run's identity and plan.
        plan: &'a RunPlan,
        /// The experiment as run.
        experiment: &'a Experiment,
    },
    /// The engine moved to another phase.
    Phase(&'a PhaseInfo),
    /// A block starts.
    BlockStarted(&'a BlockInfo),
    /// A running block's progress (about once a second).
    Progress {
        /// The block.
        block: &'a BlockInfo,
        /// What it saw so far.
        live: &'a LiveProgress,
    },
    /// A block finished (possibly stopped early by a guardrail).
    BlockFinished {
        /// The block.
        block: &'a BlockInfo,
        /// What it measured.
        measurement: &'a BlockMeasurement,
    },
    /// The judge answered after a cycle.
    Step {
        /// The variant's name.
        variant: &'a str,
        /// The cycle just fed, from 0.
        cycle: u32,
        /// The answer.
        step: JudgeStep,
    },
    /// A coach advised on an inconclusive variant.
    Advised {
        /// The variant's name.
        variant: &'a str,
        /// The advice.
        advice: &'a Advice,
        /// Whether the engine followed it (a `keep` against the rules is not followed).
        followed: bool,
    },
    /// Something went wrong that the engine handled (a failed switch, a guardrail); in words.
    Problem(&'a str),
    /// Nothing new, but time passed (at least once a second while the engine waits).
    Tick,
    /// A variant's final decision.
    Decided(&'a DecisionRecord),
    /// The run is over; the report says how it ended and which config is live.
    RunFinished(&'a RunReport),
}

/// The identity and plan of a run, fixed at its start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunPlan {
    /// The run's id (also its directory name under `runs/`).
    pub run_id: String,
    /// The experiment's name.
    pub experiment: String,
    /// The SHA-256 of the experiment's effective definition.
    pub definition_hash: String,
    /// The seed the ABBA start orders are drawn from (see [`super::cycle_order`]).
    pub seed: u64,
    /// The variants, in the order they are tested.
    pub variants: Vec<String>,
    /// Whether cycles are ABBA-interleaved (`false`: the seed's baseline-then-variant design).
    pub interleave: bool,
    /// Blocks per variant when every cycle runs (4 × `max_cycles` interleaved, 2 × otherwise).
    pub blocks_per_variant: u32,
    /// The time box, in seconds.
    pub max_duration_s: f64,
    /// The expected duration, in seconds, when every cycle runs and nothing is kept.
    pub expected_s: f64,
    /// The worst-case duration, in seconds: the figure `smart validate` prints (every cycle, every
    /// switch at the worst moment, the initial checks' full timeouts, one soak). 0 in runs
    /// recorded before it was part of the plan.
    #[serde(default)]
    pub worst_case_s: f64,
    /// When the run started (RFC 3339 UTC).
    pub started: String,
}

/// What the engine is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Validating and health-checking the configuration as found.
    CheckingBaseline,
    /// Making an arm live (write, validate, reload, live check, health).
    Switching,
    /// Measuring blocks of a variant's test.
    Measuring,
    /// Waiting for a coach's advice.
    Advising,
    /// Watching a kept variant under the guardrails before declaring it kept.
    Soaking,
    /// Restoring the original configuration and verifying it.
    Restoring,
    /// Closing the run with a variant left live.
    Keeping,
    /// The run is over.
    Finished,
}

impl Phase {
    /// The snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::CheckingBaseline => "checking_baseline",
            Phase::Switching => "switching",
            Phase::Measuring => "measuring",
            Phase::Advising => "advising",
            Phase::Soaking => "soaking",
            Phase::Restoring => "restoring",
            Phase::Keeping => "keeping",
            Phase::Finished => "finished",
        }
    }
}

/// A phase change, with the variant and arm it concerns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PhaseInfo {
    /// The new phase.
    pub phase: Phase,
    /// The variant whose test is under way, if any.
    pub variant: Option<String>,
    /// The arm being switched to or measured (`baseline` or a variant's name), if any.
    pub arm: Option<String>,
}

/// Whether a block belongs to a variant's test or to the soak of a kept variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BlockKind {
    /// Part of a test: fed to the judge.
    Test,
    /// Watching a kept variant under the guardrails: not fed to the judge.
    Soak,
}

/// One block's place in the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BlockInfo {
    /// 1-based index of the block in the run.
    pub index: u32,
    /// Test or soak.
    pub kind: BlockKind,
    /// The variant whose test (or soak) this is.
    pub variant: String,
    /// 1-based index of that variant.
    pub variant_index: u32,
    /// Which side was live.
    pub arm: Arm,
    /// The live arm's name: `baseline` or the variant's name.
    pub arm_name: String,
    /// The cycle (from 0); for soak blocks, the soak block's number.
    pub cycle: u32,
    /// The position in the cycle (from 0).
    pub position: u32,
    /// 1-based index of the block in the variant's test.
    pub block_in_variant: u32,
    /// Blocks in the variant's test when every cycle runs.
    pub blocks_in_variant: u32,
    /// Seconds of warm-up (cool-down after a switch) before recording.
    pub warmup_s: f64,
    /// Seconds recorded, as planned.
    pub duration_s: f64,
    /// When the block started (RFC 3339 UTC).
    pub started: String,
}
