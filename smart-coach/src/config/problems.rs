//! The problems a `[coach]` table has, collected so that every one is reported at once, and how
//! a value is shown in their messages (never in full: it may be a secret).

/// Problems collected so far.
#[derive(Default)]
pub(super) struct Problems {
    pub(super) list: Vec<(String, String)>,
    pub(super) has_token_problem: bool,
}

impl Problems {
    pub(super) fn add(&mut self, key: &str, message: impl Into<String>) {
        if key.starts_with("token") {
            self.has_token_problem = true;
        }
        self.list.push((format!("coach.{key}"), message.into()));
    }
}

/// A value in a message: strings quoted, other types by their TOML type (never long).
pub(super) fn shown(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) if s.chars().count() <= 40 => format!("\"{s}\""),
        toml::Value::String(_) => "a long string".to_owned(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => format!("a {}", other.type_str()),
    }
}
