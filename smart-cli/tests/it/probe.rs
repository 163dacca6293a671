//! `smart probe` through the real binary: the summary, the JSON, redaction and exit codes.

use std::process::{Command, Output};

use smart_testkit::{Nginx, require_tool};

fn smart(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_smart"))
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("run the smart binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn probe_prints_a_summary_and_json_and_never_a_secret() {
    if !require_tool(
        "nginx",
        "probe_prints_a_summary_and_json_and_never_a_secret",
    ) {
        return;
    }
    let nginx = Nginx::start("    location / { }").unwrap();
    std::fs::write(nginx.html_dir().join("1k.bin"), vec![b'x'; 1024]).unwrap();
    let url = nginx.url("/1k.bin");
    let secret = [
        "-H",
        "Authorization: Bearer s3cret",
        "-H",
        "Cookie: id=s3cret",
    ];

    let args = [
        &["probe", &url, "--rate", "100", "--duration", "1s"],
        &secret[..],
    ]
    .concat();
    let out = smart(&args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for want in [
        "Summary:",
        "open loop at 100 req/s",
        "Sent:          100 requests",
        "Success rate:  100.00 %",
        "[200] 100 responses",
        "authorization: <redacted>",
        "cookie: <redacted>",
        "Latency histogram:",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("s3cret") && !stderr.contains("s3cret"));

    let args = [
        &[
            "probe",
            &url,
            "--max",
            "-c",
            "2",
            "--duration",
            "0.5s",
            "--json",
        ],
        &secret[..],
    ]
    .concat();
    let out = smart(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["load"]["mode"], "closed");
    assert_eq!(json["load"]["connections"], 2);
    assert!(json["counts"]["ok"].as_u64().unwrap() > 10, "{json}");
    assert_eq!(json["counts"]["ok"], json["status_counts"]["200"]);
    assert_eq!(json["headers"]["authorization"], "<redacted>");
    assert!(json.get("samples").is_none());
    assert!(json["latency"]["p99_us"].as_u64().unwrap() > 0);
    assert!(!text(&out.stdout).contains("s3cret"));
}

#[test]
fn probe_exits_2_on_bad_input_and_3_when_nothing_answers() {
    let out = smart(&["probe", "ftp://127.0.0.1/"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("URL: `ftp://127.0.0.1/` is not an http:// or https:// URL")
    );

    let out = smart(&["probe", "http://127.0.0.1/", "-H", "Authorization s3cret"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--header #1: expected `Name: value`"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");

    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", listener.local_addr().unwrap())
    };
    let out = smart(&["probe", &refused, "--rate", "20", "--duration", "0.5s"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stdout).contains("connect            10"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stderr).contains("never answered: 10 requests, 10 connect errors"));
}
