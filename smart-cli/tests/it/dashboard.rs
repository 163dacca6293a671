//! `smart dashboard` through the real binary: renders the dashboard dir named in smart.toml,
//! and a broken record is a runtime failure that names the file.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn smart(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smart"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run the smart binary")
}

fn config(dir: &Path) {
    fs::write(
        dir.join("smart.toml"),
        "state_dir = \"state\"\ndashboard_dir = \"www\"\n",
    )
    .unwrap();
}

#[test]
fn renders_the_dashboard_dir_of_the_config() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path());
    let out = smart(dir.path(), &["dashboard"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("dashboard written to ") && stdout.contains("www: 0 runs"),
        "{stdout}"
    );
    let index = fs::read_to_string(dir.path().join("www/index.html")).unwrap();
    assert!(index.contains("No experiment has run yet"));
    for asset in ["dashboard.css", "dashboard.js"] {
        assert!(dir.path().join("www").join(asset).is_file(), "{asset}");
    }

    let out = smart(dir.path(), &["dashboard", "--out", "elsewhere"]);
    assert!(out.status.success());
    assert!(dir.path().join("elsewhere/index.html").is_file());
}

#[test]
fn a_broken_run_record_exits_3_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path());
    let run = dir.path().join("state/runs/20261126T000000Z-x-0000");
    fs::create_dir_all(&run).unwrap();
    fs::write(run.join("run.json"), "{ torn").unwrap();
    let out = smart(dir.path(), &["dashboard"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("run.json"), "{stderr}");
    assert!(
        !dir.path().join("www/index.html").exists(),
        "nothing half-rendered"
    );
}
