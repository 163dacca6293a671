//! Proves the judge's error rates by simulating whole experiments through its state machine.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release -p smart-decide --example simulate
//! cargo run --release -p smart-decide --example simulate -- --seed 7 --runs-scale 0.1
//! ```
//!
//! Every run draws its own server: log-normal latencies with σ uniform in [0.3, 1.0] around a
//! 20 ms median, AR(1) autocorrelation (ρ = 0.5) from request to request, a heavy tail (2 % of
//! requests slowed by a Pareto factor of shape 1.5), a 0.5 % background error rate, timeouts at
//! 2 s, and a drifting level: a random walk of ±10 % (uniform step) per 10-second block, plus a
//! proportional step during each 5-second cool-down. It measures at 50 requests per second with
//! the default schedule (10 s blocks, ABBA cycles in random order, at most 8 cycles) and the
//! default decision and guardrails, and feeds the judge exactly as the engine does. Results are
//! reproducible: each run's generator is seeded from the seed, the scenario and the run number.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Pareto, StandardNormal};
use smart_core::experiment::{Decision, Guardrails, Schedule};
use smart_decide::{Arm, BlockSample, Judge, Step, Verdict};

/// Requests per block: 50 req/s for 10 s.
const REQUESTS_PER_BLOCK: usize = 500;
const MEDIAN_US: f64 = 20_000.0;
const TIMEOUT_US: f64 = 2_000_000.0;
const AUTOCORRELATION: f64 = 0.5;
const TAIL_SHARE: f64 = 0.02;
const TAIL_SHAPE: f64 = 1.5;
const BASE_ERROR_RATE: f64 = 0.005;
const DRIFT_STEP: f64 = 0.10;
/// The seed tool's periods: 5 minutes each, 30 blocks of 10 s.
const SEED_RULE_BLOCKS: usize = 30;

/// One variant's true effect.
#[derive(Debug, Clone, Copy)]
struct Effect {
    latency_factor: f64,
    extra_errors: f64,
}

const NONE: Effect = Effect {
    latency_factor: 1.0,
    extra_errors: 0.0,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    /// The judge, as the engine drives it.
    Judge,
    /// The seed's rule: one 5-minute period each, keep if p50 looks 10 % better.
    Seed,
}

struct Scenario {
    name: &'static str,
    runs: usize,
    rule: Rule,
    /// The true effects of the variants; `winner` is the one that should be kept, if any.
    effects: Vec<Effect>,
    winner: Option<usize>,
    target: &'static str,
    met: fn(&Tally) -> bool,
}

/// Counts over the runs of one scenario.
#[derive(Debug, Default, Clone)]
struct Tally {
    runs: usize,
    keep: usize,
    keep_right: usize,
    keep_wrong: usize,
    revert: usize,
    inconclusive: usize,
    guardrail: usize,
    cycles: u64,
    variant_tests: u64,
    pair_sd: Vec<f64>,
}

impl Tally {
    fn pct(&self, n: usize) -> f64 {
        100.0 * n as f64 / self.runs.max(1) as f64
    }

    fn merge(&mut self, other: Tally) {
        self.runs += other.runs;
        self.keep += other.keep;
        self.keep_right += other.keep_right;
        self.keep_wrong += other.keep_wrong;
        self.revert += other.revert;
        self.inconclusive += other.inconclusive;
        self.guardrail += other.guardrail;
        self.cycles += other.cycles;
        self.variant_tests += other.variant_tests;
        self.pair_sd.extend(other.pair_sd);
    }

    fn mean_cycles(&self) -> f64 {
        self.cycles as f64 / self.variant_tests.max(1) as f64
    }
}

/// The simulated server: its noise for this run and where its drift has wandered.
struct Server {
    rng: Xoshiro256PlusPlus,
    sigma: f64,
    level: f64,
    ar: f64,
    tail: Pareto<f64>,
}

impl Server {
    fn new(seed: u64) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let sigma = rng.random_range(0.3..=1.0);
        let ar: f64 = StandardNormal.sample(&mut rng);
        Server {
            rng,
            sigma,
            level: 0.0,
            ar,
            tail: Pareto::new(1.0, TAIL_SHAPE).expect("valid Pareto parameters"),
        }
    }

    /// Moves the drift on by `fraction` of a block's time.
    fn drift(&mut self, fraction: f64) {
        self.level += self.rng.random_range(-DRIFT_STEP..=DRIFT_STEP) * fraction.sqrt();
    }

    /// Measures one 10-second block of `arm` under `effect`.
    fn block(&mut self, arm: Arm, cycle: u32, position: u32, effect: Effect) -> BlockSample {
        let shift = effect.latency_factor.ln();
        let error_rate = BASE_ERROR_RATE + effect.extra_errors;
        let mut latencies_us = Vec::with_capacity(REQUESTS_PER_BLOCK);
        let mut errors = 0;
        let innovation = (1.0 - AUTOCORRELATION * AUTOCORRELATION).sqrt();
        for _ in 0..REQUESTS_PER_BLOCK {
            let e: f64 = StandardNormal.sample(&mut self.rng);
            self.ar = AUTOCORRELATION * self.ar + innovation * e;
            let mut latency = MEDIAN_US * (self.level + shift + self.sigma * self.ar).exp();
            if self.rng.random_bool(TAIL_SHARE) {
                latency *= self.tail.sample(&mut self.rng);
            }
            if latency > TIMEOUT_US || self.rng.random_bool(error_rate) {
                errors += 1;
            } else {
                latencies_us.push(latency as u64);
            }
        }
        self.drift(1.0);
        BlockSample {
            arm,
            cycle,
            position,
            latencies_us,
            requests: REQUESTS_PER_BLOCK as u64,
            errors,
            cut_short: false,
        }
    }
}

fn median_us(block: &BlockSample) -> f64 {
    let mut v = block.latencies_us.clone();
    v.sort_unstable();
    v.get(v.len() / 2).map_or(f64::NAN, |&x| x as f64)
}

/// One whole experiment through the judge; returns the tally of this run.
fn run_judge(scenario: &Scenario, seed: u64) -> Tally {
    let mut server = Server::new(seed);
    let schedule = Schedule::default();
    let cooldown = schedule.cooldown_s / schedule.block_s;
    let names: Vec<String> = (0..scenario.effects.len())
        .map(|i| format!("v{i}"))
        .collect();
    let mut judge = Judge::new(
        &Decision::default(),
        &Guardrails::default(),
        &schedule,
        &names,
    )
    .expect("default settings are valid");
    let mut tally = Tally {
        runs: 1,
        ..Tally::default()
    };
    let mut diffs = Vec::new();
    for (v, &effect) in scenario.effects.iter().enumerate() {
        tally.variant_tests += 1;
        for cycle in 0..schedule.max_cycles {
            let order = if server.rng.random_bool(0.5) {
                [Arm::Baseline, Arm::Variant, Arm::Variant, Arm::Baseline]
            } else {
                [Arm::Variant, Arm::Baseline, Arm::Baseline, Arm::Variant]
            };
            let mut blocks = Vec::with_capacity(4);
            for (position, &arm) in order.iter().enumerate() {
                if position == 0 || order[position - 1] != arm {
                    server.drift(cooldown);
                }
                let e = if arm == Arm::Variant { effect } else { NONE };
                blocks.push(server.block(arm, cycle, position as u32, e));
            }
            for pair in blocks.chunks(2) {
                let (b, v) = if pair[0].arm == Arm::Baseline {
                    (&pair[0], &pair[1])
                } else {
                    (&pair[1], &pair[0])
                };
                diffs.push((median_us(v) / median_us(b)).ln());
            }
            tally.cycles += 1;
            let step = judge
                .record_cycle(v, &blocks)
                .expect("cycles are fed in order");
            if let Step::Stop(_) = step {
                break;
            }
        }
    }
    if scenario.effects.iter().all(|e| e.latency_factor == 1.0) {
        let m = diffs.iter().sum::<f64>() / diffs.len() as f64;
        let var = diffs.iter().map(|d| (d - m).powi(2)).sum::<f64>() / (diffs.len() - 1) as f64;
        tally.pair_sd.push(var.sqrt());
    }
    let outcome = judge.conclude();
    tally.guardrail = usize::from(outcome.variants.iter().any(|r| r.guardrail.is_some()));
    match outcome.kept.as_deref() {
        Some(kept) => {
            tally.keep = 1;
            let right = scenario.winner.map(|w| names[w].as_str()) == Some(kept);
            tally.keep_right = usize::from(right);
            tally.keep_wrong = usize::from(!right);
        }
        None if outcome
            .variants
            .iter()
            .all(|r| r.verdict == Verdict::Revert) =>
        {
            tally.revert = 1
        }
        None => tally.inconclusive = 1,
    }
    tally
}

/// The seed's rule on the same simulated server: one baseline period, one variant period.
fn run_seed_rule(scenario: &Scenario, seed: u64) -> Tally {
    let mut server = Server::new(seed);
    let effect = scenario.effects[0];
    let mut period = |arm: Arm, effect: Effect| {
        let mut all = Vec::new();
        for i in 0..SEED_RULE_BLOCKS {
            all.extend(server.block(arm, 0, i as u32, effect).latencies_us);
        }
        all.sort_unstable();
        all[all.len() / 2] as f64
    };
    let baseline = period(Arm::Baseline, NONE);
    let variant = period(Arm::Variant, effect);
    let keep = variant <= 0.9 * baseline;
    let right = keep && scenario.winner.is_some();
    Tally {
        runs: 1,
        keep: usize::from(keep),
        keep_right: usize::from(right),
        keep_wrong: usize::from(keep && !right),
        revert: usize::from(!keep),
        inconclusive: 0,
        guardrail: 0,
        cycles: 0,
        variant_tests: 1,
        pair_sd: Vec::new(),
    }
}

fn run_scenario(index: u64, scenario: &Scenario, seed: u64, threads: usize) -> Tally {
    let run = |r: usize| {
        let run_seed = splitmix(seed ^ splitmix(index << 32 | r as u64));
        match scenario.rule {
            Rule::Judge => run_judge(scenario, run_seed),
            Rule::Seed => run_seed_rule(scenario, run_seed),
        }
    };
    let mut total = Tally::default();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut tally = Tally::default();
                    for r in (t..scenario.runs).step_by(threads) {
                        tally.merge(run(r));
                    }
                    tally
                })
            })
            .collect();
        for w in workers {
            total.merge(w.join().expect("a simulation thread panicked"));
        }
    });
    total
}

/// SplitMix64: spreads nearby seeds over the whole seed space.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn scenarios(scale: f64) -> Vec<Scenario> {
    let runs = |n: usize| ((n as f64 * scale).round() as usize).max(10);
    let win = |f: f64| Effect {
        latency_factor: f,
        extra_errors: 0.0,
    };
    vec![
        Scenario {
            name: "A/A",
            runs: runs(10_000),
            rule: Rule::Judge,
            effects: vec![NONE],
            winner: None,
            target: "keep <= 5 % (aim 1 %)",
            met: |t| t.pct(t.keep) <= 5.0,
        },
        Scenario {
            name: "win-20",
            runs: runs(4000),
            rule: Rule::Judge,
            effects: vec![win(0.8)],
            winner: Some(0),
            target: "keep >= 95 %, mean cycles <= 4",
            met: |t| t.pct(t.keep_right) >= 95.0 && t.mean_cycles() <= 4.0,
        },
        Scenario {
            name: "win-9",
            runs: runs(4000),
            rule: Rule::Judge,
            effects: vec![win(0.91)],
            winner: None,
            target: "keep <= 5 %",
            met: |t| t.pct(t.keep) <= 5.0,
        },
        Scenario {
            name: "loss-20",
            runs: runs(4000),
            rule: Rule::Judge,
            effects: vec![win(1.2)],
            winner: None,
            target: "keep 0, revert >= 95 %",
            met: |t| t.keep == 0 && t.pct(t.revert) >= 95.0,
        },
        Scenario {
            name: "errors+3",
            runs: runs(4000),
            rule: Rule::Judge,
            effects: vec![Effect {
                latency_factor: 0.7,
                extra_errors: 0.03,
            }],
            winner: None,
            target: "keep 0",
            met: |t| t.keep == 0,
        },
        Scenario {
            name: "three-variants",
            runs: runs(4000),
            rule: Rule::Judge,
            effects: vec![NONE, win(0.8), NONE],
            winner: Some(1),
            target: "right kept >= 90 %, wrong <= 5 %",
            met: |t| t.pct(t.keep_right) >= 90.0 && t.pct(t.keep_wrong) <= 5.0,
        },
        Scenario {
            name: "seed-rule",
            runs: runs(2000),
            rule: Rule::Seed,
            effects: vec![NONE],
            winner: None,
            target: "(anchor: the seed's rule on A/A)",
            met: |_| true,
        },
    ]
}

#[expect(clippy::print_stdout, reason = "an example program prints its table")]
fn main() {
    let mut seed = 20_261_126_u64;
    let mut scale = 1.0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value.as_deref().map(str::parse::<f64>)) {
            ("--seed", Some(Ok(v))) => seed = v as u64,
            ("--runs-scale", Some(Ok(v))) if v > 0.0 => scale = v,
            _ => {
                println!("usage: simulate [--seed N] [--runs-scale X]");
                std::process::exit(2);
            }
        }
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    println!("seed {seed}, {threads} threads; default schedule and thresholds, 50 req/s");
    println!();
    println!(
        "| scenario | runs | keep % | revert % | inconclusive % | mean cycles | guardrail % | target | met |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|---|");
    let mut pair_sd = Vec::new();
    for (i, scenario) in scenarios(scale).iter().enumerate() {
        let t = run_scenario(i as u64, scenario, seed, threads);
        let keep = if scenario.effects.len() > 1 {
            format!(
                "{:.2} (right {:.2}, wrong {:.2})",
                t.pct(t.keep),
                t.pct(t.keep_right),
                t.pct(t.keep_wrong)
            )
        } else {
            format!("{:.2}", t.pct(t.keep))
        };
        let cycles = if scenario.rule == Rule::Seed {
            "1 period each (5 min)".to_string()
        } else {
            format!("{:.2}", t.mean_cycles())
        };
        println!(
            "| {} | {} | {keep} | {:.2} | {:.2} | {cycles} | {:.2} | {} | {} |",
            scenario.name,
            t.runs,
            t.pct(t.revert),
            t.pct(t.inconclusive),
            t.pct(t.guardrail),
            scenario.target,
            if (scenario.met)(&t) { "yes" } else { "NO" }
        );
        pair_sd.extend(t.pair_sd);
    }
    pair_sd.sort_by(f64::total_cmp);
    if !pair_sd.is_empty() {
        let q = |p: f64| pair_sd[((pair_sd.len() - 1) as f64 * p) as usize];
        println!();
        println!(
            "block-pair noise (sd of ln p50 ratio, no-effect runs): median {:.3}, p10 {:.3}, p90 {:.3}",
            q(0.5),
            q(0.1),
            q(0.9)
        );
    }
}
