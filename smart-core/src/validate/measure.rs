//! The `measure` section: which source measures each block, and that source's settings.
//!
//! The rules across sections live here too: the probe needs `target.urls`; any other source
//! makes `target` optional, since nothing sends requests to it.

use serde_json::Value;

use crate::experiment::{Measure, SourceKind, Target};
use crate::reader::{Range, Reader, index, join};

use super::fields::{
    MEASURE_ACCESS_LOG_KEYS, MEASURE_COMMAND_KEYS, MEASURE_KEYS, MEASURE_PROMETHEUS_KEYS,
    Placeholders, argv, key_home, optional, typed,
};

/// The source names, as written in the file.
const SOURCES: &[SourceKind] = &[
    SourceKind::Probe,
    SourceKind::Command,
    SourceKind::AccessLog,
    SourceKind::Prometheus,
];

/// How many scrape intervals a block must span at least: a rate over fewer samples is mostly
/// extrapolation.
pub(crate) const MIN_SCRAPES_PER_BLOCK: f64 = 4.0;

/// Each source's own settings key (the probe's are in `target`).
const SETTINGS: &[(SourceKind, &str, &str)] = &[
    (
        SourceKind::Command,
        "command",
        "{\"argv\": [\"/usr/local/bin/smart-pgbench\", \"--clients\", \"4\"]}",
    ),
    (
        SourceKind::AccessLog,
        "access_log",
        "{\"path\": \"/var/log/nginx/access.log\"}",
    ),
    (
        SourceKind::Prometheus,
        "prometheus",
        "{\"url\": \"http://127.0.0.1:9090\", \"latency_quantile\": ..., \"latency_mean\": ..., \
         \"requests\": ..., \"error_ratio\": ...}",
    ),
];

/// The example a missing or wrong `measure.command.argv` is shown.
const ARGV_EXAMPLE: &str = "[\"/usr/local/bin/smart-pgbench\", \"--clients\", \"4\"]";

/// Environment variables a measuring command may not be given: smart sets them itself.
fn reserved_env(name: &str) -> bool {
    name == "PATH" || name == "LANG" || name.starts_with("SMART_")
}

/// Reads the `measure` section (absent: the probe, the default).
pub(crate) fn measure(r: &mut Reader, value: Option<&Value>) -> Option<Measure> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Some(Measure::default());
    };
    let field = "measure";
    let start = r.count();
    let map = r.object(value, field, MEASURE_KEYS, &key_home)?;
    let source = match map.get("source") {
        None => Some(SourceKind::Probe),
        Some(v) => source(r, v, &join(field, "source")),
    };
    for (kind, key, example) in SETTINGS {
        let path = join(field, key);
        match (source, optional(map, key)) {
            (Some(s), None) if s == *kind => r.problem(
                &path,
                format!(
                    "missing; the {} source needs its settings, like {example}",
                    kind.as_str()
                ),
            ),
            (Some(s), Some(v)) if s == *kind => match kind {
                SourceKind::AccessLog => access_log(r, v, &path),
                SourceKind::Prometheus => prometheus(r, v, &path),
                _ => measure_command(r, v, &path),
            },
            (Some(other), Some(_)) => r.problem(
                &path,
                format!(
                    "is only read by the {} source, and measure.source is \"{}\"; remove it, \
                     or set \"source\": \"{}\"",
                    kind.as_str(),
                    other.as_str(),
                    kind.as_str()
                ),
            ),
            _ => {}
        }
    }
    typed(r, start, value, field)
}

fn source(r: &mut Reader, value: &Value, field: &str) -> Option<SourceKind> {
    let names: Vec<&str> = SOURCES.iter().map(|s| s.as_str()).collect();
    let text = r.string(
        value,
        field,
        "\"probe\", \"command\", \"access_log\" or \"prometheus\"",
    )?;
    if let Some(kind) = SOURCES.iter().find(|s| s.as_str() == text) {
        return Some(*kind);
    }
    r.problem(
        field,
        format!(
            "\"{text}\" is not a metric source this version knows; use one of {}",
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    None
}

fn measure_command(r: &mut Reader, value: &Value, field: &str) {
    let Some(map) = r.object(value, field, MEASURE_COMMAND_KEYS, &key_home) else {
        return;
    };
    if let Some(v) = r.required(map, field, "argv", ARGV_EXAMPLE) {
        argv(
            r,
            v,
            &join(field, "argv"),
            ARGV_EXAMPLE,
            Placeholders::Forbidden,
        );
    }
    if let Some(env) = map.get("env") {
        let path = join(field, "env");
        if let Some(vars) = r.map(env, &path, "an object like {\"PGPORT\": \"5433\"}") {
            for (name, v) in vars {
                let var = join(&path, name);
                let valid = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                    && !name.as_bytes()[0].is_ascii_digit();
                if !valid {
                    r.problem(
                        &var,
                        "is not an environment variable name; use capitals, digits and `_`, \
                         like \"PGPORT\"",
                    );
                } else if reserved_env(name) {
                    r.problem(
                        &var,
                        "is set by smart itself (PATH, LANG and SMART_*); remove it, or give \
                         the program's full path in argv instead of changing PATH",
                    );
                }
                if let Some(text) = r.string(v, &var, "a string")
                    && text.contains('\0')
                {
                    r.problem(&var, "contains a NUL character, which no variable can hold");
                }
            }
        }
    }
    if let Some(v) = map.get("grace_s") {
        r.number(
            v,
            &join(field, "grace_s"),
            Range::positive(3600.0).hint("seconds past the block's end, e.g. 30"),
        );
    }
}

/// `measure.access_log`.
fn access_log(r: &mut Reader, value: &Value, field: &str) {
    let Some(map) = r.object(value, field, MEASURE_ACCESS_LOG_KEYS, &key_home) else {
        return;
    };
    if let Some(v) = r.required(map, field, "path", "\"/var/log/nginx/access.log\"") {
        let path = join(field, "path");
        if let Some(text) = r.string(
            v,
            &path,
            "an absolute path like \"/var/log/nginx/access.log\"",
        ) && (!text.starts_with('/') || text.contains('\0'))
        {
            r.problem(
                &path,
                format!("\"{text}\" is not an absolute path; give the log's full path, like \"/var/log/nginx/access.log\""),
            );
        }
    }
    if let Some(v) = optional(map, "path_prefix") {
        let path = join(field, "path_prefix");
        if let Some(text) = r.string(v, &path, "a path like \"/api/\"")
            && (!text.starts_with('/') || text.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            r.problem(
                &path,
                format!("\"{text}\" is not a URL path; give one that starts with `/` and has no spaces, like \"/api/\""),
            );
        }
    }
    if let Some(v) = map.get("fill_rps") {
        r.number(
            v,
            &join(field, "fill_rps"),
            Range::positive(100.0).hint(
                "requests per second the fill-in probe sends to target.urls, e.g. 5 (for more, \
                 use the probe source)",
            ),
        );
    }
    if let Some(v) = optional(map, "method") {
        let path = join(field, "method");
        if let Some(text) = r.string(v, &path, "a method like \"GET\"")
            && (text.is_empty() || !text.bytes().all(|b| b.is_ascii_uppercase()))
        {
            r.problem(
                &path,
                format!("\"{text}\" is not an HTTP method; write it in capitals, like \"GET\""),
            );
        }
    }
}

/// The PromQL examples, by key, for messages.
const PROMQL: &[(&str, &str, bool)] = &[
    (
        "latency_quantile",
        "histogram_quantile($quantile, sum by (le) (rate(http_request_duration_seconds_bucket[$window])))",
        true,
    ),
    (
        "latency_mean",
        "sum(rate(http_request_duration_seconds_sum[$window])) / sum(rate(http_request_duration_seconds_count[$window]))",
        false,
    ),
    (
        "requests",
        "sum(increase(http_requests_total[$window]))",
        false,
    ),
    (
        "error_ratio",
        "sum(increase(http_requests_total{code=~\"5..\"}[$window])) / sum(increase(http_requests_total[$window]))",
        false,
    ),
];

/// `measure.prometheus`.
fn prometheus(r: &mut Reader, value: &Value, field: &str) {
    let Some(map) = r.object(value, field, MEASURE_PROMETHEUS_KEYS, &key_home) else {
        return;
    };
    if let Some(v) = r.required(map, field, "url", "\"http://127.0.0.1:9090\"") {
        super::fields::http_url(r, v, &join(field, "url"));
    }
    for (key, example, quantile) in PROMQL {
        let path = join(field, key);
        let Some(v) = r.required(map, field, key, &Value::from(*example).to_string()) else {
            continue;
        };
        let Some(text) = r.string(v, &path, "a PromQL expression") else {
            continue;
        };
        if !text.contains("$window") {
            r.problem(
                &path,
                format!(
                    "has no `$window`; write the range as [$window] so it covers exactly each \
                     block, like {example}"
                ),
            );
        }
        if *quantile && !text.contains("$quantile") {
            r.problem(
                &path,
                format!(
                    "has no `$quantile`, which smart sets to 0.5, 0.9 and 0.99; like {example}"
                ),
            );
        }
        if text.contains('\0') || text.contains('\n') {
            r.problem(
                &path,
                "holds a NUL or a line break; write the expression on one line",
            );
        }
    }
    if let Some(v) = map.get("scrape_interval_s") {
        r.number(
            v,
            &join(field, "scrape_interval_s"),
            Range::positive(3600.0).hint("the server's scrape_interval in seconds, e.g. 15"),
        );
    }
    if let Some(v) = optional(map, "auth_header_env") {
        let path = join(field, "auth_header_env");
        if let Some(name) = r.string(
            v,
            &path,
            "an environment variable name like \"SMART_PROMETHEUS_AUTH\"",
        ) && (name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'))
        {
            r.problem(
                &path,
                "is not an environment variable name; use capitals, digits and `_`, like \
                 \"SMART_PROMETHEUS_AUTH\" (the variable holds the header's value, never the file)",
            );
        }
    }
}

/// Checks across `measure` and `schedule`: a Prometheus block must span at least
/// [`MIN_SCRAPES_PER_BLOCK`] scrapes.
pub(crate) fn check_schedule(r: &mut Reader, measure: &Measure, block_s: f64) {
    let Some(p) = measure
        .prometheus
        .as_ref()
        .filter(|_| measure.source == SourceKind::Prometheus)
    else {
        return;
    };
    let needed = MIN_SCRAPES_PER_BLOCK * p.scrape_interval_s;
    if block_s < needed {
        r.problem(
            "schedule.block_s",
            format!(
                "is {block_s} s, shorter than {MIN_SCRAPES_PER_BLOCK} scrapes of \
                 measure.prometheus.scrape_interval_s {} s: a rate over so few samples is mostly \
                 extrapolation; raise block_s to at least {needed}, or scrape more often",
                p.scrape_interval_s
            ),
        );
    }
}

/// Checks across `measure` and `target` for the access log's fill-in: its requests go to
/// `target.urls`, which must be given and pass the log filter, or they would never be counted.
pub(crate) fn check_fill(r: &mut Reader, measure: &Measure, target: &Target) {
    let Some(spec) = measure
        .access_log
        .as_ref()
        .filter(|_| measure.source == SourceKind::AccessLog)
    else {
        return;
    };
    if spec.fill_rps.is_none() {
        return;
    }
    if target.urls.is_empty() {
        r.problem(
            "measure.access_log.fill_rps",
            "sends the fill-in's requests to target.urls, which is not given; add \
             \"target\": {\"urls\": [\"http://127.0.0.1/\"]} with a URL of the server that \
             writes the log",
        );
    }
    if let Some(prefix) = &spec.path_prefix {
        for (i, url) in target.urls.iter().enumerate() {
            let path = url_path(url);
            if !path.starts_with(prefix.as_str()) {
                r.problem(
                    &index("target.urls", i),
                    format!(
                        "its path {path} does not start with measure.access_log.path_prefix \
                         {prefix}, so the fill-in's requests would not be counted; give a URL \
                         under {prefix}"
                    ),
                );
            }
        }
    }
    if let Some(method) = &spec.method
        && method != target.method.as_str()
    {
        r.problem(
            "measure.access_log.method",
            format!(
                "is {method}, but the fill-in sends target.method {}, so its requests would \
                 not be counted; set target.method to {method} (GET or HEAD) or remove the \
                 method filter",
                target.method.as_str()
            ),
        );
    }
}

/// The path (with its query) of an http(s) URL, as an access log records it.
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => &rest[i..],
        _ => "/",
    }
}

/// Whether `target` (and its `urls`) must be given: only the probe sends requests to it. An
/// unreadable `measure` counts as the probe, so a broken file is still told what the probe needs.
pub(crate) fn needs_target(measure: Option<&Measure>) -> bool {
    measure.is_none_or(|m| m.source == SourceKind::Probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> (Option<Measure>, Vec<String>) {
        let value: Value = serde_json::from_str(json).unwrap();
        let mut r = Reader::new();
        let m = measure(&mut r, Some(&value));
        let problems = r.into_problems().iter().map(|p| p.to_string()).collect();
        (m, problems)
    }

    #[test]
    fn absent_or_empty_is_the_probe() {
        let mut r = Reader::new();
        assert_eq!(measure(&mut r, None), Some(Measure::default()));
        let (m, problems) = read("{}");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(m.unwrap().is_default());
        assert!(needs_target(None));
    }

    #[test]
    fn a_command_source_reads_with_its_defaults() {
        let (m, problems) = read(
            r#"{"source": "command", "command": {"argv": ["/bin/bench", "-c", "4"],
                "env": {"PGPORT": "5433"}}}"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let m = m.unwrap();
        assert_eq!(m.source, SourceKind::Command);
        let c = m.command.as_ref().unwrap();
        assert_eq!(c.argv, ["/bin/bench", "-c", "4"]);
        assert_eq!(c.grace_s, 30.0);
        assert_eq!(c.env["PGPORT"], "5433");
        assert!(!needs_target(Some(&m)));
    }

    #[test]
    fn every_mistake_is_named_with_its_fix() {
        let cases = [
            (
                r#"{"source": "prom"}"#,
                "measure.source",
                "\"probe\", \"command\"",
            ),
            (r#"{"source": "command"}"#, "measure.command", "missing"),
            (
                r#"{"command": {"argv": ["x"]}}"#,
                "measure.command",
                "set \"source\": \"command\"",
            ),
            (
                r#"{"source": "command", "command": {"argv": ["sh", "-c", "pgbench"]}}"#,
                "measure.command.argv",
                "without a shell",
            ),
            (
                r#"{"source": "command", "command": {"argv": ["pgbench -T 10"]}}"#,
                "measure.command.argv",
                "each word as its own string",
            ),
            (
                r#"{"source": "command", "command": {"argv": ["x"], "env": {"SMART_ARM": "a"}}}"#,
                "measure.command.env.SMART_ARM",
                "set by smart itself",
            ),
            (
                r#"{"source": "command", "command": {"argv": ["x"], "env": {"pg port": "a"}}}"#,
                "measure.command.env",
                "capitals",
            ),
            (
                r#"{"source": "command", "command": {"argv": ["x"], "grace_s": 0}}"#,
                "measure.command.grace_s",
                "greater than 0",
            ),
            (
                r#"{"source": "command", "command": {"argv": ["x"], "timeout": 3}}"#,
                "measure.command.timeout",
                "unknown",
            ),
        ];
        for (json, field, words) in cases {
            let (m, problems) = read(json);
            assert!(m.is_none(), "{json} read cleanly");
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with(field) && p.contains(words)),
                "{json}: expected `{field}` … `{words}` in {problems:?}"
            );
        }
    }
}
