//! The coach the engine talks to: reports every decision, asks for advice on inconclusive
//! variants, keeps a run's total wait within `timeout_s`, queues what it could not deliver, and
//! logs every call once to the audit log. It never fails the run: any failure is the local
//! fail-safe (revert).

use std::path::Path;
use std::time::SystemTime;

use serde_json::{Value, json};
use smart_core::audit::{Action, AuditLog, Entry, Outcome, format_utc};
use smart_core::engine::{Advice, AdviceAction, AdviceRequest, CoachPort, NoCoach};
use smart_core::records::DecisionRecord;
use tokio::time::Instant;

use crate::call::{self, Failure, FailureKind, Want};
use crate::config::{CoachConfig, CoachError, Kind, Mode};
use crate::ollama;
use crate::protocol::{
    AdviceQuestion, BadAnswer, PROTOCOL_VERSION, ResultReport, parse_advice, revert,
};
use crate::queue::Queue;

/// A coach reached over HTTP: the protocol of `docs/coach-api.md`, or a local Ollama model.
///
/// Its futures need a tokio runtime (the HTTP client and its timers run on it), e.g. the engine
/// driven by `Runtime::block_on`.
#[derive(Debug)]
pub struct RemoteCoach {
    config: CoachConfig,
    client: reqwest::Client,
    audit: AuditLog,
    queue: Queue,
    host: String,
    run: Option<RunBudget>,
}

/// The time budget of one run: all its coach calls together end by `deadline`.
#[derive(Debug)]
struct RunBudget {
    run_id: String,
    deadline: Instant,
    /// Whether the queue was already sent (or tried) in this run.
    flushed: bool,
}

impl RemoteCoach {
    /// A coach with `config`, keeping its queue and audit lines in `state_dir`.
    pub fn new(config: CoachConfig, state_dir: &Path) -> Result<RemoteCoach, CoachError> {
        let client = reqwest::Client::builder()
            // A redirect could carry the token elsewhere; a proxy from the environment could see
            // the results: the coach is reached directly, as configured.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("smart/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                CoachError::other(
                    config.file(),
                    "url",
                    format!("the HTTP client could not start: {e}"),
                )
            })?;
        Ok(RemoteCoach {
            config,
            client,
            audit: AuditLog::new(state_dir),
            queue: Queue::new(state_dir),
            host: host_name(),
            run: None,
        })
    }

    /// The settings it was made with.
    pub fn config(&self) -> &CoachConfig {
        &self.config
    }

    /// The deadline of `run_id`'s calls; a new run starts a fresh budget of `timeout_s`.
    fn budget(&mut self, run_id: &str) -> &mut RunBudget {
        let timeout = self.config.timeout();
        if self.run.as_ref().is_some_and(|run| run.run_id != run_id) {
            self.run = None;
        }
        self.run.get_or_insert_with(|| RunBudget {
            run_id: run_id.to_owned(),
            deadline: Instant::now() + timeout,
            flushed: false,
        })
    }

    /// One audit line; a log that cannot be written does not stop the run (the applier's own
    /// audit lines fail loudly in that case).
    fn log(&self, run_id: &str, outcome: Outcome, details: Value) {
        let entry = Entry {
            time: SystemTime::now(),
            run_id: run_id.to_owned(),
            action: Action::Coach,
            outcome,
            details,
        };
        let _ = self.audit.append(&entry);
    }

    /// Logs a failed call once, with its kind.
    fn log_failure(
        &self,
        run_id: &str,
        call: &str,
        failure: &Failure,
        attempts: u32,
        extra: Value,
    ) {
        let mut details = json!({
            "call": call,
            "kind": failure.kind.as_str(),
            "status": failure.status,
            "attempts": attempts,
            "message": failure.message,
        });
        merge(&mut details, extra);
        let outcome = if failure.kind == FailureKind::NoTimeLeft {
            Outcome::Skipped
        } else {
            Outcome::Failed
        };
        self.log(run_id, outcome, details);
    }

    /// POSTs one result report.
    async fn deliver(
        &self,
        decision: &DecisionRecord,
        queued: bool,
        dropped: u64,
        deadline: Instant,
    ) -> call::Outcome {
        let report = ResultReport {
            protocol: PROTOCOL_VERSION,
            host: self.host.clone(),
            agent_version: crate::AGENT_VERSION.to_owned(),
            sent: format_utc(SystemTime::now()),
            queued,
            dropped_reports: dropped,
            decision: decision.clone(),
        };
        let body = serde_json::to_vec(&report).unwrap_or_default();
        call::post_json(
            &self.client,
            &self.config.endpoint("results"),
            self.config.token(),
            &body,
            Want::Status,
            deadline,
        )
        .await
    }

    /// Sends queued reports, oldest first, until one fails or the time is up.
    async fn flush(&mut self, run_id: &str, deadline: Instant) {
        let stored = match self.queue.load() {
            Ok(stored) => stored,
            Err(message) => {
                self.log(
                    run_id,
                    Outcome::Failed,
                    json!({"call": "results", "kind": "queue", "message": message}),
                );
                return;
            }
        };
        if stored.reports.is_empty() {
            return;
        }
        let mut sent = 0;
        let mut failure = None;
        for report in &stored.reports {
            if Instant::now() >= deadline {
                break;
            }
            match self.deliver(report, true, stored.dropped, deadline).await {
                Ok(_) => {
                    sent += 1;
                    if let Err(message) = self.queue.pop_front() {
                        failure = Some(message);
                        break;
                    }
                }
                Err((f, _)) => {
                    failure = Some(format!("{}: {}", f.kind.as_str(), f.message));
                    break;
                }
            }
        }
        let left = stored.reports.len() - sent;
        let outcome = if left == 0 {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        self.log(
            run_id,
            outcome,
            json!({
                "call": "results",
                "queued_sent": sent,
                "queued_left": left,
                "dropped_total": stored.dropped,
                "message": failure,
            }),
        );
    }

    /// Asks the coach (or the model) and reads its advice.
    async fn ask(
        &self,
        question: &AdviceQuestion,
        deadline: Instant,
    ) -> (Result<Advice, Failure>, u32) {
        let (url, body) = match (self.config.kind(), self.config.model()) {
            (Kind::Ollama, Some(model)) => (
                self.config.endpoint("api/chat"),
                ollama::chat_request(model, question),
            ),
            _ => (
                self.config.endpoint("advice"),
                serde_json::to_value(question).unwrap_or_default(),
            ),
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        match call::post_json(
            &self.client,
            &url,
            self.config.token(),
            &body,
            Want::Body,
            deadline,
        )
        .await
        {
            Err((failure, attempts)) => (Err(failure), attempts),
            Ok(answer) => {
                let parsed = match self.config.kind() {
                    Kind::Ollama => ollama::parse_chat(&answer.body),
                    Kind::Http => parse_advice(&answer.body),
                };
                let parsed = parsed.map_err(|(bad, message)| {
                    let kind = match bad {
                        BadAnswer::NotJson => FailureKind::NotJson,
                        BadAnswer::WrongSchema => FailureKind::WrongSchema,
                    };
                    Failure::new(kind, message)
                });
                (parsed, answer.attempts)
            }
        }
    }
}

impl CoachPort for RemoteCoach {
    fn advises(&self) -> bool {
        self.config.mode() == Mode::Advise
    }

    async fn report(&mut self, decision: &DecisionRecord) {
        if self.config.kind() == Kind::Ollama {
            // A local model keeps no results.
            return;
        }
        let run_id = decision.run_id.clone();
        let budget = self.budget(&run_id);
        let deadline = budget.deadline;
        let flush = !std::mem::replace(&mut budget.flushed, true);
        let about = json!({"experiment": decision.experiment, "variant": decision.variant, "decision": decision.decision.as_str()});
        let dropped = self.queue.load().map(|s| s.dropped).unwrap_or(0);
        let outcome = if Instant::now() >= deadline {
            Err((
                Failure::new(
                    FailureKind::NoTimeLeft,
                    format!(
                        "the run's coach time (timeout_s = {}) is used up; the report was queued",
                        self.config.timeout().as_secs_f64()
                    ),
                ),
                0,
            ))
        } else {
            self.deliver(decision, false, dropped, deadline).await
        };
        match outcome {
            Ok(answer) => {
                let mut details =
                    json!({"call": "results", "kind": "ok", "attempts": answer.attempts});
                merge(&mut details, about);
                self.log(&run_id, Outcome::Ok, details);
                if flush {
                    self.flush(&run_id, deadline).await;
                }
            }
            Err((failure, attempts)) => {
                let mut extra = about;
                if failure.kind.worth_retrying() {
                    match self.queue.push(decision) {
                        Ok(dropped) => {
                            merge(&mut extra, json!({"queued": true, "dropped_now": dropped}))
                        }
                        Err(message) => {
                            merge(&mut extra, json!({"queued": false, "queue_error": message}))
                        }
                    }
                } else {
                    merge(&mut extra, json!({"queued": false}));
                }
                self.log_failure(&run_id, "results", &failure, attempts, extra);
            }
        }
    }

    fn defer(&mut self, decision: &DecisionRecord) {
        if self.config.kind() == Kind::Ollama {
            return;
        }
        let mut details = json!({
            "call": "results",
            "kind": "deferred",
            "experiment": decision.experiment,
            "variant": decision.variant,
            "decision": decision.decision.as_str(),
            "message": "the run was cancelled before the report was sent; it was queued for the next run",
        });
        match self.queue.push(decision) {
            Ok(dropped) => merge(
                &mut details,
                json!({"queued": true, "dropped_now": dropped}),
            ),
            Err(message) => merge(
                &mut details,
                json!({"queued": false, "queue_error": message}),
            ),
        }
        self.log(&decision.run_id, Outcome::Skipped, details);
    }

    async fn advise(&mut self, request: &AdviceRequest<'_>) -> Advice {
        let deadline = self.budget(request.run_id).deadline;
        let call = match self.config.kind() {
            Kind::Http => "advice",
            Kind::Ollama => "ollama_chat",
        };
        let about = json!({"experiment": request.experiment, "variant": request.variant});
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let failure = Failure::new(
                FailureKind::NoTimeLeft,
                format!(
                    "the run's coach time (timeout_s = {}) is used up; not asked",
                    self.config.timeout().as_secs_f64()
                ),
            );
            self.log_failure(request.run_id, call, &failure, 0, about);
            return revert(format!(
                "the coach was not asked ({}), so the local fail-safe reverts",
                failure.message
            ));
        }
        let question = AdviceQuestion::new(
            request,
            &self.host,
            self.config.allow_keep(),
            left.as_secs_f64(),
        );
        // Whatever the coach sends back ends up in records: a coach that echoes the token (in a
        // reason, or in a value an error message quotes) must not leak it.
        let (result, attempts) = self.ask(&question, deadline).await;
        let scrub = |text: &str| match self.config.token() {
            Some(token) => token.scrub(text),
            None => text.to_owned(),
        };
        let result = match result {
            Ok(advice) => Ok(Advice {
                action: advice.action,
                reason: scrub(&advice.reason),
            }),
            Err(failure) => Err(Failure {
                message: scrub(&failure.message),
                ..failure
            }),
        };
        match (result, attempts) {
            (Err(failure), attempts) => {
                self.log_failure(request.run_id, call, &failure, attempts, about);
                revert(format!(
                    "the coach gave no usable advice ({}: {}), so the local fail-safe reverts",
                    failure.kind.as_str(),
                    failure.message
                ))
            }
            (Ok(advice), attempts) => {
                let mut details = json!({
                    "call": call,
                    "kind": "ok",
                    "attempts": attempts,
                    "action": advice.action,
                    "reason": advice.reason,
                    "allow_keep": self.config.allow_keep(),
                });
                merge(&mut details, about);
                self.log(request.run_id, Outcome::Ok, details);
                if advice.action == AdviceAction::Keep && !self.config.allow_keep() {
                    revert(format!(
                        "the coach advised keep ({}), but [coach] allow_keep is false, so the local fail-safe reverts",
                        advice.reason
                    ))
                } else {
                    advice
                }
            }
        }
    }
}

/// The coach a config asks for, or none: one type for the engine's `Ports::coach` either way.
#[derive(Debug)]
pub struct MaybeCoach(Option<RemoteCoach>);

impl From<Option<RemoteCoach>> for MaybeCoach {
    fn from(coach: Option<RemoteCoach>) -> MaybeCoach {
        MaybeCoach(coach)
    }
}

impl MaybeCoach {
    /// The coach, if one is configured.
    pub fn get(&self) -> Option<&RemoteCoach> {
        self.0.as_ref()
    }
}

impl CoachPort for MaybeCoach {
    fn advises(&self) -> bool {
        self.0.as_ref().is_some_and(CoachPort::advises)
    }

    async fn report(&mut self, decision: &DecisionRecord) {
        if let Some(coach) = &mut self.0 {
            coach.report(decision).await;
        }
    }

    fn defer(&mut self, decision: &DecisionRecord) {
        if let Some(coach) = &mut self.0 {
            coach.defer(decision);
        }
    }

    async fn advise(&mut self, request: &AdviceRequest<'_>) -> Advice {
        match &mut self.0 {
            Some(coach) => coach.advise(request).await,
            None => NoCoach.advise(request).await,
        }
    }
}

/// Adds `extra`'s fields to `details`.
fn merge(details: &mut Value, extra: Value) {
    if let (Value::Object(into), Value::Object(from)) = (details, extra) {
        into.extend(from);
    }
}

/// This machine's host name, for reports (`unknown` when it cannot be read).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}
