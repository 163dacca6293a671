//! The `command` source: an argv run once per block that prints the block's figures as JSON.
//!
//! The command runs without a shell, in its own process group, with a cleared environment
//! (`PATH`, `LANG=C`, the experiment's `measure.command.env`) and the block's timing:
//! `SMART_ARM` (the live arm's name), `SMART_WARMUP_S` (the cool-down to send load through but not
//! report) and `SMART_BLOCK_S` (the part to report). It should finish at about
//! `SMART_WARMUP_S + SMART_BLOCK_S`; past that plus `grace_s` its whole process group is killed
//! and the block fails, as it does when the run is cancelled mid-block.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use smart_core::engine::{self, BlockMeasurement, BlockRequest, LiveProgress, PortError};
use smart_core::experiment::MeasureCommand;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::SourceError;
use crate::report;

/// The `PATH` measuring commands run with (the system's directories; give a full path in `argv`
/// for a program elsewhere).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The most bytes of a command's stdout read as its report (a block of raw latencies is well under).
const STDOUT_LIMIT: usize = 64 * 1024 * 1024;
/// How much of the end of a command's stderr goes into an error message.
const STDERR_TAIL: usize = 2000;

/// A measuring command, as the engine's measurement port.
#[derive(Debug, Clone)]
pub struct CommandSource {
    program: PathBuf,
    spec: MeasureCommand,
    path: String,
}

impl CommandSource {
    /// The source of `spec`, with the program found in [`DEFAULT_PATH`] (checked now, before
    /// anything changes).
    pub fn new(spec: &MeasureCommand) -> Result<CommandSource, SourceError> {
        CommandSource::with_path(spec, DEFAULT_PATH)
    }

    /// The source of `spec`, with the program looked up in `path`.
    pub fn with_path(spec: &MeasureCommand, path: &str) -> Result<CommandSource, SourceError> {
        let Some(program) = spec.argv.first() else {
            return Err(SourceError::Setup(
                "measure.command.argv is empty; give the program and its arguments".to_owned(),
            ));
        };
        let program = resolve(program, path).ok_or_else(|| SourceError::NotFound {
            program: program.clone(),
            path: path.to_owned(),
        })?;
        Ok(CommandSource {
            program,
            spec: spec.clone(),
            path: path.to_owned(),
        })
    }

    /// Runs the command for one block and parses its report.
    pub async fn run_block(
        &self,
        arm: &str,
        warmup: Duration,
        duration: Duration,
        progress: &mut dyn FnMut(&LiveProgress),
    ) -> Result<BlockMeasurement, SourceError> {
        let name = self.program.display().to_string();
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.spec.argv[1..])
            .env_clear()
            .env("PATH", &self.path)
            .env("LANG", "C")
            .envs(&self.spec.env)
            .env("SMART_ARM", arm)
            .env("SMART_WARMUP_S", seconds(warmup))
            .env("SMART_BLOCK_S", seconds(duration))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| SourceError::Start {
            program: name.clone(),
            source,
        })?;
        // Until the command has exited and closed its output, a drop (hang, cancellation) kills
        // its whole group: a wrapper's children must not outlive the block.
        let mut group = GroupGuard(child.id().and_then(|id| Pid::from_raw(id as i32)));
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let work = async {
            let (out, err) = tokio::join!(read_capped(stdout), read_tail(stderr));
            let status = child.wait().await;
            (status, out, err)
        };
        let grace = Duration::from_secs_f64(self.spec.grace_s);
        let deadline = tokio::time::sleep(warmup + duration + grace);
        let started = tokio::time::Instant::now();
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        let (mut work, mut deadline) = (pin!(work), pin!(deadline));
        let (status, (out, overflow), err) = loop {
            tokio::select! {
                done = &mut work => break done,
                () = &mut deadline => {
                    return Err(SourceError::Hung { program: name, grace });
                }
                _ = ticks.tick() => {
                    let elapsed = started.elapsed();
                    progress(&LiveProgress {
                        warming_up: elapsed < warmup,
                        elapsed_s: elapsed.as_secs_f64(),
                        ..LiveProgress::default()
                    });
                }
            }
        };
        group.disarm();
        let status = status.map_err(|source| SourceError::Start {
            program: name.clone(),
            source,
        })?;
        if !status.success() {
            return Err(SourceError::Failed {
                program: name,
                status: describe(status),
                stderr: err,
            });
        }
        if overflow {
            return Err(SourceError::report(format!(
                "it printed more than {} MiB",
                STDOUT_LIMIT / 1024 / 1024
            )));
        }
        report::parse(&out, duration.as_secs_f64())
    }
}

impl engine::ProbePort for CommandSource {
    async fn measure(
        &mut self,
        request: &BlockRequest<'_>,
        progress: &mut dyn FnMut(&LiveProgress),
    ) -> Result<BlockMeasurement, PortError> {
        self.run_block(request.arm, request.warmup, request.duration, progress)
            .await
            .map_err(PortError::new)
    }
}

/// Kills a process group when dropped, unless disarmed.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // The group may be gone already; nothing else can be done about a failure here.
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

/// Reads a pipe to its end, keeping at most [`STDOUT_LIMIT`] bytes (the rest is drained, so the
/// command never blocks on a full pipe); `true` when some was dropped.
async fn read_capped(pipe: Option<impl AsyncRead + Unpin>) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return (kept, false);
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut overflow = false;
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if kept.len() + n <= STDOUT_LIMIT {
            kept.extend_from_slice(&buf[..n]);
        } else {
            overflow = true;
        }
    }
    (kept, overflow)
}

/// Reads a pipe to its end and returns its last [`STDERR_TAIL`] bytes, trimmed.
async fn read_tail(pipe: Option<impl AsyncRead + Unpin>) -> String {
    let (mut bytes, _) = read_capped(pipe).await;
    if bytes.len() > STDERR_TAIL {
        bytes.drain(..bytes.len() - STDERR_TAIL);
    }
    String::from_utf8_lossy(&bytes).trim().to_owned()
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended abnormally".to_owned(),
    }
}

/// Seconds as the command reads them: a plain decimal, at most millisecond precision.
fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{:.3}", d.as_secs_f64())
    }
}

/// Finds `program` as the child would: a path containing `/` as is, else in `path`.
fn resolve(program: &str, path: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = Path::new(program);
        return p.is_file().then(|| p.to_owned());
    }
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_plain_decimals() {
        assert_eq!(seconds(Duration::from_secs(10)), "10");
        assert_eq!(seconds(Duration::from_millis(2500)), "2.500");
        assert_eq!(seconds(Duration::ZERO), "0");
    }

    #[test]
    fn a_missing_program_is_named_before_any_block() {
        let spec = MeasureCommand {
            argv: vec!["no-such-bench-xyz".to_owned()],
            env: Default::default(),
            grace_s: 1.0,
        };
        let e = CommandSource::new(&spec).unwrap_err().to_string();
        assert!(e.contains("`no-such-bench-xyz` not found"), "{e}");
        assert!(e.contains("give its full path"), "{e}");
    }
}
