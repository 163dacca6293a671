//! The shipped examples must stay valid: every experiment in examples/experiments and the
//! example smart.toml.

use smart_core::validate::{validate_file, validate_paths};
use smart_core::{AgentConfig, Defaults};

use crate::support::repo_root;

#[test]
fn every_example_experiment_is_valid() {
    let dir = repo_root().join("examples/experiments");
    let report = validate_paths(&[dir], &Defaults::default());
    let problems: Vec<String> = report.invalid.iter().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "{problems:#?}");
    let names: Vec<&str> = report.experiments.iter().map(|e| e.name()).collect();
    assert!(names.len() >= 5, "{names:?}");
}

#[test]
fn the_example_config_loads_and_the_examples_validate_under_it() {
    let config = AgentConfig::load(&repo_root().join("examples/smart.toml")).unwrap();
    assert_eq!(
        config.experiments_dir(),
        repo_root().join("examples/experiments")
    );
    for file in smart_core::validate::experiment_files(config.experiments_dir()).unwrap() {
        validate_file(&file, config.defaults()).unwrap();
    }
}

#[test]
fn the_gzip_example_edits_the_existing_line_instead_of_adding_one() {
    let e = validate_file(
        &repo_root().join("examples/experiments/nginx-gzip-level.json"),
        &Defaults::default(),
    )
    .unwrap();
    let file = &e.apply().files[0];
    assert_eq!(file.path, "/etc/nginx/nginx.conf");
    let edit = file.edit.as_ref().expect("an edit, not a whole file");
    let pattern = regex::Regex::new(&edit.pattern).unwrap();
    let stock = "\tsendfile on;\n\tgzip on;\n\t# gzip_vary on;\n";
    assert_eq!(stock.lines().filter(|l| pattern.is_match(l)).count(), 1);
}
