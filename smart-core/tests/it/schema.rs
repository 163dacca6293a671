//! The committed JSON Schema of the experiment format must match the types.
//! Regenerate it with `SMART_BLESS=1 cargo test -p smart-core --test it schema`.

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
