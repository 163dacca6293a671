//! Redaction of secret request headers wherever headers are shown or logged (CLI output, audit
//! log, run records, dashboard): an experiment's `target.headers` may carry credentials.

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
