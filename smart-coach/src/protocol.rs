//! The coach protocol's messages (`docs/coach-api.md`): the result report posted to
//! `{url}/results`, the question posted to `{url}/advice`, and the advice that answers it. Their
//! JSON Schemas are generated from these types and committed under `docs/`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smart_core::engine::{Advice, AdviceAction, AdviceRequest, Estimates, Judgement};
use smart_core::records::DecisionRecord;

/// The protocol's version, sent in every message; it changes only when a field changes meaning
/// or disappears (new fields may appear at any time: ignore the ones you do not know).
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest advice `reason` kept; a longer one is cut.
pub const MAX_REASON_CHARS: usize = 500;

/// What the agent posts to `{url}/results` after each decision (and later, from its queue, when
/// the coach could not be reached).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResultReport {
    /// The protocol's version ([`PROTOCOL_VERSION`]).
    pub protocol: u32,
    /// The host name of the machine the agent runs on.
    pub host: String,
    /// The agent's version (smart's).
    pub agent_version: String,
    /// When this report was sent (RFC 3339 UTC).
    pub sent: String,
    /// Whether it is sent late, from the queue of reports an earlier attempt could not deliver.
    pub queued: bool,
    /// Undelivered reports this agent has dropped so far because its queue was full (oldest
    /// first): the coach has missed that many results.
    pub dropped_reports: u64,
    /// The decision, exactly as `smart history --json` shows it (`docs/history.schema.json`):
    /// the experiment, the variant, the decision and its reasons, the figures, and in `report` the
    /// judge's full report with each arm's figures.
    pub decision: DecisionRecord,
}

/// What the agent posts to `{url}/advice` about an inconclusive variant (`mode = "advise"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AdviceQuestion {
    /// The protocol's version ([`PROTOCOL_VERSION`]).
    pub protocol: u32,
    /// The host name of the machine the agent runs on.
    pub host: String,
    /// The agent's version (smart's).
    pub agent_version: String,
    /// The run's id.
    pub run_id: String,
    /// The experiment's name.
    pub experiment: String,
    /// The variant's name.
    pub variant: String,
    /// ABBA cycles measured so far.
    pub cycles: u32,
    /// The most cycles the schedule allows: `extend` continues the same test up to this many.
    pub max_cycles: u32,
    /// Whether a `keep` can be honoured at all (`[coach] allow_keep`); even then only when no
    /// guardrail fired, the error-rate bound holds and the estimate is not a regression.
    pub allow_keep: bool,
    /// Seconds the agent waits for the answer; without one in time it reverts.
    pub answer_within_s: f64,
    /// Relative change of the decision metric in percent, `(variant − baseline) / baseline × 100`
    /// (negative is faster).
    pub metric_change_pct: Option<f64>,
    /// The median's and the error rate's change, their bounds and the p-value: the judge's
    /// figures as the run records hold them, in the same fields.
    #[serde(flatten)]
    pub estimates: Estimates,
    /// The guardrail that fired, if any (then a `keep` is never honoured).
    pub guardrail: Option<String>,
    /// The judge's reasons, in plain English with the numbers.
    pub reasons: Vec<String>,
    /// The judge's full report, with each arm's figures (`docs/statistics.md`).
    pub report: serde_json::Value,
}

impl AdviceQuestion {
    /// The question about `request`: the one place the judge's figures become wire fields.
    ///
    /// The judgement is taken apart field by field, so a field added to [`Judgement`] does not
    /// compile here until it is either sent (a new wire field, which the protocol allows) or
    /// named as left out.
    pub(crate) fn new(
        request: &AdviceRequest<'_>,
        host: &str,
        allow_keep: bool,
        answer_within_s: f64,
    ) -> AdviceQuestion {
        let Judgement {
            // The coach is asked only about inconclusive variants: the verdict says nothing.
            verdict: _,
            cycles,
            metric_change_pct,
            estimates,
            guardrail,
            reasons,
            report,
        } = request.judgement;
        AdviceQuestion {
            protocol: PROTOCOL_VERSION,
            host: host.to_owned(),
            agent_version: crate::AGENT_VERSION.to_owned(),
            run_id: request.run_id.to_owned(),
            experiment: request.experiment.to_owned(),
            variant: request.variant.to_owned(),
            cycles: *cycles,
            max_cycles: request.max_cycles,
            allow_keep,
            answer_within_s,
            metric_change_pct: *metric_change_pct,
            estimates: *estimates,
            guardrail: guardrail.clone(),
            reasons: reasons.clone(),
            report: report.clone(),
        }
    }
}

/// Why an answer is not usable advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadAnswer {
    /// Not JSON at all.
    NotJson,
    /// JSON, but not `{"action": "revert" | "extend" | "keep", "reason": "..."}`.
    WrongSchema,
}

/// Reads an advice answer: JSON of the [`Advice`] schema, its reason cleaned of control
/// characters and cut to [`MAX_REASON_CHARS`] (it ends up in records and the audit log).
pub(crate) fn parse_advice(body: &[u8]) -> Result<Advice, (BadAnswer, String)> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| (BadAnswer::NotJson, format!("the answer is not JSON ({e})")))?;
    advice_from_value(value)
}

/// An advice answer already parsed as JSON.
pub(crate) fn advice_from_value(value: serde_json::Value) -> Result<Advice, (BadAnswer, String)> {
    let advice: Advice = serde_json::from_value(value).map_err(|e| {
        (
            BadAnswer::WrongSchema,
            format!(
                "the answer is not {{\"action\": \"revert\" | \"extend\" | \"keep\", \"reason\": \"...\"}} ({e})"
            ),
        )
    })?;
    Ok(Advice {
        action: advice.action,
        reason: clean_reason(&advice.reason),
    })
}

/// A reason fit for records: no control characters, at most [`MAX_REASON_CHARS`].
fn clean_reason(reason: &str) -> String {
    let cleaned: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        "(no reason given)".to_owned()
    } else {
        cleaned.to_owned()
    }
}

/// The local fail-safe: revert, saying why.
pub(crate) fn revert(reason: String) -> Advice {
    Advice {
        action: AdviceAction::Revert,
        reason,
    }
}

/// The JSON Schema of [`ResultReport`] (`docs/coach-results.schema.json`).
pub fn results_schema() -> schemars::Schema {
    schemars::schema_for!(ResultReport)
}

/// The JSON Schema of [`AdviceQuestion`] (`docs/coach-advice-request.schema.json`).
pub fn advice_request_schema() -> schemars::Schema {
    schemars::schema_for!(AdviceQuestion)
}

/// The JSON Schema of the answer to an [`AdviceQuestion`] (`docs/coach-advice.schema.json`);
/// also the `format` the Ollama adapter asks the model to follow.
pub fn advice_schema() -> schemars::Schema {
    schemars::schema_for!(Advice)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, expected: Result<(AdviceAction, &str), BadAnswer>) {
        let got = parse_advice(body.as_bytes())
            .map(|a| (a.action, a.reason))
            .map_err(|(kind, _)| kind);
        let expected = expected.map(|(a, r)| (a, r.to_owned()));
        assert_eq!(got, expected, "{body}");
    }

    #[test]
    fn answers_are_validated() {
        use AdviceAction::*;
        check(r#"{"action":"keep","reason":"ok"}"#, Ok((Keep, "ok")));
        check(
            r#"{"action":"extend","reason":"more data","extra":1}"#,
            Ok((Extend, "more data")),
        );
        check(
            r#"{"action":"revert","reason":"a\nb\u0007"}"#,
            Ok((Revert, "a b")),
        );
        check(
            r#"{"action":"revert","reason":""}"#,
            Ok((Revert, "(no reason given)")),
        );
        check(
            r#"{"action":"KEEP","reason":"x"}"#,
            Err(BadAnswer::WrongSchema),
        );
        check(r#"{"action":"keep"}"#, Err(BadAnswer::WrongSchema));
        check(r#"{"reason":"x"}"#, Err(BadAnswer::WrongSchema));
        check(r#"["keep"]"#, Err(BadAnswer::WrongSchema));
        check("keep", Err(BadAnswer::NotJson));
        check("", Err(BadAnswer::NotJson));
        let long = format!(r#"{{"action":"revert","reason":"{}"}}"#, "x".repeat(5000));
        let advice = parse_advice(long.as_bytes()).unwrap();
        assert_eq!(advice.reason.chars().count(), MAX_REASON_CHARS);
    }
}
