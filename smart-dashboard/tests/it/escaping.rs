//! User text (experiment name, description, variant name, param value) holding markup, quotes and
//! `&` renders as text everywhere: in element content, in attributes, and inside the SVG charts.

use std::fs;

use smart_core::records::DecisionKind;

use crate::fixtures::{self, RunSpec, VariantSpec};
use crate::render;

const HOSTILE: &str = r#"<script>alert("x&'y")</script>"#;
const ESCAPED: &str = "&lt;script&gt;alert(&quot;x&amp;&#39;y&quot;)&lt;/script&gt;";

#[test]
fn hostile_text_is_text_everywhere() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let spec = RunSpec {
        experiment: format!("exp-{HOSTILE}"),
        description: format!("desc {HOSTILE}"),
        start: fixtures::EPOCH,
        seed: 7,
        base_p50_us: 4000,
        variants: vec![VariantSpec {
            name: format!("var-{HOSTILE}"),
            params: vec![("level".to_owned(), format!("val-{HOSTILE}"))],
            p50_us: 3000,
            error_pct: 0.1,
            decision: DecisionKind::Keep,
            coach: Some(format!("coach {HOSTILE}")),
        }],
        cycles: 1,
        samples_per_block: 50,
        finished: true,
        audit: true,
    };
    fixtures::write_run(state.path(), &spec);
    let mut status = fixtures::running_status(&spec, 1, 2900);
    status
        .decisions
        .push((format!("var-{HOSTILE}"), DecisionKind::Keep));
    // A status naming a run id no engine would make lands in attributes (data-run-id, href).
    status.run_id = format!("run-{HOSTILE}");
    fixtures::write_status(state.path(), &status);
    render(state.path(), out.path());

    let index = fs::read_to_string(out.path().join("index.html")).unwrap();
    let page =
        fs::read_to_string(out.path().join("runs").join(format!("{}.html", spec.id()))).unwrap();
    for (name, html) in [("index", &index), ("run page", &page)] {
        assert!(!html.contains(HOSTILE), "{name} holds the raw text");
        assert!(
            !html.contains("alert(\""),
            "{name} holds a raw quote from the text"
        );
        let own_scripts = html.matches("<script src=\"").count();
        assert_eq!(
            html.matches("<script").count(),
            own_scripts,
            "{name}: a script tag that is not ours"
        );
    }
    // Each field shows up escaped where it belongs.
    for (field, html) in [
        ("exp-", &index),
        ("var-", &index),
        ("exp-", &page),
        ("desc ", &page),
        ("var-", &page),
        ("val-", &page),
        ("coach ", &page),
    ] {
        assert!(
            html.contains(&format!("{field}{ESCAPED}")),
            "{field} is not shown escaped"
        );
    }
    // Inside the SVG charts: the legend and the tooltips name the variant.
    let svgs: Vec<&str> = page
        .split("<svg")
        .skip(1)
        .map(|s| s.split("</svg>").next().unwrap())
        .collect();
    assert_eq!(svgs.len(), 3, "three charts on the run page");
    for svg in &svgs {
        assert!(
            svg.contains(&format!("var-{ESCAPED}")),
            "a chart lacks the escaped variant name"
        );
    }
    // Inside attributes: escaped, and every attribute value stays closed.
    assert!(index.contains(&format!("data-run-id=\"run-{ESCAPED}\"")));
    assert!(index.contains(&format!("href=\"runs/run-{ESCAPED}.html\"")));
    assert!(page.contains(&format!("<title>exp-{ESCAPED}")));
    for html in [&index, &page] {
        for tag in html.split('<').skip(1) {
            let tag = tag.split('>').next().unwrap();
            assert_eq!(
                tag.matches('"').count() % 2,
                0,
                "an attribute quote is unbalanced in <{tag}>"
            );
        }
    }
}

#[test]
fn tinytemplate_escapes_quotes_for_attributes() {
    let mut out = String::new();
    tinytemplate::escape(r#"<a href="x" title='y'>&"#, &mut out);
    assert_eq!(out, "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;");
}
