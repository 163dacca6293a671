//! A search experiment through the real binary: `smart validate` accepts the shipped example, and
//! `smart run` (which does not drive searches yet) refuses a named one and skips it otherwise,
//! touching nothing.

use crate::support::smart;

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("exp")).unwrap();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/experiments/nginx-gzip-search.json"
    );
    std::fs::copy(example, dir.path().join("exp/nginx-gzip-search.json")).unwrap();
    std::fs::write(
        dir.path().join("smart.toml"),
        "experiments_dir = \"exp\"\nstate_dir = \"state\"\n",
    )
    .unwrap();
    dir
}

#[test]
fn the_search_example_validates() {
    let dir = setup();
    let out = smart(dir.path(), &["validate", "exp/nginx-gzip-search.json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn run_refuses_a_named_search_and_skips_it_in_the_queue() {
    let dir = setup();
    let out = smart(dir.path(), &["run", "nginx-gzip-search"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is a search, which this version of smart validates but does not run"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("state").exists(),
        "nothing written before bad input is reported"
    );

    let out = smart(dir.path(), &["run", "--once"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.matches("is a search").count(), 1, "{stderr}");
}
