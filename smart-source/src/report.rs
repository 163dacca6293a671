//! What a measuring command prints: one JSON object per block, turned into the engine's
//! [`BlockMeasurement`].
//!
//! ```json
//! {"requests": 1200, "errors": 3, "latencies_us": [812, 790, 1430]}
//! {"requests": 1200, "errors": 3, "quantiles_us": {"p50": 800, "p90": 1300, "p99": 4100, "mean": 910}}
//! ```
//!
//! `requests` counts everything the command attempted in the block, `errors` those that failed;
//! the latencies (or quantiles) describe the answered ones, in microseconds. Raw latencies are
//! preferred (the judge then uses the whole distribution); quantiles suit a tool that only
//! prints a summary. Unknown keys are errors, so a misspelt figure is never silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use smart_core::engine::BlockMeasurement;

use crate::error::SourceError;

/// The most raw latencies kept per block; past it a uniform subset is kept, as the probe does.
pub const MAX_LATENCIES: usize = 200_000;

/// One block's figures, as a command prints them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    requests: u64,
    errors: u64,
    #[serde(default)]
    latencies_us: Option<Vec<f64>>,
    #[serde(default)]
    quantiles_us: Option<Quantiles>,
    #[serde(default)]
    duration_s: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Quantiles {
    p50: f64,
    p90: f64,
    p99: f64,
    mean: f64,
}

/// Parses a command's output into a block measurement of `planned_s` seconds (the command may
/// say how long it really measured with `duration_s`).
pub fn parse(stdout: &[u8], planned_s: f64) -> Result<BlockMeasurement, SourceError> {
    let text = std::str::from_utf8(stdout)
        .map_err(|_| SourceError::report("its output is not UTF-8 text"))?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(SourceError::report("it printed nothing"));
    }
    let report: Report = serde_json::from_str(trimmed).map_err(|e| {
        SourceError::report(format!("its output is not the expected JSON object ({e})"))
    })?;
    if report.errors > report.requests {
        return Err(SourceError::report(format!(
            "it reports {} errors out of {} requests; errors are counted among the requests",
            report.errors, report.requests
        )));
    }
    let answered = report.requests - report.errors;
    let duration_s = match report.duration_s {
        Some(d) if d.is_finite() && d > 0.0 => d,
        Some(d) => {
            return Err(SourceError::report(format!(
                "duration_s is {d}; give the seconds measured, greater than 0, or leave it out"
            )));
        }
        None => planned_s,
    };
    let mut m = from_counts(report.requests, report.errors, Vec::new(), duration_s);
    match (report.latencies_us, report.quantiles_us) {
        (Some(_), Some(_)) => {
            return Err(SourceError::report(
                "it gives both latencies_us and quantiles_us; print one of them (raw latencies \
                 when the tool has them)",
            ));
        }
        (Some(latencies), None) => {
            if latencies.len() as u64 > answered {
                return Err(SourceError::report(format!(
                    "it gives {} latencies for {answered} answered requests (requests − errors); \
                     count every latency as a request",
                    latencies.len()
                )));
            }
            let mut micros = Vec::with_capacity(latencies.len());
            for l in latencies {
                if !l.is_finite() || l < 0.0 {
                    return Err(SourceError::report(format!(
                        "latencies_us holds {l}; every latency is a number of microseconds ≥ 0"
                    )));
                }
                micros.push(l.round() as u64);
            }
            summarise(&mut m, subsample(micros));
        }
        (None, Some(q)) => {
            let figures = [q.p50, q.p90, q.p99, q.mean];
            if figures.iter().any(|f| !f.is_finite() || *f < 0.0) {
                return Err(SourceError::report(
                    "quantiles_us holds a value that is not a number of microseconds ≥ 0 \
                     (NaN, infinite or negative); a block without data must fail, not report zero",
                ));
            }
            if !(q.p50 <= q.p90 && q.p90 <= q.p99) {
                return Err(SourceError::report(format!(
                    "quantiles_us is not ordered (p50 {} ≤ p90 {} ≤ p99 {} must hold)",
                    q.p50, q.p90, q.p99
                )));
            }
            if answered > 0 {
                m.p50_us = Some(q.p50.round() as u64);
                m.p90_us = Some(q.p90.round() as u64);
                m.p99_us = Some(q.p99.round() as u64);
                m.mean_us = Some(q.mean);
            }
        }
        (None, None) if answered == 0 => {}
        (None, None) => {
            return Err(SourceError::report(format!(
                "it reports {answered} answered requests but neither latencies_us nor \
                 quantiles_us; print one of them"
            )));
        }
    }
    Ok(m)
}

/// A block from its counts and the latencies of its answered requests (any order), as a source
/// that sees every request (a log) tallies them.
pub fn from_counts(
    requests: u64,
    errors: u64,
    latencies: Vec<u64>,
    duration_s: f64,
) -> BlockMeasurement {
    let mut m = BlockMeasurement {
        duration_s,
        requests,
        errors,
        outcomes: BTreeMap::from([
            ("ok".to_owned(), requests - errors),
            ("error".to_owned(), errors),
        ]),
        rate_per_s: requests as f64 / duration_s,
        ..BlockMeasurement::default()
    };
    summarise(&mut m, subsample(latencies));
    m
}

/// At most [`MAX_LATENCIES`], every k-th in the order measured.
fn subsample(latencies: Vec<u64>) -> Vec<u64> {
    if latencies.len() <= MAX_LATENCIES {
        return latencies;
    }
    let step = latencies.len().div_ceil(MAX_LATENCIES);
    latencies.into_iter().step_by(step).collect()
}

/// Fills the block's figures from its raw latencies.
fn summarise(m: &mut BlockMeasurement, latencies: Vec<u64>) {
    if !latencies.is_empty() {
        let mut sorted = latencies.clone();
        sorted.sort_unstable();
        // The nearest rank, as the probe's histogram reports it.
        let rank =
            |p: f64| sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
        m.p50_us = Some(rank(0.5));
        m.p90_us = Some(rank(0.9));
        m.p99_us = Some(rank(0.99));
        m.mean_us = Some(sorted.iter().map(|&x| x as f64).sum::<f64>() / sorted.len() as f64);
    }
    m.latencies_us = latencies;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_latencies_give_counts_and_figures() {
        let m = parse(
            br#"{"requests": 5, "errors": 1, "latencies_us": [400, 100, 300, 200.4]}"#,
            10.0,
        )
        .unwrap();
        assert_eq!((m.requests, m.errors, m.duration_s), (5, 1, 10.0));
        assert_eq!(m.latencies_us, [400, 100, 300, 200]);
        assert_eq!((m.p50_us, m.p99_us), (Some(200), Some(400)));
        assert_eq!(m.mean_us, Some(250.0));
        assert_eq!(m.outcomes["ok"], 4);
        assert_eq!(m.rate_per_s, 0.5);
    }

    #[test]
    fn quantiles_alone_are_a_block_without_raw_latencies() {
        let m = parse(
            br#"{"requests": 100, "errors": 0, "duration_s": 4,
                 "quantiles_us": {"p50": 10, "p90": 20, "p99": 30, "mean": 12.5}}"#,
            10.0,
        )
        .unwrap();
        assert!(m.latencies_us.is_empty());
        assert_eq!(
            (m.p50_us, m.p90_us, m.p99_us),
            (Some(10), Some(20), Some(30))
        );
        assert_eq!(
            (m.mean_us, m.duration_s, m.rate_per_s),
            (Some(12.5), 4.0, 25.0)
        );
    }

    #[test]
    fn a_block_where_everything_failed_has_no_latency() {
        let m = parse(br#"{"requests": 7, "errors": 7}"#, 10.0).unwrap();
        assert_eq!((m.errors, m.p50_us), (7, None));
    }

    #[test]
    fn a_long_block_keeps_a_uniform_subset() {
        let n = MAX_LATENCIES * 2 + 1;
        let latencies: Vec<String> = (0..n).map(|i| (i % 1000).to_string()).collect();
        let json = format!(
            r#"{{"requests": {n}, "errors": 0, "latencies_us": [{}]}}"#,
            latencies.join(",")
        );
        let m = parse(json.as_bytes(), 10.0).unwrap();
        assert!(
            m.latencies_us.len() <= MAX_LATENCIES,
            "{}",
            m.latencies_us.len()
        );
        assert!(m.latencies_us.len() > MAX_LATENCIES / 2);
        assert_eq!(m.requests, n as u64);
    }

    #[test]
    fn wrong_output_is_refused_with_the_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "printed nothing"),
            (b"tps = 300", "not the expected JSON"),
            (br#"{"requests": 1, "errors": 0, "latency": [1]}"#, "unknown field"),
            (br#"{"requests": 1, "errors": 2}"#, "2 errors out of 1"),
            (br#"{"requests": 3, "errors": 0}"#, "neither latencies_us nor quantiles_us"),
            (br#"{"requests": 1, "errors": 0, "latencies_us": [1, 2]}"#, "2 latencies for 1"),
            (br#"{"requests": 1, "errors": 0, "latencies_us": [-1]}"#, "≥ 0"),
            (
                br#"{"requests": 9, "errors": 0, "quantiles_us": {"p50": 5, "p90": 4, "p99": 6, "mean": 5}}"#,
                "not ordered",
            ),
            (
                br#"{"requests": 9, "errors": 0, "duration_s": 0, "latencies_us": [1]}"#,
                "duration_s is 0",
            ),
            (
                br#"{"requests": 9, "errors": 0, "latencies_us": [1], "quantiles_us": {"p50": 1, "p90": 1, "p99": 1, "mean": 1}}"#,
                "both",
            ),
        ];
        for (out, words) in cases {
            let e = parse(out, 10.0).unwrap_err().to_string();
            assert!(e.contains(words), "{}: {e}", String::from_utf8_lossy(out));
        }
    }
}
