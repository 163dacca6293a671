//! Integration tests of smart-metrics: the shipped alert rules under promtool.

mod rules;
mod serve;
