//! `smart run` with a coach, as users run it: the real binary against the demo target, reporting
//! to a coach server on loopback started by the test, with the token in a private file. Nothing
//! the run prints or writes holds the token; a token file others can read is refused up front;
//! a coach that refuses the token does not stop the run.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::json;
use smart_demo_target::DemoTarget;

const TOKEN: &str = "cli-coach-t0ken-5ecret-91ab";
const FOUND: &str = "cache = false\ncompression_level = 0\nnoop = \"a\"\n";

/// Each request's path and `Authorization` header, in the order received.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A coach server on loopback (plain std, one thread): records each request's path and
/// `Authorization`, answers every request with `status` and `body`.
struct CoachServer {
    addr: SocketAddr,
    received: Seen,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CoachServer {
    fn start(status: u16, body: &'static str) -> CoachServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopping) = (Arc::clone(&received), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = stream {
                    let _ = answer(stream, &seen, status, body);
                }
            }
        });
        CoachServer {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn received(&self) -> Vec<(String, Option<String>)> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for CoachServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(
    stream: TcpStream,
    seen: &Mutex<Vec<(String, Option<String>)>>,
    status: u16,
    body: &str,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let (mut length, mut authorization) = (0usize, None);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((&header, ""));
        let value = value.trim().to_owned();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value);
        }
    }
    let mut request_body = vec![0; length];
    reader.read_exact(&mut request_body)?;
    seen.lock().unwrap().push((path, authorization));
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A demo target with a short compression-level experiment and a `smart.toml` whose `[coach]` is
/// `coach`, the token in `coach.token` with permissions `token_mode`.
struct Site {
    dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    target: Option<DemoTarget>,
}

impl Site {
    fn start(coach: &str, token_mode: u32) -> Site {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("demo.toml"), FOUND).unwrap();
        fs::create_dir(dir.path().join("experiments")).unwrap();
        let token = dir.path().join("coach.token");
        fs::write(&token, format!("{TOKEN}\n")).unwrap();
        fs::set_permissions(&token, fs::Permissions::from_mode(token_mode)).unwrap();
        fs::write(
            dir.path().join("smart.toml"),
            format!(
                "experiments_dir = \"experiments\"\nstate_dir = \"state\"\ndashboard_dir = \"dashboard\"\n[coach]\n{coach}\ntoken_file = \"coach.token\"\n"
            ),
        )
        .unwrap();
        let (runtime, target) = crate::support::demo_target(&dir.path().join("demo.toml"));
        let url = format!("http://{}/", target.addr());
        let experiment = json!({
            "name": "level",
            "target": {"urls": [url], "rate_per_s": 50},
            "apply": {
                "files": [{"path": dir.path().join("demo.toml"),
                           "template": "cache = false\ncompression_level = {{ level }}\nnoop = \"{{ n }}\"\n"}],
                "reload": ["kill", "-HUP", std::process::id().to_string()],
                "health": {"url": format!("{url}healthz"), "timeout_s": 5},
                "live_check": {"url": url, "header": "X-Demo-Compression-Level", "equals": "{{ level }}"}
            },
            "variants": [{"name": "level-1", "params": {"level": 1, "n": "a"}}],
            "schedule": {"cooldown_s": 0.3, "block_s": 1, "max_cycles": 2, "soak_s": 1,
                         "max_duration_s": 120},
            // The probe sends no Accept-Encoding, so the level changes nothing: an A/A. A 90 %
            // threshold keeps one-second blocks on a loaded machine from ever proving a "win",
            // so these tests see the coach's side of an undecided variant, not the judge's noise.
            "decision": {"min_improvement_pct": 90}
        });
        fs::write(
            dir.path().join("experiments/level.json"),
            serde_json::to_string_pretty(&experiment).unwrap(),
        )
        .unwrap();
        Site {
            dir,
            runtime,
            target: Some(target),
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_smart"))
            .current_dir(self.dir.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(target) = self.target.take() {
            self.runtime.block_on(target.shutdown());
        }
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Asserts that nothing `smart` printed or wrote under the site holds the token.
fn assert_no_token(site: &Site, outputs: &[&std::process::Output]) {
    for out in outputs {
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(TOKEN),
            "stdout holds the token"
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains(TOKEN),
            "stderr holds the token"
        );
    }
    for path in files(site.dir.path()) {
        if path == site.path("coach.token") {
            continue;
        }
        let text = String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned();
        assert!(!text.contains(TOKEN), "{} holds the token", path.display());
    }
}

#[test]
fn a_run_reports_to_the_coach_and_no_output_holds_the_token() {
    let server = CoachServer::start(200, r#"{"action": "revert", "reason": "not worth it"}"#);
    let site = Site::start(
        &format!("url = \"{}\"\nmode = \"advise\"", server.url()),
        0o600,
    );
    let out = site.run(&["run", "--once"]);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let received = server.received();
    assert!(
        received.iter().any(|(path, _)| path == "/results"),
        "{received:?}"
    );
    assert!(
        received
            .iter()
            .all(|(_, auth)| auth.as_deref() == Some(&format!("Bearer {TOKEN}"))),
        "{received:?}"
    );
    let audit = fs::read_to_string(site.path("state/audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"action\":\"coach\""),
        "no coach line in the audit log"
    );
    let verify = site.run(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    let history = site.run(&["history", "--json"]);
    let decisions: Vec<serde_json::Value> = serde_json::from_slice(&history.stdout).unwrap();
    let asked = received.iter().any(|(path, _)| path == "/advice");
    assert_eq!(
        asked,
        decisions[0]["decision"] == "inconclusive",
        "the coach is asked exactly about inconclusive variants: {decisions:?} {received:?}"
    );
    let status = site.run(&["status", "--json"]);
    let show = site.run(&["show", "last"]);
    assert_no_token(&site, &[&out, &verify, &history, &status, &show]);
    assert_eq!(fs::read_to_string(site.path("demo.toml")).unwrap(), FOUND);
}

#[test]
fn a_coach_that_refuses_the_token_does_not_stop_the_run() {
    let server = CoachServer::start(401, "{}");
    let site = Site::start(
        &format!("url = \"{}\"\nmode = \"advise\"", server.url()),
        0o600,
    );
    let out = site.run(&["run", "--once"]);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let audit = fs::read_to_string(site.path("state/audit.jsonl")).unwrap();
    assert!(audit.contains("\"kind\":\"unauthorized\""), "{audit}");
    let queue = fs::read_to_string(site.path("state/coach-queue.json")).unwrap();
    assert!(
        queue.contains("level-1"),
        "the report was not queued: {queue}"
    );
    assert_no_token(&site, &[&out]);
    assert_eq!(fs::read_to_string(site.path("demo.toml")).unwrap(), FOUND);
}

#[test]
fn a_token_file_others_can_read_is_refused_before_anything_changes() {
    let server = CoachServer::start(200, "{}");
    let site = Site::start(&format!("url = \"{}\"", server.url()), 0o644);
    let out = site.run(&["run", "--once"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("coach.token_file"), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(!site.path("state").exists(), "state was written");
    assert!(server.received().is_empty());
    assert_no_token(&site, &[&out]);
}
