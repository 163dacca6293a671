//! The collector over a state dir written in the records' formats: every counter and gauge that
//! a run's outcome feeds, checked sample by sample (each assertion fails when its rule is taken
//! out), and the output passes `promtool check metrics`.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use smart_metrics::{Facts, collect, render};
use smart_testkit::require_tool;

/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;

fn utc(offset_s: u64) -> String {
    smart_core::audit::format_utc(UNIX_EPOCH + Duration::from_secs(T0 + offset_s))
}

fn decision(run: &str, experiment: &str, variant: &str, kind: &str, p50_pct: Value) -> Value {
    json!({
        "run_id": run, "experiment": experiment, "definition_hash": "h", "variant": variant,
        "decision": kind, "metric": "p50", "cycles": 8, "p50_change_pct": p50_pct,
        "p50_change_bounds_pct": null, "error_rate_change_pp": null,
        "error_rate_change_bounds_pp": null, "p_value": null, "reasons": [],
        "started": utc(0), "finished": utc(100), "report": {}
    })
}

fn block(index: u32, variant: &str, requests: u64, errors: u64, aborted: Option<&str>) -> Value {
    json!({
        "block": {"index": index, "kind": "test", "variant": variant, "variant_index": 1,
                  "arm": "baseline", "arm_name": "baseline", "cycle": 0, "position": 0,
                  "block_in_variant": index, "blocks_in_variant": 32, "warmup_s": 0.0,
                  "duration_s": 2.0, "started": utc(u64::from(index) * 10)},
        "ended": utc(u64::from(index) * 10 + 2),
        "figures": {"measured_s": 2.0, "requests": requests, "errors": errors, "outcomes": {},
                    "p50_us": 1000, "p90_us": 2000, "p99_us": 3000, "mean_us": 1100.0,
                    "rate_per_s": requests as f64 / 2.0, "samples": requests, "aborted": aborted}
    })
}

/// Writes one run: `end` and `live` make its report (`None`: no report, the run is open).
fn write_run(
    state: &Path,
    (id, experiment, start): (&str, &str, u64),
    report: Option<(&str, Value)>,
    decisions: &[Value],
    blocks: &[Value],
) {
    let dir = state.join("runs").join(id);
    fs::create_dir_all(&dir).unwrap();
    let plan = json!({
        "run_id": id, "experiment": experiment, "definition_hash": "h", "seed": 1,
        "variants": ["v1", "v2"], "interleave": true, "blocks_per_variant": 32,
        "max_duration_s": 600.0, "expected_s": 300.0, "started": utc(start)
    });
    let report = report.map(|(end, live)| {
        json!({
            "run_id": id, "experiment": experiment, "definition_hash": "h", "seed": 1,
            "started": utc(start), "finished": utc(start + 300), "end": end,
            "end_reason": null, "live": live, "decisions": decisions
        })
    });
    fs::write(
        dir.join("run.json"),
        json!({"plan": plan, "report": report}).to_string(),
    )
    .unwrap();
    if report.is_some() {
        fs::write(
            dir.join("decisions.json"),
            Value::from(decisions.to_vec()).to_string(),
        )
        .unwrap();
    }
    let mut lines = File::create(dir.join("blocks.jsonl")).unwrap();
    for b in blocks {
        writeln!(lines, "{b}").unwrap();
    }
}

/// Two gzip runs (one completed with a keep and a revert and a guardrail abort, one failed with
/// the original not restored) and a cache run whose process died; status.json names that run.
fn state_dir() -> tempfile::TempDir {
    let state = tempfile::tempdir().unwrap();
    let p = state.path();
    write_run(
        p,
        ("r1", "gzip", 0),
        Some(("completed", json!({"variant": "v1"}))),
        &[
            decision("r1", "gzip", "v1", "keep", json!(-12.5)),
            decision("r1", "gzip", "v2", "revert", json!(4.0)),
        ],
        &[
            block(1, "v1", 200, 0, None),
            block(2, "v2", 100, 30, Some("error rate 30 % over 5 %")),
        ],
    );
    write_run(
        p,
        ("r2", "gzip", 1000),
        Some(("failed", json!("unknown"))),
        &[decision("r2", "gzip", "v1", "aborted", Value::Null)],
        &[block(1, "v1", 200, 50, None)],
    );
    write_run(p, ("r3", "cache", 2000), None, &[], &[]);
    fs::write(
        p.join("status.json"),
        json!({
            "state": "running", "pid": 4_000_000, "run_id": "r3", "experiment": "cache",
            "phase": "measuring", "variant": "v1", "variant_index": 1, "variants": 2,
            "arm": "baseline", "block": 1, "blocks": 32, "elapsed_s": 1.0, "left_s": 10.0,
            "live": null, "end": null, "decisions": [], "updated": utc(2001)
        })
        .to_string(),
    )
    .unwrap();
    state
}

fn metrics(state: &Path, facts: Facts) -> String {
    render(&collect(state, facts, UNIX_EPOCH + Duration::from_secs(T0 + 5000)).unwrap())
}

fn check(text: &str, samples: &[&str]) {
    for sample in samples {
        assert!(
            text.lines().any(|line| line == *sample),
            "missing `{sample}` in\n{text}"
        );
    }
}

#[test]
fn outcomes_become_counters_and_gauges() {
    let state = state_dir();
    let text = metrics(
        state.path(),
        Facts {
            recovery_needed: Some(true),
        },
    );
    check(
        &text,
        &[
            r#"smart_runs_total{experiment="gzip",end="completed"} 1"#,
            r#"smart_runs_total{experiment="gzip",end="failed"} 1"#,
            r#"smart_runs_total{experiment="cache",end="interrupted"} 1"#,
            r#"smart_decisions_total{experiment="gzip",variant="v1",decision="keep"} 1"#,
            r#"smart_decisions_total{experiment="gzip",variant="v1",decision="aborted"} 1"#,
            r#"smart_decisions_total{experiment="gzip",variant="v2",decision="revert"} 1"#,
            r#"smart_reverts_total{experiment="gzip"} 2"#,
            r#"smart_reverts_total{experiment="cache"} 0"#,
            r#"smart_revert_failures_total{experiment="gzip"} 1"#,
            r#"smart_guardrail_aborts_total{experiment="gzip"} 1"#,
            r#"smart_last_run_failed{experiment="gzip"} 1"#,
            r#"smart_last_run_revert_failed{experiment="gzip"} 1"#,
            &format!(
                r#"smart_last_run_start_timestamp_seconds{{experiment="cache"}} {}"#,
                T0 + 2000
            ),
            &format!(
                r#"smart_last_run_end_timestamp_seconds{{experiment="gzip"}} {}"#,
                T0 + 1300
            ),
            // The last decision on v1 is r2's (aborted, no p50 change); v2's is r1's revert.
            r#"smart_last_decision_p50_change_ratio{experiment="gzip",variant="v2",decision="revert"} 0.04"#,
            r#"smart_probe_last_block_error_ratio{experiment="gzip"} 0.25"#,
            r#"smart_probe_last_block_requests_per_second{experiment="gzip"} 100"#,
            // The status names r3 but no process holds the lock: nothing runs.
            "smart_running 0",
            "smart_lock_held 0",
            "smart_recovery_needed 1",
            &format!("smart_status_updated_timestamp_seconds {}", T0 + 2001),
            &format!("smart_metrics_generated_timestamp_seconds {}", T0 + 5000),
            "smart_audit_chain_ok 1",
        ],
    );
    assert!(!text.contains("smart_run_active{"), "{text}");
    assert!(
        !text.contains(r#"variant="v1",decision="keep"} -0.125"#),
        "an older decision is not the last: {text}"
    );
    assert!(
        !text.contains(r#"smart_last_run_failed{experiment="cache"}"#),
        "a run without a report has not ended: {text}"
    );
}

#[test]
fn a_run_whose_process_holds_the_lock_is_running() {
    let state = state_dir();
    let lock = File::create(state.path().join("lock")).unwrap();
    lock.lock().unwrap();
    let text = metrics(state.path(), Facts::default());
    check(
        &text,
        &[
            "smart_running 1",
            "smart_lock_held 1",
            r#"smart_run_active{experiment="cache",variant="v1",phase="measuring"} 1"#,
        ],
    );
    assert!(!text.contains(r#"end="interrupted""#), "{text}");
    assert!(!text.contains("smart_recovery_needed"), "{text}");
}

#[test]
fn a_tampered_audit_log_is_reported() {
    let state = state_dir();
    fs::write(state.path().join("audit.jsonl"), "{\"seq\":1}\n").unwrap();
    let text = metrics(state.path(), Facts::default());
    check(&text, &["smart_audit_chain_ok 0"]);
    assert!(!text.contains("smart_audit_head_sequence"), "{text}");
}

#[test]
fn the_output_passes_promtool() {
    if !require_tool("promtool", "promtool check metrics") {
        return;
    }
    let state = state_dir();
    let text = metrics(
        state.path(),
        Facts {
            recovery_needed: Some(false),
        },
    );
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
