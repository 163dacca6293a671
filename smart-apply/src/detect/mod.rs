//! Detects what runs on this machine, so `smart init` can write a config and an experiment that
//! match it instead of a stock example that has to be edited by hand.
//!
//! - nginx: `nginx -T` (run as an argv, never through a shell) prints every config file nginx
//!   loads, and [`nginx::parse_dump`] reads from it where the site listens, which file holds it,
//!   where `http {}` includes drop-in files, and every server-wide directive with the file and
//!   line it is on (what `smart init --detect` tunes); [`NginxSetup`] adds the commands that test
//!   and reload that same configuration.
//! - the kernel: [`system`] reads sysctls from `/proc/sys`, the CPU count and the memory.
//! - PostgreSQL: [`postgres`] reads a cluster's `postgresql.conf` and its `include_dir` from disk.
//!
//! Each is a pure reader of what a command or a file says, tested on captured text, and a thin
//! function that runs the command or reads the file. Nothing here changes the machine.

pub mod nginx;
pub mod postgres;
pub mod system;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

pub use nginx::{Context, Dump, LineEdit, Listen, ParseError, Setting, Site};
pub use postgres::PgConfig;
pub use system::Machine;

/// How long `nginx -T` may take: it only reads files.
const NGINX_T_TIMEOUT: Duration = Duration::from_secs(10);

/// Why nginx could not be detected; each message says what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The nginx binary is not installed (not on PATH, or not at the path given).
    #[error(
        "`{binary}` was not found: install nginx (apt-get install nginx), or name its binary with --nginx PATH"
    )]
    NotInstalled {
        /// The binary looked for.
        binary: String,
    },
    /// `nginx -T` could not be started or did not finish.
    #[error("`{argv}` could not run: {reason}")]
    CannotRun {
        /// The command, for the message.
        argv: String,
        /// What failed.
        reason: String,
    },
    /// `nginx -T` exited non-zero: the config does not load.
    #[error(
        "`{argv}` failed (exit {code}): {stderr}; fix nginx's config (or name the one to use with --nginx-config PATH) and run smart init again"
    )]
    Failed {
        /// The command, for the message.
        argv: String,
        /// Its exit code, or `signal`.
        code: String,
        /// Its last stderr line.
        stderr: String,
    },
    /// The output did not describe a site smart can measure.
    #[error("`{argv}`: {source}")]
    Parse {
        /// The command, for the message.
        argv: String,
        /// What the parser found missing.
        #[source]
        source: ParseError,
    },
}

/// The local nginx as an experiment needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxSetup {
    /// What the config dump says.
    pub dump: Dump,
    /// The argv that tests the config (`nginx -t`, with `-c` when a config was named).
    pub test: Vec<String>,
    /// The argv that reloads nginx (`nginx -s reload`, with `-c` when a config was named).
    pub reload: Vec<String>,
}

impl NginxSetup {
    /// Derives the test and reload commands for the nginx `binary` run with `config` (`-c`;
    /// `None` for its compiled-in default) from a parsed dump.
    pub fn new(dump: Dump, binary: &str, config: Option<&Path>) -> NginxSetup {
        let argv = |args: &[&str]| {
            let mut argv = vec![binary.to_owned()];
            if let Some(config) = config {
                argv.push("-c".to_owned());
                argv.push(config.display().to_string());
            }
            argv.extend(args.iter().map(|a| (*a).to_owned()));
            argv
        };
        NginxSetup {
            test: argv(&["-t"]),
            reload: argv(&["-s", "reload"]),
            dump,
        }
    }
}

/// Runs `BINARY [-c CONFIG] -T` and reads its output: see [`nginx::parse_dump`].
///
/// `binary` is a name looked up on PATH (`nginx`) or a path; `config` is the main config file
/// when it is not nginx's compiled-in default. Reading the config changes nothing: nginx is not
/// signalled and nothing is written.
pub async fn detect_nginx(binary: &str, config: Option<&Path>) -> Result<NginxSetup, DetectError> {
    let mut command = tokio::process::Command::new(binary);
    if let Some(config) = config {
        command.arg("-c").arg(config);
    }
    command.arg("-T");
    let argv = match config {
        Some(c) => format!("{binary} -c {} -T", c.display()),
        None => format!("{binary} -T"),
    };
    let child = command
        .env("LANG", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DetectError::NotInstalled {
                binary: binary.to_owned(),
            });
        }
        Err(e) => {
            return Err(DetectError::CannotRun {
                argv,
                reason: e.to_string(),
            });
        }
    };
    let output = match tokio::time::timeout(NGINX_T_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => {
            return Err(DetectError::CannotRun {
                argv,
                reason: e.to_string(),
            });
        }
        Err(_) => {
            return Err(DetectError::CannotRun {
                argv,
                reason: format!("no answer within {} s", NGINX_T_TIMEOUT.as_secs()),
            });
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(DetectError::Failed {
            argv,
            code: output
                .status
                .code()
                .map_or_else(|| "signal".to_owned(), |c| c.to_string()),
            stderr: stderr.trim().lines().last().unwrap_or("").to_owned(),
        });
    }
    let dump = nginx::parse_dump(&String::from_utf8_lossy(&output.stdout))
        .map_err(|source| DetectError::Parse { argv, source })?;
    Ok(NginxSetup::new(dump, binary, config))
}
