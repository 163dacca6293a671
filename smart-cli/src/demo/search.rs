//! The demo's search: a second demo target whose clients sit behind a 256 kbit/s link (its
//! `link_kbps` knob holds every page for as long as its bytes take over that link), and a search
//! of its gzip level from level 1 through smart's own search loop (`smart_search::PatternSearch`,
//! the same one `smart run` drives). Level 1 sends too many bytes and level 9 burns more CPU than
//! its few saved bytes are worth, so the best level is inside the range; the demo checks that the
//! search ends there.

use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Instant;

use smart_core::engine::CancelToken;
use smart_core::runner::{self, SearchConfig, SearchOutcome};
use smart_core::validate::{ApplyBy, validate_file};
use smart_core::{AgentConfig, Experiment};
use smart_demo_target::DemoTarget;
use smart_probe::TokioClock;
use smart_search::{Against, Next, PatternSearch, Search, Space};

use crate::error::CliError;
use crate::run::{CliBench, loop_error};

/// The search experiment, pointed at the search target by [`super::localize`].
const EXPERIMENT: &str = include_str!("search.json");

/// The search target's config: the page cached (only compression costs CPU), gzip level 1, and
/// clients behind a 256 kbit/s link.
const TARGET_CONFIG: &str = "\
# smart demo search target: clients behind a 256 kbit/s link; smart searches compression_level.
cache = true
compression_level = 1
link_kbps = 256
";

/// The levels whose latency is within about 2 % of the best for this page and link (in a release
/// build: level 1 sends 24.2 KB, levels 4 to 6 about 21.7 KB for 4-10 ms of CPU, level 9 21.3 KB
/// for about 30 ms; at 32 KB/s each KB is 31 ms); of the levels searched (1, 5, 9) only 5 lies in
/// it. The search's step margin (3 %) is more than level 9's few saved bytes can ever win.
pub(super) const BEST: RangeInclusive<i64> = 3..=7;

/// How the search went.
pub(super) struct Searched {
    /// The level live at the end, if the search ended.
    pub(super) found: Option<i64>,
    /// One table row per judged candidate and one for the result.
    pub(super) rows: Vec<[String; 7]>,
    /// What is wrong, if anything.
    pub(super) wrong: Option<String>,
}

/// Starts the search target, runs the search and says how it went. The target is shut down
/// before returning.
pub(super) fn run(
    runtime: &tokio::runtime::Runtime,
    target_runtime: &tokio::runtime::Runtime,
    dir: &Path,
    config: &AgentConfig,
    cancel: &CancelToken,
    bench: &mut CliBench<'_>,
    seed: Option<u64>,
) -> Result<Searched, CliError> {
    let target_config = dir.join("demo-search.toml");
    super::write(&target_config, TARGET_CONFIG)?;
    let target = target_runtime.block_on(async {
        let target = DemoTarget::start(&target_config, ([127, 0, 0, 1], 0).into())
            .await
            .map_err(|e| CliError::runtime(format!("cannot start the search target: {e}")))?;
        target.reload_on_sighup().map_err(|e| {
            CliError::runtime(format!(
                "cannot listen for SIGHUP to reload the search target: {e}"
            ))
        })?;
        Ok::<_, CliError>(target)
    })?;
    let url = format!("http://{}/", target.addr());
    let result = search(runtime, config, &url, &target_config, cancel, bench, seed);
    target_runtime.block_on(target.shutdown());
    result
}

fn search(
    runtime: &tokio::runtime::Runtime,
    config: &AgentConfig,
    url: &str,
    target_config: &Path,
    cancel: &CancelToken,
    bench: &mut CliBench<'_>,
    seed: Option<u64>,
) -> Result<Searched, CliError> {
    let value = super::localize(EXPERIMENT, url, target_config)?;
    let path = config.experiments_dir().join("demo-search.json");
    let pretty = serde_json::to_string_pretty(&value)
        .map_err(|e| CliError::runtime(format!("cannot write demo-search: {e}")))?;
    super::write(&path, &pretty)?;
    let experiment = validate_file(&path, config.defaults()).map_err(|invalid| {
        CliError::runtime(format!("the demo search is invalid (a bug): {invalid}"))
    })?;
    println!(
        "smart demo: searching {} (expected: a level from {} to {}): {}",
        experiment.name(),
        BEST.start(),
        BEST.end(),
        experiment.description()
    );
    let started = Instant::now();
    let search_config = SearchConfig {
        state_dir: config.state_dir(),
        apply_by: ApplyBy::Smart,
        seed,
    };
    let (outcome, _runs) = runtime
        .block_on(runner::run_search(
            &experiment,
            &PatternSearch,
            &search_config,
            cancel,
            &TokioClock::new(),
            bench,
        ))
        .map_err(loop_error)?;
    let took = started.elapsed().as_secs_f64();
    let state = stored_search(config.state_dir(), &experiment)?;
    Ok(summarize(&experiment, state, &outcome, took))
}

/// The search's state as the loop stored it.
fn stored_search(state_dir: &Path, experiment: &Experiment) -> Result<Search, CliError> {
    let path = runner::state_path(state_dir, experiment.name());
    let unreadable =
        |e: String| CliError::runtime(format!("the search state {}: {e}", path.display()));
    let bytes = std::fs::read(&path).map_err(|e| unreadable(e.to_string()))?;
    let mut value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
    serde_json::from_value(value["state"].take()).map_err(|e| unreadable(e.to_string()))
}

/// The table rows and the verdict on the result.
fn summarize(
    experiment: &Experiment,
    mut search: Search,
    outcome: &SearchOutcome,
    took: f64,
) -> Searched {
    let name = experiment.name().to_owned();
    let Some(spec) = experiment.definition().search.as_ref() else {
        return Searched {
            found: None,
            rows: Vec::new(),
            wrong: Some(format!("{name} is not a search")),
        };
    };
    let Ok(space) = Space::new(spec) else {
        return Searched {
            found: None,
            rows: Vec::new(),
            wrong: Some(format!("{name}: its space is invalid")),
        };
    };
    let original = experiment
        .baseline()
        .and_then(|b| space.point_of(b))
        .map_or_else(|| "as found".to_owned(), |p| space.label(&p));
    let mut rows = Vec::new();
    for trial in search.trials() {
        let against = match &trial.candidate.against {
            Against::Original => original.clone(),
            Against::Incumbent(p) => space.label(p),
        };
        let change = trial.judged.change_pct.map_or_else(
            || "-".to_owned(),
            |c| format!("{:+.1} % [{:+.1}, {:+.1}]", c.estimate, c.lower, c.upper),
        );
        rows.push([
            name.clone(),
            format!(
                "#{} {} vs {against}",
                trial.candidate.id,
                space.label(&trial.candidate.point)
            ),
            "-".to_owned(),
            trial.judged.verdict.as_str().to_owned(),
            change,
            "-".to_owned(),
            format!("{:.0} s", trial.judged.seconds),
        ]);
    }
    let found = match search.next(&space) {
        Next::Done(finish) => Some(
            finish
                .kept
                .as_ref()
                .or(experiment
                    .baseline()
                    .and_then(|b| space.point_of(b))
                    .as_ref())
                .map(|p| space.params(p))
                .and_then(|params| params.get("level").map(ToString::to_string))
                .and_then(|level| level.parse::<i64>().ok())
                .unwrap_or(0),
        ),
        Next::Test(_) => None,
    };
    let wrong = match (found, outcome) {
        (Some(level), _) if BEST.contains(&level) => None,
        (Some(level), _) => Some(format!(
            "{name} found level {level}, outside the best region (levels {} to {})",
            BEST.start(),
            BEST.end()
        )),
        (None, SearchOutcome::Failed(why)) => Some(format!("{name} did not finish: {why}")),
        (None, _) => Some(format!("{name} did not finish")),
    };
    let expected = format!("level {}-{}", BEST.start(), BEST.end());
    rows.push([
        name,
        found.map_or_else(|| "-".to_owned(), |l| format!("found level={l}")),
        expected,
        match (&wrong, found) {
            (None, _) => "in the best region".to_owned(),
            (Some(_), Some(_)) => "outside (UNEXPECTED)".to_owned(),
            (Some(_), None) => "unfinished (UNEXPECTED)".to_owned(),
        },
        "-".to_owned(),
        "-".to_owned(),
        format!("{took:.0} s"),
    ]);
    Searched { found, rows, wrong }
}
