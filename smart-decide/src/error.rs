//! The typed error of smart-decide: a misuse of the judge by its caller, never a statistical result.

use thiserror::Error;

/// Why the judge refused a call (bad settings, or a call out of order).
///
/// Opaque on purpose: the message names what was wrong and what to do; variants may change.
#[derive(Debug, Clone, PartialEq, Error)]
#[error(transparent)]
pub struct DecideError(#[from] Kind);

#[derive(Debug, Clone, PartialEq, Error)]
pub(crate) enum Kind {
    #[error("guardrails.max_p99_increase_pct is {0}; give a percentage > 0 or null to turn it off")]
    P99Limit(f64),
    #[error("schedule.max_cycles is 0; give at least 2 cycles")]
    NoCycles,
    #[error("the experiment has no variants; give at least one")]
    NoVariants,
    #[error("variant index {index} is out of range: the judge knows {count} variants")]
    UnknownVariant { index: usize, count: usize },
    #[error("variant {variant}: a cycle must hold at least one block")]
    EmptyCycle { variant: String },
    #[error(
        "variant {variant}: one cycle's blocks carry different cycle indexes ({first} and {other})"
    )]
    MixedCycles {
        variant: String,
        first: u32,
        other: u32,
    },
    #[error(
        "variant {variant}: cycle {got} came after cycle {last}; feed cycles once each, in order"
    )]
    CycleOrder {
        variant: String,
        got: u32,
        last: u32,
    },
    #[error("variant {variant}: all {max} cycles were already fed; the test is over")]
    TooManyCycles { variant: String, max: u32 },
    #[error(
        "variant {variant}: its test already stopped ({verdict}); call extend() first if the answer was inconclusive"
    )]
    Stopped {
        variant: String,
        verdict: &'static str,
    },
    #[error("variant {variant}: only an inconclusive test can be extended, this one is {verdict}")]
    NotInconclusive {
        variant: String,
        verdict: &'static str,
    },
    #[error("variant {variant}: cannot extend, all {max} cycles of the schedule are used")]
    NoCyclesLeft { variant: String, max: u32 },
}
