//! The committed JSON Schema of the experiment format must match the types, accept every valid
//! file and reject the common mistakes. Regenerate it with
//! `SMART_BLESS=1 cargo test -p smart-core --test it schema`.

use crate::support::repo_root;

#[test]
fn the_committed_schema_is_up_to_date() {
    let path = repo_root().join("docs/experiment.schema.json");
    let fresh = serde_json::to_string_pretty(&smart_core::experiment::schema()).unwrap() + "\n";
    if std::env::var_os("SMART_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is out of date with the types in smart-core/src/experiment.rs; regenerate it with \
         `SMART_BLESS=1 cargo test -p smart-core --test it schema` and commit it",
        path.display()
    );
}

/// Problems the committed schema finds in `value`.
fn schema_errors(value: &serde_json::Value) -> Vec<String> {
    let path = repo_root().join("docs/experiment.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn every_valid_file_satisfies_the_schema() {
    let mut files =
        smart_core::validate::experiment_files(&repo_root().join("examples/experiments")).unwrap();
    files.push(repo_root().join("smart-core/tests/fixtures/full.json"));
    files.push(repo_root().join("smart-core/tests/fixtures/matrix.json"));
    for file in files {
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let errors = schema_errors(&value);
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
}

#[test]
fn the_schema_rejects_what_validation_rejects_field_by_field() {
    use crate::support::{base, with};
    use serde_json::json;
    for (path, bad) in [
        ("target.rate_per_sec", json!(50)),
        ("target.rate_per_s", json!(0)),
        ("target.method", json!("POST")),
        ("apply.validate", json!("nginx -t")),
        ("apply.files.0.path", json!("conf.d/x.conf")),
        ("variants.0.name", json!("Cache 1K")),
        ("variants.0.params.Max", json!(1)),
        ("schedule.max_cycles", json!(0)),
        ("decision.min_improvement_pct", json!(100)),
        ("decision.confidence", json!(95)),
        ("guardrails.max_p99_increase_pct", json!(-1)),
    ] {
        let value = with(base(), path, Some(bad));
        assert!(
            !schema_errors(&value).is_empty(),
            "the schema accepts {path} = {}",
            value
        );
        assert!(
            crate::support::validate_text(&value.to_string()).is_err(),
            "{path}"
        );
    }
}
