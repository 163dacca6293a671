//! The applier's error: which step failed, what kind of failure it is, and what to do.

use std::fmt;

/// The step of applying or reverting that an error (or an audit line) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Taking the run lock.
    Lock,
    /// Checking the experiment against this machine before anything changes.
    Preflight,
    /// Validating and health-checking the configuration as found.
    Baseline,
    /// Saving the originals.
    Backup,
    /// Rendering a file's content for an arm.
    Render,
    /// Writing (or removing) a config file.
    Write,
    /// Running the command applier's `read`, `set` or `revert`.
    Command,
    /// Running `validate`.
    Validate,
    /// Running `reload`.
    Reload,
    /// Confirming through the live check that the new config serves.
    LiveCheck,
    /// Polling the health URL.
    Health,
    /// Putting the original back.
    Revert,
    /// Comparing restored files with their backups.
    Verify,
    /// Recovering an interrupted run.
    Recover,
    /// Reading or writing the state dir (journal, manifest, backups).
    State,
    /// Writing the audit log.
    Audit,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Lock => "lock",
            Step::Preflight => "preflight",
            Step::Baseline => "baseline check",
            Step::Backup => "backup",
            Step::Render => "render",
            Step::Write => "write",
            Step::Command => "command",
            Step::Validate => "validate",
            Step::Reload => "reload",
            Step::LiveCheck => "live check",
            Step::Health => "health",
            Step::Revert => "revert",
            Step::Verify => "verify",
            Step::Recover => "recover",
            Step::State => "state",
            Step::Audit => "audit log",
        })
    }
}

/// What kind of failure an [`Error`] is: what has (not) changed on the server and what the caller
/// should do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Another process holds the run lock; `pid` names it when the lock file says.
    Locked {
        /// The holder's process id, as written in the lock file.
        pid: Option<u32>,
    },
    /// The experiment does not fit this machine (missing dir or command, read-only file, an edit
    /// pattern that does not match exactly one line, no template): nothing was changed.
    BadInput,
    /// The configuration as found fails `validate` or `health`: nothing was changed.
    UnsoundBaseline,
    /// Someone else changed a file smart manages: smart stopped without touching anything.
    Conflict,
    /// A step failed; the original configuration was restored, verified and is serving.
    Reverted,
    /// Restoring the original failed or could not be verified: the server may not be on its
    /// original configuration. Needs a human.
    RevertFailed,
    /// There is no run to act on (e.g. `revert` of an experiment that never ran).
    NotFound,
    /// The state dir (journal, backups, audit log) could not be read or written.
    State,
}

/// An applier error: the step, the kind, and a message that says what failed on what.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    step: Step,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// The failure behind it was the state dir (e.g. a switch stopped because its journal
    /// record could not be written, then the original was restored).
    from_state: bool,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, step: Step, message: impl Into<String>) -> Error {
        Error {
            kind,
            step,
            message: message.into(),
            source: None,
            from_state: false,
        }
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    /// The same error, attributed to `step`.
    pub(crate) fn at(mut self, step: Step) -> Error {
        self.step = step;
        self
    }

    /// A state-dir I/O failure on `what`, naming the real cause (disk full, read-only,
    /// permission) and its fix.
    pub(crate) fn state(what: impl fmt::Display, source: std::io::Error) -> Error {
        Error::new(
            ErrorKind::State,
            Step::State,
            format!("{what}: {}", describe_io(&source)),
        )
    }

    /// The same error, marked as caused by `cause` when that was a state-dir failure.
    pub(crate) fn caused_by(mut self, cause: &Error) -> Error {
        self.from_state |= cause.from_state || cause.kind == ErrorKind::State;
        self
    }

    /// Whether this is smart's own failure rather than the configuration's: the state dir could
    /// not be written (now or behind a restore), another run holds the lock, or the experiment
    /// does not fit this machine. Such a failure says nothing about a variant.
    pub fn is_smarts_own(&self) -> bool {
        self.from_state
            || matches!(self.kind, ErrorKind::State | ErrorKind::Locked { .. })
            || (self.kind == ErrorKind::BadInput && self.step == Step::Preflight)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The step that failed.
    pub fn step(&self) -> Step {
        self.step
    }

    /// Whether the original configuration is known to be in place and serving after this
    /// error: false for [`ErrorKind::RevertFailed`], [`ErrorKind::Conflict`] (a human's edit is on
    /// disk) and [`ErrorKind::State`] (smart could not record what it did, so it cannot say).
    pub fn original_in_place(&self) -> bool {
        !matches!(
            self.kind,
            ErrorKind::RevertFailed | ErrorKind::Conflict | ErrorKind::State
        )
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

/// An I/O error in words with, for the failures a bad day brings (a full, read-only or
/// forbidden disk), the errno name and what to do.
pub(crate) fn describe_io(error: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let hint = match (error.kind(), error.raw_os_error()) {
        (K::StorageFull, _) | (_, Some(28)) => {
            "the disk is full (ENOSPC): free space on that filesystem, or move the state dir \
             (state_dir in smart.toml) to a larger one"
        }
        (_, Some(122)) => "the disk quota is exceeded (EDQUOT): raise the quota or free space",
        (K::ReadOnlyFilesystem, _) | (_, Some(30)) => {
            "the filesystem is read-only (EROFS): remount it read-write (`mount -o remount,rw`), \
             or check the disk for errors (a filesystem goes read-only after I/O errors)"
        }
        (K::PermissionDenied, _) => {
            "permission denied (EACCES/EPERM): run smart as the user that owns the state dir and \
             the config files (root, or the unit's user), and check `chattr +i` and mount options"
        }
        _ => return error.to_string(),
    };
    format!("{error}: {hint}")
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
