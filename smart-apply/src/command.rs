//! Runs the experiment's commands: argv vectors (never a shell), a cleared environment with an
//! explicit `PATH` and `LANG=C`, a timeout, and the exit code and trimmed stderr captured.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Step};

/// The `PATH` commands run with unless [`crate::Config::path`] says otherwise.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// At most this much of a command's stderr goes into the audit log and messages.
const STDERR_LIMIT: usize = 2000;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The exit code; `None` when killed by a signal or the timeout.
    pub(crate) code: Option<i32>,
    /// Standard output, trimmed.
    pub(crate) stdout: String,
    /// Standard error, trimmed and cut to a few KiB.
    pub(crate) stderr: String,
    /// Whether the timeout killed it.
    pub(crate) timed_out: bool,
    /// How long it ran.
    pub(crate) elapsed: Duration,
}

impl Outcome {
    pub(crate) fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// "exit code 1: <stderr>" or "timed out after 30 s", for messages.
    pub(crate) fn describe(&self, timeout: Duration) -> String {
        let how = if self.timed_out {
            format!("timed out after {} s", timeout.as_secs_f64())
        } else {
            match self.code {
                Some(code) => format!("exit code {code}"),
                None => "killed by a signal".to_owned(),
            }
        };
        if self.stderr.is_empty() {
            how
        } else {
            format!("{how}: {}", self.stderr)
        }
    }

    /// The audit-log details of a run of `argv`.
    pub(crate) fn details(&self, argv: &[String]) -> serde_json::Value {
        serde_json::json!({
            "argv": argv,
            "exit_code": self.code,
            "timed_out": self.timed_out,
            "stderr": self.stderr,
            "elapsed_ms": self.elapsed.as_millis() as u64,
        })
    }
}

/// Finds `program` as the child would: a path containing `/` as is, else in `path`.
pub(crate) fn resolve(program: &str, path: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = Path::new(program);
        return p.is_file().then(|| p.to_owned());
    }
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Checks that `argv` names a program that exists, before anything changes.
pub(crate) fn check_exists(field: &str, argv: &[String], path: &str) -> Result<(), Error> {
    let Some(program) = argv.first() else {
        return Err(Error::new(
            ErrorKind::BadInput,
            Step::Preflight,
            format!("apply.{field} is an empty command: give an argv like [\"nginx\", \"-t\"]"),
        ));
    };
    if resolve(program, path).is_none() {
        return Err(Error::new(
            ErrorKind::BadInput,
            Step::Preflight,
            format!(
                "apply.{field}: command `{program}` not found (PATH={path}): install it or give its full path; nothing was changed"
            ),
        ));
    }
    Ok(())
}

/// Runs `argv` to completion or `timeout`, whichever comes first (the child is killed then).
///
/// A program that cannot be started is an error of `step`; a non-zero exit is not (the caller
/// decides what it means).
pub(crate) async fn run(
    step: Step,
    argv: &[String],
    timeout: Duration,
    path: &str,
) -> Result<Outcome, Error> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Error::new(ErrorKind::BadInput, step, "empty command"));
    };
    let Some(resolved) = resolve(program, path) else {
        return Err(Error::new(
            ErrorKind::BadInput,
            step,
            format!(
                "command `{program}` not found (PATH={path}): install it or give its full path"
            ),
        ));
    };
    let started = Instant::now();
    let child = tokio::process::Command::new(&resolved)
        .args(args)
        .env_clear()
        .env("PATH", path)
        .env("LANG", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::new(
                ErrorKind::BadInput,
                step,
                format!("cannot start `{}`", resolved.display()),
            )
            .with_source(e)
        })?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => Ok(Outcome {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            stderr: cut(String::from_utf8_lossy(&output.stderr).trim()),
            timed_out: false,
            elapsed: started.elapsed(),
        }),
        Ok(Err(e)) => Err(Error::new(
            ErrorKind::State,
            step,
            format!("waiting for `{}` failed", resolved.display()),
        )
        .with_source(e)),
        // Dropping the future dropped the child, which kill_on_drop kills.
        Err(_) => Ok(Outcome {
            code: None,
            stdout: String::new(),
            stderr: String::new(),
            timed_out: true,
            elapsed: started.elapsed(),
        }),
    }
}

fn cut(s: &str) -> String {
    if s.len() <= STDERR_LIMIT {
        return s.to_owned();
    }
    let mut end = STDERR_LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn captures_exit_code_trimmed_stderr_and_a_clean_environment() {
        let out = run(
            Step::Validate,
            &argv(&["sh", "-c", "env | sort; echo '  bad thing  ' >&2; exit 3"]),
            Duration::from_secs(10),
            DEFAULT_PATH,
        )
        .await
        .unwrap();
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stderr, "bad thing");
        let vars: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("_="))
            .collect();
        assert_eq!(vars, ["LANG=C", &format!("PATH={DEFAULT_PATH}")]);
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_killed() {
        let started = Instant::now();
        let out = run(
            Step::Reload,
            &argv(&["sleep", "30"]),
            Duration::from_millis(200),
            DEFAULT_PATH,
        )
        .await
        .unwrap();
        assert!(out.timed_out && out.code.is_none());
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            out.describe(Duration::from_millis(200))
                .contains("timed out")
        );
    }

    #[tokio::test]
    async fn a_missing_program_is_bad_input_naming_the_step() {
        let err = run(
            Step::Reload,
            &argv(&["no-such-reloader"]),
            Duration::from_secs(1),
            DEFAULT_PATH,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::BadInput);
        assert_eq!(err.step(), Step::Reload);
        assert!(err.to_string().contains("no-such-reloader"), "{err}");
        assert!(check_exists("reload", &argv(&["no-such-reloader"]), DEFAULT_PATH).is_err());
        assert!(check_exists("reload", &argv(&["sh"]), DEFAULT_PATH).is_ok());
    }
}
