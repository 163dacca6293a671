//! Integration tests of smart-metrics: the collector over written records, the /metrics server,
//! and the shipped alert rules under promtool.

mod collect;
mod rules;
mod serve;
