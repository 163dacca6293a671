//! The `smart` binary: parses arguments, calls the library crates, prints results and errors, and
//! turns them into exit codes. It holds no logic of its own.

use std::process::ExitCode;

use clap::Parser;

/// A server that tunes its own configuration: it runs A/B experiments on its config, measures,
/// and keeps a change only when the numbers prove it.
#[derive(Debug, Parser)]
#[command(name = "smart", version, about, long_about = None)]
struct Cli {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}
