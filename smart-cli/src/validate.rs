//! `smart validate`: checks experiment files and reports every problem at once; changes nothing.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use smart_core::schedule::Human;
use smart_core::validate::{Report, validate_paths};

use crate::Global;
use crate::error::CliError;

/// Check experiment files and report every problem at once
///
/// Nothing is changed on disk. Every problem of every file is reported on its own line (stderr)
/// as `FILE: field: what is wrong; what would be right`; each valid file gets one line (stdout)
/// with its variants and its worst-case and expected duration, followed by what its schedule can
/// decide (the smallest win it can detect, or a warning when it can never keep a variant). Directories are searched for
/// `*.json` files (not recursively). With no FILE|DIR, the config's `experiments_dir` is checked.
/// The config file (see --config) is checked too, and its `[defaults]` apply to every file; its
/// `[coach]` is checked as `smart run` checks it, in this shell's environment (for `token_env`).
/// `--json` prints one object with every valid file and every problem instead (schema:
/// docs/validate.schema.json); the exit code is the same.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// Experiment files (`*.json`) or directories of them [default: the config's experiments_dir]
    #[arg(value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,
    /// Print the valid files and the problems as one JSON object
    #[arg(long)]
    json: bool,
}

/// Validates every file named and prints one line per valid file and per problem.
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    let config = global.agent_config()?;
    let paths = if args.paths.is_empty() {
        if config.file().is_none() {
            return Err(CliError::bad_input(
                "no FILE|DIR given and no config file found (looked for ./smart.toml and \
                 /etc/smart/smart.toml); name the experiment files or directories to check, \
                 or pass --config PATH",
            ));
        }
        vec![config.experiments_dir().to_owned()]
    } else {
        args.paths.clone()
    };
    // Fleet experiment files named on the command line are checked as such (smart-fleet).
    let (fleet, paths) = crate::fleet::split_fleet_files(paths);
    crate::fleet::validate_files(&fleet, args.json)?;
    if paths.is_empty() && !fleet.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let report = validate_paths(&paths, config.defaults());
    let env = |name: &str| std::env::var(name).ok();
    let coach = smart_coach::CoachConfig::from_agent_config(&config, &env).err();
    if args.json {
        print_json(&report, coach.as_ref(), config.state_dir())?;
        return summary(&report, coach.as_ref());
    }

    let mut out = std::io::stdout().lock();
    let quiet = crate::logs::quiet();
    for experiment in report.experiments.iter().filter(|_| !quiet) {
        let durations = experiment.durations();
        let variants = experiment.variants().len();
        let _ = writeln!(
            out,
            "{}: ok: \"{}\", {variants} variant{}; worst case {} ({} s, max_duration_s {}), \
             expected {} ({} s)",
            experiment.source().display(),
            experiment.name(),
            if variants == 1 { "" } else { "s" },
            Human(durations.worst_case_s),
            durations.worst_case_s.ceil(),
            experiment.schedule().max_duration_s,
            Human(durations.expected_s),
            durations.expected_s.ceil(),
        );
        // What the schedule can decide at all (smart-decide's estimate, from the noise `smart
        // calibrate` measured on this server when there is one).
        let measured = crate::calibrate::measured_noise(config.state_dir(), experiment);
        for note in crate::calibrate::feasibility_notes(experiment, measured) {
            let _ = writeln!(out, "  {note}");
        }
        for note in crate::run::source::notes(experiment) {
            let _ = writeln!(out, "  {note}");
        }
    }
    let _ = out.flush();
    let mut err = std::io::stderr().lock();
    for invalid in &report.invalid {
        let _ = writeln!(err, "{invalid}");
    }
    if let Some(coach) = &coach {
        let _ = writeln!(err, "{coach}");
    }
    if quiet && report.invalid.is_empty() && coach.is_none() {
        let n = report.experiments.len();
        println!("{n} experiment file{} valid", if n == 1 { "" } else { "s" });
    }
    summary(&report, coach.as_ref())
}

/// Exit 0 when every file and `[coach]` are valid; else the count of problems and where (exit 2).
fn summary(report: &Report, coach: Option<&smart_coach::CoachError>) -> Result<ExitCode, CliError> {
    if report.invalid.is_empty() && coach.is_none() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut problems: usize = report.invalid.iter().map(|i| i.problems().len()).sum();
    let mut where_ = Vec::new();
    if !report.invalid.is_empty() {
        let files = report.invalid.len() + report.experiments.len();
        where_.push(format!(
            "{} of {files} file{}",
            report.invalid.len(),
            if files == 1 { "" } else { "s" }
        ));
    }
    if let Some(coach) = coach {
        problems += coach.problems().count();
        where_.push(format!("[coach] of {}", coach.file().display()));
    }
    Err(CliError::bad_input(format!(
        "{problems} problem{} in {}; nothing was changed",
        if problems == 1 { "" } else { "s" },
        where_.join(" and "),
    )))
}

/// The `--json` object: each valid file with its durations and what its schedule can decide,
/// each invalid file with its problems, and the problems of `[coach]`.
fn print_json(
    report: &Report,
    coach: Option<&smart_coach::CoachError>,
    state_dir: &std::path::Path,
) -> Result<(), CliError> {
    let valid: Vec<serde_json::Value> = report
        .experiments
        .iter()
        .map(|experiment| {
            let durations = experiment.durations();
            let measured = crate::calibrate::measured_noise(state_dir, experiment);
            json!({
                "file": experiment.source(),
                "name": experiment.name(),
                "variants": experiment.variants().iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
                "worst_case_s": durations.worst_case_s.ceil(),
                "expected_s": durations.expected_s.ceil(),
                "max_duration_s": experiment.schedule().max_duration_s,
                "notes": crate::calibrate::feasibility_notes(experiment, measured),
            })
        })
        .collect();
    let invalid: Vec<serde_json::Value> = report
        .invalid
        .iter()
        .map(|invalid| {
            json!({
                "file": invalid.file(),
                "problems": invalid.problems().iter().map(|p| json!({
                    "field": p.field(),
                    "message": p.message(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let coach = coach.map(|coach| {
        json!({
            "file": coach.file(),
            "problems": coach.problems().map(|(field, message)| json!({
                "field": field,
                "message": message,
            })).collect::<Vec<_>>(),
        })
    });
    crate::print_json(&json!({"valid": valid, "invalid": invalid, "coach": coach}))
}
