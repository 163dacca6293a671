//! The values a search takes and gives: its settings, the candidates it hands out and what they
//! are judged against, the judge's answers, and how a search ends.

use serde::{Deserialize, Serialize};
use smart_core::engine::Verdict;
use smart_core::experiment::{Decision, SearchSpec};

use crate::space::Point;

/// The figures a search runs by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Family-wise confidence: all candidates together keep something that is not a real win
    /// with probability at most `1 − confidence`.
    pub confidence: f64,
    /// The most candidates judged, the confirmation included.
    pub max_candidates: u32,
    /// The most seconds of measuring over the whole search, if limited.
    pub max_total_s: Option<f64>,
    /// The longest one candidate can take (the schedule's worst case for one variant): the
    /// search starts a candidate only if that much time is left.
    pub candidate_worst_s: f64,
    /// The win, in percent, a step must prove against the incumbent it replaces.
    pub min_step_improvement_pct: f64,
    /// The win, in percent, anything must prove against the configuration as found.
    pub min_improvement_pct: f64,
    /// Seeds the order params are explored in.
    pub seed: u64,
}

impl Settings {
    /// The settings of a validated search section under the experiment's decision rule.
    pub fn of(spec: &SearchSpec, decision: &Decision, candidate_worst_s: f64) -> Self {
        Settings {
            confidence: spec.confidence,
            max_candidates: spec.budget.max_candidates,
            max_total_s: spec.budget.max_total_s,
            candidate_worst_s,
            min_step_improvement_pct: spec.min_step_improvement_pct,
            min_improvement_pct: decision.min_improvement_pct.get(),
            seed: spec.seed,
        }
    }

    /// The confidence each candidate's test runs at: the family's alpha split evenly over the
    /// budget's candidates (Bonferroni), so no order or outcome of tests can spend more.
    pub fn per_test_confidence(&self) -> f64 {
        1.0 - (1.0 - self.confidence) / f64::from(self.max_candidates.max(1))
    }
}

/// What a candidate is judged against: the baseline arm of its ABBA test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "against", content = "point")]
pub enum Against {
    /// The configuration as found (or rendered from the experiment's `baseline`).
    Original,
    /// The search's incumbent, a configuration it kept earlier.
    Incumbent(Point),
}

/// Why a candidate is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A step of the search.
    Step,
    /// The final check of the incumbent against the configuration as found.
    Confirmation,
}

/// One candidate to judge: apply `point` as the variant arm, `against` as the baseline arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Its number in the search, from 1.
    pub id: u32,
    /// The configuration to test.
    pub point: Point,
    /// What it must beat.
    pub against: Against,
    /// Step or confirmation.
    pub role: Role,
    /// `decision.confidence` for this candidate's judge (the family's share).
    pub confidence: f64,
    /// `decision.min_improvement_pct` for this candidate's judge.
    pub min_improvement_pct: f64,
}

/// A relative change in percent with its confidence bounds (the judge's `metric_change_pct`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChangePct {
    /// The point estimate.
    pub estimate: f64,
    /// The lower bound.
    pub lower: f64,
    /// The upper bound.
    pub upper: f64,
}

/// What the judge said about a candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    /// The verdict.
    pub verdict: Verdict,
    /// A guardrail fired: the search never goes that far in that direction again.
    pub guardrail: bool,
    /// Seconds the candidate took (counted against `max_total_s`).
    pub seconds: f64,
    /// The objective's change against what it was judged against, if the judge had enough data.
    pub change_pct: Option<ChangePct>,
}

/// A judged candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// The candidate.
    pub candidate: Candidate,
    /// The judge's answer.
    pub judged: Judged,
}

/// Why a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// No neighbour at the finest step beats the incumbent.
    Converged,
    /// The candidates or the time ran out.
    Budget,
}

/// How a search ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finish {
    /// The configuration to leave in place: `None` for the configuration as found.
    pub kept: Option<Point>,
    /// Why the search stopped.
    pub end: End,
    /// The confirmation failed, so the search fell back to the last point proven directly
    /// against the configuration as found.
    pub confirmation_failed: bool,
}

/// The search's answer: judge this candidate next, or the search is over.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Judge this candidate and [`Search::record`](crate::Search::record) the verdict.
    Test(Candidate),
    /// Nothing more to judge.
    Done(Finish),
}
