//! Metric sources for `smart` other than its own HTTP probe (`smart-probe`).
//!
//! Each source implements the engine's measurement port ([`smart_core::engine::ProbePort`]) and
//! yields, per block, what the judge needs: raw latencies where the source has them, otherwise
//! the block's quantiles, and the answered and failed counts.
//!
//! - [`CommandSource`] (`"measure": {"source": "command"}`): an argv run once per block, never
//!   through a shell, with a deadline; it prints the block's figures as JSON ([`report`]). The
//!   door for pgbench, redis-benchmark, sysbench or a team's own script.
//! - [`AccessLogSource`] (`"measure": {"source": "access_log"}`): the requests a web server
//!   logged during each block ([`access_log`]), followed across logrotate; no load added.
//! - [`PrometheusSource`] (`"measure": {"source": "prometheus"}`): PromQL over exactly each
//!   block's window — histogram quantiles, mean, request count, error ratio.
//!
//! *Invariant: a source never changes the server's configuration (only smart-apply does) and
//! never reports a block it could not measure as a zero: a failed, hung or unreadable
//! measurement is an error, and the engine restores the original configuration.*

pub mod access_log;
mod command;
mod error;
mod prometheus;
pub mod report;

pub use access_log::{AccessLogSource, FillResult};
pub use command::{CommandSource, DEFAULT_PATH};
pub use error::SourceError;
pub use prometheus::PrometheusSource;
