//! The field-by-field reader and plain serde must agree: a fully specified file (every key of the
//! format given) reads to the same definition both ways, and serializes back to itself.

use std::path::Path;

use serde_json::Value;
use smart_core::Defaults;
use smart_core::experiment::ExperimentSpec;
use smart_core::validate::validate_file;

use crate::support::repo_root;

fn fixture(name: &str) -> std::path::PathBuf {
    repo_root().join("smart-core/tests/fixtures").join(name)
}

fn check_round_trip(name: &str) {
    let path = fixture(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let written: Value = serde_json::from_str(&text).unwrap();

    let mut plain: ExperimentSpec = serde_json::from_str(&text).expect("plain serde reads it");
    assert_eq!(
        serde_json::to_value(&plain).unwrap(),
        written,
        "{name} must give every key (so no default hides a difference) and serialize back to itself"
    );

    let experiment = validate_file(&path, &Defaults::default()).expect("the reader accepts it");
    // The reader inlines template files; do the same to the plain result.
    for file in &mut plain.apply.files {
        if let Some(relative) = file.template_file.take() {
            let dir = path.parent().unwrap_or(Path::new("."));
            file.template = Some(std::fs::read_to_string(dir.join(relative)).unwrap());
        }
    }
    assert_eq!(
        experiment.definition(),
        &plain,
        "{name}: reader and serde disagree"
    );
}

#[test]
fn a_fully_specified_file_reads_the_same_through_the_reader_and_serde() {
    check_round_trip("full.json");
}

#[test]
fn a_matrix_file_reads_the_same_through_the_reader_and_serde() {
    check_round_trip("matrix.json");
}

#[test]
fn a_search_file_reads_the_same_through_the_reader_and_serde() {
    check_round_trip("search.json");
}

#[test]
fn an_access_log_file_reads_the_same_through_the_reader_and_serde() {
    check_round_trip("access-log.json");
}

#[test]
fn a_prometheus_file_reads_the_same_through_the_reader_and_serde() {
    check_round_trip("prometheus.json");
}

#[test]
fn the_fixtures_together_use_every_key_of_the_format() {
    let schema = serde_json::to_value(smart_core::experiment::schema()).unwrap();
    let mut keys = std::collections::BTreeSet::new();
    collect_property_names(&schema, &mut keys);
    let mut used = std::collections::BTreeSet::new();
    for name in [
        "full.json",
        "matrix.json",
        "access-log.json",
        "prometheus.json",
        "search.json",
    ] {
        let value: Value =
            serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap();
        collect_keys(&value, &mut used);
    }
    let missing: Vec<_> = keys.difference(&used).collect();
    assert!(missing.is_empty(), "keys no fixture gives: {missing:?}");
}

/// Every property name declared anywhere in the schema.
fn collect_property_names(schema: &Value, out: &mut std::collections::BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            map.values().for_each(|v| collect_property_names(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_property_names(v, out)),
        _ => {}
    }
}

/// Every object key in a JSON value, except the names in free-form maps (params, headers, matrix).
fn collect_keys(value: &Value, out: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                out.insert(key.clone());
                match (key.as_str(), v) {
                    // Free-form names, but a search's params hold domains with keys of the format.
                    ("params" | "headers" | "baseline" | "matrix" | "start", Value::Object(m)) => {
                        m.values().for_each(|v| collect_keys(v, out));
                    }
                    _ => collect_keys(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_keys(v, out)),
        _ => {}
    }
}
