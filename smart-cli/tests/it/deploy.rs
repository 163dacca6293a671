//! Checks of `deploy/`: the systemd units (verified against the freshly built binary, and their
//! sandbox scored), the polkit rule and the sysctl unit's own bounds, the nginx dashboard site
//! (served by a real nginx), install.sh in a staging root (twice, then --uninstall), the Debian
//! package (built by scripts/build-deb, the same files as install.sh, lintian clean), the man page,
//! ufw.sh, shellcheck on every script, cloud-init.

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

/// The units the package installs, as named in `deploy/systemd/`.
const UNITS: &[&str] = &[
    "smart-agent.service",
    "smart-agent.timer",
    "smart-recover.service",
    "smart-nginx-test.service",
    "smart-somaxconn@.service",
    "smart-tcp-fastopen@.service",
    "smart-tcp-slow-start@.service",
    "smart-default-qdisc@.service",
];

/// The instance each template unit is checked as (a value it admits).
fn example_instance(unit: &str) -> &'static str {
    match unit {
        "smart-tcp-fastopen@.service" => "3",
        "smart-tcp-slow-start@.service" => "0",
        "smart-default-qdisc@.service" => "fq",
        _ => "4096",
    }
}

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
            .replace("/usr/bin/smart ", &format!("{BIN} "));
        let name = unit.replace("@.", &format!("@{}.", example_instance(unit)));
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
        "/usr/bin/smart --config /etc/smart/smart.toml run --once",
    );
    check(
        "smart-recover.service",
        "ExecStart",
        "/usr/bin/smart --config /etc/smart/smart.toml recover",
    );
    // A deliberate stop (exit 5) and a skipped round (exit 4) are no failure of the unit.
    check("smart-agent.service", "SuccessExitStatus", "4 5");
    // No ordering against nginx.service: the revert's reload would wait behind the stop job.
    for (key, value) in directives("smart-agent.service") {
        if key == "After" || key == "Before" {
            assert!(
                !value.contains("nginx"),
                "smart-agent.service {key}={value}"
            );
        }
    }
    check(
        "smart-nginx-test.service",
        "CapabilityBoundingSet",
        "CAP_NET_BIND_SERVICE CAP_DAC_OVERRIDE CAP_CHOWN",
    );
    check(
        "smart-recover.service",
        "Before",
        "nginx.service smart-agent.service multi-user.target shutdown.target",
    );
    check("smart-agent.timer", "OnCalendar", "hourly");
    check("smart-agent.timer", "RandomizedDelaySec", "15min");
    check("smart-agent.timer", "Persistent", "true");
    // Only the agent writes the metrics textfile for node-exporter (docs/monitoring.md).
    check(
        "smart-agent.service",
        "ReadWritePaths",
        "/var/lib/smart /var/www/smart /etc/nginx/smart.d -/var/lib/prometheus/node-exporter",
    );
    check(
        "smart-recover.service",
        "ReadWritePaths",
        "/var/lib/smart /var/www/smart /etc/nginx/smart.d",
    );
    for unit in ["smart-agent.service", "smart-recover.service"] {
        check(unit, "User", "smart");
        check(unit, "NoNewPrivileges", "yes");
        check(unit, "ProtectSystem", "strict");
        check(unit, "ProtectHome", "yes");
        check(unit, "PrivateTmp", "yes");
        check(unit, "CapabilityBoundingSet", "");
        check(unit, "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6");
        check(unit, "SystemCallFilter", "@system-service");
    }
}

/// What the shipped polkit rule answers for each `(action, user, unit, verb)`: allowed or not.
fn polkit_allows(cases: &[(&str, &str, &str, &str)]) -> Vec<bool> {
    let mut js = String::from(
        "const fs = require('fs');\nlet rule;\n\
         const polkit = { Result: { YES: 'yes', NO: 'no', NOT_HANDLED: null }, addRule(f) { rule = f; } };\n",
    );
    js.push_str(&format!(
        "eval(fs.readFileSync({:?}, 'utf8'));\n",
        deploy("polkit/50-smart.rules").display().to_string()
    ));
    js.push_str("const out = [];\n");
    for (action, user, unit, verb) in cases {
        js.push_str(&format!(
            "out.push(rule({{ id: 'org.freedesktop.systemd1.{action}', lookup: k => k === 'unit' ? {unit:?} : k === 'verb' ? {verb:?} : undefined }}, {{ user: {user:?} }}) === 'yes');\n"
        ));
    }
    js.push_str("console.log(JSON.stringify(out));\n");
    let output = ok(Command::new("node").args(["-e", &js]));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// somaxconn values around and inside the bounds both the rule and the unit enforce (128-65535,
/// plain decimal): (instance, admitted).
const SOMAXCONN: &[(&str, bool)] = &[
    ("128", true),
    ("1024", true),
    ("4096", true),
    ("16384", true),
    ("65535", true),
    ("1", false),
    ("127", false),
    ("65536", false),
    ("100000", false),
    ("0200", false),
    ("0", false),
    ("-1", false),
    ("1e4", false),
    ("4096 x", false),
    ("", false),
];

#[test]
fn polkit_allows_exactly_the_privileged_steps_of_the_shipped_experiments() {
    if !require_tool("node", "deploy::polkit_allows_exactly_the_privileged_steps") {
        return;
    }
    let mut cases: Vec<(&str, &str, String, &str, bool)> = vec![
        // (action, user, unit, verb, allowed)
        (
            "manage-units",
            "smart",
            "nginx.service".into(),
            "reload",
            true,
        ),
        (
            "manage-units",
            "smart",
            "smart-nginx-test.service".into(),
            "start",
            true,
        ),
        (
            "manage-units",
            "smart",
            "nginx.service".into(),
            "stop",
            false,
        ),
        (
            "manage-units",
            "smart",
            "nginx.service".into(),
            "restart",
            false,
        ),
        (
            "manage-units",
            "smart",
            "ssh.service".into(),
            "reload",
            false,
        ),
        (
            "manage-units",
            "smart",
            "smart-nginx-test.service".into(),
            "stop",
            false,
        ),
        (
            "manage-units",
            "smart",
            "smart-somaxconn@4096.service".into(),
            "stop",
            false,
        ),
        (
            "manage-units",
            "smart",
            "xsmart-somaxconn@4096.service".into(),
            "start",
            false,
        ),
        (
            "manage-units",
            "smart",
            "smart-somaxconn@4096.service.x".into(),
            "start",
            false,
        ),
        (
            "manage-units",
            "www-data",
            "nginx.service".into(),
            "reload",
            false,
        ),
        (
            "manage-unit-files",
            "smart",
            "nginx.service".into(),
            "reload",
            false,
        ),
    ];
    // Every value the shipped experiment sets, and the kernel defaults a revert puts back.
    for (value, allowed) in SOMAXCONN {
        cases.push((
            "manage-units",
            "smart",
            format!("smart-somaxconn@{value}.service"),
            "start",
            *allowed,
        ));
    }
    let asked: Vec<(&str, &str, &str, &str)> = cases
        .iter()
        .map(|(a, u, unit, v, _)| (*a, *u, unit.as_str(), *v))
        .collect();
    for (case, allowed) in cases.iter().zip(polkit_allows(&asked)) {
        assert_eq!(allowed, case.4, "{case:?}");
    }
}

/// The sysctl units with a list of values (`smart init --detect`'s kernel knobs): (unit, instance,
/// admitted) around and inside what both the rule and the unit admit.
const SYSCTL_CHOICES: &[(&str, &str, bool)] = &[
    ("smart-tcp-fastopen@.service", "1", true),
    ("smart-tcp-fastopen@.service", "3", true),
    ("smart-tcp-fastopen@.service", "0", false),
    ("smart-tcp-fastopen@.service", "2", false),
    ("smart-tcp-fastopen@.service", "31", false),
    ("smart-tcp-fastopen@.service", "1 x", false),
    ("smart-tcp-fastopen@.service", "", false),
    ("smart-tcp-slow-start@.service", "0", true),
    ("smart-tcp-slow-start@.service", "1", true),
    ("smart-tcp-slow-start@.service", "00", false),
    ("smart-tcp-slow-start@.service", "-o", false),
    ("smart-tcp-slow-start@.service", "3", false),
    ("smart-default-qdisc@.service", "fq", true),
    ("smart-default-qdisc@.service", "fq_codel", true),
    ("smart-default-qdisc@.service", "pfifo_fast", true),
    ("smart-default-qdisc@.service", "noqueue", false),
    ("smart-default-qdisc@.service", "fq_codelx", false),
    ("smart-default-qdisc@.service", "FQ", false),
    ("smart-default-qdisc@.service", "1", false),
];

/// `smart-x@.service` with the instance `value`: `smart-x@value.service`.
fn instance(unit: &str, value: &str) -> String {
    unit.replace("@.", &format!("@{value}."))
}

/// The `ExecStartPre=` argvs of `smart-somaxconn@.service` with the instance `value` put in, as
/// systemd runs them (`%i` replaced, `$$` a literal `$`).
fn somaxconn_checks(value: &str) -> Vec<Vec<String>> {
    unit_checks("smart-somaxconn@.service", value)
}

/// The `ExecStartPre=` argvs of the template `unit` with the instance `value` put in.
fn unit_checks(unit: &str, value: &str) -> Vec<Vec<String>> {
    directives(unit)
        .into_iter()
        .filter(|(k, _)| k == "ExecStartPre")
        .map(|(_, v)| {
            v.split_whitespace()
                .map(|w| w.replace("%i", value).replace("$$", "$"))
                .collect()
        })
        .collect()
}

#[test]
fn the_sysctl_unit_refuses_the_values_polkit_refuses() {
    if !require_tool(
        "node",
        "deploy::the_sysctl_unit_refuses_the_values_polkit_refuses",
    ) {
        return;
    }
    let asked: Vec<String> = SOMAXCONN
        .iter()
        .map(|(value, _)| format!("smart-somaxconn@{value}.service"))
        .collect();
    let polkit = polkit_allows(
        &asked
            .iter()
            .map(|unit| ("manage-units", "smart", unit.as_str(), "start"))
            .collect::<Vec<_>>(),
    );
    assert!(
        !somaxconn_checks("4096").is_empty(),
        "no ExecStartPre check"
    );
    for ((value, admitted), by_polkit) in SOMAXCONN.iter().zip(polkit) {
        // `%i` fills one argument, whatever it holds (as "4096 x" shows).
        let passes = somaxconn_checks(value).iter().all(|argv| {
            Command::new(&argv[0])
                .args(&argv[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success()
        });
        assert_eq!(passes, *admitted, "the unit's checks on `{value}`");
        assert_eq!(by_polkit, *admitted, "polkit on `{value}`");
    }
    // The same for the sysctl units that admit a list of values.
    let asked: Vec<String> = SYSCTL_CHOICES
        .iter()
        .map(|(unit, value, _)| instance(unit, value))
        .collect();
    let polkit = polkit_allows(
        &asked
            .iter()
            .map(|unit| ("manage-units", "smart", unit.as_str(), "start"))
            .collect::<Vec<_>>(),
    );
    for ((unit, value, admitted), by_polkit) in SYSCTL_CHOICES.iter().zip(polkit) {
        let checks = unit_checks(unit, value);
        assert!(!checks.is_empty(), "{unit}: no ExecStartPre check");
        let passes = checks.iter().all(|argv| {
            Command::new(&argv[0])
                .args(&argv[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success()
        });
        assert_eq!(passes, *admitted, "{unit}'s checks on `{value}`");
        assert_eq!(by_polkit, *admitted, "polkit on {unit} `{value}`");
    }
    // Only `start`, only the smart user, only these unit names.
    let refused = polkit_allows(&[
        (
            "manage-units",
            "smart",
            "smart-tcp-fastopen@3.service",
            "stop",
        ),
        (
            "manage-units",
            "www-data",
            "smart-tcp-fastopen@3.service",
            "start",
        ),
        ("manage-units", "smart", "smart-other@1.service", "start"),
        (
            "manage-units",
            "smart",
            "xsmart-tcp-fastopen@3.service",
            "start",
        ),
        (
            "manage-units",
            "smart",
            "smart-tcp-fastopen@3.service.x",
            "start",
        ),
        (
            "manage-units",
            "smart",
            "smart-default-qdisc@constructor.service",
            "start",
        ),
    ]);
    assert_eq!(refused, [false; 6]);
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

/// A one-day self-signed P-256 certificate for `name` (`kind` `DNS` or `IP` in its
/// subjectAltName), written to `key` and `cert`.
fn self_signed(name: &str, kind: &str, key: &Path, cert: &Path) {
    ok(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", &format!("/CN={name}")])
        .args([
            "-addext",
            &format!("subjectAltName={kind}:{name}"),
            "-keyout",
        ])
        .arg(key)
        .arg("-out")
        .arg(cert));
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
    // The dirs the package's postinst creates (skipped in a staging root).
    for dir in ["var/www/smart", "etc/nginx/smart.d", "var/lib/smart"] {
        fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    // A certificate where certbot would put it.
    let live = root.path().join("etc/letsencrypt/live/dash.test");
    fs::create_dir_all(&live).unwrap();
    self_signed(
        "dash.test",
        "DNS",
        &live.join("privkey.pem"),
        &live.join("fullchain.pem"),
    );
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
    let first_run = install(root.path(), &args);
    let first = tree(root.path());
    let second_run = install(root.path(), &args);
    assert_eq!(first, tree(root.path()), "the second run changed the tree");
    let said = text(&second_run.stdout);
    for word in ["installed", "created", "linked", "removed", "disabled"] {
        assert!(!said.contains(word), "second run: {said}");
    }
    // The package's maintainer script does the rest on a real host; a staging root only says so.
    let said = text(&first_run.stdout);
    assert!(
        said.contains("skipped (--root): ") && said.contains("/deploy/debian/postinst configure"),
        "{said}"
    );

    let check = |path: &str, want: &str| {
        let got = first.get(path).map(String::as_str).unwrap_or("missing");
        assert!(got.starts_with(want), "{path}: {got}, expected {want}");
    };
    check("usr/bin/smart", "file 755");
    check("usr/share/man/man1/smart.1.gz", "file 644");
    check("usr/share/man/man1/smart-run.1.gz", "file 644");
    check("usr/share/bash-completion/completions/smart", "file 644");
    check("etc/smart", "dir 755");
    check("etc/smart/smart.toml", "file 644");
    check("etc/smart/experiments/nginx-file-cache.json", "file 644");
    check("etc/smart/experiments/sysctl-somaxconn.json", "file 644");
    check("etc/smart/htpasswd", "file 640");
    check("etc/smart/nginx-auth.conf", "file 644");
    check("etc/nginx/conf.d/smart.conf", "file 644");
    check("etc/nginx/snippets/smart-headers.conf", "file 644");
    check("usr/share/polkit-1/rules.d/50-smart.rules", "file 644");
    check("usr/share/doc/smart/deployment.md", "file 644");
    check(
        "usr/share/doc/smart/examples/experiments/nginx-gzip-level.json",
        "file 644",
    );
    for unit in UNITS {
        check(&format!("lib/systemd/system/{unit}"), "file 644");
    }
    // What the postinst creates with the smart user's ownership is not staged.
    check("var/lib/smart", "missing");
    check(
        "etc/nginx/sites-enabled/smart-dashboard.conf",
        "link -> /etc/nginx/sites-available/smart-dashboard.conf",
    );
    check(
        "etc/nginx/sites-enabled/smart-dashboard-tls.conf",
        "link -> /etc/nginx/sites-available/smart-dashboard-tls.conf",
    );
    check("etc/nginx/sites-enabled/default", "missing");
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
fn cloud_init_carries_the_bootstrap_script_and_needs_one_edit() {
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
    for needed in ["nginx", "ufw", "polkitd", "curl", "ca-certificates"] {
        assert!(packages.contains(&needed), "packages lack {needed}");
    }
    for compiler in ["build-essential", "gcc", "cargo", "rustc", "git"] {
        assert!(!packages.contains(&compiler), "packages install {compiler}");
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
    // The script the systemd test runs is the one cloud-init writes, byte for byte.
    assert_eq!(
        bootstrap["content"].as_str().unwrap(),
        fs::read_to_string(deploy("smart-bootstrap")).unwrap(),
        "deploy/cloud-init.yaml must carry deploy/smart-bootstrap verbatim"
    );
    // The one edit: the package's https URL and its checksum, and nothing else to fill in.
    let env = files
        .iter()
        .find(|f| f["path"].as_str() == Some("/etc/smart-install.env"))
        .expect("writes /etc/smart-install.env")["content"]
        .as_str()
        .unwrap();
    let keys: Vec<&str> = env.lines().map(|l| l.split('=').next().unwrap()).collect();
    assert_eq!(keys, ["SMART_DEB_URL", "SMART_DEB_SHA256"], "{env}");
    assert!(env.contains("SMART_DEB_URL=https://"), "{env}");
    let yaml = fs::read_to_string(deploy("cloud-init.yaml")).unwrap();
    for line in yaml.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for pair in words.windows(2) {
            assert!(
                !(pair[0].ends_with('|') && ["sh", "bash", "-", "sudo"].contains(&pair[1])),
                "cloud-init.yaml pipes into a shell: {line}"
            );
        }
    }
}

#[test]
fn cloud_init_yaml_passes_cloud_init_schema() {
    if !require_tool(
        "cloud-init",
        "deploy::cloud_init_yaml_passes_cloud_init_schema",
    ) {
        return;
    }
    let output = ok(Command::new("cloud-init")
        .args(["schema", "--config-file"])
        .arg(deploy("cloud-init.yaml")));
    assert!(
        text(&output.stdout).contains("Valid cloud-config"),
        "{}",
        text(&output.stdout)
    );
    // The check bites: an unknown module key with the wrong type fails it.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    fs::write(&broken, "#cloud-config\npackages: 5\n").unwrap();
    let output = Command::new("cloud-init")
        .args(["schema", "--config-file"])
        .arg(&broken)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success(), "{}", text(&output.stdout));
}

#[test]
fn the_bootstrap_refuses_a_bad_url_or_checksum_before_dpkg() {
    let name = "deploy::the_bootstrap_refuses_a_bad_url_or_checksum_before_dpkg";
    if !require_tool("openssl", name) || !require_tool("curl", name) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A package served over https on loopback, with a certificate curl is told to trust.
    let payload = b"not really a package, but bytes with a known sha256";
    fs::write(d.join("smart.deb"), payload).unwrap();
    self_signed("127.0.0.1", "IP", &d.join("key.pem"), &d.join("cert.pem"));
    let port = smart_testkit::free_port();
    let mut server = Command::new("openssl")
        .args([
            "s_server", "-quiet", "-WWW", "-cert", "cert.pem", "-key", "key.pem",
        ])
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .current_dir(d)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every command that would change the machine is a fake that notes it ran.
    let bin = d.join("bin");
    fs::create_dir(&bin).unwrap();
    // apt-get fails, so the script stops right after it and never reaches the nginx site.
    for fake in ["apt-get", "dpkg", "nginx", "systemctl", "ufw"] {
        let path = bin.join(fake);
        fs::write(
            &path,
            format!(
                "#!/bin/sh\necho {fake} \"$@\" >>{}/ran\nexit 100\n",
                d.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let good = format!("{:x}", Sha256::digest(payload));
    let url = format!("https://127.0.0.1:{port}/smart.deb");
    let run = |url: &str, sha: &str| {
        let env = d.join("install.env");
        fs::write(
            &env,
            format!("SMART_DEB_URL={url}\nSMART_DEB_SHA256={sha}\n"),
        )
        .unwrap();
        Command::new(deploy("smart-bootstrap"))
            .arg(&env)
            .env("PATH", &path)
            .env("CURL_CA_BUNDLE", d.join("cert.pem"))
            .env("TMPDIR", d)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let wrong = "0".repeat(64);
    for (url, sha, code, message) in [
        (url.as_str(), wrong.as_str(), 3, "nothing was installed"),
        // s_server answers a missing file with an error page: other bytes, the same refusal.
        (
            &format!("https://127.0.0.1:{port}/missing.deb"),
            &good,
            3,
            "nothing was installed",
        ),
        (
            &format!("https://127.0.0.1:{}/smart.deb", smart_testkit::free_port()),
            &good,
            3,
            "cannot download",
        ),
        (&url.replace("https://", "http://"), &good, 2, "https://"),
        (url.as_str(), "", 2, "SMART_DEB_SHA256"),
        (url.as_str(), &good[..63], 2, "64 hex digits"),
        ("", &good, 2, "SMART_DEB_URL"),
    ] {
        let output = run(url, sha);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{url} {sha}: {}",
            text(&output.stderr)
        );
        assert!(
            text(&output.stderr).contains(message),
            "{}",
            text(&output.stderr)
        );
        assert!(
            !d.join("ran").exists(),
            "{url} {sha}: something ran before the checksum"
        );
    }
    // The check bites: the right checksum reaches apt-get with the downloaded file (a fake here;
    // the booted-systemd test installs the real package this way).
    let output = run(&url, &good);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(output.status.code(), Some(100), "{}", text(&output.stderr));
    let ran = fs::read_to_string(d.join("ran")).unwrap();
    assert!(
        ran.starts_with("apt-get install -y --no-install-recommends ")
            && ran.ends_with("/smart.deb\n"),
        "{ran}"
    );
}

/// `(path, mode)` of every regular file under `root`, relative to it.
fn files_in(root: &Path) -> std::collections::BTreeSet<(String, String)> {
    tree(root)
        .into_iter()
        .filter_map(|(path, what)| {
            let mut words = what.split_whitespace();
            (words.next() == Some("file")).then(|| (path, words.next().unwrap().to_owned()))
        })
        .collect()
}

/// Where scripts/build-deb finds cargo-deb, if it is there: its cache dir, else `PATH`.
fn cargo_deb_present() -> bool {
    let root = std::env::var_os("SMART_CARGO_DEB_ROOT").map_or_else(
        || PathBuf::from("/var/cache/smart-ci/cargo-deb"),
        PathBuf::from,
    );
    root.join("bin/cargo-deb").is_file() || smart_testkit::find_in_path("cargo-deb").is_some()
}

#[test]
fn the_package_holds_what_install_sh_installs_and_lintian_passes() {
    let name = "deploy::the_package_holds_what_install_sh_installs_and_lintian_passes";
    if !require_tool("dpkg-deb", name)
        || !require_tool("lintian", name)
        || (!cargo_deb_present() && !require_tool("cargo-deb", name))
    {
        return;
    }
    // The package from this build's binary, as CI packages its release build.
    let target = tempfile::tempdir().unwrap();
    fs::create_dir_all(target.path().join("release")).unwrap();
    fs::copy(BIN, target.path().join("release/smart")).unwrap();
    let out = ok(Command::new(repo_root().join("scripts/build-deb"))
        .arg("--fast")
        .env("CARGO_TARGET_DIR", target.path()));
    let deb = PathBuf::from(text(&out.stdout).trim());
    let file_name = deb.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        file_name.starts_with("smart_") && file_name.ends_with("_amd64.deb"),
        "{file_name}"
    );

    // Its files are exactly what install.sh stages, from the same list, with the same modes
    // (the copyright and changelog are the package's own).
    let unpacked = tempfile::tempdir().unwrap();
    ok(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(unpacked.path()));
    let packaged: std::collections::BTreeSet<(String, String)> = files_in(unpacked.path())
        .into_iter()
        .filter(|(path, _)| {
            !path.starts_with("usr/share/doc/smart/changelog")
                && path != "usr/share/doc/smart/copyright"
        })
        .collect();
    let staged = tempfile::tempdir().unwrap();
    install(staged.path(), &[]);
    assert_eq!(packaged, files_in(staged.path()));

    // The package's conffiles are everything under /etc, its maintainer scripts the shared ones.
    let control = tempfile::tempdir().unwrap();
    ok(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(control.path()));
    let conffiles = fs::read_to_string(control.path().join("conffiles")).unwrap();
    let etc: Vec<&str> = packaged
        .iter()
        .filter(|(path, _)| path.starts_with("etc/"))
        .map(|(path, _)| path.as_str())
        .collect();
    for path in &etc {
        assert!(
            conffiles.lines().any(|l| l == format!("/{path}")),
            "{path} is no conffile: {conffiles}"
        );
    }
    for script in ["postinst", "prerm", "postrm"] {
        assert_eq!(
            fs::read(control.path().join(script)).unwrap(),
            fs::read(deploy(&format!("debian/{script}"))).unwrap(),
            "{script}"
        );
    }

    // lintian: no error and no warning (every override in the package says why).
    let lintian = Command::new("lintian")
        .args(["--fail-on", "error,warning", "--no-tag-display-limit"])
        .arg(&deb)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        lintian.status.success(),
        "lintian {}:\n{}{}",
        deb.display(),
        text(&lintian.stdout),
        text(&lintian.stderr)
    );
}

/// `(code, meaning)` pairs under `Exit codes:` in `smart --help`.
fn exit_codes_in_help() -> Vec<(String, String)> {
    let help = text(&ok(Command::new(BIN).arg("--help")).stdout);
    let mut codes: Vec<(String, String)> = Vec::new();
    for line in help.split("Exit codes:\n").nth(1).unwrap().lines() {
        match line.trim_start().split_once("  ") {
            Some((code, meaning)) if code.parse::<u8>().is_ok() => {
                codes.push((code.to_owned(), meaning.trim().to_owned()));
            }
            _ => {
                let last = codes.last_mut().unwrap();
                last.1 = format!("{} {}", last.1, line.trim());
            }
        }
    }
    codes
}

#[test]
fn the_man_pages_the_package_ships_cover_every_command_and_exit_code_of_smart_help() {
    // build-deb and install.sh write them with `smart generate man`, from the clap definitions.
    let dir = tempfile::tempdir().unwrap();
    ok(Command::new(BIN).arg("generate").arg("man").arg(dir.path()));
    let help = text(&ok(Command::new(BIN).arg("--help")).stdout);
    let commands = help
        .split("Commands:\n")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    let mut count = 0;
    for line in commands
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
    {
        let command = line.split_whitespace().next().unwrap();
        if command != "help" {
            assert!(
                dir.path().join(format!("smart-{command}.1")).is_file(),
                "no man page for `{command}`"
            );
            count += 1;
        }
    }
    assert!(count >= 10, "{commands}");
    let page = fs::read_to_string(dir.path().join("smart.1")).unwrap();
    let page = page.split_whitespace().collect::<Vec<_>>().join(" ");
    let codes = exit_codes_in_help();
    assert!(codes.iter().any(|(code, _)| code == "5"), "{codes:?}");
    for (code, meaning) in codes {
        let first = meaning
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            page.contains(&first),
            "smart.1 lacks exit code {code} ({meaning})"
        );
    }
}
