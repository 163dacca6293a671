//! Fault injection on real filesystems: the state dir is a small tmpfs of its own (in a private
//! mount namespace, so nothing outlives the test and the host's mounts are never touched), filled
//! up or made read-only at each step of a real `smart run` against a real nginx; also an
//! immutable state dir, a config dir smart may not read (smart unprivileged, through `setpriv`),
//! and a reload that hangs. The config dir (nginx's prefix, under /tmp) is always on another
//! filesystem than the state dir.
//!
//! For every point it asserts what a user needs: when smart exits, nginx serves the original
//! config (five answers over fresh connections), the site file holds the original bytes, the
//! exit code and message name the real cause, and nothing written is lost (once the fault is
//! cleared, `smart recover` and `smart audit verify` succeed, and a restore that could not be
//! recorded is recorded as an `audit_gap` line).
//!
//! `cargo test -p smart-cli --test it faults -- --nocapture` prints the table that
//! docs/security.md shows. Each point runs in a child process of this test binary started with
//! `unshare --mount --propagation private`; without mount namespaces (not root, no util-linux)
//! the test is skipped with a notice outside CI and fails under CI.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use smart_testkit::{Nginx, require_tool};

/// Set in the child process to the point it injects.
const POINT_ENV: &str = "SMART_FAULT_POINT";
/// The child's one line of result, for the table.
const RESULT: &str = "FAULT-RESULT\t";

/// Each point and what it does, in the table's words.
const POINTS: &[(&str, &str)] = &[
    (
        "full-before-run",
        "state dir (1 MiB tmpfs) full before `smart run`",
    ),
    (
        "full-after-backup",
        "state dir filled as soon as the journal shows the backups taken",
    ),
    (
        "full-mid-variant",
        "state dir filled while the variant is live, then `smart recover` on the full disk",
    ),
    (
        "full-during-restore",
        "state dir filled as smart starts putting the original back",
    ),
    (
        "read-only-mid-variant",
        "state dir made read-only while the variant is live (a read-only mount of the same tmpfs), then `smart recover` on it",
    ),
    (
        "killed-then-full",
        "`smart run` SIGKILLed while the variant is live, state dir filled, then `smart recover`",
    ),
    (
        "killed-then-read-only",
        "`smart run` SIGKILLed while the variant is live, state dir remounted read-only, then `smart recover`",
    ),
    (
        "immutable-state-dir",
        "state dir immutable (`chattr +i`, else a read-only bind mount) before the run",
    ),
    (
        "config-dir-forbidden",
        "`smart run` as nobody (`setpriv`, no CAP_DAC_OVERRIDE): the config dir is not writable for it",
    ),
    (
        "reload-hangs",
        "the variant's reload hangs; `command_timeout_s` is 2",
    ),
];

/// The site: `/health` answers with a header naming the live arm (the live check).
const BODY: &str = "    location = /health {\n        add_header X-Smart-Variant {{ variant }} always;\n        return 200 ok;\n    }\n    location / { }";

#[test]
fn fault_injection_suite() {
    if let Ok(point) = std::env::var(POINT_ENV) {
        child(&point);
        return;
    }
    let test = "fault_injection_suite";
    if !require_tool("nginx", test) || !require_tool("unshare", test) {
        return;
    }
    let namespaces = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !namespaces {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test} needs mount namespaces (root or CAP_SYS_ADMIN, util-linux's unshare), which CI must give"
        );
        #[expect(clippy::print_stderr, reason = "the one-line skip notice")]
        {
            eprintln!(
                "skipped {test}: mount namespaces are unavailable (run as root with util-linux: apt-get install util-linux)"
            );
        }
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut table = String::from(
        "| point | what is injected | served when smart exits | site file | exit code | message names |\n|---|---|---|---|---|---|\n",
    );
    for (name, what) in POINTS {
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--"])
            .arg(&exe)
            .args([
                "--exact",
                "faults::fault_injection_suite",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(POINT_ENV, name)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "point {name} failed:\n{stdout}\n{stderr}"
        );
        let row = stdout
            .lines()
            .find_map(|l| l.split_once(RESULT).map(|(_, row)| row))
            .unwrap_or_else(|| panic!("point {name} printed no result:\n{stdout}\n{stderr}"));
        let cells: Vec<&str> = row.split('\t').collect();
        table.push_str(&format!(
            "| {name} | {what} | {} | {} | {} | {} |\n",
            cells[0], cells[1], cells[2], cells[3]
        ));
    }
    #[expect(clippy::print_stdout, reason = "the table for docs/security.md")]
    {
        println!("{table}");
    }
}

/// A real nginx whose site says `baseline`, `smart.toml`, one experiment with one variant `v`,
/// and the state dir (a tmpfs mounted by the point).
pub(crate) struct Site {
    pub(crate) nginx: Nginx,
    pub(crate) dir: tempfile::TempDir,
}

impl Site {
    pub(crate) fn start(extra_apply: serde_json::Value) -> Site {
        let nginx = Nginx::start(&BODY.replace("{{ variant }}", "baseline")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("experiments")).unwrap();
        fs::create_dir(dir.path().join("state")).unwrap();
        fs::write(dir.path().join("smart.toml"), crate::support::SMART_TOML).unwrap();
        let mut apply = json!({
            "files": [{"path": nginx.site_conf_path(), "template": nginx.site_conf(BODY)}],
            "validate": nginx.validate_argv(),
            "reload": nginx.reload_argv(),
            "health": {"url": nginx.url("/health"), "timeout_s": 5},
            "live_check": {"url": nginx.url("/health"), "header": "X-Smart-Variant",
                           "equals": "{{ variant }}"},
            "command_timeout_s": 10
        });
        for (k, v) in extra_apply.as_object().unwrap() {
            apply[k] = v.clone();
        }
        let experiment = json!({
            "name": "faults",
            "target": {"urls": [nginx.url("/health")], "rate_per_s": 20, "timeout_ms": 2000},
            "apply": apply,
            "variants": [{"name": "v", "params": {}}],
            "schedule": {"cooldown_s": 0.2, "block_s": 1, "max_cycles": 4, "soak_s": 1,
                         "max_duration_s": 60},
        });
        fs::write(
            dir.path().join("experiments/faults.json"),
            serde_json::to_string_pretty(&experiment).unwrap(),
        )
        .unwrap();
        Site { nginx, dir }
    }

    pub(crate) fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The real binary with this site's `smart.toml`, optionally behind `wrapper` (`setpriv`).
    pub(crate) fn command(&self, wrapper: &[&str], args: &[&str]) -> Command {
        let mut command = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(env!("CARGO_BIN_EXE_smart"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_smart")),
        };
        command
            .arg("--config")
            .arg(self.dir.path().join("smart.toml"))
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    pub(crate) fn smart(&self, args: &[&str]) -> Output {
        self.command(&[], args).output().unwrap()
    }

    /// `smart run faults` with `fault` applied by a watcher thread the moment `when` holds for
    /// the journal's records (`None`: never).
    fn run_with_fault(
        &self,
        when: Option<fn(&[serde_json::Value]) -> bool>,
        fault: impl FnOnce() + Send + 'static,
    ) -> Output {
        let done = Arc::new(AtomicBool::new(false));
        let watcher = when.map(|when| {
            let state = self.state();
            let done = done.clone();
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    if when(&journal(&state)) {
                        fault();
                        return true;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                false
            })
        });
        let out = self.smart(&["run", "faults"]);
        done.store(true, Ordering::SeqCst);
        if let Some(w) = watcher {
            assert!(
                w.join().unwrap(),
                "the fault was never injected:\n{}",
                text(&out)
            );
        }
        out
    }
}

/// Starts `smart run faults` and SIGKILLs it once the variant is live.
pub(crate) fn kill_mid_variant(site: &Site) {
    let mut child = site.command(&[], &["run", "faults"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !variant_live(&journal(&site.state())) {
        assert!(Instant::now() < deadline, "the variant never went live");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        serves(&site.nginx),
        "v",
        "the variant was live when smart was killed"
    );
}

/// Every journal record of every run in `state`, in order (a torn line is skipped).
pub(crate) fn journal(state: &Path) -> Vec<serde_json::Value> {
    let mut records = Vec::new();
    let Ok(experiments) = fs::read_dir(state.join("apply")) else {
        return records;
    };
    for experiment in experiments.flatten() {
        for run in fs::read_dir(experiment.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let text = fs::read_to_string(run.path().join("journal.jsonl")).unwrap_or_default();
            records.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
        }
    }
    records
}

fn is(record: &serde_json::Value, kind: &str) -> bool {
    record["record"] == kind
}

/// The variant is live.
pub(crate) fn variant_live(records: &[serde_json::Value]) -> bool {
    records.iter().any(|r| is(r, "live") && r["arm"] == "v")
}

fn backed_up(records: &[serde_json::Value]) -> bool {
    records.iter().any(|r| is(r, "backed_up"))
}

/// After the variant went live, an intent to write a file: smart is putting the original back.
fn restoring(records: &[serde_json::Value]) -> bool {
    records
        .iter()
        .skip_while(|r| !(is(r, "live") && r["arm"] == "v"))
        .any(|r| is(r, "intent") && r["op"]["op"] == "write")
}

/// Fills the filesystem of `dir` to the last byte.
fn fill(dir: &Path) {
    let mut file = fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![0u8; 4096];
    while file.write_all(&chunk).is_ok() {}
    while file.write_all(&[0]).is_ok() {}
    let _ = file.sync_all();
}

fn mount(args: &[&str]) {
    let out = Command::new("mount").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "mount {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mount_tmpfs(dir: &Path, options: &str) {
    mount(&[
        "-t",
        "tmpfs",
        "-o",
        options,
        "tmpfs",
        &dir.display().to_string(),
    ]);
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `X-Smart-Variant` header of one answer of `/health`, over a fresh connection.
fn served(nginx: &Nginx) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", nginx.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .lines()
        .find_map(|l| l.strip_prefix("X-Smart-Variant: "))
        .unwrap_or("(no header)")
        .trim()
        .to_owned()
}

/// What nginx serves: the same value on five answers in a row over fresh connections (an old
/// worker may answer one or two right after a reload), waiting up to 5 s for that.
pub(crate) fn serves(nginx: &Nginx) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let first = served(nginx);
        if (1..5).all(|_| served(nginx) == first) || Instant::now() > deadline {
            return first;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `smart recover` succeeds on the faulty (`what`) state dir and the original serves.
fn recover_restores(site: &Site, what: &str) {
    let recover = site.smart(&["recover"]);
    assert!(
        recover.status.success(),
        "recover on a {what} state dir: {}",
        text(&recover)
    );
    assert_eq!(serves(&site.nginx), "baseline", "{}", text(&recover));
}

/// Runs one point (in the child, inside its own mount namespace) and prints its result line.
fn child(point: &str) {
    let reload_hangs = point == "reload-hangs";
    let site = if reload_hangs {
        // A reload that hangs when the variant's config is on disk, as a wedged reload would.
        let script = std::env::temp_dir().join(format!("smart-hang-{}.sh", std::process::id()));
        let site = Site::start(json!({}));
        fs::write(
            &script,
            format!(
                "#!/bin/sh\nif grep -q 'X-Smart-Variant v ' '{}'; then exec sleep 600; fi\nexec {}\n",
                site.nginx.site_conf_path().display(),
                site.nginx.reload_argv().join(" ")
            ),
        )
        .unwrap();
        fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let path = site.dir.path().join("experiments/faults.json");
        let mut experiment: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        experiment["apply"]["reload"] = json!([script]);
        experiment["apply"]["command_timeout_s"] = json!(2);
        fs::write(&path, experiment.to_string()).unwrap();
        site
    } else {
        Site::start(json!({}))
    };
    let state = site.state();
    let original = fs::read(site.nginx.site_conf_path()).unwrap();
    let forbidden = point == "config-dir-forbidden";
    // The tmpfs is mounted aside and bound onto the state dir, so that the read-only point can
    // swap in a read-only view of the same filesystem while smart holds files open for writing
    // (the kernel refuses to remount a filesystem read-only under open writers).
    let fs_dir = site.dir.path().join("state-fs");
    fs::create_dir(&fs_dir).unwrap();
    mount_tmpfs(
        &fs_dir,
        if forbidden {
            "size=1m,mode=0755,uid=65534,gid=65534"
        } else {
            "size=1m,mode=0755"
        },
    );
    mount(&[
        "--bind",
        &fs_dir.display().to_string(),
        &state.display().to_string(),
    ]);
    // What the point expects: the exit code and a part of the message naming the cause.
    let (out, clear): (Output, Box<dyn FnOnce()>) = match point {
        "full-before-run" => {
            fill(&state);
            let out = site.smart(&["run", "faults"]);
            let s = state.clone();
            (
                out,
                Box::new(move || fs::remove_file(s.join("filler")).unwrap()),
            )
        }
        "full-after-backup" | "full-mid-variant" | "full-during-restore" => {
            let when: fn(&[serde_json::Value]) -> bool = match point {
                "full-after-backup" => backed_up,
                "full-mid-variant" => variant_live,
                _ => restoring,
            };
            let s = state.clone();
            let out = site.run_with_fault(Some(when), move || fill(&s));
            // `smart recover` must work on the full state disk too.
            recover_restores(&site, "full");
            let s = state.clone();
            (
                out,
                Box::new(move || fs::remove_file(s.join("filler")).unwrap()),
            )
        }
        "read-only-mid-variant" => {
            let s = state.display().to_string();
            let f = fs_dir.display().to_string();
            let out = site.run_with_fault(Some(variant_live), move || {
                // Every file opened from now on is on a read-only mount; the journal smart
                // already holds open keeps its writable descriptor.
                let lazy = Command::new("umount").args(["-l", &s]).output().unwrap();
                assert!(lazy.status.success(), "{lazy:?}");
                mount(&["--bind", &f, &s]);
                mount(&["-o", "remount,bind,ro", &s]);
            });
            // `smart recover` must work on the read-only state disk.
            recover_restores(&site, "read-only");
            let s = state.display().to_string();
            (out, Box::new(move || mount(&["-o", "remount,bind,rw", &s])))
        }
        "killed-then-full" => {
            kill_mid_variant(&site);
            fill(&state);
            let out = site.smart(&["recover"]);
            let s = state.clone();
            (
                out,
                Box::new(move || fs::remove_file(s.join("filler")).unwrap()),
            )
        }
        "killed-then-read-only" => {
            kill_mid_variant(&site);
            // Nothing holds the state dir open now: a real read-only remount.
            let f = fs_dir.display().to_string();
            mount(&["-o", "remount,ro", &f]);
            let out = site.smart(&["recover"]);
            (out, Box::new(move || mount(&["-o", "remount,rw", &f])))
        }
        "immutable-state-dir" => {
            let s = state.display().to_string();
            let chattr = Command::new("chattr").args(["+i", &s]).output();
            let immutable = chattr.is_ok_and(|o| o.status.success());
            if !immutable {
                mount(&["--bind", &s, &s]);
                mount(&["-o", "remount,bind,ro", &s]);
            }
            let out = site.smart(&["run", "faults"]);
            (
                out,
                Box::new(move || {
                    if immutable {
                        let _ = Command::new("chattr").args(["-i", &s]).status();
                    } else {
                        mount(&["-o", "remount,bind,rw", &s]);
                    }
                }),
            )
        }
        "config-dir-forbidden" => {
            // smart's own files are readable by nobody; the nginx prefix (0700, root) is not.
            for dir in [site.dir.path(), &site.dir.path().join("experiments")] {
                fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                    .unwrap();
            }
            let out = site
                .command(
                    &[
                        "setpriv",
                        "--reuid=nobody",
                        "--regid=nogroup",
                        "--clear-groups",
                        "--inh-caps=-all",
                        "--",
                    ],
                    &["run", "faults"],
                )
                .output()
                .unwrap();
            (out, Box::new(|| {}))
        }
        "reload-hangs" => {
            let started = Instant::now();
            let out = site.smart(&["run", "faults"]);
            assert!(
                started.elapsed() < Duration::from_secs(50),
                "the reload's timeout did not fire: {}",
                text(&out)
            );
            (out, Box::new(|| {}))
        }
        other => panic!("unknown fault point {other}"),
    };
    let shown = text(&out);
    // The server serves the original, byte for byte, whatever happened.
    let serving = serves(&site.nginx);
    assert_eq!(serving, "baseline", "{shown}");
    let on_disk = fs::read(site.nginx.site_conf_path()).unwrap();
    assert!(
        on_disk == original,
        "the site file is not the original: {shown}"
    );
    // The exit code and the cause in the message.
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let all = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
    let (want_code, cause): (i32, &str) = match point {
        p if p.starts_with("full-") => (3, "ENOSPC"),
        "read-only-mid-variant" => (3, "EROFS"),
        "killed-then-full" => (0, "ENOSPC"),
        "killed-then-read-only" => (0, "EROFS"),
        "immutable-state-dir" => (3, "(E"),
        "config-dir-forbidden" => (3, "EACCES"),
        _ => (0, "timed out after 2 s"),
    };
    assert_eq!(code, want_code, "{shown}");
    assert!(
        all.contains(cause),
        "the message does not name {cause}: {shown}"
    );
    assert!(
        !all.contains("as found is not sound"),
        "smart blamed the server for its own failure: {shown}"
    );
    // Nothing written is lost: with the fault cleared, recovery closes whatever is open and the
    // audit chain verifies, with the gap recorded.
    clear();
    recover_restores(&site, "cleared");
    let verify = site.smart(&["audit", "verify"]);
    assert!(verify.status.success(), "{}\n{shown}", text(&verify));
    // A restore that could not be recorded says so on stderr (journald under systemd); on a
    // full disk the gap is also kept in the reserved audit.gap and becomes an audit_gap line
    // once there is space (a read-only disk cannot even take that: stderr is the record).
    if stderr.contains("audit line") && stderr.contains("were lost") && point.contains("full") {
        let audit = fs::read_to_string(state.join("audit.jsonl")).unwrap_or_default();
        assert!(
            audit.contains("\"audit_gap\""),
            "{point}: no audit_gap line: {audit}"
        );
    }
    // The words around the cause, for the table.
    let named: String = all
        .lines()
        .find_map(|l| {
            let at = l.find(cause)?;
            let from = l[..at].char_indices().rev().nth(70).map_or(0, |(i, _)| i);
            Some(format!(
                "…{}…",
                l[from..].chars().take(140).collect::<String>()
            ))
        })
        .unwrap_or_default()
        .replace('|', "/");
    #[expect(clippy::print_stdout, reason = "the result line the parent reads")]
    {
        println!(
            "{RESULT}{serving}\toriginal bytes\t{code}\t{}",
            named.replace('\t', " ")
        );
    }
}
