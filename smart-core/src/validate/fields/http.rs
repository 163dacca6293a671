//! What HTTP fields share: URLs, request headers and lists of status codes.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::reader::{Reader, index, join};

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
pub(super) fn headers(r: &mut Reader, value: &Value, field: &str) {
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
pub(super) fn status_list(r: &mut Reader, value: &Value, field: &str) {
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
