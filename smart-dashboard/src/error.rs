//! The dashboard's error: what could not be read or written, and where.

use std::path::{Path, PathBuf};

/// Rendering the dashboard failed: a record could not be read, or a page could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DashboardError {
    message: String,
    path: PathBuf,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl DashboardError {
    pub(crate) fn io(action: &str, path: &Path, source: std::io::Error) -> DashboardError {
        DashboardError {
            message: format!("{action} {}", path.display()),
            path: path.to_owned(),
            source: Box::new(source),
        }
    }

    pub(crate) fn records(source: smart_core::records::RecordsError) -> DashboardError {
        DashboardError {
            message: "the run records could not be read; check the state dir (`smart history` reads the same files)".to_owned(),
            path: source.path().to_owned(),
            source: Box::new(source),
        }
    }

    pub(crate) fn template(name: &str, source: tinytemplate::error::Error) -> DashboardError {
        DashboardError {
            message: format!("rendering the {name} template"),
            path: PathBuf::from(name),
            source: Box::new(source),
        }
    }

    /// The file or directory concerned.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
