//! Integration tests of smart-decide's public API, compiled as one binary.

mod engine;
mod feasibility;
mod judge;
mod properties;
