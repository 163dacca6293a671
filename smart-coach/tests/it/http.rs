//! The HTTP coach against a real server on loopback: what it sends, the advice it relays, and
//! every failure kind — each logged once with its kind, each answered by the local fail-safe,
//! none holding the run longer than `timeout_s`.

use std::time::{Duration, Instant};

use serde_json::json;
use smart_core::audit::Outcome;
use smart_core::engine::{AdviceAction, AdviceRequest, CoachPort};
use tempfile::TempDir;

use crate::server::{CoachServer, Reply};
use crate::support::{TOKEN, coach, coach_lines, decision, judgement};

fn request<'a>(run_id: &'a str, judgement: &'a smart_core::engine::Judgement) -> AdviceRequest<'a> {
    AdviceRequest {
        run_id,
        experiment: "gzip-level",
        variant: "level-6",
        judgement,
        max_cycles: 6,
    }
}

#[tokio::test]
async fn a_report_is_posted_with_the_token_and_the_documented_fields() {
    let server = CoachServer::start(Reply::Json(json!({}))).await;
    let state = TempDir::new().unwrap();
    let mut coach = coach(&server.url(), "", state.path());
    assert!(!coach.advises());
    coach.report(&decision("r1", "level-6")).await;
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/results");
    assert_eq!(
        received[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let body = &received[0].body;
    assert_eq!(body["protocol"], 1);
    assert_eq!(body["queued"], false);
    assert_eq!(body["decision"]["variant"], "level-6");
    assert_eq!(body["decision"]["decision"], "inconclusive");
    assert!(!body["host"].as_str().unwrap().is_empty());
    assert_eq!(body["agent_version"], env!("CARGO_PKG_VERSION"));
    crate::schema::assert_valid("coach-results.schema.json", body);
    let lines = coach_lines(state.path());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].outcome, Outcome::Ok);
    assert_eq!(lines[0].details["call"], "results");
    assert_eq!(lines[0].run_id, "r1");
}

#[tokio::test]
async fn advice_is_relayed_and_keep_needs_allow_keep() {
    let j = judgement();
    for (answer, allow_keep, want) in [
        ("revert", false, AdviceAction::Revert),
        ("extend", false, AdviceAction::Extend),
        ("keep", false, AdviceAction::Revert),
        ("keep", true, AdviceAction::Keep),
    ] {
        let server = CoachServer::start(Reply::Json(
            json!({"action": answer, "reason": "the coach thinks so"}),
        ))
        .await;
        let state = TempDir::new().unwrap();
        let extra = format!("mode = \"advise\"\nallow_keep = {allow_keep}");
        let mut coach = coach(&server.url(), &extra, state.path());
        assert!(coach.advises());
        let advice = coach.advise(&request("r1", &j)).await;
        assert_eq!(
            advice.action, want,
            "{answer} allow_keep={allow_keep}: {advice:?}"
        );
        assert!(advice.reason.contains("the coach thinks so"), "{advice:?}");
        if answer == "keep" && !allow_keep {
            assert!(advice.reason.contains("allow_keep is false"), "{advice:?}");
        }
        let received = server.received();
        assert_eq!(received[0].path, "/advice");
        assert_eq!(received[0].body["allow_keep"], allow_keep);
        assert_eq!(received[0].body["variant"], "level-6");
        assert_eq!(received[0].body["max_cycles"], 6);
        crate::schema::assert_valid("coach-advice-request.schema.json", &received[0].body);
        let lines = coach_lines(state.path());
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].details["action"], answer);
    }
}

/// What happens to a result report in a failure case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    /// Delivered: a result report succeeds on its status alone.
    Delivered,
    /// Kept in the queue for the next run.
    Queued,
    /// Rejected outright by the coach: not worth sending again.
    Dropped,
}

/// Each failure kind: the advice is the local fail-safe, the report is queued (or not, when the
/// coach rejected it outright), and exactly one audit line per call names the kind.
#[tokio::test]
async fn every_failure_kind_is_logged_once_and_the_run_goes_on() {
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        url
    };
    // (name, reply, kind, what happens to a report: queued, dropped, or delivered (a result
    // report succeeds on its status; its answer's body is not read)).
    let cases: Vec<(&str, Option<Reply>, &str, Report)> = vec![
        ("refused", None, "refused", Report::Queued),
        ("dns", None, "dns", Report::Queued),
        // https:// to a server that speaks plain HTTP: the TLS handshake fails.
        (
            "tls",
            Some(Reply::Json(json!({}))),
            "connect",
            Report::Queued,
        ),
        (
            "401",
            Some(Reply::Status(401)),
            "unauthorized",
            Report::Queued,
        ),
        ("403", Some(Reply::Status(403)), "forbidden", Report::Queued),
        ("404", Some(Reply::Status(404)), "rejected", Report::Dropped),
        (
            "500",
            Some(Reply::Status(500)),
            "server_error",
            Report::Queued,
        ),
        (
            "503",
            Some(Reply::Status(503)),
            "server_error",
            Report::Queued,
        ),
        (
            "429 no Retry-After",
            Some(Reply::Status(429)),
            "rate_limited",
            Report::Queued,
        ),
        (
            "429 too long",
            Some(Reply::RetryAfter(3600)),
            "rate_limited",
            Report::Queued,
        ),
        (
            "not json",
            Some(Reply::NotJson),
            "not_json",
            Report::Delivered,
        ),
        (
            "wrong schema",
            Some(Reply::Json(json!({"action": "ship it", "reason": "x"}))),
            "wrong_schema",
            Report::Delivered,
        ),
        (
            "huge",
            Some(Reply::Huge(4 * 1024 * 1024)),
            "too_large",
            Report::Delivered,
        ),
        (
            "huge chunked",
            Some(Reply::HugeChunked(4 * 1024 * 1024)),
            "too_large",
            Report::Delivered,
        ),
        ("hang", Some(Reply::Hang), "timeout", Report::Queued),
    ];
    let j = judgement();
    for (name, reply, kind, report) in cases {
        let (url, server) = match (name, reply) {
            ("refused", _) => (refused.clone(), None),
            ("dns", _) => ("https://coach.invalid".to_owned(), None),
            ("tls", Some(reply)) => {
                let server = CoachServer::start(reply).await;
                (server.url().replace("http://", "https://"), None)
            }
            (_, Some(reply)) => {
                let server = CoachServer::start(reply).await;
                (server.url(), Some(server))
            }
            (_, None) => unreachable!(),
        };
        let state = TempDir::new().unwrap();
        // Each call gets its own run, so each has the whole timeout_s.
        let mut coach = coach(&url, "mode = \"advise\"\ntimeout_s = 1.5", state.path());
        let started = Instant::now();
        let advice = coach.advise(&request("r-advice", &j)).await;
        assert_eq!(advice.action, AdviceAction::Revert, "{name}: {advice:?}");
        assert!(advice.reason.contains(kind), "{name}: {advice:?}");
        coach.report(&decision("r-report", "level-6")).await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name}: two calls of at most 1.5 s each took {:?}",
            started.elapsed()
        );
        let lines = coach_lines(state.path());
        assert_eq!(lines.len(), 2, "{name}: {lines:#?}");
        assert_eq!(lines[0].outcome, Outcome::Failed, "{name}");
        assert_eq!(lines[0].details["kind"], kind, "{name}: {:?}", lines[0]);
        assert!(!lines[0].details["message"].as_str().unwrap().is_empty());
        let queued = report == Report::Queued;
        if report == Report::Delivered {
            assert_eq!(lines[1].outcome, Outcome::Ok, "{name}");
        } else {
            assert_eq!(lines[1].outcome, Outcome::Failed, "{name}");
            assert_eq!(lines[1].details["kind"], kind, "{name}: {:?}", lines[1]);
            assert_eq!(lines[1].details["queued"], queued, "{name}");
        }
        let stored = smart_coach::queue::Stored::default();
        let on_disk: smart_coach::queue::Stored =
            std::fs::read(state.path().join("coach-queue.json"))
                .map(|b| serde_json::from_slice(&b).unwrap())
                .unwrap_or(stored);
        assert_eq!(on_disk.reports.len(), usize::from(queued), "{name}");
        if let Some(server) = server {
            assert!(
                !server.received().is_empty(),
                "{name}: the server saw nothing"
            );
        }
    }
}

#[tokio::test]
async fn a_retry_after_within_the_timeout_is_honoured() {
    let server =
        CoachServer::start(Reply::Json(json!({"action": "extend", "reason": "more"}))).await;
    server.script([Reply::RetryAfter(1)]);
    let state = TempDir::new().unwrap();
    let mut coach = coach(
        &server.url(),
        "mode = \"advise\"\ntimeout_s = 5",
        state.path(),
    );
    let j = judgement();
    let started = Instant::now();
    let advice = coach.advise(&request("r1", &j)).await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(advice.action, AdviceAction::Extend, "{advice:?}");
    assert_eq!(server.received().len(), 2);
    let lines = coach_lines(state.path());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].details["attempts"], 2);
}

/// A coach that accepts connections and never answers holds a run for `timeout_s` in all, not per
/// call: later calls of the same run are not tried, their reports are queued.
#[tokio::test]
async fn a_silent_coach_delays_a_run_by_timeout_s_at_most() {
    let server = CoachServer::start(Reply::Hang).await;
    let state = TempDir::new().unwrap();
    let mut coach = coach(
        &server.url(),
        "mode = \"advise\"\ntimeout_s = 1",
        state.path(),
    );
    let j = judgement();
    let started = Instant::now();
    for variant in ["a", "b", "c"] {
        let advice = coach
            .advise(&AdviceRequest {
                variant,
                ..request("r1", &j)
            })
            .await;
        assert_eq!(advice.action, AdviceAction::Revert);
    }
    for variant in ["a", "b", "c"] {
        coach.report(&decision("r1", variant)).await;
    }
    let elapsed = started.elapsed();
    // The bound is 1 s; the margin is for a loaded machine.
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    let kinds: Vec<String> = coach_lines(state.path())
        .iter()
        .map(|l| l.details["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds[0], "timeout");
    assert!(kinds[1..].iter().all(|k| k == "no_time_left"), "{kinds:?}");
    assert_eq!(kinds.len(), 6);
    assert_eq!(server.received().len(), 1, "only the first call was tried");
    // A new run has a fresh budget.
    coach.report(&decision("r2", "a")).await;
    assert_eq!(server.received().len(), 2);
}

/// Reports that could not be delivered are sent with the next run, oldest first, marked queued.
#[tokio::test]
async fn undelivered_reports_are_sent_with_the_next_run() {
    let server = CoachServer::start(Reply::Status(503)).await;
    let state = TempDir::new().unwrap();
    let mut coach = coach(&server.url(), "", state.path());
    coach.report(&decision("r1", "a")).await;
    coach.report(&decision("r1", "b")).await;
    drop(coach);
    server.set_default(Reply::Json(json!({})));
    let mut coach = crate::support::coach(&server.url(), "", state.path());
    coach.report(&decision("r2", "c")).await;
    let received = server.received();
    let delivered: Vec<(String, bool)> = received[2..]
        .iter()
        .map(|r| {
            (
                format!(
                    "{}/{}",
                    r.body["decision"]["run_id"].as_str().unwrap(),
                    r.body["decision"]["variant"].as_str().unwrap()
                ),
                r.body["queued"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        delivered,
        [
            ("r2/c".to_owned(), false),
            ("r1/a".to_owned(), true),
            ("r1/b".to_owned(), true)
        ]
    );
    let stored: smart_coach::queue::Stored =
        serde_json::from_slice(&std::fs::read(state.path().join("coach-queue.json")).unwrap())
            .unwrap();
    assert!(stored.reports.is_empty());
    let last = coach_lines(state.path()).pop().unwrap();
    assert_eq!(last.details["queued_sent"], 2);
    assert_eq!(last.details["queued_left"], 0);
}

/// A full queue drops its oldest report and the count reaches the coach with the next report.
#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_says_how_many() {
    let server = CoachServer::start(Reply::Status(500)).await;
    let state = TempDir::new().unwrap();
    let mut coach = coach(&server.url(), "timeout_s = 30", state.path());
    let total = smart_coach::queue::MAX_QUEUED + 2;
    for n in 0..total {
        coach.report(&decision("r1", &format!("v{n}"))).await;
    }
    let stored: smart_coach::queue::Stored =
        serde_json::from_slice(&std::fs::read(state.path().join("coach-queue.json")).unwrap())
            .unwrap();
    assert_eq!(stored.dropped, 2);
    assert_eq!(stored.reports[0].variant, "v2");
    server.set_default(Reply::Json(json!({})));
    coach.report(&decision("r2", "next")).await;
    let received = server.received();
    let next = received
        .iter()
        .find(|r| r.body["decision"]["variant"] == "next")
        .unwrap();
    assert_eq!(next.body["dropped_reports"], 2);
}
