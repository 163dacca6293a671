//! Against a real nginx on a free loopback port with its own prefix (smart_testkit::Nginx).

use std::fs;
use std::net::TcpListener;

use serde_json::json;
use smart_apply::{Arm, ErrorKind, Step};
use smart_testkit::{Nginx, require_tool};

use crate::support::{Env, apply, params};

const ORIGINAL_BODY: &str = "    location / { }";

/// A running nginx with an index page, and an experiment that owns its site file.
fn setup(test: &str, extra_body: &str) -> Option<(Nginx, smart_core::experiment::Apply, String)> {
    if !require_tool("nginx", test) {
        return None;
    }
    let nginx = Nginx::start(ORIGINAL_BODY).unwrap();
    fs::write(nginx.html_dir().join("index.html"), "hello").unwrap();
    let template = nginx.site_conf(&format!(
        "{extra_body}    location / {{ add_header X-Smart-Variant {{{{ variant }}}}; }}"
    ));
    let spec = apply(json!({
        "files": [{"path": nginx.site_conf_path(), "template": template}],
        "validate": nginx.validate_argv(),
        "reload": nginx.reload_argv(),
        "health": {"url": nginx.url("/index.html"), "timeout_s": 5},
        "live_check": {"url": nginx.url("/index.html"), "header": "X-Smart-Variant", "equals": "{{ variant }}"},
    }));
    let original = fs::read_to_string(nginx.site_conf_path()).unwrap();
    Some((nginx, spec, original))
}

async fn get(url: &str) -> (u16, Option<String>) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    let header = response
        .headers()
        .get("X-Smart-Variant")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), header)
}

/// Polls `url` for up to 5 s until it answers 200 with the header `want` (`None`: absent);
/// returns the last header seen.
async fn serves(url: &str, want: Option<&str>) -> Option<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (status, header) = get(url).await;
        if (status == 200 && header.as_deref() == want) || std::time::Instant::now() > deadline {
            return header;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_valid_variant_is_served_after_reload_and_reverted_byte_for_byte() {
    let Some((nginx, spec, original)) = setup("nginx::a_valid_variant_is_served", "") else {
        return;
    };
    let env = Env::new();
    let (applier, lock) = env.applier();
    let mut session = applier.begin(&lock, "nginx", "r1", &spec).await.unwrap();
    session
        .switch_to(Arm::Variant {
            name: "fast",
            params: &params(&[]),
        })
        .await
        .unwrap();
    assert_eq!(
        serves(&nginx.url("/index.html"), Some("fast")).await,
        Some("fast".to_owned())
    );
    session.switch_to(Arm::Found).await.unwrap();
    assert_eq!(serves(&nginx.url("/index.html"), None).await, None);
    session
        .switch_to(Arm::Variant {
            name: "slow",
            params: &params(&[]),
        })
        .await
        .unwrap();
    assert_eq!(
        serves(&nginx.url("/index.html"), Some("slow")).await,
        Some("slow".to_owned())
    );
    session.revert().await.unwrap();
    assert_eq!(
        fs::read_to_string(nginx.site_conf_path()).unwrap(),
        original
    );
    assert_eq!(serves(&nginx.url("/index.html"), None).await, None);
    smart_core::audit::verify(&env.state()).unwrap();
}

#[tokio::test]
async fn a_found_config_that_sends_a_variants_live_value_is_restored_and_confirmed() {
    // Trying `worker_processes auto` on a server that already runs `auto` is common: the found
    // config then answers the live check just as that variant does. Restoring it must still pass.
    let test = "nginx::a_found_config_that_sends_a_variants_live_value";
    if !require_tool("nginx", test) {
        return;
    }
    let nginx = Nginx::start("    location / { add_header X-Smart-Variant same; }").unwrap();
    fs::write(nginx.html_dir().join("index.html"), "hello").unwrap();
    let original = fs::read_to_string(nginx.site_conf_path()).unwrap();
    let spec = apply(json!({
        "files": [{"path": nginx.site_conf_path(), "template": nginx.site_conf(
            "    location / { add_header X-Smart-Variant {{ variant }}; }"
        )}],
        "validate": nginx.validate_argv(),
        "reload": nginx.reload_argv(),
        "health": {"url": nginx.url("/index.html"), "timeout_s": 5},
        "live_check": {"url": nginx.url("/index.html"), "header": "X-Smart-Variant", "equals": "{{ variant }}"},
    }));
    let env = Env::new();
    let (applier, lock) = env.applier();
    let mut session = applier.begin(&lock, "nginx", "r1", &spec).await.unwrap();
    for name in ["same", "other"] {
        session
            .switch_to(Arm::Variant {
                name,
                params: &params(&[]),
            })
            .await
            .unwrap();
        // A fresh connection may still reach an old worker that is draining after the reload
        // (the live check already saw the new value once), so wait for what new workers serve.
        assert_eq!(
            serves(&nginx.url("/index.html"), Some(name)).await,
            Some(name.to_owned())
        );
        session.switch_to(Arm::Found).await.unwrap();
        assert_eq!(
            serves(&nginx.url("/index.html"), Some("same")).await,
            Some("same".to_owned())
        );
    }
    session.revert().await.unwrap();
    assert_eq!(
        fs::read_to_string(nginx.site_conf_path()).unwrap(),
        original
    );
    smart_core::audit::verify(&env.state()).unwrap();
}

#[tokio::test]
async fn a_variant_failing_nginx_t_is_restored_and_nginx_keeps_serving() {
    let Some((nginx, spec, original)) =
        setup("nginx::a_variant_failing_nginx_t", "    {{ directive }};\n")
    else {
        return;
    };
    let env = Env::new();
    let (applier, lock) = env.applier();
    let mut session = applier.begin(&lock, "nginx", "r1", &spec).await.unwrap();
    let bad = params(&[("directive", "bogus_directive on")]);
    let err = session
        .switch_to(Arm::Variant {
            name: "bad",
            params: &bad,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.step()),
        (&ErrorKind::Reverted, Step::Validate),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("unknown directive \"bogus_directive\""),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(nginx.site_conf_path()).unwrap(),
        original
    );
    assert_eq!(get(&nginx.url("/index.html")).await, (200, None));
    session.revert().await.unwrap();
}

#[tokio::test]
async fn a_variant_that_cannot_go_live_is_caught_by_the_live_check_and_restored() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let Some((nginx, spec, original)) = setup(
        "nginx::a_variant_that_cannot_go_live",
        &format!("    listen 127.0.0.1:{port};\n"),
    ) else {
        return;
    };
    let env = Env::new();
    let (applier, lock) = env.applier();
    let mut session = applier.begin(&lock, "nginx", "r1", &spec).await.unwrap();
    let err = session
        .switch_to(Arm::Variant {
            name: "v1",
            params: &params(&[]),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.step()),
        (&ErrorKind::Reverted, Step::LiveCheck),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(nginx.site_conf_path()).unwrap(),
        original
    );
    assert_eq!(get(&nginx.url("/index.html")).await, (200, None));
    session.revert().await.unwrap();
    drop(taken);
}

#[tokio::test]
async fn a_hand_edit_between_two_applies_stops_smart_without_overwriting() {
    let Some((nginx, spec, _original)) = setup("nginx::a_hand_edit_between_two_applies", "") else {
        return;
    };
    let env = Env::new();
    let (applier, lock) = env.applier();
    let mut session = applier.begin(&lock, "nginx", "r1", &spec).await.unwrap();
    session
        .switch_to(Arm::Variant {
            name: "v1",
            params: &params(&[]),
        })
        .await
        .unwrap();
    let human = nginx.site_conf("    location / { add_header X-Smart-Variant human; }");
    fs::write(nginx.site_conf_path(), &human).unwrap();
    let err = session.switch_to(Arm::Found).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Conflict, "{err}");
    assert!(
        err.to_string()
            .contains(&nginx.site_conf_path().display().to_string()),
        "{err}"
    );
    assert_eq!(fs::read_to_string(nginx.site_conf_path()).unwrap(), human);
    // nginx still serves what it served: smart reloaded nothing.
    assert_eq!(
        get(&nginx.url("/index.html")).await,
        (200, Some("v1".to_owned()))
    );
}
