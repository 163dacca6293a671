//! Shared helpers: a coach from a `[coach]` table, decisions and judgements to send, and the
//! coach's lines of the audit log.

use std::path::Path;

use serde_json::json;
use smart_coach::{CoachConfig, RemoteCoach};
use smart_core::audit::{Action, Line};
use smart_core::engine::{Bounds, Estimates, Judgement, Verdict};
use smart_core::records::DecisionRecord;

/// The token every test uses; no file a run writes may contain it.
pub(crate) const TOKEN: &str = "tok-3f9a1c-SECRET-b7e2";

/// A coach for `url` with extra `[coach]` lines, its token from the environment variable
/// `COACH_TOKEN` (looked up in a fake environment holding [`TOKEN`]).
pub(crate) fn coach(url: &str, extra: &str, state_dir: &Path) -> RemoteCoach {
    let text = format!("url = \"{url}\"\ntoken_env = \"COACH_TOKEN\"\n{extra}");
    let table: toml::Table = toml::from_str(&text).unwrap();
    let env = |name: &str| (name == "COACH_TOKEN").then(|| TOKEN.to_owned());
    let config = CoachConfig::from_table(&table, Path::new("smart.toml"), &env)
        .unwrap_or_else(|e| panic!("{e}"));
    RemoteCoach::new(config, state_dir).unwrap()
}

/// A decision on `variant` of run `run_id`.
pub(crate) fn decision(run_id: &str, variant: &str) -> DecisionRecord {
    serde_json::from_value(json!({
        "run_id": run_id, "experiment": "gzip-level", "definition_hash": "ab12",
        "variant": variant, "decision": "inconclusive", "metric": "p50", "cycles": 3,
        "p50_change_pct": -1.5, "p50_change_bounds_pct": {"lower": -4.0, "upper": 1.0},
        "error_rate_change_pp": 0.0, "error_rate_change_bounds_pp": {"lower": -0.1, "upper": 0.1},
        "p_value": 0.2, "reasons": ["not enough evidence"],
        "started": "2026-11-26T20:00:00.000Z", "finished": "2026-11-26T20:05:00.000Z",
        "report": {"baseline": {"p50_us": 20000}, "candidate": {"p50_us": 19700}}
    }))
    .unwrap()
}

/// An inconclusive judgement that a coach may keep (no guardrail, small error bound, faster).
pub(crate) fn judgement() -> Judgement {
    Judgement {
        verdict: Verdict::Inconclusive,
        cycles: 3,
        metric_change_pct: Some(-1.5),
        estimates: Estimates {
            p50_change_pct: Some(-1.5),
            p50_change_bounds_pct: Some(Bounds {
                lower: -4.0,
                upper: 1.0,
            }),
            error_rate_change_pp: Some(0.0),
            error_rate_change_bounds_pp: Some(Bounds {
                lower: -0.1,
                upper: 0.1,
            }),
            p_value: Some(0.2),
        },
        guardrail: None,
        reasons: vec!["not enough evidence".to_owned()],
        report: json!({"judge": "test"}),
    }
}

/// The coach's lines of the audit log in `state_dir`, checking the whole chain first.
pub(crate) fn coach_lines(state_dir: &Path) -> Vec<Line> {
    if !state_dir.join(smart_core::audit::LOG_FILE).exists() {
        return Vec::new();
    }
    smart_core::audit::verify(state_dir).unwrap();
    std::fs::read_to_string(state_dir.join(smart_core::audit::LOG_FILE))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Line>(l).unwrap())
        .filter(|l| l.action == Action::Coach)
        .collect()
}
