//! How long rendering the dashboard takes with 100 runs of history (the goal: under 1 s).
//!
//! Run: `cargo run --release -p smart-dashboard --example render_bench [-- OUT_DIR]`
//!
//! Writes 100 finished runs (2 variants, 16 blocks each, 2,000 latency samples per block: 3.2
//! million samples in all) into a temp state dir, then times, best and median of 5:
//! - a full render (`smart dashboard`: every run page, the index, status, assets);
//! - the live render during a run (`LiveDashboard`: the index and one run page);
//! - reading the records alone (`smart_core::records::list_runs` + `load_run` + `load_samples`),
//!   the peer every render pays for.
//!
//! With OUT_DIR, the rendered dashboard is left there to look at.
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

#[path = "../tests/it/fixtures.rs"]
#[expect(dead_code, reason = "the benchmark uses part of the test fixtures")]
mod fixtures;

use std::time::{Duration, Instant};

use smart_dashboard::Dashboard;

fn time(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut all: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    all.sort();
    (all[0], all[all.len() / 2])
}

fn main() {
    let state = tempfile::tempdir().expect("temp dir");
    let keep = std::env::args().nth(1);
    let scratch = tempfile::tempdir().expect("temp dir");
    let out = keep
        .as_ref()
        .map_or(scratch.path().to_owned(), std::path::PathBuf::from);
    let specs = fixtures::history(state.path(), 100, 2000);
    let last = specs.last().expect("runs").id();
    let dashboard = Dashboard::new(state.path(), &out);
    let now = std::time::SystemTime::now();

    let (read_best, read_median) = time(5, || {
        let mut samples = 0usize;
        for run in smart_core::records::list_runs(state.path()).expect("runs") {
            let id = &run.plan.run_id;
            let record = smart_core::records::load_run(state.path(), id).expect("run");
            samples += record.blocks.len();
            for block in smart_core::records::load_samples(state.path(), id).expect("samples") {
                samples += block.latencies_us.len();
            }
        }
        assert!(samples > 0);
    });
    let mut rendered = None;
    let (full_best, full_median) = time(5, || {
        rendered = Some(dashboard.render(now).expect("render"))
    });
    let (live_best, live_median) = time(5, || {
        dashboard.render_run(&last, now).expect("render");
    });
    let rendered = rendered.expect("rendered");
    println!(
        "dashboard render, {} runs, 2 variants × 16 blocks × 2,000 samples each",
        rendered.runs
    );
    println!(
        "  read the records only     best {:>7.1} ms   median {:>7.1} ms",
        ms(read_best),
        ms(read_median)
    );
    println!(
        "  full render (all pages)   best {:>7.1} ms   median {:>7.1} ms",
        ms(full_best),
        ms(full_median)
    );
    println!(
        "  live render (index + run) best {:>7.1} ms   median {:>7.1} ms",
        ms(live_best),
        ms(live_median)
    );
    println!(
        "  index.html {:.1} KB, {} files, {:.1} MB written per full render",
        rendered.index_bytes as f64 / 1024.0,
        rendered.run_pages + 4,
        rendered.total_bytes as f64 / 1e6
    );
    if let Some(dir) = keep {
        println!("  the dashboard is in {dir}");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
