//! The fleet coordinator: the crossover periods, the judge over pairs of periods, the staged
//! promotion of a kept variant, and the fail-safe revert, with the journal written before every
//! change.
//!
//! Each period: switch the group that runs the variant this period and the one that runs the
//! baseline (both at once, only hosts whose arm changes), wait `settle_s`, measure both groups
//! over the same `period_s` window (queried one scrape after it ends). Two periods make a pair,
//! in which every group runs the variant once; which group goes first is a fair coin per pair.
//! A pair is the judge's cycle: blocks 0-1 are the first period's groups, 2-3 the second's, so
//! each of the judge's block pairs compares the groups over one window, and the pair's contrast
//! cancels the groups' fixed differences.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, SystemTime};

use smart_core::BASELINE;
use smart_core::engine::BlockMeasurement;
use smart_core::experiment::{Params, Prometheus};
use smart_core::template::render;
use smart_decide::{Arm, BlockQuantiles, BlockSample, Judge, Outcome, Step};
use smart_source::PrometheusSource;

use crate::ansible::{Switch, SwitchFailure};
use crate::design::{Group, first_variant, hosts_regex, position, split, stage_counts};
use crate::error::FleetError;
use crate::journal::{Finish, Journal, JournalRecord};
use crate::spec::{FleetExperiment, HOSTS_REGEX_PLACEHOLDER};

/// Added to the scrape interval before querying a window, for the last scrape to be stored.
const INGEST_MARGIN: Duration = Duration::from_millis(250);

/// The port that measures a group of hosts over a window.
pub trait Measure {
    /// The figures of `hosts` over the `window` that ended at `end`.
    fn measure(
        &self,
        hosts: &[String],
        end: SystemTime,
        window: Duration,
    ) -> impl Future<Output = Result<BlockMeasurement, FleetError>>;
}

/// Measures a group through the Prometheus source, its hosts in the queries' `{{ hosts_regex }}`.
#[derive(Debug, Clone)]
pub struct PrometheusMeasure {
    spec: Prometheus,
}

impl PrometheusMeasure {
    /// The measure of a validated experiment.
    pub fn new(experiment: &FleetExperiment) -> PrometheusMeasure {
        PrometheusMeasure {
            spec: experiment.spec().measure.prometheus.clone(),
        }
    }
}

impl Measure for PrometheusMeasure {
    async fn measure(
        &self,
        hosts: &[String],
        end: SystemTime,
        window: Duration,
    ) -> Result<BlockMeasurement, FleetError> {
        let values = BTreeMap::from([(HOSTS_REGEX_PLACEHOLDER.to_owned(), hosts_regex(hosts))]);
        let fill = |q: &str| render(q, &values).map_err(|e| FleetError::invalid(e.message));
        let mut spec = self.spec.clone();
        spec.latency_quantile = fill(&spec.latency_quantile)?;
        spec.latency_mean = fill(&spec.latency_mean)?;
        spec.requests = fill(&spec.requests)?;
        spec.error_ratio = fill(&spec.error_ratio)?;
        let source =
            PrometheusSource::new(&spec, None).map_err(|e| FleetError::invalid(e.to_string()))?;
        source
            .block_at(end, window)
            .await
            .map_err(|e| FleetError::runtime(format!("measuring hosts {}: {e}", hosts.join(", "))))
    }
}

/// What the coordinator is doing, for a front end to show.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The hosts were split into two groups.
    Split {
        /// Group A.
        a: Vec<String>,
        /// Group B.
        b: Vec<String>,
    },
    /// A period was measured.
    Period {
        /// The pair, from 0.
        pair: u32,
        /// The period in the pair, 0 or 1.
        period: u32,
        /// The hosts that ran the variant.
        variant_hosts: Vec<String>,
        /// The median latency of the variant's and the baseline's group, in µs.
        p50_us: (u64, u64),
    },
    /// The judge decided.
    Decided {
        /// `keep`, `revert` or `inconclusive`.
        verdict: &'static str,
        /// Pairs measured.
        pairs: u32,
    },
    /// A promotion stage passed its guardrail check.
    Stage {
        /// The hosts running the variant now.
        variant_hosts: Vec<String>,
    },
    /// Every touched host was put back to the baseline.
    Reverted {
        /// The hosts switched back.
        hosts: Vec<String>,
    },
}

/// How a fleet experiment ended.
#[derive(Debug, Clone)]
pub struct FleetOutcome {
    /// Whether the variant was kept and promoted to every host.
    pub kept: bool,
    /// The judge's report.
    pub report: Outcome,
    /// The two groups of the split.
    pub groups: (Vec<String>, Vec<String>),
    /// Why a promotion stage failed its guardrail check, when one did (every host was then
    /// reverted).
    pub stage_failure: Option<String>,
}

/// Runs a fleet experiment over `hosts` (at least two): the crossover, the decision, the
/// promotion or the revert. Journals under `state_dir` before every change. On any failure
/// every touched host is put back to the baseline before the error is returned.
pub async fn run_fleet<S: Switch, M: Measure>(
    experiment: &FleetExperiment,
    hosts: &[String],
    switch: &S,
    measure: &M,
    state_dir: &std::path::Path,
    seed: u64,
    on: &mut dyn FnMut(&Event),
) -> Result<FleetOutcome, FleetError> {
    if hosts.len() < 2 {
        return Err(FleetError::invalid(format!(
            "fleet.group `{}` has {} host(s); a fleet experiment needs at least two (one per \
             group)",
            experiment.spec().fleet.group,
            hosts.len()
        )));
    }
    let spec = experiment.spec();
    let journal = Journal::create(
        state_dir,
        JournalRecord {
            experiment: spec.name.clone(),
            variant: spec.variant.name.clone(),
            argv: spec.apply.argv.clone(),
            dir: experiment.dir().to_owned(),
            inventory: experiment.inventory().to_owned(),
            baseline: spec.baseline.clone(),
            command_timeout_s: spec.fleet.command_timeout_s,
            hosts: BTreeMap::new(),
            finished: None,
        },
    )?;
    let (a, b) = split(hosts, seed);
    on(&Event::Split {
        a: a.clone(),
        b: b.clone(),
    });
    let mut coordinator = Coordinator {
        experiment,
        switch,
        measure,
        journal,
        current: hosts
            .iter()
            .map(|h| (h.clone(), BASELINE.to_owned()))
            .collect(),
        groups: (a, b),
    };
    let result = coordinator.crossover(seed, on).await;
    match result {
        Ok(outcome) => Ok(outcome),
        Err(e) => Err(coordinator.abort(e, on).await),
    }
}

struct Coordinator<'a, S, M> {
    experiment: &'a FleetExperiment,
    switch: &'a S,
    measure: &'a M,
    journal: Journal,
    /// What each host runs, as far as confirmed.
    current: BTreeMap<String, String>,
    groups: (Vec<String>, Vec<String>),
}

impl<S: Switch, M: Measure> Coordinator<'_, S, M> {
    fn group(&self, g: Group) -> &[String] {
        match g {
            Group::A => &self.groups.0,
            Group::B => &self.groups.1,
        }
    }

    async fn crossover(
        &mut self,
        seed: u64,
        on: &mut dyn FnMut(&Event),
    ) -> Result<FleetOutcome, FleetError> {
        let spec = self.experiment.spec();
        let variant = spec.variant.name.clone();
        let mut judge = Judge::new(
            &spec.decision,
            &spec.guardrails,
            &self.experiment.schedule(),
            std::slice::from_ref(&variant),
        )
        .map_err(|e| FleetError::invalid(format!("decision: {e}")))?;
        let mut baseline_p99 = Vec::new();
        let mut last_variant = Group::A;
        let mut pairs = 0;
        let mut verdict = None;
        'pairs: for pair in 0..spec.fleet.max_pairs {
            let first = first_variant(seed, pair);
            let mut blocks = Vec::with_capacity(4);
            for (period, on_variant) in [(0, first), (1, first.other())] {
                let base_group = on_variant.other();
                let variant_hosts = self.group(on_variant).to_vec();
                let base_hosts = self.group(base_group).to_vec();
                self.switch_two(
                    (&variant_hosts, &variant, &spec.variant.params),
                    (&base_hosts, BASELINE, &spec.baseline),
                )
                .await?;
                let (var_m, base_m) = self.measure_two(&variant_hosts, &base_hosts).await?;
                on(&Event::Period {
                    pair,
                    period,
                    variant_hosts: variant_hosts.clone(),
                    p50_us: (var_m.p50_us.unwrap_or(0), base_m.p50_us.unwrap_or(0)),
                });
                if let Some(p99) = base_m.p99_us {
                    baseline_p99.push(p99 as f64);
                }
                if let Some(why) = period_p99_guardrail(&var_m, &base_m, &spec.guardrails) {
                    // At once: no more of this pair on a variant that hurts.
                    let why = format!(
                        "pair {} period {}: the group on the variant [{}]: {why}",
                        pair + 1,
                        period + 1,
                        variant_hosts.join(", ")
                    );
                    judge
                        .guardrail_fired(0, &why)
                        .map_err(|e| FleetError::runtime(format!("the judge refused: {e}")))?;
                    verdict = Some(smart_core::engine::Verdict::Revert);
                    pairs += 1;
                    break 'pairs;
                }
                blocks.push(sample(
                    &var_m,
                    Arm::Variant,
                    pair,
                    position(period, on_variant),
                )?);
                blocks.push(sample(
                    &base_m,
                    Arm::Baseline,
                    pair,
                    position(period, base_group),
                )?);
                last_variant = on_variant;
            }
            pairs += 1;
            let step = judge
                .record_cycle(0, &blocks)
                .map_err(|e| FleetError::runtime(format!("the judge refused pair {pair}: {e}")))?;
            if let Step::Stop(v) = step {
                verdict = Some(v);
                break;
            }
        }
        let report = judge.conclude();
        let kept = report.kept.is_some();
        on(&Event::Decided {
            verdict: if kept {
                "keep"
            } else {
                verdict.map_or("inconclusive", |v| v.as_str())
            },
            pairs,
        });
        let groups = self.groups.clone();
        if !kept {
            self.revert_all(on).await?;
            self.journal.finish(Finish::Reverted)?;
            return Ok(FleetOutcome {
                kept,
                report,
                groups,
                stage_failure: None,
            });
        }
        let reference = baseline_p99.iter().sum::<f64>() / baseline_p99.len().max(1) as f64;
        let stage_failure = self.promote(last_variant, reference, on).await?;
        if stage_failure.is_some() {
            self.revert_all(on).await?;
            self.journal.finish(Finish::Reverted)?;
        } else {
            self.journal.finish(Finish::Kept)?;
        }
        Ok(FleetOutcome {
            kept: stage_failure.is_none(),
            report,
            groups,
            stage_failure,
        })
    }

    /// Promotes the variant from group `on_variant` to the rest in stages, checking the
    /// guardrails on every host running it after each; the failed check's reason, if any.
    async fn promote(
        &mut self,
        on_variant: Group,
        baseline_p99_us: f64,
        on: &mut dyn FnMut(&Event),
    ) -> Result<Option<String>, FleetError> {
        let spec = self.experiment.spec();
        let variant = spec.variant.name.clone();
        let mut running = self.group(on_variant).to_vec();
        let rest = self.group(on_variant.other()).to_vec();
        let mut done = 0;
        for n in stage_counts(rest.len(), &spec.fleet.stages_pct) {
            let stage = rest[done..n].to_vec();
            self.switch_two(
                (&stage, &variant, &spec.variant.params),
                (&[], BASELINE, &spec.baseline),
            )
            .await?;
            done = n;
            running.extend(stage);
            running.sort();
            let window = Duration::from_secs_f64(self.experiment.stage_s());
            tokio::time::sleep(Duration::from_secs_f64(spec.fleet.settle_s) + window).await;
            let end = SystemTime::now();
            tokio::time::sleep(self.ingest()).await;
            let m = self.measure.measure(&running, end, window).await?;
            if let Some(why) = stage_guardrail(&m, baseline_p99_us, &spec.guardrails) {
                return Ok(Some(format!(
                    "promotion stage with {} host(s) on `{variant}`: {why}",
                    running.len()
                )));
            }
            on(&Event::Stage {
                variant_hosts: running.clone(),
            });
        }
        Ok(None)
    }

    fn ingest(&self) -> Duration {
        Duration::from_secs_f64(self.experiment.spec().measure.prometheus.scrape_interval_s)
            + INGEST_MARGIN
    }

    /// Waits out the settle time and the period, then measures both groups over that window.
    async fn measure_two(
        &self,
        first: &[String],
        second: &[String],
    ) -> Result<(BlockMeasurement, BlockMeasurement), FleetError> {
        let fleet = &self.experiment.spec().fleet;
        let window = Duration::from_secs_f64(fleet.period_s);
        tokio::time::sleep(Duration::from_secs_f64(fleet.settle_s) + window).await;
        let end = SystemTime::now();
        tokio::time::sleep(self.ingest()).await;
        let (x, y) = tokio::join!(
            self.measure.measure(first, end, window),
            self.measure.measure(second, end, window)
        );
        Ok((x?, y?))
    }

    /// Switches two sets of hosts at once, each to its arm; only hosts whose arm changes run
    /// the command. The journal says "changing" before, "runs" after.
    async fn switch_two(
        &mut self,
        first: (&[String], &str, &Params),
        second: (&[String], &str, &Params),
    ) -> Result<(), FleetError> {
        let moving = |(hosts, arm, _): (&[String], &str, &Params)| -> Vec<String> {
            hosts
                .iter()
                .filter(|h| self.current.get(*h).map(String::as_str) != Some(arm))
                .cloned()
                .collect()
        };
        let (h1, h2) = (moving(first), moving(second));
        for (hosts, arm) in [(&h1, first.1), (&h2, second.1)] {
            if !hosts.is_empty() {
                self.journal.changing(hosts, arm)?;
            }
        }
        let (r1, r2) = tokio::join!(
            run_owned(self.switch, first.1, first.2, h1.clone()),
            run_owned(self.switch, second.1, second.2, h2.clone())
        );
        let mut failed = BTreeMap::new();
        for (hosts, arm, result) in [(&h1, first.1, r1), (&h2, second.1, r2)] {
            let bad = match &result {
                Ok(()) => BTreeMap::new(),
                Err(f) => f.failed.clone(),
            };
            let ok: Vec<String> = hosts
                .iter()
                .filter(|h| !bad.contains_key(*h))
                .cloned()
                .collect();
            for h in &ok {
                self.current.insert(h.clone(), arm.to_owned());
            }
            if !ok.is_empty() {
                self.journal.runs(&ok, arm)?;
            }
            for (h, why) in bad {
                // Unknown now: the next switch (a revert) must run on it whatever its arm.
                self.current.remove(&h);
                failed.insert(h, format!("to `{arm}`: {why}"));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            let hosts: Vec<String> = failed.keys().cloned().collect();
            Err(FleetError::hosts(
                format!(
                    "host(s) {} failed to switch: {}",
                    hosts.join(", "),
                    SwitchFailure { failed }.describe()
                ),
                hosts,
            ))
        }
    }

    /// Puts every host that may run something other than the baseline back.
    async fn revert_all(&mut self, on: &mut dyn FnMut(&Event)) -> Result<(), FleetError> {
        let hosts = self.journal.record().to_revert();
        if hosts.is_empty() {
            return Ok(());
        }
        let baseline = self.experiment.spec().baseline.clone();
        self.switch_two((&hosts, BASELINE, &baseline), (&[], BASELINE, &baseline))
            .await
            .map_err(|e| {
                FleetError::hosts(
                    format!(
                        "{e}; they may still run `{}`: fix them and run `smart recover`",
                        self.experiment.spec().variant.name
                    ),
                    e.failed_hosts().to_vec(),
                )
            })?;
        on(&Event::Reverted { hosts });
        Ok(())
    }

    /// After `cause`, puts every touched host back and returns the error to report: `cause`,
    /// and what the revert did.
    async fn abort(&mut self, cause: FleetError, on: &mut dyn FnMut(&Event)) -> FleetError {
        let touched = self.journal.record().to_revert();
        match self.revert_all(on).await {
            Ok(()) => {
                let _ = self.journal.finish(Finish::Reverted);
                let put_back = if touched.is_empty() {
                    "no host had changed".to_owned()
                } else {
                    format!("hosts {} were put back to the baseline", touched.join(", "))
                };
                let message = format!("{cause}; {put_back}");
                match cause.kind() {
                    crate::error::FleetErrorKind::BadInput => FleetError::invalid(message),
                    crate::error::FleetErrorKind::Runtime => {
                        FleetError::hosts(message, cause.failed_hosts().to_vec())
                    }
                }
            }
            Err(revert) => {
                let mut failed = cause.failed_hosts().to_vec();
                failed.extend(revert.failed_hosts().iter().cloned());
                failed.sort();
                failed.dedup();
                FleetError::hosts(format!("{cause}; and the revert failed: {revert}"), failed)
            }
        }
    }
}

async fn run_owned<S: Switch>(
    switch: &S,
    arm: &str,
    params: &Params,
    hosts: Vec<String>,
) -> Result<(), SwitchFailure> {
    if hosts.is_empty() {
        return Ok(());
    }
    switch.switch(arm, params, &hosts).await
}

/// The judge's sample of a group's measurement.
fn sample(
    m: &BlockMeasurement,
    arm: Arm,
    pair: u32,
    position: u32,
) -> Result<BlockSample, FleetError> {
    let (Some(p50), Some(p90), Some(p99)) = (m.p50_us, m.p90_us, m.p99_us) else {
        return Err(FleetError::runtime(
            "the measurement has no latency quantiles; check measure.prometheus.latency_quantile",
        ));
    };
    Ok(BlockSample {
        arm,
        cycle: pair,
        position,
        latencies_us: Vec::new(),
        requests: m.requests,
        errors: m.errors,
        cut_short: false,
        quantiles: Some(BlockQuantiles {
            answered: m.requests.saturating_sub(m.errors),
            p50_us: p50 as f64,
            p90_us: p90 as f64,
            p99_us: p99 as f64,
            mean_us: m.mean_us.unwrap_or(p50 as f64),
        }),
        host: None,
    })
}

/// Answered requests each group needs in a period before its p99 is compared.
const P99_MIN_ANSWERED: u64 = 100;

/// Why a period breaks the p99 guardrail, if it does: the group on the variant's p99 more than
/// `max_p99_increase_pct` above the baseline group's over the same window. (The judge's own p99
/// guardrail pools raw latencies, which a Prometheus histogram does not give.)
fn period_p99_guardrail(
    variant: &BlockMeasurement,
    baseline: &BlockMeasurement,
    guardrails: &smart_core::experiment::Guardrails,
) -> Option<String> {
    let limit = guardrails.max_p99_increase_pct?;
    let (v, b) = (variant.p99_us?, baseline.p99_us?);
    let answered = |m: &BlockMeasurement| m.requests.saturating_sub(m.errors);
    if answered(variant) < P99_MIN_ANSWERED || answered(baseline) < P99_MIN_ANSWERED || b == 0 {
        return None;
    }
    (v as f64 > b as f64 * (1.0 + limit / 100.0)).then(|| {
        format!(
            "p99 {:.1} ms is more than {limit} % above the baseline group's {:.1} ms over the \
             same window (guardrails.max_p99_increase_pct)",
            v as f64 / 1000.0,
            b as f64 / 1000.0
        )
    })
}

/// Why a promotion stage's measurement breaks the guardrails, if it does: the error rate above
/// `abort_error_rate_pct`, or the p99 more than `max_p99_increase_pct` above the baseline's
/// during the crossover.
fn stage_guardrail(
    m: &BlockMeasurement,
    baseline_p99_us: f64,
    guardrails: &smart_core::experiment::Guardrails,
) -> Option<String> {
    let rate = if m.requests == 0 {
        0.0
    } else {
        m.errors as f64 / m.requests as f64 * 100.0
    };
    if rate > guardrails.abort_error_rate_pct.get() {
        return Some(format!(
            "error rate {rate:.1} % is above guardrails.abort_error_rate_pct {} %",
            guardrails.abort_error_rate_pct
        ));
    }
    if let (Some(limit), Some(p99)) = (guardrails.max_p99_increase_pct, m.p99_us) {
        let bound = baseline_p99_us * (1.0 + limit / 100.0);
        if baseline_p99_us > 0.0 && p99 as f64 > bound {
            return Some(format!(
                "p99 {:.1} ms is more than {limit} % above the baseline's {:.1} ms",
                p99 as f64 / 1000.0,
                baseline_p99_us / 1000.0
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;
    use crate::journal::{HostState, recover_with};

    /// Hosts whose latency depends on the arm they run, with a fixed per-host offset (host
    /// heterogeneity the crossover must cancel), some that fail to switch.
    struct FakeFleet {
        runs: RefCell<BTreeMap<String, String>>,
        failing: BTreeSet<String>,
        /// Milliseconds added by the variant.
        variant_ms: f64,
        /// Count of measurements, for deterministic noise.
        draws: RefCell<u64>,
        /// The arm a promoted stage measures this error rate on, in percent.
        stage_errors_pct: f64,
    }

    impl FakeFleet {
        fn new(hosts: &[String], variant_ms: f64) -> FakeFleet {
            FakeFleet {
                runs: RefCell::new(
                    hosts
                        .iter()
                        .map(|h| (h.clone(), BASELINE.to_owned()))
                        .collect(),
                ),
                failing: BTreeSet::new(),
                variant_ms,
                draws: RefCell::new(0),
                stage_errors_pct: 0.0,
            }
        }
    }

    impl Switch for FakeFleet {
        async fn switch(
            &self,
            arm: &str,
            _: &Params,
            hosts: &[String],
        ) -> Result<(), SwitchFailure> {
            let mut failed = BTreeMap::new();
            for h in hosts {
                if self.failing.contains(h) {
                    failed.insert(h.clone(), "task `write`: Permission denied".to_owned());
                } else {
                    self.runs.borrow_mut().insert(h.clone(), arm.to_owned());
                }
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(SwitchFailure { failed })
            }
        }
    }

    impl Measure for FakeFleet {
        async fn measure(
            &self,
            hosts: &[String],
            _: SystemTime,
            _: Duration,
        ) -> Result<BlockMeasurement, FleetError> {
            let mut draws = self.draws.borrow_mut();
            *draws += 1;
            let runs = self.runs.borrow();
            let mut ms = 0.0;
            let mut on_variant = 0;
            for h in hosts {
                // Host heterogeneity: host N is N ms slower.
                ms += 20.0 + h.trim_start_matches('h').parse::<f64>().unwrap_or(0.0);
                if runs[h] != BASELINE {
                    ms += self.variant_ms;
                    on_variant += 1;
                }
            }
            ms /= hosts.len() as f64;
            ms *= 1.0 + 0.02 * ((*draws * 7919 % 13) as f64 / 13.0 - 0.5);
            let requests = 2000;
            let errors = if on_variant == hosts.len() && hosts.len() > 2 {
                (self.stage_errors_pct / 100.0 * requests as f64) as u64
            } else {
                0
            };
            let us = (ms * 1000.0) as u64;
            Ok(BlockMeasurement {
                duration_s: 2.0,
                requests,
                errors,
                p50_us: Some(us),
                p90_us: Some(us * 3 / 2),
                p99_us: Some(us * 2),
                mean_us: Some(us as f64 * 1.1),
                ..BlockMeasurement::default()
            })
        }
    }

    fn hosts(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("h{i}")).collect()
    }

    fn experiment(baseline: i64, variant: i64) -> FleetExperiment {
        let mut v = crate::spec::tests::valid();
        v["baseline"]["delay_ms"] = baseline.into();
        v["variant"]["params"]["delay_ms"] = variant.into();
        v["fleet"]["max_pairs"] = 4.into();
        v["decision"] = serde_json::json!({"confidence": 0.9});
        FleetExperiment::parse(Path::new("x/fleet.json"), &v.to_string()).unwrap()
    }

    async fn run(
        fake: &FakeFleet,
        state: &Path,
        exp: &FleetExperiment,
    ) -> (Result<FleetOutcome, FleetError>, Vec<Event>) {
        let mut events = Vec::new();
        let n = fake.runs.borrow().len();
        let r = run_fleet(exp, &hosts(n), fake, fake, state, 42, &mut |e| {
            events.push(e.clone())
        })
        .await;
        (r, events)
    }

    fn journal(state: &Path) -> JournalRecord {
        let text = std::fs::read_to_string(state.join("fleet/fleet-delay.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_win_is_kept_and_promoted_to_every_host() {
        let state = tempfile::tempdir().unwrap();
        let fake = FakeFleet::new(&hosts(4), -15.0);
        let (r, events) = run(&fake, state.path(), &experiment(50, 0)).await;
        let outcome = r.unwrap();
        assert!(outcome.kept, "{:?}", outcome.report);
        assert!(fake.runs.borrow().values().all(|a| a == "no-delay"));
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Stage { variant_hosts } if variant_hosts.len() == 4))
        );
        let j = journal(state.path());
        assert_eq!(j.finished, Some(Finish::Kept));
        assert!(
            j.hosts
                .values()
                .all(|s| *s == HostState::Runs("no-delay".into()))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_loss_is_reverted_on_every_host() {
        let state = tempfile::tempdir().unwrap();
        let fake = FakeFleet::new(&hosts(4), 50.0);
        let (r, events) = run(&fake, state.path(), &experiment(0, 50)).await;
        let outcome = r.unwrap();
        assert!(!outcome.kept);
        assert!(fake.runs.borrow().values().all(|a| a == BASELINE));
        assert!(events.iter().any(|e| matches!(e, Event::Reverted { .. })));
        assert_eq!(journal(state.path()).finished, Some(Finish::Reverted));
    }

    #[tokio::test(start_paused = true)]
    async fn each_pair_runs_the_variant_once_on_each_group_over_the_same_window() {
        let state = tempfile::tempdir().unwrap();
        let fake = FakeFleet::new(&hosts(4), -15.0);
        let (_, events) = run(&fake, state.path(), &experiment(50, 0)).await;
        let Some(Event::Split { a, b }) = events.first() else {
            panic!("{events:?}")
        };
        let periods: Vec<(u32, Vec<String>)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Period {
                    pair,
                    variant_hosts,
                    ..
                } => Some((*pair, variant_hosts.clone())),
                _ => None,
            })
            .collect();
        assert!(
            periods.len() >= 2 && periods.len().is_multiple_of(2),
            "{periods:?}"
        );
        for pair in periods.chunks(2) {
            assert_eq!(pair[0].0, pair[1].0);
            let groups: BTreeSet<&Vec<String>> = pair.iter().map(|p| &p.1).collect();
            assert_eq!(groups, BTreeSet::from([a, b]));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_host_is_named_and_every_touched_host_put_back() {
        let state = tempfile::tempdir().unwrap();
        let mut fake = FakeFleet::new(&hosts(4), -15.0);
        fake.failing.insert("h3".to_owned());
        let (r, _) = run(&fake, state.path(), &experiment(50, 0)).await;
        let e = r.unwrap_err();
        assert_eq!(e.failed_hosts(), ["h3"]);
        assert!(
            e.to_string()
                .contains("h3 (to `no-delay`: task `write`: Permission denied)"),
            "{e}"
        );
        assert!(
            fake.runs.borrow().values().all(|a| a == BASELINE),
            "{:?}",
            fake.runs
        );
        // h3 failed the revert too, so the journal stays open for `smart recover`.
        let j = journal(state.path());
        assert_eq!(j.finished, None);
        assert_eq!(j.to_revert(), ["h3"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_p99_far_above_the_other_groups_in_one_period_reverts_after_that_pair() {
        let state = tempfile::tempdir().unwrap();
        let fake = FakeFleet::new(&hosts(4), 50.0);
        let (r, events) = run(&fake, state.path(), &experiment(0, 50)).await;
        let outcome = r.unwrap();
        let why = outcome.report.variants[0]
            .guardrail
            .clone()
            .unwrap_or_default();
        assert!(why.contains("pair 1 period 1"), "{why}");
        assert!(why.contains("above the baseline group's"), "{why}");
        let decided = events.iter().find(|e| matches!(e, Event::Decided { .. }));
        assert_eq!(
            decided,
            Some(&Event::Decided {
                verdict: "revert",
                pairs: 1
            })
        );
        assert!(fake.runs.borrow().values().all(|a| a == BASELINE));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stage_that_breaks_a_guardrail_reverts_every_host() {
        let state = tempfile::tempdir().unwrap();
        let mut fake = FakeFleet::new(&hosts(4), -15.0);
        fake.stage_errors_pct = 30.0;
        let (r, _) = run(&fake, state.path(), &experiment(50, 0)).await;
        let outcome = r.unwrap();
        assert!(!outcome.kept);
        let why = outcome.stage_failure.unwrap();
        assert!(why.contains("error rate 30.0 % is above"), "{why}");
        assert!(fake.runs.borrow().values().all(|a| a == BASELINE));
    }

    #[tokio::test(start_paused = true)]
    async fn recovery_puts_back_what_an_interrupted_journal_names() {
        let state = tempfile::tempdir().unwrap();
        let exp = experiment(50, 0);
        let mut j = Journal::create(
            state.path(),
            JournalRecord {
                experiment: "fleet-delay".into(),
                variant: "no-delay".into(),
                argv: vec![],
                dir: "/".into(),
                inventory: "/inv".into(),
                baseline: exp.spec().baseline.clone(),
                command_timeout_s: 5.0,
                hosts: BTreeMap::new(),
                finished: None,
            },
        )
        .unwrap();
        j.runs(&hosts(2), BASELINE).unwrap();
        j.changing(&["h3".to_owned()], "no-delay").unwrap();
        j.runs(&["h4".to_owned()], "no-delay").unwrap();
        // A second run refuses while this one is unrecovered.
        let fake = FakeFleet::new(&hosts(4), 0.0);
        let (r, _) = run(&fake, state.path(), &exp).await;
        assert!(
            r.unwrap_err()
                .to_string()
                .contains("run `smart recover` first")
        );
        for h in ["h3", "h4"] {
            fake.runs.borrow_mut().insert(h.into(), "no-delay".into());
        }
        let done = recover_with(state.path(), |_| &fake).await.unwrap();
        assert_eq!(done[0].hosts, ["h3", "h4"]);
        assert!(fake.runs.borrow().values().all(|a| a == BASELINE));
        assert_eq!(journal(state.path()).finished, Some(Finish::Recovered));
        assert!(
            recover_with(state.path(), |_| &fake)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
