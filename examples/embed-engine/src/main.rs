//! Embeds the smart engine in another program, with the program's own applier.
//!
//! ```sh
//! cargo run -p smart-embed-example
//! ```
//!
//! A program that tunes itself: it serves HTTP on a loopback port, and its one setting (a
//! per-request delay, standing in for a cache size or a pool size) lives in memory. Its applier
//! changes that setting directly: no files, no reloads. The engine measures the baseline and the
//! variant in randomized ABBA blocks with the real probe (smart-probe) and judge (smart-decide),
//! soaks the winner, keeps it, and writes the run records to a temp dir. It takes about 20
//! seconds and prints each decision.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use smart_core::engine::{
    self, Applier, ApplyFailure, CancelToken, Clock, FailureCause, NoCoach, Ports, RunConfig,
};
use smart_core::records::{self, Records};
use smart_core::{Defaults, Experiment, validate};
use smart_decide::EngineJudge;
use smart_probe::EngineProbe;
use tokio::net::TcpListener;

/// The program's own setting: the delay every response waits, in microseconds.
type Setting = Arc<AtomicU64>;

/// The delay the program starts with (its configuration as found).
const FOUND_DELAY_MS: u64 = 10;

#[tokio::main]
#[expect(clippy::print_stderr, reason = "a runnable example talks to its user")]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embed-engine: {e}");
            std::process::ExitCode::from(3)
        }
    }
}

#[expect(clippy::print_stdout, reason = "a runnable example talks to its user")]
async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let setting: Setting = Arc::new(AtomicU64::new(FOUND_DELAY_MS * 1000));
    let url = serve(Arc::clone(&setting)).await?;
    let experiment = experiment(&url)?;
    let state_dir = std::env::temp_dir().join(format!("smart-embed-{}", std::process::id()));

    // The engine's parts: the real probe and judge, this program's applier, a tokio clock, and
    // the records observer.
    let mut probe = EngineProbe::new(&experiment)?;
    let mut judge = EngineJudge::new(&experiment)?;
    let mut applier = InMemoryApplier {
        setting: Arc::clone(&setting),
        experiment: experiment.clone(),
    };
    let clock = TokioClock(tokio::time::Instant::now());
    let mut observer = Records::new(&state_dir);
    let seed = engine::fresh_seed();
    let config = RunConfig {
        run_id: records::new_run_id(experiment.name(), SystemTime::now(), seed),
        seed,
        cancel: CancelToken::new(),
    };
    println!(
        "running {} against {url} (records in {})",
        experiment.name(),
        state_dir.display()
    );
    let report = engine::run(
        &experiment,
        &config,
        Ports {
            probe: &mut probe,
            applier: &mut applier,
            judge: &mut judge,
            clock: &clock,
            coach: &mut NoCoach,
            observer: &mut observer,
        },
    )
    .await?;
    for d in &report.decisions {
        println!(
            "{}: {} (p50 {:+.1} %): {}",
            d.variant,
            d.decision.as_str(),
            d.p50_change_pct.unwrap_or(f64::NAN),
            d.reasons.first().map_or("", String::as_str)
        );
    }
    println!(
        "live delay now {} ms; run {} recorded",
        setting.load(Ordering::SeqCst) / 1000,
        report.run_id
    );
    Ok(())
}

/// The experiment, as this program describes its own setting. Its `apply` section names a
/// command only to document the change: this program's applier sets the value itself.
fn experiment(url: &str) -> Result<Experiment, Box<dyn std::error::Error>> {
    let json = serde_json::json!({
        "name": "embedded-delay",
        "description": "Does a 2 ms delay serve faster than the 10 ms one the program starts with?",
        "target": {"urls": [url], "rate_per_s": 50},
        "apply": {"command": {"read": ["embedded", "get-delay"],
                              "set": ["embedded", "set-delay", "{{ delay_ms }}"]}},
        "variants": [{"name": "fast", "params": {"delay_ms": 2}}],
        "schedule": {"cooldown_s": 0.2, "block_s": 1, "max_cycles": 4, "soak_s": 2,
                     "max_duration_s": 60}
    });
    Ok(validate::validate_text(
        &json.to_string(),
        "embedded-delay.json".as_ref(),
        &Defaults::default(),
    )?)
}

/// This program's applier: arms are values of its in-memory setting.
struct InMemoryApplier {
    setting: Setting,
    experiment: Experiment,
}

impl Applier for InMemoryApplier {
    async fn check_baseline(&mut self) -> Result<(), ApplyFailure> {
        Ok(())
    }

    async fn switch(&mut self, arm: &str) -> Result<(), ApplyFailure> {
        let delay_ms = match self.experiment.arm_values(arm) {
            Some(values) => values["delay_ms"]
                .parse::<u64>()
                .map_err(|e| ApplyFailure {
                    message: format!("{arm}: delay_ms is not a number: {e}"),
                    original_live: true,
                    cause: FailureCause::Config,
                })?,
            // The baseline is the configuration as found.
            None => FOUND_DELAY_MS,
        };
        self.setting.store(delay_ms * 1000, Ordering::SeqCst);
        Ok(())
    }

    async fn restore(&mut self) -> Result<(), ApplyFailure> {
        self.setting.store(FOUND_DELAY_MS * 1000, Ordering::SeqCst);
        Ok(())
    }

    async fn close(&mut self) -> Result<(), ApplyFailure> {
        Ok(())
    }

    async fn keep(&mut self, _variant: &str) -> Result<(), ApplyFailure> {
        Ok(())
    }
}

/// The engine's clock on tokio's timer.
struct TokioClock(tokio::time::Instant);

impl Clock for TokioClock {
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }

    fn monotonic(&self) -> Duration {
        self.0.elapsed()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Serves on 127.0.0.1 (a free port): every response waits the current delay.
async fn serve(setting: Setting) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let setting = Arc::clone(&setting);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_: Request<Incoming>| {
                    let delay = Duration::from_micros(setting.load(Ordering::SeqCst));
                    async move {
                        tokio::time::sleep(delay).await;
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(format!("http://{addr}/"))
}
