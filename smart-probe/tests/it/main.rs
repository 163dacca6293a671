//! Integration tests of smart-probe against real HTTP servers on loopback: an in-process one the
//! test controls, and a real nginx.

mod behaviour;
mod nginx;
mod port;
mod server;

use std::time::Duration;

use smart_core::experiment::Target;
use smart_probe::{BlockPlan, BlockResult, NoProgress, Probe, ProbeConfig, ProbeConfigBuilder};

/// A target for `url` at `rate` requests per second with a timeout of `timeout_ms`.
fn target(url: &str, rate: f64, timeout_ms: u64) -> Target {
    serde_json::from_value(serde_json::json!({
        "urls": [url],
        "rate_per_s": rate,
        "timeout_ms": timeout_ms,
    }))
    .unwrap()
}

/// Runs one block of `measure` after `warmup`, unguarded, with the probe `config` describes.
async fn run(config: ProbeConfigBuilder, warmup: Duration, measure: Duration) -> BlockResult {
    let plan = BlockPlan {
        warmup,
        measure,
        guard: None,
    };
    run_plan(config, plan).await
}

/// Runs one block as `plan` says with the probe `config` describes.
async fn run_plan(config: ProbeConfigBuilder, plan: BlockPlan) -> BlockResult {
    let probe = Probe::new(config.build().unwrap()).unwrap();
    probe.run_block(plan, &NoProgress).await.unwrap()
}

fn secs(n: f64) -> Duration {
    Duration::from_secs_f64(n)
}

fn builder(target: &Target) -> ProbeConfigBuilder {
    ProbeConfig::builder(target)
}
