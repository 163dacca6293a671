//! Shared test support: temp dirs with a state dir, small scripts, an experiment's `apply`
//! section from JSON, starting a session and switching it, checking an applier error, and a
//! tiny HTTP service that reads its "config" file on every request.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use smart_apply::{Applier, Arm, Config, Error, ErrorKind, RunLock, Session, Step};
use smart_core::experiment::{Apply, ParamValue, Params};

/// A temp dir with `state/` and `etc/` inside.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
}

impl Env {
    /// A fresh temp dir with an empty `etc/`.
    pub(crate) fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("smart-apply-")
            .tempdir()
            .unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        Env { dir }
    }
    /// The state dir: lock, journals, backups and the audit log.
    pub(crate) fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    /// The path of `etc/<name>`, a config file's place.
    pub(crate) fn etc(&self, name: &str) -> PathBuf {
        self.dir.path().join("etc").join(name)
    }
    /// The path of `name` in the temp dir.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// Writes `etc/<name>` with `contents` and returns its path.
    pub(crate) fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.etc(name);
        fs::write(&path, contents).unwrap();
        path
    }
    /// Takes the run lock and an applier on this env's state dir.
    pub(crate) fn applier(&self) -> (Applier, RunLock) {
        let lock = RunLock::acquire(&self.state()).unwrap();
        (Applier::new(Config::new(&self.state())), lock)
    }
    /// Takes the run lock and begins run `r1` of `experiment` on `spec`, as most tests start;
    /// the lock is held for as long as the caller keeps it.
    pub(crate) async fn begin(
        &self,
        experiment: &str,
        spec: &Apply,
    ) -> (Applier, RunLock, Session) {
        let (applier, lock) = self.applier();
        let session = applier.begin(&lock, experiment, "r1", spec).await.unwrap();
        (applier, lock, session)
    }
    /// An executable `/bin/sh` script in the temp dir.
    pub(crate) fn script(&self, name: &str, body: &str) -> String {
        let path = self.path(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }
    /// A stand-in for sysctl: `fake-sysctl` prints the value, `fake-sysctl VALUE` sets it.
    pub(crate) fn fake_sysctl(&self, initial: &str) -> String {
        let value = self.path("sysctl.value");
        fs::write(&value, initial).unwrap();
        self.script(
            "fake-sysctl",
            &format!(
                "if [ $# -eq 0 ]; then cat '{0}'; else printf '%s' \"$1\" > '{0}'; fi",
                value.display()
            ),
        )
    }
    /// The value [`Env::fake_sysctl`] holds now.
    pub(crate) fn sysctl_value(&self) -> String {
        fs::read_to_string(self.path("sysctl.value")).unwrap()
    }
}

/// An experiment's `apply` section from JSON.
pub(crate) fn apply(json: serde_json::Value) -> Apply {
    serde_json::from_value(json).unwrap()
}

/// String params from `(name, value)` pairs.
pub(crate) fn params(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), ParamValue::Str((*v).to_owned())))
        .collect()
}

/// Switches `session` to the variant `name` with `pairs` as its params.
pub(crate) async fn switch(
    session: &mut Session,
    name: &str,
    pairs: &[(&str, &str)],
) -> Result<(), Error> {
    session
        .switch_to(Arm::Variant {
            name,
            params: &params(pairs),
        })
        .await
}

/// Asserts that `err` is of `kind` and failed at `step`, showing the error otherwise.
#[track_caller]
pub(crate) fn assert_failed(err: &Error, kind: ErrorKind, step: Step) {
    assert_eq!((err.kind(), err.step()), (&kind, step), "{err}");
}

/// A file's bytes, or `None` where it does not exist.
pub(crate) fn read(path: &Path) -> Option<Vec<u8>> {
    match fs::read(path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// The `action`/`outcome` pairs of the audit log, in order.
pub(crate) fn audit_actions(state: &Path) -> Vec<(String, String)> {
    let text = fs::read_to_string(state.join("audit.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["action"].as_str().unwrap().to_owned(),
                v["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A tiny HTTP service configured by a file it re-reads on every request: `status=N` sets the
/// status code, `variant=V` the `X-Smart-Variant` header. Stopped on drop.
pub(crate) struct Service {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Service {
    /// Starts the service on a free loopback port, configured by the file `config`.
    pub(crate) fn start(config: &Path) -> Service {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let config = config.to_owned();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    serve(stream, &config);
                }
            }
        });
        Service {
            port,
            stop,
            thread: Some(thread),
        }
    }
    /// The service's root URL.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

fn serve(mut stream: TcpStream, config: &Path) {
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut buf = [0u8; 2048];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = fs::read_to_string(config).unwrap_or_default();
    let mut status = "200";
    let mut header = String::new();
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("status=") {
            status = s.trim();
        }
        if let Some(v) = line.strip_prefix("variant=") {
            header = format!("X-Smart-Variant: {}\r\n", v.trim());
        }
    }
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n{header}\r\nok"
    );
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
