//! The statistical judge of `smart`: pure functions over per-block samples that decide whether a
//! variant is kept, reverted or inconclusive. No I/O and no clock.
//!
//! The engine feeds each finished ABBA cycle to a [`Judge`] and stops when it answers
//! [`Step::Stop`]; [`Judge::conclude`] then keeps at most the single best variant, with reports
//! that carry the numbers and plain-English reasons. [`feasibility`] tells `smart validate` whether
//! a schedule can reach a decision at all and the smallest win it can detect. The method is
//! explained in `docs/statistics.md`.

mod analysis;
mod error;
mod feasibility;
mod host;
mod judge;
mod port;
mod reasons;
mod report;
mod sample;
mod sequential;
mod signflip;
mod stats;

pub use error::DecideError;
pub use feasibility::{
    Feasibility, Noise, TYPICAL_ERROR_RATE, TYPICAL_PAIR_SD, disturbed_cycles, feasibility,
    keep_probability,
};
pub use judge::Judge;
pub use port::EngineJudge;
pub use report::{ArmSummary, Interval, Outcome, Step, VariantReport, Verdict};
pub use sample::{Arm, BlockQuantiles, BlockSample, block_location};
pub use stats::wilson;
