//! The agent configuration, `smart.toml`: where experiments, state and the dashboard live, the
//! schedule/decision/guardrail defaults every experiment inherits, and the coach's settings.
//!
//! It is checked like an experiment file (every problem at once, `smart.toml: key: message`);
//! relative paths resolve against the config file's directory, so a config works wherever it is.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::logs::LogRotation;
use crate::problem::{Invalid, Problem};
use crate::reader::{Reader, join};
use crate::records::Retention;
use crate::runner::RunWindow;
use crate::validate;

pub use crate::defaults::Defaults;
mod prometheus;
pub use prometheus::PrometheusConfig;

/// The config file looked for in the working directory.
pub const LOCAL_CONFIG: &str = "smart.toml";
/// The system-wide config file, used when there is no `./smart.toml`.
pub const SYSTEM_CONFIG: &str = "/etc/smart/smart.toml";
/// Where experiments are found without a config file.
pub const DEFAULT_EXPERIMENTS_DIR: &str = "/etc/smart/experiments";
/// Where run state (journal, backups, lock, records) lives without a config file.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/smart";
/// Where the dashboard is written without a config file.
pub const DEFAULT_DASHBOARD_DIR: &str = "/var/lib/smart/dashboard";

/// The sections of an experiment that `[defaults]` may set.
const DEFAULT_SECTIONS: &[&str] = &["schedule", "decision", "guardrails"];
/// The top-level keys of `smart.toml`.
const CONFIG_KEYS: &[&str] = &[
    "experiments_dir",
    "state_dir",
    "dashboard_dir",
    "run_window",
    "defaults",
    "coach",
    "logs",
    "retention",
    "prometheus",
];
/// The keys of `[logs]`.
const LOGS_KEYS: &[&str] = &["max_bytes", "keep"];
/// The keys of `[retention]`.
const RETENTION_KEYS: &[&str] = &["enabled", "max_age_days", "max_runs"];

/// The checked agent configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    file: Option<PathBuf>,
    experiments_dir: PathBuf,
    state_dir: PathBuf,
    dashboard_dir: PathBuf,
    defaults: Defaults,
    coach: toml::Table,
    logs: LogRotation,
    retention: Retention,
    prometheus: PrometheusConfig,
    run_window: Option<RunWindow>,
}

impl Default for AgentConfig {
    /// The configuration without a config file: system paths, no defaults, no coach.
    fn default() -> Self {
        AgentConfig {
            file: None,
            experiments_dir: PathBuf::from(DEFAULT_EXPERIMENTS_DIR),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            dashboard_dir: PathBuf::from(DEFAULT_DASHBOARD_DIR),
            defaults: Defaults::default(),
            coach: toml::Table::new(),
            logs: LogRotation::default(),
            retention: Retention::default(),
            prometheus: PrometheusConfig::default(),
            run_window: None,
        }
    }
}

impl AgentConfig {
    /// Which config file to read: `explicit` (from `--config`) when given, else `./smart.toml`
    /// (in `cwd`) if it exists, else [`SYSTEM_CONFIG`] if it exists, else none.
    pub fn locate(explicit: Option<&Path>, cwd: &Path) -> Option<PathBuf> {
        if let Some(path) = explicit {
            return Some(path.to_owned());
        }
        let local = cwd.join(LOCAL_CONFIG);
        if local.is_file() {
            return Some(local);
        }
        let system = PathBuf::from(SYSTEM_CONFIG);
        system.is_file().then_some(system)
    }

    /// Reads and checks a config file (at most 1 MiB); every problem is reported at once.
    pub fn load(path: &Path) -> Result<AgentConfig, Invalid> {
        let bytes =
            validate::read_limited(path).map_err(|message| Invalid::whole_file(path, message))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            Invalid::whole_file(
                path,
                format!(
                    "is not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
            )
        })?;
        AgentConfig::from_toml(&text, path)
    }

    /// Checks config text; `path` names it in messages and anchors relative paths.
    pub fn from_toml(text: &str, path: &Path) -> Result<AgentConfig, Invalid> {
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| Invalid::whole_file(path, toml_error_message(text, &e)))?;
        let value = serde_json::to_value(&table).map_err(|e| {
            Invalid::whole_file(path, format!("holds a value smart cannot read: {e}"))
        })?;
        let base = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut r = Reader::new();
        let mut config = AgentConfig {
            file: Some(path.to_owned()),
            ..AgentConfig::default()
        };
        let root = r
            .object(&value, "", CONFIG_KEYS, &|_| None)
            .cloned()
            .unwrap_or_default();
        for (key, slot) in [
            ("experiments_dir", &mut config.experiments_dir),
            ("state_dir", &mut config.state_dir),
            ("dashboard_dir", &mut config.dashboard_dir),
        ] {
            if let Some(v) = root.get(key)
                && let Some(dir) = r.string(v, key, "a directory path like \"/var/lib/smart\"")
            {
                if dir.is_empty() {
                    r.problem(key, "is empty; give a directory path");
                } else {
                    *slot = base.join(dir);
                }
            }
        }
        if let Some(v) = root.get("run_window")
            && let Some(text) = r.string(v, "run_window", "a daily window like \"02:00-06:00 UTC\"")
        {
            match RunWindow::parse(text) {
                Ok(window) => config.run_window = Some(window),
                Err(message) => r.problem("run_window", message),
            }
        }
        if let Some(defaults) = root.get("defaults") {
            let defaults = misplaced(&mut r, "defaults", defaults);
            config.defaults = read_defaults(&mut r, &defaults);
        }
        if let Some(logs) = root.get("logs") {
            let logs = misplaced(&mut r, "logs", logs);
            config.logs = read_logs(&mut r, &logs);
        }
        if let Some(retention) = root.get("retention") {
            let retention = misplaced(&mut r, "retention", retention);
            config.retention = read_retention(&mut r, &retention);
        }
        if let Some(prometheus) = root.get("prometheus") {
            config.prometheus = prometheus::read(&mut r, prometheus, base);
        }
        if let Some(coach) = table.get("coach") {
            match coach {
                toml::Value::Table(coach) => {
                    let mut coach = coach.clone();
                    for key in TOP_LEVEL_VALUES {
                        if coach.remove(*key).is_some() {
                            r.problem(&join("coach", key), misplaced_message("coach"));
                        }
                    }
                    config.coach = coach;
                }
                other => r.problem(
                    "coach",
                    format!("expected a table ([coach]), found a {}", other.type_str()),
                ),
            }
        }
        let problems: Vec<Problem> = r.into_problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(Invalid::new(path, problems))
        }
    }

    /// The config file read, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The directory of experiment files (`*.json`) that `smart run` works through.
    pub fn experiments_dir(&self) -> &Path {
        &self.experiments_dir
    }

    /// The directory of run state: journal, backups, lock file, run records.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The directory the dashboard is written to.
    pub fn dashboard_dir(&self) -> &Path {
        &self.dashboard_dir
    }

    /// The schedule, decision and guardrail defaults experiments inherit.
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// The `[coach]` table as written (the coach reads and checks it).
    pub fn coach(&self) -> &toml::Table {
        &self.coach
    }

    /// How the audit log and `metrics.csv` rotate (`[logs]`).
    pub fn logs(&self) -> LogRotation {
        self.logs
    }

    /// How long run records and their dashboard pages are kept (`[retention]`).
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Where `smart run` publishes Prometheus metrics (`[prometheus]`).
    pub fn prometheus(&self) -> &PrometheusConfig {
        &self.prometheus
    }

    /// The daily hours runs may happen in (`run_window`); `None` for any time.
    pub fn run_window(&self) -> Option<RunWindow> {
        self.run_window
    }
}

/// The top-level keys that hold a value (not a table): written after a `[table]` line, TOML puts
/// them in that table.
const TOP_LEVEL_VALUES: &[&str] = &[
    "experiments_dir",
    "state_dir",
    "dashboard_dir",
    "run_window",
];

/// What to say about a top-level key found in `[table]`.
fn misplaced_message(table: &str) -> String {
    format!(
        "is a top-level key, but it comes after the [{table}] line, so TOML reads it as part of \
         [{table}]; move it above the first [table] line (top-level keys must come before the \
         first table)"
    )
}

/// `value` (a table) without the top-level keys a user wrote below its header, each reported
/// with [`misplaced_message`] instead of as an unknown key.
fn misplaced(r: &mut Reader, table: &str, value: &Value) -> Value {
    let mut value = value.clone();
    if let Value::Object(map) = &mut value {
        for key in TOP_LEVEL_VALUES {
            if map.remove(*key).is_some() {
                r.problem(&join(table, key), misplaced_message(table));
            }
        }
    }
    value
}

/// Reads `[retention]`: `enabled` (a boolean), `max_age_days` (1 to 36500) and `max_runs` (1 to
/// 1000000); a key left out keeps its default.
fn read_retention(r: &mut Reader, value: &Value) -> Retention {
    let defaults = Retention::default();
    let Some(map) = r.object(value, "retention", RETENTION_KEYS, &|_| None) else {
        return defaults;
    };
    let enabled = map
        .get("enabled")
        .and_then(|v| r.boolean(v, "retention.enabled"));
    let max_age_days = map.get("max_age_days").and_then(|v| {
        r.integer(
            v,
            "retention.max_age_days",
            1,
            i64::from(Retention::MAX_AGE_DAYS),
        )
    });
    let max_runs = map
        .get("max_runs")
        .and_then(|v| r.integer(v, "retention.max_runs", 1, i64::from(Retention::MAX_RUNS)));
    let retention = Retention::new(
        max_age_days.map_or(defaults.max_age_days(), |n| n as u32),
        max_runs.map_or(defaults.max_runs(), |n| n as u32),
    );
    if enabled == Some(false) {
        retention.disabled()
    } else {
        retention
    }
}

/// Reads `[logs]`: `max_bytes` (at least 4096) and `keep` (1 to 10000); a key left out keeps
/// its default.
fn read_logs(r: &mut Reader, value: &Value) -> LogRotation {
    let defaults = LogRotation::default();
    let Some(map) = r.object(value, "logs", LOGS_KEYS, &|_| None) else {
        return defaults;
    };
    let max_bytes = map.get("max_bytes").and_then(|v| {
        r.integer(
            v,
            "logs.max_bytes",
            LogRotation::MIN_MAX_BYTES as i64,
            i64::MAX,
        )
    });
    let keep = map
        .get("keep")
        .and_then(|v| r.integer(v, "logs.keep", 1, i64::from(LogRotation::MAX_KEEP)));
    LogRotation::new(
        max_bytes.map_or(defaults.max_bytes(), |n| n as u64),
        keep.map_or(defaults.keep(), |n| n as u32),
    )
}

/// Reads `[defaults]`: each section is checked like the experiment's own, key by key.
fn read_defaults(r: &mut Reader, value: &Value) -> Defaults {
    let mut defaults = Defaults::default();
    let Some(map) = r.object(value, "defaults", DEFAULT_SECTIONS, &|_| None) else {
        return defaults;
    };
    for (section, value) in map {
        let field = join("defaults", section);
        let start = r.count();
        match section.as_str() {
            "schedule" => drop(validate::schedule(r, value, &field)),
            "decision" => drop(validate::decision(r, value, &field)),
            "guardrails" => drop(validate::guardrails(r, value, &field)),
            _ => continue,
        }
        if r.count() == start {
            defaults.sections.insert(section.clone(), value.clone());
        }
    }
    defaults
}

/// `invalid TOML at line L, column C: message`; a duplicate key also names its table and the
/// line that set it first, and says what to do.
fn toml_error_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let detail = if message == "duplicate key" {
                duplicate_key(text, line).unwrap_or_else(|| message.to_owned())
            } else {
                message.to_owned()
            };
            format!("invalid TOML at line {line}, column {column}: {detail}")
        }
        None => format!("invalid TOML: {message}"),
    }
}

/// For a duplicate key at `line` (1-based): which table or key is set twice, where it was set
/// first, and the fix. `None` when the line is not a header or a `key = value`.
fn duplicate_key(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line - 1)?.trim();
    let header = |l: &str| {
        let l = l.split('#').next().unwrap_or("").trim();
        (l.starts_with('[') && !l.starts_with("[["))
            .then(|| l.trim_matches(['[', ']']).trim().replace(' ', ""))
    };
    if let Some(table) = header(here) {
        let first = lines[..line - 1]
            .iter()
            .position(|l| header(l).as_deref() == Some(&table));
        let first = first.map_or_else(String::new, |i| format!(" (first on line {})", i + 1));
        return Some(format!(
            "duplicate table [{table}]: it is already defined above{first}; merge the two into \
             one (a TOML table may appear only once)"
        ));
    }
    let key = here.split('=').next()?.trim().replace(' ', "");
    if key.is_empty() {
        return None;
    }
    let table_line = lines[..line - 1].iter().rposition(|l| header(l).is_some());
    let table = table_line.and_then(|i| header(lines[i]));
    let start = table_line.map_or(0, |i| i + 1);
    let first = lines[start..line - 1].iter().position(|l| {
        l.split('=')
            .next()
            .is_some_and(|k| k.trim().replace(' ', "") == key)
    });
    let first = first.map_or_else(String::new, |i| {
        format!(" (first on line {})", start + i + 1)
    });
    let place = table.map_or_else(
        || "at the top level".to_owned(),
        |t| format!("in table [{t}]"),
    );
    Some(format!(
        "duplicate key `{key}` {place}{first}; keep one of the two"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &[&str]) {
        let got = AgentConfig::from_toml(text, Path::new("/etc/smart/smart.toml"));
        let got: Vec<String> = match got {
            Ok(_) => Vec::new(),
            Err(invalid) => invalid.problems().iter().map(Problem::to_string).collect(),
        };
        assert_eq!(got.len(), expected.len(), "{got:#?}");
        for (got, want) in got.iter().zip(expected) {
            assert!(got.contains(want), "{got:?} does not contain {want:?}");
        }
    }

    /// Issue 16: the quickstart's TOML block appended to what `smart init` wrote (which ends with
    /// `[coach]`) gave a bare "duplicate key" and then "coach.state_dir: unknown key".
    #[test]
    fn a_duplicate_names_its_table_and_a_misplaced_top_level_key_says_so() {
        check(
            "state_dir = \"a\"\n[defaults.schedule]\nblock_s = 5\n[coach]\n[defaults.schedule]\n",
            &[
                "invalid TOML at line 5, column 11: duplicate table [defaults.schedule]: it is \
               already defined above (first on line 2); merge the two into one",
            ],
        );
        check(
            "[defaults.schedule]\nblock_s = 5\nmax_cycles = 8\nblock_s = 6\n",
            &[
                "line 4, column 1: duplicate key `block_s` in table [defaults.schedule] (first on \
               line 2); keep one of the two",
            ],
        );
        check(
            "state_dir = \"a\"\nstate_dir = \"b\"\n",
            &["duplicate key `state_dir` at the top level (first on line 1)"],
        );
        let hint = "is a top-level key, but it comes after the [coach] line, so TOML reads it as \
                    part of [coach]; move it above the first [table] line (top-level keys must \
                    come before the first table)";
        check(
            "[coach]\nstate_dir = \"state\"\ndashboard_dir = \"state/dashboard\"\n",
            &[
                &format!("coach.state_dir: {hint}"),
                &format!("coach.dashboard_dir: {hint}"),
            ],
        );
        check(
            "[logs]\nkeep = 2\nexperiments_dir = \"e\"\n",
            &["logs.experiments_dir: is a top-level key, but it comes after the [logs] line"],
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_config_dir() {
        let config = AgentConfig::from_toml(
            "experiments_dir = \"experiments\"\nstate_dir = \"/var/lib/smart\"\n",
            Path::new("/etc/smart/smart.toml"),
        )
        .unwrap();
        assert_eq!(
            config.experiments_dir(),
            Path::new("/etc/smart/experiments")
        );
        assert_eq!(config.state_dir(), Path::new("/var/lib/smart"));
        assert_eq!(config.dashboard_dir(), Path::new(DEFAULT_DASHBOARD_DIR));
        assert_eq!(config.file(), Some(Path::new("/etc/smart/smart.toml")));
    }

    #[test]
    fn defaults_are_checked_and_kept() {
        let config = AgentConfig::from_toml(
            "[defaults.schedule]\nblock_s = 20\n[defaults.decision]\nconfidence = 0.99\n\
             [coach]\nmodel = \"anything\"\n",
            Path::new("smart.toml"),
        )
        .unwrap();
        assert_eq!(
            config.defaults().section("schedule").unwrap()["block_s"],
            20
        );
        assert_eq!(config.coach()["model"].as_str(), Some("anything"));
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        check(
            "experiments_dri = \"x\"",
            &["experiments_dri: unknown key; did you mean \"experiments_dir\"?"],
        );
        check("state_dir = 5", &["state_dir: expected a directory path"]);
        check(
            "[defaults.schedule]\nblock_s = 0\nmax_cycle = 3\n[defaults.decison]\n",
            &[
                "defaults.decison: unknown key; did you mean \"decision\"?",
                "defaults.schedule.max_cycle: unknown key; did you mean \"max_cycles\"?",
                "defaults.schedule.block_s: expected a number greater than 0",
            ],
        );
        check("coach = 3", &["coach: expected a table"]);
        check("a = [", &["invalid TOML at line 1, column"]);
    }

    #[test]
    fn logs_rotation_is_read_and_checked() {
        let logs = |text: &str| {
            AgentConfig::from_toml(text, Path::new("smart.toml"))
                .unwrap()
                .logs()
        };
        assert_eq!(logs(""), LogRotation::default());
        assert_eq!(
            logs("[logs]\nmax_bytes = 65536\nkeep = 3\n"),
            LogRotation::new(65536, 3)
        );
        assert_eq!(
            logs("[logs]\nkeep = 2\n"),
            LogRotation::new(LogRotation::DEFAULT_MAX_BYTES, 2)
        );
        check(
            "[logs]\nmax_bytes = 100\nkeep = 0\nkept = 1\n",
            &[
                "logs.kept: unknown key; did you mean \"keep\"?",
                "logs.max_bytes: expected a whole number from 4096 to",
                "logs.keep: expected a whole number from 1 to 10000, found 0",
            ],
        );
        check("logs = 5", &["logs: expected"]);
    }

    #[test]
    fn retention_is_read_and_checked() {
        let retention = |text: &str| {
            AgentConfig::from_toml(text, Path::new("smart.toml"))
                .unwrap()
                .retention()
        };
        assert_eq!(retention(""), Retention::new(30, 100));
        assert_eq!(
            retention("[retention]\nmax_age_days = 7\nmax_runs = 20\n"),
            Retention::new(7, 20)
        );
        assert_eq!(
            retention("[retention]\nmax_runs = 20\n"),
            Retention::new(Retention::DEFAULT_MAX_AGE_DAYS, 20)
        );
        let off = retention("[retention]\nenabled = false\nmax_runs = 5\n");
        assert!(!off.enabled());
        assert_eq!(off.max_runs(), 5);
        assert!(retention("[retention]\nenabled = true\n").enabled());
        check(
            "[retention]\nmax_age_days = 0\nmax_runs = -1\nenabled = 1\nmax_run = 3\n",
            &[
                "retention.max_run: unknown key; did you mean \"max_runs\"?",
                "retention.enabled: expected",
                "retention.max_age_days: expected a whole number from 1 to 36500, found 0",
                "retention.max_runs: expected a whole number from 1 to 1000000, found -1",
            ],
        );
        check("retention = 5", &["retention: expected"]);
    }

    #[test]
    fn fills_only_missing_keys() {
        let config = AgentConfig::from_toml(
            "[defaults.schedule]\nblock_s = 20\nsoak_s = 60\n",
            Path::new("s.toml"),
        )
        .unwrap();
        let mut experiment = serde_json::json!({"schedule": {"block_s": 5}});
        config.defaults().fill(&mut experiment);
        assert_eq!(
            experiment["schedule"],
            serde_json::json!({"block_s": 5, "soak_s": 60})
        );
        let mut bare = serde_json::json!({});
        config.defaults().fill(&mut bare);
        assert_eq!(bare["schedule"]["block_s"], 20);
    }
}
