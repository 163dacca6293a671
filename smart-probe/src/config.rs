//! The probe's settings: an experiment's `target` plus probe-only settings (load shape, cap on
//! requests in flight, guardrail window). A validated experiment's target ([`ProbeTarget`]) is
//! only converted, never re-checked; a target written by hand (`smart probe`'s flags) is checked
//! here once, so the runner never re-checks either.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use smart_core::ProbeTarget;
use smart_core::experiment::{Guardrails, Method, Percent, Target};
use smart_core::redact;

use crate::ProbeError;

/// The default cap on requests in flight at once (and so on open connections).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// The default cap on raw samples kept per block (8 bytes each, so 800 KB).
pub const DEFAULT_MAX_SAMPLES: usize = 100_000;

/// The highest open-loop rate accepted, in requests per second.
const MAX_RATE_PER_S: f64 = 1_000_000.0;

/// How the probe generates load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Load {
    /// Open loop: requests on a fixed timetable at this rate, whatever the server does; latency
    /// counts from each request's intended send time (coordinated omission corrected).
    Open {
        /// Requests per second.
        rate_per_s: f64,
    },
    /// Closed loop: this many connections, each sending its next request as soon as the last
    /// answer arrives, for maximum throughput. Latency counts from the actual send.
    Closed {
        /// Connections (and requests in flight).
        connections: usize,
    },
}

/// When a running block is stopped early, from an experiment's `guardrails`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardConfig {
    window: Duration,
    max_error_rate_pct: f64,
}

impl GuardConfig {
    /// Aborts when more than `max_error_rate_pct` percent of the outcomes of the last `window`
    /// are errors, or when the target has not answered at all for `window`.
    pub fn new(window: Duration, max_error_rate_pct: Percent) -> Result<GuardConfig, ProbeError> {
        if window.is_zero() {
            return Err(ProbeError::invalid(
                "guardrails.abort_window_s",
                "must be more than 0 seconds",
            ));
        }
        Ok(GuardConfig {
            window,
            max_error_rate_pct: max_error_rate_pct.get(),
        })
    }

    /// The guard of an experiment's `guardrails` (`abort_window_s`, `abort_error_rate_pct`).
    pub fn from_guardrails(guardrails: &Guardrails) -> Result<GuardConfig, ProbeError> {
        let window = Duration::try_from_secs_f64(guardrails.abort_window_s).map_err(|_| {
            ProbeError::invalid(
                "guardrails.abort_window_s",
                format!(
                    "{} is not a number of seconds; use e.g. 5",
                    guardrails.abort_window_s
                ),
            )
        })?;
        GuardConfig::new(window, guardrails.abort_error_rate_pct)
    }

    /// The trailing window over which the error rate is measured.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The error rate, in percent, above which a block is aborted.
    pub fn max_error_rate_pct(&self) -> f64 {
        self.max_error_rate_pct
    }
}

/// Checked probe settings: [`ProbeConfig::new`] for a validated experiment's target,
/// [`ProbeConfig::builder`] for a target written by hand or other probe-only settings.
#[derive(Clone)]
pub struct ProbeConfig {
    pub(crate) urls: Vec<reqwest::Url>,
    pub(crate) method: reqwest::Method,
    pub(crate) headers: HeaderMap,
    pub(crate) timeout: Duration,
    pub(crate) ok_status: Vec<u16>,
    pub(crate) load: Load,
    pub(crate) max_in_flight: usize,
    pub(crate) max_samples: usize,
}

impl ProbeConfig {
    /// The settings for a validated experiment's target: its URLs, method, headers, timeout,
    /// `ok_status`, an open loop at its `rate_per_s` and the default caps. Cannot fail:
    /// validation checked every one of them.
    pub fn new(target: &ProbeTarget) -> ProbeConfig {
        let method = match target.method() {
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
        };
        let mut headers = HeaderMap::new();
        for (name, value) in target.headers() {
            // Validation admits token names and values without control characters: both are
            // exactly what these conversions accept.
            let header = HeaderName::from_bytes(name.as_bytes())
                .expect("validation checked that header names are tokens");
            let mut value = HeaderValue::from_bytes(value.as_bytes())
                .expect("validation checked that header values hold no control character");
            if redact::is_secret_header(name) {
                value.set_sensitive(true);
            }
            headers.insert(header, value);
        }
        ProbeConfig {
            urls: target.urls().to_vec(),
            method,
            headers,
            timeout: target.timeout(),
            ok_status: target.ok_status().to_vec(),
            load: Load::Open {
                rate_per_s: target.rate_per_s(),
            },
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_samples: DEFAULT_MAX_SAMPLES,
        }
    }

    /// Starts from a target written by hand (not validated as an experiment, e.g. `smart
    /// probe`'s flags): its URLs, method, headers, timeout, `ok_status` and an open loop at its
    /// `rate_per_s`, all checked by [`ProbeConfigBuilder::build`].
    pub fn builder(target: &Target) -> ProbeConfigBuilder {
        ProbeConfigBuilder {
            base: check_target(target),
            load: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_samples: DEFAULT_MAX_SAMPLES,
        }
    }

    /// Continues from these settings, e.g. a validated target's with another load.
    pub fn into_builder(self) -> ProbeConfigBuilder {
        ProbeConfigBuilder {
            max_in_flight: self.max_in_flight,
            max_samples: self.max_samples,
            load: Some(self.load),
            base: Ok(self),
        }
    }

    /// The URLs, requested in round-robin.
    pub fn urls(&self) -> &[reqwest::Url] {
        &self.urls
    }

    /// How load is generated.
    pub fn load(&self) -> Load {
        self.load
    }

    /// How long one request may take (connect, send, whole body) before it is a timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The cap on requests in flight in open loop; a send it refuses is an `overload` outcome.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// The cap on raw samples kept per block.
    pub fn max_samples(&self) -> usize {
        self.max_samples
    }

    /// The request headers as they may be shown: secret values replaced as
    /// [`smart_core::redact`] says (`Authorization`, `Cookie`, ...).
    pub fn headers_redacted(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes());
                (
                    name.as_str().to_owned(),
                    redact::shown_value(name.as_str(), &value).to_owned(),
                )
            })
            .collect()
    }
}

impl fmt::Debug for ProbeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeConfig")
            .field(
                "urls",
                &self.urls.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
            )
            .field("method", &self.method)
            .field("headers", &self.headers_redacted())
            .field("timeout", &self.timeout)
            .field("ok_status", &self.ok_status)
            .field("load", &self.load)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_samples", &self.max_samples)
            .finish()
    }
}

/// Builds a [`ProbeConfig`]; the probe-only settings (and a hand-written target) are checked in
/// [`ProbeConfigBuilder::build`].
#[derive(Debug)]
pub struct ProbeConfigBuilder {
    /// The target's settings, or why a hand-written target is invalid.
    base: Result<ProbeConfig, ProbeError>,
    load: Option<Load>,
    max_in_flight: usize,
    max_samples: usize,
}

impl ProbeConfigBuilder {
    /// Replaces the target's open-loop rate by another load shape (e.g. closed loop for `--max`).
    pub fn load(mut self, load: Load) -> ProbeConfigBuilder {
        self.load = Some(load);
        self
    }

    /// The cap on requests in flight (default [`DEFAULT_MAX_IN_FLIGHT`]).
    pub fn max_in_flight(mut self, max: usize) -> ProbeConfigBuilder {
        self.max_in_flight = max;
        self
    }

    /// The cap on raw samples kept per block (default [`DEFAULT_MAX_SAMPLES`]).
    pub fn max_samples(mut self, max: usize) -> ProbeConfigBuilder {
        self.max_samples = max;
        self
    }

    /// Checks every setting; errors name the field as the user wrote it.
    pub fn build(self) -> Result<ProbeConfig, ProbeError> {
        let mut config = self.base?;
        let load = self.load.unwrap_or(config.load);
        match load {
            Load::Open { rate_per_s } => {
                if !(rate_per_s > 0.0 && rate_per_s <= MAX_RATE_PER_S) {
                    return Err(ProbeError::invalid(
                        "target.rate_per_s",
                        format!(
                            "{rate_per_s} is out of range; use more than 0 and at most {MAX_RATE_PER_S}"
                        ),
                    ));
                }
            }
            Load::Closed { connections } => {
                if connections == 0 {
                    return Err(ProbeError::invalid("connections", "must be at least 1"));
                }
            }
        }
        if self.max_in_flight == 0 {
            return Err(ProbeError::invalid("max_in_flight", "must be at least 1"));
        }
        if self.max_samples == 0 {
            return Err(ProbeError::invalid("max_samples", "must be at least 1"));
        }
        config.load = load;
        config.max_in_flight = self.max_in_flight;
        config.max_samples = self.max_samples;
        Ok(config)
    }
}

/// A hand-written target's settings, each checked; the load is its open loop, checked by
/// [`ProbeConfigBuilder::build`] with the other load shapes.
fn check_target(target: &Target) -> Result<ProbeConfig, ProbeError> {
    if target.urls.is_empty() {
        return Err(ProbeError::invalid(
            "target.urls",
            "is empty; give at least one http:// or https:// URL",
        ));
    }
    let urls = target
        .urls
        .iter()
        .enumerate()
        .map(|(i, url)| parse_url(i, url))
        .collect::<Result<Vec<_>, _>>()?;
    let method = match target.method {
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &target.headers {
        let field = format!("target.headers.{name}");
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ProbeError::invalid(&field, "is not a valid header name; use e.g. `X-Probe`")
        })?;
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            ProbeError::invalid(
                &field,
                "has a value with a control or non-ASCII character; remove it",
            )
        })?;
        if redact::is_secret_header(name) {
            value.set_sensitive(true);
        }
        headers.insert(header, value);
    }
    if target.timeout_ms == 0 {
        return Err(ProbeError::invalid(
            "target.timeout_ms",
            "must be more than 0; use e.g. 2000",
        ));
    }
    if target.ok_status.is_empty() {
        return Err(ProbeError::invalid(
            "target.ok_status",
            "is empty; list the status codes that count as success, e.g. [200]",
        ));
    }
    if let Some(bad) = target.ok_status.iter().find(|s| !(100..=599).contains(*s)) {
        return Err(ProbeError::invalid(
            "target.ok_status",
            format!("{bad} is not an HTTP status code; use codes from 100 to 599"),
        ));
    }
    Ok(ProbeConfig {
        urls,
        method,
        headers,
        timeout: Duration::from_millis(target.timeout_ms),
        ok_status: target.ok_status.clone(),
        load: Load::Open {
            rate_per_s: target.rate_per_s,
        },
        max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        max_samples: DEFAULT_MAX_SAMPLES,
    })
}

fn parse_url(index: usize, url: &str) -> Result<reqwest::Url, ProbeError> {
    let field = format!("target.urls[{index}]");
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        ProbeError::invalid(
            &field,
            format!("`{url}` is not a URL ({e}); write it like http://127.0.0.1:8080/"),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(ProbeError::invalid(
            &field,
            format!("`{url}` is not an http:// or https:// URL with a host"),
        ));
    }
    Ok(parsed)
}

/// One measurement block: load runs for `warmup + measure`; outcomes whose intended send time
/// falls in the warm-up are not recorded (they still count for the guard).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockPlan {
    /// Load that is sent but not recorded, e.g. the seconds after a config change.
    pub warmup: Duration,
    /// How long the recorded part of the block lasts.
    pub measure: Duration,
    /// Stops the block early when it trips; `None` runs it to its end whatever happens.
    pub guard: Option<GuardConfig>,
}

impl BlockPlan {
    /// A block of `measure`, without warm-up or guard.
    pub fn measure(measure: Duration) -> BlockPlan {
        BlockPlan {
            warmup: Duration::ZERO,
            measure,
            guard: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(json: &str) -> Target {
        serde_json::from_str(json).unwrap()
    }

    fn check(json: &str, field: Option<&str>) {
        let got = ProbeConfig::builder(&target(json)).build();
        match (got, field) {
            (Ok(_), None) => {}
            (Err(e), Some(field)) => {
                assert!(e.is_bad_input(), "{e}");
                assert_eq!(e.field(), Some(field), "{e}");
            }
            (Ok(c), Some(field)) => {
                panic!("{json}: accepted ({c:?}), expected an error on {field}")
            }
            (Err(e), None) => panic!("{json}: rejected: {e}"),
        }
    }

    #[test]
    fn settings_are_checked_and_errors_name_the_field() {
        check(r#"{"urls": ["http://127.0.0.1:1/"]}"#, None);
        check(r#"{"urls": ["https://example.invalid/x?y=1"]}"#, None);
        check(r#"{"urls": []}"#, Some("target.urls"));
        check(
            r#"{"urls": ["http://a/", "ftp://b/"]}"#,
            Some("target.urls[1]"),
        );
        check(r#"{"urls": ["not a url"]}"#, Some("target.urls[0]"));
        check(
            r#"{"urls": ["http://a/"], "rate_per_s": 0}"#,
            Some("target.rate_per_s"),
        );
        check(
            r#"{"urls": ["http://a/"], "rate_per_s": -3}"#,
            Some("target.rate_per_s"),
        );
        check(
            r#"{"urls": ["http://a/"], "timeout_ms": 0}"#,
            Some("target.timeout_ms"),
        );
        check(
            r#"{"urls": ["http://a/"], "ok_status": []}"#,
            Some("target.ok_status"),
        );
        check(
            r#"{"urls": ["http://a/"], "ok_status": [99]}"#,
            Some("target.ok_status"),
        );
        check(
            r#"{"urls": ["http://a/"], "headers": {"Bad Name": "x"}}"#,
            Some("target.headers.Bad Name"),
        );
        check(
            r#"{"urls": ["http://a/"], "headers": {"X-A": "line\nbreak"}}"#,
            Some("target.headers.X-A"),
        );
    }

    #[test]
    fn probe_only_settings_are_checked() {
        let t = target(r#"{"urls": ["http://a/"]}"#);
        let err = |b: ProbeConfigBuilder| b.build().unwrap_err().field().map(str::to_owned);
        assert_eq!(
            err(ProbeConfig::builder(&t).load(Load::Closed { connections: 0 })),
            Some("connections".into())
        );
        assert_eq!(
            err(ProbeConfig::builder(&t).max_in_flight(0)),
            Some("max_in_flight".into())
        );
        assert_eq!(
            err(ProbeConfig::builder(&t).max_samples(0)),
            Some("max_samples".into())
        );
        let bad = Guardrails {
            abort_window_s: 0.0,
            ..Guardrails::default()
        };
        assert_eq!(
            GuardConfig::from_guardrails(&bad).unwrap_err().field(),
            Some("guardrails.abort_window_s")
        );
        let guard = GuardConfig::from_guardrails(&Guardrails::default()).unwrap();
        assert_eq!(guard.window(), Duration::from_secs(5));
        assert_eq!(guard.max_error_rate_pct(), 20.0);
    }

    #[test]
    fn a_validated_target_converts_without_a_second_check() {
        let json = r#"{"name": "t", "target": {"urls": ["http://127.0.0.1:9/a", "https://b.test/"],
            "method": "HEAD", "headers": {"Authorization": "Bearer s3cret", "X-Name": "Zoë"},
            "rate_per_s": 20, "timeout_ms": 1500, "ok_status": [200, 204]},
            "apply": {"files": [{"path": "/etc/t.conf", "template": "x {{ x }};\n"}]},
            "variants": [{"name": "v", "params": {"x": 1}}]}"#;
        let experiment = smart_core::validate::validate_text(
            json,
            "t.json".as_ref(),
            &smart_core::Defaults::default(),
        )
        .unwrap();
        let config = ProbeConfig::new(experiment.probe_target().unwrap());
        assert_eq!(config.urls().len(), 2);
        assert_eq!(config.method, reqwest::Method::HEAD);
        assert_eq!(config.load(), Load::Open { rate_per_s: 20.0 });
        assert_eq!(config.timeout(), Duration::from_millis(1500));
        assert_eq!(config.ok_status, [200, 204]);
        assert_eq!(config.max_in_flight(), DEFAULT_MAX_IN_FLIGHT);
        assert_eq!(config.headers["x-name"].as_bytes(), "Zoë".as_bytes());
        assert!(config.headers["authorization"].is_sensitive());
        let closed = config
            .into_builder()
            .load(Load::Closed { connections: 4 })
            .build()
            .unwrap();
        assert_eq!(closed.load(), Load::Closed { connections: 4 });
        assert_eq!(closed.urls().len(), 2);
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let t = target(
            r#"{"urls": ["http://a/"], "headers": {"Authorization": "Bearer s3cret",
                "Cookie": "id=s3cret", "X-Trace": "visible"}}"#,
        );
        let config = ProbeConfig::builder(&t).build().unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("visible"), "{shown}");
    }
}
