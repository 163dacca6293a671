//! `template_file` may only read a file inside the experiment's directory, after following every
//! symlink: `..` escapes, absolute paths and symlinks out are refused by validation, and so is a
//! file swapped for a symlink after an earlier validation passed (`smart run` validates again).

use std::path::{Path, PathBuf};

use serde_json::json;
use smart_core::Defaults;
use smart_core::validate::validate_file;

use crate::support::{base, with};

/// An experiment dir `exp/` holding `cache.json` whose first file reads `template_file`, and a
/// secret beside it (outside `exp/`).
struct Setup {
    _root: tempfile::TempDir,
    exp_dir: PathBuf,
    file: PathBuf,
    secret: PathBuf,
}

const SECRET: &str = "root:$6$hash-that-must-never-leak:19000:0:99999:7:::\n";

fn setup(template_file: &str) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let exp_dir = root.path().join("exp");
    std::fs::create_dir(&exp_dir).unwrap();
    let secret = root.path().join("shadow");
    std::fs::write(&secret, SECRET).unwrap();
    std::fs::write(
        exp_dir.join("good.conf"),
        "open_file_cache max={{ max }} inactive={{ inactive }};\n",
    )
    .unwrap();
    let input = with(
        base(),
        "apply.files.0",
        Some(json!({"path": "/etc/nginx/conf.d/c.conf", "template_file": template_file})),
    );
    let file = exp_dir.join("cache.json");
    std::fs::write(&file, input.to_string()).unwrap();
    Setup {
        exp_dir,
        file,
        secret,
        _root: root,
    }
}

/// Validation fails with exactly one problem on `apply.files[0].template_file` that contains each
/// of `expected`, and never the secret's content.
fn refused(file: &Path, expected: &[&str]) {
    let err = validate_file(file, &Defaults::default()).unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("hash-that-must-never-leak"), "{text}");
    let problems = err.problems();
    let problem = problems
        .iter()
        .find(|p| p.field() == "apply.files[0].template_file")
        .unwrap_or_else(|| panic!("no template_file problem in {text}"));
    for part in expected {
        assert!(problem.message().contains(part), "{part:?} not in {text}");
    }
}

#[test]
fn a_template_inside_the_directory_is_read() {
    let s = setup("good.conf");
    let experiment = validate_file(&s.file, &Defaults::default()).unwrap();
    assert_eq!(
        experiment.apply().files[0].template.as_deref(),
        Some("open_file_cache max={{ max }} inactive={{ inactive }};\n")
    );
    // A symlink that stays inside is fine.
    std::os::unix::fs::symlink("good.conf", s.exp_dir.join("link.conf")).unwrap();
    let s2 = with(
        base(),
        "apply.files.0",
        Some(json!({"path": "/etc/nginx/conf.d/c.conf", "template_file": "link.conf"})),
    );
    std::fs::write(&s.file, s2.to_string()).unwrap();
    validate_file(&s.file, &Defaults::default()).unwrap();
}

#[test]
fn dot_dot_escapes_are_refused() {
    let s = setup("../shadow");
    refused(
        &s.file,
        &[
            "\"../shadow\" resolves to",
            "outside the experiment's directory",
            "copy it there",
        ],
    );
    let deep = setup("../../../../../../../../etc/passwd");
    refused(
        &deep.file,
        &["/etc/passwd", "outside the experiment's directory"],
    );
}

#[test]
fn absolute_paths_are_refused() {
    let s = setup("/etc/shadow");
    refused(
        &s.file,
        &[
            "\"/etc/shadow\" is an absolute path",
            "name it relative to the experiment file",
        ],
    );
    // Even an absolute path that names a file inside the directory: the experiment must not
    // depend on where it is installed.
    let inside = setup("x");
    let path = inside.exp_dir.join("good.conf");
    let input = with(
        base(),
        "apply.files.0",
        Some(json!({"path": "/etc/nginx/conf.d/c.conf", "template_file": path})),
    );
    std::fs::write(&inside.file, input.to_string()).unwrap();
    refused(&inside.file, &["is an absolute path"]);
}

#[test]
fn symlinks_pointing_outside_are_refused() {
    let s = setup("innocent.conf");
    std::os::unix::fs::symlink(&s.secret, s.exp_dir.join("innocent.conf")).unwrap();
    refused(
        &s.file,
        &[
            "\"innocent.conf\" resolves to",
            &s.secret.canonicalize().unwrap().display().to_string(),
        ],
    );
    // A symlinked directory on the way out counts too.
    let d = setup("sub/shadow");
    std::os::unix::fs::symlink(d.secret.parent().unwrap(), d.exp_dir.join("sub")).unwrap();
    refused(&d.file, &["outside the experiment's directory"]);
}

#[test]
fn a_file_swapped_for_a_symlink_after_validation_is_refused_when_read_again() {
    let s = setup("tmpl.conf");
    let template = s.exp_dir.join("tmpl.conf");
    std::fs::write(
        &template,
        "open_file_cache max={{ max }} inactive={{ inactive }};\n",
    )
    .unwrap();
    // What `smart validate` sees.
    validate_file(&s.file, &Defaults::default()).unwrap();
    // Swapped before `smart run`, which validates again and reads the file at that moment.
    std::fs::remove_file(&template).unwrap();
    std::os::unix::fs::symlink(&s.secret, &template).unwrap();
    refused(&s.file, &["\"tmpl.conf\" resolves to", "outside"]);
}
