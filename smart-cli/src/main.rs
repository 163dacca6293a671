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
#![allow(
    rustdoc::broken_intra_doc_links,
    reason = "the Args doc comments are clap's --help text, written for a terminal: `[retention]` names a smart.toml section, not an item"
)]

mod agent_config;
mod audit;
mod calibrate;
mod dashboard;
mod demo;
mod error;
mod fleet;
mod generate;
mod history;
mod init;
mod logs;
mod metrics;
mod probe;
mod prune;
mod recover;
mod revert;
mod run;
mod search_view;
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
pub(crate) struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(flatten)]
    verbosity: logs::Verbosity,
    #[command(subcommand)]
    command: Command,
}

/// `--config`, for the subcommands that read the agent config. It is accepted before the
/// subcommand (`smart --config PATH run`, as the systemd units write it) and after it (`smart run
/// --config PATH`), but only the subcommands that read the file list it: `smart init --help` does
/// not offer a flag that would do nothing (issue 16), and `smart --config PATH init` is refused.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct Global {
    /// The agent config file [default: ./smart.toml if present, else /etc/smart/smart.toml]
    #[arg(long, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
}

// A subcommand's own arguments plus `--config`. (No doc comment: the subcommand's help text
// comes from its own `Args`.)
#[derive(Debug, clap::Args)]
pub(crate) struct WithConfig<T: clap::Args> {
    #[command(flatten)]
    config: Global,
    #[command(flatten)]
    args: T,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    Validate(WithConfig<validate::Args>),
    Init(init::Args),
    Probe(probe::Args),
    Calibrate(WithConfig<calibrate::Args>),
    Revert(WithConfig<revert::Args>),
    Recover(WithConfig<recover::Args>),
    Audit(WithConfig<audit::Args>),
    Dashboard(WithConfig<dashboard::Args>),
    Run(WithConfig<run::Args>),
    Status(WithConfig<status::Args>),
    History(WithConfig<history::Args>),
    Show(WithConfig<show::Args>),
    Prune(WithConfig<prune::Args>),
    Metrics(WithConfig<metrics::Args>),
    Demo(demo::Args),
    Generate(generate::Args),
    Fleet(WithConfig<fleet::Args>),
}

/// Runs one subcommand. `top` is what was given before the subcommand; a `--config` after it
/// wins.
fn dispatch(command: &Command, top: &Global) -> Result<ExitCode, CliError> {
    let merged = |after: &Global| Global {
        config: after.config.clone().or_else(|| top.config.clone()),
    };
    let no_config = |name: &str| match &top.config {
        Some(path) => Err(CliError::bad_input(format!(
            "`smart {name}` reads no agent config, so --config {} would do nothing; drop it",
            path.display()
        ))),
        None => Ok(()),
    };
    match command {
        Command::Validate(c) => validate::run(&c.args, &merged(&c.config)),
        Command::Init(args) => no_config("init").and_then(|()| init::run(args, top)),
        Command::Probe(args) => no_config("probe").and_then(|()| probe::run(args, top)),
        Command::Calibrate(c) => calibrate::run(&c.args, &merged(&c.config)),
        Command::Revert(c) => revert::run(&c.args, &merged(&c.config)),
        Command::Recover(c) => recover::run(&c.args, &merged(&c.config)),
        Command::Audit(c) => audit::run(&c.args, &merged(&c.config)),
        Command::Dashboard(c) => dashboard::run(&c.args, &merged(&c.config)),
        Command::Run(c) => run::run(&c.args, &merged(&c.config)),
        Command::Status(c) => status::run(&c.args, &merged(&c.config)),
        Command::History(c) => history::run(&c.args, &merged(&c.config)),
        Command::Show(c) => show::run(&c.args, &merged(&c.config)),
        Command::Prune(c) => prune::run(&c.args, &merged(&c.config)),
        Command::Metrics(c) => metrics::run(&c.args, &merged(&c.config)),
        Command::Demo(args) => no_config("demo").and_then(|()| demo::run(args, top)),
        Command::Generate(args) => no_config("generate").and_then(|()| generate::run(args)),
        Command::Fleet(c) => fleet::run(&c.args, &merged(&c.config)),
    }
}

/// Prints `value` as pretty JSON on stdout: the output of every `--json`.
pub(crate) fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::runtime(format!("cannot print the JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Makes a closed stdout end the process quietly: `smart history | head -1` and `smart status |
/// grep -q x` close the pipe before everything is printed, and `println!` then panics with
/// "failed printing to stdout: Broken pipe". The reader chose to stop reading, so this is no
/// failure: exit 0 without a message. Every other panic keeps the default report.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // `--help` and `--version` are not errors and print to stdout; usage errors exit 2.
            let code = if err.use_stderr() { EXIT_BAD_INPUT } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    logs::set(cli.verbosity);
    match dispatch(&cli.command, &cli.global) {
        Ok(code) => code,
        Err(err) => {
            let _ = std::io::stdout().flush();
            let _ = err.write_chain(&mut std::io::stderr().lock());
            err.exit_code()
        }
    }
}
