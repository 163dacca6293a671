//! docs/quickstart.md walked as written: every shell block is cut into commands (one argv per
//! line, `&&` between commands, `# comments` dropped, `cd DIR` changing the directory of the
//! commands after it) and run against a real nginx on a free port, so an edit of the doc that
//! breaks a command fails here. The nginx listens on neither port 80 nor /etc/nginx, like the
//! machines the doc must work on: `smart init` has to detect it.
//!
//! The only differences from what a user types (the substitutions):
//! - `smart` is the binary this test built.
//! - `~/smart-try` is a directory in a temp dir.
//! - `http://127.0.0.1/` is the test nginx's URL, as the doc says ("use the URL `smart init`
//!   printed"); the test checks that `smart init` printed exactly it.
//! - `smart init` also gets `--nginx-config PREFIX/nginx.conf` (the doc's flag for an nginx not
//!   run with its default config): the test's nginx is not the system one, which a test never
//!   touches.
//! - `--duration 20s` becomes `--duration 2s`, and before `smart run` the experiment's schedule
//!   is cut to 1 s blocks and cool-downs, 2 cycles and a 1 s soak, so the walk takes seconds;
//!   `smart validate` has checked the schedule as written (and the durations the doc quotes)
//!   before.
//!
//! The block after a `<!-- quickstart-test: skip ... -->` line is not run: installing and
//! building, and the access-log section, which edits the machine's own /etc/nginx (the source is
//! tested on a real nginx in access_log.rs); the test fails if any other block is skipped. Whatever the judge decides on this noisy
//! machine, the test asserts what the doc promises on safety: nginx serves throughout, the
//! experiment's file exists only when a variant was kept, `smart revert` removes it, the audit
//! chain verifies, and the records and dashboard are where the doc says.

use serde_json::Value;
use smart_testkit::{Nginx, require_tool};
use std::fs;
use std::path::{Path, PathBuf};

use crate::support::smart;

/// The doc, as the repository has it.
fn quickstart() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    fs::read_to_string(root.join("docs/quickstart.md")).unwrap()
}

/// The doc's ```sh blocks, each as its lines, and how many were marked to skip.
fn shell_blocks(doc: &str) -> (Vec<Vec<String>>, usize) {
    let mut blocks = Vec::new();
    let mut skipped = 0;
    let mut skip_next = false;
    let mut current: Option<Vec<String>> = None;
    for line in doc.lines() {
        if let Some(block) = current.as_mut() {
            if line.trim_start().starts_with("```") {
                let block = current.take().unwrap();
                if skip_next {
                    skipped += 1;
                    skip_next = false;
                } else {
                    blocks.push(block);
                }
            } else {
                block.push(line.to_owned());
            }
        } else if line.starts_with("<!-- quickstart-test: skip") {
            skip_next = true;
        } else if line.trim_start() == "```sh" {
            current = Some(Vec::new());
        }
    }
    (blocks, skipped)
}

/// One line's commands: the comment cut, split at `&&`, each split into words. The doc must stay
/// argv-only (no pipes, redirects, variables or quotes), which the test runs without a shell.
fn commands(line: &str) -> Vec<Vec<String>> {
    let line = line.split(" #").next().unwrap_or("").trim();
    if line.is_empty() {
        return Vec::new();
    }
    for shell in ["|", ">", "<", "$", "\"", "'", ";", "`"] {
        assert!(
            !line.contains(shell),
            "docs/quickstart.md: `{line}` needs a shell ({shell}); keep its commands plain argv \
             so this test can run them, or mark the block skipped"
        );
    }
    line.split("&&")
        .map(|c| c.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[test]
fn the_quickstart_works_as_written_on_an_nginx_that_is_not_on_port_80() {
    if !require_tool(
        "nginx",
        "the_quickstart_works_as_written_on_an_nginx_that_is_not_on_port_80",
    ) {
        return;
    }
    let nginx = Nginx::start("    location / { }").unwrap();
    fs::write(nginx.html_dir().join("index.html"), "hello\n").unwrap();
    let url = nginx.url("/");
    assert_ne!(nginx.port(), 80);
    let nginx_conf = nginx.prefix().join("nginx.conf");
    let owned = nginx.prefix().join("conf.d/smart-file-cache.conf");
    let home = tempfile::tempdir().unwrap();
    let try_dir = home.path().join("smart-try");

    let (blocks, skipped) = shell_blocks(&quickstart());
    assert_eq!(
        skipped, 2,
        "only the build block and the stock-nginx access-log block are skipped"
    );
    let mut cwd: PathBuf = home.path().to_owned();
    let mut ran = Vec::new();
    for line in blocks.iter().flatten() {
        for mut argv in commands(line) {
            for word in &mut argv {
                if let Some(rest) = word.strip_prefix("~/") {
                    *word = home.path().join(rest).display().to_string();
                } else if word == "http://127.0.0.1/" {
                    word.clone_from(&url);
                } else if word == "20s" {
                    *word = "2s".to_owned();
                }
            }
            if argv[0] == "cd" {
                cwd = cwd.join(&argv[1]);
                continue;
            }
            assert_eq!(
                argv[0], "smart",
                "`{line}`: the doc runs only smart after the build"
            );
            if argv[1] == "init" {
                argv.insert(2, "--nginx-config".to_owned());
                argv.insert(3, nginx_conf.display().to_string());
            }
            if argv[1] == "run" {
                shrink_schedule(&try_dir.join("experiments/nginx-file-cache.json"));
            }
            let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
            let out = smart(&cwd, &args);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "docs/quickstart.md: `{line}` ({argv:?}) exited {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
                out.status.code()
            );
            match argv[1].as_str() {
                "init" => assert!(
                    stdout.contains(&format!("detected nginx: {url} ")),
                    "smart init did not detect the test nginx:\n{stdout}\n{stderr}"
                ),
                // The figures §4 quotes are the ones the tool prints.
                "validate" => assert!(
                    stdout.contains("worst case 10m 30s") && stdout.contains("expected 8m 45s"),
                    "{stdout}"
                ),
                _ => {}
            }
            // nginx serves after every step.
            assert_eq!(status_of(&url), 200, "after `{line}`");
            ran.push(argv[1].clone());
        }
    }
    assert_eq!(
        ran,
        [
            "init", "probe", "validate", "run", "history", "show", "audit"
        ],
        "the walk ran these smart subcommands"
    );

    // The state is where §2 and §6 say.
    let state = try_dir.join("state");
    assert!(state.join("runs").is_dir());
    assert!(state.join("dashboard/index.html").is_file());
    // §6: the file exists exactly when a variant was kept; `smart revert` then removes it.
    let history = smart(&try_dir, &["history", "--json"]);
    let decisions: Value = serde_json::from_slice(&history.stdout).unwrap();
    let kept = decisions.as_array().unwrap().iter().any(|d| {
        d["decision"]
            .as_str()
            .is_some_and(|k| k.starts_with("kept") || k == "keep")
    });
    assert_eq!(owned.exists(), kept, "{decisions:#}");
    if kept {
        let out = smart(&try_dir, &["revert"]);
        assert!(out.status.success(), "{out:?}");
        assert!(!owned.exists());
        assert_eq!(status_of(&url), 200);
    }
}

/// 1 s blocks and cool-downs, 2 cycles and a 1 s soak (see the module doc).
fn shrink_schedule(experiment: &Path) {
    let mut value: Value = serde_json::from_str(&fs::read_to_string(experiment).unwrap()).unwrap();
    value["schedule"] = serde_json::json!({
        "cooldown_s": 1, "block_s": 1, "max_cycles": 2, "interleave": true, "soak_s": 1,
        "max_duration_s": 300
    });
    fs::write(experiment, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

/// The HTTP status nginx answers at `url` (`http://127.0.0.1:PORT/`), over a plain socket.
fn status_of(url: &str) -> u16 {
    use std::io::{Read, Write};
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&host).unwrap();
    write!(stream, "GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_extraction_reads_blocks_and_refuses_shell_syntax() {
    let doc = "x\n<!-- quickstart-test: skip (build) -->\n```sh\nmake\n```\n```sh\nsmart a && cd b   # c\n```\n```text\nnot run\n```\n";
    let (blocks, skipped) = shell_blocks(doc);
    assert_eq!(skipped, 1);
    assert_eq!(blocks, [vec!["smart a && cd b   # c".to_owned()]]);
    assert_eq!(
        commands(&blocks[0][0]),
        [
            vec!["smart".to_owned(), "a".to_owned()],
            vec!["cd".to_owned(), "b".to_owned()]
        ]
    );
    let piped = std::panic::catch_unwind(|| commands("smart status | head -1"));
    assert!(piped.is_err());
}
