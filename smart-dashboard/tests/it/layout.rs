//! The layout test: real headless Chromium loads the index and a run page rendered from
//! realistic fixtures (long "Why" texts, long experiment and variant names, paths as parameter
//! values) at a desktop width (1280 px) and a phone width (390 px). Neither the page nor any
//! table container may scroll sideways, and no table cell may clip its text (each cell's
//! `scrollWidth` ≤ its `clientWidth`).
//!
//! Headless Chromium will not make a window narrower than 500 px, so each page is loaded in an
//! `<iframe>` of the width under test (its viewport, and so its media queries, are that wide).
//! The page is measured by a script served from the same origin (the site's CSP allows only
//! such scripts), appended to a copy of the rendered page; it writes its findings into the
//! framing page's DOM, which `--dump-dom` prints. The site sends the deploy site's CSP, except
//! that same-origin framing is allowed. Set `SMART_DASHBOARD_SCREENSHOT=DIR` to also save a
//! screenshot of each page at each width there.

use std::collections::BTreeMap;

use crate::browser::{CSP, Site, chromium, problems};
use crate::{fixtures, render};

/// Measures the page once it has loaded and appends `<pre id="layout">` with a JSON object:
/// the viewport width and a list of what overflows.
const CHECK: &str = r#"'use strict';
window.addEventListener('load', () => {
  const bad = [];
  const name = (el) => el.tagName.toLowerCase() + (el.className ? '.' + el.className : '');
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) {
    bad.push('the page scrolls sideways: ' + root.scrollWidth + ' > ' + root.clientWidth + ' px');
    // Name the innermost elements that stick out, to say where to look.
    const wide = (el) => el.getBoundingClientRect().right > root.clientWidth + 0.5 || el.scrollWidth > el.clientWidth + 0.5;
    const out = [...document.body.querySelectorAll('*')].filter((el) =>
      wide(el) && ![...el.children].some(wide));
    for (const el of out.slice(0, 5)) {
      bad.push('  sticking out: ' + name(el) + ' "' + el.textContent.trim().slice(0, 50) + '"');
    }
  }
  for (const el of document.querySelectorAll('.scroll, table')) {
    if (el.scrollWidth > el.clientWidth) {
      const table = el.querySelector('table') || el;
      bad.push('table container ' + name(el) + ' of ' + name(table) + ' scrolls: ' + el.scrollWidth + ' > ' + el.clientWidth + ' px');
    }
  }
  for (const cell of document.querySelectorAll('td, th')) {
    if (cell.scrollWidth > cell.clientWidth) {
      bad.push('cell "' + cell.textContent.trim().slice(0, 50) + '" clips: ' + cell.scrollWidth + ' > ' + cell.clientWidth + ' px');
    }
  }
  const out = document.createElement('pre');
  out.id = 'layout';
  out.textContent = JSON.stringify({ width: window.innerWidth, cells: document.querySelectorAll('td').length, bad });
  window.parent.document.body.appendChild(out);
});
"#;

/// What the check script found on one page at one width.
#[derive(Debug, serde::Deserialize)]
struct Found {
    width: u32,
    cells: usize,
    bad: Vec<String>,
}

/// A desktop and a phone.
const WIDTHS: [u32; 2] = [1280, 390];

#[test]
fn tables_reflow_at_desktop_and_phone_widths() {
    if !smart_testkit::require_tool(
        "chromium",
        "layout::tables_reflow_at_desktop_and_phone_widths",
    ) {
        return;
    }
    let browser = smart_testkit::find_in_path("chromium").unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let specs = fixtures::long_texts(state.path());
    render(state.path(), out.path());

    let with_check = |page: &str| {
        let html = std::fs::read_to_string(out.path().join(page)).unwrap();
        assert!(html.contains("</body>"), "{page} has no </body>");
        html.replace(
            "</body>",
            "<script src=\"/layout-check.js\"></script></body>",
        )
    };
    let long_run = format!("runs/{}.html", specs[3].id());
    let pages = [
        (
            "index",
            "layout-index.html".to_owned(),
            with_check("index.html"),
        ),
        (
            "long run page",
            "runs/layout-long.html".to_owned(),
            with_check(&long_run),
        ),
        (
            "gzip run page",
            "runs/layout-gzip.html".to_owned(),
            with_check(&format!("runs/{}.html", specs[0].id())),
        ),
    ];
    let mut extra = BTreeMap::from([("layout-check.js".to_owned(), CHECK.to_owned())]);
    for (_, path, html) in &pages {
        extra.insert(path.clone(), html.clone());
    }
    let status = std::fs::read(state.path().join("status.json")).unwrap();
    for width in WIDTHS {
        for (i, (_, path, _)) in pages.iter().enumerate() {
            extra.insert(
                format!("frame-{width}-{i}.html"),
                format!("<!DOCTYPE html><html><head><title>frame</title></head><body><iframe src=\"/{path}\" width=\"{width}\" height=\"2600\"></iframe></body></html>"),
            );
        }
    }
    let csp: &'static str = CSP
        .replace("frame-ancestors 'none'", "frame-ancestors 'self'")
        .leak();
    let site = Site::serve_with(out.path(), status, extra, csp);

    let mut failures = Vec::new();
    for width in WIDTHS {
        for (i, (what, _, _)) in pages.iter().enumerate() {
            let frame = site.url(&format!("frame-{width}-{i}.html"));
            let (dom, log) = chromium(&browser, &frame, &["--dump-dom", "--window-size=1400,1000"]);
            let json = dom
                .split("<pre id=\"layout\">")
                .nth(1)
                .and_then(|s| s.split("</pre>").next())
                .unwrap_or_else(|| panic!("the check did not run on the {what}:\n{log}"));
            let json = json
                .replace("&quot;", "\"")
                .replace("&gt;", ">")
                .replace("&lt;", "<")
                .replace("&amp;", "&");
            let found: Found = serde_json::from_str(&json).unwrap();
            assert_eq!(found.width, width, "the viewport is not {width} px wide");
            assert!(found.cells > 10, "the {what} has almost no table cells");
            assert!(
                problems(&log).is_empty(),
                "console errors on the {what}:\n{}",
                problems(&log).join("\n")
            );
            failures.extend(
                found
                    .bad
                    .iter()
                    .map(|b| format!("{what} at {width} px: {b}")),
            );
            if let Some(dir) = std::env::var_os("SMART_DASHBOARD_SCREENSHOT") {
                let shot = std::path::Path::new(&dir).join(format!("layout-{width}-{i}.png"));
                let shot = format!("--screenshot={}", shot.display());
                chromium(&browser, &frame, &[&shot, "--window-size=1400,2700"]);
            }
        }
    }
    // Opened from disk, as the README suggests after the demo: the live box explains calmly
    // (muted, "offline"), not an orange "could not be read".
    let index = format!("file://{}", out.path().join("index.html").display());
    let (dom, _) = chromium(&browser, &index, &["--dump-dom"]);
    assert!(
        dom.contains("class=\"card live offline\""),
        "the live box is not marked offline from file://:\n{dom}"
    );
    assert!(dom.contains("Opened as a file"), "no explanation:\n{dom}");
    assert!(
        !dom.contains("could not be read"),
        "an alarm from file://:\n{dom}"
    );

    assert!(
        failures.is_empty(),
        "layout problems:\n{}",
        failures.join("\n")
    );
}
