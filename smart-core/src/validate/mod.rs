//! Validation: turns an experiment file into a checked [`Experiment`], or reports every problem
//! in it at once (`FILE: json.path: what is wrong; what would be right`).
//!
//! serde stops at the first error, so the file is parsed into a JSON value first (syntax errors
//! carry line and column; duplicate keys are errors; nesting is bounded) and read field by field,
//! collecting problems: types and ranges per field, unknown keys with a "did you mean", then the
//! checks across fields (templates rendered for every arm, params used, the schedule's time box).
//! Each section that reads cleanly is deserialized by serde into the types of
//! [`crate::experiment`], which stay the single description of the format and its defaults.

mod arms;
mod fields;
mod measure;
mod search;
mod source;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::checked::Experiment;
use crate::defaults::Defaults;
use crate::experiment::{ExperimentSpec, Params, VariantSpec};
use crate::problem::{Invalid, Problem};
use crate::reader::{Reader, index, join};
use crate::schedule::{Durations, Plan};

pub use arms::ORIGINAL_PLACEHOLDER;
pub use fields::{MAX_NAME_LEN, MAX_VARIANTS};
pub(crate) use fields::{decision, guardrails, schedule};
pub use source::MAX_FILE_BYTES;
pub(crate) use source::{parse_json, read_limited};

/// Reads and validates one experiment file (at most [`MAX_FILE_BYTES`], checked before parsing).
///
/// `defaults` (from `smart.toml`'s `[defaults]`) fill schedule, decision and guardrail keys the
/// file does not set. `template_file`s are read relative to the file's directory.
pub fn validate_file(path: &Path, defaults: &Defaults) -> Result<Experiment, Invalid> {
    validate_file_by(path, defaults, ApplyBy::Smart)
}

fn validate_file_by(
    path: &Path,
    defaults: &Defaults,
    apply_by: ApplyBy,
) -> Result<Experiment, Invalid> {
    let bytes = read_limited(path).map_err(|message| Invalid::whole_file(path, message))?;
    validate_bytes_by(&bytes, path, defaults, apply_by)
}

/// Who changes the configuration an experiment tests, which decides what its `apply` section is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ApplyBy {
    /// smart-apply, as `smart` does: `apply` is required and every param must be used by it.
    #[default]
    Smart,
    /// A program embedding the engine with its own [`ApplierPort`](crate::engine::ApplierPort), which
    /// makes each arm from its params ([`Experiment::arm_values`]): `apply` must be absent (the
    /// experiment's `apply()` is then empty, with no files and no command).
    Caller,
}

/// [`validate_text`] for an experiment whose configuration `apply_by` changes.
pub fn validate_text_by(
    text: &str,
    source: &Path,
    defaults: &Defaults,
    apply_by: ApplyBy,
) -> Result<Experiment, Invalid> {
    validate_bytes_by(text.as_bytes(), source, defaults, apply_by)
}

/// Validates an experiment given as text; `source` names it in messages and anchors relative
/// `template_file`s (they are read from disk).
pub fn validate_text(
    text: &str,
    source: &Path,
    defaults: &Defaults,
) -> Result<Experiment, Invalid> {
    validate_bytes(text.as_bytes(), source, defaults)
}

/// Validates an experiment given as bytes (see [`validate_text`]).
pub fn validate_bytes(
    bytes: &[u8],
    source: &Path,
    defaults: &Defaults,
) -> Result<Experiment, Invalid> {
    validate_bytes_by(bytes, source, defaults, ApplyBy::Smart)
}

fn validate_bytes_by(
    bytes: &[u8],
    source: &Path,
    defaults: &Defaults,
    apply_by: ApplyBy,
) -> Result<Experiment, Invalid> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Invalid::whole_file(
            source,
            source::too_large(bytes.len() as u64),
        ));
    }
    let mut value = parse_json(bytes).map_err(|message| Invalid::whole_file(source, message))?;
    defaults.fill(&mut value);
    let base_dir = match source.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut r = Reader::new();
    let read = read_root(&mut r, &value, base_dir, apply_by);
    let problems = r.into_problems();
    match read {
        Some((spec, variants, durations)) if problems.is_empty() => Ok(Experiment::new(
            spec,
            variants,
            source.to_owned(),
            durations,
        )),
        _ if problems.is_empty() => Err(Invalid::whole_file(
            source,
            "could not be read, though no field check failed (please report this)",
        )),
        _ => Err(Invalid::new(source, problems)),
    }
}

/// The outcome of validating several files: the valid experiments and the invalid files.
#[derive(Debug, Default)]
pub struct Report {
    /// The valid experiments, in the order their files were given (directories: by file name).
    pub experiments: Vec<Experiment>,
    /// The files with problems, each with all of its problems.
    pub invalid: Vec<Invalid>,
}

/// Validates files and directories (their `*.json` files, by name, not recursively), and checks
/// that experiment names are unique across them.
pub fn validate_paths(paths: &[PathBuf], defaults: &Defaults) -> Report {
    validate_paths_by(paths, defaults, ApplyBy::Smart)
}

/// [`validate_paths`] for experiments whose configuration `apply_by` changes.
pub fn validate_paths_by(paths: &[PathBuf], defaults: &Defaults, apply_by: ApplyBy) -> Report {
    let mut report = Report::default();
    for path in paths {
        let files = if path.is_dir() {
            match experiment_files(path) {
                Ok(files) if files.is_empty() => {
                    report.invalid.push(Invalid::whole_file(
                        path,
                        "holds no *.json experiment files",
                    ));
                    continue;
                }
                Ok(files) => files,
                Err(e) => {
                    report.invalid.push(Invalid::whole_file(
                        path,
                        format!("cannot list the directory: {e}"),
                    ));
                    continue;
                }
            }
        } else {
            vec![path.clone()]
        };
        for file in files {
            match validate_file_by(&file, defaults, apply_by) {
                Ok(experiment) => {
                    if let Some(first) = report
                        .experiments
                        .iter()
                        .find(|e| e.name() == experiment.name())
                    {
                        report.invalid.push(Invalid::new(
                            &file,
                            vec![Problem::new(
                                "name",
                                format!(
                                    "\"{}\" is also the name of the experiment in {}; experiment \
                                     names must be unique (they name its history)",
                                    experiment.name(),
                                    first.source().display()
                                ),
                            )],
                        ));
                    } else {
                        report.experiments.push(experiment);
                    }
                }
                Err(invalid) => report.invalid.push(invalid),
            }
        }
    }
    report
}

/// The `*.json` files directly in `dir`, sorted by name.
pub fn experiment_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "json") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// What a clean read yields: the definition, the expanded variants and the durations.
type Read = (ExperimentSpec, Vec<VariantSpec>, Durations);

/// Reads the whole file, recording every problem; `Some` only when every part read cleanly.
fn read_root(r: &mut Reader, value: &Value, base_dir: &Path, apply_by: ApplyBy) -> Option<Read> {
    let root = r.object(value, "", fields::ROOT_KEYS, &fields::key_home)?;
    let empty = Value::Object(serde_json::Map::new());

    if let Some(version) = root.get("format_version") {
        fields::format_version(r, version);
    }
    let name = r
        .required(root, "", "name", "\"nginx-file-cache\"")
        .and_then(|v| fields::name(r, v, "name"))
        .map(str::to_owned);
    let description = match root.get("description") {
        Some(v) => r.string(v, "description", "a sentence").map(str::to_owned),
        None => Some(String::new()),
    };
    let measure = measure::measure(r, root.get("measure"));
    let needs_target = measure::needs_target(measure.as_ref());
    let target = match (needs_target, fields::optional(root, "target")) {
        (true, _) => r
            .required(root, "", "target", "{\"urls\": [\"http://127.0.0.1/\"]}")
            .and_then(|v| fields::target(r, v, true)),
        (false, Some(v)) => fields::target(r, v, false),
        (false, None) => Some(crate::experiment::Target::default()),
    };
    let apply = match apply_by {
        ApplyBy::Smart => r
            .required(
                root,
                "",
                "apply",
                "{\"files\": [{\"path\": \"/etc/nginx/conf.d/smart.conf\", \"template\": \"...\"}]}",
            )
            .and_then(|v| fields::apply(r, v, base_dir)),
        ApplyBy::Caller if root.contains_key("apply") => {
            r.problem(
                "apply",
                "given, but the program running this experiment applies it itself; remove \
                 \"apply\" (the program makes each arm from its params)",
            );
            None
        }
        ApplyBy::Caller => serde_json::from_value(Value::Object(serde_json::Map::new()))
            .ok()
            .map(|apply| (apply, Vec::new())),
    };
    let baseline: Option<Option<Params>> = match fields::optional(root, "baseline") {
        Some(v) => fields::params(r, v, "baseline").map(Some),
        None => Some(None),
    };

    let explicit = root.get("variants");
    let matrix_value = fields::optional(root, "matrix");
    let search_value = fields::optional(root, "search");
    let search: Option<Option<crate::experiment::SearchSpec>> = match search_value {
        Some(v) => search::search(r, v, baseline.as_ref().and_then(Option::as_ref)).map(Some),
        None => Some(None),
    };
    let variants: Option<(Vec<VariantSpec>, bool)> = match (explicit, matrix_value) {
        // A search generates its candidates while it runs: no variants are listed.
        (None, None) if search_value.is_some() => Some((Vec::new(), false)),
        (Some(_), _) | (_, Some(_)) if search_value.is_some() => {
            r.problem(
                "search",
                "given together with \"variants\" or \"matrix\"; give one of them: a search \
                 picks its own candidates",
            );
            None
        }
        (None, None) => {
            r.problem(
                "variants",
                "missing; add \"variants\": [{\"name\": \"cache-10k\", \"params\": {...}}], a \
                 \"matrix\": {\"param\": [values]} to generate them, or a \"search\" to let smart \
                 find the values",
            );
            None
        }
        (Some(_), Some(_)) => {
            r.problem(
                "matrix",
                "given together with \"variants\"; give one of them: variants are listed, or \
                 generated from the matrix",
            );
            None
        }
        (Some(v), None) => fields::variants(r, v).map(|list| (list, false)),
        (None, Some(v)) => {
            fields::matrix(r, v).and_then(|matrix| match arms::expand_matrix(&matrix) {
                Ok(list) => Some((list, true)),
                Err(message) => {
                    r.problem("matrix", message);
                    None
                }
            })
        }
    };
    let schedule = fields::schedule(r, root.get("schedule").unwrap_or(&empty), "schedule");
    let decision = fields::decision(r, root.get("decision").unwrap_or(&empty), "decision");
    let guardrails = fields::guardrails(r, root.get("guardrails").unwrap_or(&empty), "guardrails");

    // Checks across sections, for the parts that read cleanly.
    if let (ApplyBy::Smart, Some((apply, origins)), Some((list, from_matrix)), Some(baseline)) =
        (apply_by, &apply, &variants, &baseline)
    {
        let mut arm_list = Vec::with_capacity(list.len() + 1);
        if let Some(params) = baseline {
            arm_list.push(arms::Arm {
                name: crate::checked::BASELINE,
                params,
                field: "baseline".to_owned(),
            });
        }
        let probes = search.iter().flatten().flat_map(search::probe_points);
        let probes: Vec<VariantSpec> = probes.collect();
        for probe in &probes {
            arm_list.push(arms::Arm {
                name: &probe.name,
                params: &probe.params,
                field: "search.params".to_owned(),
            });
        }
        for (i, variant) in list.iter().enumerate() {
            arm_list.push(arms::Arm {
                name: &variant.name,
                params: &variant.params,
                field: if *from_matrix {
                    "matrix".to_owned()
                } else {
                    join(&index("variants", i), "params")
                },
            });
        }
        arms::check_templates(r, apply, origins, &arm_list);
    }
    if let (Some(measure), Some(schedule)) = (&measure, &schedule) {
        measure::check_schedule(r, measure, schedule.block_s);
    }
    if let (Some(measure), Some(target)) = (&measure, &target) {
        measure::check_fill(r, measure, target);
    }
    let durations = match (&schedule, &variants, &apply) {
        (Some(schedule), Some((list, _)), Some((apply, _))) => {
            let initial_checks_s = apply
                .validate
                .as_ref()
                .map_or(0.0, |_| apply.command_timeout_s)
                + apply.health.as_ref().map_or(0.0, |h| h.timeout_s);
            // A search runs its candidates one at a time: the time box must hold one.
            let durations = Durations::of(
                schedule,
                Plan {
                    variants: if search_value.is_some() {
                        1
                    } else {
                        list.len()
                    },
                    initial_checks_s,
                },
            );
            if let Some(Some(spec)) = &search {
                let one = search::candidate_durations(schedule, initial_checks_s);
                search::check_with_schedule(r, spec, root, schedule, &one);
            }
            if durations.worst_case_s > schedule.max_duration_s {
                r.problem(
                    "schedule.max_duration_s",
                    format!(
                        "the worst case for {} variant(s) is {} s ({}), more than \
                         max_duration_s {}; raise max_duration_s to at least {}, or lower \
                         max_cycles, block_s, cooldown_s, soak_s or the number of variants",
                        list.len(),
                        durations.worst_case_s.ceil(),
                        crate::schedule::Human(durations.worst_case_s),
                        schedule.max_duration_s,
                        durations.worst_case_s.ceil()
                    ),
                );
            }
            Some(durations)
        }
        _ => None,
    };

    let spec = ExperimentSpec {
        format_version: crate::experiment::FORMAT_VERSION,
        name: name?,
        description: description?,
        target: target?,
        measure: measure?,
        apply: apply?.0,
        baseline: baseline?,
        variants: explicit
            .and(variants.as_ref())
            .map(|(v, _)| v.clone())
            .unwrap_or_default(),
        matrix: match matrix_value {
            Some(v) => Some(serde_json::from_value(v.clone()).ok()?),
            None => None,
        },
        schedule: schedule?,
        decision: decision?,
        guardrails: guardrails?,
        search: search?,
    };
    Some((spec, variants?.0, durations?))
}
