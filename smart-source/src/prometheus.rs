//! The `prometheus` source: each block's figures from PromQL, evaluated by a Prometheus server
//! over exactly the block's recorded part.
//!
//! After a block ends, the source waits one scrape interval (so the last samples are ingested),
//! then asks the query API (`/api/v1/query`) at the block's end time with `$window` set to the
//! block's length: the latency quantiles (`$quantile` = 0.5, 0.9, 0.99), the mean, the request
//! count and the error ratio. Each answer must be exactly one finite sample: no data, `NaN`
//! (a histogram with no requests in the window), several series or a stale series (Prometheus
//! returns nothing for it) make the block invalid and the run stop with the original restored —
//! never a zero. Histogram quantiles carry the interpolation error of the histogram's buckets;
//! the judge sees block quantiles only (no raw latencies).
//!
//! The `Authorization` header comes from the environment (`auth_header_env`, read by the CLI);
//! it is marked sensitive and appears in no message.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use smart_core::engine::{self, BlockMeasurement, BlockRequest, LiveProgress, PortError};
use smart_core::experiment::Prometheus;

use crate::error::SourceError;
use crate::report;

/// How long one query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Added to the scrape interval before querying, for the scrape to be stored.
const INGEST_MARGIN: Duration = Duration::from_millis(250);

/// A Prometheus server and the experiment's queries, as the engine's measurement port.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    spec: Prometheus,
    endpoint: url::Url,
    client: reqwest::Client,
    auth: Option<HeaderValue>,
}

impl PrometheusSource {
    /// The source of `spec`; `auth` is the `Authorization` header's value, when the experiment
    /// names an `auth_header_env` (the CLI reads the variable).
    pub fn new(spec: &Prometheus, auth: Option<&str>) -> Result<PrometheusSource, SourceError> {
        let mut base = url::Url::parse(&spec.url)
            .map_err(|e| SourceError::Setup(format!("measure.prometheus.url {}: {e}", spec.url)))?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let endpoint = base
            .join("api/v1/query")
            .map_err(|e| SourceError::Setup(format!("measure.prometheus.url {}: {e}", spec.url)))?;
        let auth = match auth {
            None => None,
            Some(value) => {
                let mut header = HeaderValue::from_str(value).map_err(|_| {
                    SourceError::Setup(
                        "measure.prometheus.auth_header_env: the variable's value is not a valid \
                         header value (one line of visible ASCII); check how it was set"
                            .to_owned(),
                    )
                })?;
                header.set_sensitive(true);
                Some(header)
            }
        };
        let client = reqwest::Client::builder()
            .timeout(QUERY_TIMEOUT)
            .build()
            .map_err(|e| SourceError::Setup(format!("cannot build the HTTP client: {e}")))?;
        Ok(PrometheusSource {
            spec: spec.clone(),
            endpoint,
            client,
            auth,
        })
    }

    /// Waits out one block, then queries its figures.
    pub async fn run_block(
        &self,
        warmup: Duration,
        duration: Duration,
        progress: &mut dyn FnMut(&LiveProgress),
    ) -> Result<BlockMeasurement, SourceError> {
        let end = SystemTime::now() + warmup + duration;
        let started = tokio::time::Instant::now();
        let ingest = Duration::from_secs_f64(self.spec.scrape_interval_s) + INGEST_MARGIN;
        let until = started + warmup + duration + ingest;
        loop {
            let next = (tokio::time::Instant::now() + Duration::from_secs(1)).min(until);
            tokio::time::sleep_until(next).await;
            let elapsed = started.elapsed();
            progress(&LiveProgress {
                warming_up: elapsed < warmup,
                elapsed_s: elapsed.as_secs_f64(),
                ..LiveProgress::default()
            });
            if next >= until {
                break;
            }
        }
        self.block_at(end, duration).await
    }

    /// The figures of the `window` that ends at `end`.
    pub async fn block_at(
        &self,
        end: SystemTime,
        window: Duration,
    ) -> Result<BlockMeasurement, SourceError> {
        let time = end
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let range = format!("{}ms", window.as_millis().max(1));
        let fill = |expr: &str, q: Option<&str>| {
            let expr = expr.replace("$window", &range);
            match q {
                Some(q) => expr.replace("$quantile", q),
                None => expr,
            }
        };
        let requests = self
            .value("requests", &fill(&self.spec.requests, None), time)
            .await?;
        if requests < 0.5 {
            return Err(SourceError::NoData(format!(
                "measure.prometheus.requests counts {requests:.2} requests in the block, so it \
                 cannot be judged; check that the target has traffic and is scraped, or lengthen \
                 schedule.block_s"
            )));
        }
        let error_ratio = self
            .value("error_ratio", &fill(&self.spec.error_ratio, None), time)
            .await?;
        if !(0.0..=1.0).contains(&error_ratio) {
            return Err(SourceError::NoData(format!(
                "measure.prometheus.error_ratio is {error_ratio}, not a share between 0 and 1; \
                 divide the failed requests by all requests"
            )));
        }
        let mut quantiles = [0.0; 3];
        for (slot, q) in quantiles.iter_mut().zip(["0.5", "0.9", "0.99"]) {
            *slot = self
                .value(
                    "latency_quantile",
                    &fill(&self.spec.latency_quantile, Some(q)),
                    time,
                )
                .await?;
        }
        let mean = self
            .value("latency_mean", &fill(&self.spec.latency_mean, None), time)
            .await?;
        let requests = requests.round() as u64;
        let errors = ((error_ratio * requests as f64).round() as u64).min(requests);
        let us = |s: f64| (s * 1e6).round().max(0.0) as u64;
        let mut m = report::from_counts(requests, errors, Vec::new(), window.as_secs_f64());
        // histogram_quantile interpolates within buckets and can break the order by rounding.
        m.p50_us = Some(us(quantiles[0]));
        m.p90_us = Some(us(quantiles[1]).max(us(quantiles[0])));
        m.p99_us = Some(us(quantiles[2]).max(us(quantiles[1])).max(us(quantiles[0])));
        m.mean_us = Some(mean * 1e6);
        Ok(m)
    }

    /// One instant query that must answer exactly one finite sample.
    async fn value(&self, key: &str, query: &str, time: f64) -> Result<f64, SourceError> {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("query", query)
            .append_pair("time", &format!("{time:.3}"));
        let mut request = self.client.get(url);
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let field = format!("measure.prometheus.{key}");
        let response = request.send().await.map_err(|e| {
            SourceError::NoData(format!(
                "{field}: the query to {} failed ({}); check that Prometheus is up at that URL",
                self.spec.url,
                e.without_url()
            ))
        })?;
        let status = response.status();
        let body: QueryResponse = response.json().await.map_err(|e| {
            SourceError::NoData(format!(
                "{field}: {} answered {status} with something other than the query API's JSON \
                 ({}); check measure.prometheus.url",
                self.spec.url,
                e.without_url()
            ))
        })?;
        if body.status != "success" {
            return Err(SourceError::NoData(format!(
                "{field}: Prometheus refused `{query}`: {}; fix the expression",
                body.error.unwrap_or_else(|| status.to_string())
            )));
        }
        let data = body.data.ok_or_else(|| {
            SourceError::NoData(format!("{field}: Prometheus answered without data"))
        })?;
        let sample = match (data.result_type.as_str(), data.result) {
            ("scalar", serde_json::Value::Array(pair)) => pair.get(1).cloned(),
            ("vector", serde_json::Value::Array(series)) => match series.as_slice() {
                [] => {
                    return Err(SourceError::NoData(format!(
                        "{field}: `{query}` has no data for the block (no samples, or the series \
                         went stale); the block cannot be judged: check the metric names and \
                         labels, and that the target is scraped"
                    )));
                }
                [one] => one.get("value").and_then(|v| v.get(1)).cloned(),
                many => {
                    return Err(SourceError::NoData(format!(
                        "{field}: `{query}` gives {} series; aggregate it to one, e.g. with sum(...) \
                         or sum by (le) (...) inside histogram_quantile",
                        many.len()
                    )));
                }
            },
            (other, _) => {
                return Err(SourceError::NoData(format!(
                    "{field}: `{query}` gives a {other}; it must give one number (an instant vector \
                     of one series)"
                )));
            }
        };
        let value = sample
            .as_ref()
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| {
                SourceError::NoData(format!(
                    "{field}: Prometheus answered a sample without a value"
                ))
            })?;
        if !value.is_finite() {
            return Err(SourceError::NoData(format!(
                "{field}: `{query}` is {value} for the block (no requests in the window, or a \
                 division by zero); the block cannot be judged, and is never taken as zero"
            )));
        }
        Ok(value)
    }
}

#[derive(Debug, Deserialize)]
struct QueryResponse {
    status: String,
    #[serde(default)]
    data: Option<QueryData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

impl engine::ProbePort for PrometheusSource {
    async fn measure(
        &mut self,
        request: &BlockRequest<'_>,
        progress: &mut dyn FnMut(&LiveProgress),
    ) -> Result<BlockMeasurement, PortError> {
        self.run_block(request.warmup, request.duration, progress)
            .await
            .map_err(PortError::new)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const SECRET: &str = "Bearer s3cret-token";

    /// How the fake server answers a query.
    type Answer = fn(&str) -> String;

    /// The query API's answer for one finite sample, and for several samples.
    fn one(value: &str) -> String {
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1.0,"{value}"]}}]}}}}"#
        )
    }
    const EMPTY: &str = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    const TWO: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1.0,"1"]},{"metric":{"a":"2"},"value":[1.0,"2"]}]}}"#;

    /// A fake Prometheus on loopback: answers each query with `answer(query)` and records the
    /// `Authorization` headers it was sent.
    async fn server(answer: Answer) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let auth = seen.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut bytes = Vec::new();
                let mut buf = [0u8; 4096];
                while !bytes.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    bytes.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&bytes).into_owned();
                let target = head.split(' ').nth(1).unwrap_or("/");
                let parsed = url::Url::parse(&format!("http://x{target}")).unwrap();
                let query = parsed
                    .query_pairs()
                    .find(|(k, _)| k == "query")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                for line in head.lines() {
                    if let Some(v) = line.strip_prefix("authorization: ") {
                        auth.lock().unwrap().push(v.to_owned());
                    }
                }
                let body = answer(&query);
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        (url, seen)
    }

    fn spec(url: &str) -> Prometheus {
        Prometheus {
            url: url.to_owned(),
            latency_quantile:
                "histogram_quantile($quantile, sum by (le) (rate(h_bucket[$window])))".to_owned(),
            latency_mean: "sum(rate(h_sum[$window])) / sum(rate(h_count[$window]))".to_owned(),
            requests: "sum(increase(r_total[$window]))".to_owned(),
            error_ratio: "sum(increase(e_total[$window])) / sum(increase(r_total[$window]))"
                .to_owned(),
            scrape_interval_s: 1.0,
            auth_header_env: Some("SMART_PROMETHEUS_AUTH".to_owned()),
        }
    }

    /// Measures one block against a fake server answering with `answer`.
    async fn block(answer: Answer) -> (Result<BlockMeasurement, SourceError>, Vec<String>) {
        let (url, seen) = server(answer).await;
        let source = PrometheusSource::new(&spec(&url), Some(SECRET)).unwrap();
        assert!(
            !format!("{source:?}").contains("s3cret"),
            "the header's value is marked sensitive"
        );
        let result = source
            .block_at(SystemTime::now(), Duration::from_secs(10))
            .await;
        let auth = seen.lock().unwrap().clone();
        (result, auth)
    }

    /// A healthy answer for every query but the ones `bad` names.
    fn healthy(query: &str) -> String {
        if query.contains("histogram_quantile(0.99") {
            one("0.050")
        } else if query.contains("histogram_quantile(0.9,") {
            one("0.020")
        } else if query.contains("histogram_quantile") {
            one("0.010")
        } else if query.contains("h_sum") {
            one("0.012")
        } else if query.contains("e_total") {
            one("0.01")
        } else {
            one("400")
        }
    }

    #[tokio::test]
    async fn a_block_takes_its_quantiles_and_counts_over_its_window_with_the_header() {
        let (result, auth) = block(|q| {
            assert!(q.contains("[10000ms]"), "the window is the block's: {q}");
            healthy(q)
        })
        .await;
        let m = result.unwrap();
        assert_eq!((m.requests, m.errors), (400, 4));
        assert_eq!(
            (m.p50_us, m.p90_us, m.p99_us),
            (Some(10_000), Some(20_000), Some(50_000))
        );
        assert!(m.latencies_us.is_empty(), "block quantiles only");
        assert_eq!(auth.len(), 6, "every query carries the header");
        assert!(auth.iter().all(|a| a == SECRET), "{auth:?}");
    }

    #[tokio::test]
    async fn no_data_nan_several_series_or_no_requests_is_never_a_zero() {
        let cases: [(Answer, &str); 5] = [
            (
                |q| {
                    if q.contains("histogram_quantile(0.5") {
                        one("NaN")
                    } else {
                        healthy(q)
                    }
                },
                "is NaN for the block",
            ),
            (
                |q| {
                    if q.contains("h_sum") {
                        EMPTY.to_owned()
                    } else {
                        healthy(q)
                    }
                },
                "has no data for the block (no samples, or the series went stale)",
            ),
            (
                |q| {
                    if q.contains("e_total") {
                        TWO.to_owned()
                    } else {
                        healthy(q)
                    }
                },
                "gives 2 series",
            ),
            (
                |q| {
                    if q.starts_with("sum(increase(r_total") {
                        one("0")
                    } else {
                        healthy(q)
                    }
                },
                "counts 0.00 requests in the block",
            ),
            (
                |q| {
                    if q.contains("histogram_quantile(0.99") {
                        one("+Inf")
                    } else {
                        healthy(q)
                    }
                },
                "is inf for the block",
            ),
        ];
        for (answer, words) in cases {
            let (result, _) = block(answer).await;
            let err = result.expect_err(words).to_string();
            assert!(err.contains(words), "expected `{words}` in: {err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }
}
