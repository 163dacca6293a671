//! Renders one arm's content for each file: a whole-file template, or a one-line edit of the
//! file as found.

use std::collections::BTreeMap;

use regex::bytes::Regex;
use smart_core::experiment::{Edit, FileSpec, Params};
use smart_core::template;

use crate::error::{Error, ErrorKind, Step};

/// The values a template renders with: the params plus `variant`.
pub(crate) fn values(arm: &str, params: &Params) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    values.insert(template::VARIANT_PLACEHOLDER.to_owned(), arm.to_owned());
    values
}

/// What file `index` should hold for an arm rendered with `values`, given its found content.
pub(crate) fn file(
    index: usize,
    spec: &FileSpec,
    found: Option<&[u8]>,
    values: &BTreeMap<String, String>,
) -> Result<Vec<u8>, Error> {
    let field = format!("apply.files[{index}]");
    let bad = |message: String| Error::new(ErrorKind::BadInput, Step::Render, message);
    match (&spec.template, &spec.edit) {
        (Some(text), None) => template::render(text, values)
            .map(String::into_bytes)
            .map_err(|e| bad(format!("{field}.template ({}): {e}", spec.path))),
        (None, Some(edit)) => {
            let found = found.ok_or_else(|| {
                bad(format!(
                    "{field}.edit: {} does not exist, so there is no line to edit",
                    spec.path
                ))
            })?;
            let line = template::render(&edit.replace, values)
                .map_err(|e| bad(format!("{field}.edit.replace: {e}")))?;
            if line.contains(['\n', '\r']) {
                return Err(bad(format!(
                    "{field}.edit.replace renders to more than one line: an edit replaces exactly one line"
                )));
            }
            edit_line(&field, &spec.path, edit, found, line.as_bytes())
        }
        (None, None) => Err(bad(format!(
            "{field} ({}) has neither `template` nor `edit` (a `template_file` must be read into `template` by validation first)",
            spec.path
        ))),
        (Some(_), Some(_)) => Err(bad(format!(
            "{field} ({}) has both `template` and `edit`: give one",
            spec.path
        ))),
    }
}

/// Replaces the one line of `found` matching `edit.pattern` with `line`, keeping its ending.
pub(crate) fn edit_line(
    field: &str,
    path: &str,
    edit: &Edit,
    found: &[u8],
    line: &[u8],
) -> Result<Vec<u8>, Error> {
    let bad = |message: String| Error::new(ErrorKind::BadInput, Step::Render, message);
    let regex = Regex::new(&edit.pattern)
        .map_err(|e| bad(format!("{field}.edit.pattern is not a valid regex: {e}")))?;
    let mut matches = Vec::new();
    let mut start = 0;
    for (n, raw) in found.split_inclusive(|&b| b == b'\n').enumerate() {
        let body = raw.strip_suffix(b"\n").unwrap_or(raw);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if regex.is_match(body) {
            matches.push((n + 1, start, start + body.len()));
        }
        start += raw.len();
    }
    match matches.as_slice() {
        [(_, from, to)] => {
            let mut out = Vec::with_capacity(found.len() + line.len());
            out.extend_from_slice(&found[..*from]);
            out.extend_from_slice(line);
            out.extend_from_slice(&found[*to..]);
            Ok(out)
        }
        [] => Err(bad(format!(
            "{field}.edit.pattern `{}` matches no line of {path}: it must match exactly one",
            edit.pattern
        ))),
        many => Err(bad(format!(
            "{field}.edit.pattern `{}` matches {} lines of {path} (lines {}): it must match exactly one",
            edit.pattern,
            many.len(),
            many.iter()
                .map(|(n, _, _)| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smart_core::experiment::ParamValue;

    fn spec(template: Option<&str>, edit: Option<(&str, &str)>) -> FileSpec {
        FileSpec {
            path: "/etc/x.conf".to_owned(),
            template: template.map(str::to_owned),
            template_file: None,
            edit: edit.map(|(p, r)| Edit {
                pattern: p.to_owned(),
                replace: r.to_owned(),
            }),
        }
    }

    fn check(spec: FileSpec, found: Option<&str>, expected: Result<&str, &str>) {
        let params = Params::from([
            ("workers".to_owned(), ParamValue::Int(4)),
            ("level".to_owned(), ParamValue::Str("6".to_owned())),
        ]);
        let got = file(0, &spec, found.map(str::as_bytes), &values("v1", &params));
        match (got, expected) {
            (Ok(bytes), Ok(want)) => assert_eq!(String::from_utf8(bytes).unwrap(), want),
            (Err(e), Err(needle)) => assert!(e.to_string().contains(needle), "{e}"),
            (got, want) => panic!("got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn templates_and_edits_render() {
        check(
            spec(
                Some("gzip_comp_level {{ level }}; # {{ variant }}\nserver { }\n"),
                None,
            ),
            None,
            Ok("gzip_comp_level 6; # v1\nserver { }\n"),
        );
        let conf = "user www;\nworker_processes auto;\r\nevents { }";
        let edit = Some(("^worker_processes .*;", "worker_processes {{ workers }};"));
        check(
            spec(None, edit),
            Some(conf),
            Ok("user www;\nworker_processes 4;\r\nevents { }"),
        );
        let last = Some(("^events", "events { worker_connections {{ workers }}; }"));
        check(
            spec(None, last),
            Some(conf),
            Ok("user www;\nworker_processes auto;\r\nevents { worker_connections 4; }"),
        );
    }

    #[test]
    fn bad_edits_and_templates_are_errors_naming_the_field() {
        let conf = "a 1;\na 2;\nb;\n";
        check(
            spec(None, Some(("^a ", "a {{ workers }};"))),
            Some(conf),
            Err("matches 2 lines of /etc/x.conf (lines 1, 2)"),
        );
        check(
            spec(None, Some(("^c", "c;"))),
            Some(conf),
            Err("matches no line"),
        );
        check(spec(None, Some(("^b", "b;"))), None, Err("does not exist"));
        check(
            spec(None, Some(("(", "b;"))),
            Some(conf),
            Err("not a valid regex"),
        );
        check(
            spec(Some("{{ nope }}"), None),
            None,
            Err("apply.files[0].template"),
        );
        check(spec(None, None), None, Err("neither"));
    }
}
