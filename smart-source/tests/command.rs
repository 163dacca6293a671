//! The command source with real processes: what the command is given, what it prints, and what
//! happens when it fails, hangs or the run is cancelled mid-block (its whole process group dies).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use smart_core::experiment::MeasureCommand;
use smart_source::{CommandSource, SourceError};

/// An executable script in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\nset -eu\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn source(program: &Path, grace_s: f64) -> CommandSource {
    let spec = MeasureCommand {
        argv: vec![program.display().to_string(), "one arg".to_owned()],
        env: [("BENCH_DB".to_owned(), "bench".to_owned())].into(),
        grace_s,
    };
    CommandSource::new(&spec).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Whether process `pid` is gone (or a zombie waiting for its parent).
fn gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A command that starts a child which never ends, and waits for it; the child's pid goes to the
/// returned file.
fn hanging(dir: &Path) -> (PathBuf, PathBuf) {
    let pid_file = dir.join("child.pid");
    let bench = script(
        dir,
        "bench",
        &format!("sleep 600 &\necho $! > {}\nwait", pid_file.display()),
    );
    (bench, pid_file)
}

fn child_pid(pid_file: &Path) -> u32 {
    fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_command_gets_the_block_and_its_report_becomes_the_measurement() {
    let dir = tempfile::tempdir().unwrap();
    // Echoes what it was given through the counts, and its argument through a latency.
    let bench = script(
        dir.path(),
        "bench",
        r#"[ "$1" = "one arg" ] || exit 9
[ "$BENCH_DB" = bench ] && [ "$SMART_ARM" = variant-a ] && [ "$LANG" = C ] || exit 8
[ "$SMART_WARMUP_S" = 0.250 ] && [ "$SMART_BLOCK_S" = 1 ] || exit 7
echo '{"requests": 4, "errors": 1, "latencies_us": [100, 300, 200]}'"#,
    );
    let m = runtime()
        .block_on(source(&bench, 5.0).run_block(
            "variant-a",
            Duration::from_millis(250),
            Duration::from_secs(1),
            &mut |_| {},
        ))
        .unwrap();
    assert_eq!((m.requests, m.errors), (4, 1));
    assert_eq!(m.latencies_us, [100, 300, 200]);
    assert_eq!(m.p50_us, Some(200));
    assert_eq!(m.duration_s, 1.0);
}

#[test]
fn a_failing_command_is_an_error_with_its_exit_code_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let bench = script(dir.path(), "bench", "echo 'connection refused' >&2\nexit 3");
    let e = runtime()
        .block_on(source(&bench, 5.0).run_block(
            "baseline",
            Duration::ZERO,
            Duration::from_secs(1),
            &mut |_| {},
        ))
        .unwrap_err();
    assert!(matches!(e, SourceError::Failed { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("(exit code 3): connection refused"), "{text}");
    assert!(text.contains("run it by hand"), "{text}");
}

#[test]
fn a_hung_command_is_killed_with_its_children_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let (bench, pid_file) = hanging(dir.path());
    let started = Instant::now();
    let mut ticks = 0;
    let e = runtime()
        .block_on(source(&bench, 0.5).run_block(
            "baseline",
            Duration::from_millis(500),
            Duration::from_secs(1),
            &mut |p| {
                ticks += 1;
                assert!(p.elapsed_s < 3.0);
            },
        ))
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(e, SourceError::Hung { .. }), "{e:?}");
    assert!(
        e.to_string().contains("raise measure.command.grace_s"),
        "{e}"
    );
    assert!(
        took >= Duration::from_secs(2),
        "killed before warm-up + block + grace: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(ticks >= 1, "progress is reported while the command runs");
    let child = child_pid(&pid_file);
    assert!(
        wait_gone(child),
        "the command's child {child} outlived the block"
    );
}

#[test]
fn a_cancelled_block_kills_the_command_group_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (bench, pid_file) = hanging(dir.path());
    let source = source(&bench, 60.0);
    let rt = runtime();
    let cut = rt.block_on(async {
        let mut ignore = |_: &_| {};
        let block = source.run_block(
            "baseline",
            Duration::ZERO,
            Duration::from_secs(60),
            &mut ignore,
        );
        tokio::time::timeout(Duration::from_millis(700), block).await
    });
    assert!(cut.is_err(), "the block was not cut");
    let child = child_pid(&pid_file);
    assert!(
        wait_gone(child),
        "the command's child {child} outlived the cancelled block"
    );
}

#[test]
fn output_that_is_not_a_report_names_the_format() {
    let dir = tempfile::tempdir().unwrap();
    let bench = script(
        dir.path(),
        "bench",
        "echo 'tps = 312.5 (without initial connection time)'",
    );
    let e = runtime()
        .block_on(source(&bench, 5.0).run_block(
            "baseline",
            Duration::ZERO,
            Duration::from_secs(1),
            &mut |_| {},
        ))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not the expected JSON object"), "{e}");
    assert!(e.contains("docs/experiment-format.md"), "{e}");
}
