//! Integration tests of smart-core, compiled as one binary: validation of experiment files (one
//! case per rule), the committed JSON Schema, the examples, and property tests over random input.

mod examples;
mod fuzz;
mod roundtrip;
mod schema;
mod support;
mod validate;
