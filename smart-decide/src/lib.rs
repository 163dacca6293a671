//! The statistical judge of `smart`: pure functions over per-block samples that decide whether a
//! variant is kept, reverted or inconclusive. No I/O and no clock.
