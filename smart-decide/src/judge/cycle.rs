//! Feeding the judge: one finished cycle of a variant, the state machine's step.

use crate::analysis::{Look, MIN_PAIRS, pairs};
use crate::error::{DecideError, Kind};
use crate::reasons;
use crate::report::{Step, Verdict};
use crate::sample::{Arm, BlockSample, BlockStats};
use crate::signflip::SignLook;
use crate::stats::mean;

use super::guardrails::{MIN_GUARD_REQUESTS, p99_lower_bound, record_p99};
use super::{Cause, Judge, SignLookAt, Status, arm_index, pct};

impl Judge {
    /// Feeds one finished cycle of variant `variant` (its index in the names given to
    /// [`Judge::new`]) and answers whether to measure another.
    ///
    /// A cycle whose blocks were cut short may be fed too: those blocks are checked against the
    /// guardrails but left out of the statistics.
    pub fn record_cycle(
        &mut self,
        variant: usize,
        blocks: &[BlockSample],
    ) -> Result<Step, DecideError> {
        let judge = self.settings();
        let max_cycles = self.max_cycles;
        let state = self.state_mut(variant)?;
        let Some(first) = blocks.first() else {
            return Err(Kind::EmptyCycle {
                variant: state.name.clone(),
            }
            .into());
        };
        if let Some(other) = blocks.iter().find(|b| b.cycle != first.cycle) {
            return Err(Kind::MixedCycles {
                variant: state.name.clone(),
                first: first.cycle,
                other: other.cycle,
            }
            .into());
        }
        if let Status::Stopped(verdict, _) = &state.status {
            return Err(Kind::Stopped {
                variant: state.name.clone(),
                verdict: verdict.as_str(),
            }
            .into());
        }
        if state.cycles >= max_cycles {
            return Err(Kind::TooManyCycles {
                variant: state.name.clone(),
                max: max_cycles,
            }
            .into());
        }
        if let Some(last) = state.last_cycle.filter(|&last| first.cycle <= last) {
            return Err(Kind::CycleOrder {
                variant: state.name.clone(),
                got: first.cycle,
                last,
            }
            .into());
        }
        state.last_cycle = Some(first.cycle);
        state.cycles += 1;

        let mut stats: Vec<(BlockStats, &BlockSample)> =
            blocks.iter().map(|b| (BlockStats::of(b), b)).collect();
        stats.sort_by_key(|(s, _)| s.position);
        for (s, raw) in &stats {
            let arm = arm_index(s.arm);
            state.blocks[arm] += 1;
            if s.arm == Arm::Variant
                && state.guardrail.is_none()
                && s.requests >= MIN_GUARD_REQUESTS
                && s.error_rate() > judge.abort_error_rate
            {
                state.guardrail = Some(reasons::error_guardrail(s, judge.abort_error_rate));
            }
            if !s.cut_short {
                state.latencies[arm].extend(raw.latencies_us.iter().copied());
                state.counts[arm].0 += s.requests;
                state.counts[arm].1 += s.errors;
            }
        }
        record_p99(state, &stats, judge.max_p99_increase_pct.is_some());
        let stats: Vec<BlockStats> = stats.into_iter().map(|(s, _)| s).collect();
        let cycle = pairs(&stats, judge.metric);
        let new_info = !cycle.latency.is_empty();
        let ratios: Vec<f64> = cycle.latency.iter().map(|p| p.metric).collect();
        let contrast = mean(&ratios);
        let spread = match ratios[..] {
            [d1, d2] => Some(((d1 - d2) / 2.0).powi(2)),
            _ => None,
        };
        state.latency_pairs.extend(cycle.latency);
        state.error_pairs.extend(cycle.errors);

        let last_cycle = state.cycles == max_cycles;
        // The keep test: one unit per cycle, left out when a block ran on a starved host or
        // partner blocks' host pressure differed.
        let mut new_unit = false;
        if let Some(d) = contrast {
            match cycle.disturbed {
                Some(why) => state.disturbed.record(why),
                None => {
                    state.units.push(d);
                    state.spreads.push(spread);
                    new_unit = true;
                }
            }
        }
        if new_unit || (last_cycle && !state.units.is_empty()) {
            let fraction = if last_cycle {
                1.0
            } else {
                (state.units.len() as f64 / f64::from(max_cycles)).min(1.0)
            };
            state.sign_looks.push(SignLookAt {
                cycle: state.cycles,
                look: SignLook {
                    units: state.units.len(),
                    fraction,
                },
                error_pairs: state.error_pairs.len(),
            });
            let j = state.sign_looks.len() - 1;
            let look = state.sign_looks[j].look;
            let [below_margin, below_zero] = &mut state.keep_tests;
            let shifted =
                |delta0: f64| -> Vec<f64> { state.units.iter().map(|d| d - delta0).collect() };
            let rejected = below_margin.advance(&shifted(judge.margin), &state.spreads, look)
                & below_zero.advance(&shifted(0.0), &state.spreads, look);
            let passed = rejected && judge.errors_allow_keep(state, judge.per_variant, j);
            state.keep_at.push(passed);
            // The mirror image, "δ ≤ 0": the contrasts negated.
            let negated: Vec<f64> = state.units.iter().map(|d| -d).collect();
            state.slower = state.slower_test.advance(&negated, &state.spreads, look);
        }

        if new_info && state.latency_pairs.len() >= MIN_PAIRS {
            let planned = (judge.pairs_per_cycle * max_cycles) as f64;
            let fraction = if last_cycle {
                1.0
            } else {
                (state.latency_pairs.len() as f64 / planned).min(1.0)
            };
            if let Some(look) = Look::new(
                state.cycles,
                fraction,
                &state.latency_pairs,
                &state.error_pairs,
            ) {
                let z = state.boundaries.look(fraction);
                if let (Some(limit), None) = (judge.max_p99_increase_pct, &state.guardrail)
                    && let Some(change) = p99_lower_bound(&state.p99_units, z)
                    && pct(change) > limit
                {
                    state.guardrail = Some(reasons::p99_guardrail(
                        pct(mean(&state.p99_units).unwrap_or(change)),
                        pct(change),
                        limit,
                    ));
                }
                state.looks.push(look);
            }
        }

        let keep_now = state
            .sign_looks
            .last()
            .is_some_and(|l| l.cycle == state.cycles)
            && state.keep_at.last() == Some(&true);
        let step = if state.guardrail.is_some() {
            Step::Stop(Verdict::Revert)
        } else {
            let current = state
                .looks
                .last()
                .zip(state.boundaries.bounds().last())
                .filter(|(look, _)| look.cycle == state.cycles);
            let bounds = current.map(|(look, &z)| look.bounds(z));
            // Slower: the exact sign-flip test, so a burst that hit the variant's blocks (noise
            // the normal model does not describe) reverts a no-op at most α of the time. More
            // errors than allowed: the normal-theory look's error bounds, as for the keep.
            let harm = state.slower
                || bounds.is_some_and(|b| {
                    b.errors
                        .is_some_and(|errors| errors.0 > judge.max_error_increase)
                });
            let equivalent = bounds.is_some_and(|b| {
                !state.extended
                    && judge.margin < 0.0
                    && b.metric.0 > judge.margin
                    && b.metric.1 < -judge.margin
            });
            if harm {
                state.status = Status::Stopped(Verdict::Revert, Cause::Harm);
                Step::Stop(Verdict::Revert)
            } else if keep_now {
                state.status = Status::Stopped(Verdict::Keep, Cause::Keep);
                Step::Stop(Verdict::Keep)
            } else if equivalent {
                state.status = Status::Stopped(Verdict::Inconclusive, Cause::Equivalent);
                Step::Stop(Verdict::Inconclusive)
            } else {
                Step::Continue
            }
        };
        if state.guardrail.is_some() {
            state.status = Status::Stopped(Verdict::Revert, Cause::Guardrail);
        }
        Ok(match step {
            Step::Continue if last_cycle => {
                state.status = Status::Stopped(Verdict::Inconclusive, Cause::MaxCycles);
                Step::Stop(Verdict::Inconclusive)
            }
            step => step,
        })
    }
}
