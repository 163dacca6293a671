//! Validation problems: one per wrong field, each naming the field and the fix, collected so a
//! user sees every problem of a file at once instead of one per attempt.

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with an input file: the JSON path of the field and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    field: String,
    message: String,
}

impl Problem {
    /// A problem with `field` (a JSON path like `apply.files[0].path`; empty for the whole file).
    /// Credentials inside a URL the message quotes are hidden, whatever field it came from.
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: crate::redact::hide_url_credentials(&message.into()),
        }
    }

    /// The JSON path of the field, e.g. `target.rate_per_s` (empty when about the whole file).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong and what would be right, e.g. `expected a number greater than 0, found -5`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Every problem found in one file; displayed as one `FILE: field: message` line per problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Invalid {
    file: PathBuf,
    problems: Vec<Problem>,
}

impl Invalid {
    /// The problems of `file`; `problems` is never empty.
    pub(crate) fn new(file: &Path, problems: Vec<Problem>) -> Self {
        debug_assert!(!problems.is_empty(), "an Invalid without problems");
        Invalid {
            file: file.to_owned(),
            problems,
        }
    }

    /// A single problem about the whole file (unreadable, too large, not JSON).
    pub(crate) fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Invalid::new(file, vec![Problem::new("", message)])
    }

    /// The file the problems are in.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The problems, in the order they were found (roughly the order of the file).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {problem}", self.file.display())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_one_line_per_problem_with_the_file() {
        let invalid = Invalid::new(
            Path::new("experiments/cache.json"),
            vec![
                Problem::new("apply.validate", "expected an array of strings"),
                Problem::new("", "line 1, column 2: trailing comma"),
            ],
        );
        assert_eq!(
            invalid.to_string(),
            "experiments/cache.json: apply.validate: expected an array of strings\n\
             experiments/cache.json: line 1, column 2: trailing comma"
        );
    }

    #[test]
    fn a_quoted_url_never_shows_its_credentials() {
        let check = |message: &str, want: &str| {
            assert_eq!(Problem::new("name", message).message(), want, "{message}");
        };
        check(
            "\"http://user:secret@127.0.0.1/\" may only hold letters",
            "\"http://***@127.0.0.1/\" may only hold letters",
        );
        check(
            "https://token@h:8080 and ftp://a:b@c/x",
            "https://***@h:8080 and ftp://***@c/x",
        );
        check(
            "\"http://127.0.0.1/a@b\" is fine",
            "\"http://127.0.0.1/a@b\" is fine",
        );
        check("no url: a@b", "no url: a@b");
        check("ends with ://", "ends with ://");
    }
}
