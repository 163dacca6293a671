//! The demo target's `/metrics`: a Prometheus histogram of request durations and a counter of
//! requests by status, in the text exposition format, so the `prometheus` metric source has a
//! real histogram to read (with the interpolation error real histograms have).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The histogram's upper bounds, in seconds (Prometheus client libraries' defaults, with finer
/// steps below 10 ms where the demo's pages fall).
const BUCKETS_S: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Request durations and counts, updated lock-free by every request.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    buckets: [AtomicU64; BUCKETS_S.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
    ok: AtomicU64,
    server_errors: AtomicU64,
}

impl Metrics {
    /// Records one request that took `elapsed` and answered `status`.
    pub(crate) fn record(&self, elapsed: Duration, status: u16) {
        let s = elapsed.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS_S) {
            if s <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        if status >= 500 {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        } else {
            self.ok.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The text exposition format (version 0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP demo_request_duration_seconds Time to answer a page request.\n\
             # TYPE demo_request_duration_seconds histogram\n",
        );
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS_S) {
            let _ = writeln!(
                out,
                "demo_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "demo_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             demo_request_duration_seconds_sum {}\n\
             demo_request_duration_seconds_count {count}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "# HELP demo_requests_total Page requests answered, by status class.\n\
             # TYPE demo_requests_total counter\n\
             demo_requests_total{{code=\"2xx\"}} {}\n\
             demo_requests_total{{code=\"5xx\"}} {}",
            self.ok.load(Ordering::Relaxed),
            self.server_errors.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_text_format_holds() {
        let m = Metrics::default();
        m.record(Duration::from_micros(300), 200);
        m.record(Duration::from_millis(60), 200);
        m.record(Duration::from_millis(3000), 503);
        let text = m.render();
        assert!(
            text.contains("demo_request_duration_seconds_bucket{le=\"0.0005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("demo_request_duration_seconds_bucket{le=\"0.075\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("demo_request_duration_seconds_bucket{le=\"2.5\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("demo_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("demo_request_duration_seconds_count 3\n"),
            "{text}"
        );
        assert!(
            text.contains("demo_request_duration_seconds_sum 3.0603\n"),
            "{text}"
        );
        assert!(
            text.contains("demo_requests_total{code=\"5xx\"} 1\n"),
            "{text}"
        );
    }
}
