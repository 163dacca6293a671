//! Field-by-field reading of each section of an experiment file: types, ranges and formats, one
//! problem per wrong field. Each section that reads cleanly is then deserialized with serde into
//! the types of [`crate::experiment`], so serde's defaults stay the single description of the
//! format; a serde error at that point means this reader is laxer than the types and is reported
//! as a problem rather than ignored.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::experiment::{Apply, Decision, Guardrails, ParamValue, Params, Schedule, Target};
use crate::reader::{Range, Reader, describe, index, join};
use crate::template::is_param_name;

use super::source;

/// The keys of each object in the format, by the JSON path of the object (`[]` for array items).
/// A test checks them against the serde types' JSON Schema, so they cannot drift.
pub(crate) const SECTIONS: &[(&str, &[&str])] = &[
    ("", ROOT_KEYS),
    ("target", TARGET_KEYS),
    ("apply", APPLY_KEYS),
    ("apply.files[]", FILE_KEYS),
    ("apply.files[].edit", EDIT_KEYS),
    ("apply.command", COMMAND_KEYS),
    ("apply.health", HEALTH_KEYS),
    ("apply.live_check", LIVE_CHECK_KEYS),
    ("variants[]", VARIANT_KEYS),
    ("schedule", SCHEDULE_KEYS),
    ("decision", DECISION_KEYS),
    ("guardrails", GUARDRAILS_KEYS),
    ("measure", MEASURE_KEYS),
    ("measure.command", MEASURE_COMMAND_KEYS),
    ("measure.access_log", MEASURE_ACCESS_LOG_KEYS),
    ("measure.prometheus", MEASURE_PROMETHEUS_KEYS),
];

/// The keys of `measure`.
pub(crate) const MEASURE_KEYS: &[&str] = &["source", "command", "access_log", "prometheus"];
/// The keys of `measure.command`.
pub(crate) const MEASURE_COMMAND_KEYS: &[&str] = &["argv", "env", "grace_s"];
/// The keys of `measure.access_log`.
pub(crate) const MEASURE_ACCESS_LOG_KEYS: &[&str] = &["path", "path_prefix", "method", "fill_rps"];

/// The keys of `measure.prometheus`.
pub(crate) const MEASURE_PROMETHEUS_KEYS: &[&str] = &[
    "url",
    "latency_quantile",
    "latency_mean",
    "requests",
    "error_ratio",
    "scrape_interval_s",
    "auth_header_env",
];

pub(crate) const ROOT_KEYS: &[&str] = &[
    "format_version",
    "name",
    "description",
    "target",
    "apply",
    "baseline",
    "variants",
    "matrix",
    "search",
    "schedule",
    "decision",
    "guardrails",
    "measure",
];
pub(crate) const TARGET_KEYS: &[&str] = &[
    "urls",
    "method",
    "headers",
    "rate_per_s",
    "timeout_ms",
    "ok_status",
];
pub(crate) const APPLY_KEYS: &[&str] = &[
    "files",
    "command",
    "validate",
    "reload",
    "health",
    "live_check",
    "command_timeout_s",
];
pub(crate) const FILE_KEYS: &[&str] = &["path", "template", "template_file", "edit"];
pub(crate) const EDIT_KEYS: &[&str] = &["pattern", "replace"];
pub(crate) const COMMAND_KEYS: &[&str] = &["read", "set", "revert"];
pub(crate) const HEALTH_KEYS: &[&str] = &["url", "timeout_s", "ok_status"];
pub(crate) const LIVE_CHECK_KEYS: &[&str] = &["url", "header", "equals"];
pub(crate) const VARIANT_KEYS: &[&str] = &["name", "params"];
pub(crate) const SCHEDULE_KEYS: &[&str] = &[
    "cooldown_s",
    "block_s",
    "max_cycles",
    "interleave",
    "soak_s",
    "max_duration_s",
];
pub(crate) const DECISION_KEYS: &[&str] = &[
    "metric",
    "min_improvement_pct",
    "max_error_increase_pp",
    "max_error_ratio",
    "confidence",
];
pub(crate) const GUARDRAILS_KEYS: &[&str] = &[
    "abort_error_rate_pct",
    "abort_window_s",
    "max_p99_increase_pct",
];

/// The most variants one experiment may have (explicit or from a matrix).
pub const MAX_VARIANTS: usize = 100;
/// The longest experiment or variant name.
pub const MAX_NAME_LEN: usize = 64;
/// The longest param value, in bytes.
const MAX_PARAM_LEN: usize = 4096;
/// The most files one experiment may change.
const MAX_FILES: usize = 64;
/// The most bytes all of an experiment's template files may hold together (each is at most 1 MiB),
/// so rendering every arm stays quick.
const MAX_TEMPLATE_FILE_BYTES: usize = 4 * 1024 * 1024;
/// The most URLs a target may list.
const MAX_URLS: usize = 100;
/// The longest duration field, in seconds (a day; `max_duration_s` may be up to 30 days).
const MAX_SECONDS: f64 = 86_400.0;

/// Where an unknown key would be known, for a "belongs in" hint (`None` when nowhere).
pub(crate) fn key_home(key: &str) -> Option<String> {
    SECTIONS
        .iter()
        .find(|(_, keys)| keys.contains(&key))
        .map(|(section, _)| {
            if section.is_empty() {
                "the top level".to_owned()
            } else {
                (*section).to_owned()
            }
        })
}

/// The value of an optional key; `null` counts as absent, as it does for serde's `Option`.
pub(crate) fn optional<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    map.get(key).filter(|v| !v.is_null())
}

/// Deserializes a section that read cleanly; a serde error means this reader missed a rule.
pub(crate) fn typed<T: DeserializeOwned>(
    r: &mut Reader,
    start: usize,
    value: &Value,
    field: &str,
) -> Option<T> {
    if r.count() > start {
        return None;
    }
    match serde_json::from_value(value.clone()) {
        Ok(typed) => Some(typed),
        Err(e) => {
            r.problem(
                field,
                format!("{e}; (smart's field checks missed this: please report it)"),
            );
            None
        }
    }
}

/// Checks the placeholder syntax of a template on its own (before any arm renders it), so a
/// malformed `{{` is reported with its line and column even when other sections have problems.
fn template_syntax(r: &mut Reader, text: &str, field: &str, origin: Option<&Path>) {
    if let Err(e) = crate::template::placeholders(text) {
        let at = match origin {
            Some(file) => format!("line {}, column {} of {}", e.line, e.column, file.display()),
            None => format!("line {}, column {}", e.line, e.column),
        };
        r.problem(field, format!("{at}: {}", e.message));
    }
}

/// Whether placeholders may appear in an argv (they are rendered only in `command.set` and
/// `command.revert`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placeholders {
    /// The argv is rendered per arm.
    Rendered,
    /// The argv runs as written; a `{{` is a mistake.
    Forbidden,
}

/// The `format_version` key: only version 1 exists.
pub(crate) fn format_version(r: &mut Reader, value: &Value) {
    let field = "format_version";
    match value.as_u64() {
        Some(v) if v == u64::from(crate::experiment::FORMAT_VERSION) => {}
        Some(v) => r.problem(
            field,
            format!(
                "this smart reads format_version {}, found {v}; write {} or upgrade smart",
                crate::experiment::FORMAT_VERSION,
                crate::experiment::FORMAT_VERSION
            ),
        ),
        None => r.wrong_type(field, "the number 1", value),
    }
}

/// A name of an experiment or variant: `[a-z0-9_-]`, 1 to 64 characters.
pub(crate) fn name<'v>(r: &mut Reader, value: &'v Value, field: &str) -> Option<&'v str> {
    let name = r.string(value, field, "a name like \"cache-10k\"")?;
    if name.is_empty() {
        r.problem(
            field,
            "is empty; give a short name like \"cache-10k\" ([a-z0-9_-])",
        );
        return None;
    }
    if name.len() > MAX_NAME_LEN {
        r.problem(
            field,
            format!(
                "is {} characters long; keep names to {MAX_NAME_LEN} characters",
                name.len()
            ),
        );
        return None;
    }
    if !is_name(name) {
        r.problem(
            field,
            format!(
                "\"{name}\" may only hold lowercase letters, digits, '-' and '_' (it is used in \
                 file names); write \"{}\"",
                suggest_name(name)
            ),
        );
        return None;
    }
    Some(name)
}

/// Whether `name` is `[a-z0-9_-]+`.
pub(crate) fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
}

/// `text` made into a name: lowercased, other characters as `-`, runs of `-` collapsed.
pub(crate) fn suggest_name(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = if matches!(c, 'a'..='z' | '0'..='9' | '_') {
            c
        } else {
            '-'
        };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "x".to_owned()
    } else {
        trimmed.chars().take(MAX_NAME_LEN).collect()
    }
}

/// The `target` section; `urls` is required only when the probe measures (`needs_urls`).
pub(crate) fn target(r: &mut Reader, value: &Value, needs_urls: bool) -> Option<Target> {
    let field = "target";
    let start = r.count();
    let map = r.object(value, field, TARGET_KEYS, &key_home)?;
    let urls = match needs_urls {
        true => r.required(map, field, "urls", "[\"http://127.0.0.1/\"]"),
        false => map.get("urls"),
    };
    if let Some(urls) = urls {
        let path = join(field, "urls");
        if let Some(items) = r.array(urls, &path, "an array of URLs like [\"http://127.0.0.1/\"]") {
            if items.is_empty() {
                r.problem(
                    &path,
                    "is empty; give at least one URL like \"http://127.0.0.1/\"",
                );
            } else if items.len() > MAX_URLS {
                r.problem(
                    &path,
                    format!("lists {} URLs; give at most {MAX_URLS}", items.len()),
                );
            }
            for (i, item) in items.iter().enumerate() {
                http_url(r, item, &index(&path, i));
            }
        }
    }
    if let Some(method) = map.get("method") {
        let path = join(field, "method");
        if let Some(m) = r.string(method, &path, "\"GET\" or \"HEAD\"")
            && m != "GET"
            && m != "HEAD"
        {
            let hint = if m.eq_ignore_ascii_case("get") || m.eq_ignore_ascii_case("head") {
                format!("write it in capitals: \"{}\"", m.to_ascii_uppercase())
            } else {
                "a probe must never change server state, so only GET and HEAD are allowed"
                    .to_owned()
            };
            r.problem(
                &path,
                format!("expected \"GET\" or \"HEAD\", found \"{m}\"; {hint}"),
            );
        }
    }
    if let Some(headers) = map.get("headers") {
        self::headers(r, headers, &join(field, "headers"));
    }
    if let Some(rate) = map.get("rate_per_s") {
        r.number(
            rate,
            &join(field, "rate_per_s"),
            Range::positive(100_000.0).hint("requests per second, e.g. 50"),
        );
    }
    if let Some(timeout) = map.get("timeout_ms") {
        r.integer(timeout, &join(field, "timeout_ms"), 1, 600_000);
    }
    if let Some(status) = map.get("ok_status") {
        status_list(r, status, &join(field, "ok_status"));
    }
    typed(r, start, value, field)
}

/// An http(s) URL without credentials (they would show in logs) or placeholders.
pub(crate) fn http_url(r: &mut Reader, value: &Value, field: &str) {
    let Some(text) = r.string(value, field, "a URL like \"http://127.0.0.1/\"") else {
        return;
    };
    if text.contains("{{") {
        r.problem(
            field,
            "URLs are not templates; write the URL as it is requested",
        );
        return;
    }
    match url::Url::parse(text) {
        Err(e) => r.problem(
            field,
            // The URL is not echoed: it could hold a password.
            format!("is not a valid URL ({e}); write it like \"http://127.0.0.1/\""),
        ),
        Ok(url) if !matches!(url.scheme(), "http" | "https") => r.problem(
            field,
            format!(
                "is a {}: URL; only http:// and https:// URLs can be measured",
                url.scheme()
            ),
        ),
        Ok(url) if !url.username().is_empty() || url.password().is_some() => r.problem(
            field,
            "holds a user name or password, which would show in logs; send credentials in an \
             Authorization header instead (its value is redacted)",
        ),
        Ok(url) if url.host_str().is_none_or(str::is_empty) => {
            r.problem(field, "has no host; write it like \"http://127.0.0.1/\"")
        }
        Ok(_) => {}
    }
}

/// Request headers: token names, single-line values.
fn headers(r: &mut Reader, value: &Value, field: &str) {
    let Some(map) = r.map(
        value,
        field,
        "an object like {\"Host\": \"www.example.com\"}",
    ) else {
        return;
    };
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in map {
        let path = join(field, name);
        if let Some(first) = seen.iter().find(|s| s.eq_ignore_ascii_case(name)) {
            r.problem(
                &path,
                format!("repeats the header \"{first}\" (header names ignore case); give it once"),
            );
        }
        seen.push(name);
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            r.problem(
                &path,
                "is not a valid header name; use letters, digits and '-' like \"X-Request-Id\"",
            );
        }
        if let Some(text) = r.string(value, &path, "a string")
            && let Some(bad) = text.chars().find(|c| c.is_control() && *c != '\t')
        {
            r.problem(
                &path,
                format!(
                    "contains the control character U+{:04X}; header values must be one line",
                    u32::from(bad)
                ),
            );
        }
    }
}

/// Whether `b` may appear in an HTTP header name (RFC 9110 `tchar`).
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A non-empty list of distinct HTTP status codes.
fn status_list(r: &mut Reader, value: &Value, field: &str) {
    let Some(items) = r.array(value, field, "an array of status codes like [200]") else {
        return;
    };
    if items.is_empty() {
        r.problem(
            field,
            "is empty; give the status codes that count as success, like [200]",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(code) = r.integer(item, &index(field, i), 100, 599)
            && !seen.insert(code)
        {
            r.problem(
                &index(field, i),
                format!("{code} is listed twice; list it once"),
            );
        }
    }
}

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

/// The variants list.
pub(crate) fn variants(
    r: &mut Reader,
    value: &Value,
) -> Option<Vec<crate::experiment::VariantSpec>> {
    let field = "variants";
    let start = r.count();
    let items = r.array(
        value,
        field,
        "an array of variants like [{\"name\": \"cache-10k\", \"params\": {\"max\": 10000}}]",
    )?;
    if items.is_empty() {
        r.problem(
            field,
            "is empty; give at least one variant to try against the baseline",
        );
    } else if items.len() > MAX_VARIANTS {
        r.problem(
            field,
            format!(
                "lists {} variants; give at most {MAX_VARIANTS}",
                items.len()
            ),
        );
    }
    let mut names: Vec<(&str, String)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let entry = index(field, i);
        let Some(map) = r.object(item, &entry, VARIANT_KEYS, &key_home) else {
            continue;
        };
        if let Some(name) = r.required(map, &entry, "name", "\"cache-10k\"") {
            let name_field = join(&entry, "name");
            if let Some(name) = self::name(r, name, &name_field) {
                if name == "baseline" {
                    r.problem(
                        &name_field,
                        "\"baseline\" names the configuration as found; give the variant another name",
                    );
                } else if let Some((_, first)) = names.iter().find(|(n, _)| *n == name) {
                    r.problem(
                        &name_field,
                        format!(
                            "\"{name}\" is also the name of {first}; variant names must be unique"
                        ),
                    );
                } else {
                    names.push((name, entry.clone()));
                }
            }
        }
        if let Some(params) = map.get("params") {
            self::params(r, params, &join(&entry, "params"));
        }
    }
    typed(r, start, value, field)
}

/// A params object: `[a-z][a-z0-9_]*` names, string or integer values.
pub(crate) fn params(r: &mut Reader, value: &Value, field: &str) -> Option<Params> {
    let start = r.count();
    let map = r.map(
        value,
        field,
        "an object of params like {\"max\": 1000, \"inactive\": \"20s\"}",
    )?;
    for (name, value) in map {
        let path = join(field, name);
        param_name(r, name, &path);
        param_value(r, value, &path);
    }
    typed(r, start, value, field)
}

/// A param name: `[a-z][a-z0-9_]*`, not reserved.
pub(crate) fn param_name(r: &mut Reader, name: &str, field: &str) {
    if !is_param_name(name) {
        r.problem(
            field,
            format!("\"{name}\" is not a param name; use [a-z][a-z0-9_]*, like \"max_conns\""),
        );
    } else if matches!(name, "variant" | "original") {
        r.problem(
            field,
            format!(
                "\"{name}\" is reserved ({{{{ {name} }}}} is filled in by smart); give the param another name"
            ),
        );
    }
}

/// A param value: a string without control characters (tabs allowed) or an integer.
fn param_value(r: &mut Reader, value: &Value, field: &str) -> Option<ParamValue> {
    match value {
        Value::Number(n) if n.is_i64() => n.as_i64().map(ParamValue::Int),
        Value::Number(n) if n.is_u64() => {
            r.problem(
                field,
                format!("{n} is too large; write it as a string, like \"{n}\""),
            );
            None
        }
        Value::Number(n) => {
            r.problem(
                field,
                format!(
                    "expected a string or an integer, found the fraction {n}; write it as a \
                     string (\"{n}\") so it renders exactly as written"
                ),
            );
            None
        }
        Value::Bool(b) => {
            r.problem(
                field,
                format!(
                    "expected a string or an integer, found the boolean {b}; booleans render \
                     ambiguously (true? on? 1?), so write what the config expects as a string, \
                     like \"{}\"",
                    if *b { "on" } else { "off" }
                ),
            );
            None
        }
        Value::String(s) => {
            if s.len() > MAX_PARAM_LEN {
                r.problem(
                    field,
                    format!(
                        "is {} bytes long; keep values under {MAX_PARAM_LEN} bytes",
                        s.len()
                    ),
                );
                return None;
            }
            if let Some((at, bad)) = s
                .chars()
                .enumerate()
                .find(|(_, c)| c.is_control() && *c != '\t')
            {
                let what = match bad {
                    '\n' => "a newline".to_owned(),
                    '\r' => "a carriage return".to_owned(),
                    other => format!("the control character U+{:04X}", u32::from(other)),
                };
                r.problem(
                    field,
                    format!(
                        "contains {what} at character {}; a value must stay on one line (spaces \
                         and tabs are fine), or it could inject config directives",
                        at + 1
                    ),
                );
                return None;
            }
            Some(ParamValue::Str(s.clone()))
        }
        other => {
            r.wrong_type(field, "a string or an integer", other);
            None
        }
    }
}

/// The `matrix`: values per param, expanded later into variants.
pub(crate) fn matrix(
    r: &mut Reader,
    value: &Value,
) -> Option<std::collections::BTreeMap<String, Vec<ParamValue>>> {
    let field = "matrix";
    let start = r.count();
    let map = r.map(
        value,
        field,
        "an object of values per param like {\"workers\": [1, 2, 4]}",
    )?;
    if map.is_empty() {
        r.problem(
            field,
            "is empty; give values per param, like {\"workers\": [1, 2, 4]}",
        );
    }
    for (name, values) in map {
        let path = join(field, name);
        param_name(r, name, &path);
        let Some(items) = r.array(values, &path, "an array of values like [1, 2, 4]") else {
            continue;
        };
        if items.is_empty() {
            r.problem(&path, "is empty; give at least one value");
        }
        let mut seen: Vec<ParamValue> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = index(&path, i);
            if let Some(v) = param_value(r, item, &item_path) {
                if let Some(first) = seen.iter().position(|s| *s == v) {
                    r.problem(
                        &item_path,
                        format!("repeats {}; list each value once", index(&path, first)),
                    );
                }
                seen.push(v);
            }
        }
    }
    typed(r, start, value, field)
}

/// The `schedule` section (at `field`: it is also read from `smart.toml`'s `[defaults]`).
pub(crate) fn schedule(r: &mut Reader, value: &Value, field: &str) -> Option<Schedule> {
    let start = r.count();
    let map = r.object(value, field, SCHEDULE_KEYS, &key_home)?;
    seconds(r, map, field, "cooldown_s", MAX_SECONDS);
    seconds(r, map, field, "block_s", MAX_SECONDS);
    seconds(r, map, field, "soak_s", MAX_SECONDS);
    seconds(r, map, field, "max_duration_s", 30.0 * MAX_SECONDS);
    if let Some(cycles) = map.get("max_cycles") {
        r.integer(cycles, &join(field, "max_cycles"), 1, 1000);
    }
    if let Some(interleave) = map.get("interleave") {
        r.boolean(interleave, &join(field, "interleave"));
    }
    typed(r, start, value, field)
}

/// A duration in seconds: greater than 0.
fn seconds(r: &mut Reader, map: &Map<String, Value>, parent: &str, key: &str, max: f64) {
    if let Some(value) = map.get(key) {
        r.number(
            value,
            &join(parent, key),
            Range::positive(max).hint("a duration in seconds"),
        );
    }
}

/// The `decision` section.
pub(crate) fn decision(r: &mut Reader, value: &Value, field: &str) -> Option<Decision> {
    let start = r.count();
    let map = r.object(value, field, DECISION_KEYS, &key_home)?;
    if let Some(metric) = map.get("metric") {
        let path = join(field, "metric");
        if let Some(m) = r.string(metric, &path, "one of \"p50\", \"p90\", \"p99\", \"mean\"")
            && !matches!(m, "p50" | "p90" | "p99" | "mean")
        {
            r.problem(
                &path,
                format!("expected one of \"p50\", \"p90\", \"p99\", \"mean\", found \"{m}\""),
            );
        }
    }
    if let Some(v) = map.get("min_improvement_pct") {
        r.number(
            v,
            &join(field, "min_improvement_pct"),
            Range::closed(0.0, 100.0)
                .below_max()
                .hint("an improvement of 100 % or more would mean zero latency; 5 to 20 is usual"),
        );
    }
    if let Some(v) = map.get("max_error_increase_pp") {
        r.number(
            v,
            &join(field, "max_error_increase_pp"),
            Range::closed(0.0, 100.0).hint("percentage points of error rate, e.g. 2"),
        );
    }
    if let Some(v) = map.get("max_error_ratio") {
        r.number(
            v,
            &join(field, "max_error_ratio"),
            Range::closed(1.0, 1_000_000.0)
                .hint("a multiple of the baseline's error rate, e.g. 1.5 (1 allows no rise)"),
        );
    }
    if let Some(v) = map.get("confidence") {
        r.number(
            v,
            &join(field, "confidence"),
            Range::closed(0.0, 1.0)
                .above_min()
                .below_max()
                .hint("write a fraction: 0.95 means 95 %"),
        );
    }
    typed(r, start, value, field)
}

/// The `guardrails` section.
pub(crate) fn guardrails(r: &mut Reader, value: &Value, field: &str) -> Option<Guardrails> {
    let start = r.count();
    let map = r.object(value, field, GUARDRAILS_KEYS, &key_home)?;
    if let Some(v) = map.get("abort_error_rate_pct") {
        r.number(
            v,
            &join(field, "abort_error_rate_pct"),
            Range::positive(100.0).hint("a percentage of requests, e.g. 20"),
        );
    }
    seconds(r, map, field, "abort_window_s", 3600.0);
    if let Some(v) = map.get("max_p99_increase_pct")
        && !v.is_null()
    {
        let path = join(field, "max_p99_increase_pct");
        if v.is_number() {
            r.number(
                v,
                &path,
                Range::positive(10_000.0).hint("e.g. 50, or null to turn it off"),
            );
        } else {
            r.problem(
                &path,
                format!(
                    "expected a number greater than 0 (or null to turn the check off), found {}",
                    describe(v)
                ),
            );
        }
    }
    typed(r, start, value, field)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn names_and_suggestions() {
        assert!(is_name("cache-10k_b"));
        assert!(!is_name("Cache"));
        assert!(!is_name(""));
        assert_eq!(suggest_name("Cache 10k!"), "cache-10k");
        assert_eq!(suggest_name("!!!"), "x");
    }

    #[test]
    fn every_key_has_one_home_per_section() {
        for (section, keys) in SECTIONS {
            let unique: BTreeSet<_> = keys.iter().collect();
            assert_eq!(unique.len(), keys.len(), "duplicate key in {section}");
        }
        assert_eq!(key_home("block_s").as_deref(), Some("schedule"));
        assert_eq!(key_home("nothing"), None);
    }

    /// The property names of an object schema (shared with `search.rs`'s key-list test).
    pub(crate) fn properties(schema: schemars::Schema) -> BTreeSet<String> {
        schema.as_value()["properties"]
            .as_object()
            .expect("an object schema")
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn the_key_lists_match_the_serde_types() {
        use crate::experiment::*;
        use schemars::schema_for;
        let from_types = [
            ("", properties(schema_for!(ExperimentSpec))),
            ("target", properties(schema_for!(Target))),
            ("apply", properties(schema_for!(Apply))),
            ("apply.files[]", properties(schema_for!(FileSpec))),
            ("apply.files[].edit", properties(schema_for!(Edit))),
            ("apply.command", properties(schema_for!(CommandSpec))),
            ("apply.health", properties(schema_for!(Health))),
            ("apply.live_check", properties(schema_for!(LiveCheck))),
            ("variants[]", properties(schema_for!(VariantSpec))),
            ("schedule", properties(schema_for!(Schedule))),
            ("decision", properties(schema_for!(Decision))),
            ("guardrails", properties(schema_for!(Guardrails))),
            ("measure", properties(schema_for!(Measure))),
            ("measure.command", properties(schema_for!(MeasureCommand))),
            ("measure.access_log", properties(schema_for!(AccessLog))),
            ("measure.prometheus", properties(schema_for!(Prometheus))),
        ];
        assert_eq!(from_types.len(), SECTIONS.len());
        for ((section, keys), (type_section, type_keys)) in SECTIONS.iter().zip(from_types) {
            assert_eq!(*section, type_section);
            let keys: BTreeSet<String> = keys.iter().map(|k| (*k).to_owned()).collect();
            assert_eq!(
                keys, type_keys,
                "the reader's keys of `{section}` differ from the type's"
            );
        }
    }
}
