//! The heart of `smart`: the experiment model and its validation, the template substituter that
//! renders config files, and (as later parts land) the run records, the ports other crates
//! implement and the engine that sequences a run through them.
//!
//! This crate does no network or process work of its own: it is pure data and logic, so other
//! Rust tools can embed it with their own probes and appliers.

pub mod experiment;
pub mod template;
