//! deploy/prometheus/smart-rules.yml passes `promtool check rules`, and its unit tests
//! (smart-rules.test.yml) pass `promtool test rules` (Debian's `prometheus` package).

use std::path::{Path, PathBuf};
use std::process::Command;

use smart_testkit::require_tool;

fn deploy_prometheus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

/// Runs promtool with `args` in deploy/prometheus and fails the test with its output unless it
/// succeeds.
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(deploy_prometheus())
        .output()
        .expect("run promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {}: {said}", args.join(" "));
    said
}

#[test]
fn the_alert_rules_are_valid() {
    if !require_tool("promtool", "promtool check rules") {
        return;
    }
    let said = promtool(&["check", "rules", "smart-rules.yml"]);
    assert!(said.contains("SUCCESS: 6 rules found"), "{said}");
}

#[test]
fn the_alert_rules_pass_their_unit_tests() {
    if !require_tool("promtool", "promtool test rules") {
        return;
    }
    let said = promtool(&["test", "rules", "smart-rules.test.yml"]);
    assert!(said.contains("SUCCESS"), "{said}");
}

/// The unit tests can fail: a rule whose threshold no longer matches its test is reported.
#[test]
fn a_rule_that_breaks_its_test_is_caught() {
    if !require_tool("promtool", "promtool test rules") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string(deploy_prometheus().join("smart-rules.yml")).unwrap();
    let broken = rules.replace("smart_audit_chain_ok == 0", "smart_audit_chain_ok == 2");
    assert_ne!(rules, broken);
    std::fs::write(dir.path().join("smart-rules.yml"), broken).unwrap();
    std::fs::copy(
        deploy_prometheus().join("smart-rules.test.yml"),
        dir.path().join("smart-rules.test.yml"),
    )
    .unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules", "smart-rules.test.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("alertname: SmartAuditChainBroken"), "{said}");
}
