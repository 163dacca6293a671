//! The probe's error type: bad settings (the caller's input) and an HTTP client that cannot be set
//! up. Request failures are never errors here: they are outcomes, counted in the results.

/// Why a probe could not be configured or started.
///
/// Opaque, so the kinds can grow without breaking callers; [`ProbeError::is_bad_input`] tells a
/// caller's mistake (exit code 2 in the CLI) from a runtime failure.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ProbeError(Box<Kind>);

#[derive(Debug, thiserror::Error)]
enum Kind {
    #[error("invalid probe setting `{field}`: {problem}")]
    Invalid { field: String, problem: String },
    #[error("could not set up the HTTP client")]
    Client(#[source] reqwest::Error),
}

impl ProbeError {
    /// A setting is invalid: `field` names it as the user wrote it, `problem` says what is wrong
    /// and how to fix it.
    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ProbeError {
        ProbeError(Box::new(Kind::Invalid {
            field: field.into(),
            problem: problem.into(),
        }))
    }

    pub(crate) fn client(source: reqwest::Error) -> ProbeError {
        ProbeError(Box::new(Kind::Client(source)))
    }

    /// Whether the error is the caller's input (a bad URL, header, rate, ...), as opposed to a
    /// failure of the machine the probe runs on.
    pub fn is_bad_input(&self) -> bool {
        matches!(*self.0, Kind::Invalid { .. })
    }

    /// The setting that is invalid, as the user wrote it (e.g. `target.urls[1]`), if that is
    /// the problem.
    pub fn field(&self) -> Option<&str> {
        match &*self.0 {
            Kind::Invalid { field, .. } => Some(field),
            Kind::Client(_) => None,
        }
    }

    /// What is wrong with [`ProbeError::field`] and how to fix it, if a setting is the problem
    /// (so a CLI can name the flag instead of the field).
    pub fn problem(&self) -> Option<&str> {
        match &*self.0 {
            Kind::Invalid { problem, .. } => Some(problem),
            Kind::Client(_) => None,
        }
    }
}
