//! The heart of `smart`: the experiment model and its validation, the template substituter that
//! renders config files, and (as later parts land) the run records, the ports other crates
//! implement and the engine that sequences a run through them.
//!
//! This crate does no network or process work of its own: it is pure data and logic, so other
//! Rust tools can embed it with their own probes and appliers.

#[doc(hidden)]
pub mod atomic;
pub mod audit;
mod checked;
pub mod config;
mod defaults;
pub mod engine;
#[doc(hidden)]
pub mod error_chain;
pub mod experiment;
pub mod logs;
mod measure;
mod mix;
pub mod problem;
mod reader;
pub mod records;
pub mod redact;
pub mod runner;
pub mod schedule;
pub mod template;
pub mod validate;

pub use checked::{BASELINE, Experiment, ProbeTarget};
pub use config::{AgentConfig, Defaults};
pub use problem::{Invalid, Problem};
