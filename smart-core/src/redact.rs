//! Redaction of secrets wherever they could be shown or logged (CLI output, audit log, run
//! records, dashboard): secret request headers (an experiment's `target.headers` may carry
//! credentials) and the credentials of URLs.

use std::collections::BTreeMap;

/// What a secret header's value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Headers whose values are always secret (compared case-insensitively).
const SECRET_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

/// Whether a header's value must never be shown: `Authorization`, `Proxy-Authorization` and
/// `Cookie`, in any letter case.
pub fn is_secret_header(name: &str) -> bool {
    SECRET_HEADERS
        .iter()
        .any(|secret| secret.eq_ignore_ascii_case(name))
}

/// The value to show for a header: [`REDACTED`] for secret headers, the value otherwise.
pub fn shown_value<'v>(name: &str, value: &'v str) -> &'v str {
    if is_secret_header(name) {
        REDACTED
    } else {
        value
    }
}

/// A copy of `headers` fit to show or log, secret values replaced by [`REDACTED`].
///
/// ```
/// use std::collections::BTreeMap;
/// use smart_core::redact::redacted_headers;
///
/// let headers = BTreeMap::from([
///     ("Host".to_owned(), "www.example.com".to_owned()),
///     ("authorization".to_owned(), "Bearer s3cret".to_owned()),
/// ]);
/// let shown = redacted_headers(&headers);
/// assert_eq!(shown["Host"], "www.example.com");
/// assert_eq!(shown["authorization"], "<redacted>");
/// ```
pub fn redacted_headers(headers: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(name, value)| (name.clone(), shown_value(name, value).to_owned()))
        .collect()
}

/// `message` with the user name and password of every `scheme://user:password@host` in it
/// replaced by `***`: a message echoes the value it refuses, and that value may be a URL with
/// credentials typed into any field (a problem is printed, logged and shown on the dashboard);
/// a URL logged or shown (a health check's, a definition's) is passed through it too.
///
/// A scan rather than the `url` crate's parser: it finds URLs inside free text, and leaves the
/// rest as typed (the parser normalises what it prints: default ports, trailing slashes, case).
pub fn hide_url_credentials(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let authority_end = after
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '`') || c.is_whitespace())
            .unwrap_or(after.len());
        match after[..authority_end].rfind('@') {
            Some(userinfo_end) => {
                out.push_str("***");
                rest = &after[userinfo_end..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_headers_in_any_case() {
        for secret in ["Authorization", "COOKIE", "proxy-authorization", "Cookie"] {
            assert!(is_secret_header(secret), "{secret}");
            assert_eq!(shown_value(secret, "x"), REDACTED);
        }
        for open in ["Host", "X-Cookie-Policy", "Accept"] {
            assert!(!is_secret_header(open), "{open}");
            assert_eq!(shown_value(open, "x"), "x");
        }
    }
}
