//! Field-by-field reading of each section of an experiment file: types, ranges and formats, one
//! problem per wrong field. Each section that reads cleanly is then deserialized with serde into
//! the types of [`crate::experiment`], so serde's defaults stay the single description of the
//! format; a serde error at that point means this reader is laxer than the types and is reported
//! as a problem rather than ignored.
//!
//! This file holds what every section uses (names, optional keys, the typed hand-over); each
//! section has its own file: [`keys`] (the key lists), [`target`], [`apply`], [`argv`],
//! [`http`] (URLs, headers, status lists), [`variants`] (variants, params, matrix) and [`rules`]
//! (schedule, decision, guardrails).

mod apply;
mod argv;
mod http;
mod keys;
mod rules;
mod target;
mod variants;

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::reader::Reader;

pub(crate) use apply::apply;
pub(crate) use argv::{Placeholders, argv};
pub(crate) use http::http_url;
pub(crate) use keys::*;
pub(crate) use rules::{decision, guardrails, schedule};
pub(crate) use target::target;
pub use variants::MAX_VARIANTS;
pub(crate) use variants::{matrix, param_name, params, variants};

/// The longest experiment or variant name.
pub const MAX_NAME_LEN: usize = 64;

/// The value of an optional key; `null` counts as absent, as it does for serde's `Option`.
pub(crate) fn optional<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    map.get(key).filter(|v| !v.is_null())
}

/// Deserializes a section that read cleanly; a serde error means this reader missed a rule.
pub(crate) fn typed<T: DeserializeOwned>(
    r: &mut Reader,
    start: usize,
    value: &Value,
    field: &str,
) -> Option<T> {
    if r.count() > start {
        return None;
    }
    match serde_json::from_value(value.clone()) {
        Ok(typed) => Some(typed),
        Err(e) => {
            r.problem(
                field,
                format!("{e}; (smart's field checks missed this: please report it)"),
            );
            None
        }
    }
}

/// Checks the placeholder syntax of a template on its own (before any arm renders it), so a
/// malformed `{{` is reported with its line and column even when other sections have problems.
fn template_syntax(r: &mut Reader, text: &str, field: &str, origin: Option<&Path>) {
    if let Err(e) = crate::template::placeholders(text) {
        let at = match origin {
            Some(file) => format!("line {}, column {} of {}", e.line, e.column, file.display()),
            None => format!("line {}, column {}", e.line, e.column),
        };
        r.problem(field, format!("{at}: {}", e.message));
    }
}

/// The `format_version` key: only version 1 exists.
pub(crate) fn format_version(r: &mut Reader, value: &Value) {
    let field = "format_version";
    match value.as_u64() {
        Some(v) if v == u64::from(crate::experiment::FORMAT_VERSION) => {}
        Some(v) => r.problem(
            field,
            format!(
                "this smart reads format_version {}, found {v}; write {} or upgrade smart",
                crate::experiment::FORMAT_VERSION,
                crate::experiment::FORMAT_VERSION
            ),
        ),
        None => r.wrong_type(field, "the number 1", value),
    }
}

/// A name of an experiment or variant: `[a-z0-9_-]`, 1 to 64 characters.
pub(crate) fn name<'v>(r: &mut Reader, value: &'v Value, field: &str) -> Option<&'v str> {
    let name = r.string(value, field, "a name like \"cache-10k\"")?;
    if name.is_empty() {
        r.problem(
            field,
            "is empty; give a short name like \"cache-10k\" ([a-z0-9_-])",
        );
        return None;
    }
    if name.len() > MAX_NAME_LEN {
        r.problem(
            field,
            format!(
                "is {} characters long; keep names to {MAX_NAME_LEN} characters",
                name.len()
            ),
        );
        return None;
    }
    if !is_name(name) {
        r.problem(
            field,
            format!(
                "\"{name}\" may only hold lowercase letters, digits, '-' and '_' (it is used in \
                 file names); write \"{}\"",
                suggest_name(name)
            ),
        );
        return None;
    }
    Some(name)
}

/// Whether `name` is `[a-z0-9_-]+`.
pub(crate) fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
}

/// `text` made into a name: lowercased, other characters as `-`, runs of `-` collapsed.
pub(crate) fn suggest_name(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = if matches!(c, 'a'..='z' | '0'..='9' | '_') {
            c
        } else {
            '-'
        };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "x".to_owned()
    } else {
        trimmed.chars().take(MAX_NAME_LEN).collect()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn names_and_suggestions() {
        assert!(is_name("cache-10k_b"));
        assert!(!is_name("Cache"));
        assert!(!is_name(""));
        assert_eq!(suggest_name("Cache 10k!"), "cache-10k");
        assert_eq!(suggest_name("!!!"), "x");
    }

    #[test]
    fn every_key_has_one_home_per_section() {
        for (section, keys) in SECTIONS {
            let unique: BTreeSet<_> = keys.iter().collect();
            assert_eq!(unique.len(), keys.len(), "duplicate key in {section}");
        }
        assert_eq!(key_home("block_s").as_deref(), Some("schedule"));
        assert_eq!(key_home("nothing"), None);
    }

    /// The property names of an object schema (shared with `search.rs`'s key-list test).
    pub(crate) fn properties(schema: schemars::Schema) -> BTreeSet<String> {
        schema.as_value()["properties"]
            .as_object()
            .expect("an object schema")
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn the_key_lists_match_the_serde_types() {
        use crate::experiment::*;
        use schemars::schema_for;
        let from_types = [
            ("", properties(schema_for!(ExperimentSpec))),
            ("target", properties(schema_for!(Target))),
            ("apply", properties(schema_for!(Apply))),
            ("apply.files[]", properties(schema_for!(FileSpec))),
            ("apply.files[].edit", properties(schema_for!(Edit))),
            ("apply.command", properties(schema_for!(CommandSpec))),
            ("apply.health", properties(schema_for!(Health))),
            ("apply.live_check", properties(schema_for!(LiveCheck))),
            ("variants[]", properties(schema_for!(VariantSpec))),
            ("schedule", properties(schema_for!(Schedule))),
            ("decision", properties(schema_for!(Decision))),
            ("guardrails", properties(schema_for!(Guardrails))),
            ("measure", properties(schema_for!(Measure))),
            ("measure.command", properties(schema_for!(MeasureCommand))),
            ("measure.access_log", properties(schema_for!(AccessLog))),
            ("measure.prometheus", properties(schema_for!(Prometheus))),
        ];
        assert_eq!(from_types.len(), SECTIONS.len());
        for ((section, keys), (type_section, type_keys)) in SECTIONS.iter().zip(from_types) {
            assert_eq!(*section, type_section);
            let keys: BTreeSet<String> = keys.iter().map(|k| (*k).to_owned()).collect();
            assert_eq!(
                keys, type_keys,
                "the reader's keys of `{section}` differ from the type's"
            );
        }
    }
}
