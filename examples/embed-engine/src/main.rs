//! Embeds the smart run loop in another program, with the program's own applier.
//!
//! ```sh
//! cargo run -p smart-embed-example
//! ```
//!
//! A program that tunes itself: it serves HTTP on a loopback port, and its one setting (a
//! per-request delay, standing in for a cache size or a pool size) lives in memory. Its applier
//! changes that setting directly: no files, no reloads, so its experiment has no `apply` section.
//! The library's run loop reads the experiments dir, runs each undecided experiment through the
//! engine with the real probe (smart-probe) and judge (smart-decide) in randomized ABBA blocks,
//! soaks the winner, keeps it, and writes the run records to a temp dir. It takes about 20
//! seconds and prints each decision.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use smart_core::engine::{Applier, ApplyFailure, CancelToken, FailureCause, NoCoach, RunConfig};
use smart_core::engine::{EngineError, RunReport};
use smart_core::records::Records;
use smart_core::runner::{Bench, LoopConfig, Parts, Repeat, Runner, Selection};
use smart_core::validate::ApplyBy;
use smart_core::{Defaults, Experiment};
use smart_decide::EngineJudge;
use smart_probe::{EngineProbe, TokioClock};
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
    let dir = std::env::temp_dir().join(format!("smart-embed-{}", std::process::id()));
    let experiments_dir = dir.join("experiments");
    std::fs::create_dir_all(&experiments_dir)?;
    std::fs::write(
        experiments_dir.join("embedded-delay.json"),
        experiment(&url),
    )?;
    let state_dir = dir.join("state");
    println!("running against {url} (records in {})", state_dir.display());
    let runner = Runner::new(LoopConfig {
        experiments_dir,
        state_dir: state_dir.clone(),
        defaults: Defaults::default(),
        apply_by: ApplyBy::Caller,
        selection: Selection::Pending,
        repeat: Repeat::Once,
        seed: None,
        window: None,
    })?;
    let mut bench = InMemoryBench {
        setting: Arc::clone(&setting),
        state_dir,
        coach: NoCoach,
    };
    let end = runner
        .run(&TokioClock::new(), &CancelToken::new(), &mut bench)
        .await?;
    println!(
        "{} run(s); live delay now {} ms",
        end.runs,
        setting.load(Ordering::SeqCst) / 1000
    );
    Ok(())
}

/// The experiment, as this program describes its own setting: no `apply`, its applier sets the
/// value itself.
fn experiment(url: &str) -> String {
    serde_json::json!({
        "name": "embedded-delay",
        "description": "Does a 2 ms delay serve faster than the 10 ms one the program starts with?",
        "target": {"urls": [url], "rate_per_s": 50},
        "variants": [{"name": "fast", "params": {"delay_ms": 2}}],
        "schedule": {"cooldown_s": 0.2, "block_s": 1, "max_cycles": 4, "soak_s": 2,
                     "max_duration_s": 60}
    })
    .to_string()
}

/// This program's side of the run loop: the real probe and judge, its own applier, the records.
struct InMemoryBench {
    setting: Setting,
    state_dir: std::path::PathBuf,
    coach: NoCoach,
}

impl Bench for InMemoryBench {
    type Probe = EngineProbe;
    type Applier = InMemoryApplier;
    type Judge = EngineJudge;
    type Coach = NoCoach;
    type Observer = Records;
    type Error = Box<dyn std::error::Error>;

    fn parts(
        &mut self,
        experiment: &Experiment,
        _run: &RunConfig,
    ) -> Result<Parts<EngineProbe, InMemoryApplier, EngineJudge, Records>, Self::Error> {
        Ok(Parts {
            probe: EngineProbe::new(experiment.probe_target().ok_or("target.urls is missing")?),
            applier: InMemoryApplier {
                setting: Arc::clone(&self.setting),
                experiment: experiment.clone(),
            },
            judge: EngineJudge::new(experiment),
            observer: Records::new(&self.state_dir),
        })
    }

    fn coach(&mut self) -> &mut NoCoach {
        &mut self.coach
    }

    #[expect(clippy::print_stdout, reason = "a runnable example talks to its user")]
    fn finished(
        &mut self,
        _experiment: &Experiment,
        _parts: Parts<EngineProbe, InMemoryApplier, EngineJudge, Records>,
        outcome: Result<&RunReport, &EngineError>,
    ) -> Result<(), Self::Error> {
        let report = outcome.unwrap_or_else(EngineError::report);
        for d in &report.decisions {
            println!(
                "{}: {} (p50 {:+.1} %): {}",
                d.variant,
                d.decision.as_str(),
                d.estimates.p50_change_pct.unwrap_or(f64::NAN),
                d.reasons.first().map_or("", String::as_str)
            );
        }
        Ok(())
    }
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
