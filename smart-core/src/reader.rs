//! A small reader over parsed JSON that collects a problem per wrong field instead of stopping at
//! the first, which is all serde can do. Callers read each field with a typed helper; every helper
//! returns `None` after recording what was wrong and what would be right.

use serde_json::{Map, Value};

use crate::problem::Problem;

/// Collects the problems found while reading one file.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    problems: Vec<Problem>,
}

/// `parent.key`, or `key` at the top level; keys that are not plain words are quoted.
pub(crate) fn join(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", Value::from(key)),
    }
}

/// `parent[i]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// How a JSON value is described in "found ..." messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// The known key closest to `key`, if any is close enough to be a likely typo.
pub(crate) fn closest<'k>(key: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let lower = key.to_ascii_lowercase();
    known
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(&lower, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

impl Reader {
    /// A reader with no problems yet.
    pub(crate) fn new() -> Self {
        Reader::default()
    }

    /// Records a problem with `field`.
    pub(crate) fn problem(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(Problem::new(field, message));
    }

    /// How many problems were recorded so far (to tell whether a section added any).
    pub(crate) fn count(&self) -> usize {
        self.problems.len()
    }

    /// The problems recorded, in order.
    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// Records `expected ..., found ...` for `value`.
    pub(crate) fn wrong_type(&mut self, field: &str, expected: &str, value: &Value) {
        self.problem(
            field,
            format!("expected {expected}, found {}", describe(value)),
        );
    }

    /// An object whose keys are all in `known`; each unknown key is a problem of its own, with a
    /// "did you mean" suggestion when one is close, or the key's home when it belongs elsewhere.
    pub(crate) fn object<'v>(
        &mut self,
        value: &'v Value,
        field: &str,
        known: &[&str],
        elsewhere: &dyn Fn(&str) -> Option<String>,
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(map) = value else {
            let expected = format!("an object with keys like \"{}\"", known[0]);
            self.wrong_type(field, &expected, value);
            return None;
        };
        for key in map.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let hint = match (closest(key, known.iter().copied()), elsewhere(key)) {
                (Some(close), _) => format!("did you mean \"{close}\"?"),
                (None, Some(home)) => format!("it belongs in `{home}`"),
                (None, None) => format!("the keys here are: {}", known.join(", ")),
            };
            self.problem(&join(field, key), format!("unknown key; {hint}"));
        }
        Some(map)
    }

    /// An object with free-form keys (params, headers, matrix), checked by the caller.
    pub(crate) fn map<'v>(
        &mut self,
        value: &'v Value,
        field: &str,
        expected: &str,
    ) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.wrong_type(field, expected, other);
                None
            }
        }
    }

    /// The value of a required key, or a "missing" problem that says what to add.
    pub(crate) fn required<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        parent: &str,
        key: &str,
        example: &str,
    ) -> Option<&'v Value> {
        let value = map.get(key);
        if value.is_none() {
            self.problem(
                &join(parent, key),
                format!("missing; add it, e.g. \"{key}\": {example}"),
            );
        }
        value
    }

    /// A string.
    pub(crate) fn string<'v>(
        &mut self,
        value: &'v Value,
        field: &str,
        expected: &str,
    ) -> Option<&'v str> {
        match value {
            Value::String(s) => Some(s),
            other => {
                self.wrong_type(field, expected, other);
                None
            }
        }
    }

    /// A boolean.
    pub(crate) fn boolean(&mut self, value: &Value, field: &str) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            other => {
                self.wrong_type(field, "true or false", other);
                None
            }
        }
    }

    /// An array.
    pub(crate) fn array<'v>(
        &mut self,
        value: &'v Value,
        field: &str,
        expected: &str,
    ) -> Option<&'v [Value]> {
        match value {
            Value::Array(items) => Some(items),
            other => {
                self.wrong_type(field, expected, other);
                None
            }
        }
    }

    /// A number within `[min, max]` (`min_exclusive` makes the lower bound strict).
    pub(crate) fn number(&mut self, value: &Value, field: &str, range: Range) -> Option<f64> {
        let Some(n) = value.as_f64().filter(|_| value.is_number()) else {
            self.wrong_type(field, &format!("a number {}", range.describe()), value);
            return None;
        };
        if !range.contains(n) {
            let hint = range.hint.map(|h| format!("; {h}")).unwrap_or_default();
            self.problem(
                field,
                format!("expected a number {}, found {n}{hint}", range.describe()),
            );
            return None;
        }
        Some(n)
    }

    /// An integer within `[min, max]`.
    pub(crate) fn integer(
        &mut self,
        value: &Value,
        field: &str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let expected = format!("a whole number from {min} to {max}");
        let Some(n) = value.as_i64() else {
            match value {
                Value::Number(n) if n.is_f64() => self.problem(
                    field,
                    format!("expected {expected}, found the fraction {n}"),
                ),
                Value::Number(n) => {
                    self.problem(field, format!("expected {expected}, found {n}"));
                }
                other => self.wrong_type(field, &expected, other),
            }
            return None;
        };
        if n < min || n > max {
            self.problem(field, format!("expected {expected}, found {n}"));
            return None;
        }
        Some(n)
    }
}

/// The allowed range of a number, with an optional hint for out-of-range values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    min: f64,
    min_exclusive: bool,
    max: f64,
    max_exclusive: bool,
    hint: Option<&'static str>,
}

impl Range {
    /// Greater than 0 and at most `max`.
    pub(crate) fn positive(max: f64) -> Self {
        Range {
            min: 0.0,
            min_exclusive: true,
            max,
            max_exclusive: false,
            hint: None,
        }
    }

    /// From `min` to `max`, both included.
    pub(crate) fn closed(min: f64, max: f64) -> Self {
        Range {
            min,
            min_exclusive: false,
            max,
            max_exclusive: false,
            hint: None,
        }
    }

    /// Makes the lower bound exclusive.
    pub(crate) fn above_min(mut self) -> Self {
        self.min_exclusive = true;
        self
    }

    /// Makes the upper bound exclusive.
    pub(crate) fn below_max(mut self) -> Self {
        self.max_exclusive = true;
        self
    }

    /// Adds a hint shown when a value is out of range.
    pub(crate) fn hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }

    pub(crate) fn contains(&self, n: f64) -> bool {
        let above = if self.min_exclusive {
            n > self.min
        } else {
            n >= self.min
        };
        let below = if self.max_exclusive {
            n < self.max
        } else {
            n <= self.max
        };
        above && below && n.is_finite()
    }

    fn describe(&self) -> String {
        let (min, max) = (self.min, self.max);
        match (self.min_exclusive, self.max_exclusive) {
            (false, false) => format!("from {min} to {max}"),
            (false, true) => format!("at least {min} and below {max}"),
            (true, false) => format!("greater than {min} and at most {max}"),
            (true, true) => format!("greater than {min} and below {max}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_quote_keys_that_are_not_words() {
        assert_eq!(join("", "name"), "name");
        assert_eq!(join("target", "rate_per_s"), "target.rate_per_s");
        assert_eq!(join("target.headers", "X-Smart"), "target.headers.X-Smart");
        assert_eq!(join("target.headers", "a b"), "target.headers[\"a b\"]");
        assert_eq!(index("variants", 2), "variants[2]");
    }

    #[test]
    fn suggests_close_keys_only() {
        let known = ["urls", "method", "rate_per_s", "timeout_ms"];
        assert_eq!(closest("rate_per_sec", known), Some("rate_per_s"));
        assert_eq!(closest("Method", known), Some("method"));
        assert_eq!(closest("url", known), Some("urls"));
        assert_eq!(closest("zzz", known), None);
    }

    #[test]
    fn ranges_describe_themselves() {
        assert_eq!(
            Range::positive(10.0).describe(),
            "greater than 0 and at most 10"
        );
        assert_eq!(
            Range::closed(0.0, 100.0).below_max().describe(),
            "at least 0 and below 100"
        );
        assert_eq!(
            Range::closed(0.0, 1.0).above_min().below_max().describe(),
            "greater than 0 and below 1"
        );
        assert!(!Range::positive(10.0).contains(0.0));
        assert!(Range::positive(10.0).contains(10.0));
    }
}
