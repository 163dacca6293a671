//! Integration tests of smart-core, compiled as one binary: validation of experiment files (one
//! case per rule), the committed JSON Schema, the examples (rendered into a stock Debian nginx
//! config and checked by a real nginx), and property tests over random input.

mod containment;
mod engine;
mod examples;
mod fakes;
mod fuzz;
mod fuzz_hostile;
mod invariants;
mod measure;
mod nginx_examples;
mod prune;
mod records;
mod roundtrip;
mod runner;
mod runner_search;
mod schema;
mod support;
mod validate;
mod validate_search;
