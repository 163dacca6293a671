//! The fleet coordinator's errors: each names what failed, on which hosts, and what to do.

/// What kind of failure, for the binary's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetErrorKind {
    /// The experiment or the inventory is wrong: fix the input (exit 2).
    BadInput,
    /// Something failed while running: a command, a host, a query (exit 3).
    Runtime,
}

/// A fleet experiment failed; the message says what, where and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FleetError {
    kind: FleetErrorKind,
    message: String,
    /// Hosts that failed to apply or revert, in inventory order.
    failed_hosts: Vec<String>,
}

impl FleetError {
    /// Bad input: the experiment file or the inventory.
    pub(crate) fn invalid(message: impl Into<String>) -> FleetError {
        FleetError {
            kind: FleetErrorKind::BadInput,
            message: message.into(),
            failed_hosts: Vec::new(),
        }
    }

    /// A failure while running.
    pub(crate) fn runtime(message: impl Into<String>) -> FleetError {
        FleetError {
            kind: FleetErrorKind::Runtime,
            message: message.into(),
            failed_hosts: Vec::new(),
        }
    }

    /// A failure of the named hosts.
    pub(crate) fn hosts(message: impl Into<String>, failed_hosts: Vec<String>) -> FleetError {
        FleetError {
            kind: FleetErrorKind::Runtime,
            message: message.into(),
            failed_hosts,
        }
    }

    /// Bad input or a runtime failure.
    pub fn kind(&self) -> FleetErrorKind {
        self.kind
    }

    /// The hosts that failed to apply or revert (empty when no host was at fault).
    pub fn failed_hosts(&self) -> &[String] {
        &self.failed_hosts
    }
}
