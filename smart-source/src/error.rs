//! The errors of the metric sources: each names what failed and how to fix it.

use std::time::Duration;

/// A source could not measure a block (or could not be set up).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The experiment's source cannot be built from its settings.
    #[error("{0}")]
    Setup(String),
    /// The measuring command's program is not there.
    #[error(
        "measure.command: program `{program}` not found (PATH={path}); install it or give its full path in measure.command.argv"
    )]
    NotFound {
        /// The program as written.
        program: String,
        /// The `PATH` it was looked up in.
        path: String,
    },
    /// The program exists but could not be started.
    #[error("measure.command: cannot start `{program}`: {source}; check that it is executable")]
    Start {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// The command ran longer than the block plus its grace and was killed.
    #[error(
        "measure.command `{program}` was still running {} s after the block should have ended and was killed with its process group; make it stop after SMART_WARMUP_S + SMART_BLOCK_S seconds, or raise measure.command.grace_s",
        .grace.as_secs_f64()
    )]
    Hung {
        /// The program.
        program: String,
        /// The grace it was given past the block's end.
        grace: Duration,
    },
    /// The command exited unsuccessfully.
    #[error(
        "measure.command `{program}` failed ({status}){}; run it by hand as smart does (e.g. SMART_WARMUP_S=0 SMART_BLOCK_S=10 and its argv) to see why",
        stderr_suffix(.stderr)
    )]
    Failed {
        /// The program.
        program: String,
        /// "exit code 2" or "killed by signal 9".
        status: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// The log is not in the format the source reads.
    #[error("{0}")]
    Format(String),
    /// The block holds no data to judge (never reported as a zero).
    #[error("{0}")]
    NoData(String),
    /// The command's output is not a valid block report.
    #[error(
        "the measuring command's block report is unusable: {0}; see docs/experiment-format.md (measure.command) for the JSON it must print"
    )]
    Report(String),
}

impl SourceError {
    pub(crate) fn report(why: impl Into<String>) -> SourceError {
        SourceError::Report(why.into())
    }
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}
