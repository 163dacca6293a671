//! The Ollama adapter: asks a local model through Ollama's chat API (`POST {url}/api/chat`,
//! `stream: false`, the advice JSON Schema as `format`) and reads its reply as advice.

use serde::Deserialize;
use serde_json::json;
use smart_core::engine::Advice;

use crate::protocol::{AdviceQuestion, BadAnswer, advice_from_value};

/// What the model is told before the question.
const SYSTEM_PROMPT: &str = "You advise `smart`, a tool that A/B-tests a server's configuration. \
A variant's test was inconclusive: the statistics could not prove it better or worse. You get the \
figures as JSON (negative latency changes are faster; error-rate changes are in percentage points). \
Answer with JSON only: {\"action\": \"revert\" | \"extend\" | \"keep\", \"reason\": \"one sentence\"}. \
\"revert\" restores the original (the safe default); \"extend\" measures more cycles of the same \
test (only useful when cycles < max_cycles and the estimate looks promising); \"keep\" leaves the \
variant live, only sensible when allow_keep is true, the error-rate bounds are small and the \
latency change is negative. When unsure, answer revert.";

/// The chat request for `question`.
pub(crate) fn chat_request(model: &str, question: &AdviceQuestion) -> serde_json::Value {
    let question = serde_json::to_string_pretty(question).unwrap_or_default();
    json!({
        "model": model,
        "stream": false,
        "format": inline_advice_schema(),
        "options": {"temperature": 0},
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": question},
        ],
    })
}

/// The advice schema in the plain form model runtimes turn into a grammar (an enum rather than
/// the documented `oneOf` of constants); the same answers satisfy both.
fn inline_advice_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ["revert", "extend", "keep"]},
            "reason": {"type": "string"},
        },
        "required": ["action", "reason"],
    })
}

/// The part of Ollama's chat answer that matters.
#[derive(Deserialize)]
struct ChatAnswer {
    message: ChatMessage,
}

#[derive(Deserialize)]
struct ChatMessage {
    content: String,
}

/// Reads the model's advice out of a chat answer.
pub(crate) fn parse_chat(body: &[u8]) -> Result<Advice, (BadAnswer, String)> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        (
            BadAnswer::NotJson,
            format!("Ollama's answer is not JSON ({e})"),
        )
    })?;
    let chat: ChatAnswer = serde_json::from_value(value).map_err(|e| {
        (
            BadAnswer::WrongSchema,
            format!("Ollama's answer has no message content ({e})"),
        )
    })?;
    let content: serde_json::Value =
        serde_json::from_str(chat.message.content.trim()).map_err(|e| {
            (
                BadAnswer::NotJson,
                format!("the model's reply is not JSON ({e})"),
            )
        })?;
    advice_from_value(content).map_err(|(kind, why)| (kind, format!("the model's reply: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use smart_core::engine::AdviceAction;

    fn chat(content: &str) -> Vec<u8> {
        json!({"model": "m", "message": {"role": "assistant", "content": content}, "done": true})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn replies_are_parsed_and_validated() {
        let advice = parse_chat(&chat(r#"{"action":"extend","reason":"close call"}"#)).unwrap();
        assert_eq!(advice.action, AdviceAction::Extend);
        for (body, kind) in [
            (chat("I think you should keep it"), BadAnswer::NotJson),
            (
                chat(r#"{"action":"maybe","reason":"x"}"#),
                BadAnswer::WrongSchema,
            ),
            (b"{\"done\":true}".to_vec(), BadAnswer::WrongSchema),
            (b"<html>".to_vec(), BadAnswer::NotJson),
        ] {
            assert_eq!(parse_chat(&body).unwrap_err().0, kind);
        }
    }

    #[test]
    fn the_request_asks_for_json_without_streaming() {
        let question: AdviceQuestion = serde_json::from_value(json!({
            "protocol": 1, "host": "h", "agent_version": "0", "run_id": "r", "experiment": "e",
            "variant": "v", "cycles": 2, "max_cycles": 6, "allow_keep": false,
            "answer_within_s": 5.0, "metric_change_pct": -1.0, "p50_change_pct": -1.0,
            "p50_change_bounds_pct": null, "error_rate_change_pp": 0.0,
            "error_rate_change_bounds_pp": null, "p_value": 0.3, "guardrail": null,
            "reasons": [], "report": null
        }))
        .unwrap();
        let request = chat_request("llama3.2", &question);
        assert_eq!(request["stream"], false);
        assert_eq!(request["model"], "llama3.2");
        assert_eq!(
            request["format"]["properties"]["action"]["enum"],
            json!(["revert", "extend", "keep"])
        );
        assert!(
            request["messages"][1]["content"]
                .as_str()
                .unwrap()
                .contains("\"variant\": \"v\"")
        );
    }
}
