//! The engine's probe port against the in-process server: a block's figures and samples reach
//! the engine, live progress is forwarded, and a guardrail stops a failing block early.

use std::time::Duration;

use smart_core::engine::{BlockRequest, LiveProgress, ProbePort as _};
use smart_core::{Defaults, Experiment, validate};
use smart_probe::EngineProbe;

use crate::server::{Behaviour, TestServer};

fn experiment(url: &str) -> Experiment {
    let json = serde_json::json!({
        "name": "port",
        "target": {"urls": [url], "rate_per_s": 100},
        "apply": {"files": [{"path": "/etc/t.conf", "template": "x {{ x }};\n"}]},
        "variants": [{"name": "v", "params": {"x": 1}}],
        "guardrails": {"abort_error_rate_pct": 50, "abort_window_s": 1}
    });
    validate::validate_text(
        &json.to_string(),
        "port.json".as_ref(),
        &Defaults::default(),
    )
    .unwrap()
}

async fn measure(
    probe: &mut EngineProbe,
    experiment: &Experiment,
    seconds: u64,
) -> (smart_core::engine::BlockMeasurement, Vec<LiveProgress>) {
    let request = BlockRequest {
        arm: "v",
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(seconds),
        guardrails: experiment.guardrails(),
    };
    let mut seen = Vec::new();
    let m = probe
        .measure(&request, &mut |p: &LiveProgress| seen.push(p.clone()))
        .await
        .unwrap();
    (m, seen)
}

#[tokio::test]
async fn a_block_reaches_the_engine_with_its_figures_and_progress() {
    let server = TestServer::start(Behaviour {
        delay: Duration::from_millis(3),
        ..Behaviour::default()
    })
    .await;
    let experiment = experiment(&server.url());
    let mut probe = EngineProbe::new(experiment.probe_target().unwrap());
    let (m, seen) = measure(&mut probe, &experiment, 2).await;
    assert!((180..=220).contains(&m.requests), "{m:?}");
    assert_eq!(m.errors, 0);
    assert_eq!(m.outcomes.get("ok"), Some(&m.requests));
    assert_eq!(m.latencies_us.len() as u64, m.requests);
    assert!(m.p50_us.unwrap() >= 3_000, "{m:?}");
    assert!(m.aborted.is_none());
    assert!(seen.len() >= 3, "{seen:?}");
    assert_eq!(seen.last().unwrap().requests, m.requests);
}

#[tokio::test]
async fn a_guardrail_stops_a_failing_block_early() {
    let server = TestServer::start(Behaviour {
        status: 503,
        ..Behaviour::default()
    })
    .await;
    let experiment = experiment(&server.url());
    let mut probe = EngineProbe::new(experiment.probe_target().unwrap());
    let (m, _) = measure(&mut probe, &experiment, 20).await;
    let reason = m.aborted.clone().expect("the guard stops the block");
    assert!(reason.contains("error rate"), "{reason}");
    assert!(m.duration_s < 5.0, "{m:?}");
    assert!(m.latencies_us.is_empty());
}
