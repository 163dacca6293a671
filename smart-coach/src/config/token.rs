//! The coach's bearer token: the type that never shows it, and reading it from `token_file` (a
//! file only its owner can read) or `token_env` (an environment variable), each problem reported
//! against its key without echoing anything read.

use std::fmt;
use std::io::Read;
use std::path::Path;

use super::problems::{Problems, shown};

/// The largest token file read.
const MAX_TOKEN_BYTES: u64 = 4096;

/// A bearer token. It is never shown: `Debug` prints `<redacted>` and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// The `Authorization` header value, marked sensitive so the HTTP client never logs it.
    pub(crate) fn header(&self) -> reqwest::header::HeaderValue {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.0))
            .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
        value.set_sensitive(true);
        value
    }
}

impl Token {
    /// `text` with every occurrence of the token replaced by `<redacted>` (for text a coach sent
    /// back, which might echo it).
    pub(crate) fn scrub(&self, text: &str) -> String {
        text.replace(&self.0, smart_core::redact::REDACTED)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Reads the token from `token_file` or `token_env`, if either is given.
pub(super) fn read_token(
    p: &mut Problems,
    table: &toml::Table,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Token> {
    match (table.get("token_file"), table.get("token_env")) {
        (Some(_), Some(_)) => {
            p.add(
                "token_env",
                "is given together with token_file; keep one of them",
            );
            None
        }
        (Some(value), None) => {
            let Some(path) = value.as_str().filter(|s| !s.is_empty()) else {
                p.add(
                    "token_file",
                    format!(
                        "expected the path of a file holding the token, found {}",
                        shown(value)
                    ),
                );
                return None;
            };
            let path = base.join(path);
            match token_from_file(&path) {
                Ok(token) => Some(token),
                Err(message) => {
                    p.add("token_file", message);
                    None
                }
            }
        }
        (None, Some(value)) => {
            let Some(name) = value.as_str().filter(|s| !s.is_empty()) else {
                p.add(
                    "token_env",
                    format!(
                        "expected the name of an environment variable, like \"SMART_COACH_TOKEN\", found {}",
                        shown(value)
                    ),
                );
                return None;
            };
            match env(name).filter(|v| !v.trim().is_empty()) {
                None => {
                    p.add(
                        "token_env",
                        format!(
                            "the environment variable {name} is not set or empty; export it, or use token_file"
                        ),
                    );
                    None
                }
                Some(text) => match token_from_text(text.trim()) {
                    Ok(token) => Some(token),
                    Err(why) => {
                        p.add(
                            "token_env",
                            format!("the environment variable {name} {why}"),
                        );
                        None
                    }
                },
            }
        }
        (None, None) => None,
    }
}

/// Reads a token file that only its owner can read.
fn token_from_file(path: &Path) -> Result<Token, String> {
    let shown = path.display();
    let mut file = std::fs::File::open(path).map_err(|e| {
        format!("cannot open {shown} ({e}); create it with the token and chmod 600")
    })?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read the metadata of {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!(
            "{shown} is not a regular file; give the token's file"
        ));
    }
    permissions_private(&meta, path)?;
    if meta.len() > MAX_TOKEN_BYTES {
        return Err(format!(
            "{shown} is larger than {MAX_TOKEN_BYTES} bytes; it should hold only the token"
        ));
    }
    let mut bytes = Vec::new();
    file.by_ref()
        .take(MAX_TOKEN_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{shown} is not text; it should hold only the token"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{shown} is empty; write the token into it"));
    }
    token_from_text(text).map_err(|why| format!("{shown} {why}"))
}

/// Refuses a token file that its group or others may read or write.
#[cfg(unix)]
fn permissions_private(meta: &std::fs::Metadata, path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is readable or writable by its group or others (mode {mode:04o}), so the token is not secret; run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

/// Refuses a token file that its group or others may read or write.
#[cfg(not(unix))]
fn permissions_private(_meta: &std::fs::Metadata, _path: &Path) -> Result<(), String> {
    Ok(())
}

/// A token that fits in an `Authorization` header (visible ASCII, no spaces).
fn token_from_text(text: &str) -> Result<Token, String> {
    if text.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(Token(text.to_owned()))
    } else {
        Err("holds characters a bearer token cannot have (only visible ASCII, no spaces or line breaks)".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::CoachConfig;

    #[test]
    fn the_token_is_never_in_debug_output() {
        let table: toml::Table =
            toml::from_str("url = \"http://127.0.0.1:9\"\ntoken_env = \"T\"").unwrap();
        let env = |_: &str| Some("s3cr3t-t0ken".to_owned());
        let config = CoachConfig::from_table(&table, Path::new("smart.toml"), &env).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        let token = config.token().unwrap();
        assert!(token.header().is_sensitive());
        assert_eq!(
            token.scrub("echo s3cr3t-t0ken twice s3cr3t-t0ken"),
            "echo <redacted> twice <redacted>"
        );
    }
}
