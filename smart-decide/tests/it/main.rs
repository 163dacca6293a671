//! Integration tests of smart-decide's public API, compiled as one binary.

mod engine;
mod feasibility;
mod fleet_sim;
mod judge;
mod properties;
