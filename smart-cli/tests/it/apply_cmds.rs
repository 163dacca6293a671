//! `smart revert`, `smart recover` and `smart audit verify` through the real binary, on a state
//! dir configured in smart.toml.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use smart_apply::{Applier, Arm, Config, RunLock};
use smart_core::experiment::{Apply, Params};

const ORIGINAL: &str = "worker_processes 1;\n";

/// A temp dir with `smart.toml` (state in `state/`) and a config file `site.conf`.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("smart.toml"), "state_dir = \"state\"\n").unwrap();
    fs::write(dir.path().join("site.conf"), ORIGINAL).unwrap();
    dir
}

fn smart(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smart"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run the smart binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Applies variant `v1` to `site.conf` and then keeps it or leaves the run interrupted.
fn apply_v1(dir: &Path, keep: bool) {
    let apply: Apply = serde_json::from_value(serde_json::json!({
        "files": [{"path": dir.join("site.conf"), "template": "worker_processes {{ n }};\n"}],
        "reload": ["true"],
    }))
    .unwrap();
    let params: Params = [("n".to_owned(), smart_core::experiment::ParamValue::Int(4))].into();
    let state = dir.join("state");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let lock = RunLock::acquire(&state).unwrap();
        let applier = Applier::new(Config::new(&state));
        let mut session = applier
            .begin(&lock, "workers", "run-1", &apply)
            .await
            .unwrap();
        session
            .switch_to(Arm::Variant {
                name: "v1",
                params: &params,
            })
            .await
            .unwrap();
        if keep {
            session.keep().unwrap();
        }
    });
    assert_eq!(
        fs::read_to_string(dir.join("site.conf")).unwrap(),
        "worker_processes 4;\n"
    );
}

#[test]
fn recover_restores_an_interrupted_run_once() {
    let dir = setup();
    apply_v1(dir.path(), false);
    let out = smart(dir.path(), &["recover"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("recovered workers (run run-1): original config restored"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("site.conf")).unwrap(),
        ORIGINAL
    );
    let again = smart(dir.path(), &["recover"]);
    assert!(again.status.success());
    assert_eq!(
        text(&again.stdout),
        "nothing to recover: no run was interrupted\n"
    );
}

#[test]
fn revert_restores_a_kept_run_and_unknown_experiments_are_bad_input() {
    let dir = setup();
    apply_v1(dir.path(), true);
    let recover = smart(dir.path(), &["recover"]);
    assert!(
        recover.status.success(),
        "{}\n{}",
        text(&recover.stdout),
        text(&recover.stderr)
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("site.conf")).unwrap(),
        "worker_processes 4;\n",
        "a kept run is not recovered"
    );
    let out = smart(dir.path(), &["revert", "workers"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(dir.path().join("site.conf")).unwrap(),
        ORIGINAL
    );
    let again = smart(dir.path(), &["revert"]);
    assert!(
        text(&again.stdout).contains("already on its original config"),
        "{}",
        text(&again.stdout)
    );
    let unknown = smart(dir.path(), &["revert", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown.stderr).contains("experiment `nope` has no run to revert"),
        "{}",
        text(&unknown.stderr)
    );
}

#[test]
fn a_held_lock_exits_4_naming_the_pid() {
    let dir = setup();
    let _lock = RunLock::acquire(&dir.path().join("state")).unwrap();
    for args in [&["recover"][..], &["revert"][..]] {
        let out = smart(dir.path(), args);
        assert_eq!(out.status.code(), Some(4), "{args:?}");
        assert!(
            text(&out.stderr).contains(&format!("pid {}", std::process::id())),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn audit_verify_passes_an_intact_log_and_names_a_tampered_line() {
    let dir = setup();
    apply_v1(dir.path(), true);
    let ok = smart(dir.path(), &["audit", "verify"]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).starts_with("audit log intact: "),
        "{}",
        text(&ok.stdout)
    );
    let log = dir.path().join("state/audit.jsonl");
    let edited = fs::read_to_string(&log)
        .unwrap()
        .replacen("\"ok\"", "\"failed\"", 1);
    fs::write(&log, edited).unwrap();
    let bad = smart(dir.path(), &["audit", "verify"]);
    assert_eq!(bad.status.code(), Some(3));
    assert!(
        text(&bad.stderr).contains("line 2: the hash chain is broken"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn recover_never_overwrites_a_human_edit_unless_told_to_keep_it() {
    let dir = setup();
    apply_v1(dir.path(), false);
    let site = dir.path().join("site.conf");
    fs::write(&site, "worker_processes 2; # by hand\n").unwrap();
    let refused = smart(dir.path(), &["recover"]);
    assert_eq!(refused.status.code(), Some(3));
    assert!(
        text(&refused.stderr).contains("was changed by someone else"),
        "{}",
        text(&refused.stderr)
    );
    let kept = smart(dir.path(), &["recover", "--keep-edits"]);
    assert!(kept.status.success(), "{}", text(&kept.stderr));
    assert!(
        text(&kept.stdout).contains("kept someone else's edit of"),
        "{}",
        text(&kept.stdout)
    );
    assert_eq!(
        fs::read_to_string(&site).unwrap(),
        "worker_processes 2; # by hand\n"
    );
}
