//! The `apply` section: the files to change (templates and edits), the commands, the health and
//! live checks.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::argv::{Placeholders, argv};
use super::http::{http_url, is_token_byte, status_list};
use super::{
    APPLY_KEYS, COMMAND_KEYS, EDIT_KEYS, FILE_KEYS, HEALTH_KEYS, LIVE_CHECK_KEYS, key_home,
    optional, template_syntax, typed,
};
use crate::experiment::Apply;
use crate::reader::{Range, Reader, index, join};
use crate::validate::source;

/// The most files one experiment may change.
const MAX_FILES: usize = 64;
/// The most bytes all of an experiment's template files may hold together (each is at most 1 MiB),
/// so rendering every arm stays quick.
const MAX_TEMPLATE_FILE_BYTES: usize = 4 * 1024 * 1024;

/// The `apply` section, plus for each file the template file it was read from (if any).
pub(crate) fn apply(
    r: &mut Reader,
    value: &Value,
    base_dir: &Path,
) -> Option<(Apply, Vec<Option<PathBuf>>)> {
    let field = "apply";
    let start = r.count();
    let map = r.object(value, field, APPLY_KEYS, &key_home)?;
    let mut templates = Vec::new();
    let mut origins = Vec::new();
    if let Some(files) = map.get("files") {
        (templates, origins) = self::files(r, files, &join(field, "files"), base_dir);
    }
    if let Some(command) = optional(map, "command") {
        self::command(r, command, &join(field, "command"));
    }
    let has_files = map
        .get("files")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if !has_files && optional(map, "command").is_none() {
        r.problem(
            field,
            "changes nothing; give \"files\" (config files to own or edit) or \"command\" (a \
             setting changed by commands, like a sysctl)",
        );
    }
    if let Some(validate) = optional(map, "validate") {
        argv(
            r,
            validate,
            &join(field, "validate"),
            "[\"nginx\", \"-t\"]",
            Placeholders::Forbidden,
        );
    }
    if let Some(reload) = optional(map, "reload") {
        argv(
            r,
            reload,
            &join(field, "reload"),
            "[\"nginx\", \"-s\", \"reload\"]",
            Placeholders::Forbidden,
        );
    }
    if let Some(health) = optional(map, "health") {
        self::health(r, health, &join(field, "health"));
    }
    if let Some(live) = optional(map, "live_check") {
        live_check(r, live, &join(field, "live_check"));
    }
    if let Some(timeout) = map.get("command_timeout_s") {
        r.number(
            timeout,
            &join(field, "command_timeout_s"),
            Range::positive(3600.0),
        );
    }
    let mut apply: Apply = typed(r, start, value, field)?;
    for (file, template) in apply.files.iter_mut().zip(templates) {
        if let Some(text) = template {
            file.template = Some(text);
            file.template_file = None;
        }
    }
    Some((apply, origins))
}

/// `apply.files`: returns, per file, the text read from its `template_file` and that file's path.
fn files(
    r: &mut Reader,
    value: &Value,
    field: &str,
    base_dir: &Path,
) -> (Vec<Option<String>>, Vec<Option<PathBuf>>) {
    let mut templates = Vec::new();
    let mut origins = Vec::new();
    let Some(items) = r.array(
        value,
        field,
        "an array of files like [{\"path\": \"/etc/nginx/conf.d/smart.conf\", \"template\": \"...\"}]",
    ) else {
        return (templates, origins);
    };
    if items.len() > MAX_FILES {
        r.problem(
            field,
            format!("lists {} files; give at most {MAX_FILES}", items.len()),
        );
        return (templates, origins);
    }
    let mut paths: Vec<(String, String)> = Vec::new();
    let mut total = 0;
    for (i, item) in items.iter().enumerate() {
        let entry = index(field, i);
        let (template, origin) = file(r, item, &entry, base_dir, &mut paths);
        total += template.as_ref().map_or(0, String::len);
        if total > MAX_TEMPLATE_FILE_BYTES {
            r.problem(
                &join(&entry, "template_file"),
                format!(
                    "brings the template files to more than {MAX_TEMPLATE_FILE_BYTES} bytes in \
                     all; an experiment should change a few small files"
                ),
            );
            return (templates, origins);
        }
        templates.push(template);
        origins.push(origin);
    }
    (templates, origins)
}

/// One entry of `apply.files`.
fn file(
    r: &mut Reader,
    value: &Value,
    field: &str,
    base_dir: &Path,
    paths: &mut Vec<(String, String)>,
) -> (Option<String>, Option<PathBuf>) {
    let Some(map) = r.object(value, field, FILE_KEYS, &key_home) else {
        return (None, None);
    };
    if let Some(path) = r.required(map, field, "path", "\"/etc/nginx/conf.d/smart.conf\"") {
        let path_field = join(field, "path");
        if let Some(path) = absolute_path(r, path, &path_field) {
            if let Some((_, first)) = paths.iter().find(|(p, _)| p == path) {
                r.problem(
                    &path_field,
                    format!("is the same file as {first}; list each file once"),
                );
            } else {
                paths.push((path.to_owned(), path_field));
            }
        }
    }
    let given: Vec<&str> = ["template", "template_file", "edit"]
        .into_iter()
        .filter(|k| optional(map, k).is_some())
        .collect();
    match given.len() {
        0 => r.problem(
            field,
            "says nothing about the file's content; give \"template\" (the whole file), \
             \"template_file\" (the whole file, from a file) or \"edit\" (one line of an \
             existing file)",
        ),
        1 => {}
        _ => r.problem(
            field,
            format!(
                "gives {}; give only one of \"template\", \"template_file\" and \"edit\"",
                given.join(" and ")
            ),
        ),
    }
    if let Some(template) = optional(map, "template") {
        let path = join(field, "template");
        if let Some(text) = r.string(template, &path, "the file's content as a string") {
            template_syntax(r, text, &path, None);
        }
    }
    if let Some(edit) = optional(map, "edit") {
        self::edit(r, edit, &join(field, "edit"));
    }
    let Some(template_file) = optional(map, "template_file") else {
        return (None, None);
    };
    let tf_field = join(field, "template_file");
    let Some(relative) = r.string(
        template_file,
        &tf_field,
        "a path like \"templates/cache.conf\"",
    ) else {
        return (None, None);
    };
    if relative.is_empty() {
        r.problem(
            &tf_field,
            "is empty; give a path relative to the experiment file",
        );
        return (None, None);
    }
    let text = source::read_inside(base_dir, relative).and_then(|(bytes, resolved)| {
        let path = resolved.display().to_string();
        String::from_utf8(bytes)
            .map(|text| (text, resolved))
            .map_err(|e| {
                format!(
                    "{path}: is not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                )
            })
    });
    match text {
        Ok((text, resolved)) => {
            template_syntax(r, &text, &tf_field, Some(&resolved));
            (Some(text), Some(resolved))
        }
        Err(message) => {
            r.problem(&tf_field, message);
            (None, None)
        }
    }
}

/// An absolute, normalized path (no `.` or `..` parts), as a string.
fn absolute_path<'v>(r: &mut Reader, value: &'v Value, field: &str) -> Option<&'v str> {
    let text = r.string(
        value,
        field,
        "an absolute path like \"/etc/nginx/conf.d/smart.conf\"",
    )?;
    let path = Path::new(text);
    let problem = if !path.is_absolute() {
        Some(format!(
            "\"{text}\" is relative; give the absolute path of the file on the server, like \
             \"/etc/nginx/conf.d/smart.conf\""
        ))
    } else if text.contains('\0') {
        Some("contains a NUL character".to_owned())
    } else if text.ends_with('/') {
        Some(format!(
            "\"{text}\" names a directory; give the path of a file"
        ))
    } else if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        || text.contains("//")
    {
        Some(format!(
            "\"{text}\" is not in normal form; write it without '.', '..' or '//'"
        ))
    } else {
        None
    };
    match problem {
        Some(message) => {
            r.problem(field, message);
            None
        }
        None => Some(text),
    }
}

/// `apply.files[i].edit`.
fn edit(r: &mut Reader, value: &Value, field: &str) {
    let Some(map) = r.object(value, field, EDIT_KEYS, &key_home) else {
        return;
    };
    if let Some(pattern) = r.required(map, field, "pattern", "\"^worker_processes .*;$\"") {
        let path = join(field, "pattern");
        if let Some(pattern) = r.string(pattern, &path, "a regex like \"^worker_processes .*;$\"") {
            if pattern.is_empty() {
                r.problem(
                    &path,
                    "is empty; give a regex that matches exactly one line",
                );
            } else if let Err(e) = regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
            {
                let detail = e.to_string();
                let last = detail.lines().last().unwrap_or_default();
                let last = last.strip_prefix("error: ").unwrap_or(last);
                r.problem(&path, format!("is not a valid regex: {last}"));
            }
        }
    }
    if let Some(replace) = r.required(map, field, "replace", "\"worker_processes {{ workers }};\"")
    {
        let path = join(field, "replace");
        if let Some(text) = r.string(replace, &path, "the replacement line as a string") {
            if text.contains(['\n', '\r']) {
                r.problem(
                    &path,
                    "contains a line break; an edit replaces exactly one line (own the whole file \
                     with \"template\" to change more)",
                );
            } else {
                template_syntax(r, text, &path, None);
            }
        }
    }
}

/// `apply.command`.
fn command(r: &mut Reader, value: &Value, field: &str) {
    let Some(map) = r.object(value, field, COMMAND_KEYS, &key_home) else {
        return;
    };
    if let Some(read) = r.required(
        map,
        field,
        "read",
        "[\"sysctl\", \"-n\", \"net.core.somaxconn\"]",
    ) {
        argv(
            r,
            read,
            &join(field, "read"),
            "[\"sysctl\", \"-n\", \"net.core.somaxconn\"]",
            Placeholders::Forbidden,
        );
    }
    if let Some(set) = r.required(
        map,
        field,
        "set",
        "[\"sysctl\", \"-w\", \"net.core.somaxconn={{ somaxconn }}\"]",
    ) {
        argv(
            r,
            set,
            &join(field, "set"),
            "[\"sysctl\", \"-w\", \"net.core.somaxconn={{ somaxconn }}\"]",
            Placeholders::Rendered,
        );
    }
    if let Some(revert) = optional(map, "revert") {
        argv(
            r,
            revert,
            &join(field, "revert"),
            "[\"sysctl\", \"-w\", \"net.core.somaxconn={{ original }}\"]",
            Placeholders::Rendered,
        );
    }
}

/// `apply.health`.
fn health(r: &mut Reader, value: &Value, field: &str) {
    let Some(map) = r.object(value, field, HEALTH_KEYS, &key_home) else {
        return;
    };
    if let Some(url) = r.required(map, field, "url", "\"http://127.0.0.1/\"") {
        http_url(r, url, &join(field, "url"));
    }
    if let Some(timeout) = map.get("timeout_s") {
        r.number(timeout, &join(field, "timeout_s"), Range::positive(600.0));
    }
    if let Some(status) = map.get("ok_status") {
        status_list(r, status, &join(field, "ok_status"));
    }
}

/// `apply.live_check`.
fn live_check(r: &mut Reader, value: &Value, field: &str) {
    let Some(map) = r.object(value, field, LIVE_CHECK_KEYS, &key_home) else {
        return;
    };
    if let Some(url) = r.required(map, field, "url", "\"http://127.0.0.1/\"") {
        http_url(r, url, &join(field, "url"));
    }
    if let Some(header) = r.required(map, field, "header", "\"X-Smart-Variant\"") {
        let path = join(field, "header");
        if let Some(name) = r.string(header, &path, "a header name like \"X-Smart-Variant\"")
            && (name.is_empty() || !name.bytes().all(is_token_byte))
        {
            r.problem(
                &path,
                "is not a valid header name; use letters, digits and '-' like \"X-Smart-Variant\"",
            );
        }
    }
    if let Some(equals) = r.required(map, field, "equals", "\"{{ variant }}\"") {
        let path = join(field, "equals");
        if let Some(text) = r.string(
            equals,
            &path,
            "the expected header value, like \"{{ variant }}\"",
        ) {
            if text.contains(|c: char| c.is_control() && c != '\t') {
                r.problem(
                    &path,
                    "contains a control character; a header value is one line",
                );
            } else {
                template_syntax(r, text, &path, None);
            }
        }
    }
}
