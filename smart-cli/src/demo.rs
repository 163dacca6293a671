//! `smart demo`: starts the demo target (a really tunable HTTP service) in-process on a loopback
//! port and runs three experiments that know their answer through `smart run`'s wiring — a cache
//! that truly wins (keep), a gzip level that truly loses (revert) and a knob with no effect (not
//! kept) — then a search of the gzip level for clients behind a slow link, whose best level lies
//! inside the range (`demo/search.rs`), then prints a summary table and exits 3 when any decision
//! is not the expected one or the search ends outside the best region.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::Value;
use smart_apply::RunLock;
use smart_coach::MaybeCoach;
use smart_core::AgentConfig;
use smart_core::engine::{RunEnd, RunReport};
use smart_core::records::{DecisionKind, DecisionRecord};
use smart_core::runner;
use smart_core::validate::validate_file;
use smart_demo_target::{DemoTarget, SAMPLE_CONFIG};
use smart_probe::TokioClock;

use crate::Global;
use crate::error::CliError;
use crate::revert::apply_error;
use crate::run::{self, AfterRun, CliBench};

mod search;

/// The first line of the `smart.toml` the demo writes; a `--dir` whose `smart.toml` lacks it is
/// someone else's, and the demo refuses to write there.
const MARKER: &str = "# written by `smart demo`";

/// The demo experiments, in the order they run, with the decision each must reach. The cache
/// runs first: once kept, the page is cached, so the gzip level's CPU cost dominates the next test.
const EXPERIMENTS: [(&str, Expect); 3] = [
    (include_str!("demo/cache.json"), Expect::Keep),
    (include_str!("demo/compression.json"), Expect::Revert),
    (include_str!("demo/noop.json"), Expect::NotKept),
];

/// Run the demo: a real, tunable HTTP service on loopback, three experiments with known answers and
/// a search, in about two minutes
///
/// Starts the demo target (the same service as `cargo run -p smart-demo-target`) on a free
/// 127.0.0.1 port with its config file in the demo dir, then runs, with short schedules: turning
/// its page cache on (expected: keep), gzip level 9 for clients that accept gzip (expected:
/// revert) and a knob that changes nothing (expected: not kept). Then starts a second target whose
/// clients sit behind a 256 kbit/s link and lets smart search its gzip level from level 1
/// (expected: a level from 3 to 7; level 1 sends too many bytes, level 9 burns CPU). Reloads send
/// SIGHUP to this process. Prints progress to stderr and a summary table to stdout; writes the
/// run records and the dashboard into the demo dir. Exits 3 when any decision is not the expected
/// one or the search ends outside the best region.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// Keep the demo's config, records and dashboard in DIR [default: a temp dir, removed at exit]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The seed of the ABBA designs [default: a fresh one per run]; recorded with each run
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

/// The decision a demo experiment must reach.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Keep,
    Revert,
    /// Anything but a keep: an A/A test may end inconclusive, or reverted by chance.
    NotKept,
}

impl Expect {
    fn met_by(self, decision: DecisionKind) -> bool {
        match self {
            Expect::Keep => decision == DecisionKind::Keep,
            Expect::Revert => decision == DecisionKind::Revert,
            Expect::NotKept => {
                matches!(decision, DecisionKind::Revert | DecisionKind::Inconclusive)
            }
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Expect::Keep => "keep",
            Expect::Revert => "revert",
            Expect::NotKept => "not kept",
        }
    }
}

/// One finished demo experiment.
struct Outcome {
    expect: Expect,
    report: RunReport,
    took: Duration,
}

/// Runs the demo and prints its summary.
pub(crate) fn run(args: &Args, _global: &Global) -> Result<ExitCode, CliError> {
    let started = Instant::now();
    // The temp dir lives until the end of this function.
    let (_temp, dir) = match &args.dir {
        Some(dir) => (None, prepare_dir(dir)?),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("smart-demo-")
                .tempdir()
                .map_err(|e| CliError::runtime(format!("cannot create a temp dir: {e}")))?;
            let dir = temp.path().to_owned();
            (Some(temp), dir)
        }
    };
    let config_path = dir.join("smart.toml");
    write(
        &config_path,
        &format!(
            "{MARKER}: the agent config of the demo in this directory.\n\
             experiments_dir = \"experiments\"\nstate_dir = \"state\"\ndashboard_dir = \"dashboard\"\n"
        ),
    )?;
    let config = AgentConfig::load(&config_path)
        .map_err(|e| CliError::runtime(format!("the demo's own smart.toml is invalid: {e}")))?;
    let lock = RunLock::acquire(config.state_dir()).map_err(apply_error)?;
    let runtime = run::runtime()?;
    let cancel = run::cancel_on_signal(&runtime);
    run::recover(&runtime, &config, &lock)?;

    // The target runs on its own runtime, as a server would in its own process, so the probe's
    // workers and the target's do not wait on each other.
    let target_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("demo-target")
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the demo target's runtime: {e}")))?;
    let target_config = dir.join("demo.toml");
    write(&target_config, SAMPLE_CONFIG)?;
    let target = target_runtime.block_on(async {
        let target = DemoTarget::start(&target_config, ([127, 0, 0, 1], 0).into())
            .await
            .map_err(|e| CliError::runtime(format!("cannot start the demo target: {e}")))?;
        target.reload_on_sighup().map_err(|e| {
            CliError::runtime(format!(
                "cannot listen for SIGHUP to reload the demo target: {e}"
            ))
        })?;
        Ok::<_, CliError>(target)
    })?;
    let url = format!("http://{}/", target.addr());
    println!(
        "smart demo: the demo target serves {url} with its config in {}; reloads are `kill -HUP {}`",
        target_config.display(),
        std::process::id()
    );

    let experiments = write_experiments(&config, &url, &target_config)?;
    let mut bench = CliBench::new(&config, &lock, MaybeCoach::from(None), AfterRun::Nothing);
    let clock = TokioClock::new();
    let mut outcomes = Vec::new();
    let mut result = Ok(());
    for (experiment, expect) in experiments {
        if cancel.is_cancelled() {
            break;
        }
        println!(
            "smart demo: running {} (expected: {}): {}",
            experiment.name(),
            expect.as_str(),
            experiment.description()
        );
        let start = Instant::now();
        let run = runner::run_experiment(&experiment, args.seed, &cancel, &clock, &mut bench);
        match runtime.block_on(run).map_err(run::loop_error) {
            Ok(report) => outcomes.push(Outcome {
                expect,
                report,
                took: start.elapsed(),
            }),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    target_runtime.block_on(target.shutdown());
    // The search, on a target of its own whose clients sit behind a slow link.
    let mut searched = None;
    if result.is_ok() && !cancel.is_cancelled() {
        match search::run(
            &runtime,
            &target_runtime,
            &dir,
            &config,
            &cancel,
            &mut bench,
            args.seed,
        ) {
            Ok(s) => searched = Some(s),
            Err(e) => result = Err(e),
        }
    }
    drop(lock);

    let search_rows = searched.as_ref().map_or(&[][..], |s| &s.rows[..]);
    print!("\n{}", table(&outcomes, search_rows, cancel.is_cancelled()));
    println!(
        "smart demo: took {:.0} s; records in {}, dashboard {}{}",
        started.elapsed().as_secs_f64(),
        config.state_dir().display(),
        config.dashboard_dir().join("index.html").display(),
        if args.dir.is_some() {
            format!(" (see `smart --config {} history`)", config_path.display())
        } else {
            " (a temp dir, removed now; keep them with --dir DIR)".to_owned()
        }
    );
    result?;
    let mut wrong = unexpected(&outcomes);
    if cancel.is_cancelled() || outcomes.len() < EXPERIMENTS.len() || searched.is_none() {
        return Err(CliError::runtime(
            "the demo was interrupted before every experiment ran",
        ));
    }
    if let Some(s) = &searched {
        if let Some(level) = s.found {
            println!("smart demo: the search left gzip level {level} live on the slow link");
        }
        wrong.extend(s.wrong.clone());
    }
    if !wrong.is_empty() {
        return Err(CliError::runtime(format!(
            "the demo did not decide as expected: {}",
            wrong.join("; ")
        )));
    }
    println!("smart demo: every decision came out as expected");
    Ok(ExitCode::SUCCESS)
}

/// Creates `dir` if needed and checks that it is new, empty or an earlier demo's.
fn prepare_dir(dir: &Path) -> Result<PathBuf, CliError> {
    fs::create_dir_all(dir).map_err(|e| {
        CliError::bad_input(format!("cannot create the demo dir {}: {e}", dir.display()))
    })?;
    let dir = dir.canonicalize().map_err(|e| {
        CliError::bad_input(format!(
            "cannot resolve the demo dir {}: {e}",
            dir.display()
        ))
    })?;
    let smart_toml = dir.join("smart.toml");
    if smart_toml.exists() {
        let text = fs::read_to_string(&smart_toml).unwrap_or_default();
        if !text.starts_with(MARKER) {
            return Err(CliError::bad_input(format!(
                "{} was not written by `smart demo`; give --dir a new or empty directory",
                smart_toml.display()
            )));
        }
    }
    Ok(dir)
}

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    fs::write(path, text)
        .map_err(|e| CliError::runtime(format!("cannot write {}: {e}", path.display())))
}

/// Writes the demo experiments into the experiments dir, pointed at this target, config file
/// and process, and validates them as `smart run` would.
fn write_experiments(
    config: &AgentConfig,
    url: &str,
    target_config: &Path,
) -> Result<Vec<(smart_core::Experiment, Expect)>, CliError> {
    let dir = config.experiments_dir();
    fs::create_dir_all(dir)
        .map_err(|e| CliError::runtime(format!("cannot create {}: {e}", dir.display())))?;
    let mut experiments = Vec::new();
    for (text, expect) in EXPERIMENTS {
        let value = localize(text, url, target_config)?;
        let name = value["name"].as_str().unwrap_or("demo");
        let path = dir.join(format!("{name}.json"));
        let pretty = serde_json::to_string_pretty(&value)
            .map_err(|e| CliError::runtime(format!("cannot write {name}: {e}")))?;
        write(&path, &pretty)?;
        let experiment = validate_file(&path, config.defaults()).map_err(|invalid| {
            CliError::runtime(format!("a demo experiment is invalid (a bug): {invalid}"))
        })?;
        experiments.push((experiment, expect));
    }
    Ok(experiments)
}

/// Points an embedded experiment at the running target: its URLs, config file and reload.
fn localize(text: &str, url: &str, target_config: &Path) -> Result<Value, CliError> {
    let mut value: Value = serde_json::from_str(text)
        .map_err(|e| CliError::runtime(format!("an embedded demo experiment is not JSON: {e}")))?;
    let healthz = format!("{url}healthz");
    value["target"]["urls"] = Value::from(vec![url]);
    let apply = &mut value["apply"];
    apply["files"][0]["path"] = Value::from(target_config.to_string_lossy().as_ref());
    apply["reload"] = Value::from(vec![
        "kill".to_owned(),
        "-HUP".to_owned(),
        std::process::id().to_string(),
    ]);
    apply["health"]["url"] = Value::from(healthz.as_str());
    apply["live_check"]["url"] = Value::from(healthz.as_str());
    Ok(value)
}

/// What did not come out as expected, one phrase per experiment.
fn unexpected(outcomes: &[Outcome]) -> Vec<String> {
    let mut wrong = Vec::new();
    for o in outcomes {
        if o.report.end != RunEnd::Completed {
            wrong.push(format!(
                "{} ended early ({}): {}",
                o.report.experiment,
                o.report.end.as_str(),
                o.report.end_reason.as_deref().unwrap_or("")
            ));
        }
        for d in &o.report.decisions {
            if !o.expect.met_by(d.decision) {
                wrong.push(format!(
                    "{} {}: expected {}, got {} ({})",
                    o.report.experiment,
                    d.variant,
                    o.expect.as_str(),
                    d.decision.as_str(),
                    d.reasons.first().map_or("", String::as_str)
                ));
            }
        }
    }
    wrong
}

/// The summary table: one row per variant decision, then the search's rows (one per candidate
/// and its result); `interrupted` when the user stopped the demo.
fn table(outcomes: &[Outcome], search_rows: &[[String; 7]], interrupted: bool) -> String {
    let mut rows = vec![[
        "experiment".to_owned(),
        "variant".to_owned(),
        "expected".to_owned(),
        "decision".to_owned(),
        "p50 change [confidence bounds]".to_owned(),
        "errors".to_owned(),
        "duration".to_owned(),
    ]];
    for o in outcomes {
        for d in &o.report.decisions {
            rows.push(row(o, d, interrupted));
        }
    }
    rows.extend(search_rows.iter().cloned());
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

fn row(o: &Outcome, d: &DecisionRecord, interrupted: bool) -> [String; 7] {
    let p50 = match (
        d.estimates.p50_change_pct,
        d.estimates.p50_change_bounds_pct,
    ) {
        (Some(x), Some(b)) => format!("{x:+.1} % [{:+.1}, {:+.1}]", b.lower, b.upper),
        (Some(x), None) => format!("{x:+.1} %"),
        (None, _) => "-".to_owned(),
    };
    let errors = d
        .estimates
        .error_rate_change_pp
        .map_or_else(|| "-".to_owned(), |e| format!("{e:+.2} pp"));
    [
        o.report.experiment.clone(),
        d.variant.clone(),
        o.expect.as_str().to_owned(),
        decision_cell(o.expect, d.decision, interrupted),
        p50,
        errors,
        format!("{:.0} s", o.took.as_secs_f64()),
    ]
}

/// A decision as the table shows it: marked when it is not the expected one, unless the user's
/// interrupt is why the run was aborted.
fn decision_cell(expect: Expect, decision: DecisionKind, interrupted: bool) -> String {
    if expect.met_by(decision) {
        decision.as_str().to_owned()
    } else if interrupted && decision == DecisionKind::Aborted {
        format!("{} (interrupted)", decision.as_str())
    } else {
        format!("{} (UNEXPECTED)", decision.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_experiment_is_valid_once_localized() {
        let dir = tempfile::tempdir().unwrap();
        let target_config = dir.path().join("demo.toml");
        fs::write(&target_config, SAMPLE_CONFIG).unwrap();
        for (text, _) in EXPERIMENTS {
            let value = localize(text, "http://127.0.0.1:9/", &target_config).unwrap();
            let path = dir.path().join("e.json");
            fs::write(&path, value.to_string()).unwrap();
            let experiment = validate_file(&path, AgentConfig::default().defaults())
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(experiment.target().urls[0].as_str(), "http://127.0.0.1:9/");
            // Each edits its own line of the sample config, exactly one.
            let pattern = value["apply"]["files"][0]["edit"]["pattern"]
                .as_str()
                .unwrap()
                .trim_start_matches('^')
                .trim_end_matches("\\s*=");
            let lines = SAMPLE_CONFIG
                .lines()
                .filter(|l| l.starts_with(pattern))
                .count();
            assert_eq!(lines, 1, "{pattern}");
        }
    }

    #[test]
    fn an_interrupted_run_is_not_called_unexpected() {
        use DecisionKind::{Aborted, Keep, Revert};
        for (decision, interrupted, shown) in [
            (Keep, false, "keep"),
            (Revert, false, "revert (UNEXPECTED)"),
            (Aborted, false, "aborted (UNEXPECTED)"),
            (Aborted, true, "aborted (interrupted)"),
            (Revert, true, "revert (UNEXPECTED)"),
        ] {
            assert_eq!(decision_cell(Expect::Keep, decision, interrupted), shown);
        }
    }

    #[test]
    fn the_expectations_accept_only_their_decisions() {
        use DecisionKind::{Aborted, Inconclusive, Keep, KeptByCoach, Revert};
        for (expect, ok) in [
            (Expect::Keep, [true, false, false, false, false]),
            (Expect::Revert, [false, true, false, false, false]),
            (Expect::NotKept, [false, true, true, false, false]),
        ] {
            let got = [Keep, Revert, Inconclusive, Aborted, KeptByCoach].map(|d| expect.met_by(d));
            assert_eq!(got, ok, "{expect:?}");
        }
    }
}
