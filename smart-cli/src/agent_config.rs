//! Finding and reading the agent config (`smart.toml`) for any subcommand: `--config PATH`, else
//! `./smart.toml`, else `/etc/smart/smart.toml`, else the built-in defaults.

use smart_core::AgentConfig;

use crate::Global;
use crate::error::CliError;

impl Global {
    /// The checked agent config; a config file with problems is bad input (exit 2).
    pub(crate) fn agent_config(&self) -> Result<AgentConfig, CliError> {
        let cwd = std::env::current_dir()
            .map_err(|e| CliError::bad_input(format!("cannot read the current directory: {e}")))?;
        match AgentConfig::locate(self.config.as_deref(), &cwd) {
            Some(path) => AgentConfig::load(&path).map_err(CliError::bad_input),
            None => Ok(AgentConfig::default()),
        }
    }
}
