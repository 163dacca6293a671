//! The pages rendered from fixed run records: snapshots (charts summarized, so a snapshot reads
//! as a page), links, the empty state, redaction, and the index's weight with 100 runs.

use std::fs;

use crate::{fixtures, render};

/// The page with each inline `<svg>…</svg>` replaced by a one-line summary (its id, title and
/// how many marks, bars and curves it draws): the coordinates are checked by the unit tests and
/// by the browser test, the snapshot shows the page.
fn summarized(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("</svg>").expect("svg closes") + start + "</svg>".len();
        let svg = &rest[start..end];
        let id = svg
            .split("id=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("");
        let title = svg
            .split("-t\">")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .unwrap_or("");
        let legend = svg.matches("<text x=").count();
        out.push_str(&format!(
            "[svg #{id} \"{title}\": {} legend entries, {} marks, {} bars, {} curves]",
            legend,
            svg.matches("class=\"mark").count(),
            svg.matches("class=\"bar").count(),
            svg.matches("<polyline class=\"line").count(),
        ));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn index_snapshot() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    fixtures::standard(state.path());
    let rendered = render(state.path(), out.path());
    assert_eq!((rendered.runs, rendered.run_pages), (3, 3));
    let html = fs::read_to_string(out.path().join("index.html")).unwrap();
    insta::assert_snapshot!("index", summarized(&html));
}

#[test]
fn run_page_snapshots() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let specs = fixtures::standard(state.path());
    render(state.path(), out.path());
    for (name, spec) in [
        ("run_kept_and_reverted", &specs[0]),
        ("run_with_coach", &specs[1]),
        ("run_under_way", &specs[2]),
    ] {
        let html = fs::read_to_string(out.path().join("runs").join(format!("{}.html", spec.id())))
            .unwrap();
        insta::assert_snapshot!(name, summarized(&html));
    }
}

#[test]
fn every_link_resolves_and_status_is_published_as_written() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    fixtures::standard(state.path());
    render(state.path(), out.path());
    let index = fs::read_to_string(out.path().join("index.html")).unwrap();
    let mut checked = 0;
    for href in index
        .split("href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
    {
        if href.is_empty() {
            continue; // the "reload" link
        }
        assert!(out.path().join(href).is_file(), "{href} is not a file");
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} links");
    for name in ["dashboard.css", "dashboard.js"] {
        assert!(out.path().join(name).is_file(), "{name}");
    }
    assert_eq!(
        fs::read(out.path().join("status.json")).unwrap(),
        fs::read(state.path().join("status.json")).unwrap()
    );
    // No temp file is left behind.
    for entry in fs::read_dir(out.path()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(!name.ends_with(".tmp"), "{name}");
    }
}

#[test]
fn secret_headers_never_reach_a_page() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let specs = fixtures::standard(state.path());
    render(state.path(), out.path());
    let page = fs::read_to_string(
        out.path()
            .join("runs")
            .join(format!("{}.html", specs[0].id())),
    )
    .unwrap();
    assert!(page.contains("Accept-Encoding"), "the definition is shown");
    assert!(
        !page.contains("do-not-show"),
        "the Authorization value is redacted"
    );
    assert!(page.contains("&lt;redacted&gt;"));
}

#[test]
fn an_empty_state_dir_renders_a_page_that_says_so_and_does_not_poll() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let rendered = render(&state.path().join("not-yet"), out.path());
    assert_eq!(rendered.runs, 0);
    let html = fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(html.contains("No experiment has run yet"));
    assert!(html.contains("No decision yet."));
    assert!(
        !html.contains("data-status-url"),
        "nothing to poll: no 404s in the console"
    );
    assert!(!out.path().join("status.json").exists());
}

#[test]
fn a_broken_record_is_an_error_naming_the_file() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let specs = fixtures::standard(state.path());
    let run_json = state
        .path()
        .join("runs")
        .join(specs[0].id())
        .join("run.json");
    fs::write(&run_json, "{ not json").unwrap();
    let err = smart_dashboard::Dashboard::new(state.path(), out.path())
        .render(crate::render_time())
        .unwrap_err();
    assert_eq!(err.path(), run_json);
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(chain.contains("run.json"), "{chain}");
}

#[test]
fn the_index_stays_under_200_kb_with_100_runs_of_history() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    fixtures::history(state.path(), 100, 20);
    let rendered = render(state.path(), out.path());
    assert_eq!(rendered.runs, 100);
    let size = fs::metadata(out.path().join("index.html")).unwrap().len();
    assert_eq!(size as usize, rendered.index_bytes);
    assert!(
        size < 200 * 1024,
        "index.html is {size} bytes with 100 runs"
    );
    let html = fs::read_to_string(out.path().join("index.html")).unwrap();
    assert_eq!(
        html.matches("<tr>").count(),
        200 + 1,
        "a row per decision, and the header"
    );
}

#[test]
fn writing_into_a_writer_gives_the_same_page() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let specs = fixtures::standard(state.path());
    render(state.path(), out.path());
    let dashboard = smart_dashboard::Dashboard::new(state.path(), out.path());
    let mut index = Vec::new();
    dashboard
        .write_index(&mut index, crate::render_time())
        .unwrap();
    assert_eq!(index, fs::read(out.path().join("index.html")).unwrap());
    let mut page = Vec::new();
    dashboard
        .write_run_page(&specs[1].id(), &mut page, crate::render_time())
        .unwrap();
    assert_eq!(
        page,
        fs::read(
            out.path()
                .join("runs")
                .join(format!("{}.html", specs[1].id()))
        )
        .unwrap()
    );
    let err = dashboard
        .write_run_page("no-such-run", &mut Vec::new(), crate::render_time())
        .unwrap_err();
    assert!(err.to_string().contains("no-such-run"), "{err}");
}

#[test]
fn renders_at_the_same_time_do_not_trip_over_each_other() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    fixtures::standard(state.path());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..5 {
                    render(state.path(), out.path());
                }
            });
        }
    });
    let index = fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(index.trim_end().ends_with("</html>"));
    for dir in [out.path().to_owned(), out.path().join("runs")] {
        for entry in fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(!name.ends_with(".tmp"), "{name} left behind");
        }
    }
}

#[test]
fn a_live_render_also_writes_the_pages_that_are_missing() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let specs = fixtures::standard(state.path());
    let dashboard = smart_dashboard::Dashboard::new(state.path(), out.path());
    let rendered = dashboard
        .render_run(&specs[2].id(), crate::render_time())
        .unwrap();
    assert_eq!(
        rendered.run_pages, 3,
        "the running run's page and the two missing ones"
    );
    let page =
        |spec: &fixtures::RunSpec| out.path().join("runs").join(format!("{}.html", spec.id()));
    fs::write(page(&specs[0]), "kept as it is").unwrap();
    let rendered = dashboard
        .render_run(&specs[2].id(), crate::render_time())
        .unwrap();
    assert_eq!(rendered.run_pages, 1, "only the running run's page");
    assert_eq!(
        fs::read_to_string(page(&specs[0])).unwrap(),
        "kept as it is"
    );
}

#[test]
fn each_decision_says_what_changed_and_what_it_did_and_the_run_end_reads_as_a_sentence() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let specs = fixtures::standard(state.path());
    render(state.path(), out.path());
    let index = fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(
        index.contains("<p class=\"what\">Set level = 4 (baseline level = off) in /etc/nginx/smart.d/exp.conf: p50 \u{2212}11.9 %, errors 0.00 pp; kept, it is live now.</p>"),
        "no sentence for the kept gzip level:\n{index}"
    );
    assert!(index.contains("Set level = 9 (baseline level = off) in /etc/nginx/smart.d/exp.conf: p50 +21.4 %, errors +0.05 pp; reverted, the original configuration is back."));
    let run = fs::read_to_string(out.path().join(format!("runs/{}.html", specs[0].id()))).unwrap();
    assert!(run.contains("<dd>the run completed</dd>"), "{run}");
    assert!(!run.contains("ended completed"));
}

#[test]
fn kept_markers_are_drawn_over_the_baselines_of_later_runs() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    fixtures::standard(state.path());
    render(state.path(), out.path());
    let index = fs::read_to_string(out.path().join("index.html")).unwrap();
    let trend = index.split("id=\"trend\"").nth(1).unwrap();
    let trend = &trend[..trend.find("</svg>").unwrap()];
    let trend = trend
        .split("<g class=\"data\">")
        .nth(1)
        .expect("a data group");
    let last_baseline = trend.rfind("class=\"mark s0").expect("baseline markers");
    let first_kept = trend.find("class=\"mark s1").expect("a kept marker");
    assert!(
        first_kept > last_baseline,
        "a kept square is drawn before a baseline circle that can cover it"
    );
}

#[test]
fn with_one_run_the_index_charts_its_blocks_not_a_dot_on_a_time_axis() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let specs = fixtures::standard(tempfile::tempdir().unwrap().path());
    fixtures::write_run(state.path(), &specs[0]);
    render(state.path(), out.path());
    let index = fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(
        index.contains("Only one run so far (nginx-gzip-level)"),
        "{index}"
    );
    let summary = summarized(&index);
    // Two variants, 2 ABBA cycles each: 16 blocks, one marker each (and 3 in the legend), as on
    // the run's page.
    assert!(
        summary.contains(
            "[svg #trend \"Median latency per block, in time order\": 3 legend entries, 19 marks"
        ),
        "{summary}"
    );
}

#[test]
fn a_run_page_shows_what_the_schedule_can_detect_and_from_which_noise() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let specs = fixtures::standard(state.path());
    // As `smart run` stores it: the first experiment from noise `smart calibrate` measured, the
    // second from the typical figure, with a schedule that cannot keep.
    let dir = state.path().join("calibration");
    fs::create_dir_all(&dir).unwrap();
    let stored = |name: &str, source: &str, reachable: bool| {
        serde_json::json!({
            "experiment": name,
            "computed": "2026-11-26T20:00:00Z",
            "noise_source": source,
            "calibrated": (source == "measured").then_some("2026-11-25T10:30:00Z"),
            "min_improvement_pct": 10.0,
            "feasibility": {
                "reachable": reachable, "cycles": 14, "pairs": 28, "alpha_per_variant": 0.05,
                "first_keep_cycle": 8, "assumed_pair_sd": 0.123, "assumed_error_rate": 0.004,
                "assumed_disturbed_share": 0.25,
                "min_detectable_improvement_pct": reachable.then_some(17.5),
                "power_at_twice_threshold": reachable.then_some(0.92),
                "notes": ["with block-pair noise 0.123 (log scale) and 0.4 % errors, …"]
            }
        })
        .to_string()
    };
    fs::write(
        dir.join(format!("{}.feasibility.json", specs[0].experiment)),
        stored(&specs[0].experiment, "measured", true),
    )
    .unwrap();
    fs::write(
        dir.join(format!("{}.feasibility.json", specs[1].experiment)),
        stored(&specs[1].experiment, "typical", false),
    )
    .unwrap();
    // A file that does not parse is left out, not an error.
    fs::write(dir.join("broken.feasibility.json"), "{").unwrap();
    render(state.path(), out.path());
    let page = |spec: &fixtures::RunSpec| {
        fs::read_to_string(out.path().join("runs").join(format!("{}.html", spec.id()))).unwrap()
    };
    let measured = page(&specs[0]);
    assert!(
        measured.contains("What this schedule can detect"),
        "{measured}"
    );
    assert!(
        measured.contains(
            "the smallest win kept in 80 % of runs is 17.5 %; a 20 % win is kept in 92 % of runs"
        ),
        "{measured}"
    );
    assert!(
        measured.contains("measured by `smart calibrate` at 2026-11-25 10:30:00 UTC"),
        "{measured}"
    );
    assert!(
        measured.contains("0.123 (sd of the log ratio"),
        "{measured}"
    );
    assert!(measured.contains("<dd>25 %</dd>"), "{measured}");
    let typical = page(&specs[1]);
    assert!(
        typical.contains("this schedule cannot keep any variant"),
        "{typical}"
    );
    assert!(
        typical.contains("From a typical noise figure, not this server"),
        "{typical}"
    );
    assert!(typical.contains("class=\"warn\""), "{typical}");
    // An experiment with nothing stored has no such section.
    assert!(!page(&specs[2]).contains("What this schedule can detect"));
}
