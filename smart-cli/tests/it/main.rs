//! Tests of the real `smart` binary, run as users run it, in a temp dir.

mod apply_cmds;
mod cli;
mod deploy;
mod probe;
