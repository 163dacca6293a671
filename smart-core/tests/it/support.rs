//! Shared helpers: a valid base experiment and a way to change one field of it.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use smart_core::{Defaults, Experiment, Invalid, validate};

/// A small valid experiment that cases change one or two fields of.
pub(crate) fn base() -> Value {
    json!({
        "name": "file-cache",
        "target": {"urls": ["http://127.0.0.1/"]},
        "apply": {
            "files": [{
                "path": "/etc/nginx/conf.d/smart-cache.conf",
                "template": "open_file_cache max={{ max }} inactive={{ inactive }};\n"
            }],
            "validate": ["nginx", "-t"],
            "reload": ["nginx", "-s", "reload"]
        },
        "variants": [
            {"name": "cache-1k", "params": {"max": 1000, "inactive": "20s"}},
            {"name": "cache-10k", "params": {"max": 10000, "inactive": "60s"}}
        ]
    })
}

/// `value` with the field at the dotted `path` (array items as numbers) set to `new`, or removed
/// when `new` is `None`.
pub(crate) fn with(mut value: Value, path: &str, new: Option<Value>) -> Value {
    let parts: Vec<&str> = path.split('.').collect();
    let (last, parents) = parts.split_last().expect("a non-empty path");
    let mut at = &mut value;
    for part in parents {
        at = match part.parse::<usize>() {
            Ok(i) => &mut at[i],
            Err(_) => at
                .as_object_mut()
                .expect("an object on the path")
                .entry(part.to_string())
                .or_insert_with(|| json!({})),
        };
    }
    match (last.parse::<usize>(), new) {
        (Ok(i), Some(new)) => at[i] = new,
        (Ok(i), None) => {
            at.as_array_mut().expect("an array").remove(i);
        }
        (Err(_), Some(new)) => {
            at.as_object_mut()
                .expect("an object")
                .insert(last.to_string(), new);
        }
        (Err(_), None) => {
            at.as_object_mut().expect("an object").remove(*last);
        }
    }
    value
}

/// Validates `text` as if read from `experiments/test.json`.
pub(crate) fn validate_text(text: &str) -> Result<Experiment, Invalid> {
    validate::validate_text(
        text,
        Path::new("experiments/test.json"),
        &Defaults::default(),
    )
}

/// Checks that `input` is valid (`expected` empty) or has exactly the expected problems, each
/// given as the start of its `field: message` line (order does not matter).
pub(crate) fn check(input: &str, expected: &[&str]) {
    let got: Vec<String> = match validate_text(input) {
        Ok(_) => Vec::new(),
        Err(invalid) => invalid.problems().iter().map(|p| p.to_string()).collect(),
    };
    let mut unmatched: Vec<&String> = got.iter().collect();
    for want in expected {
        match unmatched.iter().position(|g| g.starts_with(want)) {
            Some(i) => {
                unmatched.remove(i);
            }
            None => panic!("no problem starts with {want:?}; got {got:#?}\ninput: {input}"),
        }
    }
    assert!(
        unmatched.is_empty(),
        "unexpected problems {unmatched:#?}\ninput: {input}"
    );
}

/// [`check`] for the base experiment with one field changed.
pub(crate) fn check_field(path: &str, new: Value, expected: &[&str]) {
    check(&with(base(), path, Some(new)).to_string(), expected);
}

/// The repository's root, for the examples and docs.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("smart-core sits in the workspace root")
        .to_owned()
}
