//! The audit log with appenders in several real processes: lines never interleave and the chain
//! stays intact.

use std::process::{Command, Stdio};
use std::time::SystemTime;

use smart_core::audit::{Action, AuditLog, Entry, Outcome, verify};

const CHILD: &str = "SMART_APPLY_AUDIT_CHILD";
const TEST: &str = "audit::appenders_in_several_processes_never_interleave";
const PER_CHILD: u64 = 40;

#[test]
fn appenders_in_several_processes_never_interleave() {
    if let Ok(dir) = std::env::var(CHILD) {
        let log = AuditLog::new(dir.as_ref());
        for n in 0..PER_CHILD {
            log.append(&Entry {
                time: SystemTime::now(),
                run_id: format!("pid-{}", std::process::id()),
                action: Action::Apply,
                outcome: Outcome::Ok,
                details: serde_json::json!({"n": n, "padding": "x".repeat(3000)}),
            })
            .unwrap();
        }
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", TEST, "--test-threads=1"])
                .env(CHILD, dir.path())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let summary = verify(dir.path()).unwrap();
    assert_eq!(summary.lines, 4 * PER_CHILD);
}
