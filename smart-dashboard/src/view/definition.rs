//! The experiment definition as run, on its run's page: description, every arm's params, the
//! settings, and the whole JSON, with secret header values and URL passwords redacted.

use serde::Serialize;

use super::parts::{Fact, fact};
use crate::load::Run;

/// One parameter of one arm in the definition.
#[derive(Debug, Serialize)]
pub(crate) struct ParamRow {
    pub(crate) arm: String,
    pub(crate) name: String,
    pub(crate) value: String,
}

/// The definition as run: description, the params of every arm, the schedule, decision and
/// guardrail settings, and the whole JSON (secret header values and URL passwords redacted).
pub(super) fn definition(run: &Run) -> (String, Vec<ParamRow>, Vec<Fact>, String) {
    let Some(def) = &run.definition else {
        return (String::new(), Vec::new(), Vec::new(), String::new());
    };
    let mut def = def.clone();
    redact(&mut def, None);
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let mut params = Vec::new();
    let mut push_params = |arm: &str, value: Option<&serde_json::Value>| {
        if let Some(map) = value.and_then(|v| v.as_object()) {
            for (name, value) in map {
                params.push(ParamRow {
                    arm: arm.to_owned(),
                    name: name.clone(),
                    value: text(value),
                });
            }
        }
    };
    push_params("baseline", def.get("baseline"));
    for v in def
        .get("variants")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let name = v.get("name").map(text).unwrap_or_default();
        push_params(&name, v.get("params"));
    }
    if let Some(matrix) = def.get("matrix").and_then(|m| m.as_object()) {
        for (name, values) in matrix {
            params.push(ParamRow {
                arm: "matrix".to_owned(),
                name: name.clone(),
                value: text(values),
            });
        }
    }
    let mut settings = Vec::new();
    if let Some(urls) = def.pointer("/target/urls").and_then(|u| u.as_array()) {
        let urls: Vec<String> = urls.iter().map(text).collect();
        settings.push(fact("target", urls.join(", ")));
    }
    for section in ["schedule", "decision", "guardrails"] {
        if let Some(map) = def.get(section).and_then(|s| s.as_object()) {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k} = {}", text(v)))
                .collect();
            settings.push(fact(section, items.join(", ")));
        }
    }
    let description = def.get("description").map(text).unwrap_or_default();
    let json = serde_json::to_string_pretty(&def).unwrap_or_default();
    (description, params, settings, json)
}

/// Replaces secret header values and passwords in URLs, anywhere in the definition.
fn redact(value: &mut serde_json::Value, key: Option<&str>) {
    match value {
        serde_json::Value::String(s) => {
            if key.is_some_and(smart_core::redact::is_secret_header) {
                *s = smart_core::redact::REDACTED.to_owned();
            } else if let Some(clean) = without_credentials(s) {
                *s = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| redact(v, None)),
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                redact(v, Some(k));
            }
        }
        _ => {}
    }
}

/// `url` with its credentials hidden, or `None` when it has none to hide.
fn without_credentials(url: &str) -> Option<String> {
    let clean = smart_core::redact::hide_url_credentials(url);
    (clean != url).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_redacted() {
        assert_eq!(
            without_credentials("http://u:p@h/x").as_deref(),
            Some("http://***@h/x")
        );
        assert_eq!(without_credentials("http://h/x@y"), None);
        assert_eq!(
            without_credentials("http://token@h/").as_deref(),
            Some("http://***@h/")
        );
        let mut def = serde_json::json!({"target": {"headers": {"Authorization": "Bearer s"}}});
        redact(&mut def, None);
        assert_eq!(
            def.pointer("/target/headers/Authorization").unwrap(),
            "<redacted>"
        );
    }
}
