//! The engine: sequences one experiment run through its ports — check the baseline, test each
//! variant in randomized ABBA cycles, feed the judge, stop early, keep at most the best variant
//! after a soak, and otherwise restore the original configuration — and reports every step to an
//! observer. `docs/engine.md` describes the sequence in full.
//!
//! The engine is plain async Rust with no runtime and no I/O of its own: probes, appliers, the
//! judge, the coach, the clock and the observer are traits ([`ports`]), so the engine runs with
//! fakes and a simulated clock in tests ([`sim`]) and other tools can embed it with their own
//! parts.
//!
//! Whatever happens — a failed switch, a guardrail, the time box, cancellation, a judge or
//! observer failure — the run ends on the original configuration, unless a variant was proven,
//! soaked and kept. When even restoring fails, [`run`] returns an [`EngineError`].

mod cancel;
mod design;
mod event;
pub mod ports;
pub(crate) mod race;
mod run;
pub mod sim;
mod types;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::mix::splitmix64;
pub use cancel::{CancelToken, Cancelled};
pub use design::{CycleOrder, cycle_order, fresh_seed};
pub use event::{BlockInfo, BlockKind, Event, EventKind, Phase, PhaseInfo, RunPlan};
pub use ports::{
    ApplierPort, ClockPort, CoachPort, JudgePort, NoCoach, NoObserver, ObserverError, ObserverPort,
    ProbePort,
};
pub use run::run;
pub use types::{
    Advice, AdviceAction, AdviceRequest, ApplyFailure, Arm, BlockMeasurement, BlockRequest, Bounds,
    Conclusion, CycleBlock, Estimates, FailureCause, HostPressure, JudgeStep, Judgement,
    LiveProgress, PortError, Verdict,
};

use crate::records::DecisionRecord;

/// What identifies a run and how it can be stopped.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The run's id (see [`crate::records::new_run_id`]).
    pub run_id: String,
    /// The seed of the ABBA start orders; recorded, so the design can be replayed.
    pub seed: u64,
    /// Tripped by SIGINT/SIGTERM: stop probing, restore, record, return.
    pub cancel: CancelToken,
}

/// The parts a run works through, borrowed for its duration.
#[derive(Debug)]
pub struct Ports<'a, P, A, J, K, C, O> {
    /// Measures blocks.
    pub probe: &'a mut P,
    /// Changes and restores the configuration.
    pub applier: &'a mut A,
    /// Judges each variant.
    pub judge: &'a mut J,
    /// Tells time and waits.
    pub clock: &'a K,
    /// Advises on inconclusive variants ([`NoCoach`] for none).
    pub coach: &'a mut C,
    /// Records and shows what happens.
    pub observer: &'a mut O,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    /// Every variant was tested and decided.
    Completed,
    /// The time box (`max_duration_s`) passed: the original was restored, open decisions aborted.
    TimedOut,
    /// Cancelled (SIGINT/SIGTERM): the original was restored, open decisions aborted.
    Cancelled,
    /// The configuration as found failed its checks (nothing was changed), or the baseline failed
    /// a guardrail during the run (the original was restored).
    BaselineUnsound,
    /// Something else failed (a probe, the judge, the records); see the report's reason.
    Failed,
    /// The run's process died (a crash, SIGKILL, a power cut) and `smart recover` (or `smart
    /// revert`) later restored the original and closed the record; see the report's reason.
    Recovered,
}

impl RunEnd {
    /// The snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            RunEnd::Completed => "completed",
            RunEnd::TimedOut => "timed_out",
            RunEnd::Cancelled => "cancelled",
            RunEnd::BaselineUnsound => "baseline_unsound",
            RunEnd::Failed => "failed",
            RunEnd::Recovered => "recovered",
        }
    }
}

/// Which configuration is live when the run is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LiveConfig {
    /// The original configuration, verified.
    Original,
    /// A kept variant.
    Variant(String),
    /// Restoring the original failed: what is live is unknown (see the audit log).
    Unknown,
}

/// What a run did: how it ended, what is live, and the decision on every variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunReport {
    /// The run's id.
    pub run_id: String,
    /// The experiment's name.
    pub experiment: String,
    /// The SHA-256 of the experiment's effective definition.
    pub definition_hash: String,
    /// The seed of the ABBA design.
    pub seed: u64,
    /// When the run started (RFC 3339 UTC).
    pub started: String,
    /// When it ended (RFC 3339 UTC).
    pub finished: String,
    /// How it ended.
    pub end: RunEnd,
    /// Why it ended early, in words (`null` when completed).
    pub end_reason: Option<String>,
    /// Which configuration is live.
    pub live: LiveConfig,
    /// One decision per variant, in the experiment's order.
    pub decisions: Vec<DecisionRecord>,
}

/// Restoring the original configuration failed: the server may be on a variant. The run's
/// records were written; run `smart recover` and check the server.
#[derive(Debug, thiserror::Error)]
#[error(
    "run {}: the original configuration could not be restored ({message}); check the server and run `smart recover`",
    report.run_id
)]
pub struct EngineError {
    message: String,
    report: Box<RunReport>,
}

impl EngineError {
    /// What failed.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The run's report (decisions aborted, live config unknown).
    pub fn report(&self) -> &RunReport {
        &self.report
    }
}
