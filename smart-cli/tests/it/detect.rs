//! `smart init --detect OUT` on Debian's stock nginx config: /etc/nginx is copied into a temp
//! prefix (its absolute paths and port 80 rewritten, so nothing of the machine's nginx is read
//! through it, written or bound), the copy is named with `--nginx-config`, and the files written
//! must be the expected ones, pass `smart validate`, and never be overwritten.

use std::fs;
use std::path::Path;

use smart_testkit::{free_port, require_tool};

use crate::support::smart;

/// Copies `from` into `to`, following symlinks (Debian's sites-enabled/default is one).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let path = entry.path();
        if fs::metadata(&path).unwrap().is_dir() {
            copy_tree(&path, &target);
        } else {
            fs::copy(&path, &target).unwrap();
        }
    }
}

/// Rewrites every file under `dir` with `edit`.
fn rewrite(dir: &Path, edit: &dyn Fn(String) -> String) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rewrite(&path, edit);
        } else if let Ok(text) = fs::read_to_string(&path) {
            fs::write(&path, edit(text)).unwrap();
        }
    }
}

/// Debian's stock /etc/nginx under `prefix`, listening on 127.0.0.1:`port` only.
fn stock_nginx_copy(prefix: &Path, port: u16) {
    copy_tree(Path::new("/etc/nginx"), prefix);
    fs::create_dir_all(prefix.join("logs")).unwrap();
    let root = prefix.display().to_string();
    rewrite(prefix, &|text| {
        text.replace("/etc/nginx", &root)
            .replace("/var/log/nginx", &format!("{root}/logs"))
            .replace("/run/nginx.pid", &format!("{root}/nginx.pid"))
            .replace(
                "listen 80 default_server;",
                &format!("listen 127.0.0.1:{port} default_server;"),
            )
            .replace("listen [::]:80 default_server;", "")
    });
    let site = fs::read_to_string(prefix.join("sites-enabled/default")).unwrap();
    assert!(site.contains(&format!("listen 127.0.0.1:{port} default_server;")));
    for line in site.lines().filter(|l| !l.trim_start().starts_with('#')) {
        assert!(
            !line.contains("listen 80") && !line.contains(":80"),
            "{line}"
        );
    }
}

/// A PostgreSQL cluster's config as Debian writes it (the settings --detect reads).
fn postgres_conf(dir: &Path) -> std::path::PathBuf {
    fs::create_dir_all(dir.join("conf.d")).unwrap();
    let file = dir.join("postgresql.conf");
    fs::write(
        &file,
        "max_connections = 100\nshared_buffers = 128MB\t\t\t# min 128kB\n#work_mem = 4MB\n\
         cluster_name = '15/main'\ninclude_dir = 'conf.d'\n",
    )
    .unwrap();
    file
}

#[test]
fn detect_on_stock_debian_nginx_writes_files_that_validate_and_never_overwrites() {
    let name = "detect::detect_on_stock_debian_nginx_writes_files_that_validate";
    if !require_tool("nginx", name) || !Path::new("/etc/nginx/nginx.conf").is_file() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("nginx");
    stock_nginx_copy(&prefix, free_port());
    let pg = postgres_conf(&dir.path().join("pg"));
    let config = prefix.join("nginx.conf");
    let args = [
        "init",
        "--nginx-config",
        config.to_str().unwrap(),
        "--postgres-config",
        pg.to_str().unwrap(),
        "--detect",
        "out",
    ];
    let first = smart(dir.path(), &args);
    let said = String::from_utf8_lossy(&first.stdout).into_owned();
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let out = dir.path().join("out");
    let expected = [
        // Written in Debian's nginx.conf: an edit of that line.
        "tune-nginx-worker-processes.json",
        "tune-nginx-worker-connections.json",
        "tune-nginx-sendfile.json",
        "tune-nginx-tcp-nopush.json",
        "tune-nginx-access-log-buffer.json",
        // Not written (nginx's default holds): a file of its own in conf.d.
        "tune-nginx-keepalive-timeout.json",
        "tune-nginx-keepalive-requests.json",
        "tune-nginx-gzip-comp-level.json",
        "tune-nginx-open-file-cache-max.json",
        // Every kernel has it, inside the shipped unit's range.
        "tune-sysctl-somaxconn.json",
        "tune-postgres-shared-buffers.json",
        "tune-postgres-work-mem.json",
        "tune-postgres-random-page-cost.json",
        "tune-postgres-effective-io-concurrency.json",
        "tune-postgres-synchronous-commit.json",
    ];
    for file in expected {
        assert!(out.join(file).is_file(), "{file} missing:\n{said}");
        assert!(said.contains(&format!("wrote out/{file}")), "{said}");
    }
    // The other kernel knobs are written or say why not.
    for key in ["tcp-fastopen", "tcp-slow-start-after-idle", "default-qdisc"] {
        let file = format!("tune-sysctl-{key}.json");
        let sysctl = key.replace('-', "_");
        assert!(
            out.join(&file).is_file() || said.contains(&format!("{sysctl}: ")),
            "{file}: {said}"
        );
    }

    let read = |file: &str| -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(out.join(file)).unwrap()).unwrap()
    };
    // Centred on what the copy says: worker_connections 768, edited in place in the copy.
    let connections = read("tune-nginx-worker-connections.json");
    assert_eq!(connections["search"]["start"]["worker_connections"], 768);
    assert_eq!(
        connections["search"]["params"]["worker_connections"]["min"],
        768
    );
    assert_eq!(
        connections["apply"]["files"][0]["path"],
        config.to_str().unwrap()
    );
    assert!(
        connections["description"]
            .as_str()
            .unwrap()
            .contains("caps concurrent connections per worker")
    );
    let keepalive = read("tune-nginx-keepalive-timeout.json");
    assert_eq!(
        keepalive["apply"]["files"][0]["path"],
        prefix
            .join("conf.d/smart-keepalive_timeout.conf")
            .to_str()
            .unwrap()
    );
    assert_eq!(keepalive["search"]["start"]["keepalive_timeout"], 75);
    assert_eq!(
        read("tune-nginx-sendfile.json")["variants"][0]["params"]["sendfile"],
        "off"
    );
    let buffers = read("tune-postgres-shared-buffers.json");
    assert_eq!(buffers["search"]["start"]["shared_buffers"], 128);
    assert_eq!(
        buffers["apply"]["reload"],
        serde_json::json!(["systemctl", "restart", "postgresql@15-main"])
    );
    for file in fs::read_dir(&out).unwrap() {
        let text = fs::read_to_string(file.unwrap().path()).unwrap();
        assert!(!text.contains("/etc/nginx"), "{text}");
    }

    let validate = smart(dir.path(), &["validate", "out"]);
    assert_eq!(validate.status.code(), Some(0), "{validate:?}");
    every_nginx_file_renders_configs_nginx_accepts(&out, &config);

    // A second run writes nothing: every file is reported skipped, an edited one left as it is.
    let edited = out.join("tune-nginx-sendfile.json");
    fs::write(&edited, "{\"mine\": true}\n").unwrap();
    let written = fs::read_dir(&out).unwrap().count();
    let second = smart(dir.path(), &args);
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    let said = String::from_utf8_lossy(&second.stdout);
    assert!(
        said.contains(&format!("0 files written, {written} skipped")),
        "{said}"
    );
    assert!(
        said.contains("skipped out/tune-nginx-sendfile.json: it exists"),
        "{said}"
    );
    assert_eq!(fs::read_to_string(&edited).unwrap(), "{\"mine\": true}\n");
    assert_eq!(fs::read_dir(&out).unwrap().count(), written);
}

/// Each nginx file's extreme values (a search's lowest and highest, every variant), applied to
/// the copy as the files applier would, pass the copy's own `nginx -t`; the copy is restored
/// after each.
fn every_nginx_file_renders_configs_nginx_accepts(out: &Path, config: &Path) {
    let mut checked = 0;
    for entry in fs::read_dir(out).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().contains("tune-nginx-") {
            continue;
        }
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let mut values: Vec<(String, String)> = Vec::new();
        if let Some(params) = json["search"]["params"].as_object() {
            let (param, domain) = params.iter().next().unwrap();
            for bound in ["min", "max"] {
                if let Some(v) = domain.get(bound) {
                    values.push((param.clone(), v.to_string()));
                }
            }
            for choice in domain["choices"].as_array().into_iter().flatten() {
                values.push((param.clone(), choice.as_str().unwrap().to_owned()));
            }
        }
        for variant in json["variants"].as_array().into_iter().flatten() {
            let (param, value) = variant["params"]
                .as_object()
                .unwrap()
                .iter()
                .next()
                .unwrap();
            values.push((param.clone(), value.as_str().unwrap().to_owned()));
        }
        assert!(!values.is_empty(), "{}", path.display());
        let file = &json["apply"]["files"][0];
        let target = Path::new(file["path"].as_str().unwrap());
        let found = fs::read_to_string(target).ok();
        for (param, value) in values {
            let placeholder = format!("{{{{ {param} }}}}");
            let rendered = if let Some(template) = file["template"].as_str() {
                template.replace(&placeholder, &value)
            } else {
                let found = found.as_deref().unwrap();
                let pattern = regex::Regex::new(file["edit"]["pattern"].as_str().unwrap()).unwrap();
                let lines: Vec<&str> = found.split('\n').collect();
                assert_eq!(lines.iter().filter(|l| pattern.is_match(l)).count(), 1);
                let line = file["edit"]["replace"]
                    .as_str()
                    .unwrap()
                    .replace(&placeholder, &value);
                lines
                    .iter()
                    .map(|l| {
                        if pattern.is_match(l) {
                            line.as_str()
                        } else {
                            l
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            fs::write(target, rendered).unwrap();
            let test = std::process::Command::new("nginx")
                .arg("-c")
                .arg(config)
                .arg("-t")
                .output()
                .unwrap();
            match &found {
                Some(text) => fs::write(target, text).unwrap(),
                None => fs::remove_file(target).unwrap(),
            }
            assert!(
                test.status.success(),
                "{} with {param} = {value}: {}",
                path.display(),
                String::from_utf8_lossy(&test.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 9, "{checked}");
}

/// Without nginx, the nginx knobs are left out with the reason, and what is written validates.
#[test]
fn detect_without_nginx_says_why_and_writes_what_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let pg = postgres_conf(&dir.path().join("pg"));
    let out = smart(
        dir.path(),
        &[
            "init",
            "--nginx",
            "/nonexistent/nginx",
            "--postgres-config",
            pg.to_str().unwrap(),
            "--detect",
            "out",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("no nginx knobs: `/nonexistent/nginx` was not found"),
        "{said}"
    );
    assert!(
        said.contains("not written: net.core.somaxconn: no nginx site"),
        "{said}"
    );
    assert!(!dir.path().join("out/tune-nginx-sendfile.json").exists());
    assert!(dir.path().join("out/tune-postgres-work-mem.json").is_file());
    let validate = smart(dir.path(), &["validate", "out"]);
    assert_eq!(validate.status.code(), Some(0), "{validate:?}");
}
