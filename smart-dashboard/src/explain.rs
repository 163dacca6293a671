//! A decision in words a newcomer reads at a glance: one sentence saying what was changed (which
//! parameter values, in which file or by which command) and what it did, and the judge's reasons
//! reordered so that the one that decided comes first.

use serde_json::Value;
use smart_core::records::{DecisionKind, DecisionRecord};

use crate::format;

/// One sentence: what the variant changed and what came of it, e.g. "Set level = 4 (baseline
/// off) in /etc/nginx/conf.d/gzip.conf: p50 −11.9 %, errors 0.00 pp; kept, it is live now."
/// `definition` is the run's experiment.json; without it the sentence names the variant only.
pub(crate) fn what_changed(d: &DecisionRecord, definition: Option<&Value>) -> String {
    let params = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => format!("{k} = {s}"),
                        v => format!("{k} = {v}"),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let variant = definition
        .and_then(|def| def.get("variants"))
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("name").and_then(Value::as_str) == Some(&d.variant))
        });
    let set = params(variant.and_then(|v| v.get("params")));
    let baseline = params(definition.and_then(|def| def.get("baseline")));
    let mut what = if set.is_empty() {
        format!("Tried variant {}", d.variant)
    } else {
        format!("Set {}", set.join(", "))
    };
    if !baseline.is_empty() && !set.is_empty() {
        what.push_str(&format!(" (baseline {})", baseline.join(", ")));
    }
    let files: Vec<&str> = definition
        .and_then(|def| def.pointer("/apply/files"))
        .and_then(Value::as_array)
        .map(|fs| {
            fs.iter()
                .filter_map(|f| f.get("path").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let command: Vec<&str> = definition
        .and_then(|def| def.pointer("/apply/command/set"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !files.is_empty() {
        what.push_str(&format!(" in {}", files.join(", ")));
    } else if !command.is_empty() {
        what.push_str(&format!(" by running `{}`", command.join(" ")));
    }
    let mut effects = Vec::new();
    if let Some(p) = d.estimates.p50_change_pct {
        effects.push(format!("p50 {}", format::signed_pct(p)));
    }
    if let Some(e) = d.estimates.error_rate_change_pp {
        effects.push(format!("errors {}", format::signed_pp(e)));
    }
    let outcome = match d.decision {
        DecisionKind::Keep => "kept, it is live now",
        DecisionKind::KeptByCoach => "kept on the coach's advice, it is live now",
        DecisionKind::Revert => "reverted, the original configuration is back",
        DecisionKind::Inconclusive => "not proven either way, the original configuration is back",
        DecisionKind::Aborted => "aborted before a verdict",
    };
    if effects.is_empty() {
        format!("{what}; {outcome}.")
    } else {
        format!("{what}: {}; {outcome}.", effects.join(", "))
    }
}

/// The reasons with the one that decided first. The judge lists guardrail lines and the
/// metric's line in a fixed order; which of them decided depends on the verdict: a keep is
/// decided by "faster, meeting the required", a revert by "significantly slower", an error rate
/// above the allowed, or a guardrail (in that order), an inconclusive result by the win that
/// was too small or the data that was too little. Engine and coach lines that say why a
/// verdict was overridden (for example "it passed the keep test, but …") already come first.
pub(crate) fn deciding_first(d: &DecisionRecord) -> Vec<String> {
    let markers: &[&str] = match d.decision {
        DecisionKind::Keep => &["faster, meeting the required"],
        DecisionKind::KeptByCoach => &["the coach advised"],
        DecisionKind::Revert => &[
            "it passed the keep test, but",
            "significantly slower",
            "more than the allowed",
            "guardrail:",
        ],
        DecisionKind::Inconclusive => &[
            "short of the required",
            "confidently between",
            "too little data",
            "could exceed the allowed",
        ],
        DecisionKind::Aborted => &[],
    };
    let mut reasons = d.reasons.clone();
    let first = markers
        .iter()
        .find_map(|m| reasons.iter().position(|r| r.contains(m)));
    if let Some(i) = first {
        let decided = reasons.remove(i);
        reasons.insert(0, decided);
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(kind: DecisionKind, reasons: &[&str]) -> DecisionRecord {
        serde_json::from_value(serde_json::json!({
            "run_id": "r", "experiment": "e", "definition_hash": "h", "variant": "level-4",
            "decision": kind, "metric": "p50", "cycles": 2, "p50_change_pct": -11.9,
            "error_rate_change_pp": 0.0, "reasons": reasons,
            "started": "2026-11-20T08:00:00Z", "finished": "2026-11-20T08:10:00Z",
            "report": {}
        }))
        .unwrap()
    }

    #[test]
    fn the_sentence_names_values_file_and_outcome() {
        let def = serde_json::json!({
            "baseline": {"level": "1"},
            "variants": [{"name": "level-4", "params": {"level": "4"}}],
            "apply": {"files": [{"path": "/etc/nginx/conf.d/gzip.conf"}]}
        });
        let d = decision(DecisionKind::Keep, &[]);
        assert_eq!(
            what_changed(&d, Some(&def)),
            "Set level = 4 (baseline level = 1) in /etc/nginx/conf.d/gzip.conf: p50 \u{2212}11.9 %, errors 0.00 pp; kept, it is live now."
        );
        assert_eq!(
            what_changed(&d, None),
            "Tried variant level-4: p50 \u{2212}11.9 %, errors 0.00 pp; kept, it is live now."
        );
    }

    #[test]
    fn the_deciding_reason_comes_first() {
        let d = decision(
            DecisionKind::Revert,
            &[
                "guardrail: the variant's p99 is +40.0 % against the baseline's, above the +25 % limit",
                "p50 +9.0 % (bounds +7.0 % to +11.0 %): significantly slower than the baseline",
                "stopped after cycle 2 of 4",
            ],
        );
        let r = deciding_first(&d);
        assert!(r[0].contains("significantly slower"), "{r:?}");
        assert_eq!(r.len(), 3);
        let keep = decision(
            DecisionKind::Keep,
            &[
                "p99 +1.0 %: within the +25 % guardrail",
                "p50 -11.9 % (bounds): at least 10.4 % faster, meeting the required 2 %",
            ],
        );
        assert!(deciding_first(&keep)[0].contains("meeting the required"));
    }
}
