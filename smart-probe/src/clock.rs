//! The engine's clock on tokio: wall time from the system, monotonic time from tokio's `Instant`,
//! sleeps on tokio's timer. It lives beside the probe because a real run measures on tokio
//! anyway; smart-core, which defines the port, has no runtime.

use std::time::{Duration, SystemTime};

use smart_core::engine::ClockPort;
use tokio::time::Instant;

/// The real clock, for runs (and the run loop) inside a tokio runtime.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: Instant,
}

impl TokioClock {
    /// A clock whose monotonic time starts now.
    pub fn new() -> TokioClock {
        TokioClock {
            origin: Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> TokioClock {
        TokioClock::new()
    }
}

impl ClockPort for TokioClock {
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }

    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}
