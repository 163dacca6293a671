//! `smart validate`: checks experiment files and reports every problem at once; changes nothing.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use smart_core::schedule::Human;
use smart_core::validate::validate_paths;

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
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// Experiment files (`*.json`) or directories of them [default: the config's experiments_dir]
    #[arg(value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,
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
    let report = validate_paths(&paths, config.defaults());

    let mut out = std::io::stdout().lock();
    for experiment in &report.experiments {
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
        let measured = crate::calibrate::measured_pair_sd(config.state_dir(), experiment);
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
    let env = |name: &str| std::env::var(name).ok();
    let coach = smart_coach::CoachConfig::from_agent_config(&config, &env).err();
    if let Some(coach) = &coach {
        let _ = writeln!(err, "{coach}");
    }
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
    if let Some(coach) = &coach {
        problems += coach.problems().count();
        where_.push(format!("[coach] of {}", coach.file().display()));
    }
    Err(CliError::bad_input(format!(
        "{problems} problem{} in {}; nothing was changed",
        if problems == 1 { "" } else { "s" },
        where_.join(" and "),
    )))
}
