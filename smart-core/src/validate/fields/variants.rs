//! The variants: the explicit list, each one's params, and the `matrix` that expands into them.

use serde_json::Value;

use super::{VARIANT_KEYS, key_home, name, typed};
use crate::experiment::{ParamValue, Params};
use crate::reader::{Reader, index, join};
use crate::template::is_param_name;

/// The most variants one experiment may have (explicit or from a matrix).
pub const MAX_VARIANTS: usize = 100;
/// The longest param value, in bytes.
const MAX_PARAM_LEN: usize = 4096;

/// The variants list.
pub(crate) fn variants(
    r: &mut Reader,
    value: &Value,
) -> Option<Vec<crate::experiment::VariantSpec>> {
    let field = "variants";
    let start = r.count();
    let items = r.array(
        value,
        field,
        "an array of variants like [{\"name\": \"cache-10k\", \"params\": {\"max\": 10000}}]",
    )?;
    if items.is_empty() {
        r.problem(
            field,
            "is empty; give at least one variant to try against the baseline",
        );
    } else if items.len() > MAX_VARIANTS {
        r.problem(
            field,
            format!(
                "lists {} variants; give at most {MAX_VARIANTS}",
                items.len()
            ),
        );
    }
    let mut names: Vec<(&str, String)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let entry = index(field, i);
        let Some(map) = r.object(item, &entry, VARIANT_KEYS, &key_home) else {
            continue;
        };
        if let Some(name) = r.required(map, &entry, "name", "\"cache-10k\"") {
            let name_field = join(&entry, "name");
            if let Some(name) = self::name(r, name, &name_field) {
                if name == "baseline" {
                    r.problem(
                        &name_field,
                        "\"baseline\" names the configuration as found; give the variant another name",
                    );
                } else if let Some((_, first)) = names.iter().find(|(n, _)| *n == name) {
                    r.problem(
                        &name_field,
                        format!(
                            "\"{name}\" is also the name of {first}; variant names must be unique"
                        ),
                    );
                } else {
                    names.push((name, entry.clone()));
                }
            }
        }
        if let Some(params) = map.get("params") {
            self::params(r, params, &join(&entry, "params"));
        }
    }
    typed(r, start, value, field)
}

/// A params object: `[a-z][a-z0-9_]*` names, string or integer values.
pub(crate) fn params(r: &mut Reader, value: &Value, field: &str) -> Option<Params> {
    let start = r.count();
    let map = r.map(
        value,
        field,
        "an object of params like {\"max\": 1000, \"inactive\": \"20s\"}",
    )?;
    for (name, value) in map {
        let path = join(field, name);
        param_name(r, name, &path);
        param_value(r, value, &path);
    }
    typed(r, start, value, field)
}

/// A param name: `[a-z][a-z0-9_]*`, not reserved.
pub(crate) fn param_name(r: &mut Reader, name: &str, field: &str) {
    if !is_param_name(name) {
        r.problem(
            field,
            format!("\"{name}\" is not a param name; use [a-z][a-z0-9_]*, like \"max_conns\""),
        );
    } else if matches!(name, "variant" | "original") {
        r.problem(
            field,
            format!(
                "\"{name}\" is reserved ({{{{ {name} }}}} is filled in by smart); give the param another name"
            ),
        );
    }
}

/// A param value: a string without control characters (tabs allowed) or an integer.
fn param_value(r: &mut Reader, value: &Value, field: &str) -> Option<ParamValue> {
    match value {
        Value::Number(n) if n.is_i64() => n.as_i64().map(ParamValue::Int),
        Value::Number(n) if n.is_u64() => {
            r.problem(
                field,
                format!("{n} is too large; write it as a string, like \"{n}\""),
            );
            None
        }
        Value::Number(n) => {
            r.problem(
                field,
                format!(
                    "expected a string or an integer, found the fraction {n}; write it as a \
                     string (\"{n}\") so it renders exactly as written"
                ),
            );
            None
        }
        Value::Bool(b) => {
            r.problem(
                field,
                format!(
                    "expected a string or an integer, found the boolean {b}; booleans render \
                     ambiguously (true? on? 1?), so write what the config expects as a string, \
                     like \"{}\"",
                    if *b { "on" } else { "off" }
                ),
            );
            None
        }
        Value::String(s) => {
            if s.len() > MAX_PARAM_LEN {
                r.problem(
                    field,
                    format!(
                        "is {} bytes long; keep values under {MAX_PARAM_LEN} bytes",
                        s.len()
                    ),
                );
                return None;
            }
            if let Some((at, bad)) = s
                .chars()
                .enumerate()
                .find(|(_, c)| c.is_control() && *c != '\t')
            {
                let what = match bad {
                    '\n' => "a newline".to_owned(),
                    '\r' => "a carriage return".to_owned(),
                    other => format!("the control character U+{:04X}", u32::from(other)),
                };
                r.problem(
                    field,
                    format!(
                        "contains {what} at character {}; a value must stay on one line (spaces \
                         and tabs are fine), or it could inject config directives",
                        at + 1
                    ),
                );
                return None;
            }
            Some(ParamValue::Str(s.clone()))
        }
        other => {
            r.wrong_type(field, "a string or an integer", other);
            None
        }
    }
}

/// The `matrix`: values per param, expanded later into variants.
pub(crate) fn matrix(
    r: &mut Reader,
    value: &Value,
) -> Option<std::collections::BTreeMap<String, Vec<ParamValue>>> {
    let field = "matrix";
    let start = r.count();
    let map = r.map(
        value,
        field,
        "an object of values per param like {\"workers\": [1, 2, 4]}",
    )?;
    if map.is_empty() {
        r.problem(
            field,
            "is empty; give values per param, like {\"workers\": [1, 2, 4]}",
        );
    }
    for (name, values) in map {
        let path = join(field, name);
        param_name(r, name, &path);
        let Some(items) = r.array(values, &path, "an array of values like [1, 2, 4]") else {
            continue;
        };
        if items.is_empty() {
            r.problem(&path, "is empty; give at least one value");
        }
        let mut seen: Vec<ParamValue> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = index(&path, i);
            if let Some(v) = param_value(r, item, &item_path) {
                if let Some(first) = seen.iter().position(|s| *s == v) {
                    r.problem(
                        &item_path,
                        format!("repeats {}; list each value once", index(&path, first)),
                    );
                }
                seen.push(v);
            }
        }
    }
    typed(r, start, value, field)
}
