//! The judge's A/A false keeps and power on the data each metric source gives it: raw latencies
//! (probe, command), millisecond-resolution log latencies, thin traffic (small blocks), thin
//! traffic topped up by the access log's fill-in, and block quantiles interpolated from
//! Prometheus histogram buckets. Prints one table row per shape with
//! a 95 % (Wilson) interval for each rate.
//!
//! ```text
//! nice cargo run --release -p smart-source --example source_shapes
//! nice cargo run --release -p smart-source --example source_shapes -- --runs 4000 --seed 7
//! nice cargo run --release -p smart-source --example source_shapes -- --shape fill-in
//! ```
//!
//! Every run draws a server (log-normal latencies, σ 0.6 within a block, a ±5 % log-normal
//! factor per block, 0.5 % errors), measures it on the default schedule in ABBA/BAAB cycles drawn
//! per cycle, and feeds the judge exactly what the source would report, until it stops.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use smart_core::experiment::{Decision, Guardrails, Schedule};
use smart_decide::{Arm, BlockQuantiles, BlockSample, Judge, Step};

/// Prometheus client libraries' default buckets, in seconds.
const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Finer buckets around tens of milliseconds (the demo target's).
const FINE_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// What a source reports per block.
#[derive(Debug, Clone, Copy)]
enum Report {
    /// Every answered request's latency in microseconds.
    Raw,
    /// `$request_time`: whole milliseconds, reported as the middle of the millisecond.
    Millis,
    /// Quantiles interpolated from these histogram buckets, the mean exact (`_sum / _count`).
    Histogram(&'static [f64]),
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    name: &'static str,
    report: Report,
    median_ms: f64,
    per_block: usize,
    /// The access log's fill-in, logged beside the visitors' requests.
    fill: Option<Fill>,
}

/// smart's fill-in requests in each block: another URL, with its own median.
#[derive(Debug, Clone, Copy)]
struct Fill {
    per_block: usize,
    median_ms: f64,
    /// Whether the change moves the fill URL's latency as it moves the visitors'.
    affected: bool,
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "probe / command: raw, 500 a block",
        report: Report::Raw,
        median_ms: 20.0,
        per_block: 500,
        fill: None,
    },
    Shape {
        name: "access_log: ms resolution, 2 ms median, 300 a block",
        report: Report::Millis,
        median_ms: 2.0,
        per_block: 300,
        fill: None,
    },
    Shape {
        name: "access_log: thin traffic, 40 a block",
        report: Report::Millis,
        median_ms: 20.0,
        per_block: 40,
        fill: None,
    },
    Shape {
        name: "access_log: thin traffic, 100 a block",
        report: Report::Millis,
        median_ms: 20.0,
        per_block: 100,
        fill: None,
    },
    Shape {
        name: "prometheus: default buckets, 500 a block",
        report: Report::Histogram(&DEFAULT_BUCKETS),
        median_ms: 20.0,
        per_block: 500,
        fill: None,
    },
    Shape {
        name: "prometheus: fine buckets, 500 a block",
        report: Report::Histogram(&FINE_BUCKETS),
        median_ms: 20.0,
        per_block: 500,
        fill: None,
    },
    Shape {
        name: "prometheus: default buckets, thin, 60 a block",
        report: Report::Histogram(&DEFAULT_BUCKETS),
        median_ms: 20.0,
        per_block: 60,
        fill: None,
    },
    Shape {
        name: "access_log: 10 visitors + 90 fill-in a block (a 5 ms URL)",
        report: Report::Millis,
        median_ms: 20.0,
        per_block: 10,
        fill: Some(Fill {
            per_block: 90,
            median_ms: 5.0,
            affected: true,
        }),
    },
    Shape {
        name: "access_log: 10 visitors + 90 fill-in a block, the change misses the fill URL",
        report: Report::Millis,
        median_ms: 20.0,
        per_block: 10,
        fill: Some(Fill {
            per_block: 90,
            median_ms: 5.0,
            affected: false,
        }),
    },
];

/// Prometheus's `histogram_quantile`: linear interpolation inside the bucket holding the rank;
/// the highest finite bound when the rank falls in `+Inf`.
fn histogram_quantile(q: f64, bounds: &[f64], cumulative: &[u64], count: u64) -> f64 {
    let rank = q * count as f64;
    let mut lower = 0.0;
    let mut below = 0.0;
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
    *bounds.last().expect("buckets")
}

fn block(
    rng: &mut Xoshiro256PlusPlus,
    shape: Shape,
    arm: Arm,
    cycle: u32,
    position: u32,
    factor: f64,
) -> BlockSample {
    let block_factor = (0.05 * rng.sample::<f64, _>(StandardNormal)).exp();
    let median_us = shape.median_ms * 1000.0 * factor * block_factor;
    let mut latencies = Vec::with_capacity(shape.per_block);
    let mut errors = 0;
    let fill = shape.fill.map_or((0, 0.0), |f| {
        let moved = if f.affected { factor } else { 1.0 };
        (f.per_block, f.median_ms * 1000.0 * moved * block_factor)
    });
    // The visitors' requests, then the fill-in's: the log mixes them, and so does the block.
    let medians =
        std::iter::repeat_n(median_us, shape.per_block).chain(std::iter::repeat_n(fill.1, fill.0));
    for median in medians {
        if rng.random_bool(0.005) {
            errors += 1;
            continue;
        }
        let z: f64 = StandardNormal.sample(rng);
        latencies.push(median * (0.6 * z).exp());
    }
    let requests = (shape.per_block + fill.0) as u64;
    let mut sample = BlockSample {
        arm,
        cycle,
        position,
        latencies_us: Vec::new(),
        requests,
        errors,
        cut_short: false,
        quantiles: None,
        host: None,
    };
    match shape.report {
        Report::Raw => sample.latencies_us = latencies.iter().map(|&l| l.round() as u64).collect(),
        Report::Millis => {
            sample.latencies_us = latencies
                .iter()
                .map(|&l| (l / 1000.0).round() as u64 * 1000 + 500)
                .collect();
        }
        Report::Histogram(bounds) => {
            let cumulative: Vec<u64> = bounds
                .iter()
                .map(|&b| latencies.iter().filter(|&&l| l / 1e6 <= b).count() as u64)
                .collect();
            let count = latencies.len() as u64;
            let q = |p| histogram_quantile(p, bounds, &cumulative, count) * 1e6;
            sample.quantiles = Some(BlockQuantiles {
                answered: count,
                p50_us: q(0.5),
                p90_us: q(0.9),
                p99_us: q(0.99),
                mean_us: latencies.iter().sum::<f64>() / count as f64,
            });
        }
    }
    sample
}

/// One experiment; whether the variant was kept.
fn kept(shape: Shape, factor: f64, seed: u64) -> bool {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let schedule = Schedule::default();
    let mut judge = Judge::new(
        &Decision::default(),
        &Guardrails::default(),
        &schedule,
        &["v".to_owned()],
    )
    .expect("default settings are valid");
    for cycle in 0..schedule.max_cycles {
        let order = if rng.random_bool(0.5) {
            [Arm::Baseline, Arm::Variant, Arm::Variant, Arm::Baseline]
        } else {
            [Arm::Variant, Arm::Baseline, Arm::Baseline, Arm::Variant]
        };
        let blocks: Vec<BlockSample> = order
            .iter()
            .enumerate()
            .map(|(i, &arm)| {
                let f = if arm == Arm::Variant { factor } else { 1.0 };
                block(&mut rng, shape, arm, cycle, i as u32, f)
            })
            .collect();
        if let Step::Stop(_) = judge.record_cycle(0, &blocks).expect("cycles in order") {
            break;
        }
    }
    judge.conclude().kept.is_some()
}

/// The share `k` in `n` and its Wilson 95 % interval, in percent (the judge's own
/// [`smart_decide::wilson`]).
fn wilson(k: usize, n: usize) -> (f64, f64, f64) {
    let (p, lo, hi) = smart_decide::wilson(k as u64, n as u64, 1.959_964);
    (100.0 * p, 100.0 * lo, 100.0 * hi)
}

/// Runs `runs` experiments on all cores; how many kept.
fn count_kept(shape: Shape, factor: f64, runs: usize, seed: u64) -> usize {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..runs)
                        .step_by(threads)
                        .filter(|&r| {
                            kept(
                                shape,
                                factor,
                                seed ^ (r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                            )
                        })
                        .count()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a worker"))
            .sum()
    })
}

#[expect(clippy::print_stdout, reason = "the table is the output")]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let runs = flag("--runs", 2000) as usize;
    // Only the shapes whose name holds this (their seeds stay those of the full table).
    let only = args
        .iter()
        .position(|a| a == "--shape")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default();
    let seed = flag("--seed", 19);
    println!(
        "default schedule and decision (12 cycles, 10 % minimum win, 95 %); {runs} runs a cell, seed {seed}"
    );
    println!("| source shape | A/A false keeps | 20 % win kept | 30 % win kept |");
    println!("|---|---|---|---|");
    for (i, &shape) in SHAPES
        .iter()
        .enumerate()
        .filter(|(_, s)| s.name.contains(only.as_str()))
    {
        let cell = |factor: f64, salt: u64| {
            let k = count_kept(shape, factor, runs, seed ^ (i as u64) << 32 ^ salt << 48);
            let (p, lo, hi) = wilson(k, runs);
            format!("{p:.2} % [{lo:.2}, {hi:.2}]")
        };
        println!(
            "| {} | {} | {} | {} |",
            shape.name,
            cell(1.0, 1),
            cell(0.8, 2),
            cell(0.7, 3)
        );
    }
}
