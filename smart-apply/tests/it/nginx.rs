//! Against a real nginx on a free loopback port with its own prefix (smart_testkit::Nginx).

use std::fs;
use std::net::TcpListener;

use serde_json::json;
use smart_apply::{Arm, ErrorKind, RunLock, Session, Step};
use smart_testkit::{Nginx, require_tool};

use crate::support::{Env, apply, assert_failed, switch};

const ORIGINAL_BODY: &str = "    location / { }";

/// A real nginx serving an index page, and run `r1` of experiment `nginx` begun on it.
/// Fields drop in order: the session, the lock, the state dir, then nginx.
struct Running {
    session: Session,
    _lock: RunLock,
    env: Env,
    nginx: Nginx,
    /// The site file as nginx started with it.
    original: String,
}

/// Starts nginx with `found_body` in its server block and begins a session on an experiment
/// that owns its site file: the variant's template puts `extra_body` before a location that
/// sends `X-Smart-Variant: <variant>`, and the live check looks for that header. `None`
/// where nginx is not installed and `CI` is not set (see [`require_tool`]).
async fn setup(test: &str, found_body: &str, extra_body: &str) -> Option<Running> {
    if !require_tool("nginx", test) {
        return None;
    }
    let nginx = Nginx::start(found_body).unwrap();
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
    let env = Env::new();
    let (_, lock, session) = env.begin("nginx", &spec).await;
    Some(Running {
        session,
        _lock: lock,
        env,
        nginx,
        original,
    })
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
    let Some(mut run) = setup("nginx::a_valid_variant_is_served", ORIGINAL_BODY, "").await else {
        return;
    };
    let url = run.nginx.url("/index.html");
    switch(&mut run.session, "fast", &[]).await.unwrap();
    assert_eq!(serves(&url, Some("fast")).await, Some("fast".to_owned()));
    run.session.switch_to(Arm::Found).await.unwrap();
    assert_eq!(serves(&url, None).await, None);
    switch(&mut run.session, "slow", &[]).await.unwrap();
    assert_eq!(serves(&url, Some("slow")).await, Some("slow".to_owned()));
    run.session.revert().await.unwrap();
    assert_eq!(
        fs::read_to_string(run.nginx.site_conf_path()).unwrap(),
        run.original
    );
    assert_eq!(serves(&url, None).await, None);
    smart_core::audit::verify(&run.env.state()).unwrap();
}

#[tokio::test]
async fn a_found_config_that_sends_a_variants_live_value_is_restored_and_confirmed() {
    // Trying `worker_processes auto` on a server that already runs `auto` is common: the found
    // config then answers the live check just as that variant does. Restoring it must still pass.
    let Some(mut run) = setup(
        "nginx::a_found_config_that_sends_a_variants_live_value",
        "    location / { add_header X-Smart-Variant same; }",
        "",
    )
    .await
    else {
        return;
    };
    let url = run.nginx.url("/index.html");
    for name in ["same", "other"] {
        switch(&mut run.session, name, &[]).await.unwrap();
        // A fresh connection may still reach an old worker that is draining after the reload
        // (the live check already saw the new value once), so wait for what new workers serve.
        assert_eq!(serves(&url, Some(name)).await, Some(name.to_owned()));
        run.session.switch_to(Arm::Found).await.unwrap();
        assert_eq!(serves(&url, Some("same")).await, Some("same".to_owned()));
    }
    run.session.revert().await.unwrap();
    assert_eq!(
        fs::read_to_string(run.nginx.site_conf_path()).unwrap(),
        run.original
    );
    smart_core::audit::verify(&run.env.state()).unwrap();
}

#[tokio::test]
async fn a_variant_failing_nginx_t_is_restored_and_nginx_keeps_serving() {
    let Some(mut run) = setup(
        "nginx::a_variant_failing_nginx_t",
        ORIGINAL_BODY,
        "    {{ directive }};\n",
    )
    .await
    else {
        return;
    };
    let err = switch(
        &mut run.session,
        "bad",
        &[("directive", "bogus_directive on")],
    )
    .await
    .unwrap_err();
    assert_failed(&err, ErrorKind::Reverted, Step::Validate);
    assert!(
        err.to_string()
            .contains("unknown directive \"bogus_directive\""),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(run.nginx.site_conf_path()).unwrap(),
        run.original
    );
    assert_eq!(get(&run.nginx.url("/index.html")).await, (200, None));
    run.session.revert().await.unwrap();
}

#[tokio::test]
async fn a_variant_that_cannot_go_live_is_caught_by_the_live_check_and_restored() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let Some(mut run) = setup(
        "nginx::a_variant_that_cannot_go_live",
        ORIGINAL_BODY,
        &format!("    listen 127.0.0.1:{port};\n"),
    )
    .await
    else {
        return;
    };
    let err = switch(&mut run.session, "v1", &[]).await.unwrap_err();
    assert_failed(&err, ErrorKind::Reverted, Step::LiveCheck);
    assert_eq!(
        fs::read_to_string(run.nginx.site_conf_path()).unwrap(),
        run.original
    );
    assert_eq!(get(&run.nginx.url("/index.html")).await, (200, None));
    run.session.revert().await.unwrap();
    drop(taken);
}

#[tokio::test]
async fn a_hand_edit_between_two_applies_stops_smart_without_overwriting() {
    let Some(mut run) = setup("nginx::a_hand_edit_between_two_applies", ORIGINAL_BODY, "").await
    else {
        return;
    };
    let nginx = &run.nginx;
    switch(&mut run.session, "v1", &[]).await.unwrap();
    let human = nginx.site_conf("    location / { add_header X-Smart-Variant human; }");
    fs::write(nginx.site_conf_path(), &human).unwrap();
    let err = run.session.switch_to(Arm::Found).await.unwrap_err();
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
