//! `smart generate`: completions and man pages come from the clap definitions, name every
//! subcommand, and parse; and `--config` is offered only where it does something.

use std::process::Command;

use crate::support::smart;

/// The subcommands a user sees in `smart --help`.
const SUBCOMMANDS: [&str; 14] = [
    "validate",
    "init",
    "probe",
    "calibrate",
    "revert",
    "recover",
    "audit",
    "dashboard",
    "run",
    "status",
    "history",
    "show",
    "prune",
    "demo",
];

#[test]
fn completions_for_bash_zsh_and_fish_name_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = smart(dir.path(), &["generate", "completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {:?}", out);
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.len() > 1000, "{shell}: a tiny script:\n{script}");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell}: {sub} missing");
        }
        let once = if shell == "fish" { "-l once" } else { "--once" };
        assert!(script.contains(once), "{shell}: run's flags missing");
        if shell == "bash" {
            let path = dir.path().join("smart.bash");
            std::fs::write(&path, &script).unwrap();
            let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(
                check.status.success(),
                "bash -n: {}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
    }
    let out = smart(dir.path(), &["generate", "completions", "powershell"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_pages_cover_the_command_and_each_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man/man1");
    let out = smart(dir.path(), &["generate", "man", man.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let top = std::fs::read_to_string(man.join("smart.1")).unwrap();
    assert!(top.starts_with(".ie \\n(.g .ds Aq"), "not roff:\n{top}");
    assert!(top.contains(".TH smart 1"), "{top}");
    for sub in SUBCOMMANDS {
        assert!(top.contains(sub), "smart.1 does not name {sub}");
        let page = std::fs::read_to_string(man.join(format!("smart-{sub}.1")))
            .unwrap_or_else(|e| panic!("smart-{sub}.1: {e}"));
        assert!(
            page.contains(&format!("smart\\-{sub}")),
            "smart-{sub}.1:\n{page}"
        );
    }
    assert!(!man.join("smart-generate.1").exists());
    assert!(!man.join("smart-help.1").exists());
    let run = std::fs::read_to_string(man.join("smart-run.1")).unwrap();
    assert!(run.contains("\\-\\-once"), "{run}");
}

#[test]
fn config_is_offered_only_by_the_subcommands_that_read_it() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["init", "probe", "demo"] {
        let help = smart(dir.path(), &[sub, "--help"]);
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(
            !help.contains("--config"),
            "`smart {sub} --help` lists --config:\n{help}"
        );
        let mut args = vec!["--config", "x.toml", sub];
        if sub == "probe" {
            args.push("http://127.0.0.1:9/");
        }
        let out = smart(dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "`smart --config x.toml {sub}`");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("would do nothing; drop it"), "{err}");
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "a refused init wrote files"
    );
    for sub in [
        "validate",
        "run",
        "status",
        "history",
        "show",
        "dashboard",
        "prune",
    ] {
        let help = smart(dir.path(), &[sub, "--help"]);
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(
            help.contains("--config <PATH>"),
            "`smart {sub} --help` lacks --config"
        );
    }
    // After the subcommand works as before it does: a missing file named either way is the
    // same error.
    let before = smart(dir.path(), &["--config", "missing.toml", "history"]);
    let after = smart(dir.path(), &["history", "--config", "missing.toml"]);
    assert_eq!(before.status.code(), after.status.code());
    assert_eq!(before.stderr, after.stderr);
    assert_ne!(before.status.code(), Some(0));
}
