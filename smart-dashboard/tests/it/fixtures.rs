//! Fixed run records for the dashboard's tests and its render benchmark: runs written in the
//! state-dir layout of `smart_core::records` (and audit lines through `smart_core::audit`), with
//! deterministic numbers, so pages render the same on every machine.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use smart_core::audit::{Action, AuditLog, Entry, Outcome, format_utc};
use smart_core::engine::{
    Arm, BlockInfo, BlockKind, Bounds, Estimates, LiveConfig, LiveProgress, Phase, RunEnd, RunPlan,
    RunReport,
};
use smart_core::experiment::Metric;
use smart_core::records::{
    BLOCKS_FILE, BlockFigures, BlockRecord, BlockSamples, DECISIONS_FILE, DecisionKind,
    DecisionRecord, EXPERIMENT_FILE, RUN_FILE, RUNS_DIR, RunFile, RunState, SAMPLES_FILE,
    STATUS_FILE, Status,
};

/// 2026-11-20T08:00:00Z: when the first fixture run starts.
pub(crate) const EPOCH: u64 = 1_795_161_600;

/// One variant of a fixture run.
#[derive(Debug, Clone)]
pub(crate) struct VariantSpec {
    pub(crate) name: String,
    pub(crate) params: Vec<(String, String)>,
    /// Its typical latency, µs.
    pub(crate) p50_us: u64,
    /// Its error rate, percent.
    pub(crate) error_pct: f64,
    pub(crate) decision: DecisionKind,
    /// A coach's answer noted in the reasons.
    pub(crate) coach: Option<String>,
}

/// A fixture run.
#[derive(Debug, Clone)]
pub(crate) struct RunSpec {
    pub(crate) experiment: String,
    pub(crate) description: String,
    pub(crate) start: u64,
    pub(crate) seed: u64,
    pub(crate) base_p50_us: u64,
    pub(crate) variants: Vec<VariantSpec>,
    /// ABBA cycles per variant.
    pub(crate) cycles: u32,
    pub(crate) samples_per_block: usize,
    /// Whether the run is over (report and decisions written).
    pub(crate) finished: bool,
    /// Whether to write its audit lines (each is fsynced: slow for long histories).
    pub(crate) audit: bool,
}

impl RunSpec {
    /// The run id, as the engine makes it (from the name's letters, digits and dashes, so a
    /// hostile name in the escaping tests still gives a usable id).
    pub(crate) fn id(&self) -> String {
        let slug: String = self
            .experiment
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        smart_core::records::new_run_id(&slug, at(self.start), self.seed)
    }
}

pub(crate) fn at(unix: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix)
}

fn utc(unix: u64) -> String {
    format_utc(at(unix))
}

/// A deterministic stream of numbers in [0, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

const BLOCK_S: u64 = 30;

fn write_json<T: serde::Serialize>(path: &Path, value: &T) {
    fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

/// Writes `spec` under `state_dir` and returns its run id.
pub(crate) fn write_run(state_dir: &Path, spec: &RunSpec) -> String {
    let id = spec.id();
    let dir = state_dir.join(RUNS_DIR).join(&id);
    fs::create_dir_all(&dir).unwrap();
    let names: Vec<String> = spec.variants.iter().map(|v| v.name.clone()).collect();
    let plan = RunPlan {
        run_id: id.clone(),
        experiment: spec.experiment.clone(),
        definition_hash: format!("{:064x}", spec.seed),
        seed: spec.seed,
        variants: names.clone(),
        interleave: true,
        blocks_per_variant: 4 * spec.cycles,
        max_duration_s: 3600.0,
        expected_s: (spec.variants.len() as u64 * 4 * u64::from(spec.cycles) * BLOCK_S) as f64,
        worst_case_s: 3600.0,
        started: utc(spec.start),
    };
    let baseline: serde_json::Map<String, serde_json::Value> = spec
        .variants
        .first()
        .map(|v| {
            v.params
                .iter()
                .map(|(k, _)| (k.clone(), "off".into()))
                .collect()
        })
        .unwrap_or_default();
    let definition = serde_json::json!({
        "format_version": 1,
        "name": spec.experiment,
        "description": spec.description,
        "target": {
            "urls": ["http://127.0.0.1:8080/"],
            "headers": {"Authorization": "Bearer do-not-show", "Accept-Encoding": "gzip"},
            "rate_per_s": 50.0
        },
        "baseline": baseline,
        "apply": {
            "files": [{"path": "/etc/nginx/smart.d/exp.conf", "template": "# {{name}}\n"}],
            "validate": ["nginx", "-t"],
            "reload": ["nginx", "-s", "reload"]
        },
        "variants": spec.variants.iter().map(|v| serde_json::json!({
            "name": v.name,
            "params": v.params.iter().map(|(k, val)| (k.clone(), serde_json::Value::from(val.clone()))).collect::<serde_json::Map<_, _>>()
        })).collect::<Vec<_>>(),
        "schedule": {"block_s": BLOCK_S, "cooldown_s": 5.0, "max_cycles": spec.cycles, "interleave": true, "soak_s": 60.0, "max_duration_s": 3600.0},
        "decision": {"metric": "p50", "min_improvement_pct": 2.0, "max_error_increase_pp": 0.5, "confidence": 0.95},
        "guardrails": {"abort_error_rate_pct": 5.0, "abort_window_s": 10.0}
    });
    write_json(&dir.join(EXPERIMENT_FILE), &definition);

    let mut rng = Lcg(spec.seed);
    let mut blocks = String::new();
    let mut samples = String::new();
    let mut decisions = Vec::new();
    let mut t = spec.start + 5;
    let mut index = 0;
    let audit = AuditLog::new(state_dir);
    let log = |time: u64, action: Action, outcome: Outcome, details: serde_json::Value| {
        if !spec.audit {
            return;
        }
        audit
            .append(&Entry {
                time: at(time),
                run_id: id.clone(),
                action,
                outcome,
                details,
            })
            .unwrap();
    };
    log(
        t,
        Action::Baseline,
        Outcome::Ok,
        serde_json::json!({"validate": ["nginx", "-t"]}),
    );
    for (vi, variant) in spec.variants.iter().enumerate() {
        let variant_start = t;
        for cycle in 0..spec.cycles {
            let order = if (spec.seed >> (cycle % 64)) & 1 == 0 {
                [Arm::Baseline, Arm::Variant, Arm::Variant, Arm::Baseline]
            } else {
                [Arm::Variant, Arm::Baseline, Arm::Baseline, Arm::Variant]
            };
            for (position, arm) in order.into_iter().enumerate() {
                index += 1;
                let (p50, error_pct, arm_name) = match arm {
                    Arm::Baseline => (spec.base_p50_us, 0.05, "baseline".to_owned()),
                    Arm::Variant => (variant.p50_us, variant.error_pct, variant.name.clone()),
                };
                if position == 0 || order[position - 1] != arm {
                    log(
                        t,
                        Action::Apply,
                        Outcome::Ok,
                        serde_json::json!({"arm": arm_name, "path": "/etc/nginx/smart.d/exp.conf"}),
                    );
                    log(
                        t + 1,
                        Action::Reload,
                        Outcome::Ok,
                        serde_json::json!({"argv": ["nginx", "-s", "reload"], "exit": 0}),
                    );
                }
                let drift = 1.0 + 0.02 * (f64::from(index) / 10.0).sin();
                let lat: Vec<u64> = (0..spec.samples_per_block)
                    .map(|_| {
                        let u = rng.next().max(1e-9);
                        // A log-normal-ish spread around the arm's p50.
                        let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * rng.next()).cos();
                        (p50 as f64 * drift * (0.25 * z).exp()).max(50.0) as u64
                    })
                    .collect();
                let mut sorted = lat.clone();
                sorted.sort_unstable();
                let q = |f: f64| {
                    sorted
                        .get(((sorted.len() as f64 - 1.0) * f) as usize)
                        .copied()
                };
                let requests = BLOCK_S * 50;
                let errors = (requests as f64 * error_pct / 100.0).round() as u64;
                let started = t;
                let info = BlockInfo {
                    index,
                    kind: BlockKind::Test,
                    variant: variant.name.clone(),
                    variant_index: vi as u32 + 1,
                    arm,
                    arm_name: arm_name.clone(),
                    cycle,
                    position: position as u32,
                    block_in_variant: cycle * 4 + position as u32 + 1,
                    blocks_in_variant: 4 * spec.cycles,
                    warmup_s: 5.0,
                    duration_s: BLOCK_S as f64,
                    started: utc(started),
                };
                t += BLOCK_S + 5;
                let record = BlockRecord {
                    block: info,
                    ended: utc(t),
                    figures: BlockFigures {
                        measured_s: BLOCK_S as f64,
                        requests,
                        errors,
                        outcomes: [("ok".to_owned(), requests - errors)].into_iter().collect(),
                        p50_us: q(0.5),
                        p90_us: q(0.9),
                        p99_us: q(0.99),
                        mean_us: Some(
                            sorted.iter().sum::<u64>() as f64 / sorted.len().max(1) as f64,
                        ),
                        rate_per_s: 50.0,
                        samples: lat.len(),
                        aborted: None,
                        host: None,
                    },
                };
                blocks.push_str(&serde_json::to_string(&record).unwrap());
                blocks.push('\n');
                samples.push_str(
                    &serde_json::to_string(&BlockSamples {
                        block: index,
                        latencies_us: lat,
                    })
                    .unwrap(),
                );
                samples.push('\n');
                log(
                    t,
                    Action::Health,
                    Outcome::Ok,
                    serde_json::json!({"url": "http://127.0.0.1:8080/", "status": 200}),
                );
            }
        }
        let change =
            (variant.p50_us as f64 - spec.base_p50_us as f64) / spec.base_p50_us as f64 * 100.0;
        let mut reasons = vec![format!(
            "p50 changed by {change:+.1} % (95 % interval {:+.1} to {:+.1} %) over {} cycles; the required improvement is 2 %",
            change - 1.5,
            change + 1.5,
            spec.cycles
        )];
        if let Some(answer) = &variant.coach {
            reasons.push(format!("the coach advised keeping it: {answer}"));
        }
        if variant.decision == DecisionKind::Revert && variant.error_pct > 1.0 {
            reasons.insert(
                0,
                format!(
                    "errors rose by {:.2} pp, above the 0.50 pp allowed",
                    variant.error_pct - 0.05
                ),
            );
        }
        log(
            t,
            Action::Revert,
            Outcome::Ok,
            serde_json::json!({"restored": "/etc/nginx/smart.d/exp.conf"}),
        );
        decisions.push(DecisionRecord {
            run_id: id.clone(),
            experiment: spec.experiment.clone(),
            definition_hash: plan.definition_hash.clone(),
            variant: variant.name.clone(),
            decision: variant.decision,
            metric: Metric::P50,
            cycles: spec.cycles,
            estimates: Estimates {
                p50_change_pct: Some(change),
                p50_change_bounds_pct: Some(Bounds {
                    lower: change - 1.5,
                    upper: change + 1.5,
                }),
                error_rate_change_pp: Some(variant.error_pct - 0.05),
                error_rate_change_bounds_pp: Some(Bounds {
                    lower: variant.error_pct - 0.15,
                    upper: variant.error_pct + 0.05,
                }),
                p_value: Some(if change.abs() > 3.0 { 0.004 } else { 0.41 }),
            },
            reasons,
            started: utc(variant_start),
            finished: utc(t),
            report: serde_json::json!({"judge": "fixture"}),
        });
    }
    fs::write(dir.join(BLOCKS_FILE), blocks).unwrap();
    fs::write(dir.join(SAMPLES_FILE), samples).unwrap();
    let report = spec.finished.then(|| {
        let kept = decisions.iter().find(|d| d.decision.is_kept());
        RunReport {
            run_id: id.clone(),
            experiment: spec.experiment.clone(),
            definition_hash: plan.definition_hash.clone(),
            seed: spec.seed,
            started: plan.started.clone(),
            finished: utc(t + 60),
            end: RunEnd::Completed,
            end_reason: None,
            live: kept.map_or(LiveConfig::Original, |d| {
                LiveConfig::Variant(d.variant.clone())
            }),
            decisions: decisions.clone(),
        }
    });
    if spec.finished {
        write_json(&dir.join(DECISIONS_FILE), &decisions);
    }
    write_json(&dir.join(RUN_FILE), &RunFile { plan, report });
    id
}

/// The status of a run under way: measuring `variant` (1-based `index`), block 3 of 8.
pub(crate) fn running_status(spec: &RunSpec, variant: usize, p50_us: u64) -> Status {
    let v = &spec.variants[variant - 1];
    Status {
        state: RunState::Running,
        pid: 4242,
        run_id: spec.id(),
        experiment: spec.experiment.clone(),
        phase: Phase::Measuring,
        variant: Some(v.name.clone()),
        variant_index: Some(variant as u32),
        variants: spec.variants.len() as u32,
        arm: Some(v.name.clone()),
        block: Some(3),
        blocks: Some(4 * spec.cycles),
        elapsed_s: 312.0,
        left_s: 1290.0,
        live: Some(LiveProgress {
            warming_up: false,
            elapsed_s: 21.0,
            requests: 1050,
            errors: 2,
            rate_per_s: 50.0,
            p50_us: Some(p50_us),
        }),
        end: None,
        decisions: Vec::new(),
        updated: utc(spec.start + 312),
    }
}

pub(crate) fn write_status(state_dir: &Path, status: &Status) {
    fs::create_dir_all(state_dir).unwrap();
    write_json(&state_dir.join(STATUS_FILE), status);
}

fn variant(
    name: &str,
    params: &[(&str, &str)],
    p50_us: u64,
    error_pct: f64,
    decision: DecisionKind,
) -> VariantSpec {
    VariantSpec {
        name: name.to_owned(),
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        p50_us,
        error_pct,
        decision,
        coach: None,
    }
}

/// Three runs: gzip (one variant kept, one reverted), worker count (inconclusive, the coach
/// consulted), and a cache run under way with `status.json` saying so.
pub(crate) fn standard(state_dir: &Path) -> Vec<RunSpec> {
    let gzip = RunSpec {
        experiment: "nginx-gzip-level".to_owned(),
        description: "Does a higher gzip level pay for its CPU?".to_owned(),
        start: EPOCH,
        seed: 0x5eed_0001,
        base_p50_us: 4200,
        variants: vec![
            variant("level-4", &[("level", "4")], 3700, 0.05, DecisionKind::Keep),
            variant(
                "level-9",
                &[("level", "9")],
                5100,
                0.10,
                DecisionKind::Revert,
            ),
        ],
        cycles: 2,
        samples_per_block: 300,
        finished: true,
        audit: true,
    };
    let mut workers = RunSpec {
        experiment: "nginx-workers".to_owned(),
        description: "One worker per core, or auto?".to_owned(),
        start: EPOCH + 86_400,
        seed: 0x5eed_0002,
        base_p50_us: 3700,
        variants: vec![variant(
            "auto",
            &[("workers", "auto")],
            3650,
            0.05,
            DecisionKind::Inconclusive,
        )],
        cycles: 2,
        samples_per_block: 300,
        finished: true,
        audit: true,
    };
    workers.variants[0].coach =
        Some("the estimate is within noise; a longer test would not change it".to_owned());
    let cache = RunSpec {
        experiment: "nginx-file-cache".to_owned(),
        description: "Cache open file descriptors.".to_owned(),
        start: EPOCH + 2 * 86_400,
        seed: 0x5eed_0003,
        base_p50_us: 3650,
        variants: vec![variant(
            "cache-1000",
            &[("max", "1000")],
            3300,
            0.05,
            DecisionKind::Keep,
        )],
        cycles: 1,
        samples_per_block: 300,
        finished: false,
        audit: true,
    };
    for spec in [&gzip, &workers, &cache] {
        write_run(state_dir, spec);
    }
    write_status(state_dir, &running_status(&cache, 1, 3310));
    vec![gzip, workers, cache]
}

/// `n` finished runs, one every six hours, with two variants each and realistic reasons:
/// the history of a server that has run for a while.
pub(crate) fn history(state_dir: &Path, n: usize, samples_per_block: usize) -> Vec<RunSpec> {
    let kinds = [
        DecisionKind::Revert,
        DecisionKind::Inconclusive,
        DecisionKind::Keep,
        DecisionKind::Revert,
        DecisionKind::Aborted,
    ];
    let mut base = 5000u64;
    let mut specs = Vec::new();
    for i in 0..n {
        let first = kinds[i % kinds.len()];
        let spec = RunSpec {
            experiment: [
                "nginx-gzip-level",
                "nginx-workers",
                "nginx-file-cache",
                "sysctl-somaxconn",
            ][i % 4]
                .to_owned(),
            description: "An experiment from the example set, run on schedule.".to_owned(),
            start: EPOCH - (n as u64) * 6 * 3600 + i as u64 * 6 * 3600,
            seed: 0xabc0_0000 + i as u64,
            base_p50_us: base,
            variants: vec![
                variant(
                    "variant-a",
                    &[("level", "4")],
                    if first == DecisionKind::Keep {
                        base * 95 / 100
                    } else {
                        base * 103 / 100
                    },
                    0.05,
                    first,
                ),
                variant(
                    "variant-b",
                    &[("level", "9")],
                    base * 110 / 100,
                    0.1,
                    DecisionKind::Revert,
                ),
            ],
            cycles: 2,
            samples_per_block,
            finished: true,
            audit: false,
        };
        if first == DecisionKind::Keep {
            // A floor, so that long histories (the benchmark's) keep latencies of a real server.
            base = (base * 95 / 100).max(1000);
        }
        write_run(state_dir, &spec);
        specs.push(spec);
    }
    specs
}

/// The standard runs plus one with the long texts real servers produce: a long experiment name,
/// long variant names, parameter values that are paths, a long coach answer and a revert whose
/// errors rose (so its "Why" has three reasons). For the layout test.
pub(crate) fn long_texts(state_dir: &Path) -> Vec<RunSpec> {
    let mut specs = standard(state_dir);
    let mut long = RunSpec {
        experiment: "nginx-proxy-buffering-and-upstream-keepalive-for-the-api-gateway-backends"
            .to_owned(),
        description: "Does buffering upstream responses to /var/lib/nginx/proxy-temp/api-gateway-backends-eu-west-1 and keeping 64 idle upstream connections lower the API's median latency without raising its errors?".to_owned(),
        start: EPOCH + 3 * 86_400,
        seed: 0x5eed_0004,
        base_p50_us: 12_400,
        variants: vec![
            variant(
                "proxy-buffering-on-with-temp-path-on-the-local-ssd-and-keepalive-64",
                &[
                    (
                        "proxy_temp_path",
                        "/var/lib/nginx/proxy-temp/api-gateway-backends-eu-west-1/ssd-scratch-volume",
                    ),
                    ("keepalive", "64"),
                ],
                11_100,
                0.05,
                DecisionKind::Inconclusive,
            ),
            variant(
                "proxy-buffering-off-keepalive-256",
                &[("proxy_buffering", "off"), ("keepalive", "256")],
                12_900,
                2.4,
                DecisionKind::Revert,
            ),
        ],
        cycles: 2,
        samples_per_block: 200,
        finished: true,
        audit: true,
    };
    long.variants[0].coach = Some(
        "the median improved by about ten percent but the interval still reaches the two percent threshold; with the upstream pool at https://api-gateway-backends.internal.example.com:8443/healthz/deep-check?include=dependencies a longer test would likely settle it".to_owned(),
    );
    write_run(state_dir, &long);
    specs.push(long);
    specs
}
