//! The crate's error: a search space or state that cannot be used.

/// Why a search could not be set up or resumed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SearchError {
    message: String,
}

impl SearchError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        SearchError {
            message: message.into(),
        }
    }
}
