//! `smart metrics`: the state dir's figures in the Prometheus text format; and how `smart run`
//! publishes the same figures when `[prometheus]` in smart.toml asks for it (a node_exporter
//! textfile rewritten after every event, `/metrics` on a loopback address).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use smart_core::AgentConfig;
use smart_core::engine::{Event, EventKind, ObserverError, ObserverPort};
use smart_core::records::{self, RunState};
use smart_metrics::{Facts, MetricsServer, Textfile};

use crate::Global;
use crate::error::CliError;

/// Print the state dir's metrics in the Prometheus text format
///
/// Runs and decisions by experiment, variant and kind; reverts and failed reverts; guardrail
/// aborts; recoveries; the run under way and its phase; the last run's times and outcome; the
/// judged p50 change of each variant's last decision; the audit chain's state and head; the run
/// lock; the probe's last block. For a cron job or any exporter; `smart run` writes the same to
/// `[prometheus] textfile` itself. The metrics are listed in docs/monitoring.md.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// Write them atomically to this file (e.g. node_exporter's textfile directory) instead of
    /// printing them
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
}

/// Prints (or writes) the metrics.
pub(crate) fn run(args: &Args, global: &Global) -> Result<ExitCode, CliError> {
    let config = global.agent_config()?;
    let state_dir = config.state_dir();
    let facts = Facts {
        recovery_needed: recovery_needed(state_dir),
    };
    let families =
        smart_metrics::collect(state_dir, facts, SystemTime::now()).map_err(CliError::runtime)?;
    let text = smart_metrics::render(&families);
    match &args.output {
        Some(path) => {
            smart_metrics::write_atomically(path, &text).map_err(CliError::runtime)?;
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether an interrupted run left changes for `smart recover`: `status.json` says running, its
/// process is gone, and its journal is still open (as `smart status` tells it). `None` when the
/// journal cannot be read.
fn recovery_needed(state_dir: &Path) -> Option<bool> {
    let Ok(Some(status)) = records::read_status(state_dir) else {
        return Some(false);
    };
    if status.state != RunState::Running || Path::new(&format!("/proc/{}", status.pid)).exists() {
        return Some(false);
    }
    match smart_apply::run_closed(state_dir, &status.experiment, &status.run_id) {
        Ok(closed) => Some(closed == Some(false)),
        Err(_) => None,
    }
}

/// How often `smart run` rewrites the textfile while it waits for work (during a run its
/// observer does, after every event): a long-running `smart run` keeps
/// `smart_metrics_generated_timestamp_seconds` fresh.
const REFRESH: Duration = Duration::from_secs(60);

/// What `smart run` publishes while it works: the textfile at the start (so its age shows that
/// rounds still happen, even with nothing to do) and every minute while no run is under way,
/// and the `/metrics` server, when configured. Called once the lock is held and any interrupted
/// run is recovered; both stop when the returned value is dropped.
pub(crate) fn start(
    config: &AgentConfig,
    runtime: &tokio::runtime::Runtime,
) -> Result<Publishing, CliError> {
    let server = match config.prometheus().listen() {
        Some(addr) => {
            let server = runtime
                .block_on(MetricsServer::start(
                    addr,
                    config.state_dir(),
                    Facts {
                        recovery_needed: Some(false),
                    },
                ))
                .map_err(CliError::bad_input)?;
            eprintln!(
                "smart: serving metrics on http://{}/metrics",
                server.local_addr()
            );
            Some(server)
        }
        None => None,
    };
    let refresh = textfile(config).map(|mut textfile| {
        warn(textfile.write(SystemTime::now()).err());
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(REFRESH).await;
                // A failure is said by the run's observer; this only keeps the file fresh
                // while no run is under way.
                let refreshed = tokio::task::spawn_blocking(move || {
                    let _ = textfile.refresh(SystemTime::now());
                    textfile
                })
                .await;
                match refreshed {
                    Ok(back) => textfile = back,
                    Err(_) => break,
                }
            }
        })
    });
    Ok(Publishing {
        _server: server,
        refresh,
    })
}

/// The textfile refresh and the `/metrics` server of one `smart run`; both stop when dropped.
#[derive(Debug)]
pub(crate) struct Publishing {
    _server: Option<MetricsServer>,
    refresh: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Publishing {
    fn drop(&mut self) {
        if let Some(refresh) = &self.refresh {
            refresh.abort();
        }
    }
}

/// The engine observer that rewrites `[prometheus] textfile` after every event of a run (it does
/// nothing when none is set); a write that fails is said once per run on stderr, and never stops
/// the run.
pub(crate) fn observer(config: &AgentConfig) -> Publish {
    Publish(textfile(config))
}

/// See [`observer`].
#[derive(Debug)]
pub(crate) struct Publish(Option<Textfile>);

impl ObserverPort for Publish {
    fn event(&mut self, event: &Event<'_>) -> Result<(), ObserverError> {
        if let Some(textfile) = &mut self.0 {
            textfile.event(event)?;
            if matches!(event.kind, EventKind::RunFinished(_)) {
                warn(textfile.take_error());
            }
        }
        Ok(())
    }
}

/// The textfile writer of `config`, if `[prometheus] textfile` is set. The run has recovered
/// what needed it before it starts, so `smart_recovery_needed` is 0.
fn textfile(config: &AgentConfig) -> Option<Textfile> {
    let path = config.prometheus().textfile()?;
    Some(Textfile::new(
        config.state_dir(),
        path,
        Facts {
            recovery_needed: Some(false),
        },
    ))
}

/// Says on stderr (journald under systemd) that the textfile could not be written, and how to
/// fix it.
fn warn(error: Option<smart_metrics::MetricsError>) {
    if let Some(e) = error {
        eprintln!(
            "smart: warning: {e}; the run goes on, but Prometheus sees stale figures: create the directory and let the smart user write to it, or change [prometheus] textfile in smart.toml"
        );
    }
}
