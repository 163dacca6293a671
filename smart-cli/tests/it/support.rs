//! Set-up shared by the tests that run `smart`: the binary itself, and the demo target.

use std::fs;
use std::path::Path;

use smart_demo_target::DemoTarget;

/// Starts the demo target on a free loopback port with `config`, reloading on SIGHUP (the
/// experiments' reload argv is `kill -HUP <this test process>`), on a runtime of its own so the
/// target keeps serving while the test blocks on the `smart` child process.
pub(crate) fn demo_target(config: &Path) -> (tokio::runtime::Runtime, DemoTarget) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let target = runtime.block_on(async {
        let target = DemoTarget::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        target.reload_on_sighup().unwrap();
        target
    });
    (runtime, target)
}

/// Runs the real `smart` binary with `args` in `cwd` and returns what it did.
pub(crate) fn smart(cwd: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_smart"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run the smart binary")
}

/// The committed schema `docs/NAME.schema.json` accepts `value`.
pub(crate) fn assert_schema(name: &str, value: &serde_json::Value) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(root.join(format!("docs/{name}.schema.json"))).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{value:#}");
}

/// The decisions recorded under `dir/state`, oldest first, as (variant, decision).
pub(crate) fn decisions(dir: &Path) -> Vec<(String, smart_core::records::DecisionKind)> {
    smart_core::records::history(&dir.join("state"))
        .unwrap()
        .into_iter()
        .map(|d| (d.variant, d.decision))
        .collect()
}

/// A finished command's stdout and stderr, for assertion messages.
pub(crate) fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Makes `name` the only experiment in `dir`: every other file there is removed first, so the
/// queue runs exactly this one.
pub(crate) fn only_experiment(dir: &Path, name: &str, experiment: &serde_json::Value) {
    for old in fs::read_dir(dir).unwrap() {
        fs::remove_file(old.unwrap().path()).unwrap();
    }
    fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(experiment).unwrap(),
    )
    .unwrap();
}
