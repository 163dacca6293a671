//! The token rules with real files: a token file its group or others can read is refused with
//! the fix, a private one is used, and no error or Debug output ever shows the token.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use smart_core::AgentConfig;

use crate::support::TOKEN;

fn load(
    dir: &Path,
    coach: &str,
) -> Result<Option<smart_coach::RemoteCoach>, smart_coach::CoachError> {
    let path = dir.join("smart.toml");
    std::fs::write(&path, format!("state_dir = \"state\"\n{coach}")).unwrap();
    let config = AgentConfig::load(&path).unwrap();
    smart_coach::from_config(&config, config.state_dir(), &|_| None)
}

#[test]
fn no_coach_table_means_no_coach() {
    let dir = tempfile::tempdir().unwrap();
    assert!(load(dir.path(), "").unwrap().is_none());
}

#[test]
fn a_token_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("coach.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let coach = "[coach]\nurl = \"https://coach.example.com\"\ntoken_file = \"coach.token\"\n";
    for mode in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = load(dir.path(), coach).unwrap_err().to_string();
        assert!(err.contains("smart.toml: coach.token_file:"), "{err}");
        assert!(err.contains(&format!("mode {mode:04o}")), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains(TOKEN), "{err}");
    }
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let coach = load(dir.path(), coach).unwrap().unwrap();
    let debug = format!("{coach:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
}

#[test]
fn token_file_mistakes_name_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let coach = |file: &str| {
        format!("[coach]\nurl = \"https://coach.example.com\"\ntoken_file = \"{file}\"\n")
    };
    let err = load(dir.path(), &coach("missing.token"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot open") && err.contains("chmod 600"),
        "{err}"
    );
    let empty = dir.path().join("empty.token");
    std::fs::write(&empty, "\n").unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = load(dir.path(), &coach("empty.token"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is empty"), "{err}");
    let spaced = dir.path().join("spaced.token");
    std::fs::write(&spaced, format!("{TOKEN} and more")).unwrap();
    std::fs::set_permissions(&spaced, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = load(dir.path(), &coach("spaced.token"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot have"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
}

#[tokio::test]
async fn maybe_coach_without_a_coach_reports_nowhere_and_reverts() {
    use smart_core::engine::{AdviceAction, AdviceRequest, CoachPort};
    let dir = tempfile::tempdir().unwrap();
    let mut none = smart_coach::MaybeCoach::from(load(dir.path(), "").unwrap());
    assert!(none.get().is_none());
    assert!(!none.advises());
    none.report(&crate::support::decision("r1", "v")).await;
    none.defer(&crate::support::decision("r1", "v"));
    let j = crate::support::judgement();
    let advice = none
        .advise(&AdviceRequest {
            run_id: "r1",
            experiment: "e",
            variant: "v",
            judgement: &j,
            max_cycles: 6,
        })
        .await;
    assert_eq!(advice.action, AdviceAction::Revert);
    assert!(
        !dir.path().join("state").exists(),
        "a missing coach wrote state"
    );
    let token = dir.path().join("t");
    std::fs::write(&token, TOKEN).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let some = smart_coach::MaybeCoach::from(
        load(
            dir.path(),
            "[coach]\nurl = \"https://c.example.com\"\ntoken_file = \"t\"\nmode = \"advise\"\n",
        )
        .unwrap(),
    );
    assert!(some.advises());
    assert_eq!(some.get().unwrap().config().timeout().as_secs(), 10);
}
