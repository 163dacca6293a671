//! The engine's Applier port over a validated experiment.

use std::fs;

use serde_json::json;
use smart_apply::{Applier, Config, EngineApplier, RunLock};
use smart_core::engine::ApplierPort as _;
use smart_core::{Defaults, validate};

use crate::support::Env;

fn experiment(env: &Env, baseline: Option<serde_json::Value>) -> smart_core::Experiment {
    let mut json = json!({
        "name": "gzip",
        "target": {"urls": ["http://127.0.0.1/"]},
        "apply": {
            "files": [{"path": env.etc("gzip.conf"), "template": "gzip_comp_level {{ level }};\n"}],
            "reload": ["true"]
        },
        "variants": [{"name": "fast", "params": {"level": 1}}, {"name": "small", "params": {"level": 9}}]
    });
    if let Some(b) = baseline {
        json["baseline"] = b;
    }
    validate::validate_text(
        &json.to_string(),
        "gzip.json".as_ref(),
        &Defaults::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn the_port_switches_arms_by_name_restores_and_keeps() {
    let env = Env::new();
    let conf = env.etc("gzip.conf");
    fs::write(&conf, "gzip_comp_level 5;\n").unwrap();
    let exp = experiment(&env, None);
    let lock = RunLock::acquire(&env.state()).unwrap();
    let applier = Applier::new(Config::new(&env.state()));
    let mut port = EngineApplier::new(applier.clone(), &lock, &exp, "run-1");
    assert!(
        port.switch("fast").await.is_err(),
        "no switch before check_baseline"
    );
    port.check_baseline().await.unwrap();
    port.switch("fast").await.unwrap();
    assert_eq!(fs::read_to_string(&conf).unwrap(), "gzip_comp_level 1;\n");
    port.switch("baseline").await.unwrap();
    assert_eq!(fs::read_to_string(&conf).unwrap(), "gzip_comp_level 5;\n");
    let unknown = port.switch("nope").await.unwrap_err();
    assert!(
        unknown.original_live && unknown.message.contains("no arm `nope`"),
        "{unknown}"
    );
    port.switch("small").await.unwrap();
    port.restore().await.unwrap();
    assert_eq!(fs::read_to_string(&conf).unwrap(), "gzip_comp_level 5;\n");
    port.switch("small").await.unwrap();
    let wrong = port.keep("fast").await.unwrap_err();
    assert!(!wrong.original_live, "{wrong}");
    port.keep("small").await.unwrap();
    assert_eq!(fs::read_to_string(&conf).unwrap(), "gzip_comp_level 9;\n");
    assert!(
        applier.recover(&lock).await.unwrap().is_empty(),
        "a kept run is not recovered"
    );
}

#[tokio::test]
async fn a_rendered_baseline_is_used_for_the_baseline_arm_and_close_ends_on_the_original() {
    let env = Env::new();
    let conf = env.etc("gzip.conf");
    fs::write(&conf, "# as found\n").unwrap();
    let exp = experiment(&env, Some(json!({"level": 6})));
    let lock = RunLock::acquire(&env.state()).unwrap();
    let applier = Applier::new(Config::new(&env.state()));
    let mut port = EngineApplier::new(applier.clone(), &lock, &exp, "run-1");
    port.check_baseline().await.unwrap();
    port.switch("baseline").await.unwrap();
    assert_eq!(fs::read_to_string(&conf).unwrap(), "gzip_comp_level 6;\n");
    port.switch("fast").await.unwrap();
    port.restore().await.unwrap();
    assert_eq!(fs::read_to_string(&conf).unwrap(), "# as found\n");
    port.close().await.unwrap();
    assert!(applier.recover(&lock).await.unwrap().is_empty());
    assert!(port.close().await.is_err(), "closed once");
}
