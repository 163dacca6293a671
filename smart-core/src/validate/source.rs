//! Reading an input file safely: a size cap checked before reading (and enforced while reading,
//! for files that grow or lie about their size), regular files only (a FIFO would block forever),
//! and strict JSON parsing that rejects duplicate keys, with line and column in every error.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The largest experiment, config or template file read: 1 MiB. Larger files are rejected before
/// they are parsed, so a mistaken path (a log file, a disk image) cannot exhaust memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Reads a regular file of at most [`MAX_FILE_BYTES`]; the error says what is wrong and what to do.
pub(crate) fn read_limited(path: &Path) -> Result<Vec<u8>, String> {
    check_regular(path)?;
    let file = File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    read_open(file)
}

/// Refuses (before opening it, since opening a FIFO blocks) anything but a small regular file.
fn check_regular(path: &Path) -> Result<(), String> {
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
    Ok(())
}

/// Reads a file an experiment names (`relative` to the experiment's directory `base_dir`), but
/// only if it lies inside that directory once every symlink is followed: an experiment may not
/// read (and so copy into a config file, a run record or the dashboard) a file it does not own.
///
/// The check is made on the file actually opened, at the moment of reading: after opening, the
/// path is resolved again and must name the very same inode (device and inode number) inside the
/// directory. A file swapped for a symlink after an earlier `smart validate`, or a directory
/// swapped while this runs, is refused rather than followed. Returns the bytes and the resolved
/// path.
pub(crate) fn read_inside(base_dir: &Path, relative: &str) -> Result<(Vec<u8>, PathBuf), String> {
    let fix = "a template must be a file in the experiment's directory (or below it): copy it \
               there and name it relative to the experiment file";
    let base = base_dir.canonicalize().map_err(|e| {
        format!(
            "cannot resolve the experiment's directory {}: {e}",
            base_dir.display()
        )
    })?;
    if Path::new(relative).is_absolute() {
        return Err(format!(
            "\"{relative}\" is an absolute path, outside the experiment's directory {}; {fix}",
            base.display()
        ));
    }
    let path = base.join(relative);
    let outside = |real: &Path| {
        format!(
            "\"{relative}\" resolves to {}, outside the experiment's directory {}; {fix}",
            real.display(),
            base.display()
        )
    };
    let unreadable = |e: std::io::Error| {
        format!(
            "{}: cannot read the file: {e}; template_file is relative to the experiment file",
            path.display()
        )
    };
    // Resolve first so an outside FIFO or device is never even opened.
    let real = path.canonicalize().map_err(unreadable)?;
    if !real.starts_with(&base) {
        return Err(outside(&real));
    }
    check_regular(&real).map_err(|m| format!("{}: {m}", path.display()))?;
    let file = File::open(&path).map_err(unreadable)?;
    let opened = file.metadata().map_err(unreadable)?;
    // What was opened must be what the path resolves to now, inside the directory.
    let real = path.canonicalize().map_err(unreadable)?;
    if !real.starts_with(&base) {
        return Err(outside(&real));
    }
    let named = std::fs::metadata(&real).map_err(unreadable)?;
    if (opened.dev(), opened.ino()) != (named.dev(), named.ino()) || !opened.is_file() {
        return Err(format!(
            "\"{relative}\" changed while it was read (a file or directory was swapped, perhaps \
             for a symlink out of the experiment's directory {}); {fix}",
            base.display()
        ));
    }
    let bytes = read_open(file).map_err(|m| format!("{}: {m}", path.display()))?;
    Ok((bytes, real))
}

/// Reads an open file, enforcing [`MAX_FILE_BYTES`] while reading (a file may grow).
fn read_open(file: File) -> Result<Vec<u8>, String> {
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
