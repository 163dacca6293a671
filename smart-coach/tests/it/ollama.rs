//! The Ollama adapter against an Ollama-shaped fake: `POST /api/chat` with the model, no
//! streaming and the advice schema as `format`; the model's reply read as advice, and anything
//! else answered by the local fail-safe.

use serde_json::json;
use smart_core::engine::{AdviceAction, AdviceRequest, CoachPort};
use tempfile::TempDir;

use crate::server::{CoachServer, Reply};
use crate::support::{coach_lines, decision, judgement};

/// An Ollama chat answer whose message says `content`.
fn chat(content: &str) -> Reply {
    Reply::Json(json!({
        "model": "llama3.2",
        "created_at": "2026-11-26T20:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": true,
        "done_reason": "stop"
    }))
}

fn ollama_coach(url: &str, state: &std::path::Path) -> smart_coach::RemoteCoach {
    let text = format!(
        "url = \"{url}\"\nkind = \"ollama\"\nmode = \"advise\"\nmodel = \"llama3.2\"\nallow_keep = true\ntimeout_s = 2"
    );
    let table: toml::Table = toml::from_str(&text).unwrap();
    let config =
        smart_coach::CoachConfig::from_table(&table, "smart.toml".as_ref(), &|_| None).unwrap();
    smart_coach::RemoteCoach::new(config, state).unwrap()
}

#[tokio::test]
async fn the_model_is_asked_for_json_and_its_reply_is_validated() {
    let j = judgement();
    let request = AdviceRequest {
        run_id: "r1",
        experiment: "gzip-level",
        variant: "level-6",
        judgement: &j,
        max_cycles: 6,
    };
    for (reply, want, kind) in [
        (
            chat(r#"{"action": "keep", "reason": "faster, no errors"}"#),
            AdviceAction::Keep,
            "ok",
        ),
        (
            chat(r#"{"action": "extend", "reason": "close"}"#),
            AdviceAction::Extend,
            "ok",
        ),
        (
            chat("Keep it, looks good!"),
            AdviceAction::Revert,
            "not_json",
        ),
        (
            chat(r#"{"decision": "keep"}"#),
            AdviceAction::Revert,
            "wrong_schema",
        ),
        (
            Reply::Json(json!({"error": "model \"llama3.2\" not found"})),
            AdviceAction::Revert,
            "wrong_schema",
        ),
        (Reply::Status(404), AdviceAction::Revert, "rejected"),
        (Reply::Hang, AdviceAction::Revert, "timeout"),
    ] {
        let server = CoachServer::start(reply).await;
        let state = TempDir::new().unwrap();
        let mut coach = ollama_coach(&server.url(), state.path());
        let advice = coach.advise(&request).await;
        assert_eq!(advice.action, want, "{kind}: {advice:?}");
        let received = server.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].path, "/api/chat");
        assert!(received[0].authorization.is_none());
        let body = &received[0].body;
        assert_eq!(body["model"], "llama3.2");
        assert_eq!(body["stream"], false);
        assert_eq!(body["format"]["required"], json!(["action", "reason"]));
        assert_eq!(body["messages"][0]["role"], "system");
        let question: serde_json::Value =
            serde_json::from_str(body["messages"][1]["content"].as_str().unwrap()).unwrap();
        assert_eq!(question["variant"], "level-6");
        assert_eq!(question["allow_keep"], true);
        let lines = coach_lines(state.path());
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].details["kind"], kind);
        assert_eq!(lines[0].details["call"], "ollama_chat");
        // Ollama keeps no results: reports go nowhere, nothing is queued.
        coach.report(&decision("r1", "level-6")).await;
        assert_eq!(server.received().len(), 1);
        assert!(!state.path().join("coach-queue.json").exists());
    }
}
