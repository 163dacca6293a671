//! The committed JSON Schemas of the coach protocol must match the types. Regenerate them with
//! `SMART_BLESS=1 cargo test -p smart-coach --test it schema`.

use std::path::PathBuf;

/// The repository's root.
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Asserts that `value` satisfies the committed schema `docs/<file>`.
pub(crate) fn assert_valid(file: &str, value: &serde_json::Value) {
    let text = std::fs::read_to_string(repo_root().join("docs").join(file)).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{file}: {errors:#?}\n{value:#}");
}

#[test]
fn the_committed_schemas_are_up_to_date() {
    for (file, schema) in [
        (
            "coach-results.schema.json",
            smart_coach::protocol::results_schema(),
        ),
        (
            "coach-advice-request.schema.json",
            smart_coach::protocol::advice_request_schema(),
        ),
        (
            "coach-advice.schema.json",
            smart_coach::protocol::advice_schema(),
        ),
    ] {
        let path = repo_root().join("docs").join(file);
        let fresh = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if std::env::var_os("SMART_BLESS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "docs/{file} is out of date with the types in smart-coach/src/protocol.rs; regenerate it with \
             `SMART_BLESS=1 cargo test -p smart-coach --test it schema` and commit it"
        );
    }
}

#[test]
fn the_advice_schema_accepts_exactly_the_three_actions() {
    use serde_json::json;
    for action in ["revert", "extend", "keep"] {
        assert_valid(
            "coach-advice.schema.json",
            &json!({"action": action, "reason": "r"}),
        );
    }
    let text = std::fs::read_to_string(repo_root().join("docs/coach-advice.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for bad in [
        json!({"action": "ship", "reason": "r"}),
        json!({"action": "keep"}),
        json!({"reason": "r"}),
    ] {
        assert!(!validator.is_valid(&bad), "{bad}");
    }
}
