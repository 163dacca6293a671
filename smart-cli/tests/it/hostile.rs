//! Hostile input and bad days through the real binary: a `template_file` that escapes the
//! experiment's directory, `smart status` after a recover, and audit loss that only the run
//! records or an anchor can reveal.

use std::fs;
use std::process::Command;

use serde_json::json;
use smart_testkit::require_tool;

use crate::faults::{Site, kill_mid_variant, serves, text};

#[test]
fn validate_refuses_a_template_file_outside_the_experiment_dir() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("exp")).unwrap();
    fs::write(
        dir.path().join("secret"),
        "root:hash-that-must-never-leak\n",
    )
    .unwrap();
    let experiment = json!({
        "name": "escape",
        "target": {"urls": ["http://127.0.0.1/"]},
        "apply": {"files": [{"path": "/etc/nginx/conf.d/x.conf", "template_file": "../secret"}]},
        "variants": [{"name": "a", "params": {}}]
    });
    let file = dir.path().join("exp/escape.json");
    fs::write(&file, experiment.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smart"))
        .args(["validate"])
        .arg(&file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(!shown.contains("hash-that-must-never-leak"), "{shown}");
    let secret = dir.path().join("secret").canonicalize().unwrap();
    for part in [
        "apply.files[0].template_file",
        "\"../secret\" resolves to",
        &secret.display().to_string(),
        "outside the experiment's directory",
        "copy it there",
    ] {
        assert!(shown.contains(part), "{part:?} not in {shown}");
    }
}

#[test]
fn a_template_swapped_for_a_symlink_after_validate_is_refused_by_run() {
    let dir = tempfile::tempdir().unwrap();
    let experiments = dir.path().join("experiments");
    fs::create_dir(&experiments).unwrap();
    fs::write(
        dir.path().join("secret"),
        "hash-that-must-never-leak {{ level }}\n",
    )
    .unwrap();
    fs::write(
        experiments.join("site.tmpl"),
        "gzip_comp_level {{ level }};\n",
    )
    .unwrap();
    let target = dir.path().join("etc-site.conf");
    fs::write(&target, "original\n").unwrap();
    let experiment = json!({
        "name": "swap",
        "target": {"urls": ["http://127.0.0.1:9/"]},
        "apply": {"files": [{"path": target, "template_file": "site.tmpl"}]},
        "variants": [{"name": "a", "params": {"level": 1}}]
    });
    fs::write(experiments.join("swap.json"), experiment.to_string()).unwrap();
    fs::write(dir.path().join("smart.toml"), crate::support::SMART_TOML).unwrap();
    let smart = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_smart"))
            .arg("--config")
            .arg(dir.path().join("smart.toml"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let validated = smart(&["validate"]);
    assert!(validated.status.success(), "{}", text(&validated));
    // Between `smart validate` and `smart run` the template becomes a symlink out.
    fs::remove_file(experiments.join("site.tmpl")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), experiments.join("site.tmpl")).unwrap();
    let run = smart(&["run", "swap"]);
    let shown = text(&run);
    assert_eq!(run.status.code(), Some(2), "{shown}");
    assert!(shown.contains("apply.files[0].template_file"), "{shown}");
    assert!(
        shown.contains("outside the experiment's directory"),
        "{shown}"
    );
    assert!(!shown.contains("hash-that-must-never-leak"), "{shown}");
    assert_eq!(fs::read_to_string(&target).unwrap(), "original\n");
}

#[test]
fn status_after_a_recover_no_longer_asks_for_one() {
    if !require_tool("nginx", "status_after_a_recover_no_longer_asks_for_one") {
        return;
    }
    let site = Site::start(json!({}));
    kill_mid_variant(&site);
    let status = site.smart(&["status"]);
    let before = text(&status);
    assert!(before.contains("is gone"), "{before}");
    assert!(before.contains("run `smart recover`"), "{before}");
    let recover = site.smart(&["recover"]);
    assert!(recover.status.success(), "{}", text(&recover));
    assert_eq!(serves(&site.nginx), "baseline");
    let after = text(&site.smart(&["status"]));
    assert!(!after.contains("run `smart recover`"), "{after}");
    assert!(after.contains("has been recovered"), "{after}");
    // The head of the chain is printed for an anchor outside the state dir.
    assert!(
        String::from_utf8_lossy(&recover.stderr).contains("smart: audit head "),
        "{}",
        text(&recover)
    );
}

#[test]
fn audit_files_deleted_while_runs_exist_do_not_verify() {
    if !require_tool(
        "nginx",
        "audit_files_deleted_while_runs_exist_do_not_verify",
    ) {
        return;
    }
    let site = Site::start(json!({}));
    kill_mid_variant(&site);
    assert!(site.smart(&["recover"]).status.success());
    let state = site.state();
    let intact = site.smart(&["audit", "verify"]);
    assert!(intact.status.success(), "{}", text(&intact));
    // The anchor a user keeps elsewhere (journald holds the same line from each run).
    let head = site.smart(&["audit", "head"]);
    let anchor = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    let with_anchor = site.smart(&["audit", "verify", "--expect-head", &anchor]);
    assert!(with_anchor.status.success(), "{}", text(&with_anchor));

    // Both files rewritten, consistently, one line shorter: only the anchor can tell.
    let log = fs::read_to_string(state.join("audit.jsonl")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let kept = &lines[..lines.len() - 1];
    let mut text_kept = kept.join("\n");
    text_kept.push('\n');
    let last = kept.last().unwrap();
    let last_seq = serde_json::from_str::<serde_json::Value>(last).unwrap()["seq"].clone();
    fs::write(state.join("audit.jsonl"), &text_kept).unwrap();
    fs::write(
        state.join("audit.head"),
        json!({"lines": kept.len(), "bytes": text_kept.len(),
               "last_hash": smart_core::audit::sha256_hex(last.as_bytes()), "last_seq": last_seq})
        .to_string(),
    )
    .unwrap();
    let rewritten = site.smart(&["audit", "verify"]);
    assert!(rewritten.status.success(), "{}", text(&rewritten));
    let caught = site.smart(&["audit", "verify", "--expect-head", &anchor]);
    assert_eq!(caught.status.code(), Some(3), "{}", text(&caught));
    assert!(text(&caught).contains("rewritten"), "{}", text(&caught));

    // Both files deleted while a run exists: not "intact: 0 lines".
    fs::remove_file(state.join("audit.jsonl")).unwrap();
    fs::remove_file(state.join("audit.head")).unwrap();
    let gone = site.smart(&["audit", "verify"]);
    let shown = text(&gone);
    assert_eq!(gone.status.code(), Some(3), "{shown}");
    assert!(shown.contains("no line in the chain"), "{shown}");
    assert!(shown.contains("faults"), "the run is named: {shown}");
}
