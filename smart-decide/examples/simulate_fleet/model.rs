//! The fleet simulation's model: simulated hosts behind a load balancer, measured the way a
//! Prometheus histogram measures them, and the two designs fed through the real judge — the
//! fleet crossover (two host groups, both measured in every period, swapping each period) and the
//! single-host ABBA/BAAB design `smart` runs on one server.
//!
//! The model, per run:
//!
//! - **Hosts.** Each host has its own latency factor (log-normal, `host_sigma`) and its own request
//!   rate (log-normal around `rate_per_s`, `rate_sigma`). A request's latency is log-normal around
//!   the host's median (`request_sigma`) with a Pareto tail (`tail_share`, shape `tail_shape`);
//!   `error_rate` of requests fail.
//! - **Window noise.** In every measurement window each host's level moves by its own
//!   `N(0, window_sigma)` (what one host does that the others do not).
//! - **Drift.** One level shared by every host wanders as a continuous-time AR(1) (stationary sd
//!   `drift_sd`, correlation `drift_phi_per_min` per minute), read at each window's midpoint.
//! - **Noisy neighbours.** A share of the hosts (at least one; the single host itself in the
//!   "noisy" single-host design) has bursts of `burst_factor` times the latency that cover
//!   `burst_share` of the time, each lasting an exponential time of mean `burst_mean_s`. A window
//!   a burst covers in part sees that share of the host's requests slowed.
//! - **Measurement.** A window's requests from a group of hosts are the mixture of the hosts'
//!   distributions weighted by their rates; their count is Poisson, their errors binomial, and
//!   their latencies fall into the histogram's buckets (a multinomial draw from the mixture's
//!   exact CDF), from which the quantiles are interpolated as Prometheus's `histogram_quantile`
//!   does. So the arm's p50 is an aggregate over its hosts' requests, with the sampling noise and
//!   the bucket interpolation a real histogram has.

use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_distr::{Binomial, Distribution, Exp, Poisson, StandardNormal};
use smart_core::experiment::{Decision, Guardrails, Improvement, Schedule};
use smart_decide::{Arm, BlockQuantiles, BlockSample, Judge, Step, Verdict};
use statrs::function::erf::erfc;

/// Prometheus client libraries' default histogram buckets, in seconds.
pub(crate) const DEFAULT_BUCKETS_S: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The experimental design of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Design {
    /// The crossover over `hosts` hosts split at random into two equal arms.
    Fleet {
        /// How many hosts the fleet has (even).
        hosts: usize,
    },
    /// One host measured in ABBA/BAAB blocks, as `smart` does on a single server.
    SingleHost {
        /// Whether the host is a noisy neighbour (has bursts).
        noisy: bool,
    },
}

/// The world and the schedule of a simulated experiment.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// Median request latency of a host with factor 1, in µs.
    pub(crate) median_us: f64,
    /// Spread of request latencies within a host (log scale); must be positive.
    pub(crate) request_sigma: f64,
    /// Share of requests in the Pareto tail.
    pub(crate) tail_share: f64,
    /// Shape of the Pareto tail (above 1).
    pub(crate) tail_shape: f64,
    /// Host-to-host spread of the latency factor (log scale).
    pub(crate) host_sigma: f64,
    /// Median request rate of a host, per second.
    pub(crate) rate_per_s: f64,
    /// Host-to-host spread of the request rate (log scale).
    pub(crate) rate_sigma: f64,
    /// Each host's own level noise per measurement window (log scale).
    pub(crate) window_sigma: f64,
    /// Stationary sd of the drift every host shares (log scale).
    pub(crate) drift_sd: f64,
    /// The drift's autocorrelation over one minute.
    pub(crate) drift_phi_per_min: f64,
    /// How much slower a noisy neighbour is inside a burst.
    pub(crate) burst_factor: f64,
    /// Share of the time a noisy neighbour is inside a burst.
    pub(crate) burst_share: f64,
    /// Mean length of a burst, in seconds.
    pub(crate) burst_mean_s: f64,
    /// Share of a fleet's hosts that are noisy neighbours (at least one when positive).
    pub(crate) noisy_share: f64,
    /// Share of requests that fail, in both arms.
    pub(crate) error_rate: f64,
    /// Seconds from a change to the next measurement window (the Ansible run, one scrape).
    pub(crate) settle_s: f64,
    /// Seconds one fleet period measures.
    pub(crate) period_s: f64,
    /// Seconds one single-host block measures.
    pub(crate) block_s: f64,
    /// The most cycles the judge may ask for.
    pub(crate) max_cycles: u32,
    /// The decision's `min_improvement_pct`.
    pub(crate) min_improvement_pct: f64,
    /// The histogram's bucket upper bounds, in seconds, ascending.
    pub(crate) buckets_s: Vec<f64>,
}

impl Params {
    /// The world of the documented table: heterogeneous hosts, per-window noise, shared AR(1)
    /// drift, 5 % noisy neighbours bursting 15 % of the time at twice the latency; fleet periods
    /// of 60 s and single-host blocks of 22.5 s after a 30 s settle, which gives both designs
    /// the same expected wall time per cycle (2 × 60 + 1.5 × 30 = 4 × 22.5 + 2.5 × 30 = 165 s).
    pub(crate) fn realistic() -> Self {
        Params {
            median_us: 20_000.0,
            request_sigma: 0.5,
            tail_share: 0.02,
            tail_shape: 1.5,
            host_sigma: 0.3,
            rate_per_s: 20.0,
            rate_sigma: 0.3,
            window_sigma: 0.05,
            drift_sd: 0.15,
            drift_phi_per_min: 0.9,
            burst_factor: 2.0,
            burst_share: 0.15,
            burst_mean_s: 60.0,
            noisy_share: 0.05,
            error_rate: 0.005,
            settle_s: 30.0,
            period_s: 60.0,
            block_s: 22.5,
            max_cycles: 14,
            min_improvement_pct: 5.0,
            buckets_s: DEFAULT_BUCKETS_S.to_vec(),
        }
    }

    /// The same schedule and histogram with no noise but the requests' own: identical hosts, no
    /// window noise, no drift, no noisy neighbour.
    pub(crate) fn quiet() -> Self {
        Params {
            host_sigma: 0.0,
            rate_sigma: 0.0,
            window_sigma: 0.0,
            drift_sd: 0.0,
            noisy_share: 0.0,
            burst_share: 0.0,
            ..Params::realistic()
        }
    }

    fn schedule(&self, design: Design) -> Schedule {
        Schedule {
            cooldown_s: self.settle_s,
            block_s: match design {
                Design::Fleet { .. } => self.period_s,
                Design::SingleHost { .. } => self.block_s,
            },
            max_cycles: self.max_cycles,
            interleave: true,
            ..Schedule::default()
        }
    }
}

/// How one simulated experiment ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RunResult {
    /// The variant was kept.
    pub(crate) kept: bool,
    /// The verdict of the variant's report.
    pub(crate) verdict: Verdict,
    /// Cycles measured.
    pub(crate) cycles: u32,
    /// Wall time from the first change to the judge's stop, in seconds.
    pub(crate) seconds: f64,
}

/// One simulated experiment of `design`, the variant multiplying every latency by
/// `latency_factor` (1 for an A/A run), through the real judge. Deterministic for a seed.
pub(crate) fn run(design: Design, params: &Params, latency_factor: f64, seed: u64) -> RunResult {
    assert!(params.request_sigma > 0.0, "request_sigma must be positive");
    let mut world = World::new(design, params, seed);
    let decision = Decision {
        min_improvement_pct: Improvement::try_from(params.min_improvement_pct)
            .expect("the simulation's margins are percentages"),
        ..Decision::default()
    };
    let mut judge = Judge::new(
        &decision,
        &Guardrails::default(),
        &params.schedule(design),
        &["variant".to_string()],
    )
    .expect("the simulation's settings are valid");
    let shift = latency_factor.ln();
    let mut clock = Clock::default();
    let mut cycles = 0;
    for cycle in 0..params.max_cycles {
        let blocks = match design {
            Design::Fleet { .. } => world.fleet_cycle(cycle, shift, &mut clock),
            Design::SingleHost { .. } => world.single_cycle(cycle, shift, &mut clock),
        };
        cycles += 1;
        if let Step::Stop(_) = judge.record_cycle(0, &blocks).expect("cycles in order") {
            break;
        }
    }
    let outcome = judge.conclude();
    RunResult {
        kept: outcome.kept.is_some(),
        verdict: outcome.variants[0].verdict,
        cycles,
        seconds: clock.now,
    }
}

/// Wall time and what is live: which fleet group runs the variant, or which arm the single
/// host runs.
#[derive(Debug, Default)]
struct Clock {
    now: f64,
    live: Option<usize>,
}

impl Clock {
    /// Makes `live` the running state (waiting `settle_s` when that is a change) and returns the
    /// next measurement window.
    fn window(&mut self, live: usize, settle_s: f64, length_s: f64) -> (f64, f64) {
        if self.live != Some(live) {
            self.now += settle_s;
            self.live = Some(live);
        }
        let start = self.now;
        self.now += length_s;
        (start, self.now)
    }
}

/// One simulated host.
#[derive(Debug, Clone)]
struct Host {
    /// ln of its latency factor.
    level: f64,
    /// Requests per second.
    rate: f64,
    /// Its bursts as (start, end) seconds, ascending; empty for a quiet host.
    bursts: Vec<(f64, f64)>,
}

impl Host {
    /// The share of `[start, end)` its bursts cover.
    fn burst_cover(&self, start: f64, end: f64) -> f64 {
        let covered: f64 = self
            .bursts
            .iter()
            .map(|&(a, b)| (b.min(end) - a.max(start)).max(0.0))
            .sum();
        covered / (end - start)
    }
}

/// The hosts, the shared drift and the random numbers of one run.
struct World<'p> {
    rng: Xoshiro256PlusPlus,
    params: &'p Params,
    hosts: Vec<Host>,
    /// The fleet's two groups (indices into `hosts`); the single host is group 0.
    groups: [Vec<usize>; 2],
    drift_level: f64,
    drift_at: f64,
}

impl<'p> World<'p> {
    fn new(design: Design, params: &'p Params, seed: u64) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        // Long enough for every cycle with a switch before every window.
        let horizon = f64::from(params.max_cycles)
            * 4.0
            * (params.settle_s + params.period_s.max(params.block_s));
        let (count, noisy) = match design {
            Design::Fleet { hosts } => {
                let noisy = if params.noisy_share > 0.0 {
                    ((hosts as f64 * params.noisy_share).round() as usize).clamp(1, hosts)
                } else {
                    0
                };
                (hosts, noisy)
            }
            Design::SingleHost { noisy } => (1, usize::from(noisy)),
        };
        let mut hosts: Vec<Host> = (0..count)
            .map(|_| Host {
                level: params.host_sigma * normal(&mut rng),
                rate: params.rate_per_s * (params.rate_sigma * normal(&mut rng)).exp(),
                bursts: Vec::new(),
            })
            .collect();
        // The noisy neighbours are a random subset: the first `noisy` of a random order.
        let mut order: Vec<usize> = (0..count).collect();
        order.shuffle(&mut rng);
        for &h in &order[..noisy] {
            hosts[h].bursts = bursts(&mut rng, params, horizon);
        }
        // The arms: a fresh random order split in half.
        order.shuffle(&mut rng);
        let half = count / 2;
        let groups = if count == 1 {
            [vec![0], Vec::new()]
        } else {
            [order[..half].to_vec(), order[half..].to_vec()]
        };
        let drift_level = params.drift_sd * normal(&mut rng);
        World {
            rng,
            params,
            hosts,
            groups,
            drift_level,
            drift_at: 0.0,
        }
    }

    /// The shared drift at time `t` (non-decreasing between calls): an AR(1) in continuous time.
    fn drift(&mut self, t: f64) -> f64 {
        let phi = self
            .params
            .drift_phi_per_min
            .powf((t - self.drift_at).max(0.0) / 60.0);
        let innovation = self.params.drift_sd * (1.0 - phi * phi).sqrt();
        self.drift_level = phi * self.drift_level + innovation * normal(&mut self.rng);
        self.drift_at = t;
        self.drift_level
    }

    /// One crossover cycle: two periods, the order of the groups on the variant drawn by a fair
    /// coin; in each period both groups are measured over the same window. The blocks are fed as
    /// (baseline, variant) of the first period and (variant, baseline) of the second, so the
    /// judge pairs each period's two groups and the cycle contrast is the mean of the periods'
    /// log ratios: the groups' difference enters the two with opposite signs and cancels.
    fn fleet_cycle(&mut self, cycle: u32, shift: f64, clock: &mut Clock) -> Vec<BlockSample> {
        let first = usize::from(self.rng.random_bool(0.5));
        let mut blocks = Vec::with_capacity(4);
        for (period, variant_group) in [first, 1 - first].into_iter().enumerate() {
            let (start, end) =
                clock.window(variant_group, self.params.settle_s, self.params.period_s);
            let drift = self.drift((start + end) / 2.0);
            let baseline = self.measure(1 - variant_group, (start, end), drift, 0.0);
            let variant = self.measure(variant_group, (start, end), drift, shift);
            let arms = if period == 0 {
                [(Arm::Baseline, baseline), (Arm::Variant, variant)]
            } else {
                [(Arm::Variant, variant), (Arm::Baseline, baseline)]
            };
            for (arm, figures) in arms {
                blocks.push(block(arm, cycle, blocks.len() as u32, figures));
            }
        }
        blocks
    }

    /// One ABBA or BAAB cycle on the single host (drawn by a fair coin), each block after a
    /// settle when the arm changed. The host starts on the baseline.
    fn single_cycle(&mut self, cycle: u32, shift: f64, clock: &mut Clock) -> Vec<BlockSample> {
        if clock.live.is_none() {
            clock.live = Some(0);
        }
        let order = if self.rng.random_bool(0.5) {
            [Arm::Baseline, Arm::Variant, Arm::Variant, Arm::Baseline]
        } else {
            [Arm::Variant, Arm::Baseline, Arm::Baseline, Arm::Variant]
        };
        let mut blocks = Vec::with_capacity(4);
        for arm in order {
            let live = usize::from(arm == Arm::Variant);
            let (start, end) = clock.window(live, self.params.settle_s, self.params.block_s);
            let drift = self.drift((start + end) / 2.0);
            let s = if arm == Arm::Variant { shift } else { 0.0 };
            let figures = self.measure(0, (start, end), drift, s);
            blocks.push(block(arm, cycle, blocks.len() as u32, figures));
        }
        blocks
    }

    /// What a histogram reports for group `group`'s requests in `window`: every host's latency
    /// moved by the drift, its own window noise, its bursts and `shift`.
    fn measure(&mut self, group: usize, window: (f64, f64), drift: f64, shift: f64) -> Figures {
        let p = self.params;
        let length = window.1 - window.0;
        let base = p.median_us.ln() + drift + shift;
        let mut components = Vec::with_capacity(self.groups[group].len() * 2);
        for &h in &self.groups[group] {
            let host = &self.hosts[h];
            let mu = base + host.level + p.window_sigma * normal(&mut self.rng);
            let weight = host.rate * length;
            let cover = host.burst_cover(window.0, window.1);
            if cover > 0.0 {
                components.push((mu + p.burst_factor.ln(), weight * cover));
            }
            if cover < 1.0 {
                components.push((mu, weight * (1.0 - cover)));
            }
        }
        let expected: f64 = components.iter().map(|c| c.1).sum();
        let requests = if expected > 0.0 {
            Poisson::new(expected)
                .expect("a positive mean")
                .sample(&mut self.rng) as u64
        } else {
            0
        };
        let errors = binomial(&mut self.rng, requests, p.error_rate);
        let answered = requests - errors;
        // The buckets' counts: a multinomial draw from the mixture's CDF at each bound.
        let mut cumulative = Vec::with_capacity(p.buckets_s.len());
        let (mut below, mut left, mut total) = (0.0, answered, 0);
        for &bound in &p.buckets_s {
            let cdf = mixture_cdf(&components, expected, bound * 1e6, p);
            let inside = if below < 1.0 {
                ((cdf - below) / (1.0 - below)).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let count = binomial(&mut self.rng, left, inside);
            left -= count;
            total += count;
            cumulative.push(total);
            below = cdf.max(below);
        }
        let q = |quantile| histogram_quantile(quantile, &p.buckets_s, &cumulative, answered) * 1e6;
        let tail_mean = (1.0 - p.tail_share) + p.tail_share * p.tail_shape / (p.tail_shape - 1.0);
        let mean_us = components
            .iter()
            .map(|&(mu, w)| w * (mu + p.request_sigma.powi(2) / 2.0).exp())
            .sum::<f64>()
            / expected.max(f64::MIN_POSITIVE)
            * tail_mean;
        Figures {
            requests,
            errors,
            quantiles: BlockQuantiles {
                answered,
                p50_us: q(0.5),
                p90_us: q(0.9),
                p99_us: q(0.99),
                mean_us,
            },
        }
    }
}

/// One group's figures over one window.
#[derive(Debug, Clone, Copy)]
struct Figures {
    requests: u64,
    errors: u64,
    quantiles: BlockQuantiles,
}

fn block(arm: Arm, cycle: u32, position: u32, figures: Figures) -> BlockSample {
    BlockSample {
        arm,
        cycle,
        position,
        latencies_us: Vec::new(),
        requests: figures.requests,
        errors: figures.errors,
        cut_short: false,
        quantiles: Some(figures.quantiles),
        // Prometheus reports no per-block host pressure to the judge.
        host: None,
    }
}

/// A noisy neighbour's bursts up to `horizon`: quiet and burst spells of exponential length
/// (means set so bursts cover `burst_share` of the time), starting in a burst with that
/// probability.
fn bursts(rng: &mut Xoshiro256PlusPlus, p: &Params, horizon: f64) -> Vec<(f64, f64)> {
    if p.burst_share <= 0.0 {
        return Vec::new();
    }
    let burst = Exp::new(1.0 / p.burst_mean_s).expect("a positive mean");
    let quiet_mean = p.burst_mean_s * (1.0 - p.burst_share) / p.burst_share;
    let quiet = Exp::new(1.0 / quiet_mean.max(f64::MIN_POSITIVE)).expect("a positive mean");
    let mut t = if rng.random_bool(p.burst_share.min(1.0)) {
        0.0
    } else {
        quiet.sample(rng)
    };
    let mut spells = Vec::new();
    while t < horizon {
        let end = t + burst.sample(rng);
        spells.push((t, end));
        t = end + quiet.sample(rng);
    }
    spells
}

/// P(latency ≤ `x_us`) for the rate-weighted mixture of log-normal components `(mu, weight)`,
/// each with the Pareto tail.
fn mixture_cdf(components: &[(f64, f64)], total: f64, x_us: f64, p: &Params) -> f64 {
    if total <= 0.0 {
        return 0.0;
    }
    let sum: f64 = components
        .iter()
        .map(|&(mu, w)| w * component_cdf(mu, x_us, p))
        .sum();
    (sum / total).clamp(0.0, 1.0)
}

/// P(latency ≤ x) when latency = L·T with L log-normal(mu, σ) and, for `tail_share` of
/// requests, T Pareto(1, a) (else T = 1): `Φ(z) − s·x^(−a)·E[L^a; L ≤ x]`, where
/// `E[L^a; L ≤ x] = exp(a·mu + a²σ²/2)·Φ(z − aσ)` and `z = (ln x − mu)/σ`.
fn component_cdf(mu: f64, x: f64, p: &Params) -> f64 {
    let (sigma, a) = (p.request_sigma, p.tail_shape);
    let ln_x = x.max(f64::MIN_POSITIVE).ln();
    let z = (ln_x - mu) / sigma;
    let below_tail = phi(z - a * sigma);
    let tail = if below_tail > 0.0 {
        (a * (mu - ln_x) + a * a * sigma * sigma / 2.0 + below_tail.ln()).exp()
    } else {
        0.0
    };
    (phi(z) - p.tail_share * tail).clamp(0.0, 1.0)
}

/// The standard normal CDF.
fn phi(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Prometheus's `histogram_quantile`: linear interpolation inside the bucket holding the rank
/// (from 0 for the first bucket); the highest finite bound when the rank falls in `+Inf`; NaN
/// without observations.
pub(crate) fn histogram_quantile(q: f64, bounds: &[f64], cumulative: &[u64], count: u64) -> f64 {
    if count == 0 {
        return f64::NAN;
    }
    let rank = q * count as f64;
    let (mut lower, mut below) = (0.0, 0.0);
    for (&upper, &c) in bounds.iter().zip(cumulative) {
        if c as f64 >= rank {
            let inside = c as f64 - below;
            return if inside == 0.0 {
                upper
            } else {
                lower + (upper - lower) * (rank - below) / inside
            };
        }
        lower = upper;
        below = c as f64;
    }
    bounds.last().copied().unwrap_or(f64::NAN)
}

fn binomial(rng: &mut Xoshiro256PlusPlus, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    Binomial::new(n, p)
        .expect("a probability in (0, 1)")
        .sample(rng)
}

fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    StandardNormal.sample(rng)
}
