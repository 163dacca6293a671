//! A search as people read it: every judged candidate with its interval against what it was
//! judged against, the path from the configuration as found to what is live, and a response
//! curve per param. Built from the search experiment and its stored state (what `smart run`
//! writes to `STATE_DIR/searches/NAME.json`), for `smart history`, `status`, `show` (and their
//! `--json`, whose schema [`search_schema`] gives) and the dashboard.

use schemars::JsonSchema;
use serde::Serialize;
use smart_core::Experiment;
use smart_core::engine::Verdict;
use smart_core::runner::StoredSearch;
use smart_core::validate::validate_text;

use crate::drive::live_point;
use crate::space::{Point, Space};
use crate::strategy::{Against, ChangePct, Next, Role, Search};

/// One search, ready to show.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SearchView {
    /// The search experiment's name.
    pub experiment: String,
    /// The configuration as found, as a label (`as found` when the baseline is not a point).
    pub original: String,
    /// The space searched: each param with its values, in the order of the space.
    pub space: Vec<ParamView>,
    /// Every judged candidate, in order.
    pub candidates: Vec<CandidateView>,
    /// The labels from the configuration as found to what is live, each kept step in order.
    pub path: Vec<String>,
    /// What is live now, as a label.
    pub live: String,
    /// The search has ended (its result is live); `false` while it runs or waits for its next
    /// round.
    pub done: bool,
    /// How the final confirmation of the best against the configuration as found went: `keep`
    /// (confirmed), another verdict (failed: the search fell back to the last point proven
    /// against the configuration as found), `null` while none was judged (none needed when the
    /// search is done).
    pub confirmation: Option<&'static str>,
    /// How many candidates the budget allows.
    pub max_candidates: u32,
    /// Seconds of measuring the budget allows over the whole search, if limited.
    pub max_total_s: Option<f64>,
    /// Seconds of measuring used so far (each judged candidate's).
    pub seconds_used: f64,
    /// One curve per searched integer param.
    pub curves: Vec<Curve>,
}

/// One param of the space.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ParamView {
    /// The param.
    pub name: String,
    /// Its values, as the experiment's templates see them.
    pub values: Vec<String>,
    /// An integer range (ordered values), not a choice of strings.
    pub ordered: bool,
}

/// One judged candidate.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CandidateView {
    /// Its number in the search, from 1.
    pub id: u32,
    /// The candidate, as `param=value,...`.
    pub label: String,
    /// What it was judged against, as a label.
    pub against: String,
    /// `step` (judged against the incumbent, or the configuration as found while nothing is
    /// kept) or `confirmation` (the best against the configuration as found).
    pub role: &'static str,
    /// The judge's verdict: `keep`, `revert` or `inconclusive` (a run cut short counts as
    /// inconclusive).
    pub verdict: &'static str,
    /// The objective's change in percent against what it was judged against, with its bounds.
    pub change_pct: Option<ChangePct>,
    /// A guardrail fired.
    pub guardrail: bool,
    /// Seconds it took.
    pub seconds: f64,
}

/// How the objective responded to one param: each candidate that differs from what it was
/// judged against in this param only, as (from, to, change).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Curve {
    /// The param.
    pub param: String,
    /// The measured moves, in the order judged.
    pub moves: Vec<Move>,
}

/// One judged move along a param.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, JsonSchema)]
pub struct Move {
    /// The value judged against.
    pub from: i64,
    /// The candidate's value.
    pub to: i64,
    /// The objective's change in percent, with its bounds.
    pub change_pct: ChangePct,
    /// The verdict was keep.
    pub kept: bool,
}

impl SearchView {
    /// The view of a search as the run loop stored it (`None` when its definition no longer
    /// validates as `smart` applies it, or its state is not this strategy's).
    pub fn load(stored: &StoredSearch) -> Option<SearchView> {
        let text = serde_json::to_string(&stored.definition).ok()?;
        let source = format!("{}.json", stored.definition.name);
        let experiment =
            validate_text(&text, source.as_ref(), &smart_core::Defaults::default()).ok()?;
        let search: Search = serde_json::from_value(stored.state.clone()).ok()?;
        SearchView::of(&experiment, &search, stored.done)
    }

    /// The view of `search` (the stored state) of search `experiment`; `done` as the state file
    /// says. `None` when the experiment is not a search or its space no longer builds.
    pub fn of(experiment: &Experiment, search: &Search, done: bool) -> Option<SearchView> {
        let spec = experiment.definition().search.as_ref()?;
        let space = Space::new(spec).ok()?;
        let original_point = experiment.baseline().and_then(|b| space.point_of(b));
        let label = |p: Option<&Point>| p.map_or_else(|| "as found".to_owned(), |p| space.label(p));
        let original = label(original_point.as_ref());
        let candidates = search
            .trials()
            .iter()
            .map(|t| CandidateView {
                id: t.candidate.id,
                label: space.label(&t.candidate.point),
                against: match &t.candidate.against {
                    Against::Original => original.clone(),
                    Against::Incumbent(p) => space.label(p),
                },
                role: match t.candidate.role {
                    Role::Step => "step",
                    Role::Confirmation => "confirmation",
                },
                verdict: t.judged.verdict.as_str(),
                change_pct: t.judged.change_pct,
                guardrail: t.judged.guardrail,
                seconds: t.judged.seconds,
            })
            .collect();
        let live_now = match search.clone().next(&space) {
            Next::Done(finish) if done => finish.kept,
            _ => live_point(search.trials()),
        };
        let mut path = vec![original.clone()];
        for t in search.path() {
            if t.candidate.role == Role::Step {
                path.push(space.label(&t.candidate.point));
            }
        }
        let live = label(live_now.as_ref().or(original_point.as_ref()));
        if path.last() != Some(&live) {
            path.push(live.clone());
        }
        let confirmation = search
            .trials()
            .iter()
            .rfind(|t| t.candidate.role == Role::Confirmation)
            .map(|t| t.judged.verdict.as_str());
        let params = space
            .dims()
            .iter()
            .map(|d| ParamView {
                name: d.name().to_owned(),
                values: d.values().iter().map(ToString::to_string).collect(),
                ordered: d.ordered(),
            })
            .collect();
        Some(SearchView {
            experiment: experiment.name().to_owned(),
            original,
            space: params,
            candidates,
            path,
            live,
            done,
            confirmation,
            max_candidates: search.settings().max_candidates,
            max_total_s: search.settings().max_total_s,
            seconds_used: search.seconds_used(),
            curves: curves(&space, search, original_point.as_ref()),
        })
    }
}

/// The JSON Schema of a [`SearchView`] as `smart show SEARCH --json` prints it
/// (`docs/search.schema.json`; `smart status --json` and `smart history --json` embed it).
pub fn search_schema() -> schemars::Schema {
    schemars::schema_for!(SearchView)
}

/// The response curves: for each integer param, the candidates that moved only it.
fn curves(space: &Space, search: &Search, original: Option<&Point>) -> Vec<Curve> {
    space
        .dims()
        .iter()
        .enumerate()
        .filter(|(_, d)| d.ordered())
        .map(|(i, d)| {
            let value = |p: &Point| d.values()[p.0[i]].to_string().parse::<i64>().ok();
            let moves = search
                .trials()
                .iter()
                .filter_map(|t| {
                    let from = match &t.candidate.against {
                        Against::Original => original?,
                        Against::Incumbent(p) => p,
                    };
                    let to = &t.candidate.point;
                    let only_this = from
                        .0
                        .iter()
                        .zip(&to.0)
                        .enumerate()
                        .all(|(j, (a, b))| j == i || a == b);
                    if !only_this || from.0[i] == to.0[i] {
                        return None;
                    }
                    Some(Move {
                        from: value(from)?,
                        to: value(to)?,
                        change_pct: t.judged.change_pct?,
                        kept: t.judged.verdict == Verdict::Keep,
                    })
                })
                .collect();
            Curve {
                param: d.name().to_owned(),
                moves,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use smart_core::engine::Verdict;
    use smart_core::runner::{SearchStep, Strategy};
    use smart_core::validate::{ApplyBy, validate_text};
    use smart_core::{Defaults, Experiment};

    use super::SearchView;
    use crate::strategy::{ChangePct, Judged};
    use crate::{PatternSearch, Search, Space};

    /// The demo's search: level 1, 5, 9 from level 1.
    fn experiment() -> Experiment {
        let json = r#"{
            "name": "levels",
            "target": {"urls": ["http://127.0.0.1/"]},
            "apply": {"files": [{"path": "/etc/t.conf", "template": "level {{ level }};\n"}]},
            "baseline": {"level": 1},
            "search": {"params": {"level": {"min": 1, "max": 9, "step": 4}},
                       "budget": {"max_candidates": 3}, "confidence": 0.9},
            "schedule": {"max_cycles": 8}
        }"#;
        validate_text(json, "levels.json".as_ref(), &Defaults::default()).unwrap()
    }

    /// Runs the search with a judge that keeps 5 over 1 (−9 %) and reverts 9 over 5 (+5 %).
    fn judged(experiment: &Experiment) -> Search {
        let mut search = PatternSearch.start(experiment).unwrap();
        let space = Space::new(experiment.definition().search.as_ref().unwrap()).unwrap();
        while let SearchStep::Test { id, .. } = PatternSearch
            .next(experiment, &mut search, ApplyBy::Smart)
            .unwrap()
        {
            let candidate = search.pending().unwrap().clone();
            let level = space.params(&candidate.point)["level"].to_string();
            let (verdict, estimate) = match level.as_str() {
                "5" => (Verdict::Keep, -9.0),
                _ => (Verdict::Revert, 5.0),
            };
            let judged = Judged {
                verdict,
                guardrail: false,
                seconds: 30.0,
                change_pct: Some(ChangePct {
                    estimate,
                    lower: estimate - 2.0,
                    upper: estimate + 2.0,
                }),
            };
            search.record(&space, id, judged).unwrap();
        }
        search
    }

    #[test]
    fn a_view_lists_candidates_against_what_they_beat_the_path_and_a_curve() {
        let experiment = experiment();
        let search = judged(&experiment);
        let view = SearchView::of(&experiment, &search, true).unwrap();
        let rows: Vec<(u32, &str, &str, &str)> = view
            .candidates
            .iter()
            .map(|c| (c.id, c.label.as_str(), c.against.as_str(), c.verdict))
            .collect();
        assert_eq!(
            rows,
            [
                (1, "level=5", "level=1", "keep"),
                (2, "level=9", "level=5", "revert")
            ]
        );
        assert_eq!(view.path, ["level=1", "level=5"]);
        assert_eq!(view.live, "level=5");
        assert_eq!(view.curves.len(), 1);
        let moves: Vec<(i64, i64, f64, bool)> = view.curves[0]
            .moves
            .iter()
            .map(|m| (m.from, m.to, m.change_pct.estimate, m.kept))
            .collect();
        assert_eq!(moves, [(1, 5, -9.0, true), (5, 9, 5.0, false)]);
    }

    #[test]
    fn an_unfinished_search_shows_what_is_live() {
        let experiment = experiment();
        let mut search = PatternSearch.start(&experiment).unwrap();
        let _ = PatternSearch.next(&experiment, &mut search, ApplyBy::Smart);
        let view = SearchView::of(&experiment, &search, false).unwrap();
        assert!(view.candidates.is_empty());
        assert_eq!(view.path, ["level=1"]);
        assert_eq!(view.live, "level=1");
        assert!(!view.done);
    }
}
