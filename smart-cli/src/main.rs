//! The `smart` binary: parses arguments, calls the library crates, prints results and errors, and
//! turns them into exit codes. It holds no logic of its own.
//!
//! Each subcommand lives in its own module with an `Args` struct (clap derive) and a
//! `run(&args, &Global) -> Result<ExitCode, CliError>` entry point; `main` only dispatches and
//! prints the error chain. To add a subcommand: a module file, one variant in [`Command`], one arm
//! in [`dispatch`].
#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the binary is the one place that prints: results to stdout, errors to stderr"
)]

mod agent_config;
mod audit;
mod calibrate;
mod dashboard;
mod demo;
mod error;
mod history;
mod init;
mod probe;
mod recover;
mod revert;
mod run;
mod show;
mod status;
mod validate;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::{CliError, EXIT_BAD_INPUT, EXIT_CODES_HELP};

/// A server that tunes its own configuration: it runs A/B experiments on its config, measures,
/// and keeps a change only when the numbers prove it.
#[derive(Debug, Parser)]
#[command(name = "smart", version, about, long_about = None, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand accepts.
#[derive(Debug, clap::Args)]
pub(crate) struct Global {
    /// The agent config file [default: ./smart.toml if present, else /etc/smart/smart.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    Validate(validate::Args),
    Init(init::Args),
    Probe(probe::Args),
    Calibrate(calibrate::Args),
    Revert(revert::Args),
    Recover(recover::Args),
    Audit(audit::Args),
    Dashboard(dashboard::Args),
    Run(run::Args),
    Status(status::Args),
    History(history::Args),
    Show(show::Args),
    Demo(demo::Args),
}

/// Runs one subcommand.
fn dispatch(command: &Command, global: &Global) -> Result<ExitCode, CliError> {
    match command {
        Command::Validate(args) => validate::run(args, global),
        Command::Init(args) => init::run(args, global),
        Command::Probe(args) => probe::run(args, global),
        Command::Calibrate(args) => calibrate::run(args, global),
        Command::Revert(args) => revert::run(args, global),
        Command::Recover(args) => recover::run(args, global),
        Command::Audit(args) => audit::run(args, global),
        Command::Dashboard(args) => dashboard::run(args, global),
        Command::Run(args) => run::run(args, global),
        Command::Status(args) => status::run(args, global),
        Command::History(args) => history::run(args, global),
        Command::Show(args) => show::run(args, global),
        Command::Demo(args) => demo::run(args, global),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // `--help` and `--version` are not errors and print to stdout; usage errors exit 2.
            let code = if err.use_stderr() { EXIT_BAD_INPUT } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    match dispatch(&cli.command, &cli.global) {
        Ok(code) => code,
        Err(err) => {
            let _ = std::io::stdout().flush();
            let _ = err.write_chain(&mut std::io::stderr().lock());
            err.exit_code()
        }
    }
}
