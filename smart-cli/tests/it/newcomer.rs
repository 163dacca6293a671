//! What a newcomer meets in the first hour (issue 16): the README's first command, the config
//! `smart init` writes, and error messages that say things once.

use std::path::Path;

use crate::support::smart;

fn repo_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::read_to_string(root.join(path)).unwrap()
}

#[test]
fn the_readme_says_the_first_build_takes_minutes_before_the_minute_of_demo() {
    let readme = repo_file("README.md")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let demo = readme.find("-- demo").expect("the demo command");
    let build = readme
        .find("first build takes about 10 minutes")
        .expect("the README does not say how long the first build takes");
    // Said right under the command, before the demo section.
    assert!(build > demo && build < readme.find("## The demo").unwrap());
}

#[test]
fn init_describes_the_coach_as_docs_coach_api_does() {
    let dir = tempfile::tempdir().unwrap();
    let out = smart(dir.path(), &["init", "site"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let config = std::fs::read_to_string(dir.path().join("site/smart.toml")).unwrap();
    assert!(!config.contains("LLM"), "{config}");
    assert!(!config.contains("suggests experiments"), "{config}");
    assert!(
        config.contains("may weigh in on the ones the statistics could not settle"),
        "{config}"
    );
    // The same role as the coach's own documentation gives it.
    assert!(repo_file("docs/coach-api.md").contains("may weigh in on the"));
}

#[test]
fn a_missing_run_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smart.toml"), "state_dir = \"state\"\n").unwrap();
    let out = smart(dir.path(), &["show", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("there is no run `bogus`").count(),
        1,
        "said more than once:\n{err}"
    );
    assert!(err.contains("smart history"), "no next step:\n{err}");
}

#[test]
fn a_negative_duration_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = smart(
        dir.path(),
        &["probe", "http://127.0.0.1:9/", "--duration=-2s"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("durations cannot be negative"), "{err}");
    assert!(!err.contains("unknown unit"), "{err}");
}

/// Without a usable nginx, `smart init` still writes the stock example, exits 0, and names every
/// key to edit (the detector itself is tested against a real nginx by the quickstart test).
#[test]
fn init_without_nginx_names_what_to_edit() {
    let dir = tempfile::tempdir().unwrap();
    let out = init_without_nginx(dir.path(), "site");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "no local nginx detected",
        "`/nonexistent/nginx` was not found",
        "target.urls",
        "apply.files[0].path",
        "apply.validate",
        "apply.reload",
    ] {
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
    let experiment =
        std::fs::read_to_string(dir.path().join("site/experiments/nginx-file-cache.json")).unwrap();
    assert_eq!(
        experiment,
        repo_file("examples/experiments/nginx-file-cache.json")
    );
    let config = std::fs::read_to_string(dir.path().join("site/smart.toml")).unwrap();
    assert!(config.contains("\nstate_dir = \"state\"\n"), "{config}");
    assert!(
        config.contains("\ndashboard_dir = \"state/dashboard\"\n"),
        "{config}"
    );
}

/// Issue 16: `smart status | grep -q x` and `smart history | head -1` close the pipe early, and
/// smart panicked ("failed printing to stdout: Broken pipe"). It now exits 0 without a word.
#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smart.toml"), "state_dir = \"state\"\n").unwrap();
    for command in ["status", "history"] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_smart"))
            .arg(command)
            .current_dir(dir.path())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{command}: {out:?}");
        assert!(
            out.stderr.is_empty(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `--quiet` leaves only the final result line; `--verbose` adds debug logs; both are global
/// flags that `--help` documents, and they exclude each other (exit 2).
#[test]
fn quiet_and_verbose_are_global_flags_with_a_defined_meaning() {
    let dir = tempfile::tempdir().unwrap();
    let init = init_without_nginx(dir.path(), ".");
    assert!(init.status.success(), "{init:?}");
    let normal = smart(dir.path(), &["validate"]);
    assert!(String::from_utf8_lossy(&normal.stdout).contains(": ok: \"nginx-file-cache\""));
    let quiet = smart(dir.path(), &["validate", "--quiet"]);
    assert_eq!(
        String::from_utf8_lossy(&quiet.stdout),
        "1 experiment file valid\n"
    );
    assert!(quiet.stderr.is_empty(), "{quiet:?}");
    let verbose = smart(dir.path(), &["-v", "validate"]);
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(
        stderr.contains("DEBUG reading the agent config"),
        "{stderr}"
    );
    assert_eq!(verbose.stdout, normal.stdout);
    let both = smart(dir.path(), &["-q", "-v", "validate"]);
    assert_eq!(both.status.code(), Some(2));
    let help = smart(dir.path(), &["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--quiet") && help.contains("--verbose"),
        "{help}"
    );
}

/// `smart init --state-dir state DIR` where no nginx is found (a binary that does not exist).
fn init_without_nginx(cwd: &Path, dir: &str) -> std::process::Output {
    smart(
        cwd,
        &[
            "init",
            "--nginx",
            "/nonexistent/nginx",
            "--state-dir",
            "state",
            dir,
        ],
    )
}

/// `smart calibrate --json` prints the stored calibration, where it went and what the schedule
/// can decide, as its committed schema says (measured on a real nginx; the figures themselves are
/// whatever this noisy machine gives, so only their presence and form are checked).
#[test]
fn calibrate_prints_json_that_matches_its_schema() {
    if !smart_testkit::require_tool("nginx", "calibrate_prints_json_that_matches_its_schema") {
        return;
    }
    let nginx = smart_testkit::Nginx::start("    location / { }").unwrap();
    std::fs::write(nginx.html_dir().join("index.html"), "hello\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smart.toml"), "state_dir = \"state\"\n").unwrap();
    let experiment = serde_json::json!({
        "name": "calib",
        "target": {"urls": [nginx.url("/")], "rate_per_s": 50},
        "apply": {"files": [{"path": dir.path().join("x.conf"), "template": "{{ v }}"}]},
        "baseline": {"v": "a"},
        "variants": [{"name": "b", "params": {"v": "b"}}],
        "schedule": {"cooldown_s": 0.2, "block_s": 1, "max_cycles": 8, "soak_s": 1,
                     "max_duration_s": 600}
    });
    std::fs::write(dir.path().join("calib.json"), experiment.to_string()).unwrap();
    let out = smart(
        dir.path(),
        &["calibrate", "calib.json", "--pairs", "4", "--json"],
    );
    assert!(out.status.success(), "{out:?}");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    crate::support::assert_schema("calibrate", &value);
    // Of the 4 pairs asked for, those a neighbour's burst disturbed are left out of the noise
    // (at least 2 stay): how many depends on the machine, not on smart.
    let pairs = value["pairs"].as_u64().unwrap();
    assert!((2..=4).contains(&pairs), "{value}");
    let stored = std::fs::read_to_string(value["file"].as_str().unwrap()).unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["pair_sd"], value["pair_sd"]);
}
