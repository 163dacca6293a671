//! `smart calibrate EXPERIMENT`: measures this server's own block-to-block noise with A/A blocks
//! (nothing is changed: every block measures the configuration that is live) and stores it in the
//! state dir, so `smart validate` can say what the schedule can detect on this server. What the
//! schedule can detect is stored beside it (NAME.feasibility.json, by `smart calibrate` and by
//! `smart run` before each run) for the dashboard, which shows it without simulating anything.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use smart_core::Experiment;
use smart_core::engine::{BlockRequest, ProbePort};
use smart_core::validate::validate_file;

use crate::Global;
use crate::error::CliError;

/// Where calibrations live, under the state dir: one JSON file per experiment name.
const CALIBRATION_DIR: &str = "calibration";
/// The suffix of the file beside a calibration that holds what the schedule can detect (read by
/// smart-dashboard's `view/feasibility.rs`).
const FEASIBILITY_SUFFIX: &str = ".feasibility.json";

/// Measure this server's block-to-block noise for an experiment, without changing anything
///
/// Runs A/A blocks on the live configuration, measured as a run measures them (the experiment's
/// probe target and rate, or its `measure` source), with its block length and cool-down (pairs
/// of neighbouring blocks, as a run compares them), computes the standard deviation of the log
/// ratio of neighbouring blocks' medians, and the share of cycles a neighbour's bursts would leave
/// out of the keep test (host pressure), and stores them in
/// STATE_DIR/calibration/NAME.json. `smart validate` then quotes the smallest detectable win from
/// this measured noise instead of a typical figure. Run it when the server is as busy as it will
/// be during experiments.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// The experiment file (`*.json`) whose target and schedule to calibrate
    experiment: PathBuf,
    /// Pairs of blocks to measure (more pairs, a better figure; at least 4)
    #[arg(long, default_value_t = 8, value_name = "N")]
    pairs: u32,
    /// Print the stored calibration and what the schedule can decide with it as one JSON object
    /// (schema: docs/calibrate.schema.json)
    #[arg(long)]
    json: bool,
}

/// Measures, stores and prints the calibration.
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    let config = global.agent_config()?;
    let experiment = validate_file(&args.experiment, config.defaults())
        .map_err(|e| CliError::bad_input(e.to_string()))?;
    if args.pairs < 4 {
        return Err(CliError::bad_input(format!(
            "--pairs {} is too few to estimate noise; use at least 4 (8 is the default)",
            args.pairs
        )));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the async runtime: {e}")))?;
    // The same source a run measures with (the probe's client needs the runtime's context).
    let mut source = {
        let _context = runtime.enter();
        crate::run::source::Source::new(&experiment)
            .map_err(|e| CliError::bad_input(format!("{}: {e}", experiment.name())))?
    };
    let schedule = experiment.schedule();
    let request = BlockRequest {
        arm: "baseline",
        warmup: Duration::from_secs_f64(schedule.cooldown_s),
        duration: Duration::from_secs_f64(schedule.block_s),
        guardrails: experiment.guardrails(),
    };
    let mut locations = Vec::new();
    let mut hosts = Vec::new();
    let (mut requests, mut errors) = (0u64, 0u64);
    for block in 0..2 * args.pairs {
        eprintln!(
            "smart calibrate: block {}/{} ({:.0} s)",
            block + 1,
            2 * args.pairs,
            schedule.cooldown_s + schedule.block_s
        );
        let m = runtime
            .block_on(source.measure(&request, &mut |_| {}))
            .map_err(|e| CliError::runtime(format!("block {}: {e}", block + 1)))?;
        if let Some(why) = &m.aborted {
            return Err(CliError::runtime(format!(
                "block {} stopped early: {why}; calibrate when the server is healthy",
                block + 1
            )));
        }
        hosts.push(m.host);
        // The figure the judge compares: the block's trimmed log mean (its median's log when the
        // source has no raw latencies, e.g. Prometheus's block quantiles).
        locations.push(
            smart_decide::block_location(&m.latencies_us)
                .or_else(|| m.p50_us.map(|p50| (p50 as f64).max(1.0).ln())),
        );
        requests += m.requests;
        errors += m.errors;
    }
    // Each run of four blocks read as an ABBA cycle: those a neighbour's burst would leave out of
    // the keep test are counted, and their pairs are left out of the noise (the judge leaves them
    // out of the keep test too), unless too few pairs would be left.
    let disturbed = smart_decide::disturbed_cycles(&hosts);
    let disturbed_share = if disturbed.is_empty() {
        0.0
    } else {
        disturbed.iter().filter(|d| **d).count() as f64 / disturbed.len() as f64
    };
    let ratios_where = |keep: &dyn Fn(usize) -> bool| -> Vec<f64> {
        locations
            .chunks(2)
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .filter_map(|(_, p)| match p {
                [Some(a), Some(b)] => Some(b - a),
                _ => None,
            })
            .collect()
    };
    let calm = ratios_where(&|pair| !disturbed.get(pair / 2).copied().unwrap_or(false));
    let ratios = if calm.len() >= 2 {
        calm
    } else {
        ratios_where(&|_| true)
    };
    let error_rate = errors as f64 / requests.max(1) as f64;
    let Some(pair_sd) = sd(&ratios) else {
        return Err(CliError::runtime(format!(
            "{} of {} block pairs had answers; the {} source must report answers to be \
             calibrated (for the probe, check the target with `smart probe URL`)",
            ratios.len(),
            args.pairs,
            experiment.measure().source.as_str()
        )));
    };
    let cpu: Vec<f64> = hosts
        .iter()
        .flatten()
        .filter_map(|h| h.cpu_some_pct)
        .collect();
    let record = json!({
        "experiment": experiment.name(),
        "source": experiment.measure().source.as_str(),
        "measured_unix_s": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "block_s": schedule.block_s,
        "cooldown_s": schedule.cooldown_s,
        "rate_per_s": experiment.target().rate_per_s,
        // The answers a second the source reported: what a run of this experiment can expect
        // per block (the probe's own rate for the probe; visitors and fill-in, Prometheus's
        // count or the command's for the others).
        "answers_per_s": requests as f64 / (2 * args.pairs) as f64 / schedule.block_s,
        "pairs": ratios.len(),
        "pair_sd": pair_sd,
        "error_rate": error_rate,
        "cpu_pressure_pct_mean": (!cpu.is_empty()).then(|| cpu.iter().sum::<f64>() / cpu.len() as f64),
        "disturbed_share": disturbed_share,
    });
    let path = calibration_path(config.state_dir(), experiment.name());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError::runtime(format!(
                "cannot create {}: {e}; check the state_dir permissions",
                dir.display()
            ))
        })?;
    }
    let text = serde_json::to_string_pretty(&record).expect("a JSON value always serializes");
    std::fs::write(&path, text + "\n").map_err(|e| {
        CliError::runtime(format!(
            "cannot write {}: {e}; check the state_dir permissions",
            path.display()
        ))
    })?;
    let measured = Measured {
        noise: smart_decide::Noise {
            pair_sd,
            error_rate,
            disturbed_share,
        },
        answers_per_s: record["answers_per_s"].as_f64(),
    };
    let notes = stored_notes(config.state_dir(), &experiment, Some(measured));
    if args.json {
        let mut shown = record;
        shown["file"] = path.display().to_string().into();
        shown["notes"] = notes.into();
        crate::print_json(&shown)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{}: block-pair noise {pair_sd:.3} (sd of the log ratio of neighbouring blocks over {} \
         A/A pairs), {:.0} % of {} cycles left out for host pressure, {:.2} % errors, stored in {}",
        experiment.name(),
        ratios.len(),
        disturbed_share * 100.0,
        disturbed.len(),
        error_rate * 100.0,
        path.display()
    );
    for note in notes {
        let _ = writeln!(out, "  {note}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The file a calibration of `name` is stored in.
fn calibration_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(CALIBRATION_DIR).join(format!("{name}.json"))
}

/// What `smart calibrate` measured for an experiment: the noise, and the answers a second its
/// source reported (`None` in a calibration stored before that was recorded).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Measured {
    pub(crate) noise: smart_decide::Noise,
    pub(crate) answers_per_s: Option<f64>,
}

/// The block-pair noise `smart calibrate` measured for this experiment, when it was measured with
/// the same source, block length, cool-down and rate (another schedule has other noise).
pub(crate) fn measured_noise(state_dir: &Path, experiment: &Experiment) -> Option<Measured> {
    let text = std::fs::read_to_string(calibration_path(state_dir, experiment.name())).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let same = |key: &str, want: f64| v[key].as_f64().is_some_and(|x| (x - want).abs() < 1e-9);
    let schedule = experiment.schedule();
    // A calibration stored before sources existed was measured by the probe.
    let source = v["source"].as_str().unwrap_or("probe");
    (source == experiment.measure().source.as_str()
        && same("block_s", schedule.block_s)
        && same("cooldown_s", schedule.cooldown_s)
        && same("rate_per_s", experiment.target().rate_per_s))
    .then(|| v["pair_sd"].as_f64())
    .flatten()
    .filter(|sd| sd.is_finite() && *sd >= 0.0)
    .map(|pair_sd| Measured {
        noise: smart_decide::Noise {
            pair_sd,
            // A calibration stored before error rates were recorded assumes the typical rate.
            error_rate: v["error_rate"]
                .as_f64()
                .filter(|r| (0.0..=1.0).contains(r))
                .unwrap_or(smart_decide::TYPICAL_ERROR_RATE),
            // Before host pressure was counted: none assumed.
            disturbed_share: v["disturbed_share"]
                .as_f64()
                .filter(|r| (0.0..=1.0).contains(r))
                .unwrap_or(0.0),
        },
        answers_per_s: v["answers_per_s"]
            .as_f64()
            .filter(|r| r.is_finite() && *r >= 0.0),
    })
}

/// When `smart calibrate` measured this experiment's stored calibration, as RFC 3339 UTC.
fn measured_at(state_dir: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(calibration_path(state_dir, name)).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let at = UNIX_EPOCH + Duration::from_secs(v["measured_unix_s"].as_u64()?);
    Some(smart_core::audit::format_utc(at))
}

/// The notes of [`feasibility_notes`], and the feasibility itself stored beside the calibration
/// (STATE_DIR/calibration/NAME.feasibility.json) for the dashboard: the smallest detectable win,
/// the power, and whether the noise was measured. Storing is best effort: the dashboard then
/// shows an older figure or none, and the notes are printed all the same.
fn stored_notes(
    state_dir: &Path,
    experiment: &Experiment,
    measured: Option<Measured>,
) -> Vec<String> {
    let result = feasibility_of(experiment, measured);
    if let Ok(f) = &result {
        let record = json!({
            "experiment": experiment.name(),
            "computed": smart_core::audit::format_utc(SystemTime::now()),
            "noise_source": if measured.is_some() { "measured" } else { "typical" },
            "calibrated": measured.and_then(|_| measured_at(state_dir, experiment.name())),
            "min_improvement_pct": experiment.decision().min_improvement_pct,
            "feasibility": f,
        });
        let path = state_dir
            .join(CALIBRATION_DIR)
            .join(format!("{}{FEASIBILITY_SUFFIX}", experiment.name()));
        let text = serde_json::to_string_pretty(&record).expect("a JSON value always serializes");
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text + "\n"));
        if let Err(e) = written {
            tracing::debug!("cannot store {}: {e}", path.display());
        }
    }
    notes_of(experiment, result, measured)
}

/// Prints, before `smart run` starts an experiment, what its schedule can detect (from the
/// measured noise when `smart calibrate` measured it): plain lines on a terminal, log lines
/// (info, warn for warnings) like the rest of the run's output otherwise.
pub(crate) fn print_run_notes(state_dir: &Path, experiment: &Experiment) {
    let notes = stored_notes(state_dir, experiment, measured_noise(state_dir, experiment));
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    if !terminal {
        crate::logs::init();
    }
    for note in notes {
        let name = experiment.name();
        match (terminal, note.strip_prefix("warning: ")) {
            (true, Some(_)) => eprintln!("{name}: {note}"),
            (true, None) if !crate::logs::quiet() => eprintln!("{name}: {note}"),
            (true, None) => {}
            (false, Some(warning)) => tracing::warn!("{name}: {warning}"),
            (false, None) => tracing::info!("{name}: {note}"),
        }
    }
}

/// What the schedule can decide, as notes: from the measured noise when there is one, else from
/// smart-decide's typical figure (and the notes say which).
pub(crate) fn feasibility_notes(
    experiment: &Experiment,
    measured: Option<Measured>,
) -> Vec<String> {
    notes_of(experiment, feasibility_of(experiment, measured), measured)
}

/// What the schedule can decide with the measured noise, or the typical one, at the answer rate
/// of [`answer_rate`].
fn feasibility_of(
    experiment: &Experiment,
    measured: Option<Measured>,
) -> Result<smart_decide::Feasibility, smart_decide::DecideError> {
    smart_decide::feasibility(
        experiment.schedule(),
        experiment.decision(),
        experiment.guardrails(),
        experiment.variants().len(),
        answer_rate(experiment, measured).0,
        measured.map_or(smart_decide::Noise::TYPICAL, |m| m.noise),
    )
}

/// The answers a second a run of `experiment` can expect per block, and whether they were
/// measured: the probe sends `target.rate_per_s` itself; another source answers at the rate of
/// the server's own traffic (or the command's), which only `smart calibrate` knows — until it
/// has measured it, the probe's rate stands in and the notes say so.
fn answer_rate(experiment: &Experiment, measured: Option<Measured>) -> (f64, bool) {
    match (
        experiment.measure().source.as_str(),
        measured.and_then(|m| m.answers_per_s),
    ) {
        ("probe", _) => (experiment.target().rate_per_s, true),
        (_, Some(rate)) => (rate, true),
        (_, None) => (experiment.target().rate_per_s, false),
    }
}

/// A feasibility as notes, saying whether the noise (and for a source other than the probe, its
/// answer rate) was measured.
fn notes_of(
    experiment: &Experiment,
    result: Result<smart_decide::Feasibility, smart_decide::DecideError>,
    measured: Option<Measured>,
) -> Vec<String> {
    match result {
        Ok(f) => {
            let label = if f.reachable { "decision" } else { "warning" };
            let noise = if measured.is_some() {
                "noise measured by `smart calibrate`"
            } else {
                "typical noise assumed; `smart calibrate` measures this server's"
            };
            let mut notes: Vec<String> = f.notes.iter().map(|n| format!("{label}: {n}")).collect();
            notes.push(format!("{label}: ({noise})"));
            let source = experiment.measure().source.as_str();
            match answer_rate(experiment, measured) {
                _ if source == "probe" => {}
                (rate, true) => notes.push(format!(
                    "{label}: (at the {rate:.1} answers a second `smart calibrate` measured \
                     through the {source} source)"
                )),
                (rate, false) => notes.push(format!(
                    "{label}: (assumes {rate:.0} answers a second; the {source} source answers \
                     at your traffic's rate, which `smart calibrate` measures)"
                )),
            }
            notes
        }
        Err(e) => vec![format!(
            "warning: cannot tell what this schedule can detect: {e}"
        )],
    }
}

/// The sample standard deviation; `None` below two values.
fn sd(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = xs.iter().sum::<f64>() / xs.len() as f64;
    Some((xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calibration_counts_only_for_the_schedule_it_measured() {
        let dir = tempfile::tempdir().unwrap();
        let json = r#"{"name": "gzip", "target": {"urls": ["http://127.0.0.1/"]},
            "apply": {"files": [{"path": "/etc/nginx/conf.d/gzip.conf", "template": "gzip {{ on }};\n"}]},
            "variants": [{"name": "on", "params": {"on": "on"}}]}"#;
        let experiment = smart_core::validate::validate_text(
            json,
            "gzip.json".as_ref(),
            &smart_core::Defaults::default(),
        )
        .unwrap();
        assert_eq!(measured_noise(dir.path(), &experiment), None);
        let path = calibration_path(dir.path(), "gzip");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let write = |block_s: f64| {
            let v =
                json!({"block_s": block_s, "cooldown_s": 5.0, "rate_per_s": 50.0, "pair_sd": 0.2});
            std::fs::write(&path, v.to_string()).unwrap();
        };
        write(10.0);
        assert_eq!(
            measured_noise(dir.path(), &experiment),
            Some(Measured {
                noise: smart_decide::Noise {
                    pair_sd: 0.2,
                    error_rate: smart_decide::TYPICAL_ERROR_RATE,
                    disturbed_share: 0.0,
                },
                answers_per_s: None,
            })
        );
        write(30.0);
        assert_eq!(measured_noise(dir.path(), &experiment), None);
        let noise = smart_decide::Noise {
            pair_sd: 0.3,
            error_rate: 0.0,
            disturbed_share: 0.0,
        };
        let measured = feasibility_notes(
            &experiment,
            Some(Measured {
                noise,
                answers_per_s: None,
            }),
        )
        .join("\n");
        assert!(
            measured.contains("noise measured by `smart calibrate`"),
            "{measured}"
        );
        assert!(measured.contains("block-pair noise 0.300"), "{measured}");
    }

    #[test]
    fn another_source_says_which_answer_rate_its_feasibility_assumes() {
        let json = r#"{"name": "pg", "measure": {"source": "command",
                "command": {"argv": ["/usr/local/bin/smart-pgbench"]}},
            "apply": {"files": [{"path": "/etc/postgresql/15/main/conf.d/smart.conf",
                "template": "work_mem = {{ mem }}\n"}]},
            "variants": [{"name": "big", "params": {"mem": "64MB"}}]}"#;
        let experiment = smart_core::validate::validate_text(
            json,
            "pg.json".as_ref(),
            &smart_core::Defaults::default(),
        )
        .unwrap();
        let assumed = feasibility_notes(&experiment, None).join("\n");
        assert!(
            assumed.contains("assumes 50 answers a second; the command source"),
            "{assumed}"
        );
        let measured = Measured {
            noise: smart_decide::Noise::TYPICAL,
            answers_per_s: Some(12.5),
        };
        let notes = feasibility_notes(&experiment, Some(measured)).join("\n");
        assert!(
            notes.contains(
                "at the 12.5 answers a second `smart calibrate` measured through the \
                            command source"
            ),
            "{notes}"
        );
        assert_eq!(answer_rate(&experiment, Some(measured)), (12.5, true));
    }
}
