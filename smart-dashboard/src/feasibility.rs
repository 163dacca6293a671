//! What each experiment's schedule can detect, as smart-cli stored it: `smart run` (before each
//! run) and `smart calibrate` write STATE_DIR/calibration/NAME.feasibility.json with smart-decide's
//! feasibility (the smallest win kept in 80 % of runs, the power at twice the threshold) and
//! whether the noise behind it was measured on this server or a typical figure. The dashboard
//! only reads the figures: computing them simulates hundreds of experiments, too slow for a
//! render after every block.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Deserialize;

/// The directory under the state dir where smart-cli stores calibrations and feasibility.
const CALIBRATION_DIR: &str = "calibration";
/// The suffix of a stored feasibility file, after the experiment's name.
const SUFFIX: &str = ".feasibility.json";

/// A stored feasibility, as smart-cli writes it (unknown fields are ignored and missing ones are
/// empty, so an older or newer file still shows what it has).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Stored {
    pub(crate) experiment: String,
    /// When it was computed (RFC 3339, UTC).
    pub(crate) computed: Option<String>,
    /// `measured` (by `smart calibrate`) or `typical`.
    pub(crate) noise_source: Option<String>,
    /// When `smart calibrate` measured the noise, for `measured`.
    pub(crate) calibrated: Option<String>,
    pub(crate) min_improvement_pct: Option<f64>,
    pub(crate) feasibility: Figures,
}

/// The fields of smart-decide's `Feasibility` the dashboard shows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Figures {
    pub(crate) reachable: bool,
    pub(crate) cycles: Option<u32>,
    pub(crate) first_keep_cycle: Option<u32>,
    pub(crate) assumed_pair_sd: Option<f64>,
    pub(crate) assumed_error_rate: Option<f64>,
    pub(crate) assumed_disturbed_share: Option<f64>,
    pub(crate) min_detectable_improvement_pct: Option<f64>,
    pub(crate) power_at_twice_threshold: Option<f64>,
    pub(crate) notes: Vec<String>,
}

/// Every stored feasibility by experiment name. Files that cannot be read or parsed are left out
/// (the next `smart run` rewrites them): a page without the figure beats no page.
pub(crate) fn read_all(state_dir: &Path) -> BTreeMap<String, Stored> {
    let Ok(entries) = fs::read_dir(state_dir.join(CALIBRATION_DIR)) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(SUFFIX)))
        .filter_map(|e| fs::read(e.path()).ok())
        .filter_map(|bytes| serde_json::from_slice::<Stored>(&bytes).ok())
        .filter(|s| !s.experiment.is_empty())
        .map(|s| (s.experiment.clone(), s))
        .collect()
}
