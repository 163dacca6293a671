//! Test support shared by the workspace's crates: finding required tools (and skipping politely
//! when they are missing outside CI) and running a real nginx on a free loopback port with its
//! own prefix, so tests never touch the machine's own nginx.

use std::fs;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `tool` (an executable on `PATH`) can be used by this test.
///
/// Outside CI a missing tool prints one line saying what was skipped and how to install it (to
/// the real stderr, past the harness's output capture, so it shows in `cargo test`'s output),
/// and returns `false` so the test can return early. When `CI` is set a missing tool panics: CI must
/// never skip these tests.
pub fn require_tool(tool: &str, test: &str) -> bool {
    if find_in_path(tool).is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} needs `{tool}`, which CI must install (see .ci/run)"
    );
    // Straight to the process's stderr, not through `eprintln!`: the test harness captures what
    // the print macros write and shows it only for a failing test, so a skip would pass silently.
    // libtest has no "skipped" result (`ignored` is decided at compile time), so the notice
    // stands in the output of `cargo test` beside the summary of the binary that skipped.
    let _ = writeln!(
        io::stderr().lock(),
        "SKIPPED {test}: `{tool}` is not installed (apt-get install {})",
        debian_package(tool)
    );
    false
}

/// The Debian package that installs `tool`, for the skip notice.
fn debian_package(tool: &str) -> &str {
    match tool {
        "node" => "nodejs",
        "systemd-analyze" => "systemd",
        "sysctl" => "procps",
        "pgbench" | "psql" => "postgresql-client-15",
        "unshare" | "setpriv" => "util-linux",
        other => other,
    }
}

/// The full path of `tool` on `PATH`, if there is one.
pub fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// A loopback port that was free a moment ago (the usual, slightly racy, way to pick one for a
/// server we do not control).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
}

/// A real nginx master process on `127.0.0.1:port`, with its own prefix in a temp dir.
///
/// The config is `nginx.conf` in the prefix; the `server` block passed to [`Nginx::start`] goes to
/// `site.conf`, which `nginx.conf` includes, so tests can rewrite just the site and reload. Like
/// Debian's nginx, `http {}` also includes `conf.d/*.conf` (empty at the start), where an
/// experiment can own a file of its own. The process is stopped when the value is dropped.
pub struct Nginx {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Nginx {
    /// Starts nginx with `server_body` as the inside of its one `server { }` block (the `listen`
    /// line is added), and waits until the port accepts connections.
    pub fn start(server_body: &str) -> io::Result<Nginx> {
        let dir = tempfile::Builder::new().prefix("smart-nginx-").tempdir()?;
        let port = free_port();
        fs::create_dir_all(dir.path().join("logs"))?;
        fs::create_dir_all(dir.path().join("html"))?;
        fs::create_dir_all(dir.path().join("conf.d"))?;
        let prefix = dir.path().display().to_string();
        let conf = format!(
            "user root;\n\
             worker_processes 1;\n\
             daemon off;\n\
             pid {prefix}/nginx.pid;\n\
             error_log {prefix}/logs/error.log warn;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n\
             \x20   access_log off;\n\
             \x20   default_type application/octet-stream;\n\
             \x20   client_body_temp_path {prefix}/tmp_body;\n\
             \x20   proxy_temp_path {prefix}/tmp_proxy;\n\
             \x20   fastcgi_temp_path {prefix}/tmp_fastcgi;\n\
             \x20   uwsgi_temp_path {prefix}/tmp_uwsgi;\n\
             \x20   scgi_temp_path {prefix}/tmp_scgi;\n\
             \x20   include {prefix}/conf.d/*.conf;\n\
             \x20   include {prefix}/site.conf;\n\
             }}\n"
        );
        fs::write(dir.path().join("nginx.conf"), conf)?;
        fs::write(
            dir.path().join("site.conf"),
            site_conf(port, dir.path(), server_body),
        )?;
        let child = Command::new(find_in_path("nginx").unwrap_or_else(|| "nginx".into()))
            .args(["-p", &prefix, "-c", &format!("{prefix}/nginx.conf")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut nginx = Nginx { dir, port, child };
        nginx.wait_ready()?;
        Ok(nginx)
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                let log =
                    fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default();
                return Err(io::Error::other(format!(
                    "nginx exited with {status} before listening: {log}"
                )));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(io::Error::other("nginx did not listen within 10 s"))
    }

    /// The loopback port nginx listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The prefix dir: `nginx.conf`, `site.conf`, `html/`, `logs/` and the pid file live here.
    pub fn prefix(&self) -> &Path {
        self.dir.path()
    }

    /// The document root the default site serves (`PREFIX/html`).
    pub fn html_dir(&self) -> PathBuf {
        self.dir.path().join("html")
    }

    /// The included site file, which tests may rewrite before a reload.
    pub fn site_conf_path(&self) -> PathBuf {
        self.dir.path().join("site.conf")
    }

    /// A `server { }` block for this nginx's port with `body` inside, as [`Nginx::start`] writes it.
    pub fn site_conf(&self, body: &str) -> String {
        site_conf(self.port, self.dir.path(), body)
    }

    /// The argv that tests nginx's config (`nginx -t` with this prefix).
    pub fn validate_argv(&self) -> Vec<String> {
        self.argv(&["-t", "-q"])
    }

    /// The argv that reloads this nginx (`nginx -s reload` with this prefix).
    pub fn reload_argv(&self) -> Vec<String> {
        self.argv(&["-s", "reload"])
    }

    fn argv(&self, extra: &[&str]) -> Vec<String> {
        let prefix = self.dir.path().display().to_string();
        let nginx = find_in_path("nginx").unwrap_or_else(|| "nginx".into());
        let mut argv = vec![
            nginx.display().to_string(),
            "-p".to_owned(),
            prefix.clone(),
            "-c".to_owned(),
            format!("{prefix}/nginx.conf"),
        ];
        argv.extend(extra.iter().map(|s| (*s).to_owned()));
        argv
    }

    /// The process id of the nginx master.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn site_conf(port: u16, prefix: &Path, body: &str) -> String {
    format!(
        "server {{\n    listen 127.0.0.1:{port};\n    root {};\n{body}\n}}\n",
        prefix.join("html").display()
    )
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGKILL of the master leaves workers that exit when they notice; a graceful stop is
        // cleaner and fast on an idle test server.
        let _ = Command::new(find_in_path("nginx").unwrap_or_else(|| "nginx".into()))
            .args(["-p", &self.dir.path().display().to_string()])
            .args([
                "-c",
                &self.dir.path().join("nginx.conf").display().to_string(),
            ])
            .args(["-s", "stop"])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_serves_a_file_and_reloads() {
        if !require_tool("nginx", "testkit::nginx_serves_a_file_and_reloads") {
            return;
        }
        let nginx = Nginx::start("    location / { add_header X-Arm a; }").unwrap();
        fs::write(nginx.html_dir().join("index.html"), "hello").unwrap();
        let get = |path: &str| {
            use std::io::{Read, Write};
            let mut s = TcpStream::connect(("127.0.0.1", nginx.port())).unwrap();
            write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let first = get("/index.html");
        assert!(
            first.contains("hello") && first.contains("X-Arm: a"),
            "{first}"
        );
        fs::write(
            nginx.site_conf_path(),
            nginx.site_conf("    location / { add_header X-Arm b; }"),
        )
        .unwrap();
        let status = Command::new(&nginx.validate_argv()[0])
            .args(&nginx.validate_argv()[1..])
            .status()
            .unwrap();
        assert!(status.success());
        let status = Command::new(&nginx.reload_argv()[0])
            .args(&nginx.reload_argv()[1..])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = get("/index.html");
            if now.contains("X-Arm: b") {
                break;
            }
            assert!(Instant::now() < deadline, "reload never took: {now}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
