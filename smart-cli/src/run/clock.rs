//! The engine's clock on tokio: wall time from the system, monotonic time from tokio's `Instant`,
//! sleeps on tokio's timer.

use std::time::{Duration, SystemTime};

use smart_core::engine::Clock;
use tokio::time::Instant;

/// The real clock, for runs inside a tokio runtime.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokioClock {
    origin: Instant,
}

impl TokioClock {
    pub(crate) fn new() -> TokioClock {
        TokioClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
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
