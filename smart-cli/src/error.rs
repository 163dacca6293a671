//! The binary's one error type: a failure class (which picks the exit code) around the library
//! error that caused it, printed with its whole `source()` chain.
//!
//! Every subcommand's `run` returns `Result<ExitCode, CliError>`. Wrap a library error with the
//! constructor that says whose fault it is: [`CliError::bad_input`] (exit 2) when the user can fix
//! it by changing a file or an argument, [`CliError::runtime`] (exit 3) when something failed while
//! doing the work, [`CliError::lock_held`] (exit 4) when another run holds the lock. A deliberate
//! stop is not an error: `smart run` returns [`EXIT_STOPPED`] (exit 5) itself once the original
//! is back.

use std::error::Error;
use std::fmt;
use std::io::Write;
use std::process::ExitCode;

/// Exit code: bad input or usage (a file, a field or an argument is wrong); nothing was changed.
pub(crate) const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: a runtime failure (a command, a check, the disk or the network failed).
pub(crate) const EXIT_RUNTIME: u8 = 3;
/// Exit code: another `smart` run holds the lock.
pub(crate) const EXIT_LOCK_HELD: u8 = 4;
/// Exit code: stopped on request (SIGINT/SIGTERM, e.g. `systemctl stop`) with a run under way; the
/// original config was restored and the run recorded as cancelled. Distinct from 3 so that a
/// service manager can count a deliberate stop as success (`SuccessExitStatus=4 5` in
/// smart-agent.service); a stop whose restore failed exits 3.
pub(crate) const EXIT_STOPPED: u8 = 5;

/// The exit codes as `smart --help` and the docs list them.
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  2  bad input or usage: fix the file, field or argument named in the message; nothing was changed
  3  runtime failure: a command, check or I/O failed while working (the message says which)
  4  another smart run holds the lock (the message names its PID)
  5  stopped on request (SIGINT/SIGTERM) mid-run: the original config was restored and the run
     recorded as cancelled (a stop whose restore failed exits 3)";

/// Whose fault a failure is, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Exit 2: the user can fix it by changing a file or an argument.
    BadInput,
    /// Exit 3: something failed while doing the work.
    Runtime,
    /// Exit 4: another run holds the lock.
    LockHeld,
}

impl Failure {
    /// The process exit code of this failure class.
    pub(crate) fn code(self) -> u8 {
        match self {
            Failure::BadInput => EXIT_BAD_INPUT,
            Failure::Runtime => EXIT_RUNTIME,
            Failure::LockHeld => EXIT_LOCK_HELD,
        }
    }
}

/// A failed subcommand: its class and the error (with its `source()` chain) to print.
pub(crate) struct CliError {
    failure: Failure,
    error: Box<dyn Error + Send + Sync + 'static>,
}

impl CliError {
    /// A problem the user fixes by changing input (exit 2).
    pub(crate) fn bad_input(error: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> Self {
        CliError {
            failure: Failure::BadInput,
            error: error.into(),
        }
    }

    /// A failure while doing the work (exit 3).
    pub(crate) fn runtime(error: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> Self {
        CliError {
            failure: Failure::Runtime,
            error: error.into(),
        }
    }

    /// Another run holds the lock (exit 4); the error should name the holder.
    pub(crate) fn lock_held(error: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> Self {
        CliError {
            failure: Failure::LockHeld,
            error: error.into(),
        }
    }

    /// Writes `smart: error: ...` and one `  caused by: ...` line per source in the chain.
    ///
    /// A cause whose text the lines above already hold is skipped: many library errors put
    /// their source's message into their own (`finding run …: there is no run …`), and printing
    /// it again on a `caused by:` line said the same thing twice (issue 16).
    pub(crate) fn write_chain(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut said = self.error.to_string();
        writeln!(out, "smart: error: {said}")?;
        for cause in smart_core::error_chain::chain(&*self.error).skip(1) {
            let text = cause.to_string();
            if !said.contains(&text) {
                writeln!(out, "  caused by: {text}")?;
                said.push('\n');
                said.push_str(&text);
            }
        }
        Ok(())
    }

    /// The exit code to end the process with.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.failure.code())
    }
}

/// A run record or status file that could not be read or written (exit 3), with the next step:
/// the message names the file; the usual causes are permissions and a state dir of another user.
pub(crate) fn state_error(error: smart_core::records::RecordsError) -> CliError {
    let dir = error
        .path()
        .parent()
        .map_or_else(String::new, |d| d.display().to_string());
    CliError::runtime(format!(
        "{error}; check that {dir} exists and is readable by this user (run as the user smart runs \
         as, e.g. root for /var/lib/smart, or name the agent config whose state_dir to use with \
         --config PATH)"
    ))
}

impl fmt::Debug for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CliError")
            .field("failure", &self.failure)
            .field("error", &self.error)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn prints_the_whole_chain_and_maps_exit_codes() {
        let err = CliError::runtime(Outer(std::io::Error::other("inner")));
        let mut out = Vec::new();
        err.write_chain(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "smart: error: outer\n  caused by: inner\n"
        );
        assert_eq!(err.failure.code(), 3);

        // A cause already in the message is not repeated.
        #[derive(Debug)]
        struct Repeats(std::io::Error);
        impl fmt::Display for Repeats {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "reading /x: {}", self.0)
            }
        }
        impl Error for Repeats {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = CliError::runtime(Repeats(std::io::Error::other("disk full")));
        let mut out = Vec::new();
        err.write_chain(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "smart: error: reading /x: disk full\n"
        );
        assert_eq!(CliError::bad_input("x").failure.code(), 2);
        assert_eq!(Failure::LockHeld.code(), 4);
    }

    #[test]
    fn a_stop_has_its_own_documented_code() {
        let failures = [Failure::BadInput, Failure::Runtime, Failure::LockHeld];
        assert!(failures.iter().all(|f| f.code() != EXIT_STOPPED));
        assert!(EXIT_CODES_HELP.contains(&format!("\n  {EXIT_STOPPED}  stopped on request")));
    }
}
