//! Commands as argv vectors: never a shell string, placeholders only where they are rendered.

use std::path::Path;

use serde_json::Value;

use super::template_syntax;
use crate::reader::{Reader, index};

/// Whether placeholders may appear in an argv (they are rendered only in `command.set` and
/// `command.revert`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placeholders {
    /// The argv is rendered per arm.
    Rendered,
    /// The argv runs as written; a `{{` is a mistake.
    Forbidden,
}

/// The shells whose `-c` would turn an argv back into a shell string.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "ash", "fish", "busybox"];

/// A command as an argv vector: never a shell string.
pub(crate) fn argv(
    r: &mut Reader,
    value: &Value,
    field: &str,
    example: &str,
    placeholders: Placeholders,
) {
    let Some(items) = r.array(value, field, &format!("an array of strings like {example}")) else {
        return;
    };
    if items.is_empty() {
        r.problem(
            field,
            format!("is empty; give the program and its arguments, like {example}"),
        );
        return;
    }
    let mut words = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = index(field, i);
        let Some(word) = r.string(item, &path, "a string") else {
            continue;
        };
        if word.contains('\0') {
            r.problem(
                &path,
                "contains a NUL character, which no argument can hold",
            );
        } else if placeholders == Placeholders::Forbidden && word.contains("{{") {
            r.problem(
                &path,
                "is not rendered, so it cannot hold placeholders; they work in files, \
                 edit.replace, command.set, command.revert and live_check.equals",
            );
        } else if placeholders == Placeholders::Rendered {
            template_syntax(r, word, &path, None);
        }
        words.push(word);
    }
    let Some(program) = words.first() else {
        return;
    };
    if program.is_empty() {
        r.problem(
            &index(field, 0),
            "is empty; give the program to run, like \"nginx\"",
        );
    } else if program.trim() != *program || program.contains(char::is_whitespace) {
        let split: Vec<String> = program
            .split_whitespace()
            .chain(words[1..].iter().copied())
            .map(|w| Value::from(w).to_string())
            .collect();
        r.problem(
            field,
            format!(
                "looks like a shell command line; commands run without a shell, so give each \
                 word as its own string: [{}]",
                split.join(", ")
            ),
        );
    } else {
        let base = Path::new(program)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(program);
        if SHELLS.contains(&base) && words.iter().any(|w| w.starts_with('-') && w.contains('c')) {
            r.problem(
                field,
                format!(
                    "runs a shell string through {base} -c; commands run without a shell, so \
                     give the program and its arguments directly, like {example}"
                ),
            );
        }
    }
}
