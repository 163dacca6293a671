//! `smart validate`, `smart init`, help and exit codes, through the real binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

/// Runs `smart` with `args` in `cwd`.
fn smart(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smart"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run the smart binary")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every file under `dir` with its length and modification time, to prove nothing was written.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            files.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
        }
    }
    files
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A temp dir holding a copy of the example experiments in `experiments/`.
fn with_examples() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("experiments");
    std::fs::create_dir(&to).unwrap();
    for entry in std::fs::read_dir(repo_root().join("examples/experiments")).unwrap() {
        let from = entry.unwrap().path();
        std::fs::copy(&from, to.join(from.file_name().unwrap())).unwrap();
    }
    dir
}

#[test]
fn a_valid_directory_exits_0_and_shows_the_durations() {
    let dir = with_examples();
    let before = snapshot(dir.path());
    let out = smart(dir.path(), &["validate", "experiments"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let files: Vec<&str> = text.lines().filter(|l| !l.starts_with("  ")).collect();
    // One line per shipped example, whatever their number.
    let examples = std::fs::read_dir(dir.path().join("experiments"))
        .unwrap()
        .count();
    assert!(examples >= 10, "the examples were copied");
    assert_eq!(files.len(), examples, "{text}");
    for line in files {
        assert!(line.contains(": ok: "), "{line}");
        assert!(line.contains("worst case "), "{line}");
        assert!(line.contains("expected "), "{line}");
    }
    // Each file is followed by what its schedule can decide.
    assert!(
        text.lines()
            .any(|l| l.starts_with("  decision: ") && l.contains("is kept in 80 % of runs")),
        "{text}"
    );
    assert!(
        text.contains(
            "experiments/nginx-file-cache.json: ok: \"nginx-file-cache\", 2 variants; worst case 17m 30s (1050 s, max_duration_s 3600), expected 14m 5s (845 s)"
        ),
        "{text}"
    );
    assert_eq!(stderr(&out), "");
    assert_eq!(snapshot(dir.path()), before, "validate must write nothing");
}

#[test]
fn five_errors_give_five_messages_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cache.json");
    std::fs::write(
        &file,
        r#"{
  "name": "cache",
  "target": {"urls": ["http://127.0.0.1/"], "method": "POST", "rate_per_sec": 50},
  "apply": {
    "files": [{"path": "/etc/nginx/conf.d/cache.conf", "template": "open_file_cache max={{ max }};\n"}],
    "validate": "nginx -t"
  },
  "variants": [{"name": "a", "params": {"max": 1000}}, {"name": "a", "params": {"max": 10}}],
  "decision": {"confidence": 95}
}"#,
    )
    .unwrap();
    let before = snapshot(dir.path());
    let out = smart(dir.path(), &["validate", "cache.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    let problems: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("cache.json: "))
        .collect();
    assert_eq!(problems.len(), 5, "{err}");
    for want in [
        "cache.json: target.method: expected \"GET\" or \"HEAD\", found \"POST\"",
        "cache.json: target.rate_per_sec: unknown key; did you mean \"rate_per_s\"?",
        "cache.json: apply.validate: expected an array of strings like [\"nginx\", \"-t\"], found a string",
        "cache.json: variants[1].name: \"a\" is also the name of variants[0]",
        "cache.json: decision.confidence: expected a number greater than 0 and below 1, found 95",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(want)),
            "missing {want:?} in {err}"
        );
    }
    assert!(
        err.ends_with("smart: error: 5 problems in 1 of 1 file; nothing was changed\n"),
        "{err}"
    );
    assert_eq!(snapshot(dir.path()), before, "validate must write nothing");
}

#[test]
fn malformed_json_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.json"), "{\n  \"name\": \"x\",\n}\n").unwrap();
    let out = smart(dir.path(), &["validate", "bad.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("bad.json: invalid JSON at line 3, column 1: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn init_then_validate_passes_and_init_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let out = smart(dir.path(), &["init", "site"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("wrote site/smart.toml"),
        "{}",
        stdout(&out)
    );
    let site = dir.path().join("site");
    assert!(site.join("experiments/nginx-file-cache.json").is_file());

    // In the directory, ./smart.toml is found and its experiments_dir checked.
    let out = smart(&site, &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("nginx-file-cache.json: ok: "),
        "{}",
        stdout(&out)
    );
    // From elsewhere, --config points at it.
    let out = smart(dir.path(), &["--config", "site/smart.toml", "validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let config = site.join("smart.toml");
    std::fs::write(&config, "# mine\n").unwrap();
    let before = snapshot(&site);
    let out = smart(dir.path(), &["init", "site"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("site/smart.toml already exists; smart init never overwrites"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");
    assert_eq!(snapshot(&site), before);
}

#[test]
fn a_bad_config_is_reported_with_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("smart.toml"),
        "experiment_dir = \"x\"\n[defaults.schedule]\nblock_s = -1\n",
    )
    .unwrap();
    let out = smart(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("smart.toml: experiment_dir: unknown key; did you mean \"experiments_dir\"?"),
        "{err}"
    );
    assert!(
        err.contains("smart.toml: defaults.schedule.block_s: expected a number greater than 0"),
        "{err}"
    );

    let out = smart(dir.path(), &["--config", "missing.toml", "validate", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("missing.toml: cannot read the file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn validate_checks_the_coach_as_run_would() {
    let dir = with_examples();
    let config = dir.path().join("smart.toml");
    std::fs::write(
        &config,
        "experiments_dir = \"experiments\"\n[coach]\nurl = \"ftp://coach\"\nmode = \"advice\"\n\
         token_env = \"SMART_TEST_UNSET_TOKEN\"\n",
    )
    .unwrap();
    let before = snapshot(dir.path());
    let out = smart(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    for want in [
        "smart.toml: coach.url: ",
        "smart.toml: coach.mode: ",
        "smart.toml: coach.token_env: the environment variable SMART_TEST_UNSET_TOKEN is not set",
        "smart: error: 3 problems in [coach] of ",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // The experiments themselves were still checked and found valid.
    assert!(stdout(&out).contains(": ok: "), "{}", stdout(&out));
    assert_eq!(snapshot(dir.path()), before, "validate must write nothing");

    // A valid [coach] passes.
    std::fs::write(
        &config,
        "experiments_dir = \"experiments\"\n[coach]\nurl = \"http://127.0.0.1:9/\"\n\
         token_env = \"SMART_TEST_TOKEN\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smart"))
        .arg("validate")
        .current_dir(dir.path())
        .env("SMART_TEST_TOKEN", "t0ken-for-the-test-only-0123456789")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stdout(&out).contains("t0ken"), "the token was printed");
}

#[test]
fn validate_without_paths_or_config_says_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    if Path::new("/etc/smart/smart.toml").exists() {
        return; // This machine has a system config, which validate would use.
    }
    let out = smart(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no FILE|DIR given and no config file found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_version_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = smart(dir.path(), &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for want in [
        "validate",
        "init",
        "--config <PATH>",
        "Exit codes:",
        "4  another smart run holds the lock",
    ] {
        assert!(help.contains(want), "{want:?} missing from {help}");
    }
    let out = smart(dir.path(), &["help", "validate"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("FILE: field: what is wrong; what would be right"));
    let out = smart(dir.path(), &["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("smart "));
    for usage in [&["validate", "--bogus"][..], &["frobnicate"], &[]] {
        let out = smart(dir.path(), usage);
        assert_eq!(out.status.code(), Some(2), "{usage:?}: {}", stderr(&out));
    }
}
