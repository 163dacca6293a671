//! The strategy as the run loop drives it ([`smart_core::runner::Strategy`]): each candidate
//! becomes a one-variant experiment — the search experiment with the candidate as its only
//! variant, its baseline the configuration the candidate is judged against, and its decision
//! section at the candidate's confidence and margin — validated like any experiment, so the
//! engine, the ABBA design and the judge are the very same.

use serde_json::Value;
use smart_core::engine::Verdict;
use smart_core::experiment::{Confidence, Improvement, SearchSpec};
use smart_core::records::DecisionRecord;
use smart_core::runner::{SearchStep, Strategy};
use smart_core::validate::{ApplyBy, validate_text_by};
use smart_core::{Defaults, Experiment};

use crate::space::{Point, Space};
use crate::strategy::{Against, ChangePct, Judged, Next, Role, Search, Settings, Trial};

/// The judged pattern search, for [`smart_core::runner::Runner::run_searching`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PatternSearch;

impl Strategy for PatternSearch {
    type State = Search;

    fn start(&self, experiment: &Experiment) -> Result<Search, String> {
        let spec = spec(experiment)?;
        let space = Space::new(spec).map_err(|e| e.to_string())?;
        let original = experiment.baseline().and_then(|b| space.point_of(b));
        let start = match (&spec.start, experiment.baseline()) {
            (Some(start), _) | (None, Some(start)) => space.point_of(start).ok_or_else(|| {
                "search.start (or baseline) is not a point of the space; give every searched \
                 param a value from its domain"
                    .to_owned()
            })?,
            (None, None) => space.middle(),
        };
        let settings = Settings::of(
            spec,
            experiment.decision(),
            experiment.durations().worst_case_s,
        );
        Search::new(&space, start, original, settings).map_err(|e| e.to_string())
    }

    fn next(
        &self,
        experiment: &Experiment,
        search: &mut Search,
        apply_by: ApplyBy,
    ) -> Result<SearchStep, String> {
        let space = Space::new(spec(experiment)?).map_err(|e| e.to_string())?;
        let live = live_point(search.trials());
        match search.next(&space) {
            Next::Test(c) => {
                let from_original = c.against == Against::Original;
                let experiment = candidate_experiment(
                    experiment,
                    &space,
                    &c.point,
                    from_original,
                    Some((c.confidence, c.min_improvement_pct)),
                    apply_by,
                )?;
                Ok(SearchStep::Test {
                    id: c.id,
                    experiment,
                    from_original,
                })
            }
            Next::Done(finish) => {
                let keep = finish
                    .kept
                    .as_ref()
                    .map(|p| candidate_experiment(experiment, &space, p, true, None, apply_by))
                    .transpose()?;
                Ok(SearchStep::Done {
                    keep,
                    live: live == finish.kept,
                })
            }
        }
    }

    fn record(
        &self,
        experiment: &Experiment,
        search: &mut Search,
        id: u32,
        decision: Option<&DecisionRecord>,
        seconds: f64,
    ) -> Result<(), String> {
        let space = Space::new(spec(experiment)?).map_err(|e| e.to_string())?;
        search
            .record(&space, id, judged(decision, seconds))
            .map_err(|e| e.to_string())
    }
}

/// The judge's answer on a candidate from its run's decision. A coach's keep is a keep (the
/// engine left the candidate live); a run that ended before the judge concluded is inconclusive;
/// a guardrail fired when a reason says so (never on a keep).
pub fn judged(decision: Option<&DecisionRecord>, seconds: f64) -> Judged {
    let Some(d) = decision else {
        return Judged {
            verdict: Verdict::Inconclusive,
            guardrail: false,
            seconds,
            change_pct: None,
        };
    };
    let verdict = if d.decision.is_kept() {
        Verdict::Keep
    } else {
        match d.decision {
            smart_core::records::DecisionKind::Revert => Verdict::Revert,
            _ => Verdict::Inconclusive,
        }
    };
    // A guardrail's reason starts `guardrail:` (the judge's) or says one fired (the engine's, in
    // a block or the soak); a keep's reasons may mention the guardrails that did not fire.
    let guardrail = verdict != Verdict::Keep
        && d.reasons
            .iter()
            .any(|r| r.starts_with("guardrail:") || r.contains("guardrail fired"));
    Judged {
        verdict,
        guardrail,
        seconds,
        change_pct: d
            .report
            .get("metric_change_pct")
            .cloned()
            .and_then(|v| serde_json::from_value::<ChangePct>(v).ok()),
    }
}

/// The point live after these trials (`None`: the configuration as found): the last kept step,
/// the confirmed point, or the original after a failed confirmation (the loop undoes the kept
/// steps before a confirmation).
pub fn live_point(trials: &[Trial]) -> Option<Point> {
    trials.iter().fold(None, |live, t| {
        match (t.candidate.role, t.judged.verdict == Verdict::Keep) {
            (_, true) => Some(t.candidate.point.clone()),
            (Role::Confirmation, false) => None,
            (Role::Step, false) => live,
        }
    })
}

fn spec(experiment: &Experiment) -> Result<&SearchSpec, String> {
    experiment
        .definition()
        .search
        .as_ref()
        .ok_or_else(|| "is not a search (it has no search section)".to_owned())
}

/// The one-variant experiment that judges `point`: the search experiment with `point` as its
/// only variant (named like a matrix variant, `level-6_min_length-1k`), its baseline the
/// experiment's own (`against_original`) or what is live, and, for a candidate, its decision at
/// the candidate's `(confidence, min_improvement_pct)` on the search's objective.
pub fn candidate_experiment(
    experiment: &Experiment,
    space: &Space,
    point: &Point,
    against_original: bool,
    judged_at: Option<(f64, f64)>,
    apply_by: ApplyBy,
) -> Result<Experiment, String> {
    let spec = spec(experiment)?;
    let mut def = experiment.definition().clone();
    def.decision.metric = spec.objective;
    if let Some((confidence, margin)) = judged_at {
        def.decision.confidence = Confidence::try_from(confidence).map_err(|e| e.to_string())?;
        def.decision.min_improvement_pct =
            Improvement::try_from(margin).map_err(|e| e.to_string())?;
    }
    def.search = None;
    def.variants = Vec::new();
    def.matrix = Some(
        space
            .params(point)
            .into_iter()
            .map(|(k, v)| (k, vec![v]))
            .collect(),
    );
    if !against_original {
        def.baseline = None;
    }
    let mut value = serde_json::to_value(&def).map_err(|e| e.to_string())?;
    if let Value::Object(map) = &mut value {
        map.retain(|_, v| !v.is_null());
    }
    validate_text_by(
        &value.to_string(),
        experiment.source(),
        &Defaults::default(),
        apply_by,
    )
    .map_err(|invalid| {
        format!(
            "the candidate {} does not make a valid experiment: {invalid}",
            space.label(point)
        )
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use smart_core::runner::{SearchStep, Strategy};
    use smart_core::validate::{ApplyBy, validate_file};
    use smart_core::{Defaults, Experiment};

    use super::PatternSearch;

    fn example() -> Experiment {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/experiments/nginx-gzip-search.json");
        validate_file(&path, &Defaults::default()).expect("the example validates")
    }

    #[test]
    fn only_a_guardrail_that_fired_fences() {
        use smart_core::records::{DecisionKind, DecisionRecord};
        let decision = |kind: DecisionKind, reason: &str| -> DecisionRecord {
            serde_json::from_value(serde_json::json!({
                "run_id": "r", "experiment": "e", "definition_hash": "h", "variant": "v",
                "decision": kind.as_str(), "metric": "p50", "cycles": 6,
                "p50_change_pct": null, "p50_change_bounds_pct": null,
                "error_rate_change_pp": null, "error_rate_change_bounds_pp": null,
                "p_value": null, "reasons": [reason], "started": "", "finished": "",
                "report": {"metric_change_pct": {"estimate": -9.0, "lower": -11.0, "upper": -7.0}}
            }))
            .unwrap()
        };
        for (kind, reason, fired) in [
            (
                DecisionKind::Keep,
                "soaked for 1 s under the guardrails with none firing, then kept",
                false,
            ),
            (
                DecisionKind::Revert,
                "guardrail: a variant block had 56.0 % errors (56 of 100 requests), above the 20.0 % limit",
                true,
            ),
            (
                DecisionKind::Revert,
                "a guardrail fired while the variant was live, so it was reverted at once: 503s",
                true,
            ),
            (
                DecisionKind::Revert,
                "the variant is slower: p50 +11.1 %",
                false,
            ),
        ] {
            let judged = super::judged(Some(&decision(kind, reason)), 10.0);
            assert_eq!(judged.guardrail, fired, "{reason}");
            assert_eq!(judged.change_pct.map(|c| c.estimate), Some(-9.0));
        }
        assert!(!super::judged(None, 1.0).guardrail);
    }

    #[test]
    fn the_first_candidate_is_a_one_variant_experiment_at_the_candidates_confidence() {
        let experiment = example();
        let mut state = PatternSearch.start(&experiment).unwrap();
        let SearchStep::Test {
            id,
            experiment: candidate,
            from_original,
        } = PatternSearch
            .next(&experiment, &mut state, ApplyBy::Smart)
            .unwrap()
        else {
            panic!("a new search tests its start first")
        };
        assert_eq!(id, 1);
        assert!(
            from_original,
            "nothing is kept yet: judged against the original"
        );
        assert_eq!(candidate.name(), experiment.name());
        assert!(candidate.definition().search.is_none());
        let names: Vec<&str> = candidate
            .variants()
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(names, ["level-5_min_length-1k"]);
        // 12 candidates share the family's 1 % evenly.
        let confidence = candidate.decision().confidence.get();
        assert!(
            (confidence - (1.0 - 0.01 / 12.0)).abs() < 1e-12,
            "{confidence}"
        );
        assert_eq!(
            candidate.decision().metric,
            smart_core::experiment::Metric::P90
        );
        // The same candidate again until it is recorded (what a resumed search relies on).
        let SearchStep::Test { id: again, .. } = PatternSearch
            .next(&experiment, &mut state, ApplyBy::Smart)
            .unwrap()
        else {
            panic!("still the start")
        };
        assert_eq!(again, 1);
    }
}
