//! The `access_log` metric source on a real nginx: visitors (threads of this test) load a site
//! whose access log is in the shipped `smart_timing` format, smart sends nothing itself and
//! judges from the log, while the log is rotated under it by rename (then `nginx -s reopen`) and
//! by copytruncate, again and again. The effect is far larger than timing noise: `limit_rate
//! 1m` makes a 128 KiB file take about 125 ms instead of about 1 ms. A log in nginx's stock
//! combined format is refused with the fix, the original back.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;
use smart_core::records::DecisionKind;

use crate::support::{decisions, output_text};
use smart_testkit::{Nginx, require_tool};

/// A real nginx serving a 128 KiB file, logging in `smart_timing` (and, beside it, in the
/// stock combined format), with `limit_rate` in an include file the experiments own.
struct Site {
    nginx: Nginx,
    dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    rotations: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Site {
    /// The site with its visitors and its log rotated under them.
    fn start(test: &str) -> Option<Site> {
        let mut site = Site::quiet(test)?;
        site.visitors();
        site.rotator();
        Some(site)
    }

    /// The site without a single visitor.
    fn quiet(test: &str) -> Option<Site> {
        if !require_tool("nginx", test) {
            return None;
        }
        let nginx = Nginx::start("    location / { }").unwrap();
        let prefix = nginx.prefix().to_owned();
        fs::write(nginx.html_dir().join("big.bin"), vec![b'x'; 128 * 1024]).unwrap();
        fs::write(prefix.join("smart-rate.conf"), "# as found\n").unwrap();
        let format = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/nginx/smart-log-format.conf")
            .canonicalize()
            .unwrap();
        let body = format!(
            "    access_log {p}/logs/access.log smart_timing;\n\
             \x20   access_log {p}/logs/combined.log combined;\n\
             \x20   location / {{ include {p}/smart-rate.conf; }}",
            p = prefix.display()
        );
        let site = format!("include {};\n{}", format.display(), nginx.site_conf(&body));
        fs::write(nginx.site_conf_path(), site).unwrap();
        run_ok(&nginx.validate_argv());
        run_ok(&nginx.reload_argv());
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("smart.toml"), crate::support::SMART_TOML).unwrap();
        fs::create_dir(dir.path().join("experiments")).unwrap();
        let site = Site {
            nginx,
            dir,
            stop: Arc::new(AtomicBool::new(false)),
            served: Arc::new(AtomicU64::new(0)),
            rotations: Arc::new(AtomicU64::new(0)),
            threads: Vec::new(),
        };
        // Wait for the reload to have taken the new log.
        for _ in 0..100 {
            get(site.nginx.port());
            if fs::metadata(site.log()).is_ok_and(|m| m.len() > 0) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(site)
    }

    fn log(&self) -> PathBuf {
        self.nginx.prefix().join("logs/access.log")
    }

    fn owned(&self) -> PathBuf {
        self.nginx.prefix().join("smart-rate.conf")
    }

    /// Eight visitors in a closed loop, a short pause between requests: about 50 requests a
    /// second under the limit, enough for the judge's minimum of 1,000 requests per arm.
    fn visitors(&mut self) {
        for _ in 0..8 {
            let (stop, served, port) = (self.stop.clone(), self.served.clone(), self.nginx.port());
            self.threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if get(port) {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(30));
                }
            }));
        }
    }

    /// Rotates the log every 2.5 s, by rename and reopen, then by copytruncate, in turn.
    fn rotator(&mut self) {
        let (stop, rotations) = (self.stop.clone(), self.rotations.clone());
        let log = self.log();
        let reopen = {
            let mut argv = self.nginx.reload_argv();
            argv.pop();
            argv.push("reopen".to_owned());
            argv
        };
        self.threads.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(2500));
                let rotated = log.with_extension(format!("log.{n}"));
                if n.is_multiple_of(2) {
                    fs::rename(&log, &rotated).unwrap();
                    run_ok(&reopen);
                } else {
                    fs::copy(&log, &rotated).unwrap();
                    fs::OpenOptions::new()
                        .write(true)
                        .open(&log)
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                }
                n += 1;
                rotations.store(n, Ordering::Relaxed);
            }
        }));
    }

    fn experiment(&self, name: &str, log: &Path, baseline: &str, variant: &str) {
        let experiment = self.definition(name, log, baseline, variant);
        crate::support::only_experiment(&self.dir.path().join("experiments"), name, &experiment);
    }

    /// The experiment with the fill-in: 50 GETs a second of the big file from smart's probe.
    fn filled_experiment(&self, name: &str, baseline: &str, variant: &str) {
        let mut experiment = self.definition(name, &self.log(), baseline, variant);
        experiment["measure"]["access_log"]["fill_rps"] = json!(50);
        experiment["target"] = json!({
            "urls": [format!("http://127.0.0.1:{}/big.bin", self.nginx.port())],
            "timeout_ms": 5000,
        });
        experiment["schedule"] = json!({"cooldown_s": 0.5, "block_s": 2.5, "max_cycles": 16,
                                        "soak_s": 1, "max_duration_s": 300});
        crate::support::only_experiment(&self.dir.path().join("experiments"), name, &experiment);
    }

    fn definition(
        &self,
        name: &str,
        log: &Path,
        baseline: &str,
        variant: &str,
    ) -> serde_json::Value {
        json!({
            "name": name,
            "measure": {"source": "access_log",
                        "access_log": {"path": log, "path_prefix": "/big", "method": "GET"}},
            "apply": {
                "files": [{"path": self.owned(), "template": "limit_rate {{ rate }};\n"}],
                "validate": self.nginx.validate_argv(),
                "reload": self.nginx.reload_argv(),
            },
            "baseline": {"rate": baseline},
            "variants": [{"name": format!("rate-{variant}"), "params": {"rate": variant}}],
            "schedule": {"cooldown_s": 0.5, "block_s": 2, "max_cycles": 12, "soak_s": 1,
                         "max_duration_s": 300},
        })
    }

    fn smart(&self, args: &[&str]) -> Output {
        crate::support::smart(self.dir.path(), args)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One GET of the big file over HTTP/1.0; whether a whole 200 came back.
fn get(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    if s.write_all(b"GET /big.bin HTTP/1.0\r\nHost: t\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = Vec::new();
    s.read_to_end(&mut body).is_ok() && body.starts_with(b"HTTP/1.1 200")
}

fn run_ok(argv: &[String]) {
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_access_log_keeps_a_large_win_and_reverts_a_large_loss_across_rotations() {
    let Some(site) = Site::start("the_access_log_keeps_a_large_win_and_reverts_a_large_loss")
    else {
        return;
    };
    let log = site.log();

    // 0 (no limit) → 1m: every request about 100 times slower.
    site.experiment("log-slower", &log, "0", "1m");
    let out = site.smart(&["run", "--once"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        decisions(site.dir.path()),
        [("rate-1m".to_owned(), DecisionKind::Revert)],
        "{}",
        output_text(&out)
    );
    assert_eq!(fs::read_to_string(site.owned()).unwrap(), "# as found\n");

    // 1m → 0: the same effect the other way.
    site.experiment("log-faster", &log, "1m", "0");
    let out = site.smart(&["run", "--once"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let all = decisions(site.dir.path());
    assert_eq!(
        all.last(),
        Some(&("rate-0".to_owned(), DecisionKind::Keep)),
        "{all:?}\n{}",
        output_text(&out)
    );
    assert_eq!(fs::read_to_string(site.owned()).unwrap(), "limit_rate 0;\n");
    let rotations = site.rotations.load(Ordering::Relaxed);
    assert!(rotations >= 4, "the log was rotated only {rotations} times");
    assert!(site.served.load(Ordering::Relaxed) > 100);
}

#[test]
fn a_log_without_msec_and_request_time_is_refused_with_the_fix() {
    let Some(site) = Site::start("a_log_without_msec_and_request_time_is_refused") else {
        return;
    };
    let combined = site.nginx.prefix().join("logs/combined.log");
    site.experiment("log-combined", &combined, "0", "1m");
    let out = site.smart(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(3), "{}", output_text(&out));
    let all = output_text(&out);
    assert!(all.contains("smart_timing"), "{all}");
    assert!(all.contains("smart-log-format.conf"), "{all}");
    assert_eq!(fs::read_to_string(site.owned()).unwrap(), "# as found\n");
}

/// No visitor at all: the fill-in's requests, logged by nginx like anyone's, are all the blocks
/// hold, and they still carry a 100-fold effect to revert and to keep. `smart validate` counts
/// them as the fill-in, not as visitors. 50 a second only so the test ends in about a minute
/// (the judge keeps nothing before 1,000 requests per arm); a real site with a few visitors
/// would fill in with a few a second over longer blocks.
#[test]
fn the_fill_in_alone_gives_a_quiet_site_blocks_that_keep_and_revert() {
    let Some(site) = Site::quiet("the_fill_in_alone_gives_a_quiet_site_blocks") else {
        return;
    };
    site.filled_experiment("fill-slower", "0", "1m");
    let out = site.smart(&["validate"]);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(
            "about 0 matching visitor requests per 2.5 s block, plus 125 from the fill-in (50/s)"
        ),
        "{text}"
    );

    let out = site.smart(&["run", "--once"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        decisions(site.dir.path()),
        [("rate-1m".to_owned(), DecisionKind::Revert)],
        "{}",
        output_text(&out)
    );
    assert_eq!(fs::read_to_string(site.owned()).unwrap(), "# as found\n");

    site.filled_experiment("fill-faster", "1m", "0");
    let out = site.smart(&["run", "--once"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let all = decisions(site.dir.path());
    assert_eq!(
        all.last(),
        Some(&("rate-0".to_owned(), DecisionKind::Keep)),
        "{all:?}\n{}",
        output_text(&out)
    );
    assert_eq!(fs::read_to_string(site.owned()).unwrap(), "limit_rate 0;\n");
    assert!(
        get(site.nginx.port()),
        "the kept configuration serves the file"
    );

    // The log now holds thousands of the fill-in's requests, and still no visitor.
    let text = output_text(&site.smart(&["validate"]));
    assert!(text.contains("about 0 matching visitor requests"), "{text}");
    let log = fs::read_to_string(site.log()).unwrap();
    let filled = log.lines().filter(|l| l.contains("\"smart-probe/")).count();
    assert!(filled > 2000, "only {filled} fill-in requests in the log");
}

/// `smart calibrate` measures its A/A blocks through the experiment's own source: here the
/// access log of a quiet nginx, filled in. It completes, stores the noise it measured under the
/// source's name, and `smart validate` then quotes that noise; nothing is changed.
#[test]
fn calibrate_measures_through_the_access_log() {
    let Some(site) = Site::quiet("calibrate_measures_through_the_access_log") else {
        return;
    };
    site.filled_experiment("fill-calib", "0", "1m");
    let out = site.smart(&[
        "calibrate",
        "experiments/fill-calib.json",
        "--pairs",
        "4",
        "--json",
    ]);
    let value = crate::support::assert_calibrated(&out, "access_log", 4);
    assert_eq!(
        value["error_rate"], 0.0,
        "every logged request was a 200: {value}"
    );
    // 8 blocks of 2.5 s at 50 a second, all through the log, and none of them a visitor.
    let log = fs::read_to_string(site.log()).unwrap();
    let filled = log.lines().filter(|l| l.contains("\"smart-probe/")).count();
    assert!(filled > 500, "only {filled} fill-in requests in the log");

    let text = output_text(&site.smart(&["validate"]));
    assert!(
        text.contains("noise measured by `smart calibrate`"),
        "{text}"
    );
    assert_eq!(fs::read_to_string(site.owned()).unwrap(), "# as found\n");
    assert!(get(site.nginx.port()));
}
