//! `smart run` end to end against a real nginx: each test starts its own nginx on a free loopback
//! port with its own prefix (`smart_testkit::Nginx`), and the real binary switches its site file
//! through `nginx -t` and `nginx -s reload` while probing a 200 KiB file. The experiments know
//! the answer: a `limit_rate` throttle taken away is kept and stays live, a throttle added is
//! reverted byte for byte, an A/A is not kept, a variant that answers 503 is reverted by the
//! guardrail within seconds (not after its 30 s block), and a config `nginx -t` refuses is
//! reverted before any probe. Each checks the decision, the file on disk, that nginx still
//! serves, and the audit log.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smart_core::audit::{Action, Line, Outcome};
use smart_core::engine::{BlockKind, CycleOrder, cycle_order};
use smart_core::records::{self, DecisionKind, DecisionRecord, RunRecord};
use smart_testkit::{Nginx, require_tool};

/// The size of the file the probe fetches.
const BIG: usize = 200 * 1024;
/// With it, a request for the 200 KiB file takes about a second (nginx sends the first 200 KiB
/// of a response, headers included, then waits a second for the rest); without it, a
/// millisecond or two. The probe's timeout (5 s) is far from both.
const THROTTLE: &str = "limit_rate 200k;";
/// No throttle (0 turns `limit_rate` off).
const NO_THROTTLE: &str = "limit_rate 0;";
/// Answers 503 to 13 requests in 16 (`$request_id` is random hex).
const MOSTLY_503: &str = r#"if ($request_id ~ "^[0-9a-c]") { return 503; }"#;
/// A directive nginx does not know: `nginx -t` refuses the config.
const UNKNOWN_DIRECTIVE: &str = "no_such_directive on;";

/// The site's `server` body: a health URL whose header names the live arm (the live check), and
/// the files with `{{ extra }}` in their location.
const BODY: &str = "    location = /health {\n        add_header X-Smart-Variant {{ variant }} always;\n        return 200 ok;\n    }\n    location / {\n        {{ extra }}\n    }";

/// The site body with `extra` in `location /` and `variant` in the header.
fn body(extra: &str, variant: &str) -> String {
    BODY.replace("{{ extra }}", extra)
        .replace("{{ variant }}", variant)
}

/// A real nginx serving the site as found (its header says `baseline`), a 200 KiB file, and a
/// temp dir with `smart.toml` and `experiments/`.
struct Site {
    nginx: Nginx,
    dir: tempfile::TempDir,
}

impl Site {
    /// Starts nginx with `extra` in the site as found; `None` (after one line saying so) when
    /// nginx is not installed outside CI.
    fn start(test: &str, extra: &str) -> Option<Site> {
        if !require_tool("nginx", test) {
            return None;
        }
        let nginx = Nginx::start(&body(extra, "baseline")).unwrap();
        let big: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
        fs::write(nginx.html_dir().join("big.bin"), big).unwrap();
        let dir = crate::support::smart_dir();
        Some(Site { nginx, dir })
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn site_conf(&self) -> Vec<u8> {
        fs::read(self.nginx.site_conf_path()).unwrap()
    }

    /// Writes experiment `name` over the site file with `variants` (each `(name, extra)`), the
    /// short default schedule changed by `schedule`, and `guardrails`.
    fn experiment(
        &self,
        name: &str,
        variants: &[(&str, &str)],
        schedule: Value,
        guardrails: Value,
    ) {
        // 2 s blocks at 50 req/s and 12 cycles: the exact test can keep (or revert) from cycle 8,
        // with the 1,000 requests per arm a keep needs, and a few cycles to spare for those a
        // neighbour's burst leaves out on a busy machine, so a large effect is decided whatever
        // the load.
        let mut schedule_json = json!({"cooldown_s": 0.5, "block_s": 2, "max_cycles": 12,
                                       "soak_s": 1, "max_duration_s": 240});
        for (k, v) in schedule.as_object().unwrap() {
            schedule_json[k] = v.clone();
        }
        let variants: Vec<Value> = variants
            .iter()
            .map(|(name, extra)| json!({"name": name, "params": {"extra": extra}}))
            .collect();
        let experiment = json!({
            "name": name,
            "target": {"urls": [self.nginx.url("/big.bin")], "rate_per_s": 50, "timeout_ms": 5000},
            "apply": {
                "files": [{"path": self.nginx.site_conf_path(), "template": self.nginx.site_conf(BODY)}],
                "validate": self.nginx.validate_argv(),
                "reload": self.nginx.reload_argv(),
                "health": {"url": self.nginx.url("/health"), "timeout_s": 5},
                "live_check": {"url": self.nginx.url("/health"), "header": "X-Smart-Variant",
                               "equals": "{{ variant }}"},
                "command_timeout_s": 10
            },
            "variants": variants,
            "schedule": schedule_json,
            "guardrails": guardrails,
        });
        fs::write(
            self.dir
                .path()
                .join("experiments")
                .join(format!("{name}.json")),
            serde_json::to_string_pretty(&experiment).unwrap(),
        )
        .unwrap();
    }

    /// Runs the real binary with this site's `smart.toml`.
    fn smart(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_smart"))
            .arg("--config")
            .arg(self.dir.path().join("smart.toml"))
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    }

    /// `smart run NAME` (extra `args` first), which must exit 0; returns its output and how long
    /// it took.
    fn run(&self, name: &str, args: &[&str]) -> (String, Duration) {
        let started = Instant::now();
        let mut argv = vec!["run"];
        argv.extend_from_slice(args);
        argv.push(name);
        let out = self.smart(&argv);
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "smart run {name}: {}\n{}\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        (text(&out.stdout), took)
    }

    /// The one decision on record, as `smart history --json` prints it, and its run's records.
    fn decision(&self) -> (DecisionRecord, RunRecord) {
        let out = self.smart(&["history", "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut history: Vec<DecisionRecord> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(history.len(), 1, "{history:?}");
        let decision = history.remove(0);
        let run = records::load_run(&self.state_dir(), &decision.run_id).unwrap();
        (decision, run)
    }

    /// The audit log, after `smart audit verify` found its chain intact.
    fn audit(&self) -> Vec<Line> {
        let out = self.smart(&["audit", "verify"]);
        assert!(
            out.status.success() && text(&out.stdout).contains("audit log intact"),
            "{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        fs::read_to_string(self.state_dir().join(smart_core::audit::LOG_FILE))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// A plain HTTP/1.0 GET of `path`: the status code, the live-check header and the body.
    fn get(&self, path: &str) -> (u16, Option<String>, Vec<u8>) {
        crate::support::get_with_header(self.nginx.port(), path, "X-Smart-Variant")
    }

    /// Asserts that nginx serves the config of `arm` (its live-check header) and the whole file,
    /// and returns how long the file took.
    fn assert_serves(&self, arm: &str) -> Duration {
        let (status, header, _) = self.get("/health");
        assert_eq!((status, header.as_deref()), (200, Some(arm)));
        let started = Instant::now();
        let (status, _, file) = self.get("/big.bin");
        let took = started.elapsed();
        assert_eq!((status, file.len()), (200, BIG));
        took
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The audit lines of `action`.
fn of(lines: &[Line], action: Action) -> Vec<&Line> {
    lines.iter().filter(|l| l.action == action).collect()
}

/// Checks what every run logs: every line belongs to the run, the applier's steps are there,
/// one `block` line per recorded block with its figures, and one `decision` line saying `want`.
fn check_audit(lines: &[Line], decision: &DecisionRecord, run: &RunRecord, want: &str) {
    assert!(
        lines.iter().all(|l| l.run_id == decision.run_id),
        "{lines:?}"
    );
    for action in [Action::Baseline, Action::Backup, Action::Validate] {
        assert!(!of(lines, action).is_empty(), "no {action:?} line");
    }
    let blocks = of(lines, Action::Block);
    assert_eq!(blocks.len(), run.blocks.len());
    for (line, b) in blocks.iter().zip(&run.blocks) {
        let d = &line.details;
        assert_eq!(d["block"], b.block.index, "{d}");
        assert_eq!(d["arm"], b.block.arm_name.as_str(), "{d}");
        assert_eq!(d["requests"], b.figures.requests, "{d}");
        assert_eq!(d["errors"], b.figures.errors, "{d}");
        assert_eq!(d["p50_us"], json!(b.figures.p50_us), "{d}");
    }
    let decisions = of(lines, Action::Decision);
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    let d = &decisions[0].details;
    assert_eq!(d["variant"], decision.variant.as_str(), "{d}");
    assert_eq!(d["decision"], want, "{d}");
    assert_eq!(
        d["p50_change_pct"],
        json!(decision.estimates.p50_change_pct),
        "{d}"
    );
    assert_eq!(d["reasons"], json!(decision.reasons), "{d}");
    // The decision is logged after every block it rests on.
    let position = |line: &Line| lines.iter().position(|l| l.seq == line.seq).unwrap();
    assert!(blocks.iter().all(|b| position(b) < position(decisions[0])));
}

#[test]
fn a_throttle_taken_away_is_kept_and_stays_live() {
    let Some(site) = Site::start("e2e_nginx::a_throttle_taken_away_is_kept", THROTTLE) else {
        return;
    };
    // The throttle works: the file takes about a second as found.
    let found = site.assert_serves("baseline");
    assert!(found > Duration::from_millis(700), "took {found:?}");
    site.experiment(
        "unthrottle",
        &[("no-throttle", NO_THROTTLE)],
        json!({}),
        json!({}),
    );
    let (stdout, _) = site.run("unthrottle", &[]);
    assert!(stdout.contains("no-throttle: keep"), "{stdout}");
    let (decision, run) = site.decision();
    assert_eq!(decision.decision, DecisionKind::Keep, "{decision:?}");
    let change = decision.estimates.p50_change_pct.unwrap();
    assert!(change < -50.0, "p50 change {change} %");
    // The variant's file is on disk and nginx serves it.
    assert_eq!(
        site.site_conf(),
        site.nginx
            .site_conf(&body(NO_THROTTLE, "no-throttle"))
            .as_bytes()
    );
    let now = site.assert_serves("no-throttle");
    assert!(now < Duration::from_millis(500), "took {now:?}");
    let lines = site.audit();
    check_audit(&lines, &decision, &run, "keep");
    assert_eq!(of(&lines, Action::Keep).len(), 1);
    assert!(of(&lines, Action::Revert).is_empty(), "{lines:?}");
    // The soak's blocks are logged too.
    assert!(
        run.blocks.iter().any(|b| b.block.kind == BlockKind::Soak),
        "no soak block"
    );
}

#[test]
fn a_throttle_added_is_reverted_byte_for_byte() {
    let Some(site) = Site::start("e2e_nginx::a_throttle_added_is_reverted", NO_THROTTLE) else {
        return;
    };
    let before = site.site_conf();
    site.experiment("throttle", &[("throttle", THROTTLE)], json!({}), json!({}));
    let (stdout, _) = site.run("throttle", &[]);
    assert!(stdout.contains("throttle: revert"), "{stdout}");
    let (decision, run) = site.decision();
    assert_eq!(decision.decision, DecisionKind::Revert, "{decision:?}");
    // The variant really ran and was slower.
    assert!(
        run.blocks.iter().any(|b| b.block.arm_name == "throttle"),
        "the variant was never measured"
    );
    assert_eq!(site.site_conf(), before);
    let now = site.assert_serves("baseline");
    assert!(now < Duration::from_millis(500), "took {now:?}");
    let lines = site.audit();
    check_audit(&lines, &decision, &run, "revert");
    assert!(!of(&lines, Action::Revert).is_empty(), "no revert line");
    assert!(
        of(&lines, Action::Verify)
            .iter()
            .all(|l| l.outcome == Outcome::Ok),
        "{lines:?}"
    );
    assert!(of(&lines, Action::Keep).is_empty());
}

#[test]
fn an_a_a_variant_is_not_kept() {
    let Some(site) = Site::start("e2e_nginx::an_a_a_variant_is_not_kept", NO_THROTTLE) else {
        return;
    };
    let before = site.site_conf();
    // The same config under another name (the live check needs one): many reloads, no effect.
    site.experiment(
        "same",
        &[("same", NO_THROTTLE)],
        json!({"max_cycles": 3}),
        json!({}),
    );
    site.run("same", &[]);
    let (decision, run) = site.decision();
    // The judge may revert an A/A now and then (that is its false-revert rate); it never keeps one.
    assert_ne!(decision.decision, DecisionKind::Keep, "{decision:?}");
    assert_ne!(decision.decision, DecisionKind::KeptByCoach, "{decision:?}");
    assert_eq!(site.site_conf(), before);
    site.assert_serves("baseline");
    let lines = site.audit();
    let want = serde_json::to_value(decision.decision).unwrap();
    check_audit(&lines, &decision, &run, want.as_str().unwrap());
    assert!(of(&lines, Action::Keep).is_empty());
}

#[test]
fn a_variant_answering_503_is_reverted_by_the_guardrail_within_seconds() {
    let Some(site) = Site::start("e2e_nginx::a_variant_answering_503", NO_THROTTLE) else {
        return;
    };
    let before = site.site_conf();
    // 30 s blocks, and a seed whose first cycle starts on the variant: only the guardrail can
    // end this run in seconds.
    site.experiment(
        "unavailable",
        &[("unavailable", MOSTLY_503)],
        json!({"block_s": 30, "max_cycles": 2, "max_duration_s": 600}),
        json!({"abort_error_rate_pct": 20, "abort_window_s": 1}),
    );
    let seed = (0..)
        .find(|&s| cycle_order(s, 0, 0) == CycleOrder::Baab)
        .unwrap()
        .to_string();
    let (stdout, took) = site.run("unavailable", &["--seed", &seed]);
    assert!(took < Duration::from_secs(15), "took {took:?}: {stdout}");
    let (decision, run) = site.decision();
    assert_eq!(decision.decision, DecisionKind::Revert, "{decision:?}");
    assert!(
        decision.reasons[0].contains("error rate"),
        "{:?}",
        decision.reasons
    );
    // Said once, and not followed by the shortage of data it caused.
    let guardrail = decision.reasons.iter().filter(|r| r.contains("error rate"));
    assert_eq!(guardrail.count(), 1, "{:?}", decision.reasons);
    assert!(
        !decision
            .reasons
            .iter()
            .any(|r| r.contains("too little data")),
        "{:?}",
        decision.reasons
    );
    // The variant's one block was cut short by the guardrail, and no baseline block ran.
    let [block] = &run.blocks[..] else {
        panic!("blocks: {:?}", run.blocks);
    };
    assert_eq!(block.block.arm_name, "unavailable");
    assert!(block.figures.aborted.is_some(), "{block:?}");
    assert!(block.figures.measured_s < 5.0, "{block:?}");
    assert_eq!(site.site_conf(), before);
    site.assert_serves("baseline");
    let lines = site.audit();
    check_audit(&lines, &decision, &run, "revert");
    let blocks = of(&lines, Action::Block);
    assert_eq!(blocks[0].outcome, Outcome::Failed);
    assert_eq!(
        blocks[0].details["aborted"],
        block.figures.aborted.as_deref().unwrap()
    );
    assert!(!of(&lines, Action::Revert).is_empty(), "no revert line");
}

#[test]
fn a_config_nginx_refuses_is_reverted_before_any_probe() {
    let Some(site) = Site::start("e2e_nginx::a_config_nginx_refuses", NO_THROTTLE) else {
        return;
    };
    let before = site.site_conf();
    site.experiment(
        "broken",
        &[("broken", UNKNOWN_DIRECTIVE)],
        json!({}),
        json!({}),
    );
    site.run("broken", &[]);
    let (decision, run) = site.decision();
    assert_eq!(decision.decision, DecisionKind::Revert, "{decision:?}");
    let reason = &decision.reasons[0];
    assert!(
        reason.contains("switching to broken failed") && reason.contains("no_such_directive"),
        "{:?}",
        decision.reasons
    );
    assert!(
        run.blocks.iter().all(|b| b.block.arm_name != "broken"),
        "a block measured the broken variant"
    );
    assert_eq!(site.site_conf(), before);
    site.assert_serves("baseline");
    let lines = site.audit();
    check_audit(&lines, &decision, &run, "revert");
    // The variant's file was written, `nginx -t` refused it, and the original was put back
    // before any reload: nginx never ran the broken config.
    let apply = lines
        .iter()
        .position(|l| l.action == Action::Apply && l.details["arm"] == "broken")
        .expect("no apply line for the variant");
    let next: Vec<(Action, Outcome)> = lines[apply + 1..apply + 3]
        .iter()
        .map(|l| (l.action, l.outcome))
        .collect();
    assert_eq!(
        next,
        [
            (Action::Validate, Outcome::Failed),
            (Action::Revert, Outcome::Ok)
        ]
    );
    assert!(
        lines[apply + 1].details["stderr"]
            .as_str()
            .is_some_and(|e| e.contains("unknown directive")),
        "{:?}",
        lines[apply + 1]
    );
}
