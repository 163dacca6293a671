//! Tests of the real `smart` binary, run as users run it, in a temp dir.

mod cli;
