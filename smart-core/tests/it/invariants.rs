//! The crate's invariant, checked: smart-core has no network or process code. Its normal
//! dependency graph (from `cargo tree`) holds no runtime, socket, HTTP or process crate, and
//! its sources name neither `std::net` nor `std::process`.

use std::collections::BTreeSet;
use std::path::Path;

/// Crates that bring sockets, an async runtime, HTTP or child processes.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "hyper",
    "hyper-util",
    "h2",
    "reqwest",
    "ureq",
    "curl",
    "async-std",
    "smol",
    "async-process",
    "nix",
    "duct",
    "subprocess",
];

/// The names of every crate smart-core depends on at run time, directly or not, as `cargo tree`
/// resolves them for this machine (what a build of smart-core compiles).
fn normal_dependencies() -> BTreeSet<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let out = std::process::Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-p", "smart-core", "-e", "normal"])
        .args(["--prefix", "none", "--format", "{p}", "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn smart_core_depends_on_no_network_runtime_or_process_crate() {
    let names = normal_dependencies();
    assert!(
        names.contains("serde_json"),
        "the graph was read: {names:?}"
    );
    let found: Vec<&&str> = FORBIDDEN.iter().filter(|f| names.contains(**f)).collect();
    assert!(
        found.is_empty(),
        "smart-core must hold no network or process code (docs/ARCHITECTURE.md), but depends on {found:?}"
    );
}

#[test]
fn smart_core_sources_open_no_socket_and_start_no_process() {
    let mut offenders = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                // Unit tests may start processes (the audit log's multi-process test does).
                let text = text.split("#[cfg(test)]").next().unwrap_or_default();
                // `std::process::id()` names the process, it runs none: allowed.
                let text = text.replace("std::process::id()", "");
                // Parsing an address (`std::net::SocketAddr`, for `[prometheus] listen`) opens
                // nothing: allowed; sockets are not.
                let sockets = [
                    "TcpStream",
                    "TcpListener",
                    "UdpSocket",
                    "UnixStream",
                    "UnixListener",
                ];
                if sockets.iter().any(|s| text.contains(s)) || text.contains("std::process") {
                    offenders.push(path);
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "network or process code in {offenders:?}"
    );
}
