//! The `target` section: the URLs the probe requests and how.

use serde_json::Value;

use super::http::{headers, http_url, status_list};
use super::{TARGET_KEYS, key_home, typed};
use crate::experiment::Target;
use crate::reader::{Range, Reader, index, join};

/// The most URLs a target may list.
const MAX_URLS: usize = 100;

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
