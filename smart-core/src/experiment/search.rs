//! The `search` section of the experiment format: a space of parameter values that smart explores
//! by itself, one judged candidate at a time, instead of a list of variants the user wrote.
//!
//! These types are the contract of the section (see `docs/experiment-format.md` and
//! `docs/search.md`); the strategy that walks the space lives in the `smart-search` crate.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Metric, Params};

/// A search over parameter values: the space, its constraints, the budget and what is optimised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchSpec {
    /// The domain of every searched param, by name (`[a-z][a-z0-9_]*`, as in templates).
    pub params: BTreeMap<String, Domain>,
    /// Relations between integer params every candidate must satisfy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    /// Where the search starts: a value for every searched param. When absent: the `baseline`
    /// params if given, otherwise the middle value of each domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Params>,
    /// How many candidates and how much time the whole search may use.
    #[serde(default)]
    pub budget: Budget,
    /// The latency statistic the search lowers (the judge's metric for every candidate).
    #[serde(default)]
    pub objective: Metric,
    /// The family-wise confidence: the chance that the search keeps anything that is not a real
    /// win, over all its candidates together, is at most `1 − confidence`.
    #[serde(default = "default_search_confidence")]
    #[schemars(extend("exclusiveMinimum" = 0), extend("exclusiveMaximum" = 1))]
    pub confidence: f64,
    /// The reduction of the objective, in percent, a step must prove against the incumbent it
    /// replaces (the final result must still prove `decision.min_improvement_pct` against the
    /// configuration as found).
    #[serde(default = "default_min_step_improvement_pct")]
    #[schemars(range(min = 0), extend("exclusiveMaximum" = 100))]
    pub min_step_improvement_pct: f64,
    /// Seeds the order in which params are explored, so a search is reproducible.
    #[serde(default)]
    pub seed: u64,
}

fn default_search_confidence() -> f64 {
    0.99
}
fn default_min_step_improvement_pct() -> f64 {
    0.0
}

/// The values one param may take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Domain {
    /// Integers from `min` to `max`.
    Range(IntRange),
    /// A list of strings, in no particular order.
    Choices(Choices),
}

/// An integer range: every `step` from `min` (linear), or doublings from `min` (log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntRange {
    /// The smallest value.
    pub min: i64,
    /// The largest value (included when a step lands on it; a log range always includes it).
    pub max: i64,
    /// The distance between values of a linear range (default 1; not with `"scale": "log"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub step: Option<i64>,
    /// `linear` (the default) or `log`: `min`, 2·`min`, 4·`min`, … and `max`.
    #[serde(default)]
    pub scale: Scale,
}

/// How the values of an integer range are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Every `step`.
    #[default]
    Linear,
    /// Doublings: for values whose effect is proportional (buffer sizes, connection counts).
    Log,
}

/// A choice among strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Choices {
    /// The values, each rendered verbatim.
    pub choices: Vec<String>,
}

/// `left op factor × right` between two integer params, e.g. keepalive_requests ≥ 2 × workers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// The param on the left.
    pub left: String,
    /// The comparison.
    pub op: Comparison,
    /// The param on the right.
    pub right: String,
    /// The right param's multiplier (default 1).
    #[serde(default = "default_factor")]
    #[schemars(range(min = 1))]
    pub factor: i64,
}

fn default_factor() -> i64 {
    1
}

/// A comparison between two integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Comparison {
    /// At most.
    #[serde(rename = "<=")]
    AtMost,
    /// Less than.
    #[serde(rename = "<")]
    Less,
    /// At least.
    #[serde(rename = ">=")]
    AtLeast,
    /// More than.
    #[serde(rename = ">")]
    More,
}

impl Comparison {
    /// Whether `left op right` holds.
    pub fn holds(self, left: i64, right: i64) -> bool {
        match self {
            Comparison::AtMost => left <= right,
            Comparison::Less => left < right,
            Comparison::AtLeast => left >= right,
            Comparison::More => left > right,
        }
    }

    /// The operator as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::AtMost => "<=",
            Comparison::Less => "<",
            Comparison::AtLeast => ">=",
            Comparison::More => ">",
        }
    }
}

/// What the whole search may use; it may span many timer rounds (the spent part lives in the
/// search's state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// The most candidates judged, the final confirmation included.
    #[serde(default = "default_max_candidates")]
    #[schemars(range(min = 2, max = 200))]
    pub max_candidates: u32,
    /// The most seconds of measuring, over all rounds; `null` for no limit beyond the candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub max_total_s: Option<f64>,
}

fn default_max_candidates() -> u32 {
    20
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_candidates: default_max_candidates(),
            max_total_s: None,
        }
    }
}

impl SearchSpec {
    /// A spec with the defaults for everything but the params.
    pub fn new(params: BTreeMap<String, Domain>) -> Self {
        SearchSpec {
            params,
            constraints: Vec::new(),
            start: None,
            budget: Budget::default(),
            objective: Metric::default(),
            confidence: default_search_confidence(),
            min_step_improvement_pct: default_min_step_improvement_pct(),
            seed: 0,
        }
    }
}

/// The most values one param's domain may hold: a bigger range wants a larger `step` or `"scale":
/// "log"` (a search tries a handful of them anyway).
pub const MAX_LEVELS: usize = 10_000;

impl Domain {
    /// The domain's values in order (for choices: as written), or why it has none usable.
    pub fn levels(&self) -> Result<Vec<super::ParamValue>, String> {
        use super::ParamValue;
        match self {
            Domain::Choices(c) => {
                if c.choices.is_empty() {
                    return Err("has no choices; give at least one, like [\"on\", \"off\"]".into());
                }
                Ok(c.choices.iter().cloned().map(ParamValue::Str).collect())
            }
            Domain::Range(r) => {
                if r.min > r.max {
                    return Err(format!(
                        "min {} is above max {}; swap them or fix one",
                        r.min, r.max
                    ));
                }
                let mut out = Vec::new();
                match r.scale {
                    Scale::Linear => {
                        let step = r.step.unwrap_or(1);
                        if step < 1 {
                            return Err(format!(
                                "step {step} is below 1; give a step of 1 or more"
                            ));
                        }
                        let count = (r.max.abs_diff(r.min) / step as u64).saturating_add(1);
                        if count > MAX_LEVELS as u64 {
                            return Err(format!(
                                "holds {count} values, more than {MAX_LEVELS}; raise step or use \
                                 \"scale\": \"log\""
                            ));
                        }
                        let mut v = r.min;
                        loop {
                            out.push(ParamValue::Int(v));
                            match v.checked_add(step) {
                                Some(next) if next <= r.max => v = next,
                                _ => break,
                            }
                        }
                    }
                    Scale::Log => {
                        if r.step.is_some() {
                            return Err(
                                "gives step with \"scale\": \"log\"; a log range doubles from min, \
                                 so remove step (or use \"scale\": \"linear\")"
                                    .into(),
                            );
                        }
                        if r.min < 1 {
                            return Err(format!(
                                "min {} is below 1 on a log scale (it doubles from min); give a \
                                 min of 1 or more",
                                r.min
                            ));
                        }
                        let mut v = r.min;
                        while v < r.max {
                            out.push(ParamValue::Int(v));
                            v = v.saturating_mul(2);
                        }
                        out.push(ParamValue::Int(r.max));
                    }
                }
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::ParamValue;

    fn range(min: i64, max: i64, step: Option<i64>, scale: Scale) -> Domain {
        Domain::Range(IntRange {
            min,
            max,
            step,
            scale,
        })
    }

    fn ints(d: &Domain) -> Vec<i64> {
        d.levels()
            .unwrap()
            .into_iter()
            .map(|v| match v {
                ParamValue::Int(n) => n,
                ParamValue::Str(_) => unreachable!("an int range"),
            })
            .collect()
    }

    #[test]
    fn levels_of_ranges() {
        assert_eq!(
            ints(&range(1, 9, None, Scale::Linear)),
            (1..=9).collect::<Vec<_>>()
        );
        assert_eq!(ints(&range(0, 10, Some(4), Scale::Linear)), vec![0, 4, 8]);
        assert_eq!(
            ints(&range(64, 1000, None, Scale::Log)),
            vec![64, 128, 256, 512, 1000]
        );
        assert_eq!(ints(&range(5, 5, None, Scale::Log)), vec![5]);
        assert!(range(9, 1, None, Scale::Linear).levels().is_err());
        assert!(range(0, 8, None, Scale::Log).levels().is_err());
        assert!(range(1, 8, Some(2), Scale::Log).levels().is_err());
        assert!(range(0, 1_000_000, None, Scale::Linear).levels().is_err());
        assert!(
            range(i64::MAX - 1, i64::MAX, None, Scale::Linear)
                .levels()
                .is_ok()
        );
    }

    #[test]
    fn a_search_section_parses_with_defaults() {
        let spec: SearchSpec = serde_json::from_str(
            r#"{"params": {"level": {"min": 1, "max": 9}, "buffering": {"choices": ["on", "off"]}},
                "constraints": [{"left": "a", "op": ">=", "right": "b", "factor": 2}]}"#,
        )
        .unwrap();
        assert_eq!(spec.budget.max_candidates, 20);
        assert_eq!(spec.confidence, 0.99);
        assert_eq!(spec.constraints[0].op, Comparison::AtLeast);
        assert!(matches!(spec.params["buffering"], Domain::Choices(_)));
        assert!(Comparison::AtLeast.holds(4, 4) && !Comparison::More.holds(4, 4));
    }
}
