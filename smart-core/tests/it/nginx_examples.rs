//! The nginx examples really work on a stock Debian nginx: each arm's files are rendered into a
//! copy of Debian 12's stock `nginx.conf` (tests/fixtures/debian-12-nginx.conf, paths moved into a
//! temp prefix) and a real nginx checks it with `nginx -t`; the file-cache example is also served,
//! and its live check header is seen on the wire for every arm.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use smart_core::{Defaults, Experiment, validate::validate_file};
use smart_testkit::{find_in_path, free_port, require_tool};

use crate::support::repo_root;

const STOCK: &str = include_str!("../fixtures/debian-12-nginx.conf");

/// A prefix that mirrors /etc/nginx with one arm's files in place and a loopback-only site.
struct Prefix {
    dir: tempfile::TempDir,
    port: u16,
}

impl Prefix {
    /// Renders `experiment`'s files for `arm` into a copy of the stock config.
    fn new(experiment: &Experiment, arm: &str) -> Prefix {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in [
            "etc/conf.d",
            "etc/modules-enabled",
            "etc/sites-enabled",
            "logs",
            "html",
            "tmp",
        ] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::write(root.join("etc/mime.types"), "types { text/html html; }\n").unwrap();
        std::fs::write(root.join("html/index.html"), "<p>hello</p>\n").unwrap();
        let port = free_port();
        std::fs::write(
            root.join("etc/sites-enabled/default"),
            format!(
                "server {{\n\tlisten 127.0.0.1:{port} default_server;\n\troot {};\n\tindex index.html;\n}}\n",
                root.join("html").display()
            ),
        )
        .unwrap();
        // Temp paths inside http {}, through conf.d, so nginx never touches /var/lib/nginx.
        let tmp = root.join("tmp").display().to_string();
        std::fs::write(
            root.join("etc/conf.d/00-test-paths.conf"),
            ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
                .map(|kind| format!("{kind}_temp_path {tmp}/{kind};\n"))
                .concat(),
        )
        .unwrap();

        let mut main_conf = STOCK.to_owned();
        for file in &experiment.apply().files {
            let rendered = experiment
                .render(file, arm)
                .unwrap()
                .expect("every arm checked here has values");
            if file.path == "/etc/nginx/nginx.conf" {
                let edit = file.edit.as_ref().expect("nginx.conf is only ever edited");
                let pattern = regex::Regex::new(&edit.pattern).unwrap();
                let matches = main_conf.lines().filter(|l| pattern.is_match(l)).count();
                assert_eq!(
                    matches,
                    1,
                    "{}: the edit must match one stock line",
                    experiment.name()
                );
                main_conf = main_conf
                    .lines()
                    .map(|l| {
                        if pattern.is_match(l) {
                            rendered.clone()
                        } else {
                            l.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
                    + "\n";
            } else {
                let relative = file
                    .path
                    .strip_prefix("/etc/nginx/")
                    .expect("nginx examples own files under /etc/nginx");
                std::fs::write(root.join("etc").join(relative), rendered).unwrap();
            }
        }
        let prefix = root.display().to_string();
        let main_conf = main_conf
            .replace("/etc/nginx/", &format!("{prefix}/etc/"))
            .replace("/run/nginx.pid", &format!("{prefix}/nginx.pid"))
            .replace("/var/log/nginx/", &format!("{prefix}/logs/"));
        std::fs::write(root.join("etc/nginx.conf"), main_conf).unwrap();
        Prefix { dir, port }
    }

    fn args(&self) -> Vec<String> {
        let prefix = self.dir.path().display().to_string();
        vec![
            "-p".into(),
            prefix.clone(),
            "-c".into(),
            format!("{prefix}/etc/nginx.conf"),
        ]
    }

    /// `nginx -t` on this prefix: Ok or nginx's complaint.
    fn check(&self) -> Result<(), String> {
        let out = Command::new(nginx())
            .args(self.args())
            .arg("-t")
            .output()
            .unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Starts nginx in the foreground on this prefix.
    fn serve(&self) -> Running<'_> {
        let child = Command::new(nginx())
            .args(self.args())
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Running {
            prefix: self,
            child,
        }
    }
}

struct Running<'p> {
    prefix: &'p Prefix,
    child: Child,
}

impl Running<'_> {
    /// The value of `header` in the response to `GET /`, waiting up to 10 s for nginx to listen.
    fn header(&mut self, header: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let response = loop {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "nginx exited early"
            );
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.prefix.port)) {
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                stream
                    .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                    .unwrap();
                let mut text = String::new();
                stream.read_to_string(&mut text).unwrap();
                break text;
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        response.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case(header)
                .then(|| value.trim().to_owned())
        })
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = Command::new(nginx())
            .args(self.prefix.args())
            .args(["-s", "stop"])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx() -> PathBuf {
    find_in_path("nginx").unwrap_or_else(|| "nginx".into())
}

fn example(name: &str) -> Experiment {
    let path: PathBuf = repo_root().join("examples/experiments").join(name);
    validate_file(Path::new(&path), &Defaults::default()).unwrap()
}

/// The arms whose config the experiment renders: every variant, and the baseline when given.
fn rendered_arms(experiment: &Experiment) -> Vec<String> {
    let mut arms: Vec<String> = experiment
        .variants()
        .iter()
        .map(|v| v.name.clone())
        .collect();
    if experiment.baseline().is_some() {
        arms.push(smart_core::BASELINE.to_owned());
    }
    arms
}

#[test]
fn the_nginx_examples_pass_nginx_t_on_a_stock_debian_config() {
    if !require_tool(
        "nginx",
        "the_nginx_examples_pass_nginx_t_on_a_stock_debian_config",
    ) {
        return;
    }
    for name in [
        "nginx-file-cache.json",
        "nginx-workers.json",
        "nginx-gzip-level.json",
    ] {
        let experiment = example(name);
        for arm in rendered_arms(&experiment) {
            let prefix = Prefix::new(&experiment, &arm);
            if let Err(complaint) = prefix.check() {
                panic!("{name}, arm {arm}: nginx -t failed: {complaint}");
            }
        }
    }
}

#[test]
fn a_second_gzip_directive_would_fail_which_is_why_the_example_edits() {
    if !require_tool(
        "nginx",
        "a_second_gzip_directive_would_fail_which_is_why_the_example_edits",
    ) {
        return;
    }
    let experiment = example("nginx-file-cache.json");
    let prefix = Prefix::new(&experiment, "cache-1k");
    std::fs::write(prefix.dir.path().join("etc/conf.d/gzip.conf"), "gzip on;\n").unwrap();
    let complaint = prefix.check().unwrap_err();
    assert!(
        complaint.contains("\"gzip\" directive is duplicate"),
        "{complaint}"
    );
}

#[test]
fn the_file_cache_example_serves_its_live_check_header_for_every_arm() {
    if !require_tool(
        "nginx",
        "the_file_cache_example_serves_its_live_check_header_for_every_arm",
    ) {
        return;
    }
    let experiment = example("nginx-file-cache.json");
    let live = experiment.apply().live_check.clone().expect("a live check");
    for arm in rendered_arms(&experiment) {
        let prefix = Prefix::new(&experiment, &arm);
        let mut running = prefix.serve();
        let want = experiment.render_text(&live.equals, &arm).unwrap();
        assert_eq!(running.header(&live.header), want, "arm {arm}");
    }
}
