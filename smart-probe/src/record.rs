//! What one block records: an HdrHistogram of ok latencies, outcome and status counts, and the
//! raw samples in a compact bounded form, turned into a serializable [`BlockResult`].

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Abort, Load, Outcome, OutcomeCounts};

/// Latencies above this (in µs, about 537 s) are stored as this in a [`Sample`].
const SAMPLE_MAX_LATENCY_US: u32 = (1 << 29) - 1;
/// The histogram's highest trackable value: 10 minutes, in µs; higher values saturate.
const HISTOGRAM_MAX_US: u64 = 600_000_000;
/// Significant decimal digits the histogram keeps (0.1 % relative precision).
const HISTOGRAM_SIGFIG: u8 = 3;

/// One request, in 8 bytes: when it was due, its latency and its outcome.
///
/// The time is the intended send time (open loop) or the actual one (closed loop), in whole
/// milliseconds from the start of the block's measured part (up to 49 days); the latency is in
/// microseconds, saturating at about 537 s; overloads have latency 0. In JSON a sample is
/// `[at_ms, latency_us, "outcome"]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    at_ms: u32,
    /// The latency in µs in the low 29 bits, the outcome's code in the high 3.
    packed: u32,
}

impl Sample {
    /// A sample at offset `at` with `latency` and `outcome`.
    pub fn new(at: Duration, latency: Duration, outcome: Outcome) -> Sample {
        let at_ms = u32::try_from(at.as_millis()).unwrap_or(u32::MAX);
        let latency_us = u32::try_from(latency.as_micros())
            .unwrap_or(u32::MAX)
            .min(SAMPLE_MAX_LATENCY_US);
        Sample {
            at_ms,
            packed: latency_us | (outcome.code() << 29),
        }
    }

    /// When the request was due, in ms from the start of the measured part of the block.
    pub fn at_ms(&self) -> u32 {
        self.at_ms
    }

    /// The latency in microseconds.
    pub fn latency_us(&self) -> u32 {
        self.packed & SAMPLE_MAX_LATENCY_US
    }

    /// How the request ended.
    pub fn outcome(&self) -> Outcome {
        Outcome::from_code(self.packed >> 29)
    }
}

impl Serialize for Sample {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.at_ms, self.latency_us(), self.outcome()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Sample {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Sample, D::Error> {
        let (at_ms, latency_us, outcome) = <(u32, u32, Outcome)>::deserialize(deserializer)?;
        Ok(Sample::new(
            Duration::from_millis(at_ms.into()),
            Duration::from_micros(latency_us.into()),
            outcome,
        ))
    }
}

/// The raw samples of a block, in time order: all of them, or, past the cap, a uniform random
/// subset of `max_samples` (reservoir sampling), so memory stays bounded on long or fast blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Samples {
    seen: u64,
    kept: Vec<Sample>,
}

impl Samples {
    /// How many samples the block had; more than `kept().len()` when the cap was reached.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The samples kept, ordered by `at_ms`.
    pub fn kept(&self) -> &[Sample] {
        &self.kept
    }

    /// Whether every sample was kept (no subsampling).
    pub fn is_complete(&self) -> bool {
        self.seen == self.kept.len() as u64
    }

    /// The latencies of the ok samples kept, in µs and time order (what a judge compares).
    pub fn ok_latencies_us(&self) -> impl Iterator<Item = u32> + '_ {
        self.kept
            .iter()
            .filter(|s| s.outcome() == Outcome::Ok)
            .map(Sample::latency_us)
    }
}

/// A latency distribution in microseconds (HdrHistogram, 3 significant digits).
///
/// In JSON: `{"buckets": [[value_us, count], ...]}` with the recorded buckets only, which is
/// compact and enough to rebuild the histogram exactly.
#[derive(Debug, Clone)]
pub struct LatencyHistogram(Histogram<u64>);

impl LatencyHistogram {
    /// An empty histogram from 1 µs to 10 minutes.
    pub fn new() -> LatencyHistogram {
        LatencyHistogram(
            Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, HISTOGRAM_SIGFIG)
                .expect("constant histogram bounds are valid"),
        )
    }

    /// Records one latency (values beyond the range saturate).
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(us.max(1));
    }

    /// How many latencies were recorded.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The latency, in µs, at `quantile` (0..=1).
    pub fn value_at_quantile(&self, quantile: f64) -> u64 {
        self.0.value_at_quantile(quantile)
    }

    /// The recorded buckets as `(highest equivalent value in µs, count)`, ascending.
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.0
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }

    /// The percentile summary, or `None` when nothing was recorded.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.0.is_empty() {
            return None;
        }
        Some(LatencySummary {
            count: self.0.len(),
            min_us: self.0.min(),
            p50_us: self.0.value_at_quantile(0.5),
            p90_us: self.0.value_at_quantile(0.9),
            p99_us: self.0.value_at_quantile(0.99),
            p999_us: self.0.value_at_quantile(0.999),
            max_us: self.0.max(),
            mean_us: self.0.mean(),
        })
    }
}

impl Default for LatencyHistogram {
    fn default() -> LatencyHistogram {
        LatencyHistogram::new()
    }
}

impl PartialEq for LatencyHistogram {
    fn eq(&self, other: &LatencyHistogram) -> bool {
        self.0 == other.0
    }
}

#[derive(Serialize, Deserialize)]
struct HistogramRepr {
    buckets: Vec<(u64, u64)>,
}

impl Serialize for LatencyHistogram {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        HistogramRepr {
            buckets: self.buckets(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<LatencyHistogram, D::Error> {
        let repr = HistogramRepr::deserialize(deserializer)?;
        let mut histogram = LatencyHistogram::new();
        for (value, count) in repr.buckets {
            histogram.0.saturating_record_n(value.max(1), count);
        }
        Ok(histogram)
    }
}

/// Percentiles of a latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// How many latencies the summary covers.
    pub count: u64,
    /// The lowest.
    pub min_us: u64,
    /// The median.
    pub p50_us: u64,
    /// The 90th percentile.
    pub p90_us: u64,
    /// The 99th percentile.
    pub p99_us: u64,
    /// The 99.9th percentile.
    pub p999_us: u64,
    /// The highest.
    pub max_us: u64,
    /// The arithmetic mean.
    pub mean_us: f64,
}

/// Everything one block measured. Serializable, so the engine can store it as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockResult {
    /// How load was generated.
    pub load: Load,
    /// Seconds of load before the recorded part (not recorded).
    pub warmup_s: f64,
    /// Seconds the recorded part lasted: the planned length (shorter on an abort), or longer if
    /// the probe fell behind its timetable.
    pub duration_s: f64,
    /// Requests sent in the recorded part (overloads are not sent).
    pub sent: u64,
    /// `sent / duration_s`: for an open loop, compare with the requested rate.
    pub achieved_rate_per_s: f64,
    /// Responses (any status) per second.
    pub throughput_per_s: f64,
    /// How many requests ended with each outcome.
    pub counts: OutcomeCounts,
    /// Responses by status code.
    pub status_counts: BTreeMap<u16, u64>,
    /// Errors (every outcome but ok) as a percentage of all outcomes.
    pub error_rate_pct: f64,
    /// Requests retried once because a kept-alive connection was closed before the response (a
    /// server reload); the retry's time is in the latency.
    pub retried: u64,
    /// Requests the probe sent more than 5 ms after their due time (it was short of CPU); their
    /// latency counts from the due time plus 5 ms. Many of them mean the probe, not the server,
    /// is the bottleneck.
    pub late: u64,
    /// Latency percentiles of the ok responses; `None` when there were none.
    pub latency: Option<LatencySummary>,
    /// The latency distribution of the ok responses.
    pub histogram: LatencyHistogram,
    /// Every request's time, latency and outcome (bounded; see [`Samples`]).
    pub samples: Samples,
    /// Why the block stopped early, if it did.
    pub abort: Option<Abort>,
}

/// The facts about a block that the recorder does not see.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockMeta {
    /// How load was generated.
    pub load: Load,
    /// The warm-up that preceded the recorded part.
    pub warmup: Duration,
    /// How long the recorded part lasted.
    pub duration: Duration,
    /// Why the block stopped early, if it did.
    pub abort: Option<Abort>,
}

/// Collects the outcomes of one block and turns them into a [`BlockResult`].
///
/// The probe uses it internally; it is public so that fakes (e.g. an engine test's simulated
/// probe) produce results exactly as the real probe does.
#[derive(Debug, Clone)]
pub struct BlockRecorder {
    histogram: LatencyHistogram,
    counts: OutcomeCounts,
    status_counts: BTreeMap<u16, u64>,
    samples: Samples,
    max_samples: usize,
    retried: u64,
    late: u64,
    rng: u64,
}

impl BlockRecorder {
    /// An empty recorder keeping at most `max_samples` raw samples (at least 1).
    pub fn new(max_samples: usize) -> BlockRecorder {
        BlockRecorder {
            histogram: LatencyHistogram::new(),
            counts: OutcomeCounts::default(),
            status_counts: BTreeMap::new(),
            samples: Samples::default(),
            max_samples: max_samples.max(1),
            retried: 0,
            late: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Records one request: due at `at` (from the start of the measured part), answered after
    /// `latency`, with `outcome` and, for a response, its `status`.
    pub fn record(
        &mut self,
        at: Duration,
        latency: Duration,
        outcome: Outcome,
        status: Option<u16>,
    ) {
        self.counts.add(outcome);
        if let Some(status) = status {
            *self.status_counts.entry(status).or_default() += 1;
        }
        if outcome == Outcome::Ok {
            self.histogram.record(latency);
        }
        let sample = Sample::new(at, latency, outcome);
        let seen = self.samples.seen;
        self.samples.seen += 1;
        if self.samples.kept.len() < self.max_samples {
            self.samples.kept.push(sample);
        } else {
            // Algorithm R: the n-th sample replaces a random kept one with probability cap/n.
            let slot = self.next_random() % (seen + 1);
            if let Some(kept) = usize::try_from(slot)
                .ok()
                .and_then(|slot| self.samples.kept.get_mut(slot))
            {
                *kept = sample;
            }
        }
    }

    /// Counts one request that was retried after its connection was closed under it.
    pub fn record_retry(&mut self) {
        self.retried += 1;
    }

    /// Counts one request the probe sent later than its timetable allows (it was short of CPU).
    pub fn record_late(&mut self) {
        self.late += 1;
    }

    /// The outcome counts so far.
    pub fn counts(&self) -> &OutcomeCounts {
        &self.counts
    }

    /// The latency distribution of ok responses so far.
    pub fn histogram(&self) -> &LatencyHistogram {
        &self.histogram
    }

    /// The result of the block.
    pub fn finish(mut self, meta: BlockMeta) -> BlockResult {
        self.samples.kept.sort_by_key(Sample::at_ms);
        let secs = meta.duration.as_secs_f64();
        let per_s = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let sent = self.counts.total() - self.counts.overload;
        let answers = self.counts.ok + self.counts.bad_status;
        BlockResult {
            load: meta.load,
            warmup_s: meta.warmup.as_secs_f64(),
            duration_s: secs,
            sent,
            achieved_rate_per_s: per_s(sent),
            throughput_per_s: per_s(answers),
            error_rate_pct: self.counts.error_rate_pct(),
            counts: self.counts,
            status_counts: self.status_counts,
            retried: self.retried,
            late: self.late,
            latency: self.histogram.summary(),
            histogram: self.histogram,
            samples: self.samples,
            abort: meta.abort,
        }
    }

    /// splitmix64: a small, fast, deterministic generator (reservoir choices need no crypto).
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_sample_is_eight_bytes_and_round_trips() {
        assert_eq!(std::mem::size_of::<Sample>(), 8);
        let check = |at: Duration, latency: Duration, outcome: Outcome, want: (u32, u32)| {
            let s = Sample::new(at, latency, outcome);
            assert_eq!(
                (s.at_ms(), s.latency_us(), s.outcome()),
                (want.0, want.1, outcome)
            );
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<Sample>(&json).unwrap(), s, "{json}");
        };
        check(ms(0), Duration::from_micros(1234), Outcome::Ok, (0, 1234));
        check(ms(9_999), ms(2_000), Outcome::Timeout, (9_999, 2_000_000));
        check(ms(5), Duration::ZERO, Outcome::Overload, (5, 0));
        check(
            ms(1),
            Duration::from_secs(10_000),
            Outcome::Other,
            (1, SAMPLE_MAX_LATENCY_US),
        );
        check(
            Duration::from_secs(5_000_000),
            ms(1),
            Outcome::BadStatus,
            (u32::MAX, 1_000),
        );
        assert_eq!(
            serde_json::to_string(&Sample::new(ms(7), ms(3), Outcome::Connect)).unwrap(),
            r#"[7,3000,"connect"]"#
        );
    }

    #[test]
    fn samples_beyond_the_cap_are_a_bounded_uniform_subset() {
        let mut recorder = BlockRecorder::new(1_000);
        for i in 0..100_000u64 {
            recorder.record(ms(i), ms(1), Outcome::Ok, Some(200));
        }
        let meta = BlockMeta {
            load: Load::Open { rate_per_s: 1000.0 },
            warmup: Duration::ZERO,
            duration: Duration::from_secs(100),
            abort: None,
        };
        let result = recorder.finish(meta);
        let samples = &result.samples;
        assert_eq!(samples.seen(), 100_000);
        assert_eq!(samples.kept().len(), 1_000);
        assert!(!samples.is_complete());
        assert!(
            samples
                .kept()
                .windows(2)
                .all(|w| w[0].at_ms() <= w[1].at_ms())
        );
        // Uniform: each tenth of the block holds about a tenth of the kept samples.
        for decile in 0..10u32 {
            let n = samples
                .kept()
                .iter()
                .filter(|s| s.at_ms() / 10_000 == decile)
                .count();
            assert!((50..=150).contains(&n), "decile {decile} holds {n}");
        }
        assert_eq!(result.counts.ok, 100_000);
        assert_eq!(result.status_counts[&200], 100_000);
        assert!((result.achieved_rate_per_s - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn a_result_summarises_ok_latencies_and_counts_every_outcome() {
        let mut recorder = BlockRecorder::new(1_000);
        for i in 1..=100u64 {
            recorder.record(ms(i * 10), ms(i), Outcome::Ok, Some(200));
        }
        recorder.record(ms(5), ms(1), Outcome::BadStatus, Some(503));
        recorder.record(ms(6), ms(2_000), Outcome::Timeout, None);
        recorder.record(ms(7), Duration::ZERO, Outcome::Overload, None);
        recorder.record_retry();
        recorder.record_late();
        let result = recorder.finish(BlockMeta {
            load: Load::Open { rate_per_s: 103.0 },
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(1),
            abort: None,
        });
        let latency = result.latency.unwrap();
        assert_eq!(latency.count, 100);
        assert_eq!(latency.p50_us / 1000, 50);
        assert_eq!(latency.p99_us / 1000, 99);
        assert_eq!(latency.max_us / 1000, 100);
        assert!((latency.mean_us / 1000.0 - 50.5).abs() < 0.1);
        assert_eq!(result.sent, 102);
        assert_eq!(result.throughput_per_s, 101.0);
        assert!((result.error_rate_pct - 300.0 / 103.0).abs() < 1e-9);
        assert_eq!((result.retried, result.late), (1, 1));
        assert_eq!(result.samples.seen(), 103);
        assert_eq!(result.samples.ok_latencies_us().count(), 100);
        assert_eq!(result.samples.ok_latencies_us().next(), Some(1_000));
        let json = serde_json::to_string(&result).unwrap();
        let back: BlockResult = serde_json::from_str(&json).unwrap();
        assert_eq!(back, result, "{json}");
    }
}
