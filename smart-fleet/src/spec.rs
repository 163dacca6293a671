//! The fleet experiment file: its serde types (the format `docs/experiment-format.md` describes
//! in its "Fleet experiments" section) and the validation that turns one into a
//! [`FleetExperiment`], reporting every problem as `FILE: field: message`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smart_core::experiment::Prometheus;
use smart_core::experiment::{Decision, Guardrails, Params, Schedule};
use smart_core::template::{VARIANT_PLACEHOLDER, is_param_name, placeholders};

use crate::error::FleetError;

/// `{{ hosts }}`: the arm's hosts as a comma list (for `ansible-playbook -l`).
pub const HOSTS_PLACEHOLDER: &str = "hosts";
/// `{{ hosts_regex }}`: the arm's hosts as an escaped PromQL regex alternation.
pub const HOSTS_REGEX_PLACEHOLDER: &str = "hosts_regex";
/// `{{ inventory }}`: the inventory's absolute path.
pub const INVENTORY_PLACEHOLDER: &str = "inventory";
/// Names a param may not take: the coordinator fills them in.
pub const RESERVED: [&str; 4] = [
    HOSTS_PLACEHOLDER,
    HOSTS_REGEX_PLACEHOLDER,
    INVENTORY_PLACEHOLDER,
    VARIANT_PLACEHOLDER,
];
/// The most pairs of periods: the exact sign-flip test enumerates every pattern up to 14.
const MAX_PAIRS: u32 = 14;
/// A period must span at least this many scrapes, so each arm's window holds several samples.
pub(crate) const MIN_SCRAPES_PER_PERIOD: f64 = 4.0;

/// A fleet experiment file as written, defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetSpec {
    /// A short name: `[a-z0-9_-]`, used for the journal's file name.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9_-]+$"))]
    pub name: String,
    /// What the experiment asks, in a sentence.
    #[serde(default)]
    pub description: String,
    /// The hosts and the crossover's timing.
    pub fleet: FleetSection,
    /// How an arm's hosts are switched.
    pub apply: FleetApply,
    /// How an arm is measured.
    pub measure: FleetMeasure,
    /// The params the fleet runs now; reverting renders them.
    pub baseline: Params,
    /// The one change under test.
    pub variant: FleetVariant,
    /// When the variant is kept (the single-host rule).
    #[serde(default)]
    pub decision: Decision,
    /// Limits per arm, and for each promotion stage.
    #[serde(default)]
    pub guardrails: Guardrails,
}

/// The `fleet` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetSection {
    /// The Ansible inventory (relative to the experiment file), read with `ansible-inventory`.
    pub inventory: PathBuf,
    /// The inventory group (or `all`) whose hosts take part.
    #[serde(default = "default_group")]
    pub group: String,
    /// Seconds each arm is measured per period: at least four scrape intervals.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub period_s: f64,
    /// Seconds between a switch and the start of the period's window.
    #[serde(default = "default_settle_s")]
    pub settle_s: f64,
    /// The most pairs of periods (each pair: every arm once on the variant), 1 to 14.
    #[serde(default = "default_max_pairs")]
    #[schemars(range(min = 1, max = 14))]
    pub max_pairs: u32,
    /// The promotion stages of a kept variant, cumulative percentages of the hosts outside the
    /// variant arm, increasing, ending at 100.
    #[serde(default = "default_stages_pct")]
    pub stages_pct: Vec<f64>,
    /// Seconds each stage is watched under the guardrails (default: `period_s`).
    #[serde(default)]
    pub stage_s: Option<f64>,
    /// The most seconds one apply command may run.
    #[serde(default = "default_command_timeout_s")]
    pub command_timeout_s: f64,
    /// The seed of the split and of the period order (default: drawn per run).
    #[serde(default)]
    pub seed: Option<u64>,
}

fn default_group() -> String {
    "all".to_owned()
}
fn default_settle_s() -> f64 {
    1.0
}
fn default_max_pairs() -> u32 {
    8
}
fn default_stages_pct() -> Vec<f64> {
    vec![25.0, 50.0, 100.0]
}
fn default_command_timeout_s() -> f64 {
    600.0
}

/// The `apply` section: one argv that switches the hosts of `{{ hosts }}` to the params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetApply {
    /// Typically `["ansible-playbook", "-i", "{{ inventory }}", "-l", "{{ hosts }}",
    /// "playbook.yml", "-e", "param={{ param }}"]`, run in the experiment file's directory.
    #[schemars(length(min = 1))]
    pub argv: Vec<String>,
}

/// The `measure` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetMeasure {
    /// The Prometheus source; every query selects the arm with `{{ hosts_regex }}`.
    pub prometheus: Prometheus,
}

/// The variant under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetVariant {
    /// Its name, in reports.
    pub name: String,
    /// Its params: the same names as the baseline's.
    pub params: Params,
}

/// The JSON Schema of the fleet experiment file, generated from these types (committed as
/// `docs/fleet-experiment.schema.json`, which a test keeps up to date), for editors and tools.
pub fn schema() -> schemars::Schema {
    schemars::schema_for!(FleetSpec)
}

/// A fleet experiment that passed validation: nothing downstream re-checks it.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetExperiment {
    spec: FleetSpec,
    file: PathBuf,
    dir: PathBuf,
    inventory: PathBuf,
}

impl FleetExperiment {
    /// Reads and validates the fleet experiment at `path`.
    pub fn load(path: &Path) -> Result<FleetExperiment, FleetError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            FleetError::invalid(format!(
                "{}: cannot read the fleet experiment: {e}",
                path.display()
            ))
        })?;
        Self::parse(path, &text)
    }

    /// Validates `text` as the fleet experiment file `path` (which places relative paths).
    pub fn parse(path: &Path, text: &str) -> Result<FleetExperiment, FleetError> {
        let at = path.display();
        let spec: FleetSpec =
            serde_json::from_str(text).map_err(|e| FleetError::invalid(format!("{at}: {e}")))?;
        let problems = problems(&spec);
        if !problems.is_empty() {
            let lines: Vec<String> = problems.iter().map(|p| format!("{at}: {p}")).collect();
            return Err(FleetError::invalid(lines.join("\n")));
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = std::path::absolute(dir)
            .map_err(|e| FleetError::invalid(format!("{at}: cannot place its directory: {e}")))?;
        let inventory = dir.join(&spec.fleet.inventory);
        Ok(FleetExperiment {
            spec,
            file: path.to_owned(),
            dir,
            inventory,
        })
    }

    /// The file as written.
    pub fn spec(&self) -> &FleetSpec {
        &self.spec
    }

    /// The experiment file's path.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The directory the apply argv runs in (the experiment file's).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The inventory's absolute path.
    pub fn inventory(&self) -> &Path {
        &self.inventory
    }

    /// The schedule the judge is built with: one "cycle" per pair of periods.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            max_cycles: self.spec.fleet.max_pairs,
            block_s: self.spec.fleet.period_s,
            ..Schedule::default()
        }
    }

    /// Seconds each promotion stage is watched.
    pub fn stage_s(&self) -> f64 {
        self.spec.fleet.stage_s.unwrap_or(self.spec.fleet.period_s)
    }

    /// The values the apply argv renders with for `hosts` on `params` (the arm's name as
    /// `variant`).
    pub fn argv_values(
        &self,
        arm: &str,
        params: &Params,
        hosts: &[String],
    ) -> BTreeMap<String, String> {
        argv_values(&self.inventory, arm, params, hosts)
    }
}

/// The values an apply argv renders with.
pub(crate) fn argv_values(
    inventory: &Path,
    arm: &str,
    params: &Params,
    hosts: &[String],
) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    values.insert(VARIANT_PLACEHOLDER.to_owned(), arm.to_owned());
    values.insert(HOSTS_PLACEHOLDER.to_owned(), hosts.join(","));
    values.insert(
        INVENTORY_PLACEHOLDER.to_owned(),
        inventory.display().to_string(),
    );
    values
}

/// Every problem of `spec`, as `field: message`.
fn problems(spec: &FleetSpec) -> Vec<String> {
    let mut out = Vec::new();
    let name = &spec.name;
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
    {
        out.push(format!(
            "name: `{name}` must be 1 to 64 of a-z, 0-9, `_` and `-` (it names the journal file)"
        ));
    }
    let f = &spec.fleet;
    if f.inventory.as_os_str().is_empty() {
        out.push("fleet.inventory: give the Ansible inventory's path".to_owned());
    }
    if f.group.is_empty() || f.group.contains([',', ':', '!', '&', ' ']) {
        out.push(format!(
            "fleet.group: `{}` must be one inventory group name (or `all`), not a pattern",
            f.group
        ));
    }
    let scrape = spec.measure.prometheus.scrape_interval_s;
    if !(scrape.is_finite() && scrape > 0.0) {
        out.push(format!(
            "measure.prometheus.scrape_interval_s: {scrape} must be a positive number of seconds"
        ));
    }
    if !(f.period_s.is_finite() && f.period_s >= MIN_SCRAPES_PER_PERIOD * scrape) {
        out.push(format!(
            "fleet.period_s: {} s is shorter than {MIN_SCRAPES_PER_PERIOD} scrape intervals \
             ({} s): each arm's window needs several scrapes; raise period_s",
            f.period_s,
            MIN_SCRAPES_PER_PERIOD * scrape
        ));
    }
    if !(f.settle_s.is_finite() && f.settle_s >= 0.0) {
        out.push(format!(
            "fleet.settle_s: {} must be zero or more seconds",
            f.settle_s
        ));
    }
    if !(1..=MAX_PAIRS).contains(&f.max_pairs) {
        out.push(format!(
            "fleet.max_pairs: {} must be 1 to {MAX_PAIRS} pairs of periods",
            f.max_pairs
        ));
    }
    if let Some(s) = f.stage_s.filter(|s| !(s.is_finite() && *s > 0.0)) {
        out.push(format!(
            "fleet.stage_s: {s} must be a positive number of seconds"
        ));
    }
    if !(f.command_timeout_s.is_finite() && f.command_timeout_s > 0.0) {
        out.push(format!(
            "fleet.command_timeout_s: {} must be a positive number of seconds",
            f.command_timeout_s
        ));
    }
    let increasing = f.stages_pct.windows(2).all(|w| w[0] < w[1]);
    let in_range = f.stages_pct.iter().all(|p| *p > 0.0 && *p <= 100.0);
    if f.stages_pct.last() != Some(&100.0) || !increasing || !in_range {
        out.push(format!(
            "fleet.stages_pct: {:?} must be increasing percentages in (0, 100] ending at 100, \
             e.g. [25, 50, 100]",
            f.stages_pct
        ));
    }
    params_problems(spec, &mut out);
    argv_problems(spec, &mut out);
    query_problems(&spec.measure.prometheus, &mut out);
    let names = [spec.variant.name.clone()];
    let schedule = Schedule {
        max_cycles: f.max_pairs.max(1),
        ..Schedule::default()
    };
    if let Err(e) = smart_decide::Judge::new(&spec.decision, &spec.guardrails, &schedule, &names) {
        out.push(format!("decision: {e}"));
    }
    out
}

fn params_problems(spec: &FleetSpec, out: &mut Vec<String>) {
    if spec.variant.name.is_empty() || spec.variant.name == "baseline" {
        out.push("variant.name: give the variant a name other than `baseline`".to_owned());
    }
    for (field, params) in [
        ("baseline", &spec.baseline),
        ("variant.params", &spec.variant.params),
    ] {
        for key in params.keys() {
            if RESERVED.contains(&key.as_str()) {
                out.push(format!(
                    "{field}.{key}: `{key}` is reserved (the coordinator fills it in); rename the param"
                ));
            } else if !is_param_name(key) {
                out.push(format!("{field}.{key}: a param name is [a-z][a-z0-9_]*"));
            }
        }
    }
    let base: BTreeSet<&String> = spec.baseline.keys().collect();
    let var: BTreeSet<&String> = spec.variant.params.keys().collect();
    if base != var {
        out.push(format!(
            "variant.params: names {var:?} differ from the baseline's {base:?}: both must set the \
             same params, so a revert renders every one"
        ));
    }
    if spec.baseline == spec.variant.params {
        out.push(
            "variant.params: the variant equals the baseline; change at least one param".to_owned(),
        );
    }
}

fn argv_problems(spec: &FleetSpec, out: &mut Vec<String>) {
    let argv = &spec.apply.argv;
    if argv.first().is_none_or(|p| p.trim().is_empty()) {
        out.push(
            "apply.argv: give the command as an argv, e.g. [\"ansible-playbook\", \"-i\", \
             \"{{ inventory }}\", \"-l\", \"{{ hosts }}\", \"playbook.yml\", \"-e\", \"x={{ x }}\"]"
                .to_owned(),
        );
        return;
    }
    let mut has_hosts = false;
    for (i, arg) in argv.iter().enumerate() {
        match placeholders(arg) {
            Err(e) => out.push(format!("apply.argv[{i}]: {}", e.message)),
            Ok(found) => {
                for p in found {
                    if p.name == HOSTS_PLACEHOLDER {
                        has_hosts = true;
                    } else if p.name == HOSTS_REGEX_PLACEHOLDER {
                        out.push(format!(
                            "apply.argv[{i}]: `{{{{ hosts_regex }}}}` is for the Prometheus \
                             queries; the command takes `{{{{ hosts }}}}`"
                        ));
                    } else if p.name != INVENTORY_PLACEHOLDER
                        && p.name != VARIANT_PLACEHOLDER
                        && !spec.baseline.contains_key(&p.name)
                    {
                        out.push(format!(
                            "apply.argv[{i}]: `{{{{ {} }}}}` is not a param of the baseline and \
                             the variant, nor hosts, inventory or variant",
                            p.name
                        ));
                    }
                }
            }
        }
    }
    if !has_hosts {
        out.push(
            "apply.argv: no argument holds `{{ hosts }}`, so the command could not be limited to \
             one arm (add \"-l\", \"{{ hosts }}\")"
                .to_owned(),
        );
    }
}

fn query_problems(p: &Prometheus, out: &mut Vec<String>) {
    for (key, query) in [
        ("latency_quantile", &p.latency_quantile),
        ("latency_mean", &p.latency_mean),
        ("requests", &p.requests),
        ("error_ratio", &p.error_ratio),
    ] {
        match placeholders(query) {
            Err(e) => out.push(format!("measure.prometheus.{key}: {}", e.message)),
            Ok(found) => {
                if let Some(other) = found.iter().find(|p| p.name != HOSTS_REGEX_PLACEHOLDER) {
                    out.push(format!(
                        "measure.prometheus.{key}: `{{{{ {} }}}}` is unknown here; a query takes \
                         only `{{{{ hosts_regex }}}}`",
                        other.name
                    ));
                }
                if found.is_empty() {
                    out.push(format!(
                        "measure.prometheus.{key}: select the arm's hosts with a matcher such as \
                         `instance=~\"{{{{ hosts_regex }}}}\"`, or both arms would be measured together"
                    ));
                }
            }
        }
    }
    if p.auth_header_env.is_some() {
        out.push(
            "measure.prometheus.auth_header_env: not supported by fleet experiments yet; put \
             Prometheus behind loopback or a proxy that adds the header"
                .to_owned(),
        );
    }
    if url_scheme(&p.url).is_none() {
        out.push(format!(
            "measure.prometheus.url: `{}` must be an http:// or https:// URL",
            p.url
        ));
    }
}

fn url_scheme(url: &str) -> Option<&'static str> {
    if url.starts_with("http://") {
        Some("http")
    } else if url.starts_with("https://") {
        Some("https")
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid file as JSON, for the cases to break.
    pub(crate) fn valid() -> serde_json::Value {
        serde_json::json!({
            "name": "fleet-delay",
            "fleet": {"inventory": "inventory.ini", "group": "web", "period_s": 2},
            "apply": {"argv": ["ansible-playbook", "-i", "{{ inventory }}", "-l", "{{ hosts }}",
                               "playbook.yml", "-e", "delay_ms={{ delay_ms }}"]},
            "measure": {"prometheus": {
                "url": "http://127.0.0.1:9090",
                "latency_quantile": "histogram_quantile($quantile, sum by (le) (rate(x_bucket{host=~\"{{ hosts_regex }}\"}[$window])))",
                "latency_mean": "sum(rate(x_sum{host=~\"{{ hosts_regex }}\"}[$window])) / sum(rate(x_count{host=~\"{{ hosts_regex }}\"}[$window]))",
                "requests": "sum(increase(r_total{host=~\"{{ hosts_regex }}\"}[$window]))",
                "error_ratio": "sum(increase(r_total{code=\"5xx\",host=~\"{{ hosts_regex }}\"}[$window])) / sum(increase(r_total{host=~\"{{ hosts_regex }}\"}[$window]))",
                "scrape_interval_s": 0.5
            }},
            "baseline": {"delay_ms": 50},
            "variant": {"name": "no-delay", "params": {"delay_ms": 0}}
        })
    }

    /// Validates `value` with `edit` applied; the problems as one string ("" when valid).
    fn check(edit: impl FnOnce(&mut serde_json::Value), expected: &str) {
        let mut value = valid();
        edit(&mut value);
        let got = match FleetExperiment::parse(Path::new("x/fleet.json"), &value.to_string()) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        if expected.is_empty() {
            assert_eq!(got, "", "expected valid");
        } else {
            assert!(got.contains(expected), "{got:?} lacks {expected:?}");
        }
    }

    #[test]
    fn a_valid_file_loads_with_its_paths_placed() {
        let e = FleetExperiment::parse(Path::new("x/fleet.json"), &valid().to_string()).unwrap();
        assert!(e.inventory().ends_with("x/inventory.ini"));
        assert!(e.inventory().is_absolute());
        assert_eq!(e.spec().fleet.stages_pct, [25.0, 50.0, 100.0]);
        assert_eq!(e.schedule().max_cycles, 8);
        check(|_| {}, "");
    }

    fn repo_root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn the_committed_schema_is_up_to_date_and_takes_the_example() {
        let path = repo_root().join("docs/fleet-experiment.schema.json");
        let fresh = serde_json::to_string_pretty(&schema()).unwrap() + "\n";
        if std::env::var_os("SMART_BLESS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "{} is out of date; regenerate it with `SMART_BLESS=1 cargo test -p smart-fleet \
             schema` and commit it",
            path.display()
        );
        let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let example = repo_root().join("examples/fleet/fleet-delay.json");
        let text = std::fs::read_to_string(&example).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        FleetExperiment::parse(&example, &text).unwrap();
        let mut bad = valid();
        bad["fleet"]["max_pairs"] = 0.into();
        assert!(!validator.is_valid(&bad));
        assert!(validator.is_valid(&valid()));
    }

    #[test]
    fn each_problem_is_named_with_its_field() {
        check(|v| v["name"] = "Bad Name".into(), "name: `Bad Name`");
        check(
            |v| v["fleet"]["period_s"] = 1.into(),
            "fleet.period_s: 1 s is shorter than 4 scrape",
        );
        check(
            |v| v["fleet"]["max_pairs"] = 20.into(),
            "fleet.max_pairs: 20",
        );
        check(
            |v| v["fleet"]["stages_pct"] = serde_json::json!([50, 25, 100]),
            "fleet.stages_pct",
        );
        check(
            |v| v["fleet"]["stages_pct"] = serde_json::json!([25, 50]),
            "ending at 100",
        );
        check(|v| v["fleet"]["group"] = "web:&db".into(), "fleet.group");
        check(
            |v| v["apply"]["argv"] = serde_json::json!(["ansible-playbook", "pb.yml"]),
            "no argument holds `{{ hosts }}`",
        );
        check(
            |v| v["apply"]["argv"] = serde_json::json!([]),
            "apply.argv: give the command",
        );
        check(
            |v| v["apply"]["argv"][7] = "x={{ nope }}".into(),
            "apply.argv[7]: `{{ nope }}` is not a param",
        );
        check(
            |v| v["measure"]["prometheus"]["requests"] = "sum(r_total)".into(),
            "measure.prometheus.requests: select the arm's hosts",
        );
        check(
            |v| v["measure"]["prometheus"]["requests"] = "{{ hosts }}".into(),
            "only `{{ hosts_regex }}`",
        );
        check(
            |v| v["variant"]["params"] = serde_json::json!({"delay_ms": 50}),
            "the variant equals the baseline",
        );
        check(
            |v| v["variant"]["params"] = serde_json::json!({"other": 1}),
            "differ from the baseline's",
        );
        check(
            |v| v["baseline"] = serde_json::json!({"hosts": 1}),
            "baseline.hosts: `hosts` is reserved",
        );
        check(
            |v| v["decision"] = serde_json::json!({"confidence": 1.5}),
            "1.5 is out of range; give a confidence level",
        );
        check(|v| v["fleet"]["extra"] = 1.into(), "unknown field `extra`");
    }
}
