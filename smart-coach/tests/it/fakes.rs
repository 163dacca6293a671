//! Fakes of the engine's other ports for driving a real run with the real coach: a real clock
//! (the coach does real HTTP, so simulated time cannot be used), an instant probe whose arms can
//! be made to trip a guardrail, an applier that tracks what is live, and a judge that follows a
//! script. smart-core's own fakes run on simulated time and are not exported, so these are
//! smaller ones of our own.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use smart_core::engine::{
    ApplierPort, ApplyFailure, BlockMeasurement, BlockRequest, ClockPort, Conclusion, CycleBlock,
    JudgePort, JudgeStep, Judgement, LiveProgress, PortError, ProbePort, Verdict,
};
use smart_core::{Defaults, Experiment, validate};

use crate::support::judgement;

/// The name of the configuration as found.
pub(crate) const ORIGINAL: &str = "original";

/// Real time: the coach's calls take real time, so the run must too.
#[derive(Debug)]
pub(crate) struct RealClock(Instant);

impl RealClock {
    pub(crate) fn new() -> RealClock {
        RealClock(Instant::now())
    }
}

impl ClockPort for RealClock {
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }

    fn monotonic(&self) -> Duration {
        self.0.elapsed()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// What the fakes share: the live arm, what was kept, and when arms start failing.
#[derive(Debug, Default)]
pub(crate) struct World {
    pub(crate) live: RefCell<String>,
    pub(crate) kept: RefCell<Option<String>>,
    /// Blocks measured so far (test and soak).
    pub(crate) blocks: RefCell<u32>,
    /// An arm trips a guardrail in every block once this many blocks were measured.
    pub(crate) broken_after: RefCell<BTreeMap<String, u32>>,
}

impl World {
    pub(crate) fn new() -> Rc<World> {
        let world = World::default();
        *world.live.borrow_mut() = ORIGINAL.to_owned();
        Rc::new(world)
    }

    pub(crate) fn live(&self) -> String {
        self.live.borrow().clone()
    }
}

/// Answers every block at once: 100 requests at 20 ms, or a guardrail when the arm is broken.
pub(crate) struct FakeProbe(pub(crate) Rc<World>);

impl ProbePort for FakeProbe {
    async fn measure(
        &mut self,
        request: &BlockRequest<'_>,
        progress: &mut dyn FnMut(&LiveProgress),
    ) -> Result<BlockMeasurement, PortError> {
        tokio::task::yield_now().await;
        progress(&LiveProgress::default());
        let world = &self.0;
        let live = world.live();
        let measured = *world.blocks.borrow();
        let broken = world
            .broken_after
            .borrow()
            .get(&live)
            .is_some_and(|after| measured >= *after);
        *world.blocks.borrow_mut() += 1;
        let aborted = broken.then(|| "error rate 90.0 % > max_error_rate_pct 5".to_owned());
        Ok(BlockMeasurement {
            duration_s: request.duration.as_secs_f64(),
            requests: 100,
            errors: if broken { 90 } else { 0 },
            latencies_us: vec![20_000; 10],
            p50_us: Some(20_000),
            p90_us: Some(21_000),
            p99_us: Some(25_000),
            mean_us: Some(20_100.0),
            rate_per_s: 50.0,
            aborted,
            ..BlockMeasurement::default()
        })
    }
}

/// Tracks the live arm; never fails.
pub(crate) struct FakeApplier(pub(crate) Rc<World>);

impl ApplierPort for FakeApplier {
    async fn check_baseline(&mut self) -> Result<(), ApplyFailure> {
        Ok(())
    }

    async fn switch(&mut self, arm: &str) -> Result<(), ApplyFailure> {
        *self.0.live.borrow_mut() = arm.to_owned();
        Ok(())
    }

    async fn restore(&mut self) -> Result<(), ApplyFailure> {
        *self.0.live.borrow_mut() = ORIGINAL.to_owned();
        Ok(())
    }

    async fn close(&mut self) -> Result<(), ApplyFailure> {
        Ok(())
    }

    async fn keep(&mut self, variant: &str) -> Result<(), ApplyFailure> {
        *self.0.kept.borrow_mut() = Some(variant.to_owned());
        Ok(())
    }
}

/// A judge that stops every variant with `verdict` after `stop_after` cycles, with the figures
/// of its `judgement` field (at first [`judgement()`]: figures a coach may keep); after an
/// `extend` it goes on to `max_cycles` and stops inconclusive again.
pub(crate) struct ScriptedJudge {
    pub(crate) stop_after: u32,
    pub(crate) max_cycles: u32,
    pub(crate) verdict: Verdict,
    pub(crate) judgement: Judgement,
    pub(crate) cycles: Vec<u32>,
    pub(crate) extended: Vec<usize>,
    pub(crate) aborted: Vec<Option<String>>,
}

impl ScriptedJudge {
    pub(crate) fn new(variants: usize, stop_after: u32, max_cycles: u32) -> ScriptedJudge {
        ScriptedJudge {
            stop_after,
            max_cycles,
            verdict: Verdict::Inconclusive,
            judgement: judgement(),
            cycles: vec![0; variants],
            extended: Vec::new(),
            aborted: vec![None; variants],
        }
    }
}

impl JudgePort for ScriptedJudge {
    fn record_cycle(
        &mut self,
        variant: usize,
        _blocks: &[CycleBlock<'_>],
    ) -> Result<JudgeStep, PortError> {
        self.cycles[variant] += 1;
        let cycles = self.cycles[variant];
        let stop_at = if self.extended.contains(&variant) {
            self.max_cycles
        } else {
            self.stop_after
        };
        Ok(if cycles >= stop_at {
            JudgeStep::Stop(self.verdict)
        } else {
            JudgeStep::Continue
        })
    }

    fn abort_variant(&mut self, variant: usize, reason: &str) {
        self.aborted[variant] = Some(reason.to_owned());
    }

    fn extend(&mut self, variant: usize) -> Result<(), PortError> {
        self.extended.push(variant);
        Ok(())
    }

    fn conclude(&self) -> Conclusion {
        let variants: Vec<Judgement> = (0..self.cycles.len())
            .map(|i| Judgement {
                verdict: if self.aborted[i].is_some() {
                    Verdict::Revert
                } else {
                    self.verdict
                },
                cycles: self.cycles[i],
                ..self.judgement.clone()
            })
            .collect();
        let kept = variants.iter().position(|j| j.verdict == Verdict::Keep);
        Conclusion { kept, variants }
    }
}

/// A valid experiment with one variant `v` and a short schedule (the fake probe ignores times).
pub(crate) fn experiment(max_cycles: u32) -> Experiment {
    let text = json!({
        "name": "coach-test",
        "target": {"urls": ["http://127.0.0.1:8080/"]},
        "apply": {"files": [{"path": "/etc/nginx/conf.d/t.conf", "template": "level {{ level }};\n"}]},
        "variants": [{"name": "v", "params": {"level": 2}}],
        "schedule": {"cooldown_s": 1, "block_s": 10, "max_cycles": max_cycles, "soak_s": 30, "max_duration_s": 3600},
    })
    .to_string();
    validate::validate_text(&text, "coach-test.json".as_ref(), &Defaults::default())
        .unwrap_or_else(|e| panic!("the test experiment is invalid: {e}"))
}
