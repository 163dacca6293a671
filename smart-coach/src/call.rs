//! One bounded HTTP call to the coach: POST a JSON body with the bearer token, honour a 429's
//! `Retry-After` when it fits in the time left, cap the answer's size, and name every way it can
//! fail, so each failure is logged once with its kind and the run goes on.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use tokio::time::Instant;

use crate::config::Token;

/// The largest answer read; a longer one is a failure (`too_large`).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Attempts at most per call (a 429 with a `Retry-After` that fits is tried again).
const MAX_ATTEMPTS: u32 = 3;

/// How a call to the coach failed, as recorded in the audit log's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Nothing listens at the address (connection refused).
    Refused,
    /// The host name could not be resolved.
    Dns,
    /// Connecting failed otherwise (unreachable, TLS handshake, reset).
    Connect,
    /// No complete answer within the time left of `timeout_s`.
    Timeout,
    /// 401: the token was not accepted.
    Unauthorized,
    /// 403: the token is not allowed to do this.
    Forbidden,
    /// 429 with no `Retry-After` that fits in the time left.
    RateLimited,
    /// A 5xx status: the coach failed.
    ServerError,
    /// Another status that is not success (3xx, 4xx): the coach rejected the request.
    Rejected,
    /// The answer is not JSON.
    NotJson,
    /// The answer is JSON but not of the schema.
    WrongSchema,
    /// The answer is larger than [`MAX_ANSWER_BYTES`].
    TooLarge,
    /// The run's `timeout_s` was used up by earlier calls: not tried.
    NoTimeLeft,
}

impl FailureKind {
    /// The snake_case name used in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Refused => "refused",
            FailureKind::Dns => "dns",
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::Unauthorized => "unauthorized",
            FailureKind::Forbidden => "forbidden",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::ServerError => "server_error",
            FailureKind::Rejected => "rejected",
            FailureKind::NotJson => "not_json",
            FailureKind::WrongSchema => "wrong_schema",
            FailureKind::TooLarge => "too_large",
            FailureKind::NoTimeLeft => "no_time_left",
        }
    }

    /// Whether a report that failed this way is worth sending again later (it is queued);
    /// a coach that rejected it outright would reject it again.
    pub(crate) fn worth_retrying(self) -> bool {
        !matches!(
            self,
            FailureKind::Rejected | FailureKind::NotJson | FailureKind::WrongSchema
        )
    }
}

/// A failed call: its kind, the HTTP status if there was one, and what happened in words (never
/// the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) kind: FailureKind,
    pub(crate) status: Option<u16>,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            status: None,
            message: message.into(),
        }
    }
}

/// A successful call: the answer's body and how many attempts it took.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) body: Vec<u8>,
    pub(crate) attempts: u32,
}

/// A call's outcome with its attempt count.
pub(crate) type Outcome = Result<Answer, (Failure, u32)>;

/// Whether a call wants the answer's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Success is the status alone (a result report); the body is not read.
    Status,
    /// The body is the answer (advice): read it, capped.
    Body,
}

/// POSTs `body` (JSON) to `url` with `token`, and reads the answer if `want`ed, all before
/// `deadline`.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &reqwest::Url,
    token: Option<&Token>,
    body: &[u8],
    want: Want,
    deadline: Instant,
) -> Outcome {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err((
                Failure::new(
                    FailureKind::Timeout,
                    "no time was left of timeout_s for this call",
                ),
                attempts,
            ));
        }
        let mut request = client
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, token.header());
        }
        let attempt = async {
            let response = request.send().await.map_err(|e| transport_failure(&e))?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                return Ok(Err(retry_after(&response)));
            }
            if !status.is_success() {
                return Err(status_failure(status));
            }
            match want {
                Want::Status => Ok(Ok(Vec::new())),
                Want::Body => read_capped(response).await.map(Ok),
            }
        };
        match tokio::time::timeout(left, attempt).await {
            Err(_) => {
                return Err((
                    Failure::new(
                        FailureKind::Timeout,
                        format!(
                            "no complete answer within {:.1} s (the time left of timeout_s)",
                            left.as_secs_f64()
                        ),
                    ),
                    attempts,
                ));
            }
            Ok(Err(failure)) => return Err((failure, attempts)),
            Ok(Ok(Ok(body))) => return Ok(Answer { body, attempts }),
            Ok(Ok(Err(wait))) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let mut failure = Failure::new(FailureKind::RateLimited, String::new());
                failure.status = Some(429);
                match wait {
                    Some(wait) if wait < left && attempts < MAX_ATTEMPTS => {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    Some(wait) if attempts < MAX_ATTEMPTS => {
                        failure.message = format!(
                            "429 Too Many Requests with Retry-After {} s, more than the {:.1} s left of timeout_s",
                            wait.as_secs(),
                            left.as_secs_f64()
                        );
                    }
                    Some(_) => {
                        failure.message = format!(
                            "429 Too Many Requests {attempts} times in a row; giving up for this call"
                        );
                    }
                    None => {
                        failure.message =
                            "429 Too Many Requests without a usable Retry-After (seconds)"
                                .to_owned();
                    }
                }
                return Err((failure, attempts));
            }
        }
    }
}

/// The wait a 429 asks for, when given in seconds (an HTTP date is not honoured).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The failure of a status that is neither success nor 429.
fn status_failure(status: StatusCode) -> Failure {
    let kind = match status.as_u16() {
        401 => FailureKind::Unauthorized,
        403 => FailureKind::Forbidden,
        500..=599 => FailureKind::ServerError,
        _ => FailureKind::Rejected,
    };
    let hint = match kind {
        FailureKind::Unauthorized => {
            ": the coach did not accept the token; check token_file or token_env"
        }
        FailureKind::Forbidden => ": the token may not do this; ask the coach's operator",
        FailureKind::ServerError => ": the coach failed",
        _ => ": the coach rejected the request",
    };
    Failure {
        kind,
        status: Some(status.as_u16()),
        message: format!("HTTP {status}{hint}"),
    }
}

/// Reads a successful answer, at most [`MAX_ANSWER_BYTES`].
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let too_large = |status: u16| Failure {
        kind: FailureKind::TooLarge,
        status: Some(status),
        message: format!(
            "the answer is larger than {MAX_ANSWER_BYTES} bytes; it was cut off and ignored"
        ),
    };
    let status = response.status().as_u16();
    let announced = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
        return Err(too_large(status));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_failure(&e))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large(status));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Names a transport error by walking its causes. The message is smart's own: the client's
/// would include the URL.
fn transport_failure(error: &reqwest::Error) -> Failure {
    let mut refused = false;
    let mut dns = false;
    for e in smart_core::error_chain::chain(error) {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            refused = true;
        }
        let text = e.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            dns = true;
        }
    }
    if refused {
        Failure::new(
            FailureKind::Refused,
            "connection refused: nothing listens at the coach's address; is the coach running?",
        )
    } else if dns {
        Failure::new(
            FailureKind::Dns,
            "the coach's host name could not be resolved; check [coach] url",
        )
    } else if error.is_timeout() {
        Failure::new(FailureKind::Timeout, "the coach did not answer in time")
    } else if error.is_connect() {
        Failure::new(
            FailureKind::Connect,
            "could not connect to the coach (unreachable, or the TLS handshake failed)",
        )
    } else {
        Failure::new(
            FailureKind::Connect,
            "the connection to the coach failed before a complete answer",
        )
    }
}
