//! The strategy: a judged pattern search with step halving against the incumbent, alpha shared
//! across the whole budget, and a final confirmation against the configuration as found.
//!
//! [`Search`] is a pure state machine (no I/O, no clock): [`Search::next`] names the candidate to
//! judge and what it is judged against, [`Search::record`] takes the judge's verdict. Its whole
//! state is a serde value, so a run can write it to the state dir after every candidate and resume
//! after a crash where it stood (a candidate handed out but never recorded is handed out again).
//! Why this strategy and not a model-based one is argued in `docs/search.md`.

//!
//! The value types a search takes and gives are in [`types`]; how it picks the next step (the
//! sweeps, pattern moves, step halving and guardrail fences) is in [`explore`].

mod explore;
mod types;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use smart_core::engine::Verdict;

use crate::error::SearchError;
use crate::space::{Point, Space};
use explore::{Fence, Move};
pub use types::{Against, Candidate, ChangePct, End, Finish, Judged, Next, Role, Settings, Trial};

/// A resumable search: every field is its persistent state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Search {
    settings: Settings,
    /// Where the next moves start from: the incumbent, or the start point while nothing is kept.
    position: Point,
    /// The point live now, if the search has kept one (`None`: the configuration as found).
    incumbent: Option<Point>,
    /// The latest point proven directly against the configuration as found.
    anchor: Option<Point>,
    /// The start point still has to be judged against the original.
    start_pending: bool,
    /// Current step per param, in values (choices: unused).
    steps: Vec<usize>,
    queue: VecDeque<Move>,
    sweep_kept: bool,
    /// Sweeps started.
    sweeps: u32,
    /// Where the current sweep started.
    sweep_origin: Point,
    /// The last productive sweep's move, in values per param (the pattern move's step).
    pattern: Vec<i64>,
    /// Why exploring stopped, once it has (the confirmation may still be running).
    end: Option<End>,
    fences: Vec<Fence>,
    trials: Vec<Trial>,
    pending: Option<Candidate>,
    seconds_used: f64,
    rng: u64,
    finished: Option<Finish>,
}

impl Search {
    /// A new search over `space` from `start`; `original` is the point of the configuration as
    /// found when it is one (the experiment renders its baseline from params), else `None`.
    pub fn new(
        space: &Space,
        start: Point,
        original: Option<Point>,
        settings: Settings,
    ) -> Result<Self, SearchError> {
        if !space.allowed(&start) {
            return Err(SearchError::new(format!(
                "search.start ({}) is outside the space or breaks a constraint; pick a start that \
                 meets every constraint",
                label_or_raw(space, &start)
            )));
        }
        if settings.max_candidates < 2 {
            return Err(SearchError::new(
                "search.budget.max_candidates is below 2; give at least 2 (a step and its \
                 confirmation)",
            ));
        }
        let steps = space
            .dims()
            .iter()
            .map(|d| ((d.values().len() - 1) / 4).max(1))
            .collect();
        let start_pending = original.as_ref() != Some(&start);
        Ok(Search {
            rng: settings.seed ^ 0x9e37_79b9_7f4a_7c15,
            settings,
            position: start.clone(),
            incumbent: None,
            anchor: None,
            start_pending,
            steps,
            queue: VecDeque::new(),
            sweep_kept: false,
            sweeps: 0,
            sweep_origin: start,
            pattern: Vec::new(),
            end: None,
            fences: Vec::new(),
            trials: Vec::new(),
            pending: None,
            seconds_used: 0.0,
            finished: None,
        })
    }

    /// The settings the search runs by.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Every judged candidate, in order.
    pub fn trials(&self) -> &[Trial] {
        &self.trials
    }

    /// The configuration the search has kept and left live (`None`: the one as found).
    pub fn incumbent(&self) -> Option<&Point> {
        self.incumbent.as_ref()
    }

    /// The candidate handed out and not yet recorded (to judge again after a crash).
    pub fn pending(&self) -> Option<&Candidate> {
        self.pending.as_ref()
    }

    /// Seconds of measuring used so far.
    pub fn seconds_used(&self) -> f64 {
        self.seconds_used
    }

    /// The kept candidates in order: the path from the configuration as found to the incumbent.
    pub fn path(&self) -> impl Iterator<Item = &Trial> {
        self.trials
            .iter()
            .filter(|t| t.judged.verdict == Verdict::Keep)
    }

    /// The next candidate to judge, or how the search ended. Asking again without recording
    /// gives the same candidate.
    pub fn next(&mut self, space: &Space) -> Next {
        if let Some(finish) = &self.finished {
            return Next::Done(finish.clone());
        }
        if let Some(pending) = &self.pending {
            return Next::Test(pending.clone());
        }
        let candidate = match self.explore(space) {
            Ok(point) => self.candidate(point, Role::Step),
            Err(end) => match self.needs_confirmation() {
                Some(incumbent) if self.fits(0) => self.candidate(incumbent, Role::Confirmation),
                // No room left to confirm (a candidate overran its worst case): fall back to the
                // last point proven against the configuration as found.
                Some(_) => return self.finish(self.anchor.clone(), end, true),
                None => return self.finish(self.incumbent.clone(), end, false),
            },
        };
        self.pending = Some(candidate.clone());
        Next::Test(candidate)
    }

    fn finish(&mut self, kept: Option<Point>, end: End, confirmation_failed: bool) -> Next {
        self.incumbent = kept.clone();
        let finish = Finish {
            kept,
            end,
            confirmation_failed,
        };
        self.finished = Some(finish.clone());
        Next::Done(finish)
    }

    /// Takes the judge's verdict on candidate `id` (the one [`Search::next`] handed out).
    pub fn record(&mut self, space: &Space, id: u32, judged: Judged) -> Result<(), SearchError> {
        let Some(candidate) = self.pending.take_if(|c| c.id == id) else {
            return Err(SearchError::new(format!(
                "candidate {id} is not the one waiting for a verdict ({}); the search state and \
                 the run disagree, so start the search again",
                self.pending
                    .as_ref()
                    .map_or("none".to_string(), |c| c.id.to_string())
            )));
        };
        self.seconds_used += judged.seconds.max(0.0);
        let kept = judged.verdict == Verdict::Keep;
        match candidate.role {
            Role::Confirmation => {
                let end = self.end.unwrap_or(End::Converged);
                if kept {
                    self.anchor = Some(candidate.point.clone());
                    self.finish(Some(candidate.point.clone()), end, false);
                } else {
                    self.finish(self.anchor.clone(), end, true);
                }
            }
            Role::Step => {
                if candidate.point == self.position {
                    self.start_pending = false;
                }
                if judged.guardrail {
                    self.fence(space, &candidate.point);
                }
                if kept {
                    self.moved(&candidate);
                }
            }
        }
        self.trials.push(Trial { candidate, judged });
        Ok(())
    }

    fn candidate(&self, point: Point, role: Role) -> Candidate {
        let against = match (&self.incumbent, role) {
            (Some(inc), Role::Step) => Against::Incumbent(inc.clone()),
            _ => Against::Original,
        };
        let min_improvement_pct = match against {
            Against::Original => self.settings.min_improvement_pct,
            Against::Incumbent(_) => self.settings.min_step_improvement_pct,
        };
        Candidate {
            id: self.trials.len() as u32 + 1,
            point,
            against,
            role,
            confidence: self.settings.per_test_confidence(),
            min_improvement_pct,
        }
    }

    /// Whether one more candidate fits the budget, with `reserve` more kept back.
    fn fits(&self, reserve: u32) -> bool {
        let used = self.trials.len() as u32;
        let time_ok = self.settings.max_total_s.is_none_or(|max| {
            self.seconds_used + f64::from(1 + reserve) * self.settings.candidate_worst_s <= max
        });
        used + 1 + reserve <= self.settings.max_candidates && time_ok
    }

    /// A splitmix64 draw: the sweep order, seeded and reproducible, needing no crate.
    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn label_or_raw(space: &Space, p: &Point) -> String {
    if space.allowed(p) || p.0.len() == space.dims().len() {
        p.0.iter()
            .zip(space.dims())
            .map(|(i, d)| {
                d.values()
                    .get(*i)
                    .map_or(format!("{}=?", d.name()), |v| format!("{}={v}", d.name()))
            })
            .collect::<Vec<_>>()
            .join(",")
    } else {
        format!("{:?}", p.0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use smart_core::experiment::{Choices, Decision, Domain, IntRange, Scale, SearchSpec};

    use super::*;

    fn range(min: i64, max: i64) -> Domain {
        Domain::Range(IntRange {
            min,
            max,
            step: None,
            scale: Scale::Linear,
        })
    }

    fn setup(domains: &[(&str, Domain)], max_candidates: u32) -> (Space, Settings) {
        let params: BTreeMap<String, Domain> = domains
            .iter()
            .map(|(n, d)| (n.to_string(), d.clone()))
            .collect();
        let mut spec = SearchSpec::new(params);
        spec.budget.max_candidates = max_candidates;
        let space = Space::new(&spec).unwrap();
        let settings = Settings::of(&spec, &Decision::default(), 100.0);
        (space, settings)
    }

    /// A judge that knows the truth: keeps when the objective is lower by the required margin,
    /// and fires the guardrail on points `cliff` marks.
    struct Oracle<'a> {
        objective: &'a dyn Fn(&[usize]) -> f64,
        cliff: &'a dyn Fn(&[usize]) -> bool,
        original: f64,
    }

    impl Oracle<'_> {
        fn judge(&self, c: &Candidate) -> Judged {
            let guardrail = (self.cliff)(&c.point.0);
            let base = match &c.against {
                Against::Original => self.original,
                Against::Incumbent(p) => (self.objective)(&p.0),
            };
            let keep = !guardrail
                && (self.objective)(&c.point.0) < base * (1.0 - c.min_improvement_pct / 100.0);
            Judged {
                verdict: if keep { Verdict::Keep } else { Verdict::Revert },
                guardrail,
                seconds: 60.0,
                change_pct: None,
            }
        }
    }

    fn run(search: &mut Search, space: &Space, oracle: &Oracle<'_>) -> (Finish, Vec<Candidate>) {
        let mut seen = Vec::new();
        loop {
            match search.next(space) {
                Next::Test(c) => {
                    seen.push(c.clone());
                    search.record(space, c.id, oracle.judge(&c)).unwrap();
                }
                Next::Done(f) => return (f, seen),
            }
        }
    }

    fn never(_: &[usize]) -> bool {
        false
    }

    /// Levels 1 to 9 (indices 0 to 8) with the optimum at level 7, the original 4 × slower.
    const INTERIOR: Oracle<'static> = Oracle {
        objective: &|p| 100.0 + 10.0 * (p[0] as f64 - 6.0).powi(2),
        cliff: &never,
        original: 400.0,
    };

    #[test]
    fn finds_an_interior_optimum_and_confirms_it() {
        let (space, settings) = setup(&[("level", range(1, 9))], 20);
        let oracle = INTERIOR;
        let mut search = Search::new(&space, Point(vec![0]), None, settings).unwrap();
        let (finish, seen) = run(&mut search, &space, &oracle);
        assert_eq!(finish.kept, Some(Point(vec![6])), "level 7 is the optimum");
        assert!(!finish.confirmation_failed);
        let last = seen.last().unwrap();
        assert_eq!(last.role, Role::Confirmation);
        assert_eq!(last.against, Against::Original);
        assert!(
            seen.len() < 9,
            "fewer candidates than the grid: {}",
            seen.len()
        );
        // Every candidate's test got an even share of the family's alpha.
        assert!(
            seen.iter()
                .all(|c| (c.confidence - (1.0 - 0.01 / 20.0)).abs() < 1e-12)
        );
        // The path: each kept step starts from the one before.
        let path: Vec<_> = search.path().collect();
        for pair in path
            .windows(2)
            .filter(|w| w[1].candidate.role == Role::Step)
        {
            assert_eq!(
                pair[1].candidate.against,
                Against::Incumbent(pair[0].candidate.point.clone())
            );
        }
    }

    #[test]
    fn a_judge_that_keeps_nothing_leaves_the_original() {
        let (space, settings) = setup(&[("a", range(0, 16)), ("b", range(0, 16))], 30);
        let flat = |_: &[usize]| 100.0;
        let oracle = Oracle {
            objective: &flat,
            cliff: &never,
            original: 100.0,
        };
        let mut search = Search::new(&space, space.middle(), None, settings).unwrap();
        let (finish, seen) = run(&mut search, &space, &oracle);
        assert_eq!(finish.kept, None);
        assert_eq!(finish.end, End::Converged);
        assert!(seen.iter().all(|c| c.against == Against::Original));
        assert!(seen.len() <= 30);
        // Nothing is judged twice against the same incumbent.
        let mut points: Vec<_> = seen.iter().map(|c| c.point.clone()).collect();
        points.sort();
        points.dedup();
        assert_eq!(points.len(), seen.len());
    }

    #[test]
    fn a_guardrail_fences_off_the_cliff() {
        let (space, settings) = setup(&[("conns", range(0, 16))], 30);
        // Lower is better up to 12; from 13 on the server fails.
        let objective = |p: &[usize]| 200.0 - 5.0 * p[0] as f64;
        let cliff = |p: &[usize]| p[0] >= 13;
        let oracle = Oracle {
            objective: &objective,
            cliff: &cliff,
            original: 200.0,
        };
        let mut search = Search::new(&space, Point(vec![4]), None, settings).unwrap();
        let (finish, seen) = run(&mut search, &space, &oracle);
        let fired: Vec<_> = seen.iter().filter(|c| cliff(&c.point.0)).collect();
        assert!(!fired.is_empty(), "the search must have met the cliff");
        // After a guardrail, nothing at or beyond that value is tried again: each later probe
        // is halfway to the lowest value that fired.
        for (i, c) in seen.iter().enumerate() {
            let lowest_fired = seen[..i]
                .iter()
                .filter(|e| cliff(&e.point.0))
                .map(|e| e.point.0[0])
                .min();
            assert!(
                lowest_fired.is_none_or(|l| c.point.0[0] < l),
                "{c:?} after {lowest_fired:?}"
            );
        }
        assert!(
            fired.len() <= 3,
            "each fire halves the gap: {} fired",
            fired.len()
        );
        let kept = finish.kept.unwrap();
        assert!(!cliff(&kept.0));
        assert!(kept.0[0] >= 10, "close to the edge: {kept:?}");
    }

    #[test]
    fn the_budget_holds_and_keeps_a_confirmation_back() {
        for max in 2..12 {
            let (space, settings) = setup(&[("a", range(0, 64)), ("b", range(0, 64))], max);
            let bowl =
                |p: &[usize]| 100.0 + (p[0] as f64 - 50.0).powi(2) + (p[1] as f64 - 10.0).powi(2);
            let oracle = Oracle {
                objective: &bowl,
                cliff: &never,
                original: 10_000.0,
            };
            let mut search = Search::new(&space, Point(vec![32, 32]), None, settings).unwrap();
            let (finish, seen) = run(&mut search, &space, &oracle);
            assert!(
                seen.len() as u32 <= max,
                "{} candidates on a budget of {max}",
                seen.len()
            );
            assert_eq!(finish.end, End::Budget);
            // Whatever is kept was proven against the original, directly or by the confirmation.
            if let Some(kept) = &finish.kept {
                assert!(
                    seen.iter()
                        .any(|c| &c.point == kept && c.against == Against::Original)
                );
            }
        }
    }

    #[test]
    fn the_time_budget_holds() {
        let (space, mut settings) = setup(&[("a", range(0, 64))], 50);
        settings.max_total_s = Some(650.0);
        let slope = |p: &[usize]| 1000.0 - p[0] as f64;
        let oracle = Oracle {
            objective: &slope,
            cliff: &never,
            original: 2000.0,
        };
        let mut search = Search::new(&space, Point(vec![0]), None, settings).unwrap();
        let (_, seen) = run(&mut search, &space, &oracle);
        // 60 s per candidate, each started only with its worst case (100 s) left.
        assert!(search.seconds_used() <= 650.0);
        assert!(seen.len() >= 5, "{}", seen.len());
    }

    #[test]
    fn a_failed_confirmation_falls_back_to_the_last_point_proven_against_the_original() {
        let (space, settings) = setup(&[("level", range(1, 9))], 20);
        let oracle = INTERIOR;
        let mut search = Search::new(&space, Point(vec![0]), None, settings).unwrap();
        let mut first_keep = None;
        let finish = loop {
            match search.next(&space) {
                Next::Test(c) => {
                    let mut judged = oracle.judge(&c);
                    if c.role == Role::Confirmation {
                        judged.verdict = Verdict::Inconclusive;
                    } else if judged.verdict == Verdict::Keep && first_keep.is_none() {
                        first_keep = Some(c.point.clone());
                    }
                    search.record(&space, c.id, judged).unwrap();
                }
                Next::Done(f) => break f,
            }
        };
        assert!(finish.confirmation_failed);
        assert_eq!(finish.kept, first_keep);
        assert_eq!(search.incumbent(), first_keep.as_ref());
    }

    #[test]
    fn a_search_resumes_from_its_serialized_state() {
        let domains = [
            ("a", range(0, 32)),
            (
                "mode",
                Domain::Choices(Choices {
                    choices: vec!["x".into(), "y".into(), "z".into()],
                }),
            ),
        ];
        let (space, settings) = setup(&domains, 25);
        let objective = |p: &[usize]| 100.0 + (p[0] as f64 - 20.0).abs() * 4.0 + p[1] as f64 * 30.0;
        let oracle = Oracle {
            objective: &objective,
            cliff: &never,
            original: 500.0,
        };
        let start = Point(vec![3, 2]);
        let mut straight = Search::new(&space, start.clone(), None, settings.clone()).unwrap();
        let (expected, all) = run(&mut straight, &space, &oracle);
        for cut in 0..all.len() {
            let mut search = Search::new(&space, start.clone(), None, settings.clone()).unwrap();
            for _ in 0..cut {
                let Next::Test(c) = search.next(&space) else {
                    panic!("ended early")
                };
                search.record(&space, c.id, oracle.judge(&c)).unwrap();
            }
            // A crash after a candidate was handed out and before its verdict.
            let handed = search.next(&space);
            let saved = serde_json::to_string(&search).unwrap();
            let mut resumed: Search = serde_json::from_str(&saved).unwrap();
            assert_eq!(
                resumed.next(&space),
                handed,
                "the same candidate is judged again"
            );
            let (finish, rest) = run(&mut resumed, &space, &oracle);
            assert_eq!(finish, expected);
            assert_eq!(rest, all[cut..].to_vec());
        }
    }

    #[test]
    fn a_verdict_for_another_candidate_is_refused() {
        let (space, settings) = setup(&[("a", range(0, 8))], 5);
        let mut search = Search::new(&space, Point(vec![2]), None, settings).unwrap();
        let Next::Test(c) = search.next(&space) else {
            panic!("a first candidate")
        };
        let judged = Judged {
            verdict: Verdict::Keep,
            guardrail: false,
            seconds: 1.0,
            change_pct: None,
        };
        let err = search.record(&space, c.id + 1, judged).unwrap_err();
        assert!(err.to_string().contains("not the one waiting"), "{err}");
        assert_eq!(search.pending(), Some(&c));
    }

    #[test]
    fn a_start_outside_the_constraints_is_refused() {
        let (space, settings) = setup(&[("a", range(0, 8))], 5);
        assert!(Search::new(&space, Point(vec![9]), None, settings).is_err());
    }
}
