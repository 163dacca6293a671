//! Integration tests of smart-dashboard: pages rendered from fixed run records (snapshots),
//! escaping of user text everywhere, page weight, the live observer, and a real headless
//! Chromium loading the pages under the deploy site's strict Content-Security-Policy, and the live
//! script's pause while the tab is hidden (under node).

mod browser;
mod engine;
mod escaping;
mod fixtures;
mod layout;
mod live;
mod pages;
mod retention;
mod search;
mod visibility;

use std::path::Path;
use std::time::SystemTime;

/// When the fixture pages say they were rendered: 2026-11-26T21:00:00Z.
pub fn render_time() -> SystemTime {
    fixtures::at(1_795_726_800)
}

/// Renders the dashboard of `state` into `out`.
pub fn render(state: &Path, out: &Path) -> smart_dashboard::Rendered {
    smart_dashboard::Dashboard::new(state, out)
        .render(render_time())
        .expect("the dashboard renders")
}
