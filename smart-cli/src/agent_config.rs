//! Finding and reading the agent config (`smart.toml`) for any subcommand: `--config PATH`, else
//! `./smart.toml`, else `/etc/smart/smart.toml`, else the built-in defaults.

use std::io::Write;

use smart_core::AgentConfig;

use crate::Global;
use crate::error::CliError;

impl Global {
    /// The checked agent config. A config file with problems is bad input (exit 2): each problem
    /// is printed on its own `FILE: key: message` line, then the error says which file to fix.
    pub(crate) fn agent_config(&self) -> Result<AgentConfig, CliError> {
        let cwd = std::env::current_dir()
            .map_err(|e| CliError::bad_input(format!("cannot read the current directory: {e}")))?;
        let Some(path) = AgentConfig::locate(self.config.as_deref(), &cwd) else {
            tracing::debug!("no config file found: system paths (/var/lib/smart) and no defaults");
            return Ok(AgentConfig::default());
        };
        tracing::debug!("reading the agent config {}", path.display());
        AgentConfig::load(&path).map_err(|invalid| {
            let _ = writeln!(std::io::stderr().lock(), "{invalid}");
            let count = invalid.problems().len();
            CliError::bad_input(format!(
                "the config file {} has {count} problem{}; fix it, or name another with --config PATH",
                path.display(),
                if count == 1 { "" } else { "s" }
            ))
        })
    }
}
