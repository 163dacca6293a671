//! How a search picks its next step: sweeps over the params (each integer param up and down by
//! its current step, each choice param to its other values), a pattern move after a productive
//! sweep, step halving after a sweep without a keep, and fences where a guardrail fired.

use serde::{Deserialize, Serialize};
use smart_core::engine::Verdict;

use super::{Against, Candidate, End, Role, Search, Trial};
use crate::space::{Point, Space};

/// One move of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Move {
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
pub(super) struct Fence {
    dim: usize,
    dir: i8,
    level: usize,
}

impl Search {
    /// The next step to judge, or why there is none.
    pub(super) fn explore(&mut self, space: &Space) -> Result<Point, End> {
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
    pub(super) fn needs_confirmation(&self) -> Option<Point> {
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
    pub(super) fn fence(&mut self, space: &Space, point: &Point) {
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
    pub(super) fn moved(&mut self, candidate: &Candidate) {
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
