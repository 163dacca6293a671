//! What a schedule can decide, before running it: for `smart validate`, `smart run` and
//! `smart calibrate`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smart_core::engine::HostPressure;
use smart_core::experiment::{Decision, Guardrails, Schedule};

use crate::analysis::MIN_ANSWERED;
use crate::error::DecideError;
use crate::host::{pressure_disagreement, starvation};
use crate::judge::{Judge, MIN_KEEP_REQUESTS, check_settings};
use crate::report::{Step, Verdict};
use crate::sample::{Arm, BlockQuantiles, BlockSample};
use crate::signflip::first_possible;
use crate::stats::norm_quantile;

/// A typical standard deviation of `ln(variant / baseline)` between two adjacent 10-second blocks
/// at 50 requests per second (the median of the simulation example's base noise, see
/// docs/statistics.md); `smart calibrate` measures the figure of your own server.
pub const TYPICAL_PAIR_SD: f64 = 0.10;
/// A typical share of failed requests (the simulation example's base server), assumed in both
/// arms when nothing was measured: the error bounds a keep needs are wider with more errors.
pub const TYPICAL_ERROR_RATE: f64 = 0.005;

/// The noise a prediction assumes: measured by `smart calibrate`, or [`Noise::TYPICAL`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Noise {
    /// Standard deviation of the difference between two neighbouring blocks' locations on the
    /// log scale (`ln` of the ratio of their medians, or of the judge's trimmed log means when
    /// raw latencies exist): the block-to-block noise a comparison meets.
    pub pair_sd: f64,
    /// The share of requests that fail, the same in both arms.
    pub error_rate: f64,
    /// The share of cycles the keep test leaves out because partner blocks ran under very
    /// different host pressure (a neighbour's bursts; see [`disturbed_cycles`]): fewer cycles
    /// carry a keep, and on a short schedule the exact test may not reach one. 0 when unknown.
    #[serde(default)]
    pub disturbed_share: f64,
}

impl Noise {
    /// The typical noise: [`TYPICAL_PAIR_SD`] and [`TYPICAL_ERROR_RATE`].
    pub const TYPICAL: Noise = Noise {
        pair_sd: TYPICAL_PAIR_SD,
        error_rate: TYPICAL_ERROR_RATE,
        disturbed_share: 0.0,
    };
}

/// For blocks measured one after the other (as `smart calibrate` measures A/A blocks), whether
/// each whole run of four would be left out of the keep test for host pressure, read as an ABBA
/// cycle: the same rules the judge applies. A run is left out when one of its blocks ran on a
/// starved host (CPU pressure at least 80 % at a load of at least 4 per CPU, memory pressure at
/// least 20 %, or at least 20 % of the CPU stolen), or when the two pairs' variant-minus-baseline
/// pressure differences disagree by more than 60 points of CPU, memory or I/O pressure, or 10 of
/// steal. A run of four with a block without host figures is judged on its other blocks'
/// starvation alone.
///
/// ```
/// use smart_core::engine::HostPressure;
/// use smart_decide::disturbed_cycles;
///
/// let cpu = |pct, load| Some(HostPressure {
///     cpu_some_pct: Some(pct),
///     load1: Some(load),
///     cpus: Some(2),
///     ..Default::default()
/// });
/// let hosts = [
///     cpu(2.0, 1.0), cpu(75.0, 1.0), cpu(3.0, 1.0), cpu(2.0, 1.0),     // a burst in one block
///     cpu(70.0, 2.0), cpu(90.0, 2.5), cpu(88.0, 2.5), cpu(72.0, 2.0), // busy all the time
///     cpu(97.0, 25.0), cpu(99.0, 26.0), cpu(98.0, 26.0), cpu(96.0, 27.0), // starved
/// ];
/// assert_eq!(disturbed_cycles(&hosts), [true, false, true]);
/// ```
pub fn disturbed_cycles(hosts: &[Option<HostPressure>]) -> Vec<bool> {
    hosts
        .chunks_exact(4)
        .map(|c| {
            c.iter().flatten().any(|h| starvation(h).is_some())
                || match c {
                    [Some(b1), Some(v1), Some(v2), Some(b2)] => {
                        pressure_disagreement([*b1, *v1, *b2, *v2]).is_some()
                    }
                    _ => false,
                }
        })
        .collect()
}

/// The power at which [`Feasibility::min_detectable_improvement_pct`] is quoted.
const POWER: f64 = 0.8;
/// Simulated experiments behind each power figure (common random numbers for every effect size,
/// so the power curve is smooth; its standard error is at most 3.2 points).
const POWER_RUNS: usize = 250;
/// Halvings of the interval searched for the 80 % detectable win (a 0.5-point resolution
/// between the threshold and four times it, for the default 10 %).
const MDE_STEPS: u32 = 6;
/// The median the simulated blocks are centred on, in µs (only ratios matter).
const SIMULATED_MEDIAN_US: f64 = 20_000.0;
/// Answers per block below which block medians are noisy enough to say so.
const FEW_ANSWERS: f64 = 100.0;

/// Whether a schedule can reach a keep at all, and how large a win it can detect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Feasibility {
    /// A keep is possible at all: the schedule gives enough cycles for the exact test.
    pub reachable: bool,
    /// Cycles per variant the test can use: `max_cycles`, or fewer when the time box cuts it.
    pub cycles: u32,
    /// Block pairs per variant at the last look.
    pub pairs: u32,
    /// The false-keep rate each variant's test gets (Bonferroni share; Holm may free more).
    pub alpha_per_variant: f64,
    /// The first cycle after which the exact test can keep at all (`None`: never).
    pub first_keep_cycle: Option<u32>,
    /// The noise assumed: standard deviation of the log ratio of adjacent blocks' metric.
    pub assumed_pair_sd: f64,
    /// The error rate assumed in both arms.
    pub assumed_error_rate: f64,
    /// The share of cycles assumed left out of the keep test for host pressure.
    #[serde(default)]
    pub assumed_disturbed_share: f64,
    /// The true improvement, in percent, kept with 80 % probability under the assumed noise:
    /// smaller wins will mostly come out inconclusive.
    pub min_detectable_improvement_pct: Option<f64>,
    /// The probability of keeping a true win of twice `min_improvement_pct` under the assumed noise.
    pub power_at_twice_threshold: Option<f64>,
    /// Plain-English notes for the user.
    pub notes: Vec<String>,
}

/// Computes what the schedule can decide for `variant_count` variants at `rate_per_s` requests
/// per second, assuming `noise` ([`Noise::TYPICAL`] when unknown, or what `smart calibrate`
/// measured).
///
/// The power figures come from running the [`Judge`] itself on simulated experiments (fixed
/// seeds): ABBA/BAAB orders, blocks whose log location has sd `pair_sd / √2`, errors at
/// `error_rate`, and every rule a real run meets (the exact test's looks and spending, the
/// weights, the minimum requests per arm, the error bounds, early stops).
///
/// ```
/// use smart_core::experiment::{Decision, Guardrails, Schedule};
/// use smart_decide::{Noise, feasibility};
///
/// let f = feasibility(&Schedule::default(), &Decision::default(), &Guardrails::default(), 1, 50.0, Noise::TYPICAL)?;
/// assert!(f.reachable);
/// assert!(f.min_detectable_improvement_pct.unwrap() > 10.0);
/// # Ok::<(), smart_decide::DecideError>(())
/// ```
pub fn feasibility(
    schedule: &Schedule,
    decision: &Decision,
    guardrails: &Guardrails,
    variant_count: usize,
    rate_per_s: f64,
    noise: Noise,
) -> Result<Feasibility, DecideError> {
    let (k, cycles) = feasibility_frame(schedule, guardrails, variant_count)?;
    let pair_sd = noise.pair_sd;
    let alpha = (1.0 - decision.confidence.get()) / k as f64;
    let (blocks_per_cycle, pairs_per_cycle) = if schedule.interleave { (4, 2) } else { (2, 1) };
    let cycle_s = blocks_per_cycle as f64 * (schedule.block_s + schedule.cooldown_s);
    let mut notes = Vec::new();
    if cycles < schedule.max_cycles {
        notes.push(format!(
            "the time box of {:.0} s fits only {cycles} of the {} cycles for {k} variant(s) \
             (about {cycle_s:.0} s per cycle)",
            schedule.max_duration_s, schedule.max_cycles
        ));
    }
    let answers = rate_per_s * schedule.block_s;
    if answers < FEW_ANSWERS {
        let needed = (FEW_ANSWERS / rate_per_s.max(1e-9)).ceil();
        notes.push(format!(
            "{rate_per_s:.0} requests/s for {:.0} s gives about {answers:.0} answers per block{}: \
             block medians that small are noisy; set block_s to {needed:.0} or more (or raise \
             rate_per_s) for at least {FEW_ANSWERS:.0}",
            schedule.block_s,
            if answers < MIN_ANSWERED as f64 {
                format!(", fewer than the {MIN_ANSWERED} a block needs to count at all")
            } else {
                String::new()
            }
        ));
    }
    let pairs = pairs_per_cycle * cycles;
    let first = first_possible(alpha, schedule.max_cycles);
    // Requests each arm gets by the last cycle: two blocks per cycle in ABBA, one in AB.
    let per_arm = rate_per_s * schedule.block_s * f64::from(pairs_per_cycle * cycles);
    let enough_requests = per_arm >= MIN_KEEP_REQUESTS as f64;
    if !enough_requests {
        let block = MIN_KEEP_REQUESTS as f64
            / (rate_per_s.max(1e-9) * f64::from((pairs_per_cycle * cycles).max(1)));
        notes.push(format!(
            "each arm gets about {per_arm:.0} requests by the last cycle, fewer than the \
             {MIN_KEEP_REQUESTS} a keep needs to bound the error rate: set block_s to {:.0} or \
             more, or raise rate_per_s",
            block.ceil()
        ));
    }
    let reachable =
        first.is_some_and(|f| f <= cycles) && answers >= MIN_ANSWERED as f64 && enough_requests;
    if !reachable {
        let need = (1..=1000).find(|&m| first_possible(alpha, m).is_some_and(|f| f <= m));
        notes.push(match first {
            Some(f) if f > cycles => format!(
                "no variant can ever be kept: the exact test can first keep after cycle {f}, and \
                 the time box fits {cycles}; raise max_duration_s"
            ),
            None => format!(
                "no variant can ever be kept: each cycle's order is one coin flip, so {} cycles \
                 cannot give {:.2} % confidence with looks along the way; set max_cycles to at \
                 least {}",
                schedule.max_cycles,
                (1.0 - alpha) * 100.0,
                need.map_or_else(|| "more".to_string(), |n| n.to_string())
            ),
            Some(_) => "no variant can ever be kept: blocks get too few answers or requests (see \
                        above)"
                .to_string(),
        });
        return Ok(Feasibility {
            reachable: false,
            cycles,
            pairs,
            alpha_per_variant: alpha,
            first_keep_cycle: first,
            assumed_pair_sd: pair_sd,
            assumed_error_rate: noise.error_rate,
            assumed_disturbed_share: noise.disturbed_share,
            min_detectable_improvement_pct: None,
            power_at_twice_threshold: None,
            notes,
        });
    }
    let plan = Plan::new(schedule, decision, guardrails, k, cycles, rate_per_s, noise);
    let need = decision.min_improvement_pct.get();
    let twice = (2.0 * need).min(99.0);
    let power_twice = plan.power(twice);
    // Bisect for the improvement kept in 80 % of runs, between the threshold and four times it.
    let (mut lo, mut hi) = (need, (4.0 * need).min(99.0));
    let mde = plan.reaches(hi, POWER).then(|| {
        for _ in 0..MDE_STEPS {
            let mid = 0.5 * (lo + hi);
            if plan.reaches(mid, POWER) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    });
    let disturbed = if noise.disturbed_share > 0.0 {
        format!(
            ", {:.0} % of cycles left out for host pressure",
            noise.disturbed_share * 100.0
        )
    } else {
        String::new()
    };
    notes.push(format!(
        "with block-pair noise {pair_sd:.3} (log scale){disturbed} and {:.1} % errors, {} is \
         kept in 80 % of runs, and a {twice:.0} % win in {:.0} %; the exact test can first keep \
         after cycle {} of {}",
        noise.error_rate * 100.0,
        mde.map_or_else(
            || format!("no true win up to {hi:.0} %"),
            |m| format!("a true win of {m:.1} % or more")
        ),
        power_twice * 100.0,
        first.unwrap_or(cycles),
        schedule.max_cycles
    ));
    if mde.is_some_and(|m| m > 2.0 * need) || mde.is_none() {
        notes.push(format!(
            "min_improvement_pct = {need} is out of reach for this schedule on this noise: most \
             runs will end inconclusive; use longer blocks, a higher rate or more cycles"
        ));
    }
    if k > 1 {
        notes.push(format!(
            "{k} variants share the false-keep rate of {:.1} %: each test starts at {:.2} %",
            (1.0 - decision.confidence.get()) * 100.0,
            alpha * 100.0
        ));
    }
    Ok(Feasibility {
        reachable: true,
        cycles,
        pairs,
        alpha_per_variant: alpha,
        first_keep_cycle: first,
        assumed_pair_sd: pair_sd,
        assumed_error_rate: noise.error_rate,
        assumed_disturbed_share: noise.disturbed_share,
        min_detectable_improvement_pct: mde,
        power_at_twice_threshold: Some(power_twice),
        notes,
    })
}

/// Computes the probability that the judge keeps a variant that is truly `improvement_pct` %
/// faster (its error rate unchanged), on a server with `noise`, by running the [`Judge`] on
/// simulated experiments as [`feasibility`] does: what `smart run` and the simulation example
/// quote beside a measured keep rate. Zero when the schedule cannot keep at all.
pub fn keep_probability(
    schedule: &Schedule,
    decision: &Decision,
    guardrails: &Guardrails,
    variant_count: usize,
    rate_per_s: f64,
    noise: Noise,
    improvement_pct: f64,
) -> Result<f64, DecideError> {
    let (k, cycles) = feasibility_frame(schedule, guardrails, variant_count)?;
    let plan = Plan::new(schedule, decision, guardrails, k, cycles, rate_per_s, noise);
    Ok(plan.power(improvement_pct))
}

/// The variant count (at least 1) and the cycles the time box fits, after checking the settings.
fn feasibility_frame(
    schedule: &Schedule,
    guardrails: &Guardrails,
    variant_count: usize,
) -> Result<(usize, u32), DecideError> {
    check_settings(guardrails, schedule)?;
    let k = variant_count.max(1);
    let blocks_per_cycle = if schedule.interleave { 4.0 } else { 2.0 };
    let cycle_s = blocks_per_cycle * (schedule.block_s + schedule.cooldown_s);
    let fit = (schedule.max_duration_s / (k as f64 * cycle_s)).floor();
    let cycles = if fit.is_finite() && fit >= 0.0 {
        (fit as u32).min(schedule.max_cycles)
    } else {
        schedule.max_cycles
    };
    Ok((k, cycles))
}

/// One simulated cycle's randomness: its order, per block a standard normal for the block's
/// location and a uniform for its error count, and a uniform that decides whether a neighbour's
/// burst leaves the cycle out of the keep test (drawn from its own stream, so the other draws do
/// not depend on whether host pressure is modelled).
struct CycleDraw {
    abba: bool,
    z: [f64; 4],
    u: [f64; 4],
    burst: f64,
}

/// The experiments [`feasibility`] runs the judge on.
struct Plan {
    schedule: Schedule,
    decision: Decision,
    guardrails: Guardrails,
    variants: Vec<String>,
    requests: u64,
    noise: Noise,
    draws: Vec<Vec<CycleDraw>>,
}

impl Plan {
    /// Draws every run's randomness once, from a fixed seed (common random numbers: the power
    /// curve over effect sizes is smooth, and the answer a pure function of the inputs).
    fn new(
        schedule: &Schedule,
        decision: &Decision,
        guardrails: &Guardrails,
        k: usize,
        cycles: u32,
        rate_per_s: f64,
        noise: Noise,
    ) -> Self {
        let mut state = 0x5eed_u64;
        let mut uniform = move || {
            state = state.wrapping_add(1);
            (smart_core::engine::splitmix64(state) >> 11) as f64 / (1u64 << 53) as f64
        };
        let burst = |run: usize, cycle: u32| {
            let x =
                smart_core::engine::splitmix64(0xb0_5e ^ ((run as u64) << 32 | u64::from(cycle)));
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let draws = (0..POWER_RUNS)
            .map(|run| {
                (0..cycles)
                    .map(|cycle| {
                        let mut normal = || {
                            let (u, v) = (uniform().max(1e-300), uniform());
                            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
                        };
                        let z = [normal(), normal(), normal(), normal()];
                        CycleDraw {
                            abba: uniform() < 0.5,
                            z,
                            u: [uniform(), uniform(), uniform(), uniform()],
                            burst: burst(run, cycle),
                        }
                    })
                    .collect()
            })
            .collect();
        Plan {
            schedule: schedule.clone(),
            decision: decision.clone(),
            guardrails: guardrails.clone(),
            variants: (0..k).map(|i| format!("v{i}")).collect(),
            requests: (rate_per_s * schedule.block_s).round().max(0.0) as u64,
            noise,
            draws,
        }
    }

    /// The share of runs in which the judge keeps a true improvement of `improvement_pct`.
    fn power(&self, improvement_pct: f64) -> f64 {
        let delta = (1.0 - improvement_pct / 100.0).ln();
        let kept = self
            .draws
            .iter()
            .filter(|run| self.keeps(run, delta))
            .count();
        kept as f64 / self.draws.len().max(1) as f64
    }

    /// Whether [`Plan::power`] at `improvement_pct` is at least `target`, running only as many
    /// experiments as it takes to know: the bisection for the detectable win asks only this,
    /// and most of its steps are settled well before the last run.
    fn reaches(&self, improvement_pct: f64, target: f64) -> bool {
        let delta = (1.0 - improvement_pct / 100.0).ln();
        let runs = self.draws.len().max(1);
        // The fewest keeps whose share is at least `target`, by the same division as `power`.
        let Some(needed) = (0..=self.draws.len()).find(|&k| k as f64 / runs as f64 >= target)
        else {
            return false;
        };
        let mut kept = 0;
        for (i, run) in self.draws.iter().enumerate() {
            if kept >= needed {
                break;
            }
            if kept + (self.draws.len() - i) < needed {
                return false;
            }
            kept += usize::from(self.keeps(run, delta));
        }
        kept >= needed
    }

    /// Runs one experiment through a fresh judge: whether variant 0 is kept.
    fn keeps(&self, run: &[CycleDraw], delta: f64) -> bool {
        let Ok(mut judge) = Judge::new(
            &self.decision,
            &self.guardrails,
            &self.schedule,
            &self.variants,
        ) else {
            return false;
        };
        let block_sd = self.noise.pair_sd / std::f64::consts::SQRT_2;
        let orders: [&[Arm]; 3] = [
            &[Arm::Baseline, Arm::Variant, Arm::Variant, Arm::Baseline],
            &[Arm::Variant, Arm::Baseline, Arm::Baseline, Arm::Variant],
            &[Arm::Baseline, Arm::Variant],
        ];
        for (cycle, draw) in run.iter().enumerate() {
            let order = match (self.schedule.interleave, draw.abba) {
                (true, true) => orders[0],
                (true, false) => orders[1],
                (false, _) => orders[2],
            };
            let blocks: Vec<BlockSample> = order
                .iter()
                .enumerate()
                .map(|(i, &arm)| {
                    let shift = if arm == Arm::Variant { delta } else { 0.0 };
                    let p50 = SIMULATED_MEDIAN_US * (shift + block_sd * draw.z[i]).exp();
                    let errors = poisson(self.requests as f64 * self.noise.error_rate, draw.u[i])
                        .min(self.requests);
                    BlockSample {
                        arm,
                        cycle: cycle as u32,
                        position: i as u32,
                        latencies_us: Vec::new(),
                        requests: self.requests,
                        errors,
                        cut_short: false,
                        quantiles: Some(BlockQuantiles {
                            answered: self.requests - errors,
                            p50_us: p50,
                            p90_us: 2.0 * p50,
                            p99_us: 4.0 * p50,
                            mean_us: 1.3 * p50,
                        }),
                        host: None,
                    }
                })
                .collect();
            let mut blocks = blocks;
            if draw.burst < self.noise.disturbed_share {
                // A neighbour's burst during the cycle's second block only: the judge leaves the
                // cycle out of the keep test (it still counts for errors).
                for b in &mut blocks {
                    b.host = Some(HostPressure {
                        cpu_some_pct: Some(if b.position == 1 { 95.0 } else { 2.0 }),
                        ..HostPressure::default()
                    });
                }
            }
            match judge.record_cycle(0, &blocks) {
                Ok(Step::Continue) => {}
                Ok(Step::Stop(verdict)) => return verdict == Verdict::Keep,
                Err(_) => return false,
            }
        }
        false
    }
}

/// The Poisson(`lambda`) count at uniform `u` (inversion; a normal approximation past 30).
fn poisson(lambda: f64, u: f64) -> u64 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        let z = norm_quantile(u.clamp(1e-12, 1.0 - 1e-12));
        return (lambda + lambda.sqrt() * z).round().max(0.0) as u64;
    }
    let (mut k, mut p) = (0u64, (-lambda).exp());
    let mut cdf = p;
    while cdf < u && k < 10_000 {
        k += 1;
        p *= lambda / k as f64;
        cdf += p;
    }
    k
}
