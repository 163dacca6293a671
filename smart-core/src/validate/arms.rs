//! Checks across sections: the matrix expanded into variants, every template, edit, command and
//! live check rendered for every arm, placeholders without a param, params nothing uses, and the
//! command applier's revert rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::experiment::{Apply, ParamValue, Params, VariantSpec};
use crate::reader::{Reader, closest, index, join};
use crate::template::{self, VARIANT_PLACEHOLDER, arm_values};

use super::fields::{MAX_NAME_LEN, MAX_VARIANTS};

/// The placeholder that stands for the value `command.read` captured, in `command.revert` only.
pub const ORIGINAL_PLACEHOLDER: &str = "original";

/// Expands a matrix into variants (the cartesian product, in key order), with generated names
/// like `workers-4_level-5`, made unique; an error message when the product is too large.
pub(crate) fn expand_matrix(
    matrix: &BTreeMap<String, Vec<ParamValue>>,
) -> Result<Vec<VariantSpec>, String> {
    let size = matrix
        .values()
        .try_fold(1usize, |acc, values| acc.checked_mul(values.len()))
        .filter(|n| *n <= MAX_VARIANTS);
    let Some(size) = size else {
        let sizes: Vec<String> = matrix.values().map(|v| v.len().to_string()).collect();
        return Err(format!(
            "expands to {} variants, more than {MAX_VARIANTS}; list fewer values",
            sizes.join(" × ")
        ));
    };
    let mut variants = Vec::with_capacity(size);
    let mut names = BTreeSet::new();
    for i in 0..size {
        let mut rest = i;
        let mut params = Params::new();
        // The last key varies fastest, like nested loops in key order.
        for (key, values) in matrix.iter().rev() {
            params.insert(key.clone(), values[rest % values.len()].clone());
            rest /= values.len();
        }
        let base: String = matrix
            .keys()
            .map(|key| format!("{}-{}", key, name_part(&params[key].to_string())))
            .collect::<Vec<_>>()
            .join("_");
        let base: String = base.chars().take(MAX_NAME_LEN - 4).collect();
        let mut name = base.clone();
        let mut n = 2;
        while !names.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        variants.push(VariantSpec { name, params });
    }
    Ok(variants)
}

/// A param value as part of a generated name: `[a-z0-9]` with other runs as `-`.
fn name_part(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "x".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// One arm whose params render the templates: the baseline (when given) or a variant.
pub(crate) struct Arm<'a> {
    /// `baseline` or the variant's name.
    pub(crate) name: &'a str,
    /// The arm's params.
    pub(crate) params: &'a Params,
    /// Where the params were written, for messages (`variants[1].params`, `matrix`, `baseline`).
    pub(crate) field: String,
}

impl Arm<'_> {
    /// `the baseline` or `variant "x"`, for messages.
    fn label(&self) -> String {
        if self.field == "baseline" {
            "the baseline".to_owned()
        } else {
            format!("variant \"{}\"", self.name)
        }
    }
}

/// What a template site may refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Params and `{{ variant }}`.
    Params,
    /// Only `{{ original }}`: the value `command.read` captured.
    Original,
}

/// One piece of text rendered per arm.
struct Site<'a> {
    field: String,
    text: &'a str,
    origin: Option<&'a PathBuf>,
    scope: Scope,
    /// The rendered text must parse as JSON (a `.json` file).
    json: bool,
}

impl Site<'_> {
    fn position(&self, line: usize, column: usize) -> String {
        match self.origin {
            Some(file) => format!("line {line}, column {column} of {}", file.display()),
            None => format!("line {line}, column {column}"),
        }
    }
}

/// Every piece of `apply` that is rendered per arm.
fn sites<'a>(apply: &'a Apply, origins: &'a [Option<PathBuf>]) -> Vec<Site<'a>> {
    let mut sites = Vec::new();
    for (i, file) in apply.files.iter().enumerate() {
        let entry = index("apply.files", i);
        let origin = origins.get(i).and_then(Option::as_ref);
        if let Some(template) = &file.template {
            let key = if origin.is_some() {
                "template_file"
            } else {
                "template"
            };
            sites.push(Site {
                field: join(&entry, key),
                text: template,
                origin,
                scope: Scope::Params,
                json: file.path.ends_with(".json"),
            });
        }
        if let Some(edit) = &file.edit {
            sites.push(Site {
                field: join(&join(&entry, "edit"), "replace"),
                text: &edit.replace,
                origin: None,
                scope: Scope::Params,
                json: false,
            });
        }
    }
    if let Some(command) = &apply.command {
        for (i, word) in command.set.iter().enumerate() {
            sites.push(Site {
                field: index("apply.command.set", i),
                text: word,
                origin: None,
                scope: Scope::Params,
                json: false,
            });
        }
        for (i, word) in command.revert.iter().flatten().enumerate() {
            sites.push(Site {
                field: index("apply.command.revert", i),
                text: word,
                origin: None,
                scope: Scope::Original,
                json: false,
            });
        }
    }
    if let Some(live) = &apply.live_check {
        sites.push(Site {
            field: "apply.live_check.equals".to_owned(),
            text: &live.equals,
            origin: None,
            scope: Scope::Params,
            json: false,
        });
    }
    sites
}

/// Checks every template against every arm: placeholder syntax (line and column), placeholders
/// with no param, params nothing uses, the command revert rule, and a render of each arm.
pub(crate) fn check_templates(
    r: &mut Reader,
    apply: &Apply,
    origins: &[Option<PathBuf>],
    arms: &[Arm<'_>],
) {
    let start = r.count();
    let sites = sites(apply, origins);
    let all_params: BTreeSet<&str> = arms
        .iter()
        .flat_map(|arm| arm.params.keys().map(String::as_str))
        .collect();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut set_params: BTreeSet<String> = BTreeSet::new();
    let mut unreadable = false;
    for site in &sites {
        let found = match template::placeholders(site.text) {
            Ok(found) => found,
            Err(e) => {
                unreadable = true;
                r.problem(
                    &site.field,
                    format!("{}: {}", site.position(e.line, e.column), e.message),
                );
                continue;
            }
        };
        // One problem per placeholder name and site, at its first use.
        let mut reported = BTreeSet::new();
        for placeholder in found {
            let name = placeholder.name.as_str();
            if site.field.starts_with("apply.command.set") {
                set_params.insert(name.to_owned());
            }
            used.insert(name.to_owned());
            if !reported.insert(name.to_owned()) {
                continue;
            }
            let at = site.position(placeholder.line, placeholder.column);
            match site.scope {
                Scope::Original if name == ORIGINAL_PLACEHOLDER => {}
                Scope::Original => r.problem(
                    &site.field,
                    format!(
                        "{at}: `{{{{ {name} }}}}` is not available in a revert; it runs with \
                         `{{{{ original }}}}`, the value `read` printed before the first change"
                    ),
                ),
                Scope::Params if name == VARIANT_PLACEHOLDER => {}
                Scope::Params if name == ORIGINAL_PLACEHOLDER => r.problem(
                    &site.field,
                    format!("{at}: `{{{{ original }}}}` is only available in apply.command.revert"),
                ),
                Scope::Params => missing_param(r, site, name, &at, arms, &all_params),
            }
        }
    }
    // A template that cannot be read hides which params it uses: no "unused" noise then.
    if !unreadable {
        unused_params(r, arms, &used);
    }
    if let Some(command) = &apply.command
        && command.revert.is_none()
    {
        let params: Vec<&String> = set_params
            .iter()
            .filter(|p| !matches!(p.as_str(), VARIANT_PLACEHOLDER | ORIGINAL_PLACEHOLDER))
            .collect();
        if params.len() != 1 || set_params.contains(VARIANT_PLACEHOLDER) {
            let uses = if params.is_empty() {
                "none".to_owned()
            } else {
                params
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            r.problem(
                "apply.command.set",
                format!(
                    "without a \"revert\", set is re-run with the captured value in place of its \
                     one param, so it must use exactly one param (it uses {uses}{}); add a \
                     \"revert\" like [\"sysctl\", \"-w\", \"net.core.somaxconn={{{{ original }}}}\"]",
                    if set_params.contains(VARIANT_PLACEHOLDER) {
                        " and {{ variant }}"
                    } else {
                        ""
                    }
                ),
            );
        }
    }
    if r.count() == start {
        render_all(r, &sites, arms);
    }
}

/// Reports a placeholder some arms (or all) have no value for.
fn missing_param(
    r: &mut Reader,
    site: &Site<'_>,
    name: &str,
    at: &str,
    arms: &[Arm<'_>],
    all_params: &BTreeSet<&str>,
) {
    let lacking: Vec<&Arm<'_>> = arms
        .iter()
        .filter(|arm| !arm.params.contains_key(name))
        .collect();
    if lacking.is_empty() {
        return;
    }
    let message = if lacking.len() == arms.len() {
        let hint = match closest(name, all_params.iter().copied()) {
            Some(close) => format!("did you mean `{{{{ {close} }}}}`? Or add"),
            None => "add".to_owned(),
        };
        format!(
            "{at}: `{{{{ {name} }}}}` matches no param; {hint} a param \"{name}\" to every \
             variant (and the baseline, if given)"
        )
    } else {
        let labels: Vec<String> = lacking.iter().take(5).map(|arm| arm.label()).collect();
        let more = if lacking.len() > 5 {
            format!(" and {} more", lacking.len() - 5)
        } else {
            String::new()
        };
        format!(
            "{at}: `{{{{ {name} }}}}` has no value in {}{more}; add a param \"{name}\" there",
            labels.join(", ")
        )
    };
    r.problem(&site.field, message);
}

/// Reports each param that no template, edit, command or live check uses, where it is first given.
fn unused_params(r: &mut Reader, arms: &[Arm<'_>], used: &BTreeSet<String>) {
    let mut reported = BTreeSet::new();
    for arm in arms {
        for name in arm.params.keys() {
            if used.contains(name) || !reported.insert(name.clone()) {
                continue;
            }
            let field = if arm.field == "matrix" {
                join("matrix", name)
            } else {
                join(&arm.field, name)
            };
            let hint = match closest(name, used.iter().map(String::as_str)) {
                Some(close) if close != VARIANT_PLACEHOLDER && close != ORIGINAL_PLACEHOLDER => {
                    format!(
                        "`{{{{ {close} }}}}` is close: make the two names agree, or remove the param"
                    )
                }
                _ => format!("remove it, or use it as {{{{ {name} }}}} where it belongs"),
            };
            r.problem(
                &field,
                format!(
                    "param \"{name}\" is used by no template, edit, command or live_check; {hint}"
                ),
            );
        }
    }
}

/// Renders every site for every arm (the checks above make this succeed; it is the proof).
fn render_all(r: &mut Reader, sites: &[Site<'_>], arms: &[Arm<'_>]) {
    for arm in arms {
        let values = arm_values(arm.name, arm.params);
        for site in sites.iter().filter(|s| s.scope == Scope::Params) {
            match template::render(site.text, &values) {
                Err(e) => r.problem(
                    &site.field,
                    format!(
                        "{}: {} (rendering {})",
                        site.position(e.line, e.column),
                        e.message,
                        arm.label()
                    ),
                ),
                Ok(text) if site.json => {
                    if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
                        r.problem(
                            &site.field,
                            format!(
                                "renders to invalid JSON for {} ({e} of the rendered file); a \
                                 .json file must stay valid JSON, so quote string values in the \
                                 template, like \"mode\": \"{{{{ mode }}}}\"",
                                arm.label()
                            ),
                        );
                    }
                }
                Ok(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_expands_to_the_product_with_unique_names() {
        let matrix: BTreeMap<String, Vec<ParamValue>> = [
            (
                "level".to_owned(),
                vec![ParamValue::Int(1), ParamValue::Int(5)],
            ),
            (
                "types".to_owned(),
                vec![
                    ParamValue::Str("text/css".to_owned()),
                    ParamValue::Str("TEXT CSS".to_owned()),
                ],
            ),
        ]
        .into();
        let variants = expand_matrix(&matrix).unwrap();
        let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "level-1_types-text-css",
                "level-1_types-text-css-2",
                "level-5_types-text-css",
                "level-5_types-text-css-2"
            ]
        );
        assert_eq!(variants[3].params["level"], ParamValue::Int(5));
        assert_eq!(variants[3].params["types"].to_string(), "TEXT CSS");
        for v in &variants {
            assert!(super::super::fields::is_name(&v.name), "{}", v.name);
        }
    }

    #[test]
    fn a_huge_matrix_is_refused_before_expanding() {
        let values: Vec<ParamValue> = (0..1000).map(ParamValue::Int).collect();
        let matrix: BTreeMap<String, Vec<ParamValue>> =
            (0..10).map(|i| (format!("p{i}"), values.clone())).collect();
        let err = expand_matrix(&matrix).unwrap_err();
        assert!(err.contains("more than 100"), "{err}");
    }
}
