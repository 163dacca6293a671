//! The optional coach of `smart`: a service (a team's central coach, or a local model through
//! Ollama) that sees every decision and may weigh in on the ones the statistics could not settle.
//!
//! Configured by the `[coach]` table of `smart.toml` ([`CoachConfig`]); [`RemoteCoach`]
//! implements the engine's [`CoachPort`](smart_core::engine::CoachPort). The protocol is in
//! `docs/coach-api.md`, with JSON Schemas generated from [`protocol`]'s types.
//!
//! Safety, whatever the coach answers: the engine honours a `keep` only within its rules (no
//! guardrail fired, the error bound holds, the estimate is not a regression) and this crate only
//! when `allow_keep = true`; any failure — refused, DNS, time-out, 401/403, 429, 5xx, an answer
//! that is not JSON, not the schema or too large — is logged once to the audit log with its kind
//! and means the local fail-safe (revert); a run never waits for the coach longer than
//! `timeout_s` in all; undelivered reports are queued in the state dir for the next run; the
//! token never appears in logs, audit lines, records or error messages.
//!
//! This is a crate of its own because it is HTTP client code: smart-core does no network I/O, and
//! the probe's client is built for load, not for talking to a service with a secret.
//!
//! ```no_run
//! # async fn demo(config: &smart_core::AgentConfig) -> Result<(), smart_coach::CoachError> {
//! let env = |name: &str| std::env::var(name).ok();
//! // No [coach] table: a coach that reports nowhere and never advises (like `NoCoach`).
//! let mut coach = smart_coach::MaybeCoach::from(smart_coach::from_config(
//!     config,
//!     config.state_dir(),
//!     &env,
//! )?);
//! // Pass `&mut coach` as the engine's `Ports::coach`.
//! # let _ = &mut coach;
//! # Ok(()) }
//! ```

mod call;
mod coach;
pub mod config;
mod ollama;
pub mod protocol;
pub mod queue;

use std::path::Path;

use smart_core::AgentConfig;

pub use call::{FailureKind, MAX_ANSWER_BYTES};
pub use coach::{MaybeCoach, RemoteCoach};
pub use config::{CoachConfig, CoachError, Kind, Mode};

/// The agent's version, sent with every message.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The coach `config`'s `[coach]` table asks for, keeping its queue and audit lines in
/// `state_dir`; `Ok(None)` when there is no `[coach]`. `env` looks up environment variables for
/// `token_env` (only the binary reads the environment).
pub fn from_config(
    config: &AgentConfig,
    state_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<RemoteCoach>, CoachError> {
    match CoachConfig::from_agent_config(config, env)? {
        None => Ok(None),
        Some(coach) => RemoteCoach::new(coach, state_dir).map(Some),
    }
}
