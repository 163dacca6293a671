//! The measurement design: which arm each block of a variant's test measures, drawn from the run's
//! seed so the design is random (drift cannot line up with it) and replayable (the seed is
//! recorded, and [`cycle_order`] gives the same orders again).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::types::Arm;
use crate::mix::splitmix64;

/// The order of the four blocks of an interleaved cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CycleOrder {
    /// Baseline, variant, variant, baseline.
    #[serde(rename = "ABBA")]
    Abba,
    /// Variant, baseline, baseline, variant.
    #[serde(rename = "BAAB")]
    Baab,
}

impl CycleOrder {
    /// The arms of the cycle's four blocks, in order.
    pub fn arms(self) -> [Arm; 4] {
        use Arm::{Baseline as A, Variant as B};
        match self {
            CycleOrder::Abba => [A, B, B, A],
            CycleOrder::Baab => [B, A, A, B],
        }
    }

    /// `ABBA` or `BAAB`.
    pub fn as_str(self) -> &'static str {
        match self {
            CycleOrder::Abba => "ABBA",
            CycleOrder::Baab => "BAAB",
        }
    }
}

/// The order of cycle `cycle` (from 0) of variant `variant` (its index, from 0) in a run with
/// `seed`: each is a fair coin drawn from the seed and the pair, so it depends neither on how
/// earlier variants ended nor on how many cycles they used.
///
/// ```
/// use smart_core::engine::{CycleOrder, cycle_order};
///
/// let orders: Vec<CycleOrder> = (0..8).map(|c| cycle_order(42, 0, c)).collect();
/// // The same seed replays the same design.
/// assert_eq!(orders, (0..8).map(|c| cycle_order(42, 0, c)).collect::<Vec<_>>());
/// ```
pub fn cycle_order(seed: u64, variant: usize, cycle: u32) -> CycleOrder {
    let key = (variant as u64) << 32 | u64::from(cycle);
    if splitmix64(seed ^ splitmix64(key)) & 1 == 0 {
        CycleOrder::Abba
    } else {
        CycleOrder::Baab
    }
}

/// A fresh seed from the operating system's per-process hash keys and the time, for a new run.
pub fn fresh_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    splitmix64(RandomState::new().hash_one(nanos) ^ nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_balanced_and_differ_between_seeds() {
        let abba = (0..10_000)
            .filter(|&c| cycle_order(7, 0, c) == CycleOrder::Abba)
            .count();
        assert!((4_700..5_300).contains(&abba), "{abba} ABBA in 10 000");
        let a: Vec<_> = (0..32).map(|c| cycle_order(1, 0, c)).collect();
        let b: Vec<_> = (0..32).map(|c| cycle_order(2, 0, c)).collect();
        let c: Vec<_> = (0..32).map(|c| cycle_order(1, 1, c)).collect();
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn each_order_measures_both_arms_twice() {
        for order in [CycleOrder::Abba, CycleOrder::Baab] {
            let arms = order.arms();
            assert_eq!(arms.iter().filter(|a| **a == Arm::Baseline).count(), 2);
            assert_eq!(arms[1], arms[2]);
            assert_ne!(arms[0], arms[1]);
        }
    }
}
