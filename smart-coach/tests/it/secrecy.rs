//! The token never leaks: whole runs with the token set — a coach that answers, one that refuses
//! the token, one that fails and queues, one that never answers — write their records, status,
//! metrics, audit log and queue, the dashboard is rendered from them, and no file holds the
//! token; nor does any Debug output. The server did receive it, so the test is not vacuous.

use std::path::Path;
use std::rc::Rc;

use serde_json::json;
use smart_core::records::Records;
use tempfile::TempDir;

use crate::engine::run_once;
use crate::fakes::{ScriptedJudge, World};
use crate::server::{CoachServer, Reply};
use crate::support::{TOKEN, coach};

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn no_file_of_a_run_holds_the_token() {
    let server = CoachServer::start(Reply::Json(json!({"action": "keep", "reason": "fine"}))).await;
    let state = TempDir::new().unwrap();
    let mut coach = coach(
        &server.url(),
        "mode = \"advise\"\nallow_keep = true\ntimeout_s = 1",
        state.path(),
    );
    let mut reports = Vec::new();
    for (n, reply) in [
        None,
        Some(Reply::Status(401)),
        Some(Reply::Status(503)),
        Some(Reply::Hang),
        Some(Reply::NotJson),
        // A coach that echoes the token back, in a reason and in a value an error quotes.
        Some(Reply::Json(
            json!({"action": "revert", "reason": format!("token {TOKEN}")}),
        )),
        Some(Reply::Json(json!({"action": TOKEN, "reason": "x"}))),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(reply) = reply {
            server.script([reply.clone(), reply]);
        }
        let world = World::new();
        let mut judge = ScriptedJudge::new(1, 2, 4);
        let mut records = Records::new(state.path());
        let report = run_once(
            &Rc::clone(&world),
            &mut judge,
            &mut coach,
            &mut records,
            &format!("run-{n}"),
        )
        .await;
        reports.push(format!("{report:?}"));
    }
    let received = server.received();
    assert!(
        received
            .iter()
            .any(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))),
        "the token was never sent, so this test proves nothing"
    );
    let dashboard = smart_dashboard::Dashboard::new(state.path(), &state.path().join("dashboard"));
    let rendered = dashboard.render(std::time::SystemTime::now()).unwrap();
    assert_eq!(rendered.run_pages, 8);
    let written = files(state.path());
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "audit.jsonl",
        "audit.head",
        "status.json",
        "metrics.csv",
        "decisions.json",
        "coach-queue.json",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not written: {names:?}"
        );
    }
    for path in &written {
        let bytes = std::fs::read(path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(TOKEN), "{} holds the token", path.display());
    }
    let audit = std::fs::read_to_string(state.path().join("audit.jsonl")).unwrap();
    for kind in [
        "\"unauthorized\"",
        "\"server_error\"",
        "\"timeout\"",
        "\"not_json\"",
    ] {
        assert!(audit.contains(kind), "no {kind} in the audit log");
    }
    for report in &reports {
        assert!(!report.contains(TOKEN));
    }
    assert!(!format!("{coach:?}").contains(TOKEN));
}
