//! Integration tests of smart-coach, compiled as one binary: a real HTTP coach server on
//! loopback answering every failure kind, an Ollama-shaped fake, the engine with fake ports and
//! the real coach, the undelivered-report queue, the committed JSON Schemas, the config's token
//! rules, and a whole run checked for the token in every file it wrote.

mod config;
mod engine;
mod fakes;
mod http;
mod ollama;
mod schema;
mod secrecy;
mod server;
mod support;
