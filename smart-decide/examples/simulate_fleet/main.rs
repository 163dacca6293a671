//! Simulates fleet experiments — the crossover of two host groups that swap the variant every
//! period — for fleets of 4, 20 and 200 hosts, against the single-host ABBA design for the same
//! wall time, all through the real judge. Prints A/A false keeps (with a 95 % Wilson interval),
//! the keep rate of a 10 % and a 20 % win, and the median time to a decision.
//!
//! Run it with:
//!
//! ```text
//! nice cargo run --release -p smart-decide --example simulate_fleet
//! nice cargo run --release -p smart-decide --example simulate_fleet -- --runs 4000 --seed 20261203
//! nice cargo run --release -p smart-decide --example simulate_fleet -- --design fleet-4 --runs 200
//! ```
//!
//! `--runs N` is the number of A/A runs per design (each win row runs a quarter as many);
//! `--design` picks one row: `fleet-4`, `fleet-20`, `fleet-200`, `fleet-200-short`, `single`,
//! `single-noisy`;
//! `--min-improvement` sets the decision's `min_improvement_pct` (5 unless given); `--world quiet`
//! takes away every noise but the requests' own (identical hosts, no drift, no noisy neighbour).
//! The world is described in `model.rs` and docs/fleet.md. Results are reproducible: each run's generator is
//! seeded from the seed, the row and the run number, whatever the thread count.

mod model;

use std::time::Instant;

use model::{Design, Params, RunResult, run};
use smart_decide::Verdict;

/// A row of the table: a design and its name on the command line.
struct Row {
    flag: &'static str,
    label: &'static str,
    design: Design,
    /// A fleet period other than the world's, in seconds.
    period_s: Option<f64>,
}

const ROWS: [Row; 6] = [
    Row {
        flag: "fleet-4",
        label: "fleet crossover, 4 hosts",
        design: Design::Fleet { hosts: 4 },
        period_s: None,
    },
    Row {
        flag: "fleet-20",
        label: "fleet crossover, 20 hosts",
        design: Design::Fleet { hosts: 20 },
        period_s: None,
    },
    Row {
        flag: "fleet-200",
        label: "fleet crossover, 200 hosts",
        design: Design::Fleet { hosts: 200 },
        period_s: None,
    },
    Row {
        flag: "fleet-200-short",
        label: "fleet crossover, 200 hosts, 30 s periods",
        design: Design::Fleet { hosts: 200 },
        period_s: Some(30.0),
    },
    Row {
        flag: "single",
        label: "one host, ABBA (quiet host)",
        design: Design::SingleHost { noisy: false },
        period_s: None,
    },
    Row {
        flag: "single-noisy",
        label: "one host, ABBA (noisy neighbour)",
        design: Design::SingleHost { noisy: true },
        period_s: None,
    },
];

/// The scenarios of each row: the variant's latency factor.
const SCENARIOS: [f64; 3] = [1.0, 0.9, 0.8];

/// What the runs of one (design, scenario) ended with.
#[derive(Debug, Default)]
struct Tally {
    runs: usize,
    keeps: usize,
    reverts: usize,
    minutes: Vec<f64>,
}

impl Tally {
    fn add(&mut self, r: RunResult) {
        self.runs += 1;
        self.keeps += usize::from(r.kept);
        self.reverts += usize::from(!r.kept && r.verdict == Verdict::Revert);
        self.minutes.push(r.seconds / 60.0);
    }

    fn merge(&mut self, other: Tally) {
        self.runs += other.runs;
        self.keeps += other.keeps;
        self.reverts += other.reverts;
        self.minutes.extend(other.minutes);
    }

    fn pct(&self, n: usize) -> f64 {
        100.0 * n as f64 / self.runs.max(1) as f64
    }

    fn median_minutes(&mut self) -> f64 {
        self.minutes.sort_by(f64::total_cmp);
        match self.minutes.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => self.minutes[n / 2],
            n => (self.minutes[n / 2 - 1] + self.minutes[n / 2]) / 2.0,
        }
    }
}

/// The command line.
struct Args {
    runs: usize,
    seed: u64,
    design: Option<String>,
    min_improvement_pct: f64,
    quiet: bool,
    threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        runs: 400,
        seed: 20_261_203,
        design: None,
        min_improvement_pct: 5.0,
        quiet: false,
        threads: std::thread::available_parallelism().map_or(2, |n| n.get().min(2)),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--runs" => args.runs = value.parse().map_err(|e| bad(&e))?,
            "--seed" => args.seed = value.parse().map_err(|e| bad(&e))?,
            "--threads" => args.threads = value.parse().map_err(|e| bad(&e))?,
            "--min-improvement" => {
                args.min_improvement_pct = value.parse().map_err(|e| bad(&e))?;
            }
            "--world" if value == "realistic" || value == "quiet" => args.quiet = value == "quiet",
            "--design" if ROWS.iter().any(|r| r.flag == value) => args.design = Some(value),
            _ => return Err(format!("unknown option or value: {flag} {value}")),
        }
    }
    if args.runs == 0 || args.threads == 0 {
        return Err("--runs and --threads must be at least 1".to_string());
    }
    Ok(args)
}

/// Runs `runs` experiments of one (design, scenario) on `threads` threads.
fn run_row(
    design: Design,
    params: &Params,
    factor: f64,
    seed: u64,
    index: u64,
    runs: usize,
    threads: usize,
) -> Tally {
    let mut total = Tally::default();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut tally = Tally::default();
                    for r in (t..runs).step_by(threads) {
                        let run_seed = splitmix(seed ^ splitmix(index << 32 | r as u64));
                        tally.add(run(design, params, factor, run_seed));
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

fn splitmix(x: u64) -> u64 {
    smart_core::engine::splitmix64(x)
}

/// Wilson's 95 % interval of `k` in `n`, in percent (the judge's own [`smart_decide::wilson`]).
fn wilson95(k: usize, n: usize) -> (f64, f64) {
    let (_, lo, hi) = smart_decide::wilson(k as u64, n as u64, 1.959_964);
    (100.0 * lo, 100.0 * hi)
}

#[expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example program prints its table"
)]
fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("simulate_fleet: {e}");
            eprintln!(
                "usage: simulate_fleet [--runs N] [--seed S] [--design fleet-4|fleet-20|fleet-200|fleet-200-short|single|single-noisy] [--min-improvement PCT] [--world realistic|quiet] [--threads T]"
            );
            std::process::exit(2);
        }
    };
    let world = if args.quiet {
        Params::quiet()
    } else {
        Params::realistic()
    };
    let params = Params {
        min_improvement_pct: args.min_improvement_pct,
        ..world
    };
    let started = Instant::now();
    let win_runs = (args.runs / 4).max(20);
    println!(
        "command: cargo run --release -p smart-decide --example simulate_fleet -- --runs {} --seed {} --min-improvement {}{}{}",
        args.runs,
        args.seed,
        args.min_improvement_pct,
        if args.quiet { " --world quiet" } else { "" },
        args.design
            .as_deref()
            .map_or(String::new(), |d| format!(" --design {d}"))
    );
    println!(
        "seed {}; {} A/A runs and {win_runs} runs per win per design; {} threads; decision: p50, \
         min_improvement_pct {}, confidence 0.95, max {} cycles; settle {} s, fleet period {} s \
         (unless the row says otherwise), single-host block {} s; world: {}",
        args.seed,
        args.runs,
        args.threads,
        params.min_improvement_pct,
        params.max_cycles,
        params.settle_s,
        params.period_s,
        params.block_s,
        if args.quiet { "quiet" } else { "realistic" },
    );
    println!();
    println!(
        "| design | A/A runs | A/A false keeps % (95 % CI) | A/A reverts % | keeps % 10 % win | keeps % 20 % win | median minutes to decision: A/A, 10 %, 20 % |"
    );
    println!("|---|---:|---|---:|---:|---:|---|");
    let mut worst: Option<(&str, usize, usize, f64)> = None;
    for (d, row) in ROWS.iter().enumerate() {
        if args.design.as_deref().is_some_and(|f| f != row.flag) {
            continue;
        }
        let params = Params {
            period_s: row.period_s.unwrap_or(params.period_s),
            ..params.clone()
        };
        let mut tallies: Vec<Tally> = SCENARIOS
            .iter()
            .enumerate()
            .map(|(s, &factor)| {
                let runs = if factor == 1.0 { args.runs } else { win_runs };
                let index = (d * SCENARIOS.len() + s) as u64;
                run_row(
                    row.design,
                    &params,
                    factor,
                    args.seed,
                    index,
                    runs,
                    args.threads,
                )
            })
            .collect();
        let aa = &tallies[0];
        let (lo, hi) = wilson95(aa.keeps, aa.runs);
        if matches!(row.design, Design::Fleet { .. }) && worst.is_none_or(|w| hi > w.3) {
            worst = Some((row.label, aa.keeps, aa.runs, hi));
        }
        let (aa_pct, aa_reverts, win10, win20) = (
            aa.pct(aa.keeps),
            aa.pct(aa.reverts),
            tallies[1].pct(tallies[1].keeps),
            tallies[2].pct(tallies[2].keeps),
        );
        let medians: Vec<String> = tallies
            .iter_mut()
            .map(|t| format!("{:.1}", t.median_minutes()))
            .collect();
        println!(
            "| {} | {} | {aa_pct:.2} ({lo:.2}–{hi:.2}) | {aa_reverts:.1} | {win10:.1} | {win20:.1} | {} |",
            row.label,
            tallies[0].runs,
            medians.join(", ")
        );
    }
    println!();
    if let Some((label, keeps, runs, hi)) = worst {
        let pct = 100.0 * keeps as f64 / runs as f64;
        println!(
            "worst fleet A/A row: {label}, {keeps} false keeps in {runs} runs ({pct:.2} %, 95 % CI up to {hi:.2} %); target <= 1 %: {}",
            if pct <= 1.0 { "met" } else { "NOT met" }
        );
    }
    println!("wall time {:.0} s", started.elapsed().as_secs_f64());
}
