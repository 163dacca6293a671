//! Renders the static `smart` dashboard (HTML, CSS, JS and inline SVG charts) from run records.
//!
//! [`Dashboard::render`] reads the state dir through `smart_core::records` (runs, blocks,
//! samples, decisions, `status.json`) and the audit log, and writes into the dashboard dir:
//!
//! ```text
//! index.html            live status, the live config's p50 across runs, every decision
//! runs/<run-id>.html    one run: definition as run, decisions, coach, charts, blocks, audit lines
//!                       (only of runs still in the records: retention prunes the others' pages)
//! status.json           a copy of the state dir's, which dashboard.js fetches every few seconds
//! dashboard.css         the only stylesheet (no inline styles: the site's CSP forbids them)
//! dashboard.js          the live refresh (no inline script)
//! ```
//!
//! Every file is replaced atomically (temp file + rename), so a web server never serves half a
//! page. Templates are tinytemplate's, whose default formatter escapes `< > & " '`, so record
//! text is text in element content and quoted attributes alike; the SVG charts are drawn by this
//! crate and escape their text the same way. Nothing is fetched from elsewhere: the dashboard
//! works on a server without internet.
//!
//! [`LiveDashboard`] is an engine observer that keeps the dashboard current during a run.
//!
//! ```no_run
//! use std::time::SystemTime;
//! use smart_dashboard::Dashboard;
//!
//! let dashboard = Dashboard::new("/var/lib/smart".as_ref(), "/var/lib/smart/dashboard".as_ref());
//! let rendered = dashboard.render(SystemTime::now())?;
//! println!("{} runs rendered", rendered.runs);
//! # Ok::<(), smart_dashboard::DashboardError>(())
//! ```

mod audit_rows;
mod error;
mod explain;
mod feasibility;
mod format;
mod load;
mod observer;
mod svg;
mod view;
mod write;

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;
use smart_core::records;
use tinytemplate::TinyTemplate;

pub use error::DashboardError;
pub use observer::LiveDashboard;

/// The stylesheet, as written to `dashboard.css`.
pub const CSS: &str = include_str!("../assets/dashboard.css");
/// The live-refresh script, as written to `dashboard.js`.
pub const JS: &str = include_str!("../assets/dashboard.js");
/// The directory of run pages inside the dashboard dir.
pub const RUN_PAGES_DIR: &str = "runs";

/// The templates by name, as compiled in.
const TEMPLATES: &[(&str, &str)] = &[
    ("head", include_str!("../templates/head.html")),
    ("foot", include_str!("../templates/foot.html")),
    ("live", include_str!("../templates/live.html")),
    ("decisions", include_str!("../templates/decisions.html")),
    ("index", include_str!("../templates/index.html")),
    ("run", include_str!("../templates/run.html")),
];

/// Renders the dashboard of one state dir into one dashboard dir.
pub struct Dashboard {
    state_dir: PathBuf,
    out_dir: PathBuf,
    templates: TinyTemplate<'static>,
}

impl fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dashboard")
            .field("state_dir", &self.state_dir)
            .field("out_dir", &self.out_dir)
            .finish_non_exhaustive()
    }
}

/// What a render wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendered {
    /// Runs found in the state dir.
    pub runs: usize,
    /// Run pages written.
    pub run_pages: usize,
    /// Bytes of `index.html`.
    pub index_bytes: usize,
    /// Bytes written in all.
    pub total_bytes: usize,
}

impl Dashboard {
    /// A dashboard of the records under `state_dir`, written into `out_dir` (created on the first
    /// render).
    pub fn new(state_dir: &Path, out_dir: &Path) -> Dashboard {
        let mut templates = TinyTemplate::new();
        for (name, text) in TEMPLATES {
            templates
                .add_template(name, text)
                .expect("the compiled-in templates parse (the crate's tests render them all)");
        }
        templates.add_formatter("unescaped", tinytemplate::format_unescaped);
        Dashboard {
            state_dir: state_dir.to_owned(),
            out_dir: out_dir.to_owned(),
            templates,
        }
    }

    /// The dashboard dir.
    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// Renders everything: the assets, `status.json`, every run's page, and the index. `now` is
    /// the time the pages say they were rendered.
    pub fn render(&self, now: SystemTime) -> Result<Rendered, DashboardError> {
        let state = load::state(&self.state_dir)?;
        let ids: Vec<String> = state.runs.iter().map(|r| r.id().to_owned()).collect();
        self.render_state(&state, &ids, now)
    }

    /// Renders what changes during run `run_id`: its page, the index, `status.json` and the
    /// assets, plus the page of any other run that has none yet (so every link of the index
    /// works); other run pages are left as they are. This is what [`LiveDashboard`] calls after
    /// each block and decision.
    pub fn render_run(&self, run_id: &str, now: SystemTime) -> Result<Rendered, DashboardError> {
        let state = load::state(&self.state_dir)?;
        let runs_dir = self.out_dir.join(RUN_PAGES_DIR);
        let mut ids = vec![run_id.to_owned()];
        ids.extend(
            state
                .runs
                .iter()
                .map(|r| r.id())
                .filter(|id| *id != run_id && !runs_dir.join(format!("{id}.html")).is_file())
                .map(str::to_owned),
        );
        self.render_state(&state, &ids, now)
    }

    /// Renders the index, `status.json` and the assets, and deletes the pages of runs that are no
    /// longer in the records: what `smart run` calls after retention pruned runs, so the index
    /// links no page that is gone and no page outlives its run. Run pages are not re-rendered.
    pub fn render_index(&self, now: SystemTime) -> Result<Rendered, DashboardError> {
        let state = load::state(&self.state_dir)?;
        self.render_state(&state, &[], now)
    }

    /// Copies the state dir's `status.json` into the dashboard dir (atomically), if there is
    /// one: cheap enough to call every couple of seconds during a run.
    pub fn publish_status(&self) -> Result<(), DashboardError> {
        if let Some((_, bytes)) = load::read_status(&self.state_dir)? {
            write::atomic(&self.out_dir.join(records::STATUS_FILE), &bytes)?;
        }
        Ok(())
    }

    /// Writes the index page for the records as they are now into `out`.
    pub fn write_index(&self, out: &mut impl Write, now: SystemTime) -> Result<(), DashboardError> {
        let state = load::state(&self.state_dir)?;
        let page = self.index_page(&state, &generated(now))?;
        out.write_all(page.as_bytes())
            .map_err(|e| DashboardError::io("writing the index to", Path::new("<output>"), e))
    }

    /// Writes run `run_id`'s page into `out`.
    pub fn write_run_page(
        &self,
        run_id: &str,
        out: &mut impl Write,
        now: SystemTime,
    ) -> Result<(), DashboardError> {
        let state = load::state(&self.state_dir)?;
        let live = view::running(&state);
        let mut audit = load::audit_of(&self.state_dir, &BTreeSet::from([run_id]), live)?;
        let rows = audit.remove(run_id).unwrap_or_default();
        let page = self.run_page(&state, run_id, rows, &generated(now))?;
        out.write_all(page.as_bytes())
            .map_err(|e| DashboardError::io("writing the run page to", Path::new("<output>"), e))
    }

    fn render_state(
        &self,
        state: &load::State,
        run_ids: &[String],
        now: SystemTime,
    ) -> Result<Rendered, DashboardError> {
        let generated = generated(now);
        let runs_dir = self.out_dir.join(RUN_PAGES_DIR);
        std::fs::create_dir_all(&runs_dir)
            .map_err(|e| DashboardError::io("creating the dashboard dir", &runs_dir, e))?;
        let mut total = 0;
        for (name, text) in [("dashboard.css", CSS), ("dashboard.js", JS)] {
            write::atomic_if_changed(&self.out_dir.join(name), text.as_bytes())?;
            total += text.len();
        }
        if let Some((_, bytes)) = &state.status {
            write::atomic(&self.out_dir.join(records::STATUS_FILE), bytes)?;
            total += bytes.len();
        }
        let pages: BTreeSet<&str> = run_ids
            .iter()
            .map(String::as_str)
            .filter(|id| load::safe_id(id))
            .collect();
        let mut audit = load::audit_of(&self.state_dir, &pages, view::running(state))?;
        let mut run_pages = 0;
        for id in run_ids {
            if !load::safe_id(id) {
                continue;
            }
            let rows = audit.remove(id.as_str()).unwrap_or_default();
            let page = self.run_page(state, id, rows, &generated)?;
            write::atomic(&runs_dir.join(format!("{id}.html")), page.as_bytes())?;
            total += page.len();
            run_pages += 1;
        }
        let index = self.index_page(state, &generated)?;
        write::atomic(&self.out_dir.join("index.html"), index.as_bytes())?;
        total += index.len();
        // After the index, which no longer links them: the pages of pruned runs.
        let runs: BTreeSet<&str> = state.runs.iter().map(load::Run::id).collect();
        write::remove_pages_except(&runs_dir, &runs)?;
        Ok(Rendered {
            runs: state.runs.len(),
            run_pages,
            index_bytes: index.len(),
            total_bytes: total,
        })
    }

    fn index_page(&self, state: &load::State, generated: &str) -> Result<String, DashboardError> {
        let mut index = view::index(state, generated);
        index.searches = view::searches(&self.state_dir);
        self.fill("index", &index)
    }

    fn run_page(
        &self,
        state: &load::State,
        run_id: &str,
        audit: audit_rows::AuditRows,
        generated: &str,
    ) -> Result<String, DashboardError> {
        let run = state
            .runs
            .iter()
            .find(|r| r.id() == run_id)
            .ok_or_else(|| {
                DashboardError::io(
                    "finding the run",
                    &self.state_dir.join(records::RUNS_DIR).join(run_id),
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("there is no run `{run_id}`; list runs with `smart history`"),
                    ),
                )
            })?;
        // Block by block: a long run's samples are never all in memory at once.
        let mut latencies = view::ArmLatencies::new(run);
        records::for_each_samples(&self.state_dir, run_id, |block| latencies.add(&block))
            .map_err(DashboardError::records)?;
        self.fill(
            "run",
            &view::run_page(state, run, audit, latencies, generated),
        )
    }

    fn fill(&self, name: &'static str, view: &impl Serialize) -> Result<String, DashboardError> {
        self.templates
            .render(name, view)
            .map_err(|e| DashboardError::template(name, e))
    }
}

/// The render time as the pages show it.
fn generated(now: SystemTime) -> String {
    format::time_seconds(&smart_core::audit::format_utc(now))
}
