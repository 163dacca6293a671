//! `smart demo` end to end: the real binary starts its embedded demo target, runs the three demo
//! experiments and reaches the expected decisions, with the records, dashboard and audit log in
//! the demo dir.

use std::fs;
use std::process::{Command, Output, Stdio};

use smart_core::records::{self, DecisionKind};

fn smart(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smart"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_demo_keeps_the_win_reverts_the_loss_and_keeps_no_noop() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("demo");
    let out = smart(temp.path(), &["demo", "--dir", "demo"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // The summary table, one row per experiment, and where the records went.
    for row in [
        ("demo-cache", "cache-on", "keep"),
        ("demo-compression", "level-9", "revert"),
        ("demo-noop", "noop-b", "not kept"),
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(row.0)
                && l.contains(row.1)
                && l.contains(row.2)
                && !l.contains("UNEXPECTED")),
            "{row:?}\n{stdout}"
        );
    }
    assert!(
        stdout.contains("every decision came out as expected"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "records in {}",
            dir.canonicalize().unwrap().join("state").display()
        )),
        "{stdout}"
    );
    // Progress went to stderr.
    assert!(stderr.contains("demo-cache"), "{stderr}");

    let decisions: Vec<(String, DecisionKind)> = records::history(&dir.join("state"))
        .unwrap()
        .into_iter()
        .map(|d| (d.variant, d.decision))
        .collect();
    assert_eq!(decisions.len(), 3, "{decisions:?}");
    assert_eq!(decisions[0], ("cache-on".to_owned(), DecisionKind::Keep));
    assert_eq!(decisions[1], ("level-9".to_owned(), DecisionKind::Revert));
    assert_eq!(decisions[2].0, "noop-b");
    assert!(!decisions[2].1.is_kept(), "{decisions:?}");
    // The cache stays on; the other two edits were put back.
    assert_eq!(
        fs::read_to_string(dir.join("demo.toml"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>(),
        ["cache = true", "compression_level = 0", "noop = \"a\""]
    );
    assert!(dir.join("dashboard/index.html").is_file());
    // The records are an ordinary state dir: the other commands read them.
    let config = dir.join("smart.toml");
    let config = config.to_str().unwrap();
    let audit = smart(temp.path(), &["--config", config, "audit", "verify"]);
    assert!(audit.status.success(), "{}", text(&audit.stderr));
    let history = smart(temp.path(), &["--config", config, "history"]);
    assert!(
        text(&history.stdout).contains("cache-on"),
        "{}",
        text(&history.stdout)
    );
    // `show` numbers cycles from 1, as the dashboard does, and prints the record as JSON.
    let show = smart(temp.path(), &["show", "last", "--config", config]);
    assert!(show.status.success(), "{}", text(&show.stderr));
    let first_block = text(&show.stdout)
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(first_block.contains(" 1.1 "), "{}", text(&show.stdout));
    assert!(
        !text(&show.stdout).contains(" 0.0 "),
        "{}",
        text(&show.stdout)
    );
    let json = smart(temp.path(), &["show", "last", "--json", "--config", config]);
    assert!(json.status.success(), "{}", text(&json.stderr));
    let record: records::RunRecord = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        record.decisions.len(),
        1,
        "the last run is the demo's last experiment"
    );
    assert_eq!(
        record.blocks[0].block.cycle, 0,
        "the record keeps 0-based fields"
    );
}

#[test]
fn the_demo_refuses_a_dir_that_holds_another_smart_toml() {
    let temp = tempfile::tempdir().unwrap();
    let mine = "state_dir = \"/var/lib/smart\"\n";
    fs::write(temp.path().join("smart.toml"), mine).unwrap();
    let out = smart(temp.path(), &["demo", "--dir", "."]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("was not written by `smart demo`"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(temp.path().join("smart.toml")).unwrap(),
        mine
    );
    assert!(!temp.path().join("demo.toml").exists());
}
