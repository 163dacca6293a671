//! `smart demo` end to end: the real binary starts its embedded demo target, runs the three demo
//! experiments and the search, and leaves records, dashboard and audit log in the demo dir. The decisions
//! themselves depend on real timing (a loaded machine can leave the cache's win inconclusive), so
//! this test asserts what must hold whatever they are: the exit code says whether they were the
//! expected ones, and the demo's config holds exactly the kept values. The decisions are shown in
//! simulation (smart-decide) and by the demo itself in CI.

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
fn the_demo_serves_exactly_what_it_decided_and_exits_by_its_expectations() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("demo");
    let out = smart(temp.path(), &["demo", "--dir", "demo"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let as_expected = stdout.contains("every decision came out as expected");
    match out.status.code() {
        Some(0) => assert!(as_expected, "{stdout}\n{stderr}"),
        Some(3) => assert!(
            stderr.contains("the demo did not decide as expected"),
            "exit 3 only for decisions that differ, with the restore done\n{stdout}\n{stderr}"
        ),
        other => panic!("exit {other:?}\n{stdout}\n{stderr}"),
    }
    // The summary table, one row per experiment; UNEXPECTED marks exactly the decisions that
    // differ from the expectation, and an exit 0 has none.
    for row in [
        ("demo-cache", "cache-on", "keep"),
        ("demo-compression", "level-9", "revert"),
        ("demo-noop", "noop-b", "not kept"),
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(row.0) && l.contains(row.1) && l.contains(row.2)),
            "{row:?}\n{stdout}"
        );
    }
    assert_eq!(as_expected, !stdout.contains("UNEXPECTED"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "records in {}",
            dir.canonicalize().unwrap().join("state").display()
        )),
        "{stdout}"
    );
    // Progress went to stderr.
    assert!(stderr.contains("demo-cache"), "{stderr}");

    let history = records::history(&dir.join("state")).unwrap();
    let noop_run = history
        .iter()
        .find(|d| d.experiment == "demo-noop")
        .map(|d| d.run_id.clone());
    let decisions: Vec<(String, DecisionKind)> = history
        .iter()
        .filter(|d| d.experiment != "demo-search")
        .map(|d| (d.variant.clone(), d.decision))
        .collect();
    assert_eq!(decisions.len(), 3, "{decisions:?}");
    let variants: Vec<&str> = decisions.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(variants, ["cache-on", "level-9", "noop-b"]);
    if as_expected {
        assert_eq!(decisions[0].1, DecisionKind::Keep, "{decisions:?}");
        assert_eq!(decisions[1].1, DecisionKind::Revert, "{decisions:?}");
        assert!(!decisions[2].1.is_kept(), "{decisions:?}");
    }
    // What is served matches the decisions: each kept variant's value, the original otherwise.
    let kept = |i: usize| decisions[i].1.is_kept();
    assert_eq!(
        fs::read_to_string(dir.join("demo.toml"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>(),
        [
            if kept(0) {
                "cache = true"
            } else {
                "cache = false"
            },
            if kept(1) {
                "compression_level = 9"
            } else {
                "compression_level = 0"
            },
            if kept(2) {
                "noop = \"b\""
            } else {
                "noop = \"a\""
            },
        ],
        "{decisions:?}"
    );
    // The search: one row per candidate and one for its result; the search target serves the
    // level it found (level 1, as found, when the search did not finish).
    let found = stdout
        .lines()
        .filter(|l| l.starts_with("demo-search"))
        .find_map(|l| {
            l.split("found level=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned)
        });
    let found = found.unwrap_or_else(|| panic!("no search result row\n{stdout}"));
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("demo-search") && l.contains("#1 level=")),
        "{stdout}"
    );
    let served = fs::read_to_string(dir.join("demo-search.toml")).unwrap();
    assert!(
        served
            .lines()
            .any(|l| l == format!("compression_level = {found}")),
        "{served}"
    );
    if as_expected {
        let level: i64 = found.parse().unwrap();
        assert!((3..=7).contains(&level), "{stdout}");
    }
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
    let noop_run = noop_run.expect("demo-noop ran");
    let show = smart(temp.path(), &["show", &noop_run, "--config", config]);
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
    let json = smart(
        temp.path(),
        &["show", &noop_run, "--json", "--config", config],
    );
    assert!(json.status.success(), "{}", text(&json.stderr));
    let record: records::RunRecord = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(record.decisions.len(), 1, "demo-noop's run has one variant");
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
