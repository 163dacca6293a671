//! The dashboard of a real engine run: the engine (simulated clock), the real judge
//! (smart-decide), a fake probe whose latency depends on the live arm, and a fake applier, with
//! the records and the live dashboard as observers. The pages must render what the engine really
//! writes, during the run and at its end.

use std::cell::RefCell;
use std::fs;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use serde_json::json;
use smart_core::engine::sim::{SimClock, block_on};
use smart_core::engine::{
    ApplierPort, ApplyFailure, BlockMeasurement, BlockRequest, CancelToken, ClockPort,
    LiveProgress, NoCoach, PortError, Ports, ProbePort, RunConfig, RunEnd,
};
use smart_core::records::{DecisionKind, Records};
use smart_core::{Defaults, validate};
use smart_dashboard::{Dashboard, LiveDashboard};

/// The live arm, shared by the probe and the applier.
type Live = Rc<RefCell<String>>;

/// Latency by arm: the variant `fast` halves the baseline's 4 ms.
struct FakeProbe<'a> {
    clock: &'a SimClock,
    live: Live,
    state: u64,
}

impl ProbePort for FakeProbe<'_> {
    async fn measure(
        &mut self,
        request: &BlockRequest<'_>,
        progress: &mut dyn FnMut(&LiveProgress),
    ) -> Result<BlockMeasurement, PortError> {
        let p50 = if *self.live.borrow() == "fast" {
            2000.0
        } else {
            4000.0
        };
        let total = (request.warmup + request.duration).as_secs();
        for s in 1..=total {
            self.clock.sleep(Duration::from_secs(1)).await;
            progress(&LiveProgress {
                warming_up: s <= request.warmup.as_secs(),
                elapsed_s: s as f64,
                requests: s * 20,
                errors: 0,
                rate_per_s: 20.0,
                p50_us: Some(p50 as u64),
            });
        }
        let n = request.duration.as_secs() as usize * 20;
        let mut latencies: Vec<u64> = (0..n)
            .map(|_| {
                self.state = self
                    .state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let u = (self.state >> 11) as f64 / (1u64 << 53) as f64;
                (p50 * (0.8 + 0.4 * u)) as u64
            })
            .collect();
        let measured = latencies.clone();
        latencies.sort_unstable();
        let q = |f: f64| Some(latencies[((n - 1) as f64 * f) as usize]);
        Ok(BlockMeasurement {
            duration_s: request.duration.as_secs_f64(),
            requests: n as u64,
            errors: 0,
            outcomes: [("ok".to_owned(), n as u64)].into_iter().collect(),
            latencies_us: measured,
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            mean_us: Some(latencies.iter().sum::<u64>() as f64 / n as f64),
            rate_per_s: 20.0,
            aborted: None,
            host: None,
        })
    }
}

struct FakeApplier {
    live: Live,
}

impl ApplierPort for FakeApplier {
    async fn check_baseline(&mut self) -> Result<(), ApplyFailure> {
        Ok(())
    }
    async fn switch(&mut self, arm: &str) -> Result<(), ApplyFailure> {
        *self.live.borrow_mut() = arm.to_owned();
        Ok(())
    }
    async fn restore(&mut self) -> Result<(), ApplyFailure> {
        *self.live.borrow_mut() = "baseline".to_owned();
        Ok(())
    }
    async fn close(&mut self) -> Result<(), ApplyFailure> {
        Ok(())
    }
    async fn keep(&mut self, _variant: &str) -> Result<(), ApplyFailure> {
        Ok(())
    }
}

fn experiment() -> smart_core::Experiment {
    let text = json!({
        "name": "file-cache",
        "description": "Cache open file descriptors <fast> & \"cheap\"",
        "target": {"urls": ["http://127.0.0.1/"]},
        "apply": {
            "files": [{"path": "/etc/nginx/conf.d/smart-cache.conf", "template": "open_file_cache max={{ max }};\n"}],
            "validate": ["nginx", "-t"],
            "reload": ["nginx", "-s", "reload"]
        },
        "variants": [{"name": "fast", "params": {"max": 1000}}],
        "schedule": {"block_s": 10, "cooldown_s": 2, "max_cycles": 8, "soak_s": 10, "max_duration_s": 3600}
    })
    .to_string();
    validate::validate_text(
        &text,
        Path::new("experiments/file-cache.json"),
        &Defaults::default(),
    )
    .expect("the test experiment is valid")
}

#[test]
fn a_real_engine_run_renders_live_and_at_its_end() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let experiment = experiment();
    let clock = SimClock::new();
    let live: Live = Rc::new(RefCell::new("baseline".to_owned()));
    let mut probe = FakeProbe {
        clock: &clock,
        live: live.clone(),
        state: 1,
    };
    let mut applier = FakeApplier { live };
    let mut judge = smart_decide::EngineJudge::new(&experiment);
    let run_id = smart_core::records::new_run_id("file-cache", clock.wall(), 42);
    let config = RunConfig {
        run_id: run_id.clone(),
        seed: 42,
        cancel: CancelToken::new(),
    };
    let mut observer = (
        Records::new(state.path()),
        LiveDashboard::new(Dashboard::new(state.path(), out.path())),
    );
    let report = block_on(
        &clock,
        smart_core::engine::run(
            &experiment,
            &config,
            Ports {
                probe: &mut probe,
                applier: &mut applier,
                judge: &mut judge,
                clock: &clock,
                coach: &mut NoCoach,
                observer: &mut observer,
            },
        ),
    )
    .expect("the run restores or keeps");
    assert_eq!(report.end, RunEnd::Completed);
    assert_eq!(
        report.decisions[0].decision,
        DecisionKind::Keep,
        "{:?}",
        report.decisions[0].reasons
    );
    assert!(observer.1.take_error().is_none());

    // The live dashboard rendered at the end: the decision, the charts, the status as written.
    let index = fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(index.contains("class=\"badge keep\""), "{index}");
    assert!(index.contains("<svg class=\"chart\" id=\"trend\""));
    assert!(index.contains("data-field=\"state\">Finished"));
    let page = fs::read_to_string(out.path().join("runs").join(format!("{run_id}.html"))).unwrap();
    for id in ["cdf", "p50", "errors"] {
        assert!(
            page.contains(&format!("<svg class=\"chart\" id=\"{id}\"")),
            "no {id} chart"
        );
    }
    assert!(page.contains("Cache open file descriptors &lt;fast&gt; &amp; &quot;cheap&quot;"));
    assert!(page.contains("soak"), "the soak blocks are shown");
    assert!(page.contains("variant fast"), "the live config afterwards");
    assert_eq!(
        fs::read(out.path().join("status.json")).unwrap(),
        fs::read(state.path().join("status.json")).unwrap()
    );
    // A full render of the same records gives the same run page.
    let again = tempfile::tempdir().unwrap();
    Dashboard::new(state.path(), again.path())
        .render(clock.wall())
        .unwrap();
    let page_again =
        fs::read_to_string(again.path().join("runs").join(format!("{run_id}.html"))).unwrap();
    assert_eq!(page, page_again);
}
