//! The `measure` section: the probe stays the default (every existing file reads and hashes as
//! before), and `target` is required only when the probe measures.

use serde_json::json;
use smart_core::experiment::SourceKind;

use crate::support::{base, check, validate_text, with};

fn command_source() -> serde_json::Value {
    json!({"source": "command", "command": {"argv": ["/usr/local/bin/smart-pgbench", "-S", "bench"]}})
}

#[test]
fn a_file_without_measure_is_measured_by_the_probe_and_hashes_as_before() {
    let e = validate_text(&base().to_string()).unwrap();
    assert_eq!(e.measure().source, SourceKind::Probe);
    let definition = serde_json::to_value(e.definition()).unwrap();
    assert!(definition.get("measure").is_none(), "{definition}");
    // Writing the default out changes nothing, not even the hash.
    let explicit = with(base(), "measure", Some(json!({"source": "probe"})));
    let same = validate_text(&explicit.to_string()).unwrap();
    assert_eq!(same.definition_hash(), e.definition_hash());
}

#[test]
fn a_command_source_needs_no_target() {
    let input = with(
        with(base(), "target", None),
        "measure",
        Some(command_source()),
    );
    let e = validate_text(&input.to_string()).unwrap();
    assert_eq!(e.measure().source, SourceKind::Command);
    assert!(e.target().urls.is_empty());
    assert_eq!(
        e.measure().command.as_ref().unwrap().argv[0],
        "/usr/local/bin/smart-pgbench"
    );
    // A target without urls is fine too; its other keys are still checked.
    let input = with(input, "target", Some(json!({"rate_per_s": -1})));
    check(
        &input.to_string(),
        &["target.rate_per_s: expected a number greater than 0"],
    );
}

#[test]
fn the_probe_still_needs_its_urls() {
    check(
        &with(base(), "target", None).to_string(),
        &["target: missing"],
    );
    check(
        &with(base(), "target.urls", None).to_string(),
        &["target.urls: missing"],
    );
    let probe = with(
        with(base(), "target", None),
        "measure",
        Some(json!({"source": "probe"})),
    );
    check(&probe.to_string(), &["target: missing"]);
}

#[test]
fn measure_mistakes_are_reported_with_the_rest() {
    let input = with(
        with(
            base(),
            "measure",
            Some(json!({"source": "command", "comand": {}})),
        ),
        "decision.confidence",
        Some(json!(95)),
    );
    check(
        &input.to_string(),
        &[
            "measure.comand: unknown key; did you mean \"command\"?",
            "measure.command: missing",
            "decision.confidence: expected a number greater than 0 and below 1",
        ],
    );
}

#[test]
fn a_prometheus_block_must_span_four_scrapes() {
    let prometheus = json!({"source": "prometheus", "prometheus": {
        "url": "http://127.0.0.1:9090",
        "latency_quantile": "histogram_quantile($quantile, sum by (le) (rate(h_bucket[$window])))",
        "latency_mean": "sum(rate(h_sum[$window])) / sum(rate(h_count[$window]))",
        "requests": "sum(increase(r_total[$window]))",
        "error_ratio": "sum(increase(e_total[$window])) / sum(increase(r_total[$window]))",
        "scrape_interval_s": 15
    }});
    let input = with(with(base(), "target", None), "measure", Some(prometheus));
    let short = with(
        input.clone(),
        "schedule",
        Some(json!({"block_s": 30, "max_duration_s": 20000})),
    );
    check(
        &short.to_string(),
        &[
            "schedule.block_s: is 30 s, shorter than 4 scrapes of measure.prometheus.scrape_interval_s 15 s",
        ],
    );
    let long = with(
        input,
        "schedule",
        Some(json!({"block_s": 60, "max_duration_s": 20000})),
    );
    check(&long.to_string(), &[]);
}

#[test]
fn an_access_log_fill_in_needs_a_target_its_filter_counts() {
    let log = |extra: serde_json::Value| {
        let mut spec = json!({"path": "/var/log/nginx/access.log", "path_prefix": "/api/",
                              "method": "GET"});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"source": "access_log", "access_log": spec})
    };
    let no_target = with(base(), "target", None);
    // Without the fill-in, no target is needed.
    check(
        &with(no_target.clone(), "measure", Some(log(json!({})))).to_string(),
        &[],
    );
    check(
        &with(no_target, "measure", Some(log(json!({"fill_rps": 5})))).to_string(),
        &[
            "measure.access_log.fill_rps: sends the fill-in's requests to target.urls, which is not given",
        ],
    );
    let filled = with(base(), "measure", Some(log(json!({"fill_rps": 5}))));
    check(
        &with(
            filled.clone(),
            "target",
            Some(json!({"urls": ["http://127.0.0.1:8080/api/items?id=1"]})),
        )
        .to_string(),
        &[],
    );
    check(
        &with(
            filled.clone(),
            "target",
            Some(json!({"urls": ["http://127.0.0.1:8080/api/x", "http://127.0.0.1:8080"]})),
        )
        .to_string(),
        &["target.urls[1]: its path / does not start with measure.access_log.path_prefix /api/"],
    );
    check(
        &with(
            filled.clone(),
            "target",
            Some(json!({"urls": ["http://127.0.0.1/api/"], "method": "HEAD"})),
        )
        .to_string(),
        &["measure.access_log.method: is GET, but the fill-in sends target.method HEAD"],
    );
    for bad in [json!(0), json!(101), json!("5")] {
        let input = with(
            with(
                base(),
                "target",
                Some(json!({"urls": ["http://127.0.0.1/api/"]})),
            ),
            "measure",
            Some(log(json!({"fill_rps": bad}))),
        );
        check(
            &input.to_string(),
            &["measure.access_log.fill_rps: expected a number"],
        );
    }
}
