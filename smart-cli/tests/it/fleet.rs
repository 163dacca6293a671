//! Fleet experiments on real parts: four demo targets on loopback ports are the "hosts" (an
//! inventory with `ansible_connection=local` and per-host vars naming each one's config file),
//! real ansible-core (Debian's) applies examples/fleet/playbook.yml to them (write the config,
//! SIGHUP), and a real Prometheus scrapes their `/metrics` every 500 ms with a `host` label per
//! target. Decisions are driven only by a 50 ms injected delay, far beyond timing noise; every
//! test asserts each host's config bytes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use smart_demo_target::DemoTarget;
use smart_testkit::require_tool;

use crate::support::{Prometheus, Visitors, output_text};

const HOSTS: [&str; 4] = ["h1", "h2", "h3", "h4"];

fn config(delay_ms: u32) -> String {
    format!("cache = true\ncompression_level = 0\ndelay_ms = {delay_ms}\n")
}

struct Fleet {
    dir: tempfile::TempDir,
    targets: Vec<(tokio::runtime::Runtime, Option<DemoTarget>)>,
    prometheus: Prometheus,
    visitors: Option<Visitors>,
}

impl Fleet {
    /// Four hosts running `delay_ms`, their inventory (`broken`: a host whose config path cannot
    /// be written), Prometheus scraping them, visitors loading them.
    fn start(test: &str, delay_ms: u32, broken: Option<&str>) -> Option<Fleet> {
        if !require_tool("prometheus", test)
            || !require_tool("ansible-playbook", test)
            || !require_tool("ansible-inventory", test)
        {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut targets = Vec::new();
        let mut inventory = String::from("[web]\n");
        let mut scrape = String::new();
        for host in HOSTS {
            let path = dir.path().join(format!("{host}.toml"));
            fs::write(&path, config(delay_ms)).unwrap();
            let (runtime, target) = crate::support::demo_target(&path);
            // A path below a regular file: no one, not even root, can write it.
            let written = if broken == Some(host) {
                path.join("config.toml")
            } else {
                path.clone()
            };
            inventory.push_str(&format!(
                "{host} ansible_connection=local demo_config={} demo_pid={}\n",
                written.display(),
                std::process::id()
            ));
            scrape.push_str(&format!(
                "      - targets: ['{}']\n        labels: {{host: {host}}}\n",
                target.addr()
            ));
            targets.push((runtime, Some(target)));
        }
        inventory.push_str("\n[web:vars]\nansible_python_interpreter=/usr/bin/python3\n");
        fs::write(dir.path().join("inventory.ini"), inventory).unwrap();
        fs::copy(example("playbook.yml"), dir.path().join("playbook.yml")).unwrap();
        fs::write(dir.path().join("smart.toml"), crate::support::SMART_TOML).unwrap();
        let prometheus = Prometheus::start(dir.path(), &scrape);
        let mut fleet = Fleet {
            dir,
            targets,
            prometheus,
            visitors: None,
        };
        fleet.visit();
        // A few scrapes of traffic before the first period.
        std::thread::sleep(Duration::from_secs(3));
        Some(fleet)
    }

    /// Three visitors per host in a closed loop with a 10 ms pause.
    fn visit(&mut self) {
        let ports: Vec<u16> = self
            .targets
            .iter()
            .map(|(_, t)| t.as_ref().unwrap().addr().port())
            .collect();
        self.visitors = Some(Visitors::start(&ports, 3));
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The example experiment, pointed at this fleet and given a short schedule.
    fn experiment(&self, baseline: u32, variant: u32) -> PathBuf {
        let mut e: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(example("fleet-delay.json")).unwrap())
                .unwrap();
        e["fleet"]["period_s"] = json!(2);
        e["fleet"]["settle_s"] = json!(1);
        e["fleet"]["max_pairs"] = json!(4);
        e["fleet"]["stages_pct"] = json!([50, 100]);
        e["fleet"]["stage_s"] = json!(2);
        e["fleet"]["seed"] = json!(7);
        e["fleet"]["command_timeout_s"] = json!(120);
        e["measure"]["prometheus"]["url"] =
            json!(format!("http://127.0.0.1:{}", self.prometheus.port));
        e["measure"]["prometheus"]["scrape_interval_s"] = json!(0.5);
        e["decision"]["confidence"] = json!(0.9);
        e["baseline"]["delay_ms"] = json!(baseline);
        e["variant"] = json!({"name": format!("delay-{variant}"), "params": {"delay_ms": variant}});
        let path = self.path("fleet.json");
        fs::write(&path, serde_json::to_string_pretty(&e).unwrap()).unwrap();
        path
    }

    fn smart(&self, args: &[&str]) -> Output {
        crate::support::smart(self.dir.path(), args)
    }

    /// Every host's config file's bytes.
    fn configs(&self) -> BTreeMap<&'static str, String> {
        HOSTS
            .iter()
            .map(|h| {
                (
                    *h,
                    fs::read_to_string(self.path(&format!("{h}.toml"))).unwrap(),
                )
            })
            .collect()
    }

    fn all(&self, delay_ms: u32) -> BTreeMap<&'static str, String> {
        HOSTS.iter().map(|h| (*h, config(delay_ms))).collect()
    }

    /// What the running servers have loaded.
    fn loaded(&self) -> Vec<u64> {
        self.targets
            .iter()
            .map(|(_, t)| t.as_ref().unwrap().config().delay_ms)
            .collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        drop(self.visitors.take());
        for (runtime, target) in &mut self.targets {
            if let Some(target) = target.take() {
                runtime.block_on(target.shutdown());
            }
        }
    }
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/fleet")
        .join(name)
}

/// A GET over HTTP/1.0; the whole response, or `None`.
#[test]
fn the_example_fleet_experiment_validates() {
    let out = crate::support::smart(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &[
            "fleet",
            "validate",
            example("fleet-delay.json").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", output_text(&out));
    // `smart validate` takes a fleet file too.
    let example = example("fleet-delay.json");
    let out = crate::support::smart(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["validate", example.to_str().unwrap()],
    );
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("ok (fleet experiment `fleet-delay`"),
        "{text}"
    );
}

#[test]
fn fleet_keeps_a_large_win_and_promotes_it_to_every_host() {
    let Some(fleet) = Fleet::start("fleet_keeps_a_large_win", 50, None) else {
        return;
    };
    let file = fleet.experiment(50, 0);
    let out = fleet.smart(&["fleet", "run", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", output_text(&out));
    let text = output_text(&out);
    assert!(
        text.contains("kept `delay-0`: promoted to every host"),
        "{text}"
    );
    assert_eq!(fleet.configs(), fleet.all(0), "{text}");
    assert_eq!(fleet.loaded(), [0, 0, 0, 0]);
}

#[test]
fn fleet_reverts_a_large_loss_on_every_host() {
    let Some(fleet) = Fleet::start("fleet_reverts_a_large_loss", 0, None) else {
        return;
    };
    let file = fleet.experiment(0, 50);
    let out = fleet.smart(&["fleet", "run", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", output_text(&out));
    let text = output_text(&out);
    assert!(text.contains("delay-50: revert"), "{text}");
    assert_eq!(fleet.configs(), fleet.all(0), "{text}");
    assert_eq!(fleet.loaded(), [0, 0, 0, 0]);
}

#[test]
fn fleet_names_a_failing_host_and_puts_its_group_back() {
    let Some(fleet) = Fleet::start("fleet_names_a_failing_host", 50, Some("h3")) else {
        return;
    };
    let file = fleet.experiment(50, 0);
    let out = fleet.smart(&["fleet", "run", file.to_str().unwrap()]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("host(s) h3 failed to switch"), "{text}");
    assert!(text.contains("task `Write the config`"), "{text}");
    assert!(text.contains("run `smart recover`"), "{text}");
    assert_eq!(fleet.configs(), fleet.all(50), "{text}");
    assert_eq!(fleet.loaded(), [50, 50, 50, 50]);
}

#[test]
fn fleet_coordinator_killed_mid_experiment_is_recovered_on_every_host() {
    let Some(fleet) = Fleet::start("fleet_coordinator_killed", 50, None) else {
        return;
    };
    let file = fleet.experiment(50, 0);
    let mut child = Command::new(env!("CARGO_BIN_EXE_smart"))
        .args(["fleet", "run", file.to_str().unwrap()])
        .current_dir(fleet.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some hosts ran the variant, then kill it in the middle of the next switch: an
    // ansible-playbook it started is still writing hosts, and recovery must stop it first.
    let journal = fleet.path("state/fleet/fleet-delay.json");
    let states = || -> Vec<serde_json::Value> {
        let text = fs::read_to_string(&journal).unwrap_or_default();
        let j: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        j["hosts"]
            .as_object()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut ran_variant = false;
    loop {
        assert!(Instant::now() < deadline, "no switch seen within 180 s");
        let now = states();
        let changing = now.iter().any(|s| s["state"] == "changing");
        ran_variant |= !changing
            && now
                .iter()
                .any(|s| s["state"] == "runs" && s["arm"] == "delay-0");
        let running = fs::read_dir(fleet.path("state/fleet/running"))
            .map(|d| d.count())
            .unwrap_or(0);
        if ran_variant && changing && running > 0 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "smart ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = fleet.smart(&["recover", "--json"]);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    let recovered: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    crate::support::assert_schema("recover", &recovered);
    let left = fs::read_dir(fleet.path("state/fleet/running"))
        .unwrap()
        .count();
    assert_eq!(
        left, 0,
        "recovery stops the orphaned ansible-playbook and forgets it"
    );
    assert_eq!(
        recovered["fleet"][0]["experiment"], "fleet-delay",
        "{recovered:#}"
    );
    assert!(
        !recovered["fleet"][0]["hosts"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the hosts put back are named: {recovered:#}"
    );
    assert_eq!(fleet.configs(), fleet.all(50), "{text}");
    assert_eq!(fleet.loaded(), [50, 50, 50, 50]);
    // A second recover has nothing left to do.
    let again = fleet.smart(&["recover"]);
    assert!(
        output_text(&again).contains("nothing to recover"),
        "{}",
        output_text(&again)
    );
}

#[test]
fn fleet_stopped_by_sigterm_puts_every_host_back_and_exits_5() {
    let Some(fleet) = Fleet::start("fleet_stopped_by_sigterm", 50, None) else {
        return;
    };
    let file = fleet.experiment(50, 0);
    let mut child = Command::new(env!("CARGO_BIN_EXE_smart"))
        .args(["fleet", "run", file.to_str().unwrap()])
        .current_dir(fleet.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let journal = fleet.path("state/fleet/fleet-delay.json");
    let deadline = Instant::now() + Duration::from_secs(180);
    while !fs::read_to_string(&journal).is_ok_and(|t| t.contains("\"delay-0\"")) {
        assert!(Instant::now() < deadline, "no switch seen within 180 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "smart ended before the stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("stop requested"), "{text}");
    assert_eq!(fleet.configs(), fleet.all(50), "{text}");
    assert_eq!(fleet.loaded(), [50, 50, 50, 50]);
    let recover = fleet.smart(&["recover"]);
    assert!(
        output_text(&recover).contains("nothing to recover"),
        "{}",
        output_text(&recover)
    );
}

#[test]
fn a_bad_fleet_experiment_is_named_field_by_field_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut e: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(example("fleet-delay.json")).unwrap()).unwrap();
    e["fleet"]["period_s"] = json!(10);
    e["apply"]["argv"] = json!(["ansible-playbook", "playbook.yml"]);
    let path = dir.path().join("bad.json");
    fs::write(&path, e.to_string()).unwrap();
    let out = crate::support::smart(dir.path(), &["validate", "bad.json"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("bad.json: fleet.period_s: 10 s is shorter than 4 scrape intervals (60 s)"),
        "{text}"
    );
    assert!(
        text.contains("bad.json: apply.argv: no argument holds `{{ hosts }}`"),
        "{text}"
    );
}
