//! A small, strict `{{ param }}` substituter for config files.
//!
//! Config files (nginx, HAProxy, JSON) are full of single braces, so only a double-brace
//! placeholder is special and single braces pass through untouched. Values are inserted verbatim,
//! never HTML-escaped. We do not use tinytemplate here: its `{param}` syntax would read every nginx
//! block as a placeholder and its default escaping would corrupt values. A hand-written substituter
//! is about a hundred lines, has no surprising features (no loops, no filters, no whitespace
//! control) and can report errors with line and column, which a general engine would not do as
//! plainly.

use std::collections::BTreeMap;
use std::fmt;

use crate::experiment::Params;

/// One `{{ name }}` placeholder found in a template, with where it starts (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// The parameter name between the braces, without the surrounding spaces.
    pub name: String,
    /// 1-based line of the opening `{{`.
    pub line: usize,
    /// 1-based column (in characters) of the opening `{{`.
    pub column: usize,
}

/// What went wrong while reading or rendering a template, with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct TemplateError {
    /// 1-based line of the offending `{{`.
    pub line: usize,
    /// 1-based column (in characters) of the offending `{{`.
    pub column: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// The reserved placeholder that always renders to the arm's name (`baseline` or a variant's name).
pub const VARIANT_PLACEHOLDER: &str = "variant";

/// Lists every placeholder of `template` in order, or the first malformed `{{`.
///
/// A placeholder is `{{`, optional spaces, a name matching `[a-z][a-z0-9_]*`, optional spaces,
/// `}}`. Any other `{{` is an error, so a typo never silently reaches a config file.
pub fn placeholders(template: &str) -> Result<Vec<Placeholder>, TemplateError> {
    let mut found = Vec::new();
    let mut line = 1;
    let mut column = 1;
    let mut rest = template;
    while let Some(ch) = rest.chars().next() {
        if rest.starts_with("{{") {
            let (name, len) = parse_placeholder(rest).map_err(|message| TemplateError {
                line,
                column,
                message,
            })?;
            found.push(Placeholder {
                name: name.to_owned(),
                line,
                column,
            });
            column += rest[..len].chars().count();
            rest = &rest[len..];
            continue;
        }
        if ch == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
        rest = &rest[ch.len_utf8()..];
    }
    Ok(found)
}

/// Parses the placeholder at the start of `s` (which starts with `{{`): its name and byte length.
fn parse_placeholder(s: &str) -> Result<(&str, usize), String> {
    let Some(close) = s[2..].find("}}") else {
        return Err("`{{` is never closed: write `{{ name }}`".to_owned());
    };
    let inner = &s[2..2 + close];
    if inner.contains('\n') {
        return Err("`{{` is not closed on the same line: write `{{ name }}`".to_owned());
    }
    let name = inner.trim_matches(|c| c == ' ' || c == '\t');
    if !is_param_name(name) {
        return Err(format!(
            "`{{{{{inner}}}}}` is not a placeholder: write `{{{{ name }}}}` with a name like `max_conns` ([a-z][a-z0-9_]*)"
        ));
    }
    Ok((name, 2 + close + 2))
}

/// Whether `name` is a valid parameter name: `[a-z][a-z0-9_]*`.
pub fn is_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

/// Renders `template`, replacing each `{{ name }}` with `values[name]` verbatim.
///
/// Every placeholder must have a value; values are inserted as given, never escaped.
pub fn render<V: fmt::Display>(
    template: &str,
    values: &BTreeMap<String, V>,
) -> Result<String, TemplateError> {
    let found = placeholders(template)?;
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    for placeholder in &found {
        let start = rest.find("{{").expect("placeholders() found this `{{`");
        out.push_str(&rest[..start]);
        let (_, len) = parse_placeholder(&rest[start..]).expect("placeholders() parsed it");
        let value = values.get(&placeholder.name).ok_or_else(|| TemplateError {
            line: placeholder.line,
            column: placeholder.column,
            message: format!(
                "`{{{{ {} }}}}` has no value: add a param `{}` to every variant (and the baseline, if given)",
                placeholder.name, placeholder.name
            ),
        })?;
        out.push_str(&value.to_string());
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The values an arm renders with: its params as text plus `variant`.
pub(crate) fn arm_values(name: &str, params: &Params) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    values.insert(VARIANT_PLACEHOLDER.to_owned(), name.to_owned());
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn check(template: &str, pairs: &[(&str, &str)], expected: Result<&str, (usize, usize)>) {
        let got = render(template, &values(pairs));
        match (got, expected) {
            (Ok(text), Ok(want)) => assert_eq!(text, want),
            (Err(e), Err((line, column))) => {
                assert_eq!((e.line, e.column), (line, column), "{e}")
            }
            (got, want) => panic!("render({template:?}) = {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn substitutes_and_passes_single_braces_through() {
        check("a {{ x }} b", &[("x", "1")], Ok("a 1 b"));
        check("{{x}}{{ y }}", &[("x", "1"), ("y", "2")], Ok("12"));
        check("{{\tx\t}}", &[("x", "1")], Ok("1"));
        check(
            "server { listen 80; gzip_comp_level {{ level }}; }\n",
            &[("level", "5")],
            Ok("server { listen 80; gzip_comp_level 5; }\n"),
        );
        check("{\"a\": {\"b\": 1}}", &[], Ok("{\"a\": {\"b\": 1}}"));
        check("x } } {", &[], Ok("x } } {"));
    }

    #[test]
    fn values_are_never_escaped() {
        check(
            "v={{ v }}",
            &[("v", "<a href=\"x\">&</a>")],
            Ok("v=<a href=\"x\">&</a>"),
        );
        check("{{ v }}", &[("v", "{{ w }}")], Ok("{{ w }}"));
    }

    #[test]
    fn errors_name_line_and_column() {
        check("a\nb {{ missing }}", &[], Err((2, 3)));
        check("{{ Bad }}", &[("Bad", "1")], Err((1, 1)));
        check("ok {{ x", &[("x", "1")], Err((1, 4)));
        check("é {{ }}", &[], Err((1, 3)));
        check("{{ x\n}}", &[("x", "1")], Err((1, 1)));
        check("{{ a b }}", &[("a", "1")], Err((1, 1)));
    }

    #[test]
    fn lists_placeholders_in_order() {
        let found = placeholders("{{ a }}\n  {{b}} {{ a }}").unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|p| (p.name.as_str(), p.line, p.column))
            .collect();
        assert_eq!(names, [("a", 1, 1), ("b", 2, 3), ("a", 2, 9)]);
    }

    #[test]
    fn param_names() {
        for ok in ["a", "max_conns", "x1"] {
            assert!(is_param_name(ok), "{ok}");
        }
        for bad in ["", "1a", "A", "a-b", "_a", "a b"] {
            assert!(!is_param_name(bad), "{bad}");
        }
    }
}
