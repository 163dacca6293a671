//! What the templates show, computed from the records: every number formatted, every chart drawn,
//! so the templates only place text (which tinytemplate escapes) and our own SVG.
//!
//! One file per page or part of a page: `index.rs` (the index page and its trend chart),
//! `run.rs` (a run's page, its blocks and charts), `live.rs` (the live status box both show),
//! `definition.rs` (the experiment definition as run, redacted), `search.rs` (the searches on the
//! index page); what several of them use is
//! in `parts.rs`.

mod definition;
mod feasibility;
mod index;
mod live;
mod parts;
mod run;
mod search;

pub(crate) use index::index;
pub(crate) use run::{ArmLatencies, run_page, running};
pub(crate) use search::{SearchSection, searches};
