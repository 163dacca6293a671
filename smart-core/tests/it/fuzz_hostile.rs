//! Property tests with hostile input (issue 14): `smart.toml` as random bytes and as structured
//! mutations of a full config, hostile values (huge, negative, shell strings, other URL
//! schemes, deep nesting) in every field of an experiment, and `template_file` paths built from
//! `..`, `/`, symlinks and odd bytes, which must never read a file outside the experiment's
//! directory. Each property runs [`CASES`] inputs; none may panic.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Value, json};
use smart_core::validate::{validate_bytes, validate_file};
use smart_core::{AgentConfig, Defaults};

use crate::support::{base, repo_root, with};

/// Inputs per property.
const CASES: u32 = 1000;

/// The example `smart.toml` (every section, with comments), with `[logs]` set.
fn full_toml() -> String {
    std::fs::read_to_string(repo_root().join("examples/smart.toml"))
        .unwrap()
        .replace("[logs]\n", "[logs]\nmax_bytes = 1048576\nkeep = 3\n")
}

fn check_toml(text: &str) {
    match AgentConfig::from_toml(text, Path::new("/etc/smart/smart.toml")) {
        Ok(_) => {}
        Err(invalid) => {
            assert!(!invalid.problems().is_empty());
            assert!(invalid.problems().iter().all(|p| !p.message().is_empty()));
        }
    }
}

/// Hostile TOML values.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("18446744073709551616".to_owned()),
        Just("-9223372036854775808".to_owned()),
        Just("1e308".to_owned()),
        Just("-1".to_owned()),
        Just("nan".to_owned()),
        Just("inf".to_owned()),
        Just("\"$(rm -rf /)\"".to_owned()),
        Just("\"../../etc/shadow\"".to_owned()),
        Just("\"\"".to_owned()),
        Just("[[[[[[[[1]]]]]]]]".to_owned()),
        Just("{ a = { b = { c = 1 } } }".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        Just("true".to_owned()),
        "\"[^\"\\\\]{0,20}\"",
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

/// Hostile JSON values for an experiment's fields.
fn hostile_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(json!(1e308)),
        Just(json!(-1e308)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!("rm -rf / ; echo pwned")),
        Just(json!("file:///etc/shadow")),
        Just(json!("gopher://127.0.0.1/")),
        Just(json!("http://user:secret@127.0.0.1/")),
        Just(json!("../../../../etc/shadow")),
        Just(json!("/etc/shadow")),
        Just(json!("{{ }}")),
        Just(json!("{{ max }")),
        Just(json!("\u{0}\u{202e}")),
        Just(json!("x".repeat(70_000))),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every dotted path of `value` (array items as numbers), pre-order.
fn paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return,
    };
    for (key, child) in children {
        let path = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        out.push(path.clone());
        paths(child, &path, out);
    }
}

/// An experiment dir with templates inside, a secret outside, and symlinks both ways.
struct Tree {
    _root: tempfile::TempDir,
    exp: PathBuf,
}

const INSIDE: &str = "open_file_cache max={{ max }} inactive={{ inactive }};\n";
const SECRET: &str = "secret-that-must-never-be-read {{ max }} {{ inactive }}\n";

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let exp = root.path().join("exp");
        std::fs::create_dir_all(exp.join("sub")).unwrap();
        std::fs::write(exp.join("tmpl.conf"), INSIDE).unwrap();
        std::fs::write(exp.join("sub/tmpl.conf"), INSIDE).unwrap();
        std::fs::write(root.path().join("tmpl.conf"), SECRET).unwrap();
        std::os::unix::fs::symlink(root.path(), exp.join("up")).unwrap();
        std::os::unix::fs::symlink(root.path().join("tmpl.conf"), exp.join("out.conf")).unwrap();
        std::os::unix::fs::symlink("tmpl.conf", exp.join("sub/in.conf")).unwrap();
        std::os::unix::fs::symlink("../tmpl.conf", exp.join("sub/up.conf")).unwrap();
        Tree { _root: root, exp }
    })
}

/// A path built from pieces that can climb, jump or stay.
fn template_path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(".."),
        Just("."),
        Just(""),
        Just("sub"),
        Just("up"),
        Just("tmpl.conf"),
        Just("out.conf"),
        Just("in.conf"),
        Just("up.conf"),
        Just("exp"),
        Just("/"),
        Just("\u{0}"),
        Just("%2e%2e"),
    ];
    prop::collection::vec(piece, 1..7).prop_map(|pieces| pieces.join("/"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn smart_toml_random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_toml(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn smart_toml_mutations_never_panic(
        edits in prop::collection::vec((any::<usize>(), "[a-z_.]{1,24}", toml_value(), 0..3u8), 1..5)
    ) {
        let mut lines: Vec<String> = full_toml().lines().map(str::to_owned).collect();
        for (at, key, value, kind) in edits {
            let at = at % (lines.len() + 1);
            match kind {
                // A new key = value (or a table header) somewhere.
                0 => lines.insert(at, format!("{key} = {value}")),
                1 => lines.insert(at, format!("[{key}]")),
                // An existing key's value replaced.
                _ if at < lines.len() => {
                    if let Some((k, _)) = lines[at].split_once('=') {
                        lines[at] = format!("{k}= {value}");
                    }
                }
                _ => {}
            }
        }
        check_toml(&lines.join("\n"));
    }

    #[test]
    fn hostile_values_in_any_field_never_panic(
        choices in prop::collection::vec((any::<usize>(), hostile_json()), 1..4)
    ) {
        let mut value = base();
        for (at, new) in choices {
            let mut all = Vec::new();
            paths(&value, "", &mut all);
            let path = all[at % all.len()].clone();
            value = with(value, &path, Some(new));
        }
        let bytes = serde_json::to_vec(&value).unwrap();
        let source = repo_root().join("smart-core/tests/fixtures/fuzz.json");
        if let Err(invalid) = validate_bytes(&bytes, &source, &Defaults::default()) {
            prop_assert!(!invalid.problems().is_empty());
            // A credential given in a URL is never echoed.
            prop_assert!(!invalid.to_string().contains("user:secret"));
        }
    }

    #[test]
    fn template_files_never_read_outside_the_experiment_dir(path in template_path()) {
        let tree = tree();
        let input = with(
            base(),
            "apply.files.0",
            Some(json!({"path": "/etc/nginx/conf.d/c.conf", "template_file": path})),
        );
        let file = tree.exp.join(format!("fuzz-{}.json", std::process::id()));
        let text = input.to_string();
        // Each case writes its own experiment file; cases run one after another.
        std::fs::write(&file, &text).unwrap();
        match validate_file(&file, &Defaults::default()) {
            Ok(experiment) => {
                prop_assert_eq!(experiment.apply().files[0].template.as_deref(), Some(INSIDE));
            }
            Err(invalid) => {
                prop_assert!(!invalid.to_string().contains("secret-that-must-never-be-read"));
            }
        }
    }
}
