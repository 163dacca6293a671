//! The apply/revert/recover flow against real files, scripts and a small HTTP service.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::json;
use smart_apply::{Arm, ErrorKind, RunAction, Step};
use smart_core::experiment::Apply;

use crate::support::{Env, Service, apply, assert_failed, audit_actions, read, switch};

const SITE: &str = "# site\nstatus=200\nworkers 1;\n";

/// An `apply` section that renders `site` as `v=<variant>`, with the other `apply` fields
/// given in `more` (an object: a reload command, a health check, ...).
fn variant_spec(site: &Path, more: serde_json::Value) -> Apply {
    let serde_json::Value::Object(more) = more else {
        panic!("`more` is a JSON object, not {more}");
    };
    let mut spec = json!({"files": [{"path": site, "template": "v={{ variant }}\n"}]});
    spec.as_object_mut().unwrap().extend(more);
    apply(spec)
}

/// A service whose config is `etc/site.conf` (written as [`SITE`]), and that file's path.
fn service(env: &Env) -> (Service, PathBuf) {
    let site = env.file("site.conf", SITE);
    (Service::start(&site), site)
}

#[tokio::test]
async fn variants_and_the_found_config_round_trip_files_owner_mode_and_command() {
    let env = Env::new();
    let (svc, site) = service(&env);
    fs::set_permissions(&site, fs::Permissions::from_mode(0o640)).unwrap();
    // As root (CI), give the file another owner to see it kept; otherwise keep our own.
    let owner = if fs::metadata(&site).unwrap().uid() == 0 {
        std::os::unix::fs::chown(&site, Some(1234), Some(4321)).unwrap();
        (1234, 4321)
    } else {
        let meta = fs::metadata(&site).unwrap();
        (meta.uid(), meta.gid())
    };
    let new_file = env.etc("extra.conf");
    let sysctl = env.fake_sysctl("128");
    let spec = apply(json!({
        "files": [
            {"path": site, "edit": {"pattern": "^workers ", "replace": "workers {{ workers }};"}},
            {"path": new_file, "template": "extra {{ variant }} {{ workers }};\n"}
        ],
        "command": {"read": [sysctl], "set": [sysctl, "{{ backlog }}"]},
        "validate": ["true"],
        "reload": ["true"],
        "health": {"url": svc.url(), "timeout_s": 5}
    }));
    let (applier, lock, mut session) = env.begin("exp", &spec).await;
    switch(&mut session, "v1", &[("workers", "4"), ("backlog", "4096")])
        .await
        .unwrap();
    assert_eq!(
        fs::read_to_string(&site).unwrap(),
        "# site\nstatus=200\nworkers 4;\n"
    );
    let meta = fs::metadata(&site).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o640, owner.0, owner.1)
    );
    assert_eq!(fs::read_to_string(&new_file).unwrap(), "extra v1 4;\n");
    assert_eq!(env.sysctl_value(), "4096");

    session.switch_to(Arm::Found).await.unwrap();
    assert_eq!(fs::read_to_string(&site).unwrap(), SITE);
    assert_eq!(read(&new_file), None);
    assert_eq!(env.sysctl_value(), "128");

    switch(&mut session, "v2", &[("workers", "8"), ("backlog", "512")])
        .await
        .unwrap();
    assert_eq!(session.arm(), "v2");
    session.revert().await.unwrap();
    assert_eq!(fs::read_to_string(&site).unwrap(), SITE);
    let meta = fs::metadata(&site).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o640, owner.0, owner.1)
    );
    assert_eq!(read(&new_file), None);
    assert_eq!(env.sysctl_value(), "128");

    let summary = smart_core::audit::verify(&env.state()).unwrap();
    let actions = audit_actions(&env.state());
    assert_eq!(summary.lines as usize, actions.len());
    for needed in [
        "baseline", "backup", "apply", "command", "validate", "reload", "health", "revert",
        "verify",
    ] {
        assert!(
            actions.iter().any(|(a, o)| a == needed && o == "ok"),
            "no ok {needed} in {actions:?}"
        );
    }
    // Nothing is left to recover.
    assert!(applier.recover(&lock).await.unwrap().is_empty());
}

#[tokio::test]
async fn command_applier_with_an_explicit_revert_round_trips() {
    let env = Env::new();
    let sysctl = env.fake_sysctl("cubic");
    let spec = apply(json!({
        "command": {"read": [sysctl], "set": [sysctl, "{{ algo }}"], "revert": [sysctl, "{{ original }}"]},
    }));
    let (_, _lock, mut session) = env.begin("cc", &spec).await;
    switch(&mut session, "bbr", &[("algo", "bbr")])
        .await
        .unwrap();
    assert_eq!(env.sysctl_value(), "bbr");
    session.revert().await.unwrap();
    assert_eq!(env.sysctl_value(), "cubic");
}

#[tokio::test]
async fn a_validate_failure_restores_the_original_and_reports_stderr() {
    let env = Env::new();
    let (svc, site) = service(&env);
    let check = env.script(
        "check",
        &format!("if grep -q broken '{}'; then echo 'line 3: unknown directive \"broken\"' >&2; exit 1; fi", site.display()),
    );
    let spec = apply(json!({
        "files": [{"path": site, "template": "status=200\n{{ directive }};\n"}],
        "validate": [check], "reload": ["true"], "health": {"url": svc.url(), "timeout_s": 5}
    }));
    let (_, _lock, mut session) = env.begin("exp", &spec).await;
    let err = switch(&mut session, "bad", &[("directive", "broken")])
        .await
        .unwrap_err();
    assert_failed(&err, ErrorKind::Reverted, Step::Validate);
    assert!(
        err.to_string().contains("unknown directive \"broken\""),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&site).unwrap(), SITE);
    // The session goes on: a good variant still applies after the failed one.
    switch(&mut session, "good", &[("directive", "fine")])
        .await
        .unwrap();
    session.revert().await.unwrap();
    assert_eq!(fs::read_to_string(&site).unwrap(), SITE);
}

#[tokio::test]
async fn a_health_failure_restores_and_the_service_is_healthy_again() {
    let env = Env::new();
    let (svc, site) = service(&env);
    let spec = apply(json!({
        "files": [{"path": site, "template": "status={{ status }}\n"}],
        "reload": ["true"], "health": {"url": svc.url(), "timeout_s": 1}
    }));
    let (_, _lock, mut session) = env.begin("exp", &spec).await;
    let err = switch(&mut session, "v", &[("status", "503")])
        .await
        .unwrap_err();
    assert_failed(&err, ErrorKind::Reverted, Step::Health);
    assert!(err.to_string().contains("status 503"), "{err}");
    assert_eq!(fs::read_to_string(&site).unwrap(), SITE);
    let actions = audit_actions(&env.state());
    let health: Vec<&str> = actions
        .iter()
        .filter(|(a, _)| a == "health")
        .map(|(_, o)| o.as_str())
        .collect();
    assert_eq!(health, ["failed", "ok"]);
    session.revert().await.unwrap();
}

#[tokio::test]
async fn a_failed_live_check_restores_the_original() {
    let env = Env::new();
    let (svc, site) = service(&env);
    // The "reload" never makes the new config live: the service keeps reading an old copy.
    let live = env.file("live.conf", SITE);
    let svc_live = Service::start(&live);
    drop(svc);
    let spec = apply(json!({
        "files": [{"path": site, "template": "status=200\nvariant={{ variant }}\n"}],
        "reload": ["true"],
        "live_check": {"url": svc_live.url(), "header": "X-Smart-Variant", "equals": "{{ variant }}"},
        "health": {"url": svc_live.url(), "timeout_s": 1}
    }));
    let (_, _lock, mut session) = env.begin("exp", &spec).await;
    let err = switch(&mut session, "v1", &[]).await.unwrap_err();
    assert_failed(&err, ErrorKind::Reverted, Step::LiveCheck);
    assert!(err.to_string().contains("expected `v1`"), "{err}");
    assert_eq!(fs::read_to_string(&site).unwrap(), SITE);
    session.revert().await.unwrap();
}

#[tokio::test]
async fn a_hand_edit_between_two_switches_stops_smart_without_overwriting() {
    let env = Env::new();
    let site = env.file("site.conf", SITE);
    let spec = variant_spec(&site, json!({"reload": ["true"]}));
    let (applier, lock, mut session) = env.begin("exp", &spec).await;
    switch(&mut session, "v1", &[]).await.unwrap();
    fs::write(&site, "edited by a human\n").unwrap();
    let err = switch(&mut session, "v2", &[]).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("changed by someone else"), "{err}");
    assert_eq!(fs::read_to_string(&site).unwrap(), "edited by a human\n");
    let err = session.revert().await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Conflict, "{err}");
    assert_eq!(fs::read_to_string(&site).unwrap(), "edited by a human\n");
    // Recovery refuses too, until the human puts the original back.
    let err = applier.recover(&lock).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Conflict, "{err}");
    fs::write(&site, SITE).unwrap();
    let done = applier.recover(&lock).await.unwrap();
    assert_eq!(done[0].action, RunAction::Restored { reloaded: true });
    assert!(actions_include(&env, "conflict", "failed"));
}

fn actions_include(env: &Env, action: &str, outcome: &str) -> bool {
    audit_actions(&env.state())
        .iter()
        .any(|(a, o)| a == action && o == outcome)
}

/// Begins a run `r<i>` on each case's `apply` section and asserts that each is refused with
/// `kind` at `step`, saying the case's text.
async fn assert_each_refused(
    env: &Env,
    cases: impl IntoIterator<Item = (serde_json::Value, &str)>,
    kind: ErrorKind,
    step: Step,
) {
    let (applier, lock) = env.applier();
    for (i, (spec, needle)) in cases.into_iter().enumerate() {
        let err = applier
            .begin(&lock, "exp", &format!("r{i}"), &apply(spec))
            .await
            .expect_err("the run must be refused");
        assert_failed(&err, kind.clone(), step);
        assert!(
            err.to_string().contains(needle),
            "{err} should contain {needle}"
        );
    }
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_changes() {
    let env = Env::new();
    let site = env.file("site.conf", SITE);
    let ro = env.file("ro.conf", "x\n");
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o444)).unwrap();
    let missing_dir = env.path("nope/site.conf");
    let cases = [
        (
            json!({"files": [{"path": missing_dir, "template": "x"}]}),
            "does not exist",
        ),
        (
            json!({"files": [{"path": ro, "template": "x"}]}),
            "read-only",
        ),
        (
            json!({"files": [{"path": site, "template": "x"}], "reload": ["no-such-reload-cmd", "-s"]}),
            "apply.reload: command `no-such-reload-cmd` not found",
        ),
        (
            json!({"files": [{"path": site, "edit": {"pattern": "^nomatch", "replace": "x"}}]}),
            "matches no line",
        ),
        (
            json!({"files": [{"path": "relative.conf", "template": "x"}]}),
            "not an absolute path",
        ),
        (
            json!({"command": {"read": ["true"], "set": ["true", "{{ a }}", "{{ b }}"]}}),
            "give `revert`",
        ),
        (
            json!({"files": [{"path": site, "template_file": "site.tmpl"}]}),
            "give exactly one of `template` and `edit`",
        ),
    ];
    assert_each_refused(&env, cases, ErrorKind::BadInput, Step::Preflight).await;
    assert_eq!(fs::read_to_string(&site).unwrap(), SITE);
    assert_eq!(fs::read_to_string(&ro).unwrap(), "x\n");
    assert!(!missing_dir.parent().unwrap().exists());
    assert!(!env.state().join("apply").exists(), "no run was started");
}

#[tokio::test]
async fn a_render_error_changes_nothing() {
    let env = Env::new();
    let site = env.file("site.conf", SITE);
    let spec = apply(json!({"files": [{"path": site, "template": "x {{ missing }}"}]}));
    let (_, _lock, mut session) = env.begin("exp", &spec).await;
    let err = switch(&mut session, "v", &[]).await.unwrap_err();
    assert_failed(&err, ErrorKind::BadInput, Step::Render);
    assert_eq!(fs::read_to_string(&site).unwrap(), SITE);
    session.revert().await.unwrap();
}

#[tokio::test]
async fn an_unsound_baseline_is_refused_and_nothing_changes() {
    let env = Env::new();
    let (svc, site) = service(&env);
    let cases = [
        (
            json!({"files": [{"path": site, "template": "x"}], "validate": ["false"]}),
            "fails `false`",
        ),
        (
            json!({"files": [{"path": site, "template": "x"}], "health": {"url": format!("{}missing", svc.url()), "timeout_s": 0.5, "ok_status": [204]}}),
            "not healthy",
        ),
    ];
    assert_each_refused(&env, cases, ErrorKind::UnsoundBaseline, Step::Baseline).await;
    assert_eq!(fs::read_to_string(&site).unwrap(), SITE);
    assert!(actions_include(&env, "baseline", "failed"));
}

#[tokio::test]
async fn a_kept_variant_survives_recovery_and_revert_restores_it_on_demand() {
    let env = Env::new();
    let site = env.file("site.conf", SITE);
    let spec = variant_spec(&site, json!({"reload": ["true"]}));
    let (applier, lock, mut session) = env.begin("exp", &spec).await;
    switch(&mut session, "v1", &[]).await.unwrap();
    session.keep().unwrap();
    assert!(applier.recover(&lock).await.unwrap().is_empty());
    assert_eq!(fs::read_to_string(&site).unwrap(), "v=v1\n");
    let out = applier.revert_last(&lock, Some("exp")).await.unwrap();
    assert_eq!(out.action, RunAction::Restored { reloaded: true });
    assert_eq!(fs::read_to_string(&site).unwrap(), SITE);
    let again = applier.revert_last(&lock, None).await.unwrap();
    assert_eq!(again.action, RunAction::AlreadyReverted);
    let none = applier.revert_last(&lock, Some("other")).await.unwrap_err();
    assert_eq!(none.kind(), &ErrorKind::NotFound);
}

#[tokio::test]
async fn a_damaged_backup_fails_loudly_and_touches_nothing() {
    let env = Env::new();
    let site = env.file("site.conf", SITE);
    let spec = variant_spec(&site, json!({}));
    let (applier, lock, mut session) = env.begin("exp", &spec).await;
    switch(&mut session, "v1", &[]).await.unwrap();
    session.keep().unwrap();
    fs::write(
        env.state().join("apply/exp/r1/backup/0"),
        "not the original",
    )
    .unwrap();
    let err = applier.revert_last(&lock, None).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::RevertFailed, "{err}");
    assert!(err.to_string().contains("damaged"), "{err}");
    assert_eq!(fs::read_to_string(&site).unwrap(), "v=v1\n");
}

#[tokio::test]
async fn a_new_run_waits_for_recovery_of_an_interrupted_one() {
    let env = Env::new();
    let site = env.file("site.conf", SITE);
    let spec = variant_spec(&site, json!({}));
    let (applier, lock, mut session) = env.begin("exp", &spec).await;
    switch(&mut session, "v1", &[]).await.unwrap();
    drop(session); // as if the process died
    let err = applier.begin(&lock, "exp", "r2", &spec).await.unwrap_err();
    assert!(err.to_string().contains("smart recover"), "{err}");
    let done = applier.recover(&lock).await.unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(fs::read_to_string(&site).unwrap(), SITE);
    assert!(
        applier.recover(&lock).await.unwrap().is_empty(),
        "recovery is idempotent"
    );
    applier
        .begin(&lock, "exp", "r2", &spec)
        .await
        .unwrap()
        .revert()
        .await
        .unwrap();
}

#[tokio::test]
async fn recovery_skips_reload_when_the_service_is_not_running() {
    let env = Env::new();
    let (svc, site) = service(&env);
    let marker = env.path("reloaded");
    let reload = env.script("reload", &format!("touch '{}'", marker.display()));
    let spec = variant_spec(
        &site,
        json!({"reload": [reload], "health": {"url": svc.url(), "timeout_s": 2}}),
    );
    let (applier, lock, mut session) = env.begin("exp", &spec).await;
    switch(&mut session, "v1", &[]).await.unwrap();
    drop(session);
    drop(svc); // the machine rebooted: the service is not up yet
    fs::remove_file(&marker).unwrap();
    let done = applier.recover(&lock).await.unwrap();
    assert_eq!(done[0].action, RunAction::Restored { reloaded: false });
    assert_eq!(fs::read_to_string(&site).unwrap(), SITE);
    assert!(!marker.exists(), "no reload of a stopped service");
    assert!(actions_include(&env, "reload", "skipped"));
}

#[test]
fn switching_can_run_on_a_multi_threaded_runtime() {
    fn assert_send<T: Send>(_: &T) {}
    let env = Env::new();
    let (applier, lock) = env.applier();
    let spec = apply(json!({}));
    let begin = applier.begin(&lock, "exp", "r1", &spec);
    assert_send(&begin);
    let recover = applier.recover(&lock);
    assert_send(&recover);
}

#[tokio::test]
async fn a_revert_that_does_not_restore_fails_loudly_saying_what_is_there() {
    let env = Env::new();
    let sysctl = env.fake_sysctl("128");
    // A `revert` that does nothing: the value stays the variant's.
    let spec = apply(json!({
        "command": {"read": [sysctl], "set": [sysctl, "{{ backlog }}"], "revert": ["true", "{{ original }}"]},
    }));
    let (_, _lock, mut session) = env.begin("exp", &spec).await;
    switch(&mut session, "v", &[("backlog", "4096")])
        .await
        .unwrap();
    let err = session.revert().await.unwrap_err();
    assert_failed(&err, ErrorKind::RevertFailed, Step::Verify);
    assert!(
        err.to_string()
            .contains("reads `4096` but the original was `128`"),
        "{err}"
    );
    assert!(actions_include(&env, "verify", "failed"));
    assert!(!err.original_in_place());
}

#[tokio::test]
async fn revert_undoes_kept_runs_newest_first() {
    let env = Env::new();
    let site = env.file("site.conf", SITE);
    let spec = variant_spec(&site, json!({}));
    let (applier, lock) = env.applier();
    for (run, arm) in [("r1", "v1"), ("r2", "v2")] {
        let mut session = applier.begin(&lock, "exp", run, &spec).await.unwrap();
        switch(&mut session, arm, &[]).await.unwrap();
        session.keep().unwrap();
    }
    // A later run that changed nothing does not hide the kept ones.
    let bad = apply(
        json!({"files": [{"path": site, "template": "x"}], "command": {"read": ["false"], "set": ["true", "{{ a }}"]}}),
    );
    assert!(applier.begin(&lock, "exp", "r3", &bad).await.is_err());
    assert_eq!(fs::read_to_string(&site).unwrap(), "v=v2\n");
    let first = applier.revert_last(&lock, Some("exp")).await.unwrap();
    assert_eq!(
        (
            first.run_id.as_str(),
            fs::read_to_string(&site).unwrap().as_str()
        ),
        ("r2", "v=v1\n")
    );
    let second = applier.revert_last(&lock, Some("exp")).await.unwrap();
    assert_eq!(
        (
            second.run_id.as_str(),
            fs::read_to_string(&site).unwrap().as_str()
        ),
        ("r1", SITE)
    );
    let third = applier.revert_last(&lock, Some("exp")).await.unwrap();
    assert_eq!(third.action, RunAction::AlreadyReverted);
}

#[tokio::test]
async fn restore_keeps_the_run_open_and_close_verifies_before_closing() {
    let env = Env::new();
    let site = env.file("site.conf", SITE);
    let sysctl = env.fake_sysctl("128");
    let spec = variant_spec(
        &site,
        json!({
            "command": {"read": [sysctl], "set": [sysctl, "{{ backlog }}"]},
            "reload": ["true"],
        }),
    );
    let (applier, lock, mut session) = env.begin("exp", &spec).await;
    switch(&mut session, "v1", &[("backlog", "4096")])
        .await
        .unwrap();
    session.restore().await.unwrap();
    assert_eq!(
        (fs::read_to_string(&site).unwrap(), env.sysctl_value()),
        (SITE.to_owned(), "128".to_owned())
    );
    switch(&mut session, "v2", &[("backlog", "4096")])
        .await
        .unwrap();
    assert_eq!(fs::read_to_string(&site).unwrap(), "v=v2\n");
    session.restore().await.unwrap();
    session.close().await.unwrap();
    assert!(applier.recover(&lock).await.unwrap().is_empty());

    // Closing while a variant is live is refused and leaves the run to recovery.
    let mut session = applier.begin(&lock, "exp", "r2", &spec).await.unwrap();
    switch(&mut session, "v1", &[("backlog", "4096")])
        .await
        .unwrap();
    let err = session.close().await.unwrap_err();
    assert_failed(&err, ErrorKind::RevertFailed, Step::Verify);
    assert_eq!(applier.recover(&lock).await.unwrap().len(), 1);
    assert_eq!(
        (fs::read_to_string(&site).unwrap(), env.sysctl_value()),
        (SITE.to_owned(), "128".to_owned())
    );
}

#[tokio::test]
async fn a_render_error_while_a_variant_is_live_puts_the_original_back() {
    let env = Env::new();
    let site = env.file("site.conf", SITE);
    let spec =
        apply(json!({"files": [{"path": site, "template": "n={{ n }}\n"}], "reload": ["true"]}));
    let (_, _lock, mut session) = env.begin("exp", &spec).await;
    switch(&mut session, "v1", &[("n", "1")]).await.unwrap();
    let err = switch(&mut session, "v2", &[]).await.unwrap_err();
    assert_failed(&err, ErrorKind::Reverted, Step::Render);
    assert!(err.original_in_place());
    assert!(
        err.to_string().contains("switching from `v1` to `v2`"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&site).unwrap(), SITE);
    assert_eq!(session.arm(), "baseline");
    session.close().await.unwrap();
}

#[tokio::test]
async fn recovery_can_keep_a_human_edit_and_restore_the_rest() {
    let env = Env::new();
    let site = env.file("site.conf", SITE);
    let other = env.file("other.conf", "other\n");
    let spec = apply(json!({"files": [
        {"path": site, "template": "v={{ variant }}\n"},
        {"path": other, "template": "o={{ variant }}\n"}
    ]}));
    let (applier, lock, mut session) = env.begin("exp", &spec).await;
    switch(&mut session, "v1", &[]).await.unwrap();
    drop(session);
    fs::write(&site, "fixed by hand\n").unwrap();
    assert_eq!(
        applier.recover(&lock).await.unwrap_err().kind(),
        &ErrorKind::Conflict
    );
    assert_eq!(
        fs::read_to_string(&other).unwrap(),
        "o=v1\n",
        "a refused recovery touches nothing"
    );
    let done = applier.recover_keeping_edits(&lock).await.unwrap();
    assert_eq!(done[0].kept_edits, vec![site.clone()]);
    assert_eq!(fs::read_to_string(&site).unwrap(), "fixed by hand\n");
    assert_eq!(fs::read_to_string(&other).unwrap(), "other\n");
    assert!(actions_include(&env, "conflict", "skipped"));
    assert!(applier.recover(&lock).await.unwrap().is_empty());
}
