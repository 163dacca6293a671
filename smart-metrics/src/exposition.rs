//! The Prometheus text exposition format (version 0.0.4), written by hand: a metric family is a
//! `# HELP` line, a `# TYPE` line and its samples, one per line.
//!
//! Escaping follows the format's rules: in `HELP` text a backslash and a line feed are written
//! `\\` and `\n`; in a label value a backslash, a double quote and a line feed are written `\\`,
//! `\"` and `\n`. Values are Go-style floats (`NaN`, `+Inf`, `-Inf`). Metric and label names
//! are fixed by this crate and checked in debug builds.

use std::fmt::Write as _;

/// The `Content-Type` of the text format, for `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a family's samples mean to Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only ever goes up (its name ends in `_total`), except when the records behind it shrink.
    Counter,
    /// Any value, as of now.
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// One metric family: a name, its help text, its kind and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    samples: Vec<Sample>,
}

/// One sample: label pairs (in the family's order) and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `(label name, label value)` pairs.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

impl Family {
    /// An empty family. A counter's name ends in `_total`.
    pub fn new(name: &'static str, kind: Kind, help: &'static str) -> Family {
        debug_assert!(valid_name(name), "bad metric name {name}");
        debug_assert!(
            kind != Kind::Counter || name.ends_with("_total"),
            "counter {name} must end in _total"
        );
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a sample.
    pub fn push(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        debug_assert!(labels.iter().all(|(name, _)| valid_name(name)));
        self.samples.push(Sample { labels, value });
    }

    /// Adds a sample without labels.
    pub fn with(mut self, value: f64) -> Family {
        self.push(Vec::new(), value);
        self
    }

    /// The name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The samples.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }
}

/// Writes `families` in the text format.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(family.help));
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
        for sample in &family.samples {
            out.push_str(family.name);
            if !sample.labels.is_empty() {
                out.push('{');
                for (i, (name, value)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{name}=\"{}\"", escape_label(value));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", number(sample.value));
        }
    }
    out
}

/// `[a-zA-Z_][a-zA-Z0-9_]*` (no colons: those are for recording rules).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A value as Prometheus parses it: integers without a fraction, `NaN`, `+Inf`, `-Inf`.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        // Rust's shortest round-trip form (`3`, `0.25`, `1e-7`), which Prometheus parses.
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(families: &[Family], expected: &str) {
        assert_eq!(render(families), expected);
    }

    #[test]
    fn renders_help_type_and_samples() {
        let mut runs = Family::new("smart_runs_total", Kind::Counter, "Runs.");
        runs.push(
            vec![("experiment", "gzip".into()), ("end", "completed".into())],
            3.0,
        );
        check(
            &[
                runs,
                Family::new("smart_lock_held", Kind::Gauge, "Lock.").with(0.0),
            ],
            "# HELP smart_runs_total Runs.\n# TYPE smart_runs_total counter\n\
             smart_runs_total{experiment=\"gzip\",end=\"completed\"} 3\n\
             # HELP smart_lock_held Lock.\n# TYPE smart_lock_held gauge\nsmart_lock_held 0\n",
        );
    }

    #[test]
    fn an_empty_family_has_only_its_header() {
        check(
            &[Family::new("smart_run_active", Kind::Gauge, "Active.")],
            "# HELP smart_run_active Active.\n# TYPE smart_run_active gauge\n",
        );
    }

    #[test]
    fn escapes_label_values_and_help() {
        let mut f = Family::new("smart_x", Kind::Gauge, "a \\ b\nc \"q\"");
        f.push(vec![("variant", "a\\b \"c\"\nd".into())], 1.0);
        check(
            &[f],
            "# HELP smart_x a \\\\ b\\nc \"q\"\n# TYPE smart_x gauge\n\
             smart_x{variant=\"a\\\\b \\\"c\\\"\\nd\"} 1\n",
        );
    }

    #[test]
    fn numbers_as_prometheus_reads_them() {
        for (value, text) in [
            (0.0, "0"),
            (3.0, "3"),
            (-0.125, "-0.125"),
            (1_767_225_600.5, "1767225600.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(number(value), text);
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("smart_runs_total"));
        assert!(valid_name("_x1"));
        assert!(!valid_name("1x"));
        assert!(!valid_name("smart-runs"));
        assert!(!valid_name(""));
    }
}
