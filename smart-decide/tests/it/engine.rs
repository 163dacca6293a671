//! The real judge driven by smart-core's engine under simulated time, against a simulated server
//! with log-normal latencies, per-block drift and two failed requests right after every reload
//! (as nginx closes kept-alive connections): an A/A run with many reloads is never reverted for
//! errors nor kept, and a true 30 % win is kept.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use smart_core::engine::sim::{SimClock, block_on};
use smart_core::engine::{
    ApplierPort, ApplyFailure, BlockMeasurement, BlockRequest, CancelToken, ClockPort,
    LiveProgress, NoCoach, NoObserver, PortError, Ports, ProbePort, RunConfig, splitmix64,
};
use smart_core::records::DecisionKind;
use smart_core::{Defaults, Experiment, validate};
use smart_decide::EngineJudge;

/// The simulated server: which arm is live and how many reloads it has seen.
struct Server {
    clock: SimClock,
    variant_live: Cell<bool>,
    reloads: Cell<u32>,
    /// The variant's median latency relative to the baseline's.
    variant_factor: f64,
    /// The variant's blocks are stopped by the probe's error guardrail.
    variant_aborts: bool,
}

struct SimProbe {
    server: Rc<Server>,
    seen_reloads: u32,
    rng: u64,
}

impl SimProbe {
    /// A uniform number in (0, 1).
    fn unit(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(1);
        ((splitmix64(self.rng) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal number (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

impl ProbePort for SimProbe {
    async fn measure(
        &mut self,
        request: &BlockRequest<'_>,
        progress: &mut dyn FnMut(&LiveProgress),
    ) -> Result<BlockMeasurement, PortError> {
        let server = Rc::clone(&self.server);
        server.clock.sleep(request.warmup + request.duration).await;
        progress(&LiveProgress::default());
        if server.variant_aborts && server.variant_live.get() {
            return Ok(BlockMeasurement {
                aborted: Some(GUARDRAIL.to_owned()),
                ..BlockMeasurement::default()
            });
        }
        // Requests of the warm-up are discarded: reload errors count only without one.
        let mut errors = 0;
        if server.reloads.get() != self.seen_reloads {
            self.seen_reloads = server.reloads.get();
            if request.warmup < Duration::from_millis(500) {
                errors = 2;
            }
        }
        let requests = (request.duration.as_secs_f64() * 50.0) as u64;
        let factor = if server.variant_live.get() {
            server.variant_factor
        } else {
            1.0
        };
        // Drift of ±5 % per block, σ = 0.5 within a block, around 20 ms.
        let drift = 1.0 + 0.05 * (2.0 * self.unit() - 1.0);
        let mut latencies: Vec<u64> = (0..requests - errors)
            .map(|_| (20_000.0 * factor * drift * (0.5 * self.normal()).exp()) as u64)
            .collect();
        let mut sorted = latencies.clone();
        sorted.sort_unstable();
        let q = |p: f64| Some(sorted[((sorted.len() - 1) as f64 * p) as usize]);
        latencies.shrink_to_fit();
        Ok(BlockMeasurement {
            duration_s: request.duration.as_secs_f64(),
            requests,
            errors,
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            mean_us: Some(sorted.iter().sum::<u64>() as f64 / sorted.len() as f64),
            latencies_us: latencies,
            rate_per_s: 50.0,
            ..BlockMeasurement::default()
        })
    }
}

struct SimApplier(Rc<Server>);

impl SimApplier {
    async fn set(&self, variant: bool) -> Result<(), ApplyFailure> {
        self.0.clock.sleep(Duration::from_millis(100)).await;
        self.0.variant_live.set(variant);
        self.0.reloads.set(self.0.reloads.get() + 1);
        Ok(())
    }
}

impl ApplierPort for SimApplier {
    async fn check_baseline(&mut self) -> Result<(), ApplyFailure> {
        Ok(())
    }
    async fn switch(&mut self, arm: &str) -> Result<(), ApplyFailure> {
        self.set(arm != "baseline").await
    }
    async fn restore(&mut self) -> Result<(), ApplyFailure> {
        self.set(false).await
    }
    async fn close(&mut self) -> Result<(), ApplyFailure> {
        Ok(())
    }
    async fn keep(&mut self, _variant: &str) -> Result<(), ApplyFailure> {
        Ok(())
    }
}

fn experiment() -> Experiment {
    let json = r#"{"name": "sim", "target": {"urls": ["http://127.0.0.1/"]},
        "apply": {"files": [{"path": "/etc/sim.conf", "template": "x {{ x }};\n"}]},
        "variants": [{"name": "v", "params": {"x": 1}}],
        "schedule": {"cooldown_s": 2, "block_s": 10, "max_cycles": 8, "soak_s": 20}}"#;
    validate::validate_text(json, "sim.json".as_ref(), &Defaults::default()).unwrap()
}

/// What the simulated probe says when it stops a variant's block.
const GUARDRAIL: &str = "error rate 80.0 % over the last 1 s passed the abort threshold of 20 %";

/// Runs the experiment once with `seed`; the decision, the reloads made, the reasons, and the
/// errors the judge counted in the baseline and the variant.
fn run(variant_factor: f64, seed: u64) -> (DecisionKind, u32, Vec<String>, [u64; 2]) {
    let (decision, reloads, reasons, report) = run_server(variant_factor, false, seed);
    let errors =
        ["baseline", "candidate"].map(|arm| report[arm]["errors"].as_u64().expect("error counts"));
    (decision, reloads, reasons, errors)
}

/// Runs the experiment once with `seed`; the decision, the reloads made, the reasons and the
/// judge's report.
fn run_server(
    variant_factor: f64,
    variant_aborts: bool,
    seed: u64,
) -> (DecisionKind, u32, Vec<String>, serde_json::Value) {
    let experiment = experiment();
    let clock = SimClock::new();
    let server = Rc::new(Server {
        clock: clock.clone(),
        variant_live: Cell::new(false),
        reloads: Cell::new(0),
        variant_factor,
        variant_aborts,
    });
    let mut probe = SimProbe {
        server: Rc::clone(&server),
        seen_reloads: 0,
        rng: seed << 32,
    };
    let mut applier = SimApplier(Rc::clone(&server));
    let mut judge = EngineJudge::new(&experiment);
    let config = RunConfig {
        run_id: format!("sim-{seed}"),
        seed,
        cancel: CancelToken::new(),
    };
    let ports = Ports {
        probe: &mut probe,
        applier: &mut applier,
        judge: &mut judge,
        clock: &clock,
        coach: &mut NoCoach,
        observer: &mut NoObserver,
    };
    let report = block_on(&clock, smart_core::engine::run(&experiment, &config, ports)).unwrap();
    let decision = report.decisions.into_iter().next().unwrap();
    (
        decision.decision,
        server.reloads.get(),
        decision.reasons,
        decision.report,
    )
}

#[test]
fn an_aa_run_with_many_reloads_is_never_reverted_for_errors() {
    let mut reverted = 0;
    for seed in 1..=20 {
        let (decision, reloads, reasons, errors) = run(1.0, seed);
        assert!(reloads >= 4, "seed {seed}: only {reloads} reloads");
        assert!(
            !decision.is_kept(),
            "seed {seed}: an A/A variant was kept: {reasons:?}"
        );
        // The reload errors fell in the cool-downs: the judge saw none in either arm.
        assert_eq!(
            errors,
            [0, 0],
            "seed {seed}: reload errors reached the judge"
        );
        if decision == DecisionKind::Revert {
            reverted += 1;
        }
    }
    // A revert for latency is the judge's 5 % false alarm (and harmless: the fail-safe).
    assert!(reverted <= 3, "{reverted} of 20 A/A runs reverted");
}

#[test]
fn a_true_win_is_kept() {
    for seed in 1..=5 {
        let (decision, _, reasons, _) = run(0.7, seed);
        assert_eq!(decision, DecisionKind::Keep, "seed {seed}: {reasons:?}");
    }
}

#[test]
fn a_guardrail_is_the_reason_given_once() {
    for seed in 1..=4 {
        let (decision, _, reasons, _) = run_server(1.0, true, seed);
        assert_eq!(decision, DecisionKind::Revert, "seed {seed}: {reasons:?}");
        assert!(reasons[0].contains(GUARDRAIL), "seed {seed}: {reasons:?}");
        // Neither repeated by the judge nor followed by the shortage of data it caused.
        let told = reasons.iter().filter(|r| r.contains(GUARDRAIL)).count();
        assert_eq!(told, 1, "seed {seed}: {reasons:?}");
        assert!(
            !reasons.iter().any(|r| r.contains("too little data")),
            "seed {seed}: {reasons:?}"
        );
    }
}
