//! `smart generate`: shell completions (bash, zsh, fish) and man pages, generated from the clap
//! definitions, so they never drift from the real flags. Hidden: packagers run it at build time,
//! users get its output from the package.
//!
//! ```text
//! smart generate completions bash > smart.bash
//! smart generate man DIR          # DIR/smart.1 and DIR/smart-<subcommand>.1
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::Cli;
use crate::error::CliError;

/// Generate shell completions or man pages from the command-line definitions (for packaging).
#[derive(Debug, clap::Args)]
#[command(hide = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    what: What,
}

/// What to generate.
#[derive(Debug, clap::Subcommand)]
enum What {
    /// Print the completion script for SHELL to stdout.
    Completions {
        /// bash, zsh or fish
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
    /// Write smart.1 and one smart-SUBCOMMAND.1 per subcommand into DIR (created if missing).
    Man {
        /// The directory to write the pages into
        dir: PathBuf,
    },
}

pub(crate) fn run(args: &Args) -> Result<ExitCode, CliError> {
    let mut command = Cli::command();
    match &args.what {
        What::Completions { shell } => {
            let shell = match shell.as_str() {
                "bash" => Shell::Bash,
                "zsh" => Shell::Zsh,
                _ => Shell::Fish,
            };
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command, "smart", &mut out);
            std::io::stdout()
                .lock()
                .write_all(&out)
                .map_err(|e| CliError::runtime(format!("cannot write to stdout: {e}")))?;
        }
        What::Man { dir } => {
            std::fs::create_dir_all(dir).map_err(|e| {
                CliError::runtime(format!(
                    "cannot create {}: {e}; give a directory you can write",
                    dir.display()
                ))
            })?;
            command.build();
            let write = |cmd: &clap::Command, name: &'static str| -> Result<(), CliError> {
                let path = dir.join(format!("{name}.1"));
                let mut page = Vec::new();
                clap_mangen::Man::new(cmd.clone().name(name))
                    .render(&mut page)
                    .and_then(|()| std::fs::write(&path, page))
                    .map_err(|e| {
                        CliError::runtime(format!(
                            "cannot write {}: {e}; give a directory you can write",
                            path.display()
                        ))
                    })
            };
            write(&command, "smart")?;
            // Every visible subcommand but clap's own `help`.
            for sub in command
                .get_subcommands()
                .filter(|s| !s.is_hide_set() && s.get_name() != "help")
            {
                // clap names commands with `&'static str`; a handful of short names for the life of
                // a one-shot command is no leak worth a copy of clap_mangen's renderer.
                let name: &'static str = format!("smart-{}", sub.get_name()).leak();
                write(sub, name)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
