//! The "What this schedule can detect" part of a run's page: the stored feasibility of the run's
//! experiment (see `crate::feasibility`), saying whether it comes from noise measured on this
//! server by `smart calibrate` or from a typical figure.

use serde::Serialize;

use super::parts::{Fact, fact};
use crate::feasibility::Stored;
use crate::format;

/// What the page shows of a stored feasibility.
#[derive(Debug, Serialize)]
pub(crate) struct FeasibilityView {
    /// The smallest win kept in 80 % of runs and the power at twice the threshold.
    pub(crate) headline: String,
    /// Where the noise came from, and when.
    pub(crate) source: String,
    pub(crate) facts: Vec<Fact>,
    pub(crate) notes: Vec<String>,
    /// Whether the schedule cannot keep, or the required win is out of its reach.
    pub(crate) warn: bool,
}

/// The view of a stored feasibility.
pub(crate) fn feasibility(stored: &Stored) -> FeasibilityView {
    let f = &stored.feasibility;
    let need = stored.min_improvement_pct;
    let headline = if f.reachable {
        let mde = f.min_detectable_improvement_pct.map_or_else(
            || "no win up to four times the required one is kept in 80 % of runs".to_owned(),
            |m| format!("the smallest win kept in 80 % of runs is {m:.1} %"),
        );
        match (f.power_at_twice_threshold, need) {
            (Some(p), Some(n)) => format!(
                "{mde}; a {:.0} % win is kept in {:.0} % of runs",
                (2.0 * n).min(99.0),
                p * 100.0
            ),
            _ => mde,
        }
    } else {
        "this schedule cannot keep any variant (see the notes)".to_owned()
    };
    let source = match stored.noise_source.as_deref() {
        Some("measured") => format!(
            "From this server's noise, measured by `smart calibrate`{}.",
            stored
                .calibrated
                .as_deref()
                .map_or_else(String::new, |t| format!(" at {}", format::time_seconds(t)))
        ),
        _ => "From a typical noise figure, not this server's: run `smart calibrate` to measure it."
            .to_owned(),
    };
    let mut facts = Vec::new();
    if let Some(n) = need {
        facts.push(fact("Required win", format!("{n:.0} %")));
    }
    if let Some(sd) = f.assumed_pair_sd {
        facts.push(fact(
            "Block-pair noise",
            format!("{sd:.3} (sd of the log ratio of neighbouring blocks)"),
        ));
    }
    if let Some(share) = f.assumed_disturbed_share.filter(|s| *s > 0.0) {
        facts.push(fact(
            "Cycles left out for host pressure",
            format!("{:.0} %", share * 100.0),
        ));
    }
    if let Some(e) = f.assumed_error_rate {
        facts.push(fact("Error rate", format!("{:.2} %", e * 100.0)));
    }
    if let (Some(first), Some(cycles)) = (f.first_keep_cycle, f.cycles) {
        facts.push(fact(
            "First possible keep",
            format!("after cycle {first} of {cycles}"),
        ));
    }
    if let Some(t) = &stored.computed {
        facts.push(fact("Computed", format::time_seconds(t)));
    }
    let out_of_reach = match (f.min_detectable_improvement_pct, need) {
        (Some(m), Some(n)) => m > 2.0 * n,
        (None, _) => true,
        (Some(_), None) => false,
    };
    FeasibilityView {
        headline,
        source,
        facts,
        notes: f.notes.clone(),
        warn: !f.reachable || out_of_reach,
    }
}
