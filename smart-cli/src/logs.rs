//! How much the binary says: the global `--quiet` and `--verbose` flags, and the log subscriber
//! they configure.
//!
//! - default: results on stdout; progress, warnings and errors on stderr; `info` logs.
//! - `--quiet`: only warnings, errors and each command's final result line (no progress display,
//!   no per-item lines, no `info` logs). Warnings stay: they report a problem to act on (a state
//!   disk that could not be written, an nginx that was not detected).
//! - `--verbose`: also `debug` logs on stderr: which config file was read, which commands ran.
//!
//! Data a command was asked for (`status`, `history`, `show`, `--json`) is its result, and is
//! printed whatever the level.

use std::sync::OnceLock;

use tracing::Level;

/// The global output flags, accepted before or after the subcommand.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub(crate) struct Verbosity {
    /// Print only warnings, errors and the final result line (no progress, no per-item lines)
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Also print debug logs on stderr (the config file read, the commands run)
    #[arg(long, short = 'v', global = true)]
    pub(crate) verbose: bool,
}

static CHOSEN: OnceLock<Verbosity> = OnceLock::new();

/// Records the flags for the whole process and installs the log subscriber when they ask for one
/// at once (`--verbose`); otherwise `smart run` installs it when it needs it.
pub(crate) fn set(verbosity: Verbosity) {
    let _ = CHOSEN.set(verbosity);
    if verbosity.verbose {
        init();
    }
}

/// `--quiet` was given.
pub(crate) fn quiet() -> bool {
    CHOSEN.get().is_some_and(|v| v.quiet)
}

/// The most detailed level logged: `debug` with `--verbose`, `warn` with `--quiet`, else `info`.
fn level() -> Level {
    match CHOSEN.get() {
        Some(v) if v.verbose => Level::DEBUG,
        Some(v) if v.quiet => Level::WARN,
        _ => Level::INFO,
    }
}

/// Installs the process's log subscriber once, at [`level`]. Under systemd (`JOURNAL_STREAM` is
/// set) it sends to journald's native socket with structured fields (`SMART_EXPERIMENT`,
/// `SMART_RUN_ID`, `SMART_VARIANT`, `SMART_DECISION`; see `run::progress`); elsewhere (or when
/// the socket cannot be reached) it writes compact lines on stderr, the message only, without the
/// target and without escape codes, and without timestamps under systemd, where journald stamps
/// each line itself.
pub(crate) fn init() {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let under_systemd = std::env::var_os("JOURNAL_STREAM").is_some();
    // A second call (a second run in one process) finds the subscriber in place: nothing to do.
    if under_systemd && let Ok(journald) = tracing_journald::layer() {
        let _ = tracing_subscriber::registry()
            .with(journald.with_field_prefix(None))
            .with(LevelFilter::from_level(level()))
            .try_init();
        return;
    }
    // The fields are for journald; a log line gets the message alone.
    let message_only = tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        if field.name() == "message" {
            write!(writer, "{value:?}")
        } else {
            Ok(())
        }
    });
    let builder = tracing_subscriber::fmt()
        .compact()
        .with_target(false)
        .fmt_fields(message_only)
        .with_max_level(level())
        .with_writer(std::io::stderr);
    let _ = if under_systemd {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}
