//! The strategy: a judged pattern search with step halving against the incumbent, alpha shared
//! across the whole budget, and a final confirmation against the configuration as found.
//!
//! [`Search`] is a pure state machine (no I/O, no clock): [`Search::next`] names the candidate to
//! judge and what it is judged against, [`Search::record`] takes the judge's verdict. Its whole
//! state is a serde value, so a run can write it to the state dir after every candidate and resume
//! after a crash where it stood (a candidate handed out but never recorded is handed out again).
//! Why this strategy and not a model-based one is argued in `docs/search.md`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use smart_core::engine::Verdict;
use smart_core::experiment::{Decision, SearchSpec};

use crate::error::SearchError;
use crate::space::{Point, Space};

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
            min_improvement_pct: decision.min_improvement_pct,
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
    /// Judge this candidate and [`Search::record`] the verdict.
    Test(Candidate),
    /// Nothing more to judge.
    Done(Finish),
}

/// One move of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Move {
    /// Along an integer param by its current step, up (+1) or down (−1).
    Step { dim: usize, dir: i8 },
    /// To another value of a choice param.
    Choice { dim: usize, index: usize },
    /// Along the last productive sweep's combined direction (Hooke and Jeeves' pattern move):
    /// what lets a coordinate search follow a valley that runs across params.
    Pattern,
}

/// A limit a guardrail set: values at or beyond `level` in direction `dir` of param `dim` are
/// never tried again (for a choice, `dir` is 0 and only that value is barred).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Fence {
    dim: usize,
    dir: i8,
    level: usize,
}

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

    /// The next step to judge, or why there is none.
    fn explore(&mut self, space: &Space) -> Result<Point, End> {
        // A step against a kept incumbent needs a confirmation after it: keep one back.
        let reserve = u32::from(self.incumbent.is_some());
        if !self.fits(reserve) {
            self.end = Some(End::Budget);
            return Err(End::Budget);
        }
        if self.start_pending {
            return Ok(self.position.clone());
        }
        loop {
            while let Some(m) = self.queue.pop_front() {
                if let Some(target) = self.target(space, m)
                    && !self.tested(&target)
                {
                    // Keep the move at the front: if it is kept, the same move goes on.
                    self.queue.push_front(m);
                    return Ok(target);
                }
            }
            if !self.new_sweep(space) {
                self.end = Some(End::Converged);
                return Err(End::Converged);
            }
        }
    }

    /// The incumbent, when it was reached through a step the original was not part of and so
    /// must be confirmed against the configuration as found.
    fn needs_confirmation(&self) -> Option<Point> {
        let incumbent = self.incumbent.as_ref()?;
        (self.anchor.as_ref() != Some(incumbent)).then(|| incumbent.clone())
    }

    /// Starts a sweep: after one with a keep, at the same steps; after one without, at half the
    /// steps; `false` when the steps are already the finest and nothing was kept (converged).
    fn new_sweep(&mut self, space: &Space) -> bool {
        if self.sweeps > 0 && !self.sweep_kept {
            let mut finer = false;
            for (step, dim) in self.steps.iter_mut().zip(space.dims()) {
                if dim.ordered() && *step > 1 {
                    *step /= 2;
                    finer = true;
                }
            }
            if !finer {
                return false;
            }
        }
        // After a productive sweep that moved more than one param, try its combined move first.
        self.pattern = Vec::new();
        if self.sweeps > 0 && self.sweep_kept {
            let delta: Vec<i64> = self
                .position
                .0
                .iter()
                .zip(&self.sweep_origin.0)
                .map(|(&to, &from)| to as i64 - from as i64)
                .collect();
            if delta.iter().filter(|&&d| d != 0).count() > 1 {
                self.pattern = delta;
                self.queue.push_back(Move::Pattern);
            }
        }
        self.sweep_origin = self.position.clone();
        self.sweeps += 1;
        self.sweep_kept = false;
        let mut order: Vec<usize> = (0..space.dims().len()).collect();
        for i in (1..order.len()).rev() {
            let j = (self.random() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        for dim in order {
            let d = &space.dims()[dim];
            if d.ordered() {
                let first: i8 = if self.random().is_multiple_of(2) {
                    1
                } else {
                    -1
                };
                self.queue.push_back(Move::Step { dim, dir: first });
                self.queue.push_back(Move::Step { dim, dir: -first });
            } else {
                for index in 0..d.values().len() {
                    self.queue.push_back(Move::Choice { dim, index });
                }
            }
        }
        true
    }

    /// Where a move leads from the current position, if anywhere new and allowed.
    fn target(&self, space: &Space, m: Move) -> Option<Point> {
        let mut p = self.position.clone();
        match m {
            Move::Step { dim, dir } => {
                let n = space.dims()[dim].values().len();
                let here = p.0[dim];
                let step = self.steps[dim];
                let mut to = if dir > 0 {
                    (here + step).min(n - 1)
                } else {
                    here.saturating_sub(step)
                };
                // Short of a fence, halfway to it: each further guardrail halves the distance to
                // the edge instead of creeping one value at a time.
                for f in self.fences.iter().filter(|f| f.dim == dim && f.dir == dir) {
                    if dir > 0 && to >= f.level {
                        to = here + f.level.saturating_sub(here) / 2;
                    } else if dir < 0 && to <= f.level {
                        to = here - here.saturating_sub(f.level) / 2;
                    }
                }
                if to == here {
                    return None;
                }
                p.0[dim] = to;
            }
            Move::Pattern => {
                for (dim, (v, &d)) in p.0.iter_mut().zip(&self.pattern).enumerate() {
                    let n = space.dims()[dim].values().len() as i64;
                    let to = (*v as i64 + d).clamp(0, n - 1) as usize;
                    let dir: i8 = if to > *v { 1 } else { -1 };
                    let fenced = self.fences.iter().any(|f| {
                        f.dim == dim
                            && f.dir == dir
                            && to != *v
                            && (dir > 0 && to >= f.level || dir < 0 && to <= f.level)
                    });
                    if fenced {
                        return None;
                    }
                    *v = to;
                }
                if p == self.position {
                    return None;
                }
            }
            Move::Choice { dim, index } => {
                if p.0[dim] == index
                    || self
                        .fences
                        .iter()
                        .any(|f| f.dim == dim && f.dir == 0 && f.level == index)
                {
                    return None;
                }
                p.0[dim] = index;
            }
        }
        space.allowed(&p).then_some(p)
    }

    /// Whether this point needs no test: kept earlier (an earlier incumbent, which the chain of
    /// keeps has proven worse), or judged already against the current incumbent — unless that
    /// one judgement was inconclusive with an estimate showing the required win, which earns one
    /// second test (a real win the first test was too short to prove).
    fn tested(&self, point: &Point) -> bool {
        let mut earlier = self.trials.iter().filter(|t| {
            t.candidate.role == Role::Step
                && &t.candidate.point == point
                && (t.judged.verdict == Verdict::Keep
                    || match (&t.candidate.against, &self.incumbent) {
                        (Against::Original, None) => true,
                        (Against::Incumbent(a), Some(b)) => a == b,
                        _ => false,
                    })
        });
        match (earlier.next(), earlier.next()) {
            (None, _) => false,
            (Some(only), None) => !promising(only),
            (Some(_), Some(_)) => true,
        }
    }

    /// Bars the direction a guardrail fired in, from the value that fired it on.
    fn fence(&mut self, space: &Space, point: &Point) {
        let Some(dim) = (0..point.0.len()).find(|&d| point.0[d] != self.position.0[d]) else {
            return;
        };
        let (here, there) = (self.position.0[dim], point.0[dim]);
        let dir = match (space.dims()[dim].ordered(), there > here) {
            (false, _) => 0,
            (true, true) => 1,
            (true, false) => -1,
        };
        self.fences.push(Fence {
            dim,
            dir,
            level: there,
        });
    }

    /// A step was kept: it becomes the incumbent and the move goes on in its direction.
    fn moved(&mut self, candidate: &Candidate) {
        if candidate.against == Against::Original {
            self.anchor = Some(candidate.point.clone());
        }
        let from = std::mem::replace(&mut self.position, candidate.point.clone());
        self.incumbent = Some(candidate.point.clone());
        self.sweep_kept = true;
        // The opposite direction of the same param cannot be better now: drop it this sweep.
        if self.queue.front() == Some(&Move::Pattern) {
            return;
        }
        if let Some(dim) = (0..from.0.len()).find(|&d| from.0[d] != candidate.point.0[d]) {
            let dir: i8 = if candidate.point.0[dim] > from.0[dim] {
                1
            } else {
                -1
            };
            self.queue
                .retain(|m| !matches!(m, Move::Step { dim: d, dir: r } if *d == dim && *r == -dir));
        }
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

/// An inconclusive judgement whose estimate shows at least the win the test required.
fn promising(trial: &Trial) -> bool {
    trial.judged.verdict == Verdict::Inconclusive
        && !trial.judged.guardrail
        && trial
            .judged
            .change_pct
            .is_some_and(|c| c.estimate < 0.0 && c.estimate <= -trial.candidate.min_improvement_pct)
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

    use smart_core::experiment::{Choices, Domain, IntRange, Scale};

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
