//! SIGKILL at every step boundary, and at random points, of a real child process running the
//! apply sequence; then recovery must restore the original byte for byte and close the journal.
//!
//! The child is this test binary re-run on this one test with `SMART_APPLY_CRASH_CHILD` set. It
//! kills itself with `kill -KILL` right after its k-th journal record is on disk (the observer
//! hook), which hits each boundary exactly; the random runs are killed by the parent after a
//! random delay instead.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use smart_apply::{Applier, Arm, Config, Observer, Record, RunLock};

use crate::support::params;

const CHILD: &str = "SMART_APPLY_CRASH_CHILD";
const TEST: &str = "crash::sigkill_at_every_step_boundary_and_at_random_points_then_recover";
const SITE: &str = "server {\n    gzip off;\n    listen 80;\n}\n";

/// Kills this process at the `at`-th journal record (never when 0).
struct KillAt {
    at: usize,
    seen: AtomicUsize,
}

impl Observer for KillAt {
    fn journalled(&self, _experiment: &str, _run_id: &str, _record: &Record) {
        if self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.at {
            let _ = Command::new("kill")
                .args(["-KILL", &std::process::id().to_string()])
                .status();
        }
    }
}

struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(root: &Path, n: usize) -> Fixture {
        let dir = root.join(format!("case-{n}"));
        fs::create_dir_all(dir.join("etc")).unwrap();
        fs::write(dir.join("etc/site.conf"), SITE).unwrap();
        fs::write(dir.join("sysctl.value"), "128").unwrap();
        let script = dir.join("fake-sysctl");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\nif [ $# -eq 0 ]; then cat '{0}'; else printf '%s' \"$1\" > '{0}'; fi\n",
                dir.join("sysctl.value").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        Fixture { dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn apply(&self) -> smart_core::experiment::Apply {
        let sysctl = self.dir.join("fake-sysctl");
        serde_json::from_value(json!({
            "files": [
                {"path": self.dir.join("etc/site.conf"), "edit": {"pattern": "^    gzip ", "replace": "    gzip {{ gzip }};"}},
                {"path": self.dir.join("etc/new.conf"), "template": "# {{ variant }}\n"}
            ],
            "command": {"read": [sysctl], "set": [sysctl, "{{ backlog }}"]},
            "validate": ["true"],
            "reload": ["true"],
        }))
        .unwrap()
    }

    /// Spawns the child: `mode` is `apply` or `recover`; it kills itself at record `kill_at`.
    fn spawn(&self, mode: &str, kill_at: usize) -> std::process::Child {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD, format!("{mode}|{kill_at}|{}", self.dir.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Recovers in this process and checks the originals are back and every journal is closed.
    fn recover_and_check(&self, what: &str) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // A command the killed child had just forked may hold the lock's file description for
        // a moment, until it execs (the descriptor is close-on-exec).
        let deadline = Instant::now() + Duration::from_secs(5);
        let lock = loop {
            match RunLock::acquire(&self.state()) {
                Ok(lock) => break lock,
                Err(e) if Instant::now() < deadline => {
                    assert!(
                        matches!(e.kind(), smart_apply::ErrorKind::Locked { .. }),
                        "{e}"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("{what}: {e}"),
            }
        };
        let applier = Applier::new(Config::new(&self.state()));
        rt.block_on(applier.recover(&lock))
            .unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
        assert_eq!(
            fs::read_to_string(self.dir.join("etc/site.conf")).unwrap(),
            SITE,
            "{what}"
        );
        assert!(
            !self.dir.join("etc/new.conf").exists(),
            "{what}: new.conf left behind"
        );
        assert!(
            !self.dir.join("etc/.new.conf.smart.tmp").exists(),
            "{what}: temp file left"
        );
        assert!(
            !self.dir.join("etc/.site.conf.smart.tmp").exists(),
            "{what}: temp file left"
        );
        assert_eq!(
            fs::read_to_string(self.dir.join("sysctl.value")).unwrap(),
            "128",
            "{what}"
        );
        for journal in journals(&self.state()) {
            assert!(
                closed(&journal),
                "{what}: {} is not closed",
                journal.display()
            );
        }
        // Recovery is idempotent.
        assert!(
            rt.block_on(applier.recover(&lock)).unwrap().is_empty(),
            "{what}"
        );
        smart_core::audit::verify(&self.state()).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}

fn journals(state: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(experiments) = fs::read_dir(state.join("apply")) else {
        return found;
    };
    for exp in experiments.flatten() {
        for run in fs::read_dir(exp.path()).unwrap().flatten() {
            let j = run.path().join("journal.jsonl");
            if j.exists() {
                found.push(j);
            }
        }
    }
    found
}

/// Whether the journal's last keep/close comes after its last intent (and no line is torn).
fn closed(journal: &Path) -> bool {
    let text = fs::read_to_string(journal).unwrap();
    if !text.ends_with('\n') {
        return false;
    }
    let mut closed = false;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        match v["record"].as_str().unwrap() {
            "kept" | "closed" => closed = true,
            "intent" => closed = false,
            _ => {}
        }
    }
    closed
}

fn child(spec: &str) -> ! {
    let mut parts = spec.splitn(3, '|');
    let (mode, kill_at, dir) = (
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().parse().unwrap(),
        PathBuf::from(parts.next().unwrap()),
    );
    let fixture = Fixture { dir };
    let mut config = Config::new(&fixture.state());
    config.observer = Some(Arc::new(KillAt {
        at: kill_at,
        seen: AtomicUsize::new(0),
    }));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(async {
        let lock = RunLock::acquire(&fixture.state())?;
        let applier = Applier::new(config);
        if mode == "recover" {
            applier.recover(&lock).await?;
            return Ok(());
        }
        let mut session = applier
            .begin(&lock, "crash", "run-1", &fixture.apply())
            .await?;
        let v1 = params(&[("gzip", "on"), ("backlog", "4096")]);
        let v2 = params(&[("gzip", "off; gzip_comp_level 9"), ("backlog", "512")]);
        session
            .switch_to(Arm::Variant {
                name: "v1",
                params: &v1,
            })
            .await?;
        session.switch_to(Arm::Found).await?;
        session
            .switch_to(Arm::Variant {
                name: "v2",
                params: &v2,
            })
            .await?;
        session.revert().await
    });
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            #[expect(clippy::print_stderr, reason = "the parent shows the child's error")]
            {
                eprintln!("child failed: {e}");
            }
            std::process::exit(1)
        }
    }
}

fn killed(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(9)
}

fn wait(child: std::process::Child, what: &str) -> ExitStatus {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() || killed(out.status),
        "{what}: child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.status
}

#[test]
fn sigkill_at_every_step_boundary_and_at_random_points_then_recover() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
    }
    let root = tempfile::Builder::new()
        .prefix("smart-crash-")
        .tempdir()
        .unwrap();
    let mut case = 0;
    // Every boundary: kill after the k-th journal record until a child runs to the end.
    let mut boundaries = 0;
    let mut full_run = Duration::ZERO;
    for k in 1..=200 {
        case += 1;
        let fixture = Fixture::new(root.path(), case);
        let started = Instant::now();
        let status = wait(fixture.spawn("apply", k), &format!("boundary {k}"));
        if status.success() {
            full_run = started.elapsed();
            fixture.recover_and_check("complete run");
            break;
        }
        boundaries = k;
        // Crash the recovery itself after its first record, then recover again.
        wait(
            fixture.spawn("recover", 1),
            &format!("recovery after boundary {k}"),
        );
        fixture.recover_and_check(&format!("killed after journal record {k}"));
    }
    assert!(
        boundaries >= 20,
        "only {boundaries} journal records: the sequence did not run"
    );

    // Random points, many times.
    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let initial_seed = seed;
    let window = full_run.max(Duration::from_millis(20));
    for i in 0..60 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = window.mul_f64((seed % 10_000) as f64 / 10_000.0);
        case += 1;
        let fixture = Fixture::new(root.path(), case);
        let mut child = fixture.spawn("apply", 0);
        std::thread::sleep(delay);
        let _ = child.kill();
        wait(child, &format!("random kill {i}"));
        fixture.recover_and_check(&format!(
            "random kill {i} after {delay:?} (seed {initial_seed})"
        ));
    }
}
