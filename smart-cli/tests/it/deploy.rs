//! Checks of `deploy/`: the systemd units (verified against the freshly built binary, and their
//! sandbox scored), the polkit rule, the nginx dashboard site (served by a real nginx), install.sh
//! in a staging root (twice, then --uninstall), ufw.sh, shellcheck on every script, cloud-init.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use smart_testkit::{Nginx, require_tool};

const BIN: &str = env!("CARGO_BIN_EXE_smart");

/// The units install.sh installs, as named in `deploy/systemd/`.
const UNITS: &[&str] = &[
    "smart-agent.service",
    "smart-agent.timer",
    "smart-recover.service",
    "smart-nginx-test.service",
    "smart-somaxconn@.service",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn deploy(path: &str) -> PathBuf {
    repo_root().join("deploy").join(path)
}

fn text(output: &[u8]) -> String {
    String::from_utf8_lossy(output).into_owned()
}

/// Runs `cmd`, asserting that it exits 0; returns its output.
fn ok(cmd: &mut Command) -> Output {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

/// `deploy/install.sh --root ROOT --binary <the built smart> EXTRA...`.
fn install(root: &Path, extra: &[&str]) -> Output {
    ok(Command::new(deploy("install.sh"))
        .arg("--root")
        .arg(root)
        .args(["--binary", BIN])
        .args(extra)
        .env("SMART_DASHBOARD_PASSWORD", "s3cret"))
}

/// Every entry under `root`: its mode and type, and a file's SHA-256 or a link's target.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let what = if meta.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                format!("dir {mode:o}")
            } else {
                let hash = Sha256::digest(fs::read(&path).unwrap());
                format!("file {mode:o} {hash:x}")
            };
            let name = path.strip_prefix(root).unwrap().display().to_string();
            out.insert(name, what);
        }
    }
    out
}

/// The `Key=value` lines of a unit file, in order (a key given twice appears twice).
fn directives(unit: &str) -> Vec<(String, String)> {
    fs::read_to_string(deploy(&format!("systemd/{unit}")))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Copies of the units whose `ExecStart` runs the freshly built binary, in a temp dir; the
/// template unit is copied as an instance.
fn units_for_this_build() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for unit in UNITS {
        let body = fs::read_to_string(deploy(&format!("systemd/{unit}")))
            .unwrap()
            .replace("/usr/local/bin/smart ", &format!("{BIN} "));
        let name = unit.replace("@.", "@4096.");
        let path = dir.path().join(name);
        fs::write(&path, body).unwrap();
        paths.push(path);
    }
    (dir, paths)
}

fn analyze(args: &[&str], units: &[PathBuf]) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .args(units)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn units_pass_systemd_analyze_verify_against_the_built_binary() {
    let name = "deploy::units_pass_systemd_analyze_verify_against_the_built_binary";
    if !require_tool("systemd-analyze", name)
        || !require_tool("nginx", name)
        || !require_tool("sysctl", name)
    {
        return;
    }
    let (dir, units) = units_for_this_build();
    let output = analyze(&["verify", "--man=no"], &units);
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "systemd-analyze verify: {}\n{}",
        output.status,
        text(&output.stderr)
    );
    // The check bites: an ExecStart whose binary is missing fails it.
    let broken = dir.path().join("smart-broken.service");
    fs::write(
        &broken,
        fs::read_to_string(&units[0])
            .unwrap()
            .replace(BIN, "/nonexistent/smart"),
    )
    .unwrap();
    let output = analyze(&["verify", "--man=no"], &[broken]);
    assert!(!output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn the_sandboxed_units_score_below_4_and_the_docs_say_so() {
    let name = "deploy::the_sandboxed_units_score_below_4_and_the_docs_say_so";
    if !require_tool("systemd-analyze", name)
        || !require_tool("nginx", name)
        || !require_tool("sysctl", name)
    {
        return;
    }
    let (_dir, units) = units_for_this_build();
    let security = fs::read_to_string(repo_root().join("docs/security.md")).unwrap();
    for unit in units
        .iter()
        .filter(|u| !u.to_string_lossy().ends_with(".timer"))
    {
        let output = analyze(
            &["security", "--offline=true", "--no-pager"],
            std::slice::from_ref(unit),
        );
        let out = text(&output.stdout);
        let line = out
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or_else(|| panic!("no score for {}: {out}", unit.display()));
        // "→ Overall exposure level for smart-agent.service: 1.2 OK 🙂"
        let (unit_name, rest) = line
            .split_once("Overall exposure level for ")
            .unwrap()
            .1
            .split_once(": ")
            .unwrap();
        let score: f64 = rest.split_whitespace().next().unwrap().parse().unwrap();
        assert!(score < 4.0, "{line}");
        let reported = format!("{unit_name}: {score:.1}");
        assert!(
            security.contains(&reported),
            "docs/security.md should report `{reported}` (systemd-analyze security --offline=true)"
        );
    }
}

#[test]
fn the_units_run_the_agent_on_schedule_in_a_sandbox() {
    let check = |unit: &str, key: &str, value: &str| {
        let found = directives(unit);
        assert!(
            found.iter().any(|(k, v)| k == key && v == value),
            "{unit}: expected {key}={value}, found {:?}",
            found.iter().filter(|(k, _)| k == key).collect::<Vec<_>>()
        );
    };
    check(
        "smart-agent.service",
        "ExecStart",
        "/usr/local/bin/smart --config /etc/smart/smart.toml run --once",
    );
    check(
        "smart-recover.service",
        "ExecStart",
        "/usr/local/bin/smart --config /etc/smart/smart.toml recover",
    );
    check(
        "smart-recover.service",
        "Before",
        "nginx.service smart-agent.service multi-user.target shutdown.target",
    );
    check("smart-agent.timer", "OnCalendar", "hourly");
    check("smart-agent.timer", "RandomizedDelaySec", "15min");
    check("smart-agent.timer", "Persistent", "true");
    for unit in ["smart-agent.service", "smart-recover.service"] {
        check(unit, "User", "smart");
        check(unit, "NoNewPrivileges", "yes");
        check(unit, "ProtectSystem", "strict");
        check(
            unit,
            "ReadWritePaths",
            "/var/lib/smart /var/www/smart /etc/nginx/smart.d",
        );
        check(unit, "ProtectHome", "yes");
        check(unit, "PrivateTmp", "yes");
        check(unit, "CapabilityBoundingSet", "");
        check(unit, "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6");
        check(unit, "SystemCallFilter", "@system-service");
    }
}

#[test]
fn polkit_allows_exactly_the_privileged_steps_of_the_shipped_experiments() {
    if !require_tool("node", "deploy::polkit_allows_exactly_the_privileged_steps") {
        return;
    }
    let cases: &[(&str, &str, &str, &str, bool)] = &[
        // (action, user, unit, verb, allowed)
        ("manage-units", "smart", "nginx.service", "reload", true),
        (
            "manage-units",
            "smart",
            "smart-nginx-test.service",
            "start",
            true,
        ),
        (
            "manage-units",
            "smart",
            "smart-somaxconn@4096.service",
            "start",
            true,
        ),
        ("manage-units", "smart", "nginx.service", "stop", false),
        ("manage-units", "smart", "nginx.service", "restart", false),
        ("manage-units", "smart", "ssh.service", "reload", false),
        (
            "manage-units",
            "smart",
            "smart-nginx-test.service",
            "stop",
            false,
        ),
        (
            "manage-units",
            "smart",
            "smart-somaxconn@.service",
            "start",
            false,
        ),
        (
            "manage-units",
            "smart",
            "smart-somaxconn@1 x.service",
            "start",
            false,
        ),
        (
            "manage-units",
            "smart",
            "smart-somaxconn@12345678.service",
            "start",
            false,
        ),
        (
            "manage-units",
            "smart",
            "smart-somaxconn@-1.service",
            "start",
            false,
        ),
        (
            "manage-units",
            "smart",
            "xsmart-somaxconn@1.service",
            "start",
            false,
        ),
        ("manage-units", "www-data", "nginx.service", "reload", false),
        (
            "manage-unit-files",
            "smart",
            "nginx.service",
            "reload",
            false,
        ),
    ];
    let mut js = String::from(
        "const fs = require('fs');\nlet rule;\n\
         const polkit = { Result: { YES: 'yes', NO: 'no', NOT_HANDLED: null }, addRule(f) { rule = f; } };\n",
    );
    js.push_str(&format!(
        "eval(fs.readFileSync({:?}, 'utf8'));\n",
        deploy("polkit/50-smart.rules").display().to_string()
    ));
    js.push_str("const out = [];\n");
    for (action, user, unit, verb, _) in cases {
        js.push_str(&format!(
            "out.push(rule({{ id: 'org.freedesktop.systemd1.{action}', lookup: k => k === 'unit' ? {unit:?} : k === 'verb' ? {verb:?} : undefined }}, {{ user: {user:?} }}) === 'yes');\n"
        ));
    }
    js.push_str("console.log(JSON.stringify(out));\n");
    let output = ok(Command::new("node").args(["-e", &js]));
    let got: Vec<bool> = serde_json::from_slice(&output.stdout).unwrap();
    for (case, allowed) in cases.iter().zip(got) {
        assert_eq!(allowed, case.4, "{case:?}");
    }
}

#[test]
fn the_shipped_experiments_validate_and_use_only_what_polkit_allows() {
    let mut paths: Vec<PathBuf> = fs::read_dir(deploy("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 3);
    ok(Command::new(BIN)
        .arg("validate")
        .arg("--config")
        .arg(deploy("smart.toml"))
        .args(&paths));
    for path in &paths {
        let json: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        let apply = &json["apply"];
        for file in apply["files"].as_array().into_iter().flatten() {
            let target = file["path"].as_str().unwrap();
            assert!(target.starts_with("/etc/nginx/smart.d/"), "{target}");
        }
        let argv = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect()
        };
        if !apply["validate"].is_null() {
            assert_eq!(
                argv(&apply["validate"]),
                ["systemctl", "start", "smart-nginx-test.service"]
            );
        }
        if !apply["reload"].is_null() {
            assert_eq!(
                argv(&apply["reload"]),
                ["systemctl", "reload", "nginx.service"]
            );
        }
        if !apply["command"].is_null() {
            assert_eq!(
                argv(&apply["command"]["set"]),
                [
                    "systemctl",
                    "start",
                    "smart-somaxconn@{{ somaxconn }}.service"
                ]
            );
        }
    }
}

/// A plain HTTP/1.0 GET to 127.0.0.1:`port`; returns the whole response.
fn get(port: u16, host: &str, auth: Option<&str>) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = auth.map_or_else(String::new, |a| format!("Authorization: Basic {a}\r\n"));
    write!(stream, "GET / HTTP/1.0\r\nHost: {host}\r\n{auth}\r\n").unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

/// How many child processes (workers, old or new) the nginx master `pid` has.
fn workers(pid: u32) -> usize {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .is_some_and(|ppid| ppid == pid.to_string())
        })
        .count()
}

/// Reloads `nginx` and waits until `ready` holds for a response to `GET /`.
fn reload_until(nginx: &Nginx, ready: impl Fn(&str) -> bool) -> String {
    let argv = nginx.validate_argv();
    ok(Command::new(&argv[0]).args(&argv[1..]));
    let argv = nginx.reload_argv();
    ok(Command::new(&argv[0]).args(&argv[1..]));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = get(nginx.port(), "203.0.113.7", None);
        // Old workers may still accept a connection or two until they see the signal.
        if ready(&response) && workers(nginx.pid()) == 1 {
            return response;
        }
        assert!(Instant::now() < deadline, "reload never took: {response}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_dashboard_site_serves_with_security_headers_basic_auth_and_tls() {
    let name = "deploy::the_dashboard_site_serves_with_security_headers_basic_auth_and_tls";
    if !require_tool("nginx", name) || !require_tool("openssl", name) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let r = root.path().display().to_string();
    install(
        root.path(),
        &["--basic-auth", "admin", "--tls-domain", "dash.test"],
    );
    // A certificate where certbot would put it.
    let live = root.path().join("etc/letsencrypt/live/dash.test");
    fs::create_dir_all(&live).unwrap();
    ok(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=dash.test",
            "-keyout",
        ])
        .arg(live.join("privkey.pem"))
        .arg("-out")
        .arg(live.join("fullchain.pem")));
    // The real dashboard, as the agent renders it (empty state: no runs yet).
    let toml = root.path().join("etc/smart/smart.toml");
    let config = fs::read_to_string(&toml)
        .unwrap()
        .replace("\"/var/", &format!("\"{r}/var/"))
        .replace("\"/etc/", &format!("\"{r}/etc/"));
    fs::write(&toml, config).unwrap();
    ok(Command::new(BIN)
        .arg("--config")
        .arg(&toml)
        .arg("dashboard"));
    let index = fs::read_to_string(root.path().join("var/www/smart/index.html")).unwrap();
    // Nothing the site's CSP would block: no inline scripts or styles.
    assert!(
        !index.contains("<style") && !index.contains(" style="),
        "{index}"
    );
    for script in index.split("<script").skip(1) {
        let tag = script.split('>').next().unwrap();
        assert!(tag.contains("src="), "inline script: {index}");
    }
    let marker = "dashboard.css";
    assert!(index.contains(marker), "{index}");
    // An experiment's file, as the agent would render it into smart.d.
    fs::write(
        root.path().join("etc/nginx/smart.d/file-cache.conf"),
        "open_file_cache max=1000 inactive=20s;\ngzip_comp_level 9;\ngzip_min_length 256;\n",
    )
    .unwrap();

    let nginx = Nginx::start("").unwrap();
    let tls_port = smart_testkit::free_port();
    // The installed files, moved into this test's prefix: absolute paths into the staging root,
    // the public listen lines onto loopback ports.
    let staged = |path: &str| {
        fs::read_to_string(root.path().join(path))
            .unwrap()
            .replace(" /etc/", &format!(" {r}/etc/"))
            .replace(" /var/www/", &format!(" {r}/var/www/"))
            .replace(
                "listen 80 default_server;",
                &format!("listen 127.0.0.1:{};", nginx.port()),
            )
            .replace("listen 80;", &format!("listen 127.0.0.1:{};", nginx.port()))
            .replace(
                "listen 443 ssl http2;",
                &format!("listen 127.0.0.1:{tls_port} ssl;"),
            )
            .lines()
            .filter(|l| !l.contains("listen [::]"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for conf in ["etc/nginx/conf.d/smart.conf", "etc/smart/nginx-auth.conf"] {
        fs::write(root.path().join(conf), staged(conf)).unwrap();
    }
    let site = [
        staged("etc/nginx/conf.d/smart.conf"),
        staged("etc/nginx/sites-available/smart-dashboard.conf"),
        staged("etc/nginx/sites-available/smart-dashboard-tls.conf"),
    ]
    .join("\n");
    fs::write(nginx.site_conf_path(), site).unwrap();
    let response = reload_until(&nginx, |r| r.contains(marker));
    // Loopback gets in without a password (smart's own probes).
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    for header in [
        "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
        "X-Content-Type-Options: nosniff",
        "Referrer-Policy: no-referrer",
        "X-Frame-Options: DENY",
    ] {
        assert!(response.contains(header), "missing {header}: {response}");
    }
    assert!(!response.contains("Server: nginx/"), "{response}");
    // The domain's plain HTTP redirects to HTTPS.
    let redirect = get(nginx.port(), "dash.test", None);
    assert!(
        redirect.starts_with("HTTP/1.1 301") && redirect.contains("Location: https://dash.test/"),
        "{redirect}"
    );
    // Anyone else must log in: drop the loopback exemption to see it.
    let auth = root.path().join("etc/smart/nginx-auth.conf");
    let body = fs::read_to_string(&auth).unwrap();
    fs::write(&auth, body.replace("allow 127.0.0.1;", "")).unwrap();
    let denied = reload_until(&nginx, |r| !r.contains(marker));
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
    assert!(denied.contains("Content-Security-Policy"), "{denied}");
    // base64("admin:s3cret")
    let allowed = get(nginx.port(), "203.0.113.7", Some("YWRtaW46czNjcmV0"));
    assert!(allowed.contains(marker), "{allowed}");
    let wrong = get(nginx.port(), "203.0.113.7", Some("YWRtaW46d3Jvbmc="));
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
}

#[test]
fn install_twice_changes_nothing_and_uninstall_restores_the_root() {
    let root = tempfile::tempdir().unwrap();
    // A stock Debian nginx: its default site is enabled and must step aside, then come back.
    let available = root.path().join("etc/nginx/sites-available");
    fs::create_dir_all(&available).unwrap();
    fs::create_dir_all(root.path().join("etc/nginx/sites-enabled")).unwrap();
    fs::write(
        available.join("default"),
        "server { listen 80 default_server; }\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "/etc/nginx/sites-available/default",
        root.path().join("etc/nginx/sites-enabled/default"),
    )
    .unwrap();
    let before = tree(root.path());

    let args = ["--basic-auth", "admin", "--tls-domain", "dash.test"];
    install(root.path(), &args);
    let first = tree(root.path());
    let second_run = install(root.path(), &args);
    assert_eq!(first, tree(root.path()), "the second run changed the tree");
    let said = text(&second_run.stdout);
    for word in ["installed", "created", "linked", "removed", "disabled"] {
        assert!(!said.contains(word), "second run: {said}");
    }

    let check = |path: &str, want: &str| {
        let got = first.get(path).map(String::as_str).unwrap_or("missing");
        assert!(got.starts_with(want), "{path}: {got}, expected {want}");
    };
    check("usr/local/bin/smart", "file 755");
    check("etc/smart", "dir 755");
    check("etc/smart/smart.toml", "file 644");
    check("etc/smart/experiments/nginx-file-cache.json", "file 644");
    check("etc/smart/experiments/sysctl-somaxconn.json", "file 644");
    check("etc/smart/htpasswd", "file 640");
    check("etc/smart/nginx-auth.conf", "file 644");
    check("var/lib/smart", "dir 750");
    check("var/www/smart", "dir 2750");
    check("etc/nginx/smart.d", "dir 755");
    check("etc/nginx/conf.d/smart.conf", "file 644");
    check("etc/nginx/snippets/smart-headers.conf", "file 644");
    check("etc/polkit-1/rules.d/50-smart.rules", "file 644");
    for unit in UNITS {
        check(&format!("etc/systemd/system/{unit}"), "file 644");
    }
    check(
        "etc/nginx/sites-enabled/smart-dashboard.conf",
        "link -> /etc/nginx/sites-available/smart-dashboard.conf",
    );
    check(
        "etc/nginx/sites-enabled/smart-dashboard-tls.conf",
        "link -> /etc/nginx/sites-available/smart-dashboard-tls.conf",
    );
    check("etc/nginx/sites-enabled/default", "missing");
    if smart_testkit::find_in_path("systemctl").is_some() {
        check(
            "etc/systemd/system/timers.target.wants/smart-agent.timer",
            "link -> /etc/systemd/system/smart-agent.timer",
        );
        check(
            "etc/systemd/system/multi-user.target.wants/smart-recover.service",
            "link -> /etc/systemd/system/smart-recover.service",
        );
    }
    let tls = fs::read_to_string(
        root.path()
            .join("etc/nginx/sites-available/smart-dashboard-tls.conf"),
    )
    .unwrap();
    assert!(
        tls.contains("/etc/letsencrypt/live/dash.test/privkey.pem") && !tls.contains("@DOMAIN@")
    );
    let htpasswd = fs::read_to_string(root.path().join("etc/smart/htpasswd")).unwrap();
    assert!(htpasswd.starts_with("admin:$6$") && !htpasswd.contains("s3cret"));

    ok(Command::new(deploy("install.sh"))
        .arg("--root")
        .arg(root.path())
        .arg("--uninstall"));
    assert_eq!(
        tree(root.path()),
        before,
        "--uninstall left something behind"
    );
}

#[test]
fn install_rejects_bad_arguments_without_touching_anything() {
    let root = tempfile::tempdir().unwrap();
    let check = |args: &[&str], message: &str| {
        let output = Command::new(deploy("install.sh"))
            .arg("--root")
            .arg(root.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            text(&output.stderr).contains(message),
            "{}",
            text(&output.stderr)
        );
        assert!(tree(root.path()).is_empty(), "{args:?} wrote files");
    };
    check(&["--frobnicate"], "unknown argument '--frobnicate'");
    check(&["--basic-auth", "a b"], "--basic-auth a b: use letters");
    check(
        &["--tls-domain", "x;y"],
        "--tls-domain x;y: not a domain name",
    );
    check(
        &["--binary", "/nonexistent/smart"],
        "--binary /nonexistent/smart: not an executable file",
    );
}

#[test]
fn ufw_dry_run_opens_ssh_http_and_https_only() {
    let run = |args: &[&str]| {
        Command::new(deploy("ufw.sh"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let expected = "ufw default deny incoming\n\
                    ufw default allow outgoing\n\
                    ufw limit 22/tcp comment ssh\n\
                    ufw allow 80/tcp comment http\n\
                    ufw allow 443/tcp comment https\n\
                    ufw --force enable\n";
    for _ in 0..2 {
        let output = run(&["--dry-run"]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert_eq!(text(&output.stdout), expected);
    }
    let moved = run(&["--dry-run", "--ssh-port", "2222"]);
    assert!(text(&moved.stdout).contains("ufw limit 2222/tcp comment ssh\n"));
    for bad in ["0", "65536", "ssh", "22;reboot"] {
        let output = run(&["--dry-run", "--ssh-port", bad]);
        assert_eq!(output.status.code(), Some(2), "--ssh-port {bad}");
        assert!(output.stdout.is_empty());
    }
}

/// The cloud-config, parsed.
fn cloud_config() -> yaml_rust2::Yaml {
    let text = fs::read_to_string(deploy("cloud-init.yaml")).unwrap();
    assert!(
        text.starts_with("#cloud-config\n"),
        "cloud-init needs the #cloud-config line first"
    );
    let mut docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

#[test]
fn every_script_passes_shellcheck() {
    if !require_tool("shellcheck", "deploy::every_script_passes_shellcheck") {
        return;
    }
    let mut scripts = Vec::new();
    // .ci/run too: CI's own script (it drives the package build and scripts/test-systemd).
    for dir in ["deploy", "scripts", ".ci"] {
        let mut stack = vec![repo_root().join(dir)];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if fs::read(&path).unwrap().starts_with(b"#!") {
                    scripts.push(path);
                }
            }
        }
    }
    // The scripts cloud-init writes count too.
    let extracted = tempfile::tempdir().unwrap();
    for file in cloud_config()["write_files"].as_vec().unwrap() {
        let content = file["content"].as_str().unwrap();
        if content.starts_with("#!") {
            let path = extracted
                .path()
                .join(format!("cloud-init-{}", scripts.len()));
            fs::write(&path, content).unwrap();
            scripts.push(path);
        }
    }
    assert!(
        ["install.sh", "scripts/test-systemd", ".ci/run"]
            .iter()
            .all(|name| scripts.iter().any(|s| s.ends_with(name)))
            && scripts.len() >= 4,
        "{scripts:?}"
    );
    ok(Command::new("shellcheck").args(&scripts));
}

#[test]
fn cloud_init_installs_the_packages_and_runs_install_and_ufw() {
    let config = cloud_config();
    // Only keys cloud-init knows (a typo would be ignored by it, silently).
    let known = [
        "package_update",
        "packages",
        "write_files",
        "runcmd",
        "final_message",
    ];
    for (key, _) in config.as_hash().unwrap() {
        let key = key.as_str().unwrap();
        assert!(known.contains(&key), "unexpected cloud-config key {key}");
    }
    assert_eq!(config["package_update"].as_bool(), Some(true));
    let packages: Vec<&str> = config["packages"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for needed in ["nginx", "ufw", "polkitd", "openssl", "git"] {
        assert!(packages.contains(&needed), "packages lack {needed}");
    }
    let files = config["write_files"].as_vec().unwrap();
    for file in files {
        assert!(file["path"].as_str().unwrap().starts_with('/'));
        assert!(file["content"].as_str().is_some());
        assert!(file["permissions"].as_str().unwrap().starts_with('0'));
    }
    let runcmd = config["runcmd"].as_vec().unwrap();
    let first = runcmd[0].as_vec().unwrap()[0].as_str().unwrap();
    let bootstrap = files
        .iter()
        .find(|f| f["path"].as_str() == Some(first))
        .unwrap_or_else(|| panic!("runcmd runs {first}, which write_files does not write"));
    assert_eq!(bootstrap["permissions"].as_str(), Some("0755"));
    let script = bootstrap["content"].as_str().unwrap();
    let install_at = script.find("/deploy/install.sh").expect("runs install.sh");
    let ufw_at = script.find("/deploy/ufw.sh").expect("runs ufw.sh");
    assert!(
        install_at < ufw_at,
        "the firewall goes up after the install"
    );
    assert!(
        script.contains("sha256sum -c"),
        "a downloaded binary is checked"
    );
}
