//! What `smart run` says when its queue is empty, and how to run a decided experiment again.

use std::path::Path;

use smart_core::records::{DecisionKind, DecisionRecord};

/// "nothing to run …", then the next step: naming an experiment runs it again whatever its
/// decision, which is what an inconclusive result may call for (issue 16: the message gave no
/// hint). `history` is every decision, oldest first.
pub(super) fn message(experiments_dir: &Path, history: &[DecisionRecord]) -> String {
    let mut text = format!(
        "nothing to run: every experiment in {} has a decision for its current definition",
        experiments_dir.display()
    );
    // The experiments whose newest run left a variant inconclusive, in order of that run.
    let mut last_run: Vec<(&str, &str)> = Vec::new();
    for d in history {
        last_run.retain(|(experiment, _)| *experiment != d.experiment);
        last_run.push((&d.experiment, &d.run_id));
    }
    let inconclusive: Vec<&str> = last_run
        .iter()
        .filter(|(experiment, run)| {
            history.iter().any(|d| {
                d.run_id == *run
                    && d.experiment == *experiment
                    && d.decision == DecisionKind::Inconclusive
            })
        })
        .map(|(experiment, _)| *experiment)
        .collect();
    match inconclusive.as_slice() {
        [] => text.push_str(
            "\n(`smart run NAME` runs an experiment again, decided or not; editing its file queues it too)",
        ),
        names => text.push_str(&format!(
            "\ninconclusive last time: {}; `smart run {}` runs it again (more cycles in its schedule give a longer test a better chance to decide)",
            names.join(", "),
            names[names.len() - 1]
        )),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(experiment: &str, run: &str, kind: DecisionKind) -> DecisionRecord {
        serde_json::from_value(serde_json::json!({
            "run_id": run, "experiment": experiment, "definition_hash": "h", "variant": "v",
            "decision": kind, "metric": "p50", "cycles": 2, "reasons": [],
            "started": "2026-11-20T08:00:00Z", "finished": "2026-11-20T08:10:00Z", "report": {}
        }))
        .unwrap()
    }

    #[test]
    fn after_an_inconclusive_result_it_says_how_to_run_it_again() {
        let history = [
            decision("gzip", "r1", DecisionKind::Inconclusive),
            decision("workers", "r2", DecisionKind::Inconclusive),
            decision("gzip", "r3", DecisionKind::Keep),
        ];
        let text = message(Path::new("/etc/smart/experiments"), &history);
        assert_eq!(
            text,
            "nothing to run: every experiment in /etc/smart/experiments has a decision for its current definition\n\
             inconclusive last time: workers; `smart run workers` runs it again (more cycles in its schedule give a longer test a better chance to decide)"
        );
        let text = message(Path::new("x"), &history[2..]);
        assert!(
            text.ends_with(
                "runs an experiment again, decided or not; editing its file queues it too)"
            ),
            "{text}"
        );
    }
}
