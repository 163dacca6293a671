//! The `[coach]` table of `smart.toml`, checked: where the coach is, how it is reached, what it
//! may do, and the bearer token, read from a private file or an environment variable.
//!
//! Every problem is reported at once, each naming the config file, the key and the fix. Messages
//! never echo a URL that is rejected (it may hold a password) nor anything read from a token.
//!
//! The token's own type and reading are in `config/token.rs`, the collected problems and how a
//! value is shown in them in `config/problems.rs`.

mod problems;
mod token;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use smart_core::AgentConfig;
use url::{Host, Url};

use problems::{Problems, shown};
pub use token::Token;
use token::read_token;

/// The `[coach]` keys.
const KEYS: &[&str] = &[
    "url",
    "kind",
    "mode",
    "timeout_s",
    "allow_keep",
    "token_file",
    "token_env",
    "model",
];

/// `timeout_s` when not given.
pub const DEFAULT_TIMEOUT_S: f64 = 10.0;
/// The largest `timeout_s` accepted: a coach must not hold a run for longer.
pub const MAX_TIMEOUT_S: f64 = 600.0;

/// What the coach is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Post every decision to `{url}/results`; never ask.
    Report,
    /// Also ask `{url}/advice` about every inconclusive variant.
    Advise,
}

/// Which protocol the coach speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The protocol of `docs/coach-api.md`: `POST {url}/results` and `POST {url}/advice`.
    Http,
    /// A local model through Ollama's chat API (`POST {url}/api/chat`); advice only.
    Ollama,
}

/// The checked `[coach]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CoachConfig {
    file: PathBuf,
    url: Url,
    kind: Kind,
    mode: Mode,
    timeout: Duration,
    allow_keep: bool,
    model: Option<String>,
    token: Option<Token>,
}

impl CoachConfig {
    /// Reads the `[coach]` table of `config`; `Ok(None)` when there is none (no coach).
    ///
    /// `env` looks up environment variables (for `token_env`); smart-cli passes
    /// `|name| std::env::var(name).ok()`, since only the binary reads the environment.
    pub fn from_agent_config(
        config: &AgentConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<CoachConfig>, CoachError> {
        let file = config.file().map_or_else(
            || PathBuf::from(smart_core::config::LOCAL_CONFIG),
            Path::to_owned,
        );
        if config.coach().is_empty() {
            return Ok(None);
        }
        CoachConfig::from_table(config.coach(), &file, env).map(Some)
    }

    /// Checks a `[coach]` table read from `file` (which names it in messages and anchors a
    /// relative `token_file`).
    pub fn from_table(
        table: &toml::Table,
        file: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<CoachConfig, CoachError> {
        let mut p = Problems::default();
        for key in table.keys() {
            if !KEYS.contains(&key.as_str()) {
                let hint = KEYS
                    .iter()
                    .map(|k| (strsim::jaro_winkler(k, key), k))
                    .filter(|(score, _)| *score > 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map_or_else(
                        || format!("; the keys are {}", KEYS.join(", ")),
                        |(_, k)| format!("; did you mean \"{k}\"?"),
                    );
                p.add(key, format!("unknown key{hint}"));
            }
        }
        let kind = match choice(&mut p, table, "kind", &["http", "ollama"]) {
            Some("ollama") => Kind::Ollama,
            _ => Kind::Http,
        };
        let mode = match choice(&mut p, table, "mode", &["report", "advise"]) {
            Some("advise") => Mode::Advise,
            _ => Mode::Report,
        };
        let url = match table.get("url") {
            None => {
                p.add(
                    "url",
                    "is missing; give the coach's base URL, e.g. \"https://coach.example.com/smart\" (or remove [coach] to run without one)",
                );
                None
            }
            Some(value) => read_url(&mut p, value),
        };
        let timeout_s = match table.get("timeout_s") {
            None => Some(DEFAULT_TIMEOUT_S),
            Some(value) => {
                let number = match value {
                    toml::Value::Integer(i) => Some(*i as f64),
                    toml::Value::Float(f) => Some(*f),
                    _ => None,
                };
                match number {
                    Some(n) if n > 0.0 && n <= MAX_TIMEOUT_S => Some(n),
                    _ => {
                        p.add(
                            "timeout_s",
                            format!(
                                "expected a number of seconds greater than 0 and at most {MAX_TIMEOUT_S}, like 10, found {}",
                                shown(value)
                            ),
                        );
                        None
                    }
                }
            }
        };
        let allow_keep = match table.get("allow_keep") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(other) => {
                p.add(
                    "allow_keep",
                    format!("expected true or false, found {}", shown(other)),
                );
                false
            }
        };
        if allow_keep && mode == Mode::Report {
            p.add(
                "allow_keep",
                "has no effect with mode = \"report\" (the coach is never asked); set mode = \"advise\" or remove allow_keep",
            );
        }
        let model = match table.get("model") {
            None => None,
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(other) => {
                p.add(
                    "model",
                    format!(
                        "expected the name of an Ollama model, like \"llama3.2\", found {}",
                        shown(other)
                    ),
                );
                None
            }
        };
        match kind {
            Kind::Ollama => {
                if mode != Mode::Advise {
                    p.add(
                        "mode",
                        "kind = \"ollama\" only advises (a local model keeps no results); set mode = \"advise\"",
                    );
                }
                if !table.contains_key("model") {
                    p.add(
                        "model",
                        "is missing; kind = \"ollama\" needs the model to ask, e.g. model = \"llama3.2\"",
                    );
                }
            }
            Kind::Http => {
                if table.contains_key("model") {
                    p.add(
                        "model",
                        "is only used with kind = \"ollama\"; remove it or set kind = \"ollama\"",
                    );
                }
            }
        }
        let base = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let token = read_token(&mut p, table, base, env);
        if token.is_none() && kind == Kind::Http && !p.has_token_problem {
            p.add(
                "token_file",
                "is missing; the coach server authenticates this agent with a bearer token: give token_file (a file only its owner can read) or token_env (an environment variable's name)",
            );
        }
        match (url, timeout_s, p.list.is_empty()) {
            (Some(url), Some(timeout_s), true) => Ok(CoachConfig {
                file: file.to_owned(),
                url,
                kind,
                mode,
                timeout: Duration::from_secs_f64(timeout_s),
                allow_keep,
                model,
                token,
            }),
            _ => Err(CoachError {
                file: file.to_owned(),
                problems: p.list,
            }),
        }
    }

    /// The config file the settings were read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The coach's base URL (no trailing slash is added to paths).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL of `path` (e.g. `results`) under the base URL.
    pub(crate) fn endpoint(&self, path: &str) -> Url {
        let mut url = self.url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}/{path}"));
        url
    }

    /// Which protocol it speaks.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Report only, or advise too.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The most a run waits for the coach, all calls together (`timeout_s`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether a coach's `keep` may be honoured at all (`allow_keep`, default false).
    pub fn allow_keep(&self) -> bool {
        self.allow_keep
    }

    /// The Ollama model (`kind = "ollama"` only).
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The bearer token, if one is configured.
    pub(crate) fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }
}

/// What is wrong with `[coach]`: one `FILE: coach.KEY: message` line per problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CoachError {
    file: PathBuf,
    problems: Vec<(String, String)>,
}

impl CoachError {
    /// The config file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Each problem as (`coach.KEY`, message).
    pub fn problems(&self) -> impl Iterator<Item = (&str, &str)> {
        self.problems.iter().map(|(k, m)| (k.as_str(), m.as_str()))
    }

    /// A problem found outside the table (e.g. the HTTP client could not start).
    pub(crate) fn other(file: &Path, key: &str, message: String) -> CoachError {
        CoachError {
            file: file.to_owned(),
            problems: vec![(format!("coach.{key}"), message)],
        }
    }
}

impl fmt::Display for CoachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, message)) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {key}: {message}", self.file.display())?;
        }
        Ok(())
    }
}

/// One of `choices` (the first is the default when the key is absent).
fn choice<'c>(
    p: &mut Problems,
    table: &toml::Table,
    key: &str,
    choices: &[&'c str],
) -> Option<&'c str> {
    let Some(value) = table.get(key) else {
        return choices.first().copied();
    };
    let found = value
        .as_str()
        .and_then(|s| choices.iter().find(|c| **c == s).copied());
    if found.is_none() {
        let list: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
        p.add(
            key,
            format!(
                "expected one of {}, found {}",
                list.join(", "),
                shown(value)
            ),
        );
    }
    found
}

/// Checks the URL: http(s), no credentials, no query, HTTPS unless the host is loopback. The
/// URL itself is never echoed (it may hold a password).
fn read_url(p: &mut Problems, value: &toml::Value) -> Option<Url> {
    let Some(text) = value.as_str() else {
        p.add(
            "url",
            format!(
                "expected the coach's base URL as a string, found {}",
                shown(value)
            ),
        );
        return None;
    };
    let url = match Url::parse(text) {
        Ok(url) => url,
        Err(e) => {
            p.add(
                "url",
                format!(
                    "is not a valid URL ({e}); give one like \"https://coach.example.com/smart\""
                ),
            );
            return None;
        }
    };
    if url.scheme() != "http" && url.scheme() != "https" {
        p.add(
            "url",
            format!(
                "has the scheme \"{}\"; the coach is reached over https:// (or http:// on loopback)",
                url.scheme()
            ),
        );
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() {
        p.add(
            "url",
            "holds a user name or password; remove them and put the secret in a token file (token_file) instead",
        );
        return None;
    }
    if url.query().is_some() || url.fragment().is_some() {
        p.add(
            "url",
            "has a query (?...) or fragment (#...); give only the base URL: smart appends /results and /advice",
        );
        return None;
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        p.add(
            "url",
            "uses plain http:// to a host that is not loopback, so the token and results would cross the network unencrypted; use https:// (http:// is allowed only for 127.0.0.1, ::1 or localhost)",
        );
        return None;
    }
    Some(url)
}

/// Whether the URL's host is this machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn check(text: &str, expected: &[&str]) {
        let table: toml::Table = toml::from_str(text).unwrap();
        let env = |name: &str| (name == "TOKEN").then(|| "t0k3n".to_owned());
        let got = CoachConfig::from_table(&table, Path::new("/etc/smart/smart.toml"), &env);
        let lines: Vec<String> = match got {
            Ok(_) => Vec::new(),
            Err(e) => e.to_string().lines().map(str::to_owned).collect(),
        };
        assert_eq!(lines.len(), expected.len(), "{lines:#?}");
        for (line, want) in lines.iter().zip(expected) {
            assert!(
                line.starts_with("/etc/smart/smart.toml: coach."),
                "{line:?} does not name the file and key"
            );
            assert!(line.contains(want), "{line:?} does not contain {want:?}");
        }
    }

    #[test]
    fn good_tables_pass() {
        check(
            "url = \"https://coach.example.com\"\ntoken_env = \"TOKEN\"",
            &[],
        );
        check(
            "url = \"http://127.0.0.1:9000/smart/\"\ntoken_env = \"TOKEN\"\nmode = \"advise\"\nallow_keep = true\ntimeout_s = 2.5",
            &[],
        );
        check(
            "url = \"http://[::1]:11434\"\nkind = \"ollama\"\nmode = \"advise\"\nmodel = \"llama3.2\"",
            &[],
        );
        check("url = \"http://localhost:1\"\ntoken_env = \"TOKEN\"", &[]);
    }

    #[test]
    fn each_mistake_names_the_key_and_the_fix() {
        check(
            "url = \"http://coach.example.com\"\ntoken_env = \"TOKEN\"",
            &["coach.url: uses plain http:// to a host that is not loopback"],
        );
        check(
            "url = \"https://user:hunter2@coach.example.com\"\ntoken_env = \"TOKEN\"",
            &["coach.url: holds a user name or password"],
        );
        check(
            "url = \"ftp://x\"\ntoken_env = \"TOKEN\"",
            &["coach.url: has the scheme \"ftp\""],
        );
        check(
            "url = \"https://c.example.com/?t=1\"\ntoken_env = \"TOKEN\"",
            &["coach.url: has a query"],
        );
        check("token_env = \"TOKEN\"", &["coach.url: is missing"]);
        check(
            "url = \"https://c.example.com\"",
            &["coach.token_file: is missing"],
        );
        check(
            "url = \"https://c.example.com\"\ntoken_env = \"NOPE\"",
            &["coach.token_env: the environment variable NOPE is not set"],
        );
        check(
            "url = \"https://c.example.com\"\ntoken_env = \"TOKEN\"\ntoken_file = \"t\"",
            &["coach.token_env: is given together with token_file"],
        );
        check(
            "url = \"https://c.example.com\"\ntoken_env = \"TOKEN\"\ntimeout = 3",
            &["coach.timeout: unknown key; did you mean \"timeout_s\"?"],
        );
        check(
            "url = \"https://c.example.com\"\ntoken_env = \"TOKEN\"\ntimeout_s = 0",
            &["coach.timeout_s: expected a number of seconds greater than 0"],
        );
        check(
            "url = \"https://c.example.com\"\ntoken_env = \"TOKEN\"\nmode = \"ask\"",
            &["coach.mode: expected one of \"report\", \"advise\", found \"ask\""],
        );
        check(
            "url = \"https://c.example.com\"\ntoken_env = \"TOKEN\"\nallow_keep = true",
            &["coach.allow_keep: has no effect with mode = \"report\""],
        );
        check(
            "url = \"https://c.example.com\"\ntoken_env = \"TOKEN\"\nallow_keep = \"yes\"",
            &["coach.allow_keep: expected true or false"],
        );
        check(
            "url = \"http://127.0.0.1:11434\"\nkind = \"ollama\"",
            &[
                "coach.mode: kind = \"ollama\" only advises",
                "coach.model: is missing",
            ],
        );
        check(
            "url = \"https://c.example.com\"\ntoken_env = \"TOKEN\"\nmodel = \"m\"",
            &["coach.model: is only used with kind = \"ollama\""],
        );
    }

    #[test]
    fn a_rejected_url_is_never_echoed() {
        let table: toml::Table =
            toml::from_str("url = \"https://me:pa55w0rd@c.example.com\"").unwrap();
        let err = CoachConfig::from_table(&table, Path::new("smart.toml"), &no_env).unwrap_err();
        assert!(!err.to_string().contains("pa55w0rd"), "{err}");
        assert!(!format!("{err:?}").contains("pa55w0rd"), "{err:?}");
    }

    #[test]
    fn endpoints_append_to_the_base_path() {
        let table: toml::Table =
            toml::from_str("url = \"http://127.0.0.1:9/base/\"\ntoken_env = \"T\"").unwrap();
        let env = |_: &str| Some("x".to_owned());
        let config = CoachConfig::from_table(&table, Path::new("smart.toml"), &env).unwrap();
        assert_eq!(
            config.endpoint("results").as_str(),
            "http://127.0.0.1:9/base/results"
        );
        let table: toml::Table =
            toml::from_str("url = \"http://127.0.0.1:9\"\ntoken_env = \"T\"").unwrap();
        let config = CoachConfig::from_table(&table, Path::new("smart.toml"), &env).unwrap();
        assert_eq!(
            config.endpoint("advice").as_str(),
            "http://127.0.0.1:9/advice"
        );
        assert_eq!(config.timeout(), Duration::from_secs(10));
        assert!(!config.allow_keep());
    }
}
