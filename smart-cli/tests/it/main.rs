//! Tests of the real `smart` binary, run as users run it, in a temp dir.

mod access_log;
mod apply_cmds;
mod cli;
mod coach;
mod dashboard;
mod demo;
mod deploy;
mod detect;
mod e2e_nginx;
mod faults;
mod fleet;
mod generate;
mod hostile;
mod newcomer;
mod postgres;
mod probe;
mod prometheus;
mod quickstart;
mod run;
mod search;
mod source_prometheus;
mod support;
