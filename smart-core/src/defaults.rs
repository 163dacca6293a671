//! The `[defaults]` of smart.toml as experiments inherit them: schedule, decision and guardrail
//! keys merged into an experiment's JSON before validation reads it. Apart from `config.rs`,
//! which reads them, so validation can use them without importing the config reader (which
//! itself uses validation's section readers).

use serde_json::{Map, Value};

/// Schedule, decision and guardrail keys that experiments inherit unless they set them.
///
/// Merged into an experiment's JSON before it is read, so an inherited value is checked exactly
/// like one written in the experiment. The empty value (no config) changes nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Defaults {
    /// Each section's keys, as given (`[defaults]` in smart.toml, read by [`crate::config`]).
    pub(crate) sections: Map<String, Value>,
}

impl Defaults {
    /// Fills keys of `schedule`, `decision` and `guardrails` that `experiment` does not set.
    pub(crate) fn fill(&self, experiment: &mut Value) {
        let Value::Object(root) = experiment else {
            return;
        };
        for (section, defaults) in &self.sections {
            let Value::Object(defaults) = defaults else {
                continue;
            };
            match root.get_mut(section) {
                None => {
                    root.insert(section.clone(), Value::Object(defaults.clone()));
                }
                Some(Value::Object(own)) => {
                    for (key, value) in defaults {
                        own.entry(key.clone()).or_insert_with(|| value.clone());
                    }
                }
                // A wrong type is reported as written in the experiment.
                Some(_) => {}
            }
        }
    }

    /// The default values of one section (`schedule`, `decision` or `guardrails`), as given.
    pub fn section(&self, name: &str) -> Option<&Map<String, Value>> {
        self.sections.get(name).and_then(Value::as_object)
    }
}
