//! The real-browser test: headless Chromium loads the rendered dashboard from a loopback HTTP
//! server that sends the deploy site's strict Content-Security-Policy, while `status.json`
//! changes under it. The dumped DOM must show the charts and the changed live value; Chromium's
//! log must show no console error and no CSP violation. A canary page with inline script and
//! style proves the log would show them.
//!
//! Set `SMART_DASHBOARD_SCREENSHOT=DIR` to also save screenshots of the index and a run page
//! there (for looking at the design; nothing is written outside temp dirs otherwise).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::{fixtures, render};

/// The header the deploy site's nginx sends (issue 9).
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

/// A loopback HTTP/1.1 server for one directory: every response carries [`CSP`]; `status.json`
/// is served as written for the first request and as `next_status` afterwards, as if the engine
/// had moved on while the page was open.
pub(crate) struct Site {
    port: u16,
    stop: Arc<AtomicBool>,
    status_requests: Arc<AtomicUsize>,
    accept: Option<thread::JoinHandle<()>>,
}

impl Site {
    pub(crate) fn serve(
        root: &Path,
        next_status: Vec<u8>,
        extra: BTreeMap<String, String>,
    ) -> Site {
        Site::serve_with(root, next_status, extra, CSP)
    }

    /// Like [`Site::serve`], with `csp` as the Content-Security-Policy header.
    pub(crate) fn serve_with(
        root: &Path,
        next_status: Vec<u8>,
        extra: BTreeMap<String, String>,
        csp: &'static str,
    ) -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let status_requests = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new((root.to_owned(), next_status, extra, Mutex::new(())));
        let accept = {
            let stop = stop.clone();
            let status_requests = status_requests.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = shared.clone();
                    let status_requests = status_requests.clone();
                    thread::spawn(move || {
                        let (root, next, extra, _) = &*shared;
                        let _ = answer(stream, root, next, extra, &status_requests, csp);
                    });
                }
            })
        };
        Site {
            port,
            stop,
            status_requests,
            accept: Some(accept),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn answer(
    stream: TcpStream,
    root: &Path,
    next_status: &[u8],
    extra: &BTreeMap<String, String>,
    status_requests: &AtomicUsize,
    csp: &str,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let path = path
        .split('?')
        .next()
        .unwrap_or("/")
        .trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let body = if path == "status.json" && status_requests.fetch_add(1, Ordering::SeqCst) > 0 {
        Some(next_status.to_vec())
    } else if let Some(text) = extra.get(path) {
        Some(text.as_bytes().to_vec())
    } else if path.split('/').any(|part| part == "..") {
        None
    } else {
        std::fs::read(root.join(path)).ok()
    };
    let kind = match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    let (status, body) = match body {
        Some(body) => ("200 OK", body),
        None => ("404 Not Found", b"not found".to_vec()),
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nContent-Security-Policy: {csp}\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    out.write_all(&body)?;
    out.flush()
}

/// Runs headless Chromium on `url` with `extra` arguments; returns (stdout, stderr). Killed
/// after 90 s.
pub(crate) fn chromium(chromium: &Path, url: &str, extra: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s on {url}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    (out.join().unwrap(), err.join().unwrap())
}

/// Console messages and CSP violations in Chromium's log. Chromium logs every console message
/// as `INFO:CONSOLE` whatever its level, and the dashboard's script logs nothing, so any console
/// line is a problem (an error, an uncaught exception, a failed load).
pub(crate) fn problems(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains(":CONSOLE")
                || l.contains("Content Security Policy")
                || l.contains("Refused to")
        })
        .collect()
}

#[test]
fn chromium_shows_live_status_and_charts_under_a_strict_csp() {
    if !smart_testkit::require_tool(
        "chromium",
        "chromium_shows_live_status_and_charts_under_a_strict_csp",
    ) {
        return;
    }
    let browser = smart_testkit::find_in_path("chromium").unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let specs = fixtures::standard(state.path());
    render(state.path(), out.path());

    // The engine moves on while the page is open: block 4, a new live median.
    let mut next = fixtures::running_status(&specs[2], 1, 9876);
    next.block = Some(4);
    // Written long ago: the page must say the run's process may have died.
    next.updated = "2020-01-01T00:00:00.000Z".to_owned();
    let next = serde_json::to_vec_pretty(&next).unwrap();
    let canary = "<!DOCTYPE html><html><head><title>canary</title></head><body><p style=\"color:red\">x</p><script>document.title = 'ran';</script></body></html>".to_owned();
    let site = Site::serve(
        out.path(),
        next,
        BTreeMap::from([("canary.html".to_owned(), canary)]),
    );

    let (dom, log) = chromium(&browser, &site.url(""), &["--dump-dom"]);
    assert!(
        dom.contains("<svg class=\"chart\" id=\"trend\""),
        "no trend chart in the DOM:\n{dom}"
    );
    assert!(dom.contains("class=\"badge keep\""), "no decision table");
    assert!(
        site.status_requests.load(Ordering::SeqCst) >= 2,
        "status.json was fetched once or never"
    );
    let p50 = dom
        .split("data-field=\"p50\">")
        .nth(1)
        .and_then(|s| s.split('<').next());
    assert_eq!(p50, Some("9.88 ms"), "the live p50 did not update:\n{dom}");
    let block = dom
        .split("data-field=\"block\">")
        .nth(1)
        .and_then(|s| s.split('<').next());
    assert_eq!(block, Some("4 of 4"));
    assert!(
        dom.contains("No update for "),
        "an old status.json is not flagged"
    );
    assert!(
        problems(&log).is_empty(),
        "console errors or CSP violations on the index:\n{}",
        problems(&log).join("\n")
    );

    let run_page = format!("runs/{}.html", specs[0].id());
    let (dom, log) = chromium(&browser, &site.url(&run_page), &["--dump-dom"]);
    for id in ["cdf", "p50", "errors"] {
        assert!(
            dom.contains(&format!("<svg class=\"chart\" id=\"{id}\"")),
            "no {id} chart on the run page"
        );
    }
    assert!(
        problems(&log).is_empty(),
        "console errors or CSP violations on a run page:\n{}",
        problems(&log).join("\n")
    );

    // The page of the run under way has the live box too, and offers a reload once a block
    // finished since its render.
    let (dom, log) = chromium(
        &browser,
        &site.url(&format!("runs/{}.html", specs[2].id())),
        &["--dump-dom"],
    );
    let p50 = dom
        .split("data-field=\"p50\">")
        .nth(1)
        .and_then(|s| s.split('<').next());
    assert_eq!(
        p50,
        Some("9.88 ms"),
        "the run page's live box did not update"
    );
    assert!(
        dom.contains("<p class=\"notice\" id=\"live-new\">"),
        "no reload offered after a new block:\n{dom}"
    );
    assert!(
        problems(&log).is_empty(),
        "console errors or CSP violations on the running run's page:\n{}",
        problems(&log).join("\n")
    );

    // The canary breaks the policy on purpose: its violations must show in the same log, or the
    // checks above prove nothing.
    let (dom, log) = chromium(&browser, &site.url("canary.html"), &["--dump-dom"]);
    assert!(
        dom.contains("<title>canary</title>"),
        "the inline script ran despite the CSP"
    );
    assert!(
        !problems(&log).is_empty(),
        "a CSP violation did not show in Chromium's log:\n{log}"
    );

    if let Some(dir) = std::env::var_os("SMART_DASHBOARD_SCREENSHOT") {
        let dir = PathBuf::from(dir);
        for (name, page, size) in [
            ("dashboard-index.png", "".to_owned(), "1280,1900"),
            ("dashboard-run.png", run_page, "1280,3200"),
        ] {
            let shot = format!("--screenshot={}", dir.join(name).display());
            let size = format!("--window-size={size}");
            chromium(
                &browser,
                &site.url(&page),
                &[&shot, &size, "--hide-scrollbars"],
            );
        }
        let shot = format!(
            "--screenshot={}",
            dir.join("dashboard-index-dark.png").display()
        );
        chromium(
            &browser,
            &site.url(""),
            &[
                &shot,
                "--window-size=1280,1900",
                "--hide-scrollbars",
                "--force-dark-mode",
                "--blink-settings=preferredColorScheme=0",
            ],
        );
    }
}
