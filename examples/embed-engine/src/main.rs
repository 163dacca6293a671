//! Embeds the smart run loop in another program, with the program's own applier.
//!
//! ```sh
//! cargo run -p smart-embed-example
//! ```
//!
//! A program that tunes itself: it serves HTTP on a loopback port, and its one setting (a
//! per-request delay, standing in for a cache or pool size) lives in memory, so its experiment
//! has no `apply` section and its applier sets the value itself. The library's run loop runs the
//! experiment with the real probe and judge in randomized ABBA blocks, keeps the winner and
//! writes the run records to a temp dir. It takes about 20 seconds and prints the decision.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use http_body_util::Full;
use hyper::{Response, body::Bytes};
use smart_core::engine::{ApplierPort, ApplyFailure, CancelToken, FailureCause};
use smart_core::records::{Records, history};
use smart_core::runner::{LoopConfig, Parts, Runner, bench_fn};
use smart_core::{Experiment, validate::ApplyBy};
use smart_decide::EngineJudge;
use smart_probe::{EngineProbe, TokioClock};

/// The program's setting as found: every response waits this many milliseconds.
const FOUND_DELAY_MS: u64 = 10;

#[tokio::main]
#[expect(clippy::print_stdout, reason = "a runnable example talks to its user")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let delay_ms = Arc::new(AtomicU64::new(FOUND_DELAY_MS));
    let url = serve(Arc::clone(&delay_ms)).await?;
    let dir = std::env::temp_dir().join(format!("smart-embed-{}", std::process::id()));
    let (experiments_dir, state_dir) = (dir.join("experiments"), dir.join("state"));
    std::fs::create_dir_all(&experiments_dir)?;
    let experiment = serde_json::json!({
        "name": "embedded-delay",
        "target": {"urls": [url], "rate_per_s": 200},
        "variants": [{"name": "fast", "params": {"delay_ms": 2}}],
        "schedule": {"cooldown_s": 0.2, "block_s": 0.5, "max_cycles": 8, "soak_s": 2,
                     "max_duration_s": 60}
    });
    std::fs::write(experiments_dir.join("delay.json"), experiment.to_string())?;
    let config = LoopConfig {
        apply_by: ApplyBy::Caller,
        ..LoopConfig::new(experiments_dir, &state_dir)
    };
    let mut bench = bench_fn(|experiment: &Experiment, _run: &_| {
        Ok::<_, String>(Parts {
            probe: EngineProbe::new(experiment.probe_target().ok_or("no target.urls")?),
            applier: SetDelay(Arc::clone(&delay_ms), experiment.clone()),
            judge: EngineJudge::new(experiment),
            observer: Records::new(&state_dir),
        })
    });
    let clock = TokioClock::new();
    Runner::new(config)?
        .run(&clock, &CancelToken::new(), &mut bench)
        .await?;
    for d in history(&state_dir)? {
        let p50 = d.estimates.p50_change_pct.unwrap_or(f64::NAN);
        println!("{}: {} (p50 {p50:+.1} %)", d.variant, d.decision.as_str());
    }
    println!(
        "live delay now {} ms (records in {})",
        delay_ms.load(SeqCst),
        state_dir.display()
    );
    Ok(())
}

/// This program's applier: an arm is a value of its in-memory delay (the baseline: as found).
struct SetDelay(Arc<AtomicU64>, Experiment);

impl ApplierPort for SetDelay {
    async fn switch(&mut self, arm: &str) -> Result<(), ApplyFailure> {
        let delay = match self.1.arm_values(arm) {
            Some(values) => values["delay_ms"].parse().map_err(|e| ApplyFailure {
                message: format!("{arm}: delay_ms: {e}"),
                original_live: true,
                cause: FailureCause::Config,
            })?,
            None => FOUND_DELAY_MS,
        };
        self.0.store(delay, SeqCst);
        Ok(())
    }

    async fn restore(&mut self) -> Result<(), ApplyFailure> {
        self.0.store(FOUND_DELAY_MS, SeqCst);
        Ok(())
    }
}

/// Serves on a free loopback port: every response waits the current delay.
async fn serve(delay_ms: Arc<AtomicU64>) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let delay_ms = Arc::clone(&delay_ms);
            let service = hyper::service::service_fn(move |_| {
                let delay = Duration::from_millis(delay_ms.load(SeqCst));
                async move {
                    tokio::time::sleep(delay).await;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    Ok(url)
}
