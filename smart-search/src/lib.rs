//! The search strategy of `smart`: which configuration to judge next when each judgement costs
//! minutes of live traffic and every measurement is noisy. Pure (no I/O, no clock): the same
//! seed and verdicts give the same candidates, so the simulator and a run follow one procedure.
//!
//! A [`Space`] holds each param's values and the constraints between params; a [`Search`] walks it
//! as a judged pattern search — every step must be kept by smart's sequential judge against the
//! incumbent, the family's alpha is shared evenly over the budget, and a final confirmation proves
//! the result against the configuration as found (see `docs/search.md`). Its state is one serde
//! value the run stores in the state dir, so a search resumes where it stood after a crash.
//! [`catalog`] lists the nginx and kernel knobs a search may tune, with safe ranges and reasons.
//!
//! ```
//! use std::collections::BTreeMap;
//! use smart_core::engine::Verdict;
//! use smart_core::experiment::{Decision, Domain, IntRange, Scale, SearchSpec};
//! use smart_search::{Judged, Next, Search, Settings, Space};
//!
//! let mut params = BTreeMap::new();
//! params.insert(
//!     "level".to_string(),
//!     Domain::Range(IntRange { min: 1, max: 9, step: None, scale: Scale::Linear }),
//! );
//! let spec = SearchSpec::new(params);
//! let space = Space::new(&spec)?;
//! let settings = Settings::of(&spec, &Decision::default(), 600.0);
//! let mut search = Search::new(&space, space.middle(), None, settings)?;
//! // A judge that keeps nothing: the search ends at the configuration as found.
//! while let Next::Test(candidate) = search.next(&space) {
//!     let judged = Judged { verdict: Verdict::Revert, guardrail: false, seconds: 500.0, change_pct: None };
//!     search.record(&space, candidate.id, judged)?;
//! }
//! assert!(matches!(search.next(&space), Next::Done(f) if f.kept.is_none()));
//! # Ok::<(), smart_search::SearchError>(())
//! ```

pub mod catalog;
mod drive;
mod error;
mod space;
mod strategy;
mod view;

pub use drive::{PatternSearch, candidate_experiment, judged, live_point};
pub use error::SearchError;
pub use space::{Dim, Point, Space};
pub use strategy::{
    Against, Candidate, ChangePct, End, Finish, Judged, Next, Role, Search, Settings, Trial,
};
pub use view::{CandidateView, Curve, Move, ParamView, SearchView, search_schema};
