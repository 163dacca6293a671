//! Reading an input file safely: a size cap checked before reading (and enforced while reading,
//! for files that grow or lie about their size), regular files only (a FIFO would block forever),
//! and strict JSON parsing that rejects duplicate keys, with line and column in every error.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The largest experiment, config or template file read: 1 MiB. Larger files are rejected before
/// they are parsed, so a mistaken path (a log file, a disk image) cannot exhaust memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Reads a regular file of at most [`MAX_FILE_BYTES`]; the error says what is wrong and what to do.
pub(crate) fn read_limited(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the file: {e}"))?;
    if !meta.is_file() {
        return Err(if meta.is_dir() {
            "is a directory; give a file, or pass the directory to `smart validate`".to_owned()
        } else {
            "is not a regular file; give the path of a file".to_owned()
        });
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(meta.len()));
    }
    let file = File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The message for a file over the size cap.
pub(crate) fn too_large(len: u64) -> String {
    format!(
        "is {len} bytes, more than the limit of {MAX_FILE_BYTES} bytes (1 MiB); is this the right file?"
    )
}

/// Parses JSON, rejecting duplicate keys and trailing data; nesting deeper than serde_json's
/// recursion limit (128) is an error, not a stack overflow.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict::deserialize(&mut deserializer).and_then(|Strict(value)| {
        deserializer.end()?;
        Ok(value)
    });
    parsed.map_err(|e| json_error_message(&e))
}

/// `invalid JSON at line L, column C: what serde_json said`.
pub(crate) fn json_error_message(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full);
    format!(
        "invalid JSON at line {}, column {}: {message}",
        error.line(),
        error.column()
    )
}

/// A JSON value whose objects have no duplicate keys (serde_json keeps the last one silently,
/// which hides a copy-paste mistake).
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key \"{key}\"; remove one of the two"
                )));
            }
            let Strict(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_have_line_and_column() {
        let err = parse_json(b"{\n  \"a\": 1,\n}").unwrap_err();
        assert!(
            err.starts_with("invalid JSON at line 3, column 1: "),
            "{err}"
        );
        let err = parse_json(b"{\"a\": 1} x").unwrap_err();
        assert!(err.contains("line 1, column 10"), "{err}");
    }

    #[test]
    fn duplicate_keys_are_rejected_with_their_position() {
        let err = parse_json(b"{\"a\": 1,\n \"a\": 2}").unwrap_err();
        assert!(err.contains("duplicate key \"a\""), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for open in ["[", "{\"a\":"] {
            let text = open.repeat(100_000);
            let err = parse_json(text.as_bytes()).unwrap_err();
            assert!(err.contains("recursion limit exceeded"), "{err}");
        }
    }

    #[test]
    fn reads_only_small_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(read_limited(&big).unwrap_err().contains("1 MiB"));
        assert!(read_limited(dir.path()).unwrap_err().contains("directory"));
        assert!(
            read_limited(Path::new("/dev/zero"))
                .unwrap_err()
                .contains("not a regular file")
        );
        let missing = dir.path().join("missing.json");
        assert!(read_limited(&missing).unwrap_err().contains("cannot read"));
    }
}
