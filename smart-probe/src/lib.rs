//! HTTP measurement for `smart`: an open-loop probe that sends requests on a fixed timetable and
//! records latencies from each request's intended send time in an HdrHistogram.
//!
//! Build a [`ProbeConfig`] from an experiment's [`Target`](smart_core::experiment::Target), make a
//! [`Probe`] once (it owns the connection pool) and call [`Probe::run_block`] for every block. A
//! [`BlockResult`] holds outcome and status counts, latency percentiles of the ok responses, the
//! latency histogram and the raw samples, and serializes with serde.
//!
//! Measurement rules:
//! - Open loop: request `i` is due at `start + i / rate` and goes out on its own (pooled)
//!   connection at once, whatever earlier requests are doing: the timetable never waits for the
//!   server, so a stall shows up in every request due during it (coordinated omission corrected,
//!   as wrk2 does). When the probe wakes late it sends what is due at once. Latency counts from
//!   the due time, except that up to 5 ms of the probe's own lateness (tokio's timer rounds to
//!   whole milliseconds and wakes later still, and the request's task starts after that) is not
//!   charged to the server: it counts from the send, taken in the request's task just before the
//!   request is handed to its connection, or from the due time plus 5 ms if that is earlier.
//!   Lateness beyond 5 ms is charged, and such sends are counted in [`BlockResult::late`].
//! - A cap on requests in flight: a due request the cap refuses is an [`Outcome::Overload`],
//!   never dropped silently.
//! - A kept-alive connection the server closed under a request (as nginx does on reload) is
//!   retried once at once on a fresh connection (GET and HEAD only exist here), and counted in
//!   [`BlockResult::retried`]; the retry's time is in the latency.
//! - Warm-up: requests due in [`BlockPlan::warmup`] are sent but not recorded.
//! - Guard: with a [`GuardConfig`], a block stops early when the error rate over the trailing
//!   window passes the threshold or the target stops answering ([`Abort`]). The warm-up counts
//!   for the guard: a broken config should be caught as soon as possible.

mod clock;
mod config;
mod error;
mod guard;
mod host;
mod lean;
mod outcome;
mod port;
mod progress;
mod record;
mod run;

pub use clock::TokioClock;
pub use config::{
    BlockPlan, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_SAMPLES, GuardConfig, Load, ProbeConfig,
    ProbeConfigBuilder,
};
pub use error::ProbeError;
pub use guard::Abort;
pub use host::HostSnapshot;
pub use outcome::{Outcome, OutcomeCounts};
pub use port::{EngineProbe, measurement};
pub use progress::{NoProgress, Progress, ProgressSink};
pub use record::{
    BlockMeta, BlockRecorder, BlockResult, LatencyHistogram, LatencySummary, Sample, Samples,
};
pub use run::Probe;
