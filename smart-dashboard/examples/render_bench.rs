//! How long rendering the dashboard takes, and how much memory it needs, as history grows, and
//! what retention (`[retention]` in smart.toml) does to both.
//!
//! Run: `cargo run --release -p smart-dashboard --example render_bench [-- [--pruned]
//! [--samples N] [--out DIR] [RUNS ...]]` (default: 100 runs, 2,000 samples per block).
//!
//! For each RUNS, writes that many finished runs (one every 6 hours, 2 variants, 16 blocks each,
//! N latency samples per block; one run in five keeps a variant) into a temp state dir, then
//! times, best and median of 5 (3 above 300 runs):
//! - reading the records alone (`list_runs` + `load_run` + `load_samples` of every run);
//! - the live render during a run (`LiveDashboard`: the index and one run page);
//! - a full render (`smart dashboard`: every run page, the index, status, assets).
//!
//! Each render's peak resident memory is the process's high-water mark (`VmHWM`), reset before
//! it through `/proc/self/clear_refs` (so give one RUNS per process to compare memory: the
//! allocator keeps what an earlier, larger render used). With --pruned, one retention pass with
//! the defaults (30 days, 100 runs; an hour after the newest run) prunes the history first and
//! the renders are measured on what is left: the history a server with retention has. With
//! --out, the last dashboard is left in DIR to look at.
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

#[path = "../tests/it/fixtures.rs"]
#[expect(dead_code, reason = "the benchmark uses part of the test fixtures")]
mod fixtures;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use smart_core::audit::AuditLog;
use smart_core::records::{self, Definitions, Retention};
use smart_dashboard::Dashboard;

/// Best and median time of `runs` calls of `f`, and the highest peak memory of one call.
fn measure(runs: usize, mut f: impl FnMut()) -> (Duration, Duration, Option<u64>) {
    let mut peak = None;
    let mut all: Vec<Duration> = (0..runs)
        .map(|_| {
            reset_peak();
            let start = Instant::now();
            f();
            let took = start.elapsed();
            peak = peak.max(peak_kb());
            took
        })
        .collect();
    all.sort();
    (all[0], all[all.len() / 2], peak)
}

/// Resets the process's resident-memory high-water mark to its current size (Linux).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The resident-memory high-water mark in KiB, where the kernel says it.
fn peak_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    })
}

fn row(what: &str, (best, median, peak): (Duration, Duration, Option<u64>)) {
    println!(
        "    {what:<28} best {:>8.1} ms   median {:>8.1} ms   peak RSS {}",
        ms(best),
        ms(median),
        peak.map_or("?".to_owned(), |kb| format!("{:.0} MB", kb as f64 / 1024.0))
    );
}

/// Measures the renders of the history in `state` and prints them.
fn bench(state: &Path, out: &Path, last: &str) {
    let dashboard = Dashboard::new(state, out);
    let now = SystemTime::now();
    let runs = records::list_runs(state).expect("runs").len();
    let repeat = if runs > 300 { 3 } else { 5 };
    println!(
        "  {runs} runs on disk, records {:.0} MB",
        dir_bytes(&state.join(records::RUNS_DIR)) as f64 / 1e6
    );
    row(
        "read the records only",
        measure(repeat, || {
            let mut samples = 0usize;
            for run in records::list_runs(state).expect("runs") {
                let id = &run.plan.run_id;
                samples += records::load_run(state, id).expect("run").blocks.len();
                for block in records::load_samples(state, id).expect("samples") {
                    samples += block.latencies_us.len();
                }
            }
            assert!(samples > 0);
        }),
    );
    // On a server every finished run already has its page; the live render only writes those
    // that are missing, so stand-ins make it measure what it does there.
    let pages = out.join(smart_dashboard::RUN_PAGES_DIR);
    std::fs::create_dir_all(&pages).expect("pages dir");
    for run in records::list_runs(state).expect("runs") {
        let page = pages.join(format!("{}.html", run.plan.run_id));
        if !page.is_file() {
            std::fs::write(page, "").expect("page");
        }
    }
    row(
        "live render (index + run)",
        measure(repeat, || {
            dashboard.render_run(last, now).expect("render");
        }),
    );
    let mut rendered = None;
    row(
        "full render (all pages)",
        measure(repeat, || {
            rendered = Some(dashboard.render(now).expect("render"));
        }),
    );
    let rendered = rendered.expect("rendered");
    println!(
        "    index.html {:.1} KB; a full render writes {} files, {:.1} MB",
        rendered.index_bytes as f64 / 1024.0,
        rendered.run_pages + 4,
        rendered.total_bytes as f64 / 1e6
    );
}

fn main() {
    let mut samples = 2000;
    let mut pruned = false;
    let mut keep = None;
    let mut counts = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--samples" => {
                samples = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--samples N")
            }
            "--out" => keep = args.next(),
            "--pruned" => pruned = true,
            n => counts.push(n.parse::<usize>().expect("RUNS is a number of runs")),
        }
    }
    if counts.is_empty() {
        counts.push(100);
    }
    let scratch = tempfile::tempdir().expect("temp dir");
    let out = keep
        .as_ref()
        .map_or(scratch.path().to_owned(), std::path::PathBuf::from);
    for n in counts {
        let state = tempfile::tempdir().expect("temp dir");
        let specs = fixtures::history(state.path(), n, samples);
        let newest = specs.last().expect("runs");
        let last = newest.id();
        println!(
            "dashboard render, {n} runs of history (2 variants × 16 blocks × {samples} samples each)"
        );
        if !pruned {
            println!("  without retention (what every render read before retention):");
            bench(state.path(), &out, &last);
            continue;
        }
        let after = fixtures::at(newest.start + 3600);
        let retention = Retention::default();
        let definitions = Definitions::Current(BTreeSet::new());
        let started = Instant::now();
        let plan =
            records::plan_prune(state.path(), &retention, &definitions, after).expect("plan");
        let planned = started.elapsed();
        let started = Instant::now();
        let audit = AuditLog::new(state.path());
        records::prune(state.path(), &retention, &definitions, after, &audit).expect("prune");
        println!(
            "  after one retention pass with the defaults (planned in {:.0} ms, pruned in {:.0} \
             ms): {} pruned, {} kept ({} of them beyond the limits but protected: kept \
             variants, latest decisions)",
            ms(planned),
            ms(started.elapsed()),
            plan.runs().len(),
            plan.kept,
            plan.protected.len()
        );
        bench(state.path(), &out, &last);
        // The full render is what removed the pruned runs' pages.
        let pages =
            std::fs::read_dir(out.join(smart_dashboard::RUN_PAGES_DIR)).map_or(0, Iterator::count);
        println!("    run pages in the dashboard: {pages}");
    }
    if let Some(dir) = keep {
        println!("the last dashboard is in {dir}");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
