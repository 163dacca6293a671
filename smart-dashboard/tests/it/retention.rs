//! Retention and the dashboard: the pages of pruned runs disappear, the index links no page that
//! is gone, and a render reads only the runs retention left.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use smart_core::audit::AuditLog;
use smart_core::records::{self, Definitions, Retention};
use smart_dashboard::Dashboard;

use crate::{fixtures, render, render_time};

fn pages(out: &Path) -> BTreeSet<String> {
    fs::read_dir(out.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Every link of `index.html` to a run page names a page that exists; returns how many.
fn assert_links_resolve(out: &Path) -> usize {
    let index = fs::read_to_string(out.join("index.html")).unwrap();
    let mut checked = 0;
    for href in index
        .split("href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .filter(|href| href.starts_with("runs/"))
    {
        assert!(out.join(href).is_file(), "{href} is not a file");
        checked += 1;
    }
    checked
}

#[test]
fn pruned_runs_lose_their_pages_and_the_index_links_only_pages_that_exist() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let specs = fixtures::history(state.path(), 20, 20);
    assert_eq!(render(state.path(), out.path()).run_pages, 20);
    assert_eq!(pages(out.path()).len(), 20);
    // Someone else's file in the pages dir (a concurrent render's temp file) is left alone.
    let foreign = out.path().join("runs/.index.html.1.1.tmp");
    fs::write(&foreign, "x").unwrap();

    let plan = records::prune(
        state.path(),
        &Retention::new(3650, 5),
        // No experiment file: only each experiment's latest decision is kept.
        &Definitions::Current(BTreeSet::new()),
        render_time(),
        &AuditLog::new(state.path()),
    )
    .unwrap();
    assert!(plan.runs().len() >= 5, "{plan:?}");
    let rendered = Dashboard::new(state.path(), out.path())
        .render_index(render_time())
        .unwrap();
    assert_eq!(rendered.run_pages, 0, "no run page is re-rendered");
    assert_eq!(rendered.runs, 20 - plan.runs().len());

    let left: BTreeSet<String> = records::list_runs(state.path())
        .unwrap()
        .into_iter()
        .map(|r| format!("{}.html", r.plan.run_id))
        .collect();
    let mut expected = left.clone();
    expected.insert(".index.html.1.1.tmp".to_owned());
    assert_eq!(pages(out.path()), expected);
    let index = fs::read_to_string(out.path().join("index.html")).unwrap();
    for id in plan.runs() {
        assert!(
            !index.contains(&id),
            "the index still names pruned run {id}"
        );
    }
    for spec in &specs {
        let id = spec.id();
        assert_eq!(
            out.path().join(format!("runs/{id}.html")).is_file(),
            !plan.runs().contains(&id),
            "{id}"
        );
    }
    assert!(assert_links_resolve(out.path()) >= left.len());

    // A full render (`smart dashboard`) after a prune by another process sweeps the same way.
    fs::write(
        out.path().join("runs/20260101T000000Z-gone-0000.html"),
        "old",
    )
    .unwrap();
    let rendered = render(state.path(), out.path());
    assert_eq!(rendered.run_pages, left.len());
    assert_eq!(pages(out.path()), expected);
    assert_links_resolve(out.path());
}
