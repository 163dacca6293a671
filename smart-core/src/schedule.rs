//! How long an experiment can take: the worst case, which validation holds against
//! `max_duration_s`, and the expected duration shown to the user. The formula is documented in
//! `docs/experiment-format.md` ("How long an experiment takes"); the engine follows the same plan.

use std::fmt;

use crate::experiment::Schedule;

/// The blocks of one ABBA cycle: baseline, variant, variant, baseline.
#[doc(hidden)] // public for sibling crates only, not part of the embedding API
pub const BLOCKS_PER_CYCLE: u32 = 4;

/// What the schedule's duration depends on besides the schedule itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// How many variants are tried.
    pub variants: usize,
    /// The longest the initial checks of the baseline may take, in seconds (the `validate`
    /// command's timeout plus the health check's, for the ones that are configured).
    pub initial_checks_s: f64,
}

/// The worst-case and expected duration of an experiment, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Durations {
    /// The longest the experiment can take when every variant runs all its cycles, every switch
    /// is made at the worst moment, the initial checks take their full timeouts, and one variant
    /// is kept and soaked.
    pub worst_case_s: f64,
    /// The duration when every variant runs all its cycles with the usual number of switches and
    /// nothing is kept: an upper estimate, since the judge often stops a variant early.
    pub expected_s: f64,
}

impl Durations {
    /// Computes both durations for `schedule` and `plan`.
    ///
    /// Per variant: `max_cycles × 4 × block_s` of measuring plus a cool-down after every switch
    /// of the live config. Interleaved (ABBA, each cycle's start order drawn at random), a cycle
    /// switches at most 3 times (into its first block when the previous cycle ended on the other
    /// arm, then twice inside), plus one switch back to the baseline at the end: worst case
    /// `3 × max_cycles + 1` switches, `2.5 × max_cycles + 0.5` on average. Baseline-then-variant
    /// (`interleave: false`) switches twice per variant. The worst case adds the initial baseline
    /// checks and one `soak_s` (at most one variant is kept).
    pub fn of(schedule: &Schedule, plan: Plan) -> Durations {
        let variants = plan.variants as f64;
        let cycles = f64::from(schedule.max_cycles);
        let measuring = cycles * f64::from(BLOCKS_PER_CYCLE) * schedule.block_s;
        let (worst_switches, usual_switches) = if schedule.interleave {
            (3.0 * cycles + 1.0, 2.5 * cycles + 0.5)
        } else {
            (2.0, 2.0)
        };
        let per_variant_worst = measuring + worst_switches * schedule.cooldown_s;
        let per_variant_usual = measuring + usual_switches * schedule.cooldown_s;
        Durations {
            worst_case_s: plan.initial_checks_s + variants * per_variant_worst + schedule.soak_s,
            expected_s: variants * per_variant_usual,
        }
    }
}

/// Seconds as a short human duration: `45s`, `12m 30s`, `1h 5m`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Human(pub f64);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.max(0.0).round() as u64;
        let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
        match (h, m) {
            (0, 0) => write!(f, "{s}s"),
            (0, _) => write!(f, "{m}m {s}s"),
            _ => write!(f, "{h}h {m}m"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(interleave: bool) -> Schedule {
        Schedule {
            cooldown_s: 5.0,
            block_s: 10.0,
            max_cycles: 8,
            interleave,
            soak_s: 120.0,
            max_duration_s: 3600.0,
        }
    }

    #[test]
    fn worst_case_and_expected_follow_the_documented_formula() {
        let plan = Plan {
            variants: 2,
            initial_checks_s: 40.0,
        };
        let d = Durations::of(&schedule(true), plan);
        // Per variant: 8 × 4 × 10 = 320 s measuring; worst 25 switches × 5 s, usual 20.5 × 5 s.
        assert_eq!(d.worst_case_s, 40.0 + 2.0 * (320.0 + 125.0) + 120.0);
        assert_eq!(d.expected_s, 2.0 * (320.0 + 102.5));
        let d = Durations::of(&schedule(false), plan);
        assert_eq!(d.worst_case_s, 40.0 + 2.0 * (320.0 + 10.0) + 120.0);
        assert_eq!(d.expected_s, 2.0 * 330.0);
    }

    #[test]
    fn humans_read_durations() {
        assert_eq!(Human(45.0).to_string(), "45s");
        assert_eq!(Human(750.0).to_string(), "12m 30s");
        assert_eq!(Human(3900.0).to_string(), "1h 5m");
    }
}
