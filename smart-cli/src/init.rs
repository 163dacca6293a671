//! `smart init`: writes a commented `smart.toml` and an example experiment to start from.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::Global;
use crate::error::CliError;

/// The config written: the repository's commented example.
const CONFIG: &str = include_str!("../../examples/smart.toml");
/// The experiment written: the open-file-cache example for a stock Debian/Ubuntu nginx.
const EXPERIMENT: &str = include_str!("../../examples/experiments/nginx-file-cache.json");

/// Write a commented smart.toml and an example experiment to start from
///
/// Writes DIR/smart.toml and DIR/experiments/nginx-file-cache.json (an open-file-cache experiment
/// for a stock Debian/Ubuntu nginx). Existing files are never overwritten: if either exists,
/// nothing is written and the exit code is 2. Then run `smart validate` in DIR.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::error::EXIT_CODES_HELP)]
pub(crate) struct Args {
    /// The directory to write into (created if missing)
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,
}

/// Writes both files, or none.
pub(crate) fn run(args: &Args, _global: &Global) -> Result<ExitCode, CliError> {
    let files = [
        (args.dir.join(smart_core::config::LOCAL_CONFIG), CONFIG),
        (
            args.dir.join("experiments").join("nginx-file-cache.json"),
            EXPERIMENT,
        ),
    ];
    for (path, _) in &files {
        if path.exists() {
            return Err(CliError::bad_input(format!(
                "{} already exists; smart init never overwrites a file: move it away or choose \
                 another directory (smart init DIR)",
                path.display()
            )));
        }
    }
    let mut written: Vec<&Path> = Vec::new();
    for (path, content) in &files {
        if let Err(e) = write_new(path, content) {
            // Leave the directory as it was: remove what this run wrote.
            for done in written {
                let _ = std::fs::remove_file(done);
            }
            return Err(CliError::runtime(format!(
                "cannot write {}: {e}",
                path.display()
            )));
        }
        written.push(path);
    }
    for (path, _) in &files {
        println!("wrote {}", path.display());
    }
    println!(
        "next: adapt the experiment to your server, then run `smart validate` in {}",
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Creates `path` (and its directory) with `content`; fails if it exists.
fn write_new(path: &Path, content: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file: File = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(content.as_bytes())?;
    file.sync_all()
}
