//! Fakes of the engine's ports over one simulated server: a probe whose latencies and errors
//! depend on the live arm, an applier that records every call (and can fail on cue), a toy judge
//! with a simple fixed rule, and a coach with a canned answer. All take simulated time.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use serde_json::json;
use smart_core::engine::sim::SimClock;
use smart_core::engine::{
    Advice, AdviceAction, AdviceRequest, ApplierPort, ApplyFailure, Arm, BlockMeasurement,
    BlockRequest, Bounds, CancelToken, ClockPort, CoachPort, Conclusion, CycleBlock, Estimates,
    FailureCause, JudgePort, JudgeStep, Judgement, LiveProgress, PortError, ProbePort, Verdict,
};
use smart_core::records::DecisionRecord;
use smart_core::{Defaults, Experiment, validate};

/// The name the fakes use for the original configuration.
pub(crate) const ORIGINAL: &str = "original";

/// How an arm behaves on the simulated server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Behaviour {
    /// Median latency in ms.
    pub(crate) p50_ms: f64,
    /// Error rate in percent.
    pub(crate) error_pct: f64,
    /// A guardrail trips this many seconds into any block measured on this arm.
    pub(crate) abort_after_s: Option<f64>,
}

pub(crate) const FAST: Behaviour = Behaviour {
    p50_ms: 14.0,
    error_pct: 0.0,
    abort_after_s: None,
};
pub(crate) const BASE: Behaviour = Behaviour {
    p50_ms: 20.0,
    error_pct: 0.0,
    abort_after_s: None,
};
pub(crate) const SLOW: Behaviour = Behaviour {
    p50_ms: 26.0,
    error_pct: 0.0,
    abort_after_s: None,
};
pub(crate) const BROKEN: Behaviour = Behaviour {
    p50_ms: 20.0,
    error_pct: 90.0,
    abort_after_s: Some(2.0),
};

/// The simulated server and everything the fakes share.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) clock: SimClock,
    pub(crate) cancel: CancelToken,
    /// What is live: `original`, `baseline` or a variant's name.
    pub(crate) live: RefCell<String>,
    /// Every applier call and probe block, in order: `check`, `switch v`, `restore`, `close`,
    /// `keep v`, `probe <live>`.
    pub(crate) calls: RefCell<Vec<String>>,
    /// Behaviour per arm name; `original` and `baseline` default to [`BASE`].
    pub(crate) behaviour: RefCell<BTreeMap<String, Behaviour>>,
    /// Switches made so far (reloads).
    pub(crate) reloads: Cell<u32>,
    /// Trip `cancel` once simulated time passes this.
    pub(crate) cancel_at: Cell<Option<Duration>>,
}

impl World {
    pub(crate) fn new(variants: &[(&str, Behaviour)]) -> Rc<World> {
        let behaviour = variants
            .iter()
            .map(|(name, b)| (name.to_string(), *b))
            .collect();
        Rc::new(World {
            clock: SimClock::new(),
            cancel: CancelToken::new(),
            live: RefCell::new(ORIGINAL.to_owned()),
            calls: RefCell::new(Vec::new()),
            behaviour: RefCell::new(behaviour),
            reloads: Cell::new(0),
            cancel_at: Cell::new(None),
        })
    }

    fn call(&self, what: String) {
        self.calls.borrow_mut().push(what);
    }

    pub(crate) fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }

    pub(crate) fn live(&self) -> String {
        self.live.borrow().clone()
    }

    fn behaviour_of(&self, arm: &str) -> Behaviour {
        self.behaviour.borrow().get(arm).copied().unwrap_or(BASE)
    }
}

/// The probe: 50 req/s, latencies around the live arm's median, its error rate, plus two errors
/// in the first 0.5 s after every reload (as nginx closes kept-alive connections), which only a
/// warm-up shorter than that lets through.
pub(crate) struct FakeProbe {
    world: Rc<World>,
    blocks: u64,
    seen_reloads: u32,
    /// Blocks take this many times their planned length (a stalling target).
    pub(crate) stall: f64,
}

impl FakeProbe {
    pub(crate) fn new(world: &Rc<World>) -> FakeProbe {
        FakeProbe {
            world: Rc::clone(world),
            blocks: 0,
            seen_reloads: 0,
            stall: 1.0,
        }
    }
}

const RATE: f64 = 50.0;

impl ProbePort for FakeProbe {
    async fn measure(
        &mut self,
        request: &BlockRequest<'_>,
        progress: &mut dyn FnMut(&LiveProgress),
    ) -> Result<BlockMeasurement, PortError> {
        let world = &self.world;
        let live = world.live();
        world.call(format!("probe {live}"));
        let b = world.behaviour_of(&live);
        let warmup = request.warmup.as_secs_f64();
        let total = (warmup + request.duration.as_secs_f64()) * self.stall;
        let mut t = 0.0;
        let mut aborted = None;
        while t < total {
            let step = (total - t).min(1.0);
            world.clock.sleep(Duration::from_secs_f64(step)).await;
            t += step;
            if let Some(at) = world.cancel_at.get()
                && world.clock.monotonic() >= at
            {
                world.cancel.cancel();
            }
            progress(&LiveProgress {
                warming_up: t < warmup,
                elapsed_s: t,
                requests: ((t - warmup).max(0.0) * RATE) as u64,
                errors: 0,
                rate_per_s: RATE,
                p50_us: Some((b.p50_ms * 1000.0) as u64),
            });
            if let Some(after) = b.abort_after_s
                && t >= after
            {
                aborted = Some(format!(
                    "error rate {:.0} % over the last 2 s passed the abort threshold (after {t:.1} s)",
                    b.error_pct
                ));
                break;
            }
        }
        self.blocks += 1;
        let measured = (t / self.stall - warmup).max(0.0);
        let requests = (measured * RATE).round() as u64;
        let mut errors = (requests as f64 * b.error_pct / 100.0).round() as u64;
        if world.reloads.get() != self.seen_reloads {
            self.seen_reloads = world.reloads.get();
            if warmup < 0.5 {
                errors += 2;
            }
        }
        let errors = errors.min(requests);
        let jitter = 1.0 + 0.02 * (unit(self.blocks) - 0.5);
        let mut latencies: Vec<u64> = (0..requests - errors)
            .map(|k| {
                (b.p50_ms * 1000.0 * jitter * (0.8 + 0.4 * unit(k ^ self.blocks << 20))) as u64
            })
            .collect();
        let mut sorted = latencies.clone();
        sorted.sort_unstable();
        let q = |p: f64| {
            (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * p).round() as usize])
        };
        let mean =
            (!sorted.is_empty()).then(|| sorted.iter().sum::<u64>() as f64 / sorted.len() as f64);
        latencies.truncate(5_000);
        let mut outcomes = BTreeMap::new();
        outcomes.insert("ok".to_owned(), requests - errors);
        if errors > 0 {
            outcomes.insert("bad_status".to_owned(), errors);
        }
        Ok(BlockMeasurement {
            duration_s: measured,
            requests,
            errors,
            outcomes,
            latencies_us: latencies,
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            mean_us: mean,
            rate_per_s: RATE,
            aborted,
            host: None,
        })
    }
}

/// A number in [0, 1) from `k`.
fn unit(k: u64) -> f64 {
    (smart_core::engine::splitmix64(k) >> 11) as f64 / (1u64 << 53) as f64
}

/// The applier: records calls, takes `switch_s` of simulated time per change, fails on cue.
pub(crate) struct FakeApplier {
    world: Rc<World>,
    pub(crate) switch_s: f64,
    pub(crate) fail_check: bool,
    pub(crate) fail_switch: BTreeSet<String>,
    pub(crate) fail_restore: bool,
    /// A failed switch leaves the arm half-applied instead of restoring the original.
    pub(crate) switch_fails_unrestored: bool,
    /// Whose failure a failed check or switch is (the configuration's unless a test says).
    pub(crate) cause: FailureCause,
}

impl FakeApplier {
    pub(crate) fn new(world: &Rc<World>) -> FakeApplier {
        FakeApplier {
            world: Rc::clone(world),
            switch_s: 0.2,
            fail_check: false,
            fail_switch: BTreeSet::new(),
            fail_restore: false,
            switch_fails_unrestored: false,
            cause: FailureCause::Config,
        }
    }
}

impl ApplierPort for FakeApplier {
    async fn check_baseline(&mut self) -> Result<(), ApplyFailure> {
        self.world.call("check".to_owned());
        if self.fail_check {
            return Err(ApplyFailure {
                message: "health check http://127.0.0.1/health answered 503".to_owned(),
                original_live: true,
                cause: self.cause,
            });
        }
        Ok(())
    }

    async fn switch(&mut self, arm: &str) -> Result<(), ApplyFailure> {
        self.world.call(format!("switch {arm}"));
        self.world
            .clock
            .sleep(Duration::from_secs_f64(self.switch_s))
            .await;
        self.world.reloads.set(self.world.reloads.get() + 1);
        if self.fail_switch.contains(arm) {
            if !self.switch_fails_unrestored {
                *self.world.live.borrow_mut() = ORIGINAL.to_owned();
            }
            return Err(ApplyFailure {
                message: format!("validate `nginx -t` failed for {arm}: unknown directive"),
                original_live: !self.switch_fails_unrestored,
                cause: self.cause,
            });
        }
        *self.world.live.borrow_mut() = arm.to_owned();
        Ok(())
    }

    async fn restore(&mut self) -> Result<(), ApplyFailure> {
        self.world.call("restore".to_owned());
        self.world
            .clock
            .sleep(Duration::from_secs_f64(self.switch_s))
            .await;
        if self.fail_restore {
            return Err(ApplyFailure {
                message: "the restored file's checksum differs from the backup".to_owned(),
                original_live: false,
                cause: FailureCause::Config,
            });
        }
        self.world.reloads.set(self.world.reloads.get() + 1);
        *self.world.live.borrow_mut() = ORIGINAL.to_owned();
        Ok(())
    }

    async fn close(&mut self) -> Result<(), ApplyFailure> {
        self.world.call("close".to_owned());
        if self.world.live() != ORIGINAL {
            return Err(ApplyFailure {
                message: format!("closing with {} live", self.world.live()),
                original_live: false,
                cause: FailureCause::Config,
            });
        }
        Ok(())
    }

    async fn keep(&mut self, variant: &str) -> Result<(), ApplyFailure> {
        self.world.call(format!("keep {variant}"));
        Ok(())
    }
}

/// One cycle as the toy judge was fed it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fed {
    pub(crate) variant: usize,
    pub(crate) cycle: u32,
    pub(crate) arms: Vec<Arm>,
    pub(crate) errors: Vec<u64>,
}

#[derive(Debug, Clone, Default)]
struct ToyState {
    ratios: Vec<f64>,
    error_diffs: Vec<f64>,
    stop: Option<Verdict>,
    aborted: Option<String>,
}

/// A judge with a fixed, simple rule (the real statistics are smart-decide's): after at least
/// two cycles, keep when the variant's block medians average under 90 % of the baseline's, revert
/// over 110 % or when errors rise by more than 2 pp; inconclusive at the last cycle.
pub(crate) struct ToyJudge {
    max_cycles: u32,
    states: Vec<ToyState>,
    pub(crate) fed: Vec<Fed>,
    pub(crate) extended: Vec<usize>,
}

impl ToyJudge {
    pub(crate) fn new(experiment: &Experiment) -> ToyJudge {
        ToyJudge {
            max_cycles: experiment.schedule().max_cycles,
            states: vec![ToyState::default(); experiment.variants().len()],
            fed: Vec::new(),
            extended: Vec::new(),
        }
    }

    fn mean(xs: &[f64]) -> Option<f64> {
        (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
    }
}

impl JudgePort for ToyJudge {
    fn record_cycle(
        &mut self,
        variant: usize,
        blocks: &[CycleBlock<'_>],
    ) -> Result<JudgeStep, PortError> {
        let state = self
            .states
            .get_mut(variant)
            .ok_or_else(|| PortError::new(format!("no variant {variant}")))?;
        if state.stop.is_some() || state.aborted.is_some() {
            return Err(PortError::new("fed after it stopped"));
        }
        self.fed.push(Fed {
            variant,
            cycle: blocks[0].cycle,
            arms: blocks.iter().map(|b| b.arm).collect(),
            errors: blocks.iter().map(|b| b.measurement.errors).collect(),
        });
        let arm = |arm: Arm| -> (f64, f64) {
            let of: Vec<_> = blocks.iter().filter(|b| b.arm == arm).collect();
            let p50 = of
                .iter()
                .map(|b| b.measurement.p50_us.unwrap_or(0) as f64)
                .sum::<f64>()
                / of.len() as f64;
            let err = of
                .iter()
                .map(|b| b.measurement.error_rate_pct())
                .sum::<f64>()
                / of.len() as f64;
            (p50, err)
        };
        let (base, base_err) = arm(Arm::Baseline);
        let (var, var_err) = arm(Arm::Variant);
        state.ratios.push(var / base);
        state.error_diffs.push(var_err - base_err);
        let ratio = Self::mean(&state.ratios).unwrap_or(1.0);
        let errors = Self::mean(&state.error_diffs).unwrap_or(0.0);
        let n = state.ratios.len() as u32;
        let step = if errors > 2.0 || (n >= 2 && ratio > 1.1) {
            JudgeStep::Stop(Verdict::Revert)
        } else if n >= 2 && ratio < 0.9 {
            JudgeStep::Stop(Verdict::Keep)
        } else if n >= self.max_cycles {
            JudgeStep::Stop(Verdict::Inconclusive)
        } else {
            JudgeStep::Continue
        };
        if let JudgeStep::Stop(v) = step {
            state.stop = Some(v);
        }
        Ok(step)
    }

    fn abort_variant(&mut self, variant: usize, reason: &str) {
        self.states[variant].aborted = Some(reason.to_owned());
    }

    fn extend(&mut self, variant: usize) -> Result<(), PortError> {
        let state = &mut self.states[variant];
        if state.stop != Some(Verdict::Inconclusive) || state.ratios.len() as u32 >= self.max_cycles
        {
            return Err(PortError::new("not extendable"));
        }
        state.stop = None;
        self.extended.push(variant);
        Ok(())
    }

    fn conclude(&self) -> Conclusion {
        let kept = (0..self.states.len())
            .filter(|&i| {
                self.states[i].stop == Some(Verdict::Keep) && self.states[i].aborted.is_none()
            })
            .min_by(|&a, &b| {
                let m = |i: usize| Self::mean(&self.states[i].ratios).unwrap_or(1.0);
                m(a).total_cmp(&m(b))
            });
        let variants = self
            .states
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let verdict = match (&s.aborted, s.stop) {
                    (Some(_), _) => Verdict::Revert,
                    (None, Some(Verdict::Keep)) if kept != Some(i) => Verdict::Revert,
                    (None, Some(v)) => v,
                    (None, None) => Verdict::Inconclusive,
                };
                let change = Self::mean(&s.ratios).map(|r| (r - 1.0) * 100.0);
                let errors = Self::mean(&s.error_diffs);
                Judgement {
                    verdict,
                    cycles: s.ratios.len() as u32,
                    metric_change_pct: change,
                    estimates: Estimates {
                        p50_change_pct: change,
                        p50_change_bounds_pct: change.map(|c| Bounds {
                            lower: c - 3.0,
                            upper: c + 3.0,
                        }),
                        error_rate_change_pp: errors,
                        error_rate_change_bounds_pp: errors.map(|e| Bounds {
                            lower: e - 0.5,
                            upper: e + 0.5,
                        }),
                        p_value: change.map(|c| if c.abs() > 10.0 { 0.001 } else { 0.5 }),
                    },
                    guardrail: s.aborted.clone(),
                    reasons: vec![match change {
                        Some(c) => format!(
                            "toy judge: p50 changed by {c:+.1} % over {} cycles",
                            s.ratios.len()
                        ),
                        None => "toy judge: no data".to_owned(),
                    }],
                    report: json!({"judge": "toy", "ratios": s.ratios}),
                }
            })
            .collect();
        Conclusion { kept, variants }
    }
}

/// A coach with one canned answer, which records what it was asked and told.
pub(crate) struct FakeCoach {
    /// Whether it advises at all (when not, it only receives reports).
    pub(crate) advise: bool,
    pub(crate) answer: AdviceAction,
    pub(crate) asked: Vec<String>,
    pub(crate) reports: Vec<DecisionRecord>,
}

impl FakeCoach {
    pub(crate) fn new(answer: AdviceAction) -> FakeCoach {
        FakeCoach {
            advise: false,
            answer,
            asked: Vec::new(),
            reports: Vec::new(),
        }
    }
}

impl CoachPort for FakeCoach {
    fn advises(&self) -> bool {
        self.advise
    }

    async fn report(&mut self, decision: &DecisionRecord) {
        self.reports.push(decision.clone());
    }

    async fn advise(&mut self, request: &AdviceRequest<'_>) -> Advice {
        self.asked.push(request.variant.to_owned());
        Advice {
            action: self.answer,
            reason: "canned answer".to_owned(),
        }
    }
}

/// A valid experiment with `variants` (each rendering `level`), with `schedule` fields merged
/// over a short default schedule.
pub(crate) fn experiment(variants: &[&str], schedule: serde_json::Value) -> Experiment {
    experiment_with(variants, schedule, json!({}))
}

/// [`experiment`] with `extra` top-level keys (e.g. `baseline` params).
pub(crate) fn experiment_with(
    variants: &[&str],
    schedule: serde_json::Value,
    extra: serde_json::Value,
) -> Experiment {
    let mut sched = json!({
        "cooldown_s": 2, "block_s": 10, "max_cycles": 6, "soak_s": 30, "max_duration_s": 7200
    });
    for (k, v) in schedule.as_object().expect("an object") {
        sched[k] = v.clone();
    }
    let variants: Vec<_> = variants
        .iter()
        .enumerate()
        .map(|(i, name)| json!({"name": name, "params": {"level": i + 1}}))
        .collect();
    let mut value = json!({
        "name": "engine-test",
        "target": {"urls": ["http://127.0.0.1:8080/"]},
        "apply": {"files": [{"path": "/etc/nginx/conf.d/t.conf", "template": "level {{ level }};\n"}]},
        "variants": variants,
        "schedule": sched,
    });
    for (k, v) in extra.as_object().expect("an object") {
        value[k] = v.clone();
    }
    let text = value.to_string();
    validate::validate_text(&text, "engine-test.json".as_ref(), &Defaults::default())
        .unwrap_or_else(|e| panic!("the test experiment is invalid: {e}"))
}
