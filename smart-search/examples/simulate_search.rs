//! Compares smart's search with grid search (today's `matrix`) and random search on known response
//! surfaces, judging every candidate with smart's own sequential judge (smart-decide) and ABBA
//! design, and prints the table in docs/search.md.
//!
//! Run it with:
//!
//! ```text
//! nice cargo run --release -p smart-search --example simulate_search
//! nice cargo run --release -p smart-search --example simulate_search -- --seed 7 --runs 50 --surface cliff
//! ```
//!
//! Every run draws a server's noise (block-level p50 noise σ uniform in [0.04, 0.10] on the log
//! scale, so adjacent blocks differ by about the typical 0.10 that `smart calibrate` reports, and
//! a random-walk drift of ±3 % per block), then runs one strategy on the same budget and schedule:
//! each candidate is an ABBA test (ABBA or BAAB drawn per cycle) fed cycle by cycle to a
//! `smart_decide::Judge` until it stops. Blocks are given to the judge as quantiles (as a
//! Prometheus source would), which keeps ten thousand simulated searches fast. Results are
//! reproducible: each run's generator is seeded from the seed, the surface, the strategy and the
//! run number.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Binomial, Distribution, StandardNormal};
use smart_core::engine::splitmix64;
use smart_core::experiment::{
    Confidence, Decision, Domain, Guardrails, Improvement, IntRange, Metric, ParamValue, Scale,
    Schedule, SearchSpec,
};
use smart_decide::{Arm, BlockQuantiles, BlockSample, Judge, Step};
use smart_search::{Against, ChangePct, Judged, Next, Point, Search, Settings, Space};

/// Requests per block: 50 per second for 10 seconds.
const REQUESTS: u64 = 500;
/// The error rate of a healthy configuration.
const BASE_ERROR_RATE: f64 = 0.002;
/// Candidates per search, for every strategy.
const BUDGET: u32 = 20;

/// A known response surface: the true p50 and error rate of every point.
struct Surface {
    name: &'static str,
    /// The params and their ranges (all integer, linear).
    dims: &'static [(&'static str, i64, i64)],
    /// The true p50 in ms of a point, given its values.
    p50: fn(&[i64]) -> f64,
    /// The true error rate of a point.
    errors: fn(&[i64]) -> f64,
    /// The true p50 of the configuration as found.
    original_p50: f64,
    /// Whether a guardrail must fire (the surface has a cliff).
    cliff: bool,
}

fn healthy(_: &[i64]) -> f64 {
    BASE_ERROR_RATE
}

fn surfaces() -> Vec<Surface> {
    vec![
        Surface {
            name: "1-D interior optimum",
            dims: &[("x", 1, 64)],
            p50: |v| 10.0 * (1.0 + 8.0 * ((v[0] - 48) as f64 / 64.0).powi(2)),
            errors: healthy,
            original_p50: 20.0,
            cliff: false,
        },
        Surface {
            name: "2-D with interaction",
            dims: &[("a", 1, 32), ("b", 1, 32)],
            p50: |v| {
                let (u, w) = ((v[0] - 24) as f64 / 32.0, (v[1] - 10) as f64 / 32.0);
                10.0 * (1.0 + 3.0 * (u + w).powi(2) + 1.5 * (u - w).powi(2))
            },
            errors: healthy,
            original_p50: 20.0,
            cliff: false,
        },
        Surface {
            name: "flat",
            dims: &[("a", 1, 32), ("b", 1, 32)],
            p50: |_| 10.0,
            errors: healthy,
            original_p50: 10.0,
            cliff: false,
        },
        Surface {
            name: "cliff (guardrail)",
            dims: &[("x", 1, 64)],
            p50: |v| 10.0 * (1.0 + 1.5 * ((64 - v[0]) as f64 / 64.0).powi(2)),
            errors: |v| if v[0] >= 50 { 0.35 } else { BASE_ERROR_RATE },
            original_p50: 15.0,
            cliff: true,
        },
    ]
}

impl Surface {
    fn spec(&self) -> SearchSpec {
        let params = self
            .dims
            .iter()
            .map(|&(name, min, max)| {
                let range = IntRange {
                    min,
                    max,
                    step: None,
                    scale: Scale::Linear,
                };
                (name.to_string(), Domain::Range(range))
            })
            .collect();
        let mut spec = SearchSpec::new(params);
        spec.budget.max_candidates = BUDGET;
        spec
    }

    fn values(&self, space: &Space, point: &Point) -> Vec<i64> {
        // Dims are in name order in the space; the surfaces list them in name order too.
        space
            .params(point)
            .values()
            .map(|v| match v {
                ParamValue::Int(n) => *n,
                ParamValue::Str(_) => unreachable!("integer surfaces"),
            })
            .collect()
    }

    /// The best true p50 among points that do not break the server.
    fn optimum(&self) -> f64 {
        let mut best = f64::INFINITY;
        let mut v: Vec<i64> = self.dims.iter().map(|d| d.1).collect();
        loop {
            if (self.errors)(&v) < 0.05 {
                best = best.min((self.p50)(&v));
            }
            let mut i = 0;
            loop {
                if i == v.len() {
                    return best.min(self.original_p50);
                }
                v[i] += 1;
                if v[i] <= self.dims[i].2 {
                    break;
                }
                v[i] = self.dims[i].1;
                i += 1;
            }
        }
    }
}

/// One configuration's truth, as an arm of a test.
#[derive(Debug, Clone, Copy)]
struct Truth {
    p50_ms: f64,
    error_rate: f64,
}

/// The simulated server: its noise for this run and where its drift has wandered.
struct Server {
    rng: Xoshiro256PlusPlus,
    sigma: f64,
    level: f64,
    seconds: f64,
}

impl Server {
    fn new(seed: u64) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let sigma = rng.random_range(0.04..=0.10);
        Server {
            rng,
            sigma,
            level: 0.0,
            seconds: 0.0,
        }
    }

    fn block(&mut self, arm: Arm, cycle: u32, position: u32, truth: Truth) -> BlockSample {
        self.level += self.rng.random_range(-0.03..=0.03);
        let mut noise = || -> f64 {
            let e: f64 = StandardNormal.sample(&mut self.rng);
            e
        };
        let p50 = truth.p50_ms * 1000.0 * (self.level + self.sigma * noise()).exp();
        let p90 = p50 * 1.8 * (0.05 * noise()).exp();
        let p99 = p90 * 1.7 * (0.1 * noise()).exp();
        let errors = Binomial::new(REQUESTS, truth.error_rate.clamp(0.0, 1.0))
            .expect("a rate in [0, 1]")
            .sample(&mut self.rng);
        BlockSample {
            arm,
            cycle,
            position,
            latencies_us: Vec::new(),
            requests: REQUESTS,
            errors,
            cut_short: false,
            quantiles: Some(BlockQuantiles {
                answered: REQUESTS - errors,
                p50_us: p50,
                p90_us: p90,
                p99_us: p99,
                mean_us: p50 * 1.3,
            }),
            host: None,
        }
    }
}

/// The schedule every strategy runs on: the default blocks and cooldown, 16 cycles at most.
fn schedule() -> Schedule {
    Schedule {
        max_cycles: 16,
        ..Schedule::default()
    }
}

/// Runs variant `index` of `judge` cycle by cycle until it stops; returns the seconds it took.
fn measure(
    server: &mut Server,
    judge: &mut Judge,
    index: usize,
    baseline: Truth,
    variant: Truth,
) -> f64 {
    let s = schedule();
    let mut seconds = 0.0;
    for cycle in 0..s.max_cycles {
        let order = if server.rng.random_bool(0.5) {
            [Arm::Baseline, Arm::Variant, Arm::Variant, Arm::Baseline]
        } else {
            [Arm::Variant, Arm::Baseline, Arm::Baseline, Arm::Variant]
        };
        let mut blocks = Vec::with_capacity(4);
        for (position, &arm) in order.iter().enumerate() {
            if position == 0 || order[position - 1] != arm {
                seconds += s.cooldown_s;
            }
            let truth = if arm == Arm::Baseline {
                baseline
            } else {
                variant
            };
            blocks.push(server.block(arm, cycle, position as u32, truth));
            seconds += s.block_s;
        }
        if let Step::Stop(_) = judge.record_cycle(index, &blocks).expect("cycles in order") {
            break;
        }
    }
    server.seconds += seconds;
    seconds
}

/// What one search ended with.
#[derive(Debug, Default, Clone)]
struct Tally {
    runs: usize,
    within_5: usize,
    kept_any: usize,
    step_kept: usize,
    guardrail: usize,
    in_cliff: usize,
    candidates: u64,
    hours: f64,
}

impl Tally {
    fn add(&mut self, surface: &Surface, final_p50: f64, final_errors: f64, kept: bool, r: Run) {
        self.runs += 1;
        self.within_5 += usize::from(final_p50 <= 1.05 * surface.optimum());
        self.kept_any += usize::from(kept);
        self.step_kept += usize::from(r.step_kept || kept);
        self.guardrail += usize::from(r.guardrail);
        self.in_cliff += usize::from(final_errors > 0.05);
        self.candidates += u64::from(r.candidates);
        self.hours += r.seconds / 3600.0;
    }

    fn pct(&self, n: usize) -> f64 {
        100.0 * n as f64 / self.runs.max(1) as f64
    }
}

/// What a strategy used.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    candidates: u32,
    seconds: f64,
    guardrail: bool,
    /// Something was kept on the way (for the search: a step, even if the end undid it).
    step_kept: bool,
}

fn judge_for(decision: &Decision, names: &[String]) -> Judge {
    Judge::new(decision, &Guardrails::default(), &schedule(), names).expect("valid settings")
}

/// smart's search: one judge per candidate, at the share of alpha the search gives it.
fn run_search(surface: &Surface, seed: u64) -> (Option<Point>, Run) {
    let spec = surface.spec();
    let space = Space::new(&spec).expect("a valid space");
    let worst = smart_core::schedule::Durations::of(
        &schedule(),
        smart_core::schedule::Plan {
            variants: 1,
            initial_checks_s: 0.0,
        },
    )
    .worst_case_s;
    let settings = Settings::of(&spec, &Decision::default(), worst);
    let mut search = Search::new(&space, space.middle(), None, settings).expect("a valid start");
    let mut server = Server::new(seed);
    let original = Truth {
        p50_ms: surface.original_p50,
        error_rate: BASE_ERROR_RATE,
    };
    let truth = |p: &Point| {
        let v = surface.values(&space, p);
        Truth {
            p50_ms: (surface.p50)(&v),
            error_rate: (surface.errors)(&v),
        }
    };
    let mut run = Run::default();
    loop {
        match search.next(&space) {
            Next::Test(c) => {
                let decision = Decision {
                    metric: Metric::P50,
                    confidence: Confidence::try_from(c.confidence).expect("a confidence"),
                    min_improvement_pct: Improvement::try_from(c.min_improvement_pct)
                        .expect("a percentage"),
                    ..Decision::default()
                };
                let mut judge = judge_for(&decision, &["candidate".to_string()]);
                let baseline = match &c.against {
                    Against::Original => original,
                    Against::Incumbent(p) => truth(p),
                };
                let seconds = measure(&mut server, &mut judge, 0, baseline, truth(&c.point));
                let report = judge.conclude().variants.remove(0);
                run.candidates += 1;
                run.seconds += seconds;
                run.guardrail |= report.guardrail.is_some();
                let judged = Judged {
                    verdict: report.verdict,
                    guardrail: report.guardrail.is_some(),
                    seconds,
                    change_pct: report.metric_change_pct.map(|i| ChangePct {
                        estimate: i.estimate,
                        lower: i.lower,
                        upper: i.upper,
                    }),
                };
                search
                    .record(&space, c.id, judged)
                    .expect("the pending candidate");
            }
            Next::Done(finish) => {
                run.step_kept = search.path().next().is_some();
                return (finish.kept, run);
            }
        }
    }
}

/// Today's `matrix` or a random sample: every point a variant of one experiment against the
/// configuration as found, the judge keeping at most the best.
fn run_fixed(surface: &Surface, points: &[Point], seed: u64) -> (Option<Point>, Run) {
    let space = Space::new(&surface.spec()).expect("a valid space");
    let names: Vec<String> = (0..points.len()).map(|i| format!("v{i}")).collect();
    let decision = Decision {
        confidence: Confidence::try_from(surface.spec().confidence).expect("a confidence"),
        ..Decision::default()
    };
    let mut judge = judge_for(&decision, &names);
    let mut server = Server::new(seed);
    let original = Truth {
        p50_ms: surface.original_p50,
        error_rate: BASE_ERROR_RATE,
    };
    let mut run = Run::default();
    for (i, p) in points.iter().enumerate() {
        let v = surface.values(&space, p);
        let truth = Truth {
            p50_ms: (surface.p50)(&v),
            error_rate: (surface.errors)(&v),
        };
        run.seconds += measure(&mut server, &mut judge, i, original, truth);
        run.candidates += 1;
    }
    let outcome = judge.conclude();
    run.guardrail = outcome.variants.iter().any(|r| r.guardrail.is_some());
    let kept = outcome
        .kept
        .and_then(|name| names.iter().position(|n| *n == name))
        .map(|i| points[i].clone());
    (kept, run)
}

/// An evenly spaced grid of at most [`BUDGET`] points: k values per param with k^dims ≤ budget.
fn grid(space: &Space) -> Vec<Point> {
    let dims = space.dims().len() as u32;
    let k = (1..)
        .take_while(|k: &u32| k.pow(dims) <= BUDGET)
        .last()
        .unwrap_or(1);
    let levels: Vec<Vec<usize>> = space
        .dims()
        .iter()
        .map(|d| {
            let n = d.values().len();
            (0..k as usize)
                .map(|i| ((2 * i + 1) * n / (2 * k as usize)).min(n - 1))
                .collect()
        })
        .collect();
    let mut out = vec![Vec::new()];
    for l in &levels {
        out = out
            .into_iter()
            .flat_map(|p: Vec<usize>| {
                l.iter().map(move |&i| {
                    let mut q = p.clone();
                    q.push(i);
                    q
                })
            })
            .collect();
    }
    out.into_iter().map(Point).collect()
}

/// [`BUDGET`] distinct points drawn uniformly.
fn random_points(space: &Space, seed: u64) -> Vec<Point> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut out: Vec<Point> = Vec::new();
    let cap = (BUDGET as u64).min(space.size()) as usize;
    while out.len() < cap {
        let p = Point(
            space
                .dims()
                .iter()
                .map(|d| rng.random_range(0..d.values().len()))
                .collect(),
        );
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Strategy {
    Search,
    Grid,
    Random,
}

impl Strategy {
    fn name(self) -> &'static str {
        match self {
            Strategy::Search => "smart search",
            Strategy::Grid => "grid (matrix)",
            Strategy::Random => "random",
        }
    }
}

fn run_one(surface: &Surface, strategy: Strategy, seed: u64, tally: &mut Tally) {
    let space = Space::new(&surface.spec()).expect("a valid space");
    let (kept, run) = match strategy {
        Strategy::Search => run_search(surface, seed),
        Strategy::Grid => run_fixed(surface, &grid(&space), seed),
        Strategy::Random => run_fixed(surface, &random_points(&space, seed ^ 1), seed),
    };
    let (p50, errors) = match &kept {
        Some(p) => {
            let v = surface.values(&space, p);
            ((surface.p50)(&v), (surface.errors)(&v))
        }
        None => (surface.original_p50, BASE_ERROR_RATE),
    };
    tally.add(surface, p50, errors, kept.is_some(), run);
}

#[expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example program prints its table (and its usage)"
)]
fn main() {
    let mut seed = 1u64;
    let mut runs = 200usize;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next();
        let number = value.as_deref().and_then(|v| v.parse::<u64>().ok());
        match (a.as_str(), number) {
            ("--seed", Some(v)) => seed = v,
            ("--runs", Some(v)) => runs = v as usize,
            ("--surface", _) if value.is_some() => only = value,
            _ => {
                eprintln!("usage: simulate [--seed N] [--runs N] [--surface 1-D|2-D|flat|cliff]");
                std::process::exit(2);
            }
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "seed {seed}, {runs} runs per row ({} for the flat surface), budget {BUDGET} candidates, \
         blocks of 10 s, cooldown 5 s, at most 16 cycles per candidate; search confidence 0.99, \
         decision.min_improvement_pct 10, min_step_improvement_pct 0",
        runs * 3
    );
    println!();
    println!(
        "| surface | strategy | runs | within 5 % of optimum | kept at the end | kept on the way | guardrail fired | ended in the cliff | mean candidates | mean hours |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    // Each surface keeps its index in the list, so a row gives the same figures alone.
    for (si, surface) in surfaces().iter().enumerate() {
        if only
            .as_ref()
            .is_some_and(|o| !surface.name.starts_with(o.as_str()))
        {
            continue;
        }
        let n = if surface.name == "flat" {
            runs * 3
        } else {
            runs
        };
        for (ti, strategy) in [Strategy::Search, Strategy::Grid, Strategy::Random]
            .into_iter()
            .enumerate()
        {
            let mut tallies: Vec<Tally> = Vec::new();
            std::thread::scope(|s| {
                let workers: Vec<_> = (0..threads)
                    .map(|t| {
                        s.spawn(move || {
                            let mut tally = Tally::default();
                            for r in (t..n).step_by(threads) {
                                let run_seed = splitmix64(
                                    seed ^ splitmix64(
                                        (si as u64) << 40 | (ti as u64) << 32 | r as u64,
                                    ),
                                );
                                run_one(surface, strategy, run_seed, &mut tally);
                            }
                            tally
                        })
                    })
                    .collect();
                tallies = workers
                    .into_iter()
                    .map(|w| w.join().expect("a simulation thread panicked"))
                    .collect();
            });
            let mut t = Tally::default();
            for x in tallies {
                t.runs += x.runs;
                t.within_5 += x.within_5;
                t.kept_any += x.kept_any;
                t.step_kept += x.step_kept;
                t.guardrail += x.guardrail;
                t.in_cliff += x.in_cliff;
                t.candidates += x.candidates;
                t.hours += x.hours;
            }
            println!(
                "| {} | {} | {} | {:.1} % | {:.1} % | {:.1} % | {} | {} | {:.1} | {:.1} |",
                surface.name,
                strategy.name(),
                t.runs,
                t.pct(t.within_5),
                t.pct(t.kept_any),
                t.pct(t.step_kept),
                if surface.cliff {
                    format!("{:.1} %", t.pct(t.guardrail))
                } else {
                    "—".to_string()
                },
                if surface.cliff {
                    format!("{:.1} %", t.pct(t.in_cliff))
                } else {
                    "—".to_string()
                },
                t.candidates as f64 / t.runs.max(1) as f64,
                t.hours / t.runs.max(1) as f64,
            );
        }
    }
}
